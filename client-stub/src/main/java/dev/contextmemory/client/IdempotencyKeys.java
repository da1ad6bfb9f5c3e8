package dev.contextmemory.client;

import dev.contextmemory.v1.AddAddressRequest;
import dev.contextmemory.v1.AppendMessageRequest;
import dev.contextmemory.v1.AppendMessagesRequest;
import dev.contextmemory.v1.ConversationServiceGrpc;
import dev.contextmemory.v1.CreateCustomerRequest;
import dev.contextmemory.v1.CreateMemoriesRequest;
import dev.contextmemory.v1.CreateMemoryRequest;
import dev.contextmemory.v1.CustomerServiceGrpc;
import dev.contextmemory.v1.MemoryServiceGrpc;
import dev.contextmemory.v1.Message;
import dev.contextmemory.v1.RequestHandoffRequest;
import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ClientCall;
import io.grpc.ClientInterceptor;
import io.grpc.ForwardingClientCall.SimpleForwardingClientCall;
import io.grpc.MethodDescriptor;
import java.util.Map;
import java.util.UUID;
import java.util.function.UnaryOperator;

/**
 * Gives every create and append a key the server deduplicates on, when the caller set none:
 * {@code message.idempotency_key} on AppendMessage, every keyless item of AppendMessages, and
 * {@code request_id} on CreateCustomer, AddAddress, CreateMemory, RequestHandoff and every item of
 * CreateMemories that has none. The key is a random UUID chosen
 * once per call, before gRPC's retry layer buffers the request, so each retry of that call sends
 * the same key and the server stores the message (or customer, address, memory) once and replays
 * it to later attempts.
 *
 * <p>{@link ContextMemoryClient} installs it; add it yourself to a channel you build by hand:
 * {@code ClientInterceptors.intercept(channel, IdempotencyKeys.interceptor())}. A key only protects
 * retries of one call: a caller that repeats a whole operation (e.g. after a crash) must choose and
 * keep its own key, such as the source system's message id.
 */
public final class IdempotencyKeys implements ClientInterceptor {
  private static final IdempotencyKeys INSTANCE = new IdempotencyKeys();

  private static final Map<String, UnaryOperator<Object>> FILLERS = Map.of(
      ConversationServiceGrpc.getAppendMessageMethod().getFullMethodName(),
      r -> fill((AppendMessageRequest) r),
      ConversationServiceGrpc.getAppendMessagesMethod().getFullMethodName(),
      r -> fill((AppendMessagesRequest) r),
      CustomerServiceGrpc.getCreateCustomerMethod().getFullMethodName(),
      r -> ((CreateCustomerRequest) r).getRequestId().isEmpty()
          ? ((CreateCustomerRequest) r).toBuilder().setRequestId(newKey()).build() : r,
      CustomerServiceGrpc.getAddAddressMethod().getFullMethodName(),
      r -> ((AddAddressRequest) r).getRequestId().isEmpty()
          ? ((AddAddressRequest) r).toBuilder().setRequestId(newKey()).build() : r,
      MemoryServiceGrpc.getCreateMemoryMethod().getFullMethodName(),
      r -> ((CreateMemoryRequest) r).getRequestId().isEmpty()
          ? ((CreateMemoryRequest) r).toBuilder().setRequestId(newKey()).build() : r,
      MemoryServiceGrpc.getCreateMemoriesMethod().getFullMethodName(),
      r -> fill((CreateMemoriesRequest) r),
      ConversationServiceGrpc.getRequestHandoffMethod().getFullMethodName(),
      r -> ((RequestHandoffRequest) r).getRequestId().isEmpty()
          ? ((RequestHandoffRequest) r).toBuilder().setRequestId(newKey()).build() : r);

  private IdempotencyKeys() {}

  public static ClientInterceptor interceptor() {
    return INSTANCE;
  }

  /** A fresh key: a random UUID (36 characters; the server accepts up to 128). */
  public static String newKey() {
    return UUID.randomUUID().toString();
  }

  @Override
  public <ReqT, RespT> ClientCall<ReqT, RespT> interceptCall(
      MethodDescriptor<ReqT, RespT> method, CallOptions options, Channel next) {
    UnaryOperator<Object> filler = FILLERS.get(method.getFullMethodName());
    ClientCall<ReqT, RespT> call = next.newCall(method, options);
    if (filler == null) {
      return call;
    }
    return new SimpleForwardingClientCall<>(call) {
      @Override
      @SuppressWarnings("unchecked") // the filler returns the type it was given
      public void sendMessage(ReqT message) {
        super.sendMessage((ReqT) filler.apply(message));
      }
    };
  }

  private static AppendMessageRequest fill(AppendMessageRequest r) {
    if (!r.getMessage().getIdempotencyKey().isEmpty()) {
      return r;
    }
    return r.toBuilder().setMessage(r.getMessage().toBuilder().setIdempotencyKey(newKey())).build();
  }

  private static CreateMemoriesRequest fill(CreateMemoriesRequest r) {
    if (r.getRequestsList().stream().noneMatch(item -> item.getRequestId().isEmpty())) {
      return r;
    }
    CreateMemoriesRequest.Builder b = r.toBuilder();
    for (int i = 0; i < b.getRequestsCount(); i++) {
      if (b.getRequests(i).getRequestId().isEmpty()) {
        b.setRequests(i, b.getRequests(i).toBuilder().setRequestId(newKey()));
      }
    }
    return b.build();
  }

  private static AppendMessagesRequest fill(AppendMessagesRequest r) {
    if (r.getMessagesList().stream().noneMatch(m -> m.getIdempotencyKey().isEmpty())) {
      return r;
    }
    AppendMessagesRequest.Builder b = r.toBuilder();
    for (int i = 0; i < b.getMessagesCount(); i++) {
      Message m = b.getMessages(i);
      if (m.getIdempotencyKey().isEmpty()) {
        b.setMessages(i, m.toBuilder().setIdempotencyKey(newKey()));
      }
    }
    return b.build();
  }
}

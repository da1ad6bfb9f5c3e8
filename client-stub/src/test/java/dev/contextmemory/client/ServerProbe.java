package dev.contextmemory.client;

import io.grpc.Context;
import io.grpc.Deadline;
import io.grpc.ForwardingServerCall.SimpleForwardingServerCall;
import io.grpc.ForwardingServerCallListener.SimpleForwardingServerCallListener;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.Status;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A server interceptor that records what reaches the server (method, request, deadline,
 * authorization header) and can inject one failure: answer UNAVAILABLE (or another code) to the next
 * call of a method before the service runs, or UNAVAILABLE after it has committed, in place of its
 * response.
 */
final class ServerProbe implements ServerInterceptor {
  /** One call as the server saw it. */
  record Seen(String method, Object request, Deadline deadline, String authorization) {}

  enum Fault {
    /** UNAVAILABLE before the service runs: nothing happens on the server. */
    BEFORE_SERVICE,
    /** The service runs and commits, then its response is dropped and UNAVAILABLE sent instead. */
    AFTER_COMMIT
  }

  private static final Metadata.Key<String> AUTHORIZATION =
      Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER);

  final List<Seen> seen = new CopyOnWriteArrayList<>();
  private final Map<String, Fault> faults = new ConcurrentHashMap<>();
  private final Map<String, Status.Code> codes = new ConcurrentHashMap<>();
  private volatile Runnable onFault = () -> {};
  final AtomicInteger faultsInjected = new AtomicInteger();

  /** Fails the next call of {@code fullMethodName} once, as {@code fault} says. */
  void failNext(String fullMethodName, Fault fault) {
    failNext(fullMethodName, fault, Status.Code.UNAVAILABLE);
  }

  /** Fails the next call of {@code fullMethodName} once with {@code code}. */
  void failNext(String fullMethodName, Fault fault, Status.Code code) {
    codes.put(fullMethodName, code);
    faults.put(fullMethodName, fault);
  }

  /** Runs on the server's call thread when an AFTER_COMMIT fault fires, just before UNAVAILABLE is sent. */
  void onFault(Runnable hook) {
    this.onFault = hook;
  }

  List<Seen> calls(String fullMethodName) {
    return seen.stream().filter(s -> s.method().equals(fullMethodName)).toList();
  }

  @Override
  public <ReqT, RespT> ServerCall.Listener<ReqT> interceptCall(
      ServerCall<ReqT, RespT> call, Metadata headers, ServerCallHandler<ReqT, RespT> next) {
    String method = call.getMethodDescriptor().getFullMethodName();
    Deadline deadline = Context.current().getDeadline();
    String authorization = headers.get(AUTHORIZATION);
    Fault fault = faults.remove(method);
    Status.Code code = codes.getOrDefault(method, Status.Code.UNAVAILABLE);
    if (fault == Fault.BEFORE_SERVICE) {
      seen.add(new Seen(method, null, deadline, authorization));
      faultsInjected.incrementAndGet();
      call.close(Status.fromCode(code).withDescription("injected before the service ran"), new Metadata());
      return new ServerCall.Listener<>() {};
    }
    ServerCall<ReqT, RespT> target = fault == Fault.AFTER_COMMIT ? new DropResponse<>(call) : call;
    return new SimpleForwardingServerCallListener<>(next.startCall(target, headers)) {
      @Override
      public void onMessage(ReqT message) {
        seen.add(new Seen(method, message, deadline, authorization));
        super.onMessage(message);
      }
    };
  }

  /** Swallows the response of a call that succeeded and answers UNAVAILABLE, as a lost response looks. */
  private final class DropResponse<ReqT, RespT> extends SimpleForwardingServerCall<ReqT, RespT> {
    DropResponse(ServerCall<ReqT, RespT> call) {
      super(call);
    }

    @Override
    public void sendHeaders(Metadata headers) {}

    @Override
    public void sendMessage(RespT message) {}

    @Override
    public void close(Status status, Metadata trailers) {
      if (!status.isOk()) {
        super.close(status, trailers);
        return;
      }
      faultsInjected.incrementAndGet();
      onFault.run();
      super.close(Status.UNAVAILABLE.withDescription("injected: the response was lost after the commit"),
          new Metadata());
    }
  }
}

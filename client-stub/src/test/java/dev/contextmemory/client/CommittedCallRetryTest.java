package dev.contextmemory.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.contextmemory.v1.AppendMessageRequest;
import dev.contextmemory.v1.AppendMessageResponse;
import dev.contextmemory.v1.ConversationServiceGrpc;
import dev.contextmemory.v1.CustomerServiceGrpc;
import dev.contextmemory.v1.DeleteCustomerRequest;
import dev.contextmemory.v1.DeleteCustomerResponse;
import dev.contextmemory.v1.Message;
import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ClientCall;
import io.grpc.ClientInterceptor;
import io.grpc.ForwardingClientCall.SimpleForwardingClientCall;
import io.grpc.ForwardingClientCallListener.SimpleForwardingClientCallListener;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.Server;
import io.grpc.ServerServiceDefinition;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.stub.ServerCalls;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * A replica that dies after its response headers and before its trailers, staged exactly: two
 * gRPC servers on real Netty, each behind a {@link TcpLink}; the first call anywhere gets its
 * headers and message flushed and no trailers, then that server's link is reset (what SIGKILL looks
 * like to the client). gRPC's own retry policy never repeats such a call (it is committed once
 * headers arrive); the client repeats it once on the other replica, with the same idempotency key.
 * ClusterFailoverTest shows the same with real server processes, where it is rare.
 */
class CommittedCallRetryTest {
  private final List<Server> servers = new ArrayList<>();
  private final List<TcpLink> links = new ArrayList<>();
  /** Each attempt the servers received: "AppendMessage key" or "DeleteCustomer". */
  private final ConcurrentLinkedQueue<String> attempts = new ConcurrentLinkedQueue<>();
  private final AtomicBoolean firstAnswered = new AtomicBoolean();
  /** Which server got the first call, so the test cuts that one's link. */
  private volatile int firstServer = -1;

  @AfterEach
  void stop() throws InterruptedException {
    links.forEach(TcpLink::close);
    for (Server s : servers) {
      s.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }

  @Test
  void anAppendWhoseReplicaDiedMidAnswerIsRepeatedOnTheOtherWithItsKey() throws Exception {
    String targets = startTwoReplicas();
    CountDownLatch headers = new CountDownLatch(1);
    try (ContextMemoryClient client = ContextMemoryClient.newBuilder(targets)
        .customizeChannel(b -> b.intercept(new OnHeaders(headers))).build()) {
      Thread cutter = cutWhenAnswered(headers);
      AppendMessageResponse r = client.conversations().withDeadlineAfter(20, TimeUnit.SECONDS)
          .appendMessage(AppendMessageRequest.newBuilder().setConversationId("c")
              .setMessage(Message.newBuilder().setContent("hello")).build());
      cutter.join();
      assertEquals("second", r.getMessage().getContent(), "the answer is the second attempt's");
      List<String> seen = List.copyOf(attempts);
      assertEquals(2, seen.size(), "two attempts: " + seen);
      assertEquals(seen.get(0), seen.get(1), "the repeat carries the first attempt's idempotency key");
      assertTrue(seen.get(0).startsWith("AppendMessage ") && seen.get(0).length() > "AppendMessage ".length(),
          "a key was sent: " + seen);
    }
  }

  @Test
  void withRetriesOffTheSameCrashFailsTheCall() throws Exception {
    // The control: what gRPC alone does with a call committed by its headers.
    String targets = startTwoReplicas();
    CountDownLatch headers = new CountDownLatch(1);
    try (ContextMemoryClient client = ContextMemoryClient.newBuilder(targets)
        .retryPolicy(1, Duration.ofMillis(100), Duration.ofMillis(100))
        .customizeChannel(b -> b.intercept(new OnHeaders(headers))).build()) {
      Thread cutter = cutWhenAnswered(headers);
      StatusRuntimeException e = assertThrows(StatusRuntimeException.class, () -> client.conversations()
          .withDeadlineAfter(20, TimeUnit.SECONDS).appendMessage(AppendMessageRequest.newBuilder()
              .setConversationId("c").setMessage(Message.newBuilder().setContent("hello")).build()));
      cutter.join();
      assertEquals(Status.Code.UNAVAILABLE, e.getStatus().getCode(), e::toString);
      assertEquals(1, attempts.size(), "one attempt: " + attempts);
    }
  }

  @Test
  void aCallThatIsNotSafeToRepeatIsNotRepeated() throws Exception {
    String targets = startTwoReplicas();
    CountDownLatch headers = new CountDownLatch(1);
    try (ContextMemoryClient client = ContextMemoryClient.newBuilder(targets)
        .customizeChannel(b -> b.intercept(new OnHeaders(headers))).build()) {
      Thread cutter = cutWhenAnswered(headers);
      StatusRuntimeException e = assertThrows(StatusRuntimeException.class, () -> client.customers()
          .withDeadlineAfter(20, TimeUnit.SECONDS).deleteCustomer(DeleteCustomerRequest.newBuilder()
              .setCustomerId("x").build()));
      cutter.join();
      assertEquals(Status.Code.UNAVAILABLE, e.getStatus().getCode(), e::toString);
      assertEquals(List.of("DeleteCustomer"), List.copyOf(attempts));
    }
  }

  /** Two replicas behind links; returns the client's target list. */
  private String startTwoReplicas() throws Exception {
    for (int i = 0; i < 2; i++) {
      int index = i;
      // Registered as server streaming on the server side, so a response is flushed as soon as it
      // is sent (a unary one would wait for its trailers), as the client sees from a dying server.
      ServerServiceDefinition conversations = ServerServiceDefinition.builder(ConversationServiceGrpc.SERVICE_NAME)
          .addMethod(streaming(ConversationServiceGrpc.getAppendMessageMethod()),
              ServerCalls.asyncServerStreamingCall((AppendMessageRequest req, io.grpc.stub.StreamObserver<
                  AppendMessageResponse> out) -> {
                attempts.add("AppendMessage " + req.getMessage().getIdempotencyKey());
                boolean first = firstAnswered.compareAndSet(false, true);
                if (first) {
                  firstServer = index; // before the answer: the cutter reads it once headers arrive
                }
                out.onNext(AppendMessageResponse.newBuilder()
                    .setMessage(Message.newBuilder().setContent(first ? "first" : "second")).build());
                if (!first) {
                  out.onCompleted(); // the first gets no trailers: the link is cut under it
                }
              }))
          .build();
      ServerServiceDefinition customers = ServerServiceDefinition.builder(CustomerServiceGrpc.SERVICE_NAME)
          .addMethod(streaming(CustomerServiceGrpc.getDeleteCustomerMethod()),
              ServerCalls.asyncServerStreamingCall((DeleteCustomerRequest req, io.grpc.stub.StreamObserver<
                  DeleteCustomerResponse> out) -> {
                attempts.add("DeleteCustomer");
                boolean first = firstAnswered.compareAndSet(false, true);
                if (first) {
                  firstServer = index;
                }
                out.onNext(DeleteCustomerResponse.getDefaultInstance());
                if (!first) {
                  out.onCompleted();
                }
              }))
          .build();
      Server s = NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0))
          .addService(conversations).addService(customers).build().start();
      servers.add(s);
      links.add(new TcpLink(LiveServer.freePort(), s.getPort()));
    }
    return links.get(0).target() + "," + links.get(1).target();
  }

  /** Cuts the first call's replica once the client has its response headers. */
  private Thread cutWhenAnswered(CountDownLatch headers) {
    return Thread.ofPlatform().start(() -> {
      try {
        if (headers.await(15, TimeUnit.SECONDS)) {
          links.get(firstServer).cut();
        }
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    });
  }

  private static <Q, R> MethodDescriptor<Q, R> streaming(MethodDescriptor<Q, R> unary) {
    return unary.toBuilder().setType(MethodDescriptor.MethodType.SERVER_STREAMING).build();
  }

  /** Below the client's interceptors: counts down when an attempt's response headers arrive. */
  private record OnHeaders(CountDownLatch latch) implements ClientInterceptor {
    @Override
    public <Q, R> ClientCall<Q, R> interceptCall(MethodDescriptor<Q, R> method, CallOptions options, Channel next) {
      return new SimpleForwardingClientCall<>(next.newCall(method, options)) {
        @Override
        public void start(Listener<R> listener, Metadata headers) {
          super.start(new SimpleForwardingClientCallListener<>(listener) {
            @Override
            public void onHeaders(Metadata h) {
              super.onHeaders(h);
              latch.countDown();
            }
          }, headers);
        }
      };
    }
  }
}

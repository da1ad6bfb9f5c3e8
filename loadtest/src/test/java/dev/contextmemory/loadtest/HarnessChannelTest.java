package dev.contextmemory.loadtest;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.contextmemory.v1.ConversationServiceGrpc;
import dev.contextmemory.v1.GetConversationRequest;
import dev.contextmemory.v1.GetConversationResponse;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.Server;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.ServerInterceptors;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.stub.StreamObserver;
import java.net.InetSocketAddress;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The harness's one channel over real TCP (Netty on both ends): the API key travels on every call. */
class HarnessChannelTest {
  private static final Metadata.Key<String> AUTHORIZATION =
      Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER);

  private final AtomicReference<Optional<String>> seen = new AtomicReference<>();
  private Server server;

  @BeforeEach
  void start() throws Exception {
    ServerInterceptor capture = new ServerInterceptor() {
      @Override
      public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata headers,
          ServerCallHandler<Q, R> next) {
        seen.set(Optional.ofNullable(headers.get(AUTHORIZATION)));
        return next.startCall(call, headers);
      }
    };
    var service = new ConversationServiceGrpc.ConversationServiceImplBase() {
      @Override
      public void getConversation(GetConversationRequest req, StreamObserver<GetConversationResponse> out) {
        out.onNext(GetConversationResponse.getDefaultInstance());
        out.onCompleted();
      }
    };
    server = NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0))
        .addService(ServerInterceptors.intercept(service, capture)).build().start();
  }

  @AfterEach
  void stop() throws InterruptedException {
    server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
  }

  private Optional<String> call(String apiKey) throws InterruptedException {
    ManagedChannel ch = HarnessChannel.open("127.0.0.1", server.getPort(), apiKey);
    try {
      ConversationServiceGrpc.newBlockingStub(ch).withDeadlineAfter(10, TimeUnit.SECONDS)
          .getConversation(GetConversationRequest.getDefaultInstance());
      return seen.get();
    } finally {
      ch.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }

  @Test
  void anApiKeyIsSentAsABearerTokenOnEveryCall() throws Exception {
    assertEquals(Optional.of("Bearer k-123.abc"), call("k-123.abc"));
    assertEquals(Optional.empty(), call(null), "no key, no header");
  }

  @Test
  void aKeyThatCannotBeAHeaderValueIsRejectedUpFront() {
    assertThrows(IllegalArgumentException.class, () -> HarnessChannel.bearer("has space"));
    assertThrows(IllegalArgumentException.class, () -> HarnessChannel.bearer(""));
  }

  @Test
  void serverEnvAndApiKeyOptions() {
    Options o = Options.parse(new String[] {"--target", "h:1", "--api-key", "k1", "--server-env",
        "CONTEXT_MEMORY_AUTH=api-key", "--server-env=CONTEXT_MEMORY_API_KEYS=a=b"});
    assertEquals("k1", o.apiKey());
    assertEquals("api-key", o.serverEnv().get("CONTEXT_MEMORY_AUTH"));
    assertEquals("a=b", o.serverEnv().get("CONTEXT_MEMORY_API_KEYS"), "only the first '=' splits");
    assertThrows(Options.UsageException.class, () -> Options.parse(new String[] {"--target", "h:1", "--server-env",
        "NOVALUE"}));
  }
}

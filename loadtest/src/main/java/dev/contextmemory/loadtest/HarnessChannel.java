package dev.contextmemory.loadtest;

import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ClientCall;
import io.grpc.ClientInterceptor;
import io.grpc.ForwardingClientCall;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;

/**
 * The one place the harness builds its channel to the server: the start-up probe, the set-up and
 * every scenario go through what {@link #open} returns, so a server that wants an API key
 * ({@code CONTEXT_MEMORY_AUTH=api-key}) gets it on every call, and an auth-on run measures the
 * same path as an auth-off one plus the key check.
 */
public final class HarnessChannel {
  /** Where the API key comes from when {@code --api-key} is not given; the key never reaches a log. */
  public static final String API_KEY_ENV = "CONTEXT_MEMORY_LOADTEST_API_KEY";

  private static final Metadata.Key<String> AUTHORIZATION =
      Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER);

  private HarnessChannel() {}

  /**
   * Plaintext HTTP/2 to the server; callbacks run on the transport threads (directExecutor) since
   * the engine's callbacks only record and start the next call, never block.
   *
   * @param apiKey sent as {@code authorization: Bearer <key>} on every call, or null for none
   */
  public static ManagedChannel open(String host, int port, String apiKey) {
    NettyChannelBuilder b = NettyChannelBuilder.forAddress(host, port).usePlaintext().directExecutor()
        .maxInboundMessageSize(64 * 1024 * 1024);
    if (apiKey != null) {
      b.intercept(bearer(apiKey));
    }
    return b.build();
  }

  /** Adds {@code authorization: Bearer <key>} to every call's headers. */
  public static ClientInterceptor bearer(String apiKey) {
    if (apiKey.isBlank() || apiKey.chars().anyMatch(c -> c < 0x21 || c > 0x7e)) {
      throw new IllegalArgumentException("the API key must be printable ASCII without spaces");
    }
    String value = "Bearer " + apiKey;
    return new ClientInterceptor() {
      @Override
      public <Q, R> ClientCall<Q, R> interceptCall(MethodDescriptor<Q, R> method, CallOptions options, Channel next) {
        return new ForwardingClientCall.SimpleForwardingClientCall<>(next.newCall(method, options)) {
          @Override
          public void start(Listener<R> listener, Metadata headers) {
            headers.put(AUTHORIZATION, value);
            super.start(listener, headers);
          }
        };
      }
    };
  }
}

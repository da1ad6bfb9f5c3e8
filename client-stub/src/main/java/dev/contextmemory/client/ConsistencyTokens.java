package dev.contextmemory.client;

import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ClientCall;
import io.grpc.ClientInterceptor;
import io.grpc.ForwardingClientCall.SimpleForwardingClientCall;
import io.grpc.ForwardingClientCallListener.SimpleForwardingClientCallListener;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import java.util.concurrent.atomic.AtomicReference;

/**
 * Read-your-writes when the server reads from standbys: a server with standbys answers every
 * call that committed with a consistency token in the {@value #HEADER} trailer; this interceptor
 * keeps the newest one the client has seen and sends it with every later call, so the server
 * serves a read from a standby only once that standby has replayed the client's writes (else from
 * the primary). The scope is the client object: share the client to share the guarantee, or
 * carry {@link ContextMemoryClient#consistencyToken()} to another client.
 *
 * <p>Tokens begin with 16 hex digits of a WAL position (the server's documented format), so the
 * newest is the greatest by that prefix: calls that finish out of order never move it back.
 */
final class ConsistencyTokens implements ClientInterceptor {
  static final String HEADER = "x-cm-consistency-token";
  private static final Metadata.Key<String> KEY = Metadata.Key.of(HEADER, Metadata.ASCII_STRING_MARSHALLER);
  private static final int POSITION_CHARS = 16;

  private final AtomicReference<String> newest = new AtomicReference<>();

  String newest() {
    return newest.get();
  }

  void offer(String token) {
    if (token != null && !token.isEmpty()) {
      newest.accumulateAndGet(token, (held, offered) -> held == null || position(offered).compareTo(position(held)) > 0
          ? offered : held);
    }
  }

  private static String position(String token) {
    return token.length() >= POSITION_CHARS ? token.substring(0, POSITION_CHARS) : token;
  }

  @Override
  public <ReqT, RespT> ClientCall<ReqT, RespT> interceptCall(MethodDescriptor<ReqT, RespT> method,
      CallOptions options, Channel next) {
    return new SimpleForwardingClientCall<>(next.newCall(method, options)) {
      @Override
      public void start(Listener<RespT> listener, Metadata headers) {
        String token = newest.get();
        if (token != null && !headers.containsKey(KEY)) {
          headers.put(KEY, token);
        }
        super.start(new SimpleForwardingClientCallListener<>(listener) {
          @Override
          public void onClose(Status status, Metadata trailers) {
            offer(trailers.get(KEY));
            super.onClose(status, trailers);
          }
        }, headers);
      }
    };
  }
}

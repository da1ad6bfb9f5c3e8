package dev.contextmemory.client;

import dev.contextmemory.server.ContextMemoryServer;
import dev.contextmemory.server.config.Settings;
import io.grpc.ForwardingServerBuilder;
import io.grpc.Server;
import io.grpc.ServerBuilder;
import io.grpc.ServerInterceptor;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * The real server on a real socket (Netty on 127.0.0.1), assembled exactly as {@code Main} does,
 * with optional interceptors of the test's own in front of the services. It keeps the
 * {@link Server} that {@link ContextMemoryServer} builds, so a test can stop it from inside a call.
 */
final class LiveServer implements AutoCloseable {
  private final ContextMemoryServer server;
  private final Server raw;

  private LiveServer(ContextMemoryServer server, Server raw) {
    this.server = server;
    this.raw = raw;
  }

  /** A free local port (free now; a test binds it right away). */
  static int freePort() {
    try (ServerSocket s = new ServerSocket(0)) {
      s.setReuseAddress(true);
      return s.getLocalPort();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** Plaintext on {@code port} (0: any), against the database at {@code dbUrl}. */
  static LiveServer start(String dbUrl, int port, List<ServerInterceptor> interceptors) {
    return start(dbUrl, NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", port)), interceptors);
  }

  static LiveServer start(String dbUrl, ServerBuilder<?> transport, List<ServerInterceptor> interceptors) {
    return start(dbUrl, transport, interceptors, Map.of());
  }

  /** With extra CONTEXT_MEMORY_* settings (names without the prefix), e.g. AUTH=api-key. */
  static LiveServer start(String dbUrl, ServerBuilder<?> transport, List<ServerInterceptor> interceptors,
      Map<String, String> settings) {
    Map<String, String> env = new HashMap<>();
    env.put("CONTEXT_MEMORY_DB_URL", dbUrl);
    env.put("CONTEXT_MEMORY_DB_POOL_SIZE", "4");
    env.put("CONTEXT_MEMORY_HEALTH_CHECK_INTERVAL_MS", "200");
    env.put("CONTEXT_MEMORY_SHUTDOWN_GRACE_SECONDS", "5");
    env.put("CONTEXT_MEMORY_AUTH", "none");
    env.put("CONTEXT_MEMORY_HOST", "127.0.0.1");
    settings.forEach((k, v) -> env.put(Settings.PREFIX + k, v));
    Capturing capturing = new Capturing(transport, interceptors);
    try {
      return new LiveServer(ContextMemoryServer.start(Settings.from(env), capturing), capturing.built);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /**
   * Passes everything to the transport and keeps the server it builds. The test's interceptors go
   * on last, so they run first and see each call as the client sent it (its own deadline, say,
   * before the server bounds it).
   */
  private static final class Capturing extends ForwardingServerBuilder<Capturing> {
    private final ServerBuilder<?> transport;
    private final List<ServerInterceptor> outermost;
    private Server built;

    Capturing(ServerBuilder<?> transport, List<ServerInterceptor> outermost) {
      this.transport = transport;
      this.outermost = outermost;
    }

    @Override
    protected ServerBuilder<?> delegate() {
      return transport;
    }

    @Override
    public Server build() {
      outermost.forEach(transport::intercept);
      built = super.build();
      return built;
    }
  }

  int port() {
    return server.port();
  }

  /** The server's connection pool, for tests that set up rows behind the API (e.g. API keys). */
  javax.sql.DataSource pool() {
    return server.pool();
  }

  String target() {
    return "127.0.0.1:" + port();
  }

  /** The gRPC server inside: {@code shutdown()} stops accepting and sends GOAWAY, without blocking. */
  Server raw() {
    return raw;
  }

  /** Graceful stop, as on SIGTERM; returns once the port is released. */
  @Override
  public void close() {
    server.close();
    try {
      raw.awaitTermination(10, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}

package dev.contextmemory.server.testing;

import dev.contextmemory.server.ContextMemoryServer;
import dev.contextmemory.server.config.Settings;
import io.grpc.ManagedChannel;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.HashMap;
import java.util.Map;
import java.util.UUID;

/**
 * The real server (same assembly as production: pool, migrations, Jdbi, interceptors, health) on
 * the in-process transport, against a fresh database of its own.
 */
public final class TestServer implements AutoCloseable {
  private static TestServer shared;

  private final ContextMemoryServer server;
  private final ManagedChannel channel;
  private final String dbUrl;

  private TestServer(ContextMemoryServer server, ManagedChannel channel, String dbUrl) {
    this.server = server;
    this.channel = channel;
    this.dbUrl = dbUrl;
  }

  /** One server for the whole test JVM, for tests that only need the API. */
  public static synchronized TestServer shared() {
    if (shared == null) {
      shared = start(Map.of());
      Runtime.getRuntime().addShutdownHook(new Thread(shared::close));
    }
    return shared;
  }

  /**
   * A server of its own, with extra CONTEXT_MEMORY_* settings (names without the prefix) and
   * OTEL_* variables (full names).
   */
  public static TestServer start(Map<String, String> overrides) {
    return startOn(TestDatabase.create(), overrides);
  }

  /** A server of its own on a database the caller provides (a throwaway cluster's, say). */
  public static TestServer startOn(String dbUrl, Map<String, String> overrides) {
    Map<String, String> env = new HashMap<>();
    env.put("CONTEXT_MEMORY_DB_URL", dbUrl);
    env.put("CONTEXT_MEMORY_DB_POOL_SIZE", "4");
    env.put("CONTEXT_MEMORY_HEALTH_CHECK_INTERVAL_MS", "200");
    env.put("CONTEXT_MEMORY_SHUTDOWN_GRACE_SECONDS", "10");
    // Functional tests fire bursts of 16 concurrent calls at 8 request threads; they test what the
    // calls do, not shedding, which OverloadTest covers with the production default.
    env.put("CONTEXT_MEMORY_REQUEST_QUEUE", "64");
    // Most tests exercise the API, not authentication: the default tenant with every scope.
    // AuthenticationTest and TenantIsolationTest override AUTH with api-key.
    env.put("CONTEXT_MEMORY_AUTH", "none");
    env.put("CONTEXT_MEMORY_HOST", "127.0.0.1");
    // OTEL_* variables keep their standard names; everything else is a CONTEXT_MEMORY_* setting.
    overrides.forEach((k, v) -> env.put(k.startsWith("OTEL_") ? k : Settings.PREFIX + k, v));
    String name = "context-memory-test-" + UUID.randomUUID();
    try {
      ContextMemoryServer server = ContextMemoryServer.start(Settings.from(env), InProcessServerBuilder.forName(name));
      return new TestServer(server, InProcessChannelBuilder.forName(name).build(), dbUrl);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  public ManagedChannel channel() {
    return channel;
  }

  public ContextMemoryServer server() {
    return server;
  }

  /** JDBC URL of this server's own database, for tests that look behind the API. */
  public String dbUrl() {
    return dbUrl;
  }

  @Override
  public void close() {
    channel.shutdownNow();
    server.close();
  }
}

package dev.contextmemory.server;

import ch.qos.logback.classic.LoggerContext;
import dev.contextmemory.server.config.Database;
import dev.contextmemory.server.config.Settings;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import java.net.InetSocketAddress;
import java.util.concurrent.TimeUnit;
import org.slf4j.LoggerFactory;
import org.slf4j.bridge.SLF4JBridgeHandler;

/**
 * Command line: {@code serve} (the default) runs the gRPC server until SIGTERM/SIGINT;
 * {@code migrate} applies pending schema migrations and exits. Configuration comes from
 * CONTEXT_MEMORY_* environment variables (README.md lists them).
 */
public final class Main {
  private Main() {}

  public static void main(String[] args) throws Exception {
    // grpc-java and the JDK log through java.util.logging: into the same JSON lines as the rest.
    SLF4JBridgeHandler.removeHandlersForRootLogger();
    SLF4JBridgeHandler.install();
    String command = args.length == 0 ? "serve" : args[0];
    Settings settings;
    try {
      settings = Settings.fromEnvironment();
    } catch (IllegalArgumentException e) {
      System.err.println("context-memory: " + e.getMessage());
      System.exit(2);
      return;
    }
    switch (command) {
      case "serve" -> serve(settings);
      case "migrate" -> migrate(settings);
      default -> {
        System.err.println("usage: context-memory [serve|migrate]");
        System.exit(2);
      }
    }
  }

  private static void serve(Settings s) throws Exception {
    NettyServerBuilder netty = NettyServerBuilder.forAddress(new InetSocketAddress(s.host(), s.port()))
        // Clients of this API keep long-lived channels with keepalive pings (the Java client pings
        // every 30 s); allow that instead of answering with GOAWAY.
        .permitKeepAliveTime(20, TimeUnit.SECONDS)
        .permitKeepAliveWithoutCalls(true);
    ContextMemoryServer server = ContextMemoryServer.start(s, netty);
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      server.close();
      // The log appender is asynchronous: write out what is queued before the JVM halts.
      if (LoggerFactory.getILoggerFactory() instanceof LoggerContext logback) {
        logback.stop();
      }
    }, "shutdown"));
    server.awaitTermination();
  }

  private static void migrate(Settings s) {
    var result = Database.migrate(s);
    System.out.println("schema at version " + result.targetSchemaVersion + "; "
        + result.migrationsExecuted + " migration(s) applied");
  }
}

package dev.contextmemory.server;

import dev.contextmemory.mcp.Backend;
import dev.contextmemory.mcp.McpHttpServer;
import dev.contextmemory.mcp.McpStdio;
import dev.contextmemory.server.auth.KeyVerifier;
import dev.contextmemory.server.config.SecuritySettings;
import dev.contextmemory.server.config.Settings;
import dev.contextmemory.server.domain.UnauthenticatedException;
import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.ServerBuilder;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import java.io.IOException;
import java.time.Duration;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The MCP tools over Streamable HTTP on {@code CONTEXT_MEMORY_MCP_PORT}, served by this process.
 * The tools call the API over an in-process channel to an in-process server that carries the very
 * stack the network transport does (request executor, interceptors, metrics), so each MCP request's
 * bearer key meets the same authentication, scopes and per-key limits as a gRPC call, without a
 * socket or TLS in between.
 */
final class McpEndpoint implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(McpEndpoint.class);
  /** Deadline of a tool's gRPC call, the client library's default; the server's maximum still applies. */
  private static final Duration DEADLINE = Duration.ofSeconds(10);

  private final Server inProcess;
  private final ManagedChannel channel;
  private final McpHttpServer http;

  private McpEndpoint(Server inProcess, ManagedChannel channel, McpHttpServer http) {
    this.inProcess = inProcess;
    this.channel = channel;
    this.http = http;
  }

  static McpEndpoint start(Settings s, Consumer<ServerBuilder<?>> apiStack, KeyVerifier verifier) throws IOException {
    String name = "context-memory-mcp-" + UUID.randomUUID();
    InProcessServerBuilder builder = InProcessServerBuilder.forName(name);
    apiStack.accept(builder);
    Server inProcess = builder.build().start();
    ManagedChannel channel = InProcessChannelBuilder.forName(name).directExecutor()
        .maxInboundMessageSize(16 * 1024 * 1024).build();
    McpHttpServer.KeyCheck keys = verifier == null ? null : authorization -> {
      try {
        verifier.verify(authorization);
        return null;
      } catch (UnauthenticatedException e) {
        return e.getMessage();
      }
    };
    try {
      McpHttpServer http = McpHttpServer.start(s.host(), s.mcpPort(), new Backend(channel, DEADLINE), keys,
          s.requestThreads(), McpStdio.version());
      SecuritySettings sec = s.security();
      if (verifier != null && !SecuritySettings.isLoopback(s.host())) {
        log.warn("the MCP endpoint serves plaintext HTTP: API keys cross the network in the clear unless a proxy"
            + " in front terminates TLS");
      }
      log.info("MCP (Streamable HTTP) on http://{}:{}{} ({})", s.host(), http.port(), McpHttpServer.ENDPOINT,
          sec.auth() == SecuritySettings.AuthMode.API_KEY ? "API keys as bearer tokens" : "no authentication");
      return new McpEndpoint(inProcess, channel, http);
    } catch (Exception e) {
      channel.shutdownNow();
      inProcess.shutdownNow();
      throw new IOException("could not serve MCP on port " + s.mcpPort() + ": " + e.getMessage(), e);
    }
  }

  int port() {
    return http.port();
  }

  /** Stops taking MCP requests; those in flight finish (Jetty waits for them, up to 5 s). */
  void stopAccepting() {
    http.close();
  }

  @Override
  public void close() {
    http.close();
    channel.shutdown();
    inProcess.shutdown();
    try {
      if (!inProcess.awaitTermination(5, TimeUnit.SECONDS)) {
        inProcess.shutdownNow();
      }
      channel.awaitTermination(1, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      inProcess.shutdownNow();
    }
  }
}

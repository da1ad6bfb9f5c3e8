package dev.contextmemory.mcp;

import io.grpc.ChannelCredentials;
import io.grpc.ClientInterceptors;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.TlsChannelCredentials;
import io.grpc.stub.MetadataUtils;
import io.modelcontextprotocol.json.McpJsonDefaults;
import io.modelcontextprotocol.server.McpSyncServer;
import io.modelcontextprotocol.server.transport.StdioServerTransportProvider;
import java.io.File;
import java.io.IOException;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * The MCP server over stdio, for an agent host that launches it as a subprocess
 * ({@code scripts/mcp}): JSON-RPC lines on stdin and stdout, logs on stderr only. It calls a
 * context-memory server over gRPC:
 *
 * <ul>
 *   <li>{@code CONTEXT_MEMORY_TARGET}: host:port of the server (default localhost:50051);
 *   <li>{@code CONTEXT_MEMORY_API_KEY}: the API key every call carries (none for a server
 *       without authentication);
 *   <li>{@code CONTEXT_MEMORY_TARGET_TLS=true}: TLS, trusting the JDK's certificate authorities,
 *       or {@code CONTEXT_MEMORY_TARGET_CA_FILE}: TLS trusting the PEM certificates in that file.
 * </ul>
 *
 * It exits when the host closes stdin.
 */
public final class McpStdio {
  /** Deadline of each tool's gRPC call, the client library's default. */
  static final Duration DEADLINE = Duration.ofSeconds(10);

  private McpStdio() {}

  public static void main(String[] args) throws IOException {
    ManagedChannel channel = channel(System.getenv());
    McpSyncServer server = ContextMemoryMcp.serve(new StdioServerTransportProvider(McpJsonDefaults.getMapper()),
        new Backend(keyed(channel, System.getenv("CONTEXT_MEMORY_API_KEY")), DEADLINE), version());
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      server.close();
      channel.shutdown();
      try {
        channel.awaitTermination(2, TimeUnit.SECONDS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }, "mcp-stdio-shutdown"));
    // The transport's stdin reader is a non-daemon thread: the JVM lives until stdin closes.
  }

  static ManagedChannel channel(Map<String, String> env) throws IOException {
    String target = env.getOrDefault("CONTEXT_MEMORY_TARGET", "localhost:50051").strip();
    String caFile = env.get("CONTEXT_MEMORY_TARGET_CA_FILE");
    ChannelCredentials credentials;
    if (caFile != null && !caFile.isBlank()) {
      credentials = TlsChannelCredentials.newBuilder().trustManager(new File(caFile.strip())).build();
    } else if ("true".equalsIgnoreCase(env.getOrDefault("CONTEXT_MEMORY_TARGET_TLS", "").strip())) {
      credentials = TlsChannelCredentials.create();
    } else {
      credentials = InsecureChannelCredentials.create();
    }
    return Grpc.newChannelBuilder(target, credentials)
        .userAgent("context-memory-mcp")
        .keepAliveTime(30, TimeUnit.SECONDS)
        .build();
  }

  private static io.grpc.Channel keyed(ManagedChannel channel, String apiKey) {
    if (apiKey == null || apiKey.isBlank()) {
      return channel;
    }
    Metadata headers = new Metadata();
    headers.put(Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER), "Bearer " + apiKey.strip());
    return ClientInterceptors.intercept(channel, MetadataUtils.newAttachHeadersInterceptor(headers));
  }

  /** The build's version, from the jar manifest when there is one. */
  public static String version() {
    String v = McpStdio.class.getPackage().getImplementationVersion();
    return v == null ? "dev" : v;
  }
}

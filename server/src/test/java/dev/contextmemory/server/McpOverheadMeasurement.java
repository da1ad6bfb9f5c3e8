package dev.contextmemory.server;

import dev.contextmemory.server.auth.Scope;
import dev.contextmemory.server.config.Database;
import dev.contextmemory.server.config.Settings;
import dev.contextmemory.server.store.ApiKeyStore;
import dev.contextmemory.server.store.AuditLog;
import dev.contextmemory.server.testing.TestDatabase;
import dev.contextmemory.server.testing.TestKeys;
import dev.contextmemory.v1.Channel;
import dev.contextmemory.v1.ContactKey;
import dev.contextmemory.v1.ConversationServiceGrpc;
import dev.contextmemory.v1.CustomerServiceGrpc;
import dev.contextmemory.v1.FetchContextRequest;
import dev.contextmemory.v1.GetOrCreateOpenConversationRequest;
import dev.contextmemory.v1.AppendMessagesRequest;
import dev.contextmemory.v1.Memory;
import dev.contextmemory.v1.MemoryKind;
import dev.contextmemory.v1.MemoryServiceGrpc;
import dev.contextmemory.v1.Message;
import dev.contextmemory.v1.MessageRole;
import dev.contextmemory.v1.UpsertCustomerRequest;
import dev.contextmemory.v1.UpsertMemoryRequest;
import io.grpc.ManagedChannel;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.modelcontextprotocol.client.McpClient;
import io.modelcontextprotocol.client.McpSyncClient;
import io.modelcontextprotocol.client.transport.HttpClientStreamableHttpTransport;
import io.modelcontextprotocol.spec.McpSchema;
import java.net.ServerSocket;
import java.net.http.HttpRequest;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;

/**
 * Not a test: what MCP adds to FetchContext (docs/mcp.md), run on demand with {@code scripts/test
 * -pl server -am -Dtest=McpOverheadMeasurement -Dmeasure.mcp=true -Dsurefire.failIfNoSpecifiedTests=false}.
 * One real server on Netty with the MCP endpoint and API keys; one customer with 20 messages and 30
 * memories. It alternates, one call at a time, a gRPC FetchContext over Netty and an MCP
 * fetch_context over Streamable HTTP (the Java SDK client) with the same arguments, so both see the
 * same machine load, and reports each one's p50/p99 and the difference. It asserts nothing about
 * time (the load test owns latency); it writes target/mcp/overhead.txt.
 */
class McpOverheadMeasurement {
  private static final int WARMUP = Integer.getInteger("measure.mcp.warmup", 1000);
  private static final int CALLS = Integer.getInteger("measure.mcp.calls", 3000);

  @Test
  @EnabledIfSystemProperty(named = "measure.mcp", matches = "true")
  void fetchContextOverMcpVersusGrpc() throws Exception {
    Map<String, String> env = new HashMap<>();
    env.put("CONTEXT_MEMORY_DB_URL", TestDatabase.create());
    env.put("CONTEXT_MEMORY_HOST", "127.0.0.1");
    try (ServerSocket s = new ServerSocket(0)) {
      env.put("CONTEXT_MEMORY_PORT", Integer.toString(s.getLocalPort()));
    }
    env.put("CONTEXT_MEMORY_MCP_PORT", "0");
    env.put("CONTEXT_MEMORY_AUTH", "api-key");
    env.put("CONTEXT_MEMORY_SHUTDOWN_GRACE_SECONDS", "1");
    env.put("CONTEXT_MEMORY_ACCESS_LOG_LEVEL", "OFF");
    ContextMemoryServer server = NettyTransport.serve(Settings.from(env));
    ManagedChannel channel = NettyChannelBuilder.forAddress("127.0.0.1", server.port()).usePlaintext().build();
    try {
      String key = new ApiKeyStore(Database.jdbi(server.pool()))
          .create("measure", "measure", EnumSet.of(Scope.READ, Scope.WRITE), null, AuditLog.CLI_ACTOR).key();
      var customers = TestKeys.withKey(CustomerServiceGrpc.newBlockingStub(channel), key);
      var conversations = TestKeys.withKey(ConversationServiceGrpc.newBlockingStub(channel), key);
      var memories = TestKeys.withKey(MemoryServiceGrpc.newBlockingStub(channel), key);
      String customerId = customers.upsertCustomer(UpsertCustomerRequest.newBuilder()
          .setContactKey(ContactKey.newBuilder().setPhone("+15550102030")).build()).getCustomer().getId();
      String conversationId = conversations.getOrCreateOpenConversation(GetOrCreateOpenConversationRequest.newBuilder()
          .setCustomerId(customerId).setChannel(Channel.CHANNEL_SMS).setThreadKey("t").build()).getConversation().getId();
      AppendMessagesRequest.Builder append = AppendMessagesRequest.newBuilder().setConversationId(conversationId);
      for (int i = 0; i < 20; i++) {
        append.addMessages(Message.newBuilder().setRole(i % 2 == 0 ? MessageRole.MESSAGE_ROLE_USER
            : MessageRole.MESSAGE_ROLE_ASSISTANT).setContent("message " + i + " about the parcel delivery"));
      }
      conversations.appendMessages(append.build());
      for (int i = 0; i < 30; i++) {
        memories.upsertMemory(UpsertMemoryRequest.newBuilder().setCustomerId(customerId).setMemory(Memory.newBuilder()
            .setKey("k" + i).setKind(MemoryKind.MEMORY_KIND_FACT)
            .setContent("Note " + i + (i % 3 == 0 ? " about parcel delivery" : " about billing"))).build());
      }
      FetchContextRequest grpcRequest = FetchContextRequest.newBuilder().setCustomerId(customerId)
          .setQueryText("parcel delivery").build();
      var tool = McpSchema.CallToolRequest.builder("fetch_context").arguments(Map.of("customer_id", customerId,
          "query_text", "parcel delivery")).build();
      var transport = HttpClientStreamableHttpTransport.builder("http://127.0.0.1:" + server.mcpPort())
          .endpoint("/mcp").requestBuilder(HttpRequest.newBuilder().header("Authorization", "Bearer " + key)).build();
      try (McpSyncClient mcp = McpClient.sync(transport).requestTimeout(Duration.ofSeconds(30)).build()) {
        mcp.initialize();
        long[] grpc = new long[CALLS];
        long[] viaMcp = new long[CALLS];
        for (int i = -WARMUP; i < CALLS; i++) {
          boolean mcpFirst = (i & 1) == 0;
          long a = mcpFirst ? timeMcp(mcp, tool) : timeGrpc(memories, grpcRequest);
          long b = mcpFirst ? timeGrpc(memories, grpcRequest) : timeMcp(mcp, tool);
          if (i >= 0) {
            viaMcp[i] = mcpFirst ? a : b;
            grpc[i] = mcpFirst ? b : a;
          }
        }
        Arrays.sort(grpc);
        Arrays.sort(viaMcp);
        String report = String.format(Locale.ROOT, "FetchContext, %d calls each after %d of warm-up, alternating:%n"
            + "  gRPC over Netty         p50 %.3f ms  p99 %.3f ms%n"
            + "  MCP over HTTP (Java SDK) p50 %.3f ms  p99 %.3f ms%n"
            + "  added by MCP            p50 %.3f ms  p99 %.3f ms%n", CALLS, WARMUP,
            ms(grpc, 0.50), ms(grpc, 0.99), ms(viaMcp, 0.50), ms(viaMcp, 0.99),
            ms(viaMcp, 0.50) - ms(grpc, 0.50), ms(viaMcp, 0.99) - ms(grpc, 0.99));
        Path out = Path.of("target", "mcp", "overhead.txt");
        Files.createDirectories(out.getParent());
        Files.writeString(out, report);
        System.out.print(report);
      }
    } finally {
      channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      server.close();
    }
  }

  private static long timeGrpc(MemoryServiceGrpc.MemoryServiceBlockingStub stub, FetchContextRequest request) {
    long t = System.nanoTime();
    stub.withDeadlineAfter(10, TimeUnit.SECONDS).fetchContext(request);
    return System.nanoTime() - t;
  }

  private static long timeMcp(McpSyncClient client, McpSchema.CallToolRequest request) {
    long t = System.nanoTime();
    var r = client.callTool(request);
    if (Boolean.TRUE.equals(r.isError())) {
      throw new AssertionError(r.content());
    }
    return System.nanoTime() - t;
  }

  private static double ms(long[] sorted, double q) {
    return sorted[Math.min(sorted.length - 1, (int) Math.ceil(q * sorted.length) - 1)] / 1e6;
  }
}

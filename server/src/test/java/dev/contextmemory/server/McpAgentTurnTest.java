package dev.contextmemory.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.contextmemory.server.auth.Scope;
import dev.contextmemory.server.config.Database;
import dev.contextmemory.server.config.Settings;
import dev.contextmemory.server.store.ApiKeyStore;
import dev.contextmemory.server.store.AuditLog;
import dev.contextmemory.server.testing.TestDatabase;
import io.modelcontextprotocol.client.McpClient;
import io.modelcontextprotocol.client.McpSyncClient;
import io.modelcontextprotocol.client.transport.HttpClientStreamableHttpTransport;
import io.modelcontextprotocol.client.transport.ServerParameters;
import io.modelcontextprotocol.client.transport.StdioClientTransport;
import io.modelcontextprotocol.json.McpJsonDefaults;
import io.modelcontextprotocol.spec.McpSchema;
import io.modelcontextprotocol.spec.McpSchema.CallToolResult;
import java.io.IOException;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ThreadLocalRandom;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.SerializationFeature;
import tools.jackson.databind.json.JsonMapper;

/**
 * The MCP tools through real MCP clients, the official Java SDK's: over Streamable HTTP against
 * the server's own endpoint (CONTEXT_MEMORY_MCP_PORT, API keys as bearer tokens), and over stdio
 * against {@code McpStdio} launched as a subprocess that calls the server on its Netty port. Each
 * runs one agent turn and checks every result; the tool listing is checked against
 * docs/mcp-tools.json.
 */
class McpAgentTurnTest {
  /** The golden tool listing; regenerate with -Dmcp.tools.update=true (docs/mcp.md). */
  private static final Path GOLDEN = Path.of("..", "docs", "mcp-tools.json");
  private static final JsonMapper JSON = JsonMapper.builder().enable(SerializationFeature.INDENT_OUTPUT).build();

  private static ContextMemoryServer server;
  private static String key;

  @BeforeAll
  static void start() throws IOException {
    Map<String, String> env = new HashMap<>();
    env.put("CONTEXT_MEMORY_DB_URL", TestDatabase.create());
    env.put("CONTEXT_MEMORY_DB_POOL_SIZE", "4");
    env.put("CONTEXT_MEMORY_HOST", "127.0.0.1");
    env.put("CONTEXT_MEMORY_PORT", Integer.toString(freePort()));
    env.put("CONTEXT_MEMORY_MCP_PORT", "0");
    env.put("CONTEXT_MEMORY_AUTH", "api-key");
    env.put("CONTEXT_MEMORY_HEALTH_CHECK_INTERVAL_MS", "200");
    env.put("CONTEXT_MEMORY_SHUTDOWN_GRACE_SECONDS", "1");
    server = NettyTransport.serve(Settings.from(env));
    key = new ApiKeyStore(Database.jdbi(server.pool()))
        .create("mcp-test", "mcp test", EnumSet.of(Scope.READ, Scope.WRITE), null, AuditLog.CLI_ACTOR).key();
  }

  @AfterAll
  static void stop() {
    if (server != null) {
      server.close();
    }
  }

  private static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket(0)) {
      return s.getLocalPort();
    }
  }

  private static McpSyncClient httpClient(String bearer) {
    HttpRequest.Builder request = HttpRequest.newBuilder();
    if (bearer != null) {
      request.header("Authorization", "Bearer " + bearer);
    }
    var transport = HttpClientStreamableHttpTransport.builder("http://127.0.0.1:" + server.mcpPort())
        .endpoint("/mcp").requestBuilder(request).build();
    return McpClient.sync(transport).requestTimeout(Duration.ofSeconds(30)).build();
  }

  @Test
  void agentTurnOverStreamableHttp() {
    try (McpSyncClient client = httpClient(key)) {
      client.initialize();
      agentTurn(client);
    }
  }

  @Test
  void agentTurnOverStdio() {
    String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
    ServerParameters params = ServerParameters.builder(java)
        // C1 only and the serial collector: the subprocess lives for one turn, so start-up is what counts.
        .args("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-cp", System.getProperty("java.class.path"),
            "dev.contextmemory.mcp.McpStdio")
        .addEnvVar("CONTEXT_MEMORY_TARGET", "127.0.0.1:" + server.port())
        .addEnvVar("CONTEXT_MEMORY_API_KEY", key)
        .build();
    try (McpSyncClient client = McpClient.sync(new StdioClientTransport(params, McpJsonDefaults.getMapper()))
        .requestTimeout(Duration.ofSeconds(30)).initializationTimeout(Duration.ofSeconds(60)).build()) {
      client.initialize();
      agentTurn(client);
    }
  }

  @Test
  void toolListingMatchesTheGoldenFile() throws IOException {
    try (McpSyncClient client = httpClient(key)) {
      client.initialize();
      String actual = JSON.writeValueAsString(client.listTools().tools()) + "\n";
      if (Boolean.getBoolean("mcp.tools.update")) {
        Files.writeString(GOLDEN, actual);
      }
      JsonNode expected = JSON.readTree(Files.readString(GOLDEN));
      if (!expected.equals(JSON.readTree(actual))) {
        Path out = Path.of("target", "mcp-tools.actual.json");
        Files.writeString(out, actual);
        throw new AssertionError("the MCP tool listing changed: diff docs/mcp-tools.json server/" + out
            + "; if the change is meant, regenerate with -Dmcp.tools.update=true (docs/mcp.md)");
      }
    }
  }

  @Test
  void httpWithoutAValidKeyIsRefusedWith401() throws Exception {
    HttpClient http = HttpClient.newHttpClient();
    String body = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{\"protocolVersion\":\"2025-06-18\","
        + "\"capabilities\":{},\"clientInfo\":{\"name\":\"t\",\"version\":\"1\"}}}";
    for (String authorization : new String[] {null, "Bearer cm_nosuchkey_0123456789abcdef0123456789abcdef"}) {
      HttpRequest.Builder b = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + server.mcpPort() + "/mcp"))
          .header("Content-Type", "application/json").header("Accept", "application/json, text/event-stream")
          .POST(HttpRequest.BodyPublishers.ofString(body));
      if (authorization != null) {
        b.header("Authorization", authorization);
      }
      HttpResponse<String> r = http.send(b.build(), HttpResponse.BodyHandlers.ofString());
      assertEquals(401, r.statusCode(), r.body());
      assertTrue(r.headers().firstValue("WWW-Authenticate").orElse("").startsWith("Bearer"));
      assertFalse(r.body().contains(key.substring(3)), "no secret echoed");
    }
  }

  @Test
  void aBrowserOriginIsRefused() throws Exception {
    HttpRequest request = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + server.mcpPort() + "/mcp"))
        .header("Content-Type", "application/json").header("Accept", "application/json, text/event-stream")
        .header("Authorization", "Bearer " + key).header("Origin", "http://evil.example")
        .POST(HttpRequest.BodyPublishers.ofString("{}")).build();
    assertEquals(403, HttpClient.newHttpClient().send(request, HttpResponse.BodyHandlers.ofString()).statusCode());
  }

  @Test
  void theKeysScopesAndTenantApply() {
    ApiKeyStore keys = new ApiKeyStore(Database.jdbi(server.pool()));
    String readOnly = keys.create("mcp-test", "read only", EnumSet.of(Scope.READ), null, AuditLog.CLI_ACTOR).key();
    String otherTenant = keys.create("mcp-other", "other", EnumSet.of(Scope.READ, Scope.WRITE), null,
        AuditLog.CLI_ACTOR).key();
    String customerId;
    try (McpSyncClient owner = httpClient(key)) {
      owner.initialize();
      customerId = (String) map(ok(owner, "upsert_customer_profile",
          Map.of("contact_key", Map.of("email", "scopes@example.com"))).get("customer")).get("id");
    }
    try (McpSyncClient reader = httpClient(readOnly)) {
      reader.initialize();
      ok(reader, "fetch_context", Map.of("customer_id", customerId));
      CallToolResult denied = reader.callTool(McpSchema.CallToolRequest.builder("remember").arguments(Map.of(
          "customer_id", customerId, "memory", Map.of("key", "k", "content", "c", "kind", "MEMORY_KIND_FACT"))).build());
      assertTrue(denied.isError());
      assertTrue(text(denied).contains("PERMISSION_DENIED") && text(denied).contains("will not help"), text(denied));
    }
    try (McpSyncClient stranger = httpClient(otherTenant)) {
      stranger.initialize();
      CallToolResult notFound = stranger.callTool(McpSchema.CallToolRequest.builder("fetch_context")
          .arguments(Map.of("customer_id", customerId)).build());
      assertTrue(notFound.isError());
      assertTrue(text(notFound).contains("NOT_FOUND") && !text(notFound).contains("scopes@example.com"),
          text(notFound));
      var e = org.junit.jupiter.api.Assertions.assertThrows(io.modelcontextprotocol.spec.McpError.class,
          () -> stranger.readResource(new McpSchema.ReadResourceRequest("contextmemory://customers/" + customerId, null)));
      assertEquals(McpSchema.ErrorCodes.RESOURCE_NOT_FOUND, e.getJsonRpcError().code());
    }
  }

  /** upsert profile, open conversation, append (and replay), remember, fetch context, confirm, hand off. */
  private static void agentTurn(McpSyncClient client) {
    String phone = "+1555" + (2_000_000 + ThreadLocalRandom.current().nextInt(7_999_999));
    Map<String, Object> upserted = ok(client, "upsert_customer_profile",
        Map.of("contact_key", Map.of("phone", phone), "customer", Map.of("display_name", "Ada Lovelace")));
    Map<String, Object> customer = map(upserted.get("customer"));
    assertEquals(true, upserted.get("created"));
    assertEquals(phone, customer.get("phone"));
    String customerId = (String) customer.get("id");

    Map<String, Object> opened = ok(client, "open_conversation",
        Map.of("customer_id", customerId, "channel", "CHANNEL_SMS", "thread_key", phone));
    assertEquals(true, opened.get("created"));
    String conversationId = (String) map(opened.get("conversation")).get("id");
    Map<String, Object> reopened = ok(client, "open_conversation",
        Map.of("customer_id", customerId, "channel", "CHANNEL_SMS", "thread_key", phone));
    assertEquals(conversationId, map(reopened.get("conversation")).get("id"));

    Map<String, Object> append = Map.of("conversation_id", conversationId, "messages", List.of(Map.of(
        "role", "MESSAGE_ROLE_USER", "idempotency_key", "sms-1",
        "content", "Please leave my parcels with the neighbour at number 12 from now on")));
    Map<String, Object> appended = ok(client, "append_messages", append);
    assertEquals(1, appended.get("created_count"));
    Map<String, Object> replayed = ok(client, "append_messages", append);
    assertEquals(true, map(list(replayed.get("results")).getFirst()).get("replayed"));
    assertEquals(map(list(appended.get("results")).getFirst()).get("message_id"),
        map(list(replayed.get("results")).getFirst()).get("message_id"));

    Map<String, Object> remembered = ok(client, "remember", Map.of("customer_id", customerId, "memory", Map.of(
        "key", "delivery_preference", "kind", "MEMORY_KIND_PREFERENCE", "conversation_id", conversationId,
        "content", "Wants parcels left with the neighbour at number 12.")));
    assertEquals(true, remembered.get("created"));
    String memoryId = (String) map(remembered.get("memory")).get("id");

    Map<String, Object> context = ok(client, "fetch_context",
        Map.of("customer_id", customerId, "query_text", "parcels neighbour"));
    assertEquals(customerId, map(context.get("customer")).get("id"));
    assertEquals(conversationId, map(context.get("conversation")).get("id"));
    List<Object> messages = list(context.get("recent_messages"));
    assertEquals(1, messages.size());
    assertTrue(((String) map(messages.getFirst()).get("content")).contains("neighbour"));
    Map<String, Object> top = map(list(context.get("memories")).getFirst());
    assertEquals(memoryId, map(top.get("memory")).get("id"));
    assertTrue(((Number) map(top.get("breakdown")).get("relevance")).doubleValue() > 0, "ranked by the words");

    Map<String, Object> confirmed = ok(client, "confirm_memories", Map.of("confirmations",
        List.of(Map.of("memory_id", memoryId, "outcome", "CONFIRMATION_OUTCOME_CONFIRMED"))));
    Map<String, Object> result = map(list(confirmed.get("results")).getFirst());
    assertEquals("CONFIRMATION_EFFECT_CONFIRMED", result.get("effect"));
    assertEquals(1, map(result.get("memory")).get("confirm_count"));

    Map<String, Object> handoff = map(ok(client, "request_handoff", Map.of("conversation_id", conversationId,
        "reason", "asks for a human about the neighbour", "priority", 5)).get("handoff"));
    assertEquals("HANDOFF_STATE_REQUESTED", handoff.get("state"));
    assertEquals(conversationId, handoff.get("conversation_id"));
    CallToolResult twice = client.callTool(McpSchema.CallToolRequest.builder("request_handoff").arguments(
        Map.of("conversation_id", conversationId, "reason", "again")).build());
    assertTrue(twice.isError() && text(twice).contains("HANDOFF_ALREADY_REQUESTED"), text(twice));

    // A bad argument: the server's field violation, as a sentence naming the argument.
    CallToolResult bad = client.callTool(McpSchema.CallToolRequest.builder("append_messages").arguments(
        Map.of("conversation_id", "not-a-uuid", "messages", List.of(Map.of("role", "MESSAGE_ROLE_USER", "content", "x"))))
        .build());
    assertTrue(bad.isError());
    String sentence = text(bad);
    assertTrue(sentence.contains("`conversation_id`") && sentence.contains("INVALID_ARGUMENT")
        && sentence.contains("call append_messages again"), sentence);
    assertFalse(sentence.contains("Exception") || sentence.contains("\tat "), sentence);

    // The transcript as a resource.
    var transcript = client.readResource(new McpSchema.ReadResourceRequest("contextmemory://conversations/" + conversationId, null));
    String json = ((McpSchema.TextResourceContents) transcript.contents().getFirst()).text();
    assertTrue(json.contains("neighbour at number 12") && json.contains(conversationId), json);
  }

  private static Map<String, Object> ok(McpSyncClient client, String tool, Map<String, Object> arguments) {
    CallToolResult r = client.callTool(McpSchema.CallToolRequest.builder(tool).arguments(arguments).build());
    assertFalse(Boolean.TRUE.equals(r.isError()), () -> tool + " failed: " + text(r));
    assertNotNull(r.structuredContent(), tool);
    return map(r.structuredContent());
  }

  private static String text(CallToolResult r) {
    return ((McpSchema.TextContent) r.content().getFirst()).text();
  }

  @SuppressWarnings("unchecked")
  private static Map<String, Object> map(Object o) {
    return (Map<String, Object>) o;
  }

  @SuppressWarnings("unchecked")
  private static List<Object> list(Object o) {
    return (List<Object>) o;
  }
}

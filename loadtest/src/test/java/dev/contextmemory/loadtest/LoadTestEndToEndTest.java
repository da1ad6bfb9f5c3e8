package dev.contextmemory.loadtest;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonElement;
import com.google.gson.JsonParser;
import dev.contextmemory.loadtest.data.DataSet;
import dev.contextmemory.loadtest.data.Setup;
import dev.contextmemory.loadtest.report.Outcome;
import dev.contextmemory.loadtest.report.RunReport;
import com.google.protobuf.Struct;
import com.google.protobuf.Value;
import dev.contextmemory.server.testing.TestServer;
import dev.contextmemory.v1.ContactKey;
import dev.contextmemory.v1.ConversationServiceGrpc;
import dev.contextmemory.v1.ConversationStatus;
import dev.contextmemory.v1.CustomerServiceGrpc;
import dev.contextmemory.v1.LookupCustomerRequest;
import dev.contextmemory.v1.ListConversationsRequest;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The whole harness, profile smoke, against the real server (in-process transport) and a real
 * PostgreSQL. Latency targets are scaled out of reach of any machine (x1000): this test checks
 * that every scenario runs cleanly, is judged, and is reported, not how fast this machine is.
 */
class LoadTestEndToEndTest {
  private static TestServer server;
  private static RunReport report;
  private static String log;

  @BeforeAll
  static void run() throws Exception {
    server = TestServer.start(Map.of("DB_POOL_SIZE", "4", "METRICS_PORT", "0"));
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    LoadTest test = new LoadTest(Profile.named("smoke"), Targets.adjusted("full", 1000, List.of()), Set.of(), 42,
        new PrintStream(out, true, StandardCharsets.UTF_8));
    report = test.run(new LoadTest.Environment(server.channel(), server.dbUrl(), true, "default", "in-process", null,
        java.net.URI.create("http://127.0.0.1:" + server.server().observability().metricsPort() + "/metrics")));
    log = out.toString(StandardCharsets.UTF_8);
  }

  @AfterAll
  static void stop() {
    if (server != null) {
      server.close();
    }
  }

  private static Outcome outcome(String name) {
    return report.outcomes().stream().filter(o -> o.name().equals(name)).findFirst().orElseThrow();
  }

  private static boolean memoryServiceLanded() {
    return !log.contains("MemoryService/UpsertMemory");
  }

  @Test
  void eachScenarioHasTheServersOwnHistogramOfItsRpcs() {
    var append = report.serverLatency().get("append_message");
    assertNotNull(append, report.serverLatency().toString());
    assertEquals(1, append.size());
    var latency = append.getFirst();
    assertEquals("contextmemory.v1.ConversationService/AppendMessage", latency.method());
    // Every call the harness made in the measured run reached the server's histogram, no more.
    assertEquals(outcome("append_message").summary().requests() - outcome("append_message").summary().errors(),
        latency.calls());
    assertTrue(latency.p50Ms() > 0 && latency.p50Ms() <= latency.p99Ms(), latency.toString());
    assertTrue(latency.after().contains("le=\"+Inf\""), latency.after());
    String html = dev.contextmemory.loadtest.report.Html.render(report);
    assertTrue(html.contains("Server side") && html.contains("server-metrics/append_message.after.prom"), html);
  }

  @Test
  void theTransportFloorIsTimedAfterAWarmUpOfEveryScenario() {
    assertTrue(log.contains("warm-up: every selected scenario once"), log);
    assertNotNull(report.transportFloor(), log);
    assertTrue(report.transportFloor().startsWith("gRPC Health/Check (no database) at "), report.transportFloor());
  }

  @Test
  void everyScenarioIsReportedInTheIssuesOrder() {
    assertEquals(Targets.SCENARIOS, report.outcomes().stream().map(Outcome::name).toList());
    assertTrue(report.passed(), log);
  }

  @Test
  void conversationScenariosRunCleanlyWithTheirFloors() {
    for (String name : List.of("append_message", "append_messages_100", "list_messages_20", "search_messages",
        "list_conversations_customer", "list_conversations_open", "list_conversations_metadata")) {
      Outcome o = outcome(name);
      assertEquals(Outcome.Status.PASSED, o.status(), name + ": " + o.verdicts() + "\n" + log);
      assertTrue(o.summary().requests() > 0, name);
      assertEquals(0, o.summary().errors(), name + ": " + o.summary().errorSamples());
      assertNotNull(o.baseline(), name + " has its SQL floor");
      assertTrue(o.baseline().iterations() > 0 && o.baseline().p99Ms() >= o.baseline().p50Ms());
      assertNotNull(o.capacity(), "smoke searches capacity too");
      assertNull(o.recallAt10());
    }
  }

  @Test
  void theSameStatementFloorsRunTheServersStatementsAtTheScenariosRate() {
    List<String> expected = memoryServiceLanded()
        ? List.of("append_message", "list_messages_20", "search_memories_customer", "search_memories_tenant")
        : List.of("append_message", "list_messages_20");
    assertEquals(expected, List.copyOf(report.sameStatement().keySet()), log);
    for (var e : report.sameStatement().entrySet()) {
      assertTrue(e.getValue().iterations() > 0 && e.getValue().p99Ms() >= e.getValue().p50Ms(), e.toString());
    }
    assertTrue(log.contains("same-statement floor: append_message"), log);
  }

  @Test
  void memoryScenariosRunOrAreSkippedBecauseTheirServiceIsNotThereYet() {
    for (String name : List.of("search_memories_customer", "search_memories_tenant", "fetch_context", "agent_turn")) {
      Outcome o = outcome(name);
      if (memoryServiceLanded()) {
        assertEquals(Outcome.Status.PASSED, o.status(), name + ": " + o.verdicts() + " " + o.note());
        assertEquals(0, o.summary().errors(), name + ": " + o.summary().errorSamples());
      } else {
        assertEquals(Outcome.Status.SKIPPED, o.status(), name);
        assertTrue(o.note().contains("UNIMPLEMENTED"), o.note());
      }
    }
    if (memoryServiceLanded()) {
      for (String name : List.of("search_memories_customer", "search_memories_tenant")) {
        Double recall = outcome(name).recallAt10();
        assertNotNull(recall, name);
        assertTrue(recall > 0 && recall <= 1, name + " recall " + recall);
      }
      assertEquals(5, outcome("agent_turn").run().steps().size());
    }
  }

  @Test
  void theConversationLookupsHaveTheirDataShape() {
    DataSet data = new DataSet(Profile.named("smoke").sizes(), 42);
    var conversations = ConversationServiceGrpc.newBlockingStub(server.channel());
    String regular = CustomerServiceGrpc.newBlockingStub(server.channel()).lookupCustomer(
        LookupCustomerRequest.newBuilder().setContactKey(ContactKey.newBuilder().setExternalRef(data.externalRef(0)))
            .build()).getCustomer().getId();
    var all = conversations.listConversations(ListConversationsRequest.newBuilder().setCustomerId(regular)
        .setPageSize(1000).build()).getConversationsList();
    long closed = all.stream().filter(c -> c.getStatus() == ConversationStatus.CONVERSATION_STATUS_CLOSED).count();
    assertEquals(DataSet.CLOSED_PER_REGULAR, closed, "a regular's closed history");
    assertEquals(data.sizes().conversationsPerCustomer(), all.size() - closed, "and its open conversations");
    // Every conversation of the data set is in exactly one shop, found by the tenant-wide metadata query.
    int inShops = 0;
    for (int shop = 0; shop < DataSet.SHOPS; shop++) {
      inShops += conversations.listConversations(ListConversationsRequest.newBuilder().setPageSize(1000)
          .setMetadataFilter(Struct.newBuilder().putFields("shop_id",
              Value.newBuilder().setStringValue(Integer.toString(shop)).build())).build()).getConversationsCount();
    }
    assertEquals(data.sizes().conversations() + data.regulars() * DataSet.CLOSED_PER_REGULAR, inShops);
  }

  @Test
  void aSecondSetUpFindsEverythingAndWritesNothing() {
    DataSet data = new DataSet(Profile.named("smoke").sizes(), 42);
    PrintStream quiet = new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8);
    Setup setup = new Setup(server.channel(), data, 4, Duration.ofSeconds(10), quiet, null);
    Setup.Result first = setup.run(true, memoryServiceLanded());
    Setup.Result again = setup.run(true, memoryServiceLanded());
    for (Setup.Phase p : again.phases()) {
      assertEquals(0, p.written(), "phase " + p.name() + " wrote again");
    }
    assertArrayEquals(first.customerIds(), again.customerIds());
    assertArrayEquals(first.conversationIds(), again.conversationIds());
    if (memoryServiceLanded()) {
      assertArrayEquals(first.memoryIds(), again.memoryIds());
    }
  }

  @Test
  void reportsAreWritten(@TempDir Path dir) throws Exception {
    ByteArrayOutputStream console = new ByteArrayOutputStream();
    LoadTest.writeReports(report, dir, new PrintStream(console, true, StandardCharsets.UTF_8));
    var json = JsonParser.parseString(Files.readString(dir.resolve("report.json"))).getAsJsonObject();
    assertEquals("smoke", json.get("profile").getAsString());
    List<String> names = json.getAsJsonArray("scenarios").asList().stream()
        .map(JsonElement::getAsJsonObject).map(o -> o.get("name").getAsString()).toList();
    assertEquals(Targets.SCENARIOS, names);
    assertTrue(Files.readString(dir.resolve("report.html")).contains("append_messages_100"));
    String table = console.toString(StandardCharsets.UTF_8);
    assertTrue(table.contains("RESULT: PASSED"), table);
    assertTrue(table.contains("server vs database floor"), table);
  }
}

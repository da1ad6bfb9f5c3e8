package dev.contextmemory.server;

import dev.contextmemory.server.testing.RawBytes;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.contextmemory.server.config.Settings;
import dev.contextmemory.server.testing.Scrape;
import dev.contextmemory.server.testing.TestDatabase;
import dev.contextmemory.v1.AppendMessageRequest;
import dev.contextmemory.v1.Channel;
import dev.contextmemory.v1.Conversation;
import dev.contextmemory.v1.ConversationServiceGrpc;
import dev.contextmemory.v1.CreateCustomerRequest;
import dev.contextmemory.v1.Customer;
import dev.contextmemory.v1.CustomerServiceGrpc;
import dev.contextmemory.v1.GetCustomerRequest;
import dev.contextmemory.v1.GetOrCreateOpenConversationRequest;
import dev.contextmemory.v1.Message;
import dev.contextmemory.v1.MessageRole;
import io.grpc.CallOptions;
import io.grpc.ManagedChannel;
import io.grpc.MethodDescriptor;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.stub.ClientCalls;
import io.grpc.Status.Code;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;

/**
 * The Prometheus endpoint of a real server on Netty (so message sizes are measured as in
 * production): scraped before and after real calls, its samples must move exactly as the calls
 * did.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class MetricsEndpointTest {
  private static final String CREATE = "contextmemory.v1.CustomerService/CreateCustomer";
  private static final String GET = "contextmemory.v1.CustomerService/GetCustomer";
  private static final String DURATION = "contextmemory_rpc_server_duration_seconds";

  private static String dbUrl;
  private static ContextMemoryServer server;
  private static ManagedChannel channel;
  private static CustomerServiceGrpc.CustomerServiceBlockingStub customers;
  private static int metricsPort;

  @BeforeAll
  static void start() throws Exception {
    dbUrl = TestDatabase.create();
    Settings s = Settings.from(Map.of(
        "CONTEXT_MEMORY_DB_URL", dbUrl,
        "CONTEXT_MEMORY_HOST", "127.0.0.1",
        "CONTEXT_MEMORY_AUTH", "none", // this test is about metrics, AuthenticationTest about keys
        // One connection, so the test can take it and see the pool's waiters and timeouts.
        "CONTEXT_MEMORY_DB_POOL_SIZE", "1",
        "CONTEXT_MEMORY_DB_CONNECTION_TIMEOUT_MS", "250",
        // Longer than the cancel test's deadline, so the deadline (not lock_timeout) ends the wait.
        "CONTEXT_MEMORY_DB_LOCK_TIMEOUT_MS", "10000",
        "CONTEXT_MEMORY_HEALTH_CHECK_INTERVAL_MS", "500",
        "CONTEXT_MEMORY_SHUTDOWN_GRACE_SECONDS", "5",
        // No periodic sweep between the scrapes that count the test's own sweep round.
        "CONTEXT_MEMORY_MEMORY_SWEEP_INTERVAL_MS", "3600000",
        "CONTEXT_MEMORY_METRICS_PORT", "0"));
    server = ContextMemoryServer.start(s, NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0)));
    channel = NettyChannelBuilder.forAddress("127.0.0.1", server.port()).usePlaintext().build();
    customers = CustomerServiceGrpc.newBlockingStub(channel).withDeadlineAfter(30, TimeUnit.SECONDS);
    metricsPort = server.observability().metricsPort();
  }

  @AfterAll
  static void stop() {
    channel.shutdownNow();
    server.close();
  }

  @Test
  void rpcCountsLatencyAndSizesMoveWithTheCalls() throws Exception {
    Scrape before = Scrape.of(metricsPort);
    createCustomer("+1555" + (2000000 + (int) (Math.random() * 7000000)));
    createCustomer(null);
    StatusRuntimeException notFound = assertThrows(StatusRuntimeException.class, () -> customers.getCustomer(
        GetCustomerRequest.newBuilder().setCustomerId(UUID.randomUUID().toString()).build()));
    assertEquals(Code.NOT_FOUND, notFound.getStatus().getCode());
    StatusRuntimeException invalid = assertThrows(StatusRuntimeException.class, () -> createCustomer("not a phone"));
    assertEquals(Code.INVALID_ARGUMENT, invalid.getStatus().getCode());

    Scrape after = Scrape.of(metricsPort);
    assertEquals(2, delta(before, after, DURATION + "_count", "method", CREATE, "code", "OK"), after::text);
    assertEquals(1, delta(before, after, DURATION + "_count", "method", CREATE, "code", "INVALID_ARGUMENT"));
    assertEquals(1, delta(before, after, DURATION + "_count", "method", GET, "code", "NOT_FOUND"));
    // The histogram resolves 0.5 ms to 100 ms: those bounds are buckets, and every call is <= +Inf.
    assertTrue(after.has(DURATION + "_bucket", "method", CREATE, "code", "OK", "le", "5.0E-4")
        || after.has(DURATION + "_bucket", "method", CREATE, "code", "OK", "le", "0.0005"), after::text);
    assertTrue(after.has(DURATION + "_bucket", "method", CREATE, "code", "OK", "le", "0.1"), after::text);
    assertEquals(2, after.value(DURATION + "_bucket", "method", CREATE, "code", "OK", "le", "+Inf"));
    // Netty reports every message's size: three CreateCustomer requests and two responses with a body.
    assertEquals(3, delta(before, after, "contextmemory_rpc_server_request_bytes_count", "method", CREATE));
    assertTrue(delta(before, after, "contextmemory_rpc_server_request_bytes_sum", "method", CREATE) > 30);
    assertEquals(2, delta(before, after, "contextmemory_rpc_server_response_bytes_count", "method", CREATE));
    assertEquals(0, after.value("contextmemory_rpc_server_in_flight", "method", CREATE));
    writeExcerpt(after);
  }

  @Test
  void aMethodTheServerDoesNotImplementIsCountedAsOtherSoCallersCannotAddLabels() throws Exception {
    MethodDescriptor.Marshaller<byte[]> bytes = RawBytes.MARSHALLER;
    String made = "contextmemory.v1.CustomerService/NoSuchMethod" + UUID.randomUUID().toString().substring(0, 8);
    Scrape before = Scrape.of(metricsPort);
    StatusRuntimeException e = assertThrows(StatusRuntimeException.class, () -> ClientCalls.blockingUnaryCall(
        channel, MethodDescriptor.<byte[], byte[]>newBuilder().setType(MethodDescriptor.MethodType.UNARY)
            .setFullMethodName(made).setRequestMarshaller(bytes).setResponseMarshaller(bytes).build(),
        CallOptions.DEFAULT.withDeadlineAfter(10, TimeUnit.SECONDS), new byte[0]));
    assertEquals(Code.UNIMPLEMENTED, e.getStatus().getCode());
    HealthGrpc.newBlockingStub(channel).check(HealthCheckRequest.getDefaultInstance());
    Scrape after = Scrape.of(metricsPort);
    assertEquals(1, delta(before, after, DURATION + "_count", "method", "other", "code", "UNIMPLEMENTED"), after::text);
    assertFalse(after.text().contains("NoSuchMethod"));
    assertEquals(1, delta(before, after, DURATION + "_count", "method", "grpc.health.v1.Health/Check", "code", "OK"));
  }

  @Test
  void poolTimeoutsAreCountedWithTheirSqlstateClass() throws Exception {
    // (HikariCP refreshes its active/idle/pending gauges at most once a second, so this test
    // checks the timeout counter, which moves at once.)
    // Take the pool's only connection: the next call waits for it, then answers RESOURCE_EXHAUSTED.
    Scrape before = Scrape.of(metricsPort);
    assertEquals(1, before.value("hikaricp_connections_max", "pool", "context-memory"), before::text);
    try (Connection held = server.pool().getConnection()) {
      StatusRuntimeException e = assertThrows(StatusRuntimeException.class, () -> createCustomer(null));
      assertEquals(Code.RESOURCE_EXHAUSTED, e.getStatus().getCode(), e::toString);
    }
    Scrape after = Scrape.of(metricsPort);
    assertTrue(delta(before, after, "hikaricp_connections_timeout_total", "pool", "context-memory") >= 1, after::text);
    assertEquals(1, delta(before, after, "contextmemory_db_errors_total", "sqlstate_class", "none"), after::text);
    assertTrue(delta(before, after, DURATION + "_count", "method", CREATE, "code", "RESOURCE_EXHAUSTED") >= 1);
  }

  @Test
  void aStatementCancelledByTheDeadlineIsCounted() throws Exception {
    String customerId = createCustomer(null).getId();
    var conversations = ConversationServiceGrpc.newBlockingStub(channel).withDeadlineAfter(30, TimeUnit.SECONDS);
    Conversation c = conversations.getOrCreateOpenConversation(GetOrCreateOpenConversationRequest.newBuilder()
        .setCustomerId(customerId).setChannel(Channel.CHANNEL_SMS).setThreadKey("t").build()).getConversation();
    Scrape before = Scrape.of(metricsPort);
    // Hold the conversation's row lock: the append waits on it until its deadline cancels it. (The
    // deadline leaves a loaded machine time to start the statement, so it is cancelled running.)
    try (Connection lock = DriverManager.getConnection(dbUrl)) {
      lock.setAutoCommit(false);
      try (PreparedStatement ps = lock.prepareStatement("SELECT 1 FROM conversations WHERE id = ?::uuid FOR UPDATE")) {
        ps.setString(1, c.getId());
        ps.executeQuery().close();
      }
      StatusRuntimeException e = assertThrows(StatusRuntimeException.class, () -> ConversationServiceGrpc
          .newBlockingStub(channel).withDeadlineAfter(2, TimeUnit.SECONDS)
          .appendMessage(AppendMessageRequest.newBuilder().setConversationId(c.getId()).setMessage(
              Message.newBuilder().setRole(MessageRole.MESSAGE_ROLE_USER).setContent("waits")).build()));
      assertEquals(Code.DEADLINE_EXCEEDED, e.getStatus().getCode());
      Scrape after = awaitScrape(s -> s.value("contextmemory_db_statement_cancels_total", "when", "running")
          > before.value("contextmemory_db_statement_cancels_total", "when", "running")
          && s.value("contextmemory_db_errors_total", "sqlstate_class", "57")
          > before.value("contextmemory_db_errors_total", "sqlstate_class", "57"));
      assertEquals(1, delta(before, after, "contextmemory_db_errors_total", "sqlstate_class", "57"));
      lock.rollback();
    }
  }

  @Test
  void databaseSweeperExecutorAndJvmAreExposed() throws InterruptedException {
    Scrape before = Scrape.of(metricsPort);
    server.sweeper().sweep();
    server.usageRollup().refresh();
    Scrape after = Scrape.of(metricsPort);
    assertEquals(1, delta(before, after, "contextmemory_sweeper_rounds_total"));
    assertEquals(1, delta(before, after, "contextmemory_usage_rollup_refreshes_total"));
    assertTrue(after.has("contextmemory_usage_rollup_failures_total"));
    assertEquals(1, after.value("contextmemory_db_health_serving"), after::text);
    assertTrue(after.has("contextmemory_db_health_transitions_total"));
    assertTrue(after.has("contextmemory_sweeper_deleted_total"));
    // The sequencer's one-second fallback pass runs whether or not anything was written.
    Scrape later = awaitScrape(s -> s.value("contextmemory_watch_sequencer_passes_total")
        > after.value("contextmemory_watch_sequencer_passes_total"));
    assertTrue(later.value("contextmemory_watch_sequencer_passes_total") >= 1, later::text);
    assertTrue(after.has("executor_queued_tasks", "name", "grpc-request"), after::text);
    assertTrue(after.has("contextmemory_executor_rejected_total", "name", "grpc-request"), after::text);
    assertTrue(after.has("hikaricp_connections_pending", "pool", "context-memory"));
    assertTrue(after.has("hikaricp_connections_idle", "pool", "context-memory"));
    assertTrue(after.has("hikaricp_connections_acquire_seconds_count", "pool", "context-memory"));
    assertTrue(after.sum("jvm_memory_used_bytes", "area", "heap") > 0, after::text);
    assertTrue(after.value("jvm_threads_live_threads") > 0);
    assertTrue(after.text().contains("jvm_gc_"), "GC meters");
  }

  /**
   * The dashboard and the alerts query only what the server exposes (run last: some series exist
   * only once the other tests made a call fail).
   */
  @Test
  @Order(Integer.MAX_VALUE)
  void theDashboardAndAlertsUseOnlyExposedMetrics() throws Exception {
    System.gc(); // jvm_gc_pause_seconds appears with the first collection
    Thread.sleep(200);
    Scrape scrape = Scrape.of(metricsPort);
    Path docs = Path.of("..", "docs", "observability");
    String dashboard = Files.readString(docs.resolve("dashboard.json"));
    com.google.gson.JsonObject json = com.google.gson.JsonParser.parseString(dashboard).getAsJsonObject();
    assertTrue(json.getAsJsonArray("panels").size() >= 10, "a dashboard with its panels");
    TreeSet<String> missing = new TreeSet<>();
    Pattern metric = Pattern.compile("\\b((?:contextmemory|hikaricp|executor|jvm)_[a-z0-9_]+)");
    for (String file : new String[] {dashboard, Files.readString(docs.resolve("alerts.yml"))}) {
      Matcher m = metric.matcher(file);
      while (m.find()) {
        String name = m.group(1);
        if (!scrape.text().contains("\n" + name + "{") && !scrape.text().contains("\n" + name + " ")) {
          missing.add(name);
        }
      }
    }
    assertTrue(missing.isEmpty(), () -> "not exposed by the server: " + missing);
  }

  private static Customer createCustomer(String phone) {
    Customer.Builder c = Customer.newBuilder().setDisplayName("Metrics");
    if (phone != null) {
      c.setPhone(phone);
    }
    return customers.createCustomer(CreateCustomerRequest.newBuilder().setCustomer(c).build()).getCustomer();
  }

  private static double delta(Scrape before, Scrape after, String name, String... labels) {
    return after.value(name, labels) - before.value(name, labels);
  }

  private static Scrape awaitScrape(Predicate<Scrape> done) throws InterruptedException {
    long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    Scrape s = Scrape.of(metricsPort);
    while (!done.test(s)) {
      if (System.nanoTime() > end) {
        throw new AssertionError("the samples did not move within 10 s:\n" + s.text());
      }
      Thread.sleep(50);
      s = Scrape.of(metricsPort);
    }
    return s;
  }

  /** The excerpt the closing note quotes: target/observability/scrape-excerpt.txt. */
  private static void writeExcerpt(Scrape s) throws Exception {
    Path out = Path.of("target", "observability", "scrape-excerpt.txt");
    Files.createDirectories(out.getParent());
    Files.writeString(out, s.excerpt(DURATION + "_count", DURATION + "_bucket{code=\"OK\",method=\"" + CREATE,
        "contextmemory_", "hikaricp_connections", "executor_queued", "jvm_memory_used_bytes{area=\"heap\""));
  }
}

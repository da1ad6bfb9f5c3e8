package dev.contextmemory.server;

import static dev.contextmemory.server.testing.GrpcErrors.assertError;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.rpc.ErrorInfo;
import dev.contextmemory.server.testing.GrpcErrors;
import dev.contextmemory.server.testing.TestServer;
import dev.contextmemory.v1.*;
import io.grpc.Status.Code;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.protobuf.StatusProto;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/**
 * One locked row must not starve unrelated calls or the health check (issue 12, item 1): the
 * issue's scenario, and the bounds it is made of (lock timeout, connection wait within the
 * deadline, server maximum deadline).
 */
class OverloadTest {

  private static Message user(String text) {
    return Message.newBuilder().setRole(MessageRole.MESSAGE_ROLE_USER).setContent(text).build();
  }

  private static Connection lockConversation(String dbUrl, String conversationId) throws SQLException {
    Connection c = DriverManager.getConnection(dbUrl);
    c.setAutoCommit(false);
    try (PreparedStatement ps = c.prepareStatement("SELECT 1 FROM conversations WHERE id = ? FOR UPDATE")) {
      ps.setObject(1, UUID.fromString(conversationId));
      ps.executeQuery().close();
    }
    return c;
  }

  private static long backendsWaitingOnALock(String dbUrl) {
    try (Connection c = DriverManager.getConnection(dbUrl);
        var rs = c.createStatement().executeQuery("SELECT count(*) FROM pg_stat_activity"
            + " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            + " AND wait_event IN ('transactionid', 'tuple')")) {
      rs.next();
      return rs.getLong(1);
    } catch (SQLException e) {
      throw new IllegalStateException(e);
    }
  }

  private static String reason(StatusRuntimeException e) {
    var s = StatusProto.fromThrowable(e);
    return s == null ? "" : GrpcErrors.detail(s, ErrorInfo.class).map(ErrorInfo::getReason).orElse("");
  }

  private record Fixture(Customer customer, Conversation conversation) {}

  private static Fixture fixture(TestServer s) {
    var customers = CustomerServiceGrpc.newBlockingStub(s.channel());
    var conversations = ConversationServiceGrpc.newBlockingStub(s.channel());
    Customer c = customers.createCustomer(CreateCustomerRequest.newBuilder()
        .setCustomer(Customer.newBuilder().setDisplayName("Overload")).build()).getCustomer();
    Conversation conv = conversations.getOrCreateOpenConversation(GetOrCreateOpenConversationRequest.newBuilder()
        .setCustomerId(c.getId()).setChannel(Channel.CHANNEL_WEB).setThreadKey("t").build()).getConversation();
    return new Fixture(c, conv);
  }

  /**
   * The scenario: pool 4, 8 request threads, a row lock held 10 s by a JDBC client, 16
   * appends to that conversation (30 s deadlines), and every 250 ms a Health/Check (1 s deadline)
   * and a GetCustomer (3 s deadline). Before: health timed out for seconds in a row and GetCustomer
   * too. Now health always answers SERVING, GetCustomer succeeds or is turned away with
   * RESOURCE_EXHAUSTED, and no call runs into its deadline.
   */
  @Test
  void aLockedRowStarvesNeitherHealthNorUnrelatedCalls() throws Exception {
    // REQUEST_QUEUE 8: the production default for 8 request threads (TestServer sets a deeper one).
    try (TestServer s = TestServer.start(Map.of("DB_POOL_SIZE", "4", "REQUEST_THREADS", "8", "REQUEST_QUEUE", "8"))) {
      Fixture f = fixture(s);
      var conversations = ConversationServiceGrpc.newBlockingStub(s.channel());
      var customers = CustomerServiceGrpc.newBlockingStub(s.channel());
      var health = HealthGrpc.newBlockingStub(s.channel());
      ExecutorService appenders = Executors.newFixedThreadPool(16);
      ExecutorService probes = Executors.newFixedThreadPool(4);
      Map<String, AtomicInteger> appendOutcomes = new ConcurrentHashMap<>();
      Map<String, AtomicInteger> getOutcomes = new ConcurrentHashMap<>();
      List<Long> healthMillis = Collections.synchronizedList(new ArrayList<>());
      List<String> healthFailures = Collections.synchronizedList(new ArrayList<>());
      List<Future<?>> work = new ArrayList<>();
      Connection locker = lockConversation(s.dbUrl(), f.conversation().getId());
      try {
        for (int i = 0; i < 16; i++) {
          int n = i;
          work.add(appenders.submit(() -> {
            String outcome;
            try {
              conversations.withDeadlineAfter(30, TimeUnit.SECONDS).appendMessage(AppendMessageRequest.newBuilder()
                  .setConversationId(f.conversation().getId()).setMessage(user("m" + n)).build());
              outcome = "OK";
            } catch (StatusRuntimeException e) {
              outcome = e.getStatus().getCode() + " " + reason(e);
            }
            appendOutcomes.computeIfAbsent(outcome, k -> new AtomicInteger()).incrementAndGet();
          }));
        }
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(11);
        while (System.nanoTime() < end) {
          work.add(probes.submit(() -> {
            long t0 = System.nanoTime();
            try {
              ServingStatus st = health.withDeadlineAfter(1, TimeUnit.SECONDS)
                  .check(HealthCheckRequest.newBuilder().setService("").build()).getStatus();
              if (st != ServingStatus.SERVING) {
                healthFailures.add(st.toString());
              }
            } catch (StatusRuntimeException e) {
              healthFailures.add(e.getStatus().toString());
            }
            healthMillis.add(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0));
          }));
          work.add(probes.submit(() -> {
            String outcome;
            try {
              customers.withDeadlineAfter(3, TimeUnit.SECONDS).getCustomer(
                  GetCustomerRequest.newBuilder().setCustomerId(f.customer().getId()).build());
              outcome = "OK";
            } catch (StatusRuntimeException e) {
              outcome = e.getStatus().getCode() + " " + reason(e);
            }
            getOutcomes.computeIfAbsent(outcome, k -> new AtomicInteger()).incrementAndGet();
          }));
          Thread.sleep(250);
          if (System.nanoTime() > end - TimeUnit.SECONDS.toNanos(1)) {
            locker.rollback(); // the lock was held for 10 s
          }
        }
        for (Future<?> w : work) {
          w.get(60, TimeUnit.SECONDS);
        }
      } finally {
        locker.close();
        appenders.shutdownNow();
        probes.shutdownNow();
      }

      List<Long> sorted = new ArrayList<>(healthMillis);
      Collections.sort(sorted);
      long p99 = sorted.get((int) Math.ceil(sorted.size() * 0.99) - 1);
      System.out.printf("overload scenario: health n=%d p50=%d ms p99=%d ms max=%d ms; GetCustomer %s; appends %s;"
              + " shed %d%n", sorted.size(), sorted.get(sorted.size() / 2), p99, sorted.get(sorted.size() - 1),
          new TreeMap<>(getOutcomes), new TreeMap<>(appendOutcomes), s.server().admission().shedTotal());

      assertEquals(List.of(), healthFailures, "every Health/Check answered SERVING within its 1 s deadline");
      // The issue asks for p99 < 100 ms; this shared 2-core machine gets a wide margin (the load
      // test owns latency), which still fails the 1 s timeouts seen before.
      assertTrue(p99 < 500, "Health/Check p99 " + p99 + " ms");
      for (String outcome : getOutcomes.keySet()) {
        assertTrue(outcome.equals("OK") || outcome.startsWith("RESOURCE_EXHAUSTED"),
            "GetCustomer outcomes " + getOutcomes);
      }
      assertTrue(getOutcomes.containsKey("OK"), "GetCustomer " + getOutcomes);
      for (String outcome : appendOutcomes.keySet()) {
        assertTrue(outcome.equals("OK") || outcome.equals("ABORTED LOCK_TIMEOUT")
                || outcome.startsWith("RESOURCE_EXHAUSTED"), "AppendMessage outcomes " + appendOutcomes);
      }
      awaitIdlePool(s);
    }
  }

  private static void awaitIdlePool(TestServer s) {
    ServerLifecycleTest.awaitTrue("every connection back in the pool",
        () -> s.server().pool().getHikariPoolMXBean().getActiveConnections() == 0);
  }

  /** Before: the append waited on the lock until the statement timeout (15 s) holding its connection. */
  @Test
  void aWriterBlockedByAHeldLockGivesUpAtTheLockTimeout() throws Exception {
    try (TestServer s = TestServer.start(Map.of("DB_LOCK_TIMEOUT_MS", "300"))) {
      Fixture f = fixture(s);
      var conversations = ConversationServiceGrpc.newBlockingStub(s.channel());
      try (Connection locker = lockConversation(s.dbUrl(), f.conversation().getId())) {
        var status = assertError(Code.ABORTED, "LOCK_TIMEOUT", () -> conversations
            .withDeadlineAfter(10, TimeUnit.SECONDS).appendMessage(AppendMessageRequest.newBuilder()
                .setConversationId(f.conversation().getId()).setMessage(user("blocked")).build()));
        assertTrue(GrpcErrors.detail(status, com.google.rpc.RetryInfo.class).isPresent(), "retryable: " + status);
        locker.rollback();
      }
      assertEquals(0, conversations.listMessages(ListMessagesRequest.newBuilder()
          .setConversationId(f.conversation().getId()).build()).getMessagesCount(), "nothing was written");
      awaitIdlePool(s);
    }
  }

  /**
   * Before: the wait for a connection was the pool's 10 s whatever the call's deadline, so a 1.5 s
   * call ran into its deadline. Now the wait ends before the deadline, with RESOURCE_EXHAUSTED.
   */
  @Test
  void theConnectionWaitEndsBeforeTheCallsDeadline() throws Exception {
    try (TestServer s = TestServer.start(Map.of("DB_POOL_SIZE", "1", "DB_CONNECTION_TIMEOUT_MS", "10000"))) {
      var customers = CustomerServiceGrpc.newBlockingStub(s.channel());
      GetCustomerRequest req = GetCustomerRequest.newBuilder().setCustomerId(UUID.randomUUID().toString()).build();
      try (Connection held = s.server().pool().getConnection()) { // the pool's only connection
        assertError(Code.RESOURCE_EXHAUSTED, "DATABASE_POOL_EXHAUSTED",
            () -> customers.withDeadlineAfter(1500, TimeUnit.MILLISECONDS).getCustomer(req));
      }
      assertError(Code.NOT_FOUND, "CUSTOMER_NOT_FOUND", () -> customers.getCustomer(req));
    }
  }

  /**
   * A call without a deadline is bounded by the server's maximum. Before: with no statement or
   * lock timeout, the append waited on the held lock for as long as it was held (and then succeeded).
   */
  @Test
  void aCallWithoutADeadlineEndsAtTheServersMaximum() throws Exception {
    try (TestServer s = TestServer.start(Map.of("MAX_CALL_DEADLINE_MS", "1000", "DB_LOCK_TIMEOUT_MS", "0",
        "DB_STATEMENT_TIMEOUT_MS", "0"))) {
      Fixture f = fixture(s);
      var conversations = ConversationServiceGrpc.newBlockingStub(s.channel());
      try (Connection locker = lockConversation(s.dbUrl(), f.conversation().getId())) {
        ExecutorService release = Executors.newSingleThreadExecutor();
        try {
          // Give the lock up after 8 s at the latest, so the old behaviour fails the test instead of hanging it.
          release.submit(() -> {
            Thread.sleep(8000);
            locker.rollback();
            return null;
          });
          assertError(Code.DEADLINE_EXCEEDED, "DEADLINE_EXCEEDED", () -> conversations.appendMessage(
              AppendMessageRequest.newBuilder().setConversationId(f.conversation().getId())
                  .setMessage(user("no deadline")).build()));
        } finally {
          release.shutdownNow();
        }
      }
      awaitIdlePool(s);
    }
  }

  /** REQUEST_QUEUE calls may wait for a thread; the next is shed at once, before any SQL. */
  @Test
  void callsBeyondTheQueueAreShedWithRetryInfo() throws Exception {
    shedsWhileTheOnlyThreadIsHeld(Map.of("REQUEST_QUEUE", "1"), 0);
  }

  /** A queue that stops moving sheds new calls once its oldest has waited REQUEST_QUEUE_WAIT_MS. */
  @Test
  void aStalledQueueShedsOnceItsOldestCallHasWaitedTooLong() throws Exception {
    shedsWhileTheOnlyThreadIsHeld(Map.of("REQUEST_QUEUE", "100", "REQUEST_QUEUE_WAIT_MS", "300"), 400);
  }

  private static void shedsWhileTheOnlyThreadIsHeld(Map<String, String> queue, long stallMillis) throws Exception {
    Map<String, String> settings = new java.util.HashMap<>(queue);
    settings.putAll(Map.of("DB_POOL_SIZE", "2", "REQUEST_THREADS", "1", "DB_LOCK_TIMEOUT_MS", "0"));
    // The shed is logged (the access log never sees it): captured from RequestAdmission's logger.
    var admissionLog = (ch.qos.logback.classic.Logger) org.slf4j.LoggerFactory.getLogger(
        dev.contextmemory.server.grpc.RequestAdmission.class);
    var logged = new ch.qos.logback.core.read.ListAppender<ch.qos.logback.classic.spi.ILoggingEvent>();
    logged.start();
    admissionLog.addAppender(logged);
    try (TestServer s = TestServer.start(settings)) {
      Fixture f = fixture(s);
      var conversations = ConversationServiceGrpc.newBlockingStub(s.channel());
      var customers = CustomerServiceGrpc.newBlockingStub(s.channel());
      ExecutorService callers = Executors.newFixedThreadPool(2);
      try (Connection locker = lockConversation(s.dbUrl(), f.conversation().getId())) {
        // One call occupies the only thread (waiting on the lock), one waits in the queue.
        Future<?> running = callers.submit(() -> conversations.withDeadlineAfter(20, TimeUnit.SECONDS)
            .appendMessage(AppendMessageRequest.newBuilder().setConversationId(f.conversation().getId())
                .setMessage(user("running")).build()));
        // Waiting on the row lock proves the append holds the only request thread; a count of active
        // connections would not (the vector index build at start takes one of the pool's too).
        ServerLifecycleTest.awaitTrue("the first append holds the thread and waits on the lock",
            () -> backendsWaitingOnALock(s.dbUrl()) == 1);
        Future<?> queued = callers.submit(() -> customers.withDeadlineAfter(20, TimeUnit.SECONDS)
            .getCustomer(GetCustomerRequest.newBuilder().setCustomerId(f.customer().getId()).build()));
        ServerLifecycleTest.awaitTrue("the second call waits in the queue", () -> s.server().admission().queued() == 1);
        Thread.sleep(stallMillis);

        var status = assertError(Code.RESOURCE_EXHAUSTED, "SERVER_OVERLOADED", () -> customers
            .withDeadlineAfter(20, TimeUnit.SECONDS)
            .getCustomer(GetCustomerRequest.newBuilder().setCustomerId(f.customer().getId()).build()));
        assertTrue(GrpcErrors.detail(status, com.google.rpc.RetryInfo.class).isPresent(), "retryable: " + status);
        assertEquals(ServingStatus.SERVING, ServerLifecycleTest.status(
            HealthGrpc.newBlockingStub(s.channel()).withDeadlineAfter(1, TimeUnit.SECONDS), ""),
            "health answers while the request threads are all busy");

        locker.rollback();
        running.get(20, TimeUnit.SECONDS);
        queued.get(20, TimeUnit.SECONDS);
      } finally {
        callers.shutdownNow();
      }
      assertEquals(1, s.server().admission().shedTotal());
      assertEquals(List.of("overloaded: 1 call(s) shed with RESOURCE_EXHAUSTED SERVER_OVERLOADED since the last such"
              + " line, 1 waiting for a request thread (this one: contextmemory.v1.CustomerService/GetCustomer);"
              + " contextmemory_executor_rejected_total counts each"),
          logged.list.stream().map(ch.qos.logback.classic.spi.ILoggingEvent::getFormattedMessage).toList());
    } finally {
      admissionLog.detachAppender(logged);
    }
  }
}

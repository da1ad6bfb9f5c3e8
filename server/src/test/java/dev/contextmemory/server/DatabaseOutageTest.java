package dev.contextmemory.server;

import static dev.contextmemory.server.testing.GrpcErrors.assertError;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.contextmemory.server.testing.ThrowawayCluster;
import dev.contextmemory.server.testing.TestServer;
import dev.contextmemory.v1.*;
import io.grpc.Status.Code;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.health.v1.HealthGrpc;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * A database that hangs (SIGSTOP) or goes away (stopped, started again), on a throwaway cluster of
 * the test's own (issue 12, items 2, 3 and 5).
 */
class DatabaseOutageTest {

  private static Customer customer(TestServer s) {
    return CustomerServiceGrpc.newBlockingStub(s.channel()).createCustomer(CreateCustomerRequest.newBuilder()
        .setCustomer(Customer.newBuilder().setDisplayName("Outage")).build()).getCustomer();
  }

  private static ServingStatus health(TestServer s) {
    try {
      return ServerLifecycleTest.status(HealthGrpc.newBlockingStub(s.channel()).withDeadlineAfter(1, TimeUnit.SECONDS), "");
    } catch (StatusRuntimeException e) {
      throw new AssertionError("Health/Check failed: " + e.getStatus(), e);
    }
  }

  private static long awaitHealth(TestServer s, ServingStatus wanted, long withinMillis) throws InterruptedException {
    long t0 = System.nanoTime();
    while (health(s) != wanted) {
      long elapsed = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
      if (elapsed > withinMillis) {
        throw new AssertionError("health not " + wanted + " after " + elapsed + " ms");
      }
      Thread.sleep(20);
    }
    return TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
  }

  /**
   * Before: no socket timeout, so a call in flight waited for as long as the database stayed
   * frozen; health stayed SERVING (a pool timeout without a cause counted as "busy"); and each later
   * call waited out the connection timeout. Also shows what DEADLINE_EXCEEDED means (item 3): an
   * append that timed out while the database was frozen may be stored when it thaws, and a retry
   * with the same idempotency key stores it once.
   */
  @Test
  void aFrozenDatabaseIsNoticedAndNoCallWaitsForIt() throws Exception {
    ExecutorService callers = Executors.newFixedThreadPool(2);
    try (ThrowawayCluster db = ThrowawayCluster.start();
        TestServer s = TestServer.startOn(db.url(), Map.of("HEALTH_CHECK_INTERVAL_MS", "500",
            "HEALTH_CHECK_TIMEOUT_MS", "500", "DB_STATEMENT_TIMEOUT_MS", "3000", "DB_LOCK_TIMEOUT_MS", "1000"))) {
      Customer c = customer(s);
      var customers = CustomerServiceGrpc.newBlockingStub(s.channel());
      var conversations = ConversationServiceGrpc.newBlockingStub(s.channel());
      Conversation conv = conversations.getOrCreateOpenConversation(GetOrCreateOpenConversationRequest.newBuilder()
          .setCustomerId(c.getId()).setChannel(Channel.CHANNEL_WEB).setThreadKey("t").build()).getConversation();
      assertEquals(ServingStatus.SERVING, health(s));
      GetCustomerRequest get = GetCustomerRequest.newBuilder().setCustomerId(c.getId()).build();
      AppendMessageRequest append = AppendMessageRequest.newBuilder().setConversationId(conv.getId())
          .setMessage(Message.newBuilder().setRole(MessageRole.MESSAGE_ROLE_USER).setContent("during the freeze")
              .setIdempotencyKey("freeze-1")).build();

      db.freeze();
      long frozenAt = System.nanoTime();
      // In flight as the database freezes: one call without a deadline, one append with 2 s.
      CompletableFuture<StatusRuntimeException> noDeadline = CompletableFuture.supplyAsync(() -> {
        try {
          customers.getCustomer(get);
          return null;
        } catch (StatusRuntimeException e) {
          return e;
        }
      }, callers);
      CompletableFuture<StatusRuntimeException> timedAppend = CompletableFuture.supplyAsync(() -> {
        try {
          conversations.withDeadlineAfter(2, TimeUnit.SECONDS).appendMessage(append);
          return null;
        } catch (StatusRuntimeException e) {
          return e;
        }
      }, callers);

      long noticed = awaitHealth(s, ServingStatus.NOT_SERVING, 5000);
      System.out.printf("frozen database: health NOT_SERVING after %d ms%n", noticed);
      assertTrue(noticed <= 500 + 500 + 1500, "noticed within interval + timeout (+1.5 s slack): " + noticed + " ms");

      long t0 = System.nanoTime();
      assertError(Code.UNAVAILABLE, "DATABASE_UNAVAILABLE", () -> customers.getCustomer(get));
      long failFast = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
      System.out.printf("frozen database: a new call failed after %d ms%n", failFast);
      assertTrue(failFast < 1000, "a call while the database is known down fails at once: " + failFast + " ms");

      // Socket timeout 3 s + 5 s: the call without a deadline ends long before the thaw below.
      StatusRuntimeException e = noDeadline.get(15, TimeUnit.SECONDS);
      long ended = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - frozenAt);
      System.out.printf("frozen database: the call in flight without a deadline ended after %d ms: %s%n", ended,
          e == null ? "OK" : e.getStatus());
      assertTrue(e != null && e.getStatus().getCode() == Code.UNAVAILABLE, "in flight, no deadline: " + e);
      StatusRuntimeException appendFailure = timedAppend.get(15, TimeUnit.SECONDS);
      assertTrue(appendFailure != null && (appendFailure.getStatus().getCode() == Code.DEADLINE_EXCEEDED
          || appendFailure.getStatus().getCode() == Code.UNAVAILABLE), "the append's outcome is unknown: " + appendFailure);
      assertTrue(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - frozenAt) < 15_000, "still frozen");

      db.thaw();
      long recovered = awaitHealth(s, ServingStatus.SERVING, 10_000);
      System.out.printf("thawed database: health SERVING after %d ms%n", recovered);
      // Outcome unknown: retrying with the same key stores the message exactly once.
      conversations.withDeadlineAfter(10, TimeUnit.SECONDS).appendMessage(append);
      var stored = conversations.listMessages(ListMessagesRequest.newBuilder().setConversationId(conv.getId()).build());
      assertEquals(1, stored.getMessagesCount(), "stored once: " + stored);
      assertEquals(c.getId(), customers.getCustomer(get).getCustomer().getId());
    } finally {
      callers.shutdownNow();
    }
  }

  /**
   * Before: while the database was down each call waited the 2 s connection timeout to fail, and
   * the pool took about 5 s after the database came back to serve again (HikariCP's refill back-off).
   */
  @Test
  void anOutageFailsFastAndRecoversWithinASecond() throws Exception {
    try (ThrowawayCluster db = ThrowawayCluster.start();
        TestServer s = TestServer.startOn(db.url(), Map.of("HEALTH_CHECK_INTERVAL_MS", "2000"))) {
      Customer c = customer(s);
      var customers = CustomerServiceGrpc.newBlockingStub(s.channel());
      GetCustomerRequest get = GetCustomerRequest.newBuilder().setCustomerId(c.getId()).build();

      db.pgStop();
      awaitHealth(s, ServingStatus.NOT_SERVING, 2000 + 1000 + 1500);
      List<Long> failures = new ArrayList<>();
      for (int i = 0; i < 10; i++) {
        long t0 = System.nanoTime();
        assertError(Code.UNAVAILABLE, "DATABASE_UNAVAILABLE",
            () -> customers.withDeadlineAfter(5, TimeUnit.SECONDS).getCustomer(get));
        failures.add(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0));
      }
      long slowest = failures.stream().mapToLong(Long::longValue).max().orElseThrow();
      System.out.printf("database down: calls failed after %s ms%n", failures);
      assertTrue(slowest < 500, "fail fast while down: " + failures);

      db.pgStart(); // returns once the cluster accepts connections
      long back = System.nanoTime();
      long recovery = -1;
      while (recovery < 0) {
        try {
          customers.withDeadlineAfter(1, TimeUnit.SECONDS).getCustomer(get);
          recovery = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - back);
        } catch (StatusRuntimeException e) {
          assertTrue(e.getStatus().getCode() == Code.UNAVAILABLE || e.getStatus().getCode() == Code.RESOURCE_EXHAUSTED,
              "while recovering: " + e.getStatus());
          if (System.nanoTime() - back > TimeUnit.SECONDS.toNanos(15)) {
            throw new AssertionError("no recovery within 15 s");
          }
          Thread.sleep(20);
        }
      }
      System.out.printf("database back: first successful call after %d ms%n", recovery);
      // The issue asks for 1 s; the margin keeps a loaded 2-core machine from failing it.
      assertTrue(recovery < 1500, "recovered within 1 s (+0.5 s slack): " + recovery + " ms");
      assertEquals(ServingStatus.SERVING, health(s));
      assertEquals(c.getId(), customers.getCustomer(get).getCustomer().getId());
    }
  }
}

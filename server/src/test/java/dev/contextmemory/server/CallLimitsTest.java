package dev.contextmemory.server;

import static dev.contextmemory.server.testing.GrpcErrors.assertError;
import static dev.contextmemory.server.testing.GrpcErrors.detail;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.rpc.RetryInfo;
import dev.contextmemory.server.auth.Scope;
import dev.contextmemory.server.testing.TestKeys;
import dev.contextmemory.server.testing.TestServer;
import dev.contextmemory.v1.*;
import io.grpc.Status.Code;
import io.grpc.StatusRuntimeException;
import io.grpc.protobuf.StatusProto;
import java.sql.Connection;
import java.sql.DriverManager;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/** Per-key rate limits and per-tenant concurrency caps: RESOURCE_EXHAUSTED with RetryInfo, and fairness. */
class CallLimitsTest {

  @Test
  void aKeyOverItsRateIsToldWhenToRetry() {
    try (TestServer server = TestServer.start(Map.of("AUTH", "api-key", "KEY_RATE_LIMIT", "1", "KEY_RATE_BURST", "3"))) {
      String key = TestKeys.create(server, "t-rate", Scope.READ);
      String other = TestKeys.create(server, "t-rate", Scope.READ);
      var stub = TestKeys.withKey(CustomerServiceGrpc.newBlockingStub(server.channel()), key);
      long first = System.nanoTime();
      for (int i = 0; i < 3; i++) {
        stub.listCustomers(ListCustomersRequest.getDefaultInstance()); // the burst
      }
      // The bucket refills one call per second from the first call: on a loaded machine the burst
      // itself can take that long, and the refill is then a call the key may make. Past the burst
      // and the refill so far, the key is refused.
      com.google.rpc.Status status = null;
      for (int extra = 0; status == null; extra++) {
        long refilled = TimeUnit.NANOSECONDS.toSeconds(System.nanoTime() - first);
        assertTrue(extra <= refilled && extra < 60, "not refused after the burst and " + extra + " calls more in "
            + refilled + " s");
        try {
          stub.listCustomers(ListCustomersRequest.getDefaultInstance());
        } catch (StatusRuntimeException e) {
          status = assertError(Code.RESOURCE_EXHAUSTED, "RATE_LIMITED", () -> {
            throw e;
          });
        }
      }
      RetryInfo retry = detail(status, RetryInfo.class).orElseThrow();
      assertTrue(retry.getRetryDelay().getSeconds() > 0 || retry.getRetryDelay().getNanos() > 0, retry::toString);
      // The bucket is the key's: another key of the same tenant is not limited by it.
      TestKeys.withKey(CustomerServiceGrpc.newBlockingStub(server.channel()), other)
          .listCustomers(ListCustomersRequest.getDefaultInstance());
    }
  }

  /**
   * Tenant A floods: 24 appends to a conversation whose row another session holds locked, each
   * waiting for the lock. With a cap of 2 calls in flight per tenant, A holds at most 2 request
   * threads and 2 of the 4 connections; the rest of its calls are refused at once. Tenant B's
   * reads meanwhile all succeed within their 5 s deadlines.
   */
  @Test
  void oneTenantsFloodDoesNotStarveAnother() throws Exception {
    try (TestServer server = TestServer.start(Map.of("AUTH", "api-key", "TENANT_MAX_CONCURRENT_CALLS", "2",
        "REQUEST_THREADS", "8", "DB_POOL_SIZE", "4"))) {
      String aKey = TestKeys.create(server, "tenant-a", Scope.READ, Scope.WRITE);
      String bKey = TestKeys.create(server, "tenant-b", Scope.READ, Scope.WRITE);
      var aCustomers = TestKeys.withKey(CustomerServiceGrpc.newBlockingStub(server.channel()), aKey);
      var aConversations = TestKeys.withKey(ConversationServiceGrpc.newBlockingStub(server.channel()), aKey);
      var bCustomers = TestKeys.withKey(CustomerServiceGrpc.newBlockingStub(server.channel()), bKey);
      Customer a = aCustomers.createCustomer(CreateCustomerRequest.newBuilder()
          .setCustomer(Customer.newBuilder().setDisplayName("A")).build()).getCustomer();
      Conversation conv = aConversations.getOrCreateOpenConversation(GetOrCreateOpenConversationRequest.newBuilder()
          .setCustomerId(a.getId()).setChannel(Channel.CHANNEL_SMS).setThreadKey("flood").build()).getConversation();
      Customer b = bCustomers.createCustomer(CreateCustomerRequest.newBuilder()
          .setCustomer(Customer.newBuilder().setDisplayName("B")).build()).getCustomer();

      ExecutorService pool = Executors.newFixedThreadPool(24);
      Map<Code, AtomicInteger> aOutcomes = new ConcurrentHashMap<>();
      try (Connection locker = DriverManager.getConnection(server.dbUrl())) {
        locker.setAutoCommit(false);
        locker.createStatement().execute("SELECT 1 FROM conversations WHERE id = '" + conv.getId() + "' FOR UPDATE");
        List<Future<?>> flood = new ArrayList<>();
        for (int i = 0; i < 24; i++) {
          int n = i;
          flood.add(pool.submit(() -> {
            Code code = Code.OK;
            try {
              aConversations.withDeadlineAfter(20, TimeUnit.SECONDS).appendMessage(AppendMessageRequest.newBuilder()
                  .setConversationId(conv.getId()).setMessage(Message.newBuilder()
                      .setRole(MessageRole.MESSAGE_ROLE_USER).setContent("flood " + n)).build());
            } catch (StatusRuntimeException e) {
              code = e.getStatus().getCode();
              if (code == Code.RESOURCE_EXHAUSTED) {
                assertEquals("TOO_MANY_CONCURRENT_CALLS", detail(StatusProto.fromThrowable(e),
                    com.google.rpc.ErrorInfo.class).orElseThrow().getReason());
              }
            }
            aOutcomes.computeIfAbsent(code, k -> new AtomicInteger()).incrementAndGet();
          }));
        }
        // The flood is in once A has been refused: A then has its 2 calls in flight, waiting on the lock.
        long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (!aOutcomes.containsKey(Code.RESOURCE_EXHAUSTED)) {
          assertTrue(System.nanoTime() < until, () -> "A was not refused within 60 s: " + aOutcomes);
          Thread.sleep(10);
        }
        for (int i = 0; i < 10; i++) {
          Customer got = bCustomers.withDeadlineAfter(5, TimeUnit.SECONDS)
              .getCustomer(GetCustomerRequest.newBuilder().setCustomerId(b.getId()).build()).getCustomer();
          assertEquals("B", got.getDisplayName());
        }
        locker.rollback();
        for (Future<?> f : flood) {
          f.get(60, TimeUnit.SECONDS);
        }
      } finally {
        pool.shutdownNow();
      }
      assertTrue(aOutcomes.getOrDefault(Code.RESOURCE_EXHAUSTED, new AtomicInteger()).get() > 0, aOutcomes::toString);
      assertTrue(aOutcomes.getOrDefault(Code.OK, new AtomicInteger()).get() > 0, aOutcomes::toString);
    }
  }
}

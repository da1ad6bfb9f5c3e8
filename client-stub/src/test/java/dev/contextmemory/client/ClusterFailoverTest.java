package dev.contextmemory.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.contextmemory.server.testing.Scrape;
import dev.contextmemory.server.testing.ServerProcess;
import dev.contextmemory.server.testing.TestDatabase;
import dev.contextmemory.v1.AppendMessageRequest;
import dev.contextmemory.v1.AppendMessageResponse;
import dev.contextmemory.v1.Channel;
import dev.contextmemory.v1.ContactKey;
import dev.contextmemory.v1.CustomerServiceGrpc;
import dev.contextmemory.v1.GetCustomerRequest;
import dev.contextmemory.v1.GetOrCreateOpenConversationRequest;
import dev.contextmemory.v1.ListMessagesRequest;
import dev.contextmemory.v1.Message;
import dev.contextmemory.v1.MessageRole;
import dev.contextmemory.v1.UpsertCustomerRequest;
import io.grpc.Status.Code;
import io.grpc.StatusRuntimeException;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/**
 * Three server processes on one database behind one client (round_robin over the three targets),
 * as an operator runs replicas. The client's retry throttle must tell a crash from an overload:
 * when one replica is SIGKILLed under load, every call in flight on it is retried on the others and
 * none fails (and the appends among them are stored once each); when every replica sheds every
 * call, retries stop after the throttle's budget instead of multiplying the load by the attempts.
 */
class ClusterFailoverTest {
  private static final int THREADS = 16;
  private static final int CALLS_PER_THREAD = 40;
  private static final String DURATION_COUNT = "contextmemory_rpc_server_duration_seconds_count";
  /** One database for both tests: the second's replicas find it migrated and start faster. */
  private static final String DB = TestDatabase.create();

  @Test
  void aReplicaKilledUnderLoadFailsNoIdempotentCallAndStoresNoDuplicate() throws Exception {
    // Generous waits for a connection and a request thread: on a loaded 2-core machine the replicas
    // would otherwise shed calls (RESOURCE_EXHAUSTED), and those failures, retried, spend the
    // throttle's tokens before the crash does; this test is about the crash.
    List<ServerProcess> replicas = start(3, Map.of("DB_URL", DB, "AUTH", "none", "DB_CONNECTION_TIMEOUT_MS", "8000",
        "REQUEST_QUEUE_WAIT_MS", "8000", "REQUEST_QUEUE", "200"));
    try (ContextMemoryClient client = ContextMemoryClient.newBuilder(targets(replicas)).build()) {
      List<String> conversations = new ArrayList<>();
      for (int t = 0; t < THREADS; t++) {
        String customer = client.customers().upsertCustomer(UpsertCustomerRequest.newBuilder()
            .setContactKey(ContactKey.newBuilder().setExternalRef("failover-" + t)).build()).getCustomer().getId();
        conversations.add(client.conversations().getOrCreateOpenConversation(GetOrCreateOpenConversationRequest
            .newBuilder().setCustomerId(customer).setChannel(Channel.CHANNEL_WEB).setThreadKey("t").build())
            .getConversation().getId());
      }
      ConcurrentLinkedQueue<Throwable> failures = new ConcurrentLinkedQueue<>();
      // The message each append answered with: a retry of a write the dead replica committed is
      // answered from the stored row (replayed), so every answer must name a stored message.
      List<Set<String>> answered = new ArrayList<>();
      AtomicInteger calls = new AtomicInteger();
      CountDownLatch warmedUp = new CountDownLatch(THREADS);
      ExecutorService pool = Executors.newFixedThreadPool(THREADS);
      for (int t = 0; t < THREADS; t++) {
        int thread = t;
        answered.add(java.util.concurrent.ConcurrentHashMap.newKeySet());
        pool.execute(() -> {
          for (int i = 0; i < CALLS_PER_THREAD; i++) {
            if (i == CALLS_PER_THREAD / 4) {
              warmedUp.countDown();
            }
            try {
              // Every RPC here is idempotent: appends carry the key the client adds, reads are reads.
              AppendMessageResponse r = client.conversations().appendMessage(AppendMessageRequest.newBuilder()
                  .setConversationId(conversations.get(thread)).setMessage(Message.newBuilder()
                      .setRole(MessageRole.MESSAGE_ROLE_USER).setContent("turn " + i)).build());
              answered.get(thread).add(r.getMessage().getId());
              client.conversations().listMessages(ListMessagesRequest.newBuilder()
                  .setConversationId(conversations.get(thread)).setPageSize(5).build());
              calls.addAndGet(2);
            } catch (RuntimeException e) {
              failures.add(e);
            }
          }
        });
      }
      assertTrue(warmedUp.await(2, TimeUnit.MINUTES), "the load did not get going");
      replicas.get(1).kill(); // SIGKILL with calls in flight on it
      pool.shutdown();
      assertTrue(pool.awaitTermination(3, TimeUnit.MINUTES), "the load did not finish");

      // Every call whose attempt died before the replica answered was retried on another one by
      // the channel; a call the replica had begun to answer (headers sent, then SIGKILL), which gRPC
      // never retries, was sent once more by the client (CommittedCallRetry, staged exactly in
      // CommittedCallRetryTest). So no call fails.
      assertTrue(failures.isEmpty(), "no idempotent call may fail: " + failures);
      assertEquals(THREADS * CALLS_PER_THREAD * 2, calls.get(), "every iteration made both calls");
      for (int t = 0; t < THREADS; t++) {
        List<Message> stored = client.listAllMessages(ListMessagesRequest.newBuilder()
            .setConversationId(conversations.get(t)).build()).toList();
        Set<String> contents = new HashSet<>();
        Set<String> ids = new HashSet<>();
        stored.forEach(m -> {
          contents.add(m.getContent());
          ids.add(m.getId());
        });
        assertEquals(stored.size(), contents.size(), "no append stored twice: conversation " + t);
        assertTrue(ids.containsAll(answered.get(t)), "every append's answer names a stored message: conversation " + t);
        assertTrue(stored.size() >= answered.get(t).size() && stored.size() <= CALLS_PER_THREAD, "conversation " + t);
      }
    } finally {
      replicas.forEach(ServerProcess::close);
    }
  }

  @Test
  void anOverloadedClusterGetsABoundedNumberOfRetries() throws Exception {
    int[] metricsPorts = {ServerProcess.freePort(), ServerProcess.freePort(), ServerProcess.freePort()};
    List<ServerProcess> replicas = new ArrayList<>();
    try {
      for (int port : metricsPorts) {
        // One call a second per caller: nearly every call is shed with RESOURCE_EXHAUSTED, which
        // the client retries on every RPC (nothing was done).
        replicas.add(ServerProcess.start(Map.of("DB_URL", DB, "AUTH", "none", "KEY_RATE_LIMIT", "1",
            "KEY_RATE_BURST", "1", "METRICS_PORT", Integer.toString(port))));
      }
      replicas.forEach(ServerProcess::awaitServing);
      int callsMade = 150;
      int failed = 0;
      try (ContextMemoryClient client = ContextMemoryClient.newBuilder(targets(replicas)).build()) {
        for (int i = 0; i < callsMade; i++) {
          try {
            client.customers().getCustomer(GetCustomerRequest.newBuilder().setCustomerId(UUID.randomUUID().toString())
                .build());
          } catch (StatusRuntimeException e) {
            if (e.getStatus().getCode() == Code.RESOURCE_EXHAUSTED) {
              failed++;
            } else if (e.getStatus().getCode() != Code.NOT_FOUND) {
              throw e;
            }
          }
        }
      }
      double attempts = 0;
      for (int port : metricsPorts) {
        attempts += Scrape.of(port).sum(DURATION_COUNT, "method",
            CustomerServiceGrpc.getGetCustomerMethod().getFullMethodName());
      }
      assertTrue(failed > callsMade / 2, "the cluster was overloaded: " + failed + " of " + callsMade + " shed");
      // Unthrottled, each shed call would be tried 5 times (1,000 attempts); the throttle allows
      // about half its tokens (50) of retries plus one per 10 successes.
      double retries = attempts - callsMade;
      assertTrue(retries >= 1, "some retries were allowed: " + attempts + " attempts");
      assertTrue(retries <= ServiceConfig.THROTTLE_MAX_TOKENS / 2 + callsMade * ServiceConfig.THROTTLE_TOKEN_RATIO + 5,
          "retries must stop while most calls fail: " + attempts + " attempts for " + callsMade + " calls");
    } finally {
      replicas.forEach(ServerProcess::close);
    }
  }

  private static List<ServerProcess> start(int n, Map<String, String> env) throws Exception {
    List<ServerProcess> replicas = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      replicas.add(ServerProcess.start(env)); // migrations started on all at once apply once
    }
    replicas.forEach(ServerProcess::awaitServing);
    return replicas;
  }

  private static String targets(List<ServerProcess> replicas) {
    return String.join(",", replicas.stream().map(ServerProcess::target).toList());
  }
}

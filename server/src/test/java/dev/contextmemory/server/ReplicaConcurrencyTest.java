package dev.contextmemory.server;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.contextmemory.server.testing.Rows;
import dev.contextmemory.server.testing.ServerProcess;
import dev.contextmemory.server.testing.TestDatabase;
import dev.contextmemory.v1.AppendMessageRequest;
import dev.contextmemory.v1.Channel;
import dev.contextmemory.v1.ContactKey;
import dev.contextmemory.v1.ConversationServiceGrpc;
import dev.contextmemory.v1.CustomerServiceGrpc;
import dev.contextmemory.v1.GetOrCreateOpenConversationRequest;
import dev.contextmemory.v1.Message;
import dev.contextmemory.v1.MessageRole;
import dev.contextmemory.v1.UpsertCustomerRequest;
import io.grpc.ManagedChannel;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.Callable;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * Two server processes on one database, as two replicas behind a load balancer: the guarantees
 * that hold inside one server hold across them, because they live in PostgreSQL (unique indexes as
 * arbiters, row locks), not in a server's memory. Concurrent calls spread over both replicas, all
 * released at once: upserts of one new contact key make one customer; get-or-creates of one
 * thread make one open conversation; appends with one idempotency key store one message (and
 * every caller gets that message). Migrations started by both at once apply once.
 */
class ReplicaConcurrencyTest {
  private static final int CALLERS = 16;
  private static final int ROUNDS = 5;

  @Test
  void concurrentCallsOverTwoReplicasMakeExactlyOneRow() throws Exception {
    String db = TestDatabase.create();
    List<ServerProcess> replicas = List.of(ServerProcess.start(Map.of("DB_URL", db, "AUTH", "none")),
        ServerProcess.start(Map.of("DB_URL", db, "AUTH", "none")));
    ExecutorService pool = Executors.newFixedThreadPool(CALLERS);
    try (Rows rows = new Rows(db)) {
      replicas.forEach(ServerProcess::awaitServing);
      assertEquals(0L, rows.count("SELECT count(*) - count(DISTINCT version) FROM flyway_schema_history WHERE version IS NOT NULL"),
          "each migration applied once");
      for (int round = 0; round < ROUNDS; round++) {
        String ref = "replica-" + UUID.randomUUID();
        Set<String> customers = new HashSet<>(all(pool, replicas, ch -> CustomerServiceGrpc.newBlockingStub(ch)
            .withDeadlineAfter(30, TimeUnit.SECONDS).upsertCustomer(UpsertCustomerRequest.newBuilder()
                .setContactKey(ContactKey.newBuilder().setExternalRef(ref)).build()).getCustomer().getId()));
        assertEquals(1, customers.size(), "round " + round + ": one customer");
        String customer = customers.iterator().next();
        assertEquals(1L, rows.count("SELECT count(*) FROM customers WHERE external_ref = '" + ref + "'"));

        Set<String> conversations = new HashSet<>(all(pool, replicas, ch -> ConversationServiceGrpc.newBlockingStub(ch)
            .withDeadlineAfter(30, TimeUnit.SECONDS).getOrCreateOpenConversation(GetOrCreateOpenConversationRequest
                .newBuilder().setCustomerId(customer).setChannel(Channel.CHANNEL_SMS).setThreadKey("thread").build())
            .getConversation().getId()));
        assertEquals(1, conversations.size(), "round " + round + ": one open conversation");
        String conversation = conversations.iterator().next();

        String key = UUID.randomUUID().toString();
        Set<String> messages = new HashSet<>(all(pool, replicas, ch -> ConversationServiceGrpc.newBlockingStub(ch)
            .withDeadlineAfter(30, TimeUnit.SECONDS).appendMessage(AppendMessageRequest.newBuilder()
                .setConversationId(conversation).setMessage(Message.newBuilder().setRole(MessageRole.MESSAGE_ROLE_USER)
                    .setContent("once").setIdempotencyKey(key)).build()).getMessage().getId()));
        assertEquals(1, messages.size(), "round " + round + ": every caller got the one message");
        assertEquals(1L, rows.count("SELECT count(*) FROM messages WHERE conversation_id = '" + conversation + "'"));
        assertEquals(1L, rows.count("SELECT message_count FROM conversations WHERE id = '" + conversation + "'"));
      }
    } finally {
      pool.shutdownNow();
      replicas.forEach(ServerProcess::close);
    }
  }

  /**
   * A call the server shed (RESOURCE_EXHAUSTED: its request queue was full or its oldest call had
   * waited past CONTEXT_MEMORY_REQUEST_QUEUE_WAIT_MS) did nothing, and clients retry it with
   * backoff as the client library's retry policy does. On a busy 2-core machine 16 calls released
   * at once can be shed; what this test checks is what the calls that run do, so it retries them.
   */
  private static String shedRetried(java.util.function.Supplier<String> call) throws InterruptedException {
    for (int attempt = 1; ; attempt++) {
      try {
        return call.get();
      } catch (io.grpc.StatusRuntimeException e) {
        if (e.getStatus().getCode() != io.grpc.Status.Code.RESOURCE_EXHAUSTED || attempt == 5) {
          throw e;
        }
        Thread.sleep(100L * attempt);
      }
    }
  }

  /** {@link #CALLERS} calls released together, alternating between the replicas; their answers. */
  private static List<String> all(ExecutorService pool, List<ServerProcess> replicas,
      java.util.function.Function<ManagedChannel, String> call) throws Exception {
    CyclicBarrier start = new CyclicBarrier(CALLERS);
    List<Future<String>> futures = new ArrayList<>();
    for (int i = 0; i < CALLERS; i++) {
      ManagedChannel ch = replicas.get(i % replicas.size()).channel();
      Callable<String> task = () -> {
        start.await(30, TimeUnit.SECONDS);
        return shedRetried(() -> call.apply(ch));
      };
      futures.add(pool.submit(task));
    }
    List<String> out = new ArrayList<>();
    for (Future<String> f : futures) {
      out.add(f.get(60, TimeUnit.SECONDS));
    }
    return out;
  }
}

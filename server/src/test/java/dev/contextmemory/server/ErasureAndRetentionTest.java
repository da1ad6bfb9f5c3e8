package dev.contextmemory.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.util.Timestamps;
import dev.contextmemory.server.testing.Rows;
import dev.contextmemory.server.testing.TestServer;
import dev.contextmemory.v1.*;
import io.grpc.Status.Code;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.StreamObserver;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Issue 12: erase counts under racing appends, expired memories and soft-deleted conversations
 * after deletes and retries, the retention purge of soft-deleted conversations, and ImportMessages'
 * flush by buffered bytes.
 */
class ErasureAndRetentionTest {
  private static TestServer server;
  private static CustomerServiceGrpc.CustomerServiceBlockingStub customers;
  private static ConversationServiceGrpc.ConversationServiceBlockingStub conversations;
  private static MemoryServiceGrpc.MemoryServiceBlockingStub memories;

  @BeforeAll
  static void start() {
    // Retention of one second, a sweep interval long enough that only the test's own rounds run.
    server = TestServer.start(Map.of("DELETED_CONVERSATION_RETENTION_SECONDS", "1",
        "MEMORY_SWEEP_INTERVAL_MS", "3600000"));
    customers = CustomerServiceGrpc.newBlockingStub(server.channel());
    conversations = ConversationServiceGrpc.newBlockingStub(server.channel());
    memories = MemoryServiceGrpc.newBlockingStub(server.channel());
  }

  @AfterAll
  static void stop() {
    server.close();
  }

  private static String newCustomer() {
    return customers.createCustomer(CreateCustomerRequest.newBuilder().setCustomer(Customer.newBuilder()
        .setPhone("+1555" + (2000000 + ThreadLocalRandom.current().nextInt(7999999)))).build()).getCustomer().getId();
  }

  private static String open(String customer, String thread) {
    return conversations.getOrCreateOpenConversation(GetOrCreateOpenConversationRequest.newBuilder()
        .setCustomerId(customer).setChannel(Channel.CHANNEL_SMS).setThreadKey(thread).build()).getConversation().getId();
  }

  private static Message text(String s) {
    return Message.newBuilder().setRole(MessageRole.MESSAGE_ROLE_USER).setContent(s).build();
  }

  @Test
  void eraseCountsExactlyWhatItDeletesWhileAppendsRace() throws Exception {
    ExecutorService pool = Executors.newFixedThreadPool(3);
    try {
      for (int round = 0; round < 5; round++) {
        String customer = newCustomer();
        String conversation = open(customer, "race");
        AtomicBoolean erased = new AtomicBoolean();
        List<Future<Integer>> appenders = new ArrayList<>();
        for (int t = 0; t < 3; t++) {
          appenders.add(pool.submit(() -> {
            int ok = 0;
            while (true) {
              try {
                conversations.appendMessage(AppendMessageRequest.newBuilder().setConversationId(conversation)
                    .setMessage(text("m")).build());
                ok++;
              } catch (StatusRuntimeException e) {
                // After the erase an append must fail NOT_FOUND, nothing else.
                assertEquals(Code.NOT_FOUND, e.getStatus().getCode(), e::toString);
                return ok;
              }
            }
          }));
        }
        Thread.sleep(150); // let the appenders get going; the assertion below does not depend on it
        DeleteCustomerResponse r = customers.deleteCustomer(DeleteCustomerRequest.newBuilder().setCustomerId(customer)
            .setErase(true).build());
        erased.set(true);
        int appended = 0;
        for (Future<Integer> f : appenders) {
          appended += f.get(30, TimeUnit.SECONDS);
        }
        assertEquals(appended, r.getMessagesDeleted(), "round " + round + ": every acknowledged append was erased");
        assertEquals(1, r.getConversationsDeleted());
      }
    } finally {
      pool.shutdownNow();
    }
  }

  @Test
  void expiredMemoriesNeitherBlockADeleteNorComeBackOnARetry() throws Exception {
    String customer = newCustomer();
    Memory.Builder m = Memory.newBuilder().setKind(MemoryKind.MEMORY_KIND_FACT).setContent("short-lived")
        .setExpireTime(Timestamps.fromMillis(System.currentTimeMillis() + 60_000));
    Memory first = memories.createMemory(CreateMemoryRequest.newBuilder().setCustomerId(customer).setMemory(m)
        .setRequestId("req-1").build()).getMemory();
    try (Rows rows = new Rows(server.dbUrl())) {
      rows.expireMemory(first.getId());
    }
    Memory retried = memories.createMemory(CreateMemoryRequest.newBuilder().setCustomerId(customer).setMemory(m)
        .setRequestId("req-1").build()).getMemory();
    assertNotEquals(first.getId(), retried.getId(), "an expired memory is absent, so the retry creates anew");
    try (Rows rows = new Rows(server.dbUrl())) {
      rows.expireMemory(retried.getId());
    }
    customers.deleteCustomer(DeleteCustomerRequest.newBuilder().setCustomerId(customer).build()); // no dependents
  }

  @Test
  void aMemoryNoLongerNamesASoftDeletedConversation() {
    String customer = newCustomer();
    String conversation = open(customer, "gone");
    Memory m = memories.createMemory(CreateMemoryRequest.newBuilder().setCustomerId(customer).setMemory(
        Memory.newBuilder().setKind(MemoryKind.MEMORY_KIND_FACT).setContent("c").setConversationId(conversation))
        .build()).getMemory();
    assertEquals(conversation, m.getConversationId());
    conversations.deleteConversation(DeleteConversationRequest.newBuilder().setConversationId(conversation).build());
    assertEquals("", memories.getMemory(GetMemoryRequest.newBuilder().setMemoryId(m.getId()).build()).getMemory()
        .getConversationId());
  }

  @Test
  void softDeletedConversationsArePurgedWithTheirMessagesAfterTheRetention() {
    String customer = newCustomer();
    String kept = open(customer, "kept");
    String doomed = open(customer, "doomed");
    for (String c : List.of(kept, doomed)) {
      conversations.appendMessages(AppendMessagesRequest.newBuilder().setConversationId(c)
          .addMessages(text("a")).addMessages(text("b")).build());
    }
    conversations.deleteConversation(DeleteConversationRequest.newBuilder().setConversationId(doomed).build());
    try (Rows rows = new Rows(server.dbUrl())) {
      rows.update("UPDATE conversations SET deleted_at = now() - interval '1 hour' WHERE id = ?::uuid", doomed);
      server.server().sweeper().sweep();
      assertEquals(0, rows.count("SELECT count(*) FROM conversations WHERE id = ?::uuid", doomed));
      assertEquals(0, rows.count("SELECT count(*) FROM messages WHERE conversation_id = ?::uuid", doomed));
      assertEquals(2, rows.count("SELECT count(*) FROM messages WHERE conversation_id = ?::uuid", kept));
    }
  }

  @Test
  void importFlushesByBufferedBytesNotOnlyByCount() throws Exception {
    String customer = newCustomer();
    ConversationServiceGrpc.ConversationServiceStub async = ConversationServiceGrpc.newStub(server.channel());
    StreamObserver<ImportMessagesRequest> in = async.importMessages(new StreamObserver<>() {
      @Override public void onNext(ImportMessagesResponse r) {}
      @Override public void onError(Throwable t) {}
      @Override public void onCompleted() {}
    });
    String big = "y".repeat(32_000);
    // 400 items of ~32 KB (~12.8 MB) stay far below the 1,000-item chunk but above the byte bound.
    for (int i = 0; i < 400; i++) {
      in.onNext(ImportMessagesRequest.newBuilder().setCustomerId(customer).setChannel(Channel.CHANNEL_SMS)
          .setThreadKey("bulk").setMessage(Message.newBuilder().setRole(MessageRole.MESSAGE_ROLE_USER).setContent(big)
              .setIdempotencyKey("k" + i).setCreateTime(Timestamps.fromMillis(1_700_000_000_000L + i))).build());
    }
    try (Rows rows = new Rows(server.dbUrl())) {
      long stored = 0;
      for (int i = 0; i < 300 && stored == 0; i++) { // waits for the server, asserts nothing about time
        Thread.sleep(100);
        stored = rows.count("SELECT count(*) FROM messages m JOIN conversations c ON c.id = m.conversation_id"
            + " WHERE c.customer_id = ?::uuid", UUID.fromString(customer));
      }
      assertTrue(stored > 0, "a chunk was written before the stream ended");
    } finally {
      in.onCompleted();
    }
  }
}

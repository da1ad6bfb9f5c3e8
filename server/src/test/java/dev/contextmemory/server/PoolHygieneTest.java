package dev.contextmemory.server;

import static dev.contextmemory.server.testing.GrpcErrors.assertError;
import static dev.contextmemory.server.testing.GrpcErrors.assertInvalid;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.util.Timestamps;
import dev.contextmemory.server.testing.TestServer;
import dev.contextmemory.v1.*;
import io.grpc.Context;
import io.grpc.Status.Code;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * No code path leaves a connection checked out or a transaction open: errors, deadlines, client
 * cancellation and a client vanishing mid-stream each end with the pool all idle and no session of
 * the server idle in a transaction. The slow paths are made slow for real, by holding a lock on the
 * conversation row from another connection.
 */
class PoolHygieneTest {
  private static TestServer server;
  private static CustomerServiceGrpc.CustomerServiceBlockingStub customers;
  private static ConversationServiceGrpc.ConversationServiceBlockingStub conversations;
  private static final ExecutorService threads = Executors.newFixedThreadPool(2);

  @BeforeAll
  static void start() {
    // No lock timeout: the slow paths wait on a held lock until the test ends them.
    server = TestServer.start(Map.of("DB_POOL_SIZE", "2", "DB_LOCK_TIMEOUT_MS", "0"));
    customers = CustomerServiceGrpc.newBlockingStub(server.channel());
    conversations = ConversationServiceGrpc.newBlockingStub(server.channel());
  }

  @AfterAll
  static void stop() {
    threads.shutdownNow();
    server.close();
  }

  private static Conversation newConversation() {
    Customer c = customers.createCustomer(CreateCustomerRequest.newBuilder()
        .setCustomer(Customer.newBuilder().setDisplayName("Pool")).build()).getCustomer();
    return conversations.getOrCreateOpenConversation(GetOrCreateOpenConversationRequest.newBuilder()
        .setCustomerId(c.getId()).setChannel(Channel.CHANNEL_WEB).setThreadKey("t").build()).getConversation();
  }

  private static Message user(String text) {
    return Message.newBuilder().setRole(MessageRole.MESSAGE_ROLE_USER).setContent(text).build();
  }

  /** Opens a transaction on its own connection holding the conversation's row lock. */
  private static Connection lock(String conversationId) throws SQLException {
    Connection c = DriverManager.getConnection(server.dbUrl());
    c.setAutoCommit(false);
    try (PreparedStatement ps = c.prepareStatement("SELECT 1 FROM conversations WHERE id = ? FOR UPDATE")) {
      ps.setObject(1, UUID.fromString(conversationId));
      ps.executeQuery().close();
    }
    return c;
  }

  private static long serverSessions(String state) throws SQLException {
    try (Connection c = DriverManager.getConnection(server.dbUrl());
        PreparedStatement ps = c.prepareStatement("SELECT count(*) FROM pg_stat_activity"
            + " WHERE datname = current_database() AND application_name = 'context-memory' AND state = ?")) {
      ps.setString(1, state);
      try (ResultSet rs = ps.executeQuery()) {
        rs.next();
        return rs.getLong(1);
      }
    }
  }

  private static long waitingOnLocks() throws SQLException {
    try (Connection c = DriverManager.getConnection(server.dbUrl());
        PreparedStatement ps = c.prepareStatement("SELECT count(*) FROM pg_stat_activity"
            + " WHERE datname = current_database() AND application_name = 'context-memory' AND wait_event_type = 'Lock'"
            + " AND wait_event IN ('transactionid', 'tuple')")) {
      try (ResultSet rs = ps.executeQuery()) {
        rs.next();
        return rs.getLong(1);
      }
    }
  }

  private static void assertPoolClean() throws Exception {
    awaitTrue("no connection checked out", () -> server.server().pool().getHikariPoolMXBean().getActiveConnections() == 0);
    awaitTrue("no server session idle in a transaction", () -> unchecked(() -> serverSessions("idle in transaction")) == 0);
    // Awaited, not read once: the staged-vector indexer borrows a request-pool connection for a
    // moment every poll interval, also right after the check above. A leaked one never comes back.
    awaitTrue("every connection idle", () -> server.server().pool().getHikariPoolMXBean().getIdleConnections() == 2);
  }

  interface SqlSupplier {
    long get() throws SQLException;
  }

  private static long unchecked(SqlSupplier s) {
    try {
      return s.get();
    } catch (SQLException e) {
      throw new RuntimeException(e);
    }
  }

  private static void awaitTrue(String what, BooleanSupplier condition) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (!condition.getAsBoolean()) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError("timed out waiting until " + what);
      }
      Thread.sleep(20);
    }
  }

  @Test
  void errorsReturnTheirConnections() throws Exception {
    Conversation conv = newConversation();
    conversations.closeConversation(CloseConversationRequest.newBuilder().setConversationId(conv.getId()).build());
    for (int i = 0; i < 5; i++) { // more failures than connections: a leak would exhaust the pool
      assertError(Code.FAILED_PRECONDITION, "CONVERSATION_CLOSED", () -> conversations.appendMessage(
          AppendMessageRequest.newBuilder().setConversationId(conv.getId()).setMessage(user("x")).build()));
      assertError(Code.FAILED_PRECONDITION, "CONVERSATION_CLOSED", () -> conversations.appendMessages(
          AppendMessagesRequest.newBuilder().setConversationId(conv.getId()).addMessages(user("x")).build()));
      assertError(Code.NOT_FOUND, "CONVERSATION_NOT_FOUND", () -> conversations.appendMessages(
          AppendMessagesRequest.newBuilder().setConversationId(UUID.randomUUID().toString()).addMessages(user("x")).build()));
      assertInvalid("conversation_id", () -> conversations.listMessages(ListMessagesRequest.getDefaultInstance()));
    }
    assertPoolClean();
  }

  @Test
  void deadlinesCancelTheStatementAndRollBack() throws Exception {
    Conversation conv = newConversation();
    try (Connection locker = lock(conv.getId())) {
      StatusRuntimeException single = assertThrows(StatusRuntimeException.class, () -> conversations
          .withDeadlineAfter(300, TimeUnit.MILLISECONDS)
          .appendMessage(AppendMessageRequest.newBuilder().setConversationId(conv.getId()).setMessage(user("a")).build()));
      assertEquals(Code.DEADLINE_EXCEEDED, single.getStatus().getCode());
      StatusRuntimeException batch = assertThrows(StatusRuntimeException.class, () -> conversations
          .withDeadlineAfter(300, TimeUnit.MILLISECONDS)
          .appendMessages(AppendMessagesRequest.newBuilder().setConversationId(conv.getId())
              .addMessages(user("b")).addMessages(user("c")).build()));
      assertEquals(Code.DEADLINE_EXCEEDED, batch.getStatus().getCode());
      // The statements stop waiting at once, not at statement_timeout, while the lock is still held.
      awaitTrue("no server statement waits on the lock", () -> unchecked(PoolHygieneTest::waitingOnLocks) == 0);
      assertPoolClean();
      locker.rollback();
    }
    assertEquals(0, conversations.getConversation(GetConversationRequest.newBuilder()
        .setConversationId(conv.getId()).build()).getConversation().getMessageCount(), "nothing was committed");
  }

  @Test
  void clientCancellationCancelsTheStatement() throws Exception {
    Conversation conv = newConversation();
    try (Connection locker = lock(conv.getId())) {
      Context.CancellableContext ctx = Context.current().withCancellation();
      Future<?> call = threads.submit(() -> ctx.run(() -> conversations.appendMessage(
          AppendMessageRequest.newBuilder().setConversationId(conv.getId()).setMessage(user("a")).build())));
      awaitTrue("the append waits on the lock", () -> unchecked(PoolHygieneTest::waitingOnLocks) == 1);
      ctx.cancel(null);
      ExecutionException e = assertThrows(ExecutionException.class, () -> call.get(10, TimeUnit.SECONDS));
      assertEquals(Code.CANCELLED, ((StatusRuntimeException) e.getCause()).getStatus().getCode());
      awaitTrue("no server statement waits on the lock", () -> unchecked(PoolHygieneTest::waitingOnLocks) == 0);
      assertPoolClean();
      locker.rollback();
    }
  }

  @Test
  void aClientVanishingMidImportLeavesNothingHeld() throws Exception {
    Conversation conv = newConversation();
    ConversationServiceGrpc.ConversationServiceStub async = ConversationServiceGrpc.newStub(server.channel());
    try (Connection locker = lock(conv.getId())) {
      CompletableFuture<Throwable> ended = new CompletableFuture<>();
      CompletableFuture<ClientCallStreamObserver<ImportMessagesRequest>> stream = new CompletableFuture<>();
      var in = async.importMessages(new ClientResponseObserver<ImportMessagesRequest, ImportMessagesResponse>() {
        @Override
        public void beforeStart(ClientCallStreamObserver<ImportMessagesRequest> requestStream) {
          stream.complete(requestStream);
        }

        @Override
        public void onNext(ImportMessagesResponse value) {}

        @Override
        public void onError(Throwable t) {
          ended.complete(t);
        }

        @Override
        public void onCompleted() {
          ended.complete(null);
        }
      });
      // One full chunk for the locked conversation's thread: its flush blocks on the lock.
      for (int i = 0; i < 1000; i++) {
        in.onNext(ImportMessagesRequest.newBuilder().setCustomerId(conv.getCustomerId())
            .setChannel(Channel.CHANNEL_WEB).setThreadKey("t")
            .setMessage(user("line " + i).toBuilder().setIdempotencyKey("k" + i)
                .setCreateTime(Timestamps.fromMillis(1_700_000_000_000L + i)))
            .build());
      }
      awaitTrue("the import's chunk waits on the lock", () -> unchecked(PoolHygieneTest::waitingOnLocks) == 1);
      stream.get().cancel("client went away", null); // no half-close: the client just disappears
      assertTrue(ended.get(10, TimeUnit.SECONDS) instanceof StatusRuntimeException);
      awaitTrue("no server statement waits on the lock", () -> unchecked(PoolHygieneTest::waitingOnLocks) == 0);
      assertPoolClean();
      locker.rollback();
    }
    assertEquals(0, conversations.listMessages(ListMessagesRequest.newBuilder()
        .setConversationId(conv.getId()).build()).getMessagesCount(), "the unfinished chunk was rolled back");
    assertPoolClean();
    // And the server is fully usable afterwards.
    assertEquals(List.of(1L), conversations.appendMessages(AppendMessagesRequest.newBuilder()
        .setConversationId(conv.getId()).addMessages(user("after")).build()).getResultsList().stream()
        .map(AppendedMessage::getSequence).toList());
  }
}

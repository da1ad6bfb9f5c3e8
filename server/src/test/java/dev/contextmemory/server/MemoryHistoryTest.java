package dev.contextmemory.server;

import static dev.contextmemory.server.testing.GrpcErrors.assertError;
import static dev.contextmemory.server.testing.GrpcErrors.assertInvalid;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.FieldMask;
import com.google.protobuf.Timestamp;
import com.google.protobuf.util.Timestamps;
import dev.contextmemory.server.testing.TestServer;
import dev.contextmemory.v1.*;
import io.grpc.Status.Code;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.ThreadLocalRandom;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** Memory history (ListMemoryHistory), as_of_time reads and the erasure of history, over gRPC. */
class MemoryHistoryTest {
  private static final int DIM = 768;
  private static TestServer server;
  private static CustomerServiceGrpc.CustomerServiceBlockingStub customers;
  private static MemoryServiceGrpc.MemoryServiceBlockingStub memories;

  @AfterAll
  static void stop() {
    server.close();
  }

  @BeforeAll
  static void start() {
    // Its own database: tenant-wide searches of other classes must not meet these memories.
    server = TestServer.start(java.util.Map.of("MEMORY_SWEEP_INTERVAL_MS", "200"));
    customers = CustomerServiceGrpc.newBlockingStub(server.channel());
    memories = MemoryServiceGrpc.newBlockingStub(server.channel());
  }

  private static String newCustomer() {
    return customers.createCustomer(CreateCustomerRequest.newBuilder().setCustomer(Customer.newBuilder()
        .setDisplayName("Hist").setPhone("+1555" + (2000000 + ThreadLocalRandom.current().nextInt(7999999))))
        .build()).getCustomer().getId();
  }

  private static List<Float> vec(int axis) {
    List<Float> v = new ArrayList<>(Collections.nCopies(DIM, 0f));
    v.set(axis, 1f);
    return v;
  }

  private static Memory.Builder fact(String key, String content) {
    Memory.Builder m = Memory.newBuilder().setKind(MemoryKind.MEMORY_KIND_FACT).setContent(content);
    return key == null ? m : m.setKey(key);
  }

  private static List<MemoryChange> history(ListMemoryHistoryRequest.Builder req) {
    List<MemoryChange> all = new ArrayList<>();
    String token = "";
    do {
      ListMemoryHistoryResponse page = memories.listMemoryHistory(req.setPageSize(2).setPageToken(token).build());
      assertTrue(page.getChangesCount() <= 2);
      all.addAll(page.getChangesList());
      token = page.getNextPageToken();
    } while (!token.isEmpty());
    return all;
  }

  private static Timestamp between(Timestamp a, Timestamp b) {
    return Timestamps.fromMicros((Timestamps.toMicros(a) + Timestamps.toMicros(b)) / 2);
  }

  private static void sql(String statement, Object... args) throws SQLException {
    try (Connection c = DriverManager.getConnection(server.dbUrl()); PreparedStatement ps = c.prepareStatement(statement)) {
      for (int i = 0; i < args.length; i++) {
        ps.setObject(i + 1, args[i]);
      }
      ps.execute();
    }
  }

  private static long count(String statement, Object arg) throws SQLException {
    try (Connection c = DriverManager.getConnection(server.dbUrl()); PreparedStatement ps = c.prepareStatement(statement)) {
      ps.setObject(1, arg);
      try (ResultSet rs = ps.executeQuery()) {
        rs.next();
        return rs.getLong(1);
      }
    }
  }

  @Test
  void everyKindOfChangeIsRecordedWithThePreviousContent() throws SQLException {
    String customer = newCustomer();
    Memory m = memories.createMemory(CreateMemoryRequest.newBuilder().setCustomerId(customer)
        .setMemory(fact("city", "lives in Lisbon")).build()).getMemory();
    memories.updateMemory(UpdateMemoryRequest.newBuilder()
        .setMemory(Memory.newBuilder().setId(m.getId()).setContent("lives in Porto").setSource("crm"))
        .setUpdateMask(FieldMask.newBuilder().addPaths("content").addPaths("source")).build());
    memories.upsertMemory(UpsertMemoryRequest.newBuilder().setCustomerId(customer)
        .setMemory(fact("city", "lives in Faro").setSource("crm")).build());
    memories.updateMemory(UpdateMemoryRequest.newBuilder()
        .setMemory(Memory.newBuilder().setId(m.getId()).setImportance(0.9f))
        .setUpdateMask(FieldMask.newBuilder().addPaths("importance")).build());
    memories.confirmMemories(ConfirmMemoriesRequest.newBuilder().addConfirmations(MemoryConfirmation.newBuilder()
        .setMemoryId(m.getId()).setOutcome(ConfirmationOutcome.CONFIRMATION_OUTCOME_CONFIRMED)).build());
    memories.confirmMemories(ConfirmMemoriesRequest.newBuilder().addConfirmations(MemoryConfirmation.newBuilder()
        .setMemoryId(m.getId()).setOutcome(ConfirmationOutcome.CONFIRMATION_OUTCOME_REJECTED)).build());
    memories.deleteMemory(DeleteMemoryRequest.newBuilder().setMemoryId(m.getId()).build());

    List<MemoryChange> h = history(ListMemoryHistoryRequest.newBuilder().setMemoryId(m.getId()));
    List<MemoryChangeType> types = h.stream().map(MemoryChange::getType).toList();
    assertEquals(List.of(MemoryChangeType.MEMORY_CHANGE_TYPE_CREATED, MemoryChangeType.MEMORY_CHANGE_TYPE_UPDATED,
        MemoryChangeType.MEMORY_CHANGE_TYPE_SUPERSEDED, MemoryChangeType.MEMORY_CHANGE_TYPE_UPDATED,
        MemoryChangeType.MEMORY_CHANGE_TYPE_CONFIRMED, MemoryChangeType.MEMORY_CHANGE_TYPE_REJECTED,
        MemoryChangeType.MEMORY_CHANGE_TYPE_DELETED), types);
    for (MemoryChange c : h) {
      assertEquals("local", c.getActor(), "the caller (authentication off)");
      assertEquals(m.getId(), c.getMemoryId());
      assertEquals(customer, c.getCustomerId());
    }
    assertFalse(h.get(0).hasPrevious());
    assertEquals(List.of("content", "source"), h.get(1).getChangedFieldsList());
    assertEquals("lives in Lisbon", h.get(1).getPrevious().getContent());
    assertEquals(m.getCreateTime(), h.get(1).getValidFromTime());
    assertEquals(h.get(1).getChangeTime(), h.get(1).getValidToTime());
    assertEquals(List.of("content"), h.get(2).getChangedFieldsList());
    assertEquals("lives in Porto", h.get(2).getPrevious().getContent());
    assertEquals(h.get(1).getValidToTime(), h.get(2).getValidFromTime(), "versions are contiguous");
    assertEquals(List.of("importance"), h.get(3).getChangedFieldsList());
    assertFalse(h.get(3).hasPrevious(), "the content did not change");
    assertFalse(h.get(4).hasPrevious());
    assertEquals("lives in Faro", h.get(6).getPrevious().getContent());
    assertEquals(0.45f, h.get(6).getPrevious().getImportance(), 1e-6);
    assertEquals(1, h.get(6).getPrevious().getConfirmCount());

    // The memory is gone; its history is not (until the customer is erased).
    assertError(Code.NOT_FOUND, "MEMORY_NOT_FOUND",
        () -> memories.getMemory(GetMemoryRequest.newBuilder().setMemoryId(m.getId()).build()));
    assertEquals(7, history(ListMemoryHistoryRequest.newBuilder().setCustomerId(customer)).size());
  }

  @Test
  void expiryIsRecordedWithItsValidity() throws SQLException {
    String customer = newCustomer();
    Memory m = memories.createMemory(CreateMemoryRequest.newBuilder().setCustomerId(customer)
        .setMemory(fact("promo", "asked about the spring promo")).build()).getMemory();
    // Expire it behind the API's back, as time would (tagged untracked: it is no change of the fact).
    sql("UPDATE memories SET expires_at = now() - interval '1 second'"
        + " FROM (SELECT set_config('context_memory.change', 'untracked', true)) t WHERE id = ?", UUID.fromString(m.getId()));
    // A write that reuses the key removes the expired memory first.
    memories.upsertMemory(UpsertMemoryRequest.newBuilder().setCustomerId(customer)
        .setMemory(fact("promo", "asked about the summer promo")).build());
    List<MemoryChange> h = history(ListMemoryHistoryRequest.newBuilder().setMemoryId(m.getId()));
    assertEquals(List.of(MemoryChangeType.MEMORY_CHANGE_TYPE_CREATED, MemoryChangeType.MEMORY_CHANGE_TYPE_EXPIRED),
        h.stream().map(MemoryChange::getType).toList());
    MemoryChange expired = h.get(1);
    assertEquals("asked about the spring promo", expired.getPrevious().getContent());
    assertEquals(expired.getPrevious().getExpireTime(), expired.getValidToTime(), "valid until it expired");
  }

  @Test
  void theSweepersDeletionIsRecordedAsExpired() throws Exception {
    String customer = newCustomer();
    Memory m = memories.createMemory(CreateMemoryRequest.newBuilder().setCustomerId(customer)
        .setMemory(fact(null, "is travelling this week")).build()).getMemory();
    sql("UPDATE memories SET expires_at = now() - interval '1 second'"
        + " FROM (SELECT set_config('context_memory.change', 'untracked', true)) t WHERE id = ?", UUID.fromString(m.getId()));
    List<MemoryChange> h = List.of();
    for (int i = 0; i < 100 && h.size() < 2; i++) { // the sweeper runs every 200 ms here
      Thread.sleep(100);
      h = history(ListMemoryHistoryRequest.newBuilder().setMemoryId(m.getId()));
    }
    assertEquals(List.of(MemoryChangeType.MEMORY_CHANGE_TYPE_CREATED, MemoryChangeType.MEMORY_CHANGE_TYPE_EXPIRED),
        h.stream().map(MemoryChange::getType).toList());
    assertEquals("system", h.get(1).getActor());
    assertEquals("is travelling this week", h.get(1).getPrevious().getContent());
    assertEquals(0, count("SELECT count(*) FROM memories WHERE id = ?", UUID.fromString(m.getId())), "swept");
  }

  @Test
  void aWorkerStoringAVectorIsNoChangeButAnUntaggedEditIs() throws SQLException {
    String customer = newCustomer();
    Memory m = memories.createMemory(CreateMemoryRequest.newBuilder().setCustomerId(customer)
        .setMemory(fact(null, "has a piano")).build()).getMemory();
    StringBuilder v = new StringBuilder("[1");
    for (int i = 1; i < DIM; i++) {
      v.append(",0");
    }
    sql("UPDATE memories SET embedding = CAST(? AS vector) WHERE id = ?", v.append(']').toString(),
        UUID.fromString(m.getId()));
    sql("UPDATE memories SET source = 'migration' WHERE id = ?", UUID.fromString(m.getId()));
    List<MemoryChange> h = history(ListMemoryHistoryRequest.newBuilder().setMemoryId(m.getId()));
    assertEquals(List.of(MemoryChangeType.MEMORY_CHANGE_TYPE_CREATED, MemoryChangeType.MEMORY_CHANGE_TYPE_UPDATED),
        h.stream().map(MemoryChange::getType).toList());
    assertEquals(List.of("source"), h.get(1).getChangedFieldsList());
    assertEquals("system", h.get(1).getActor());
  }

  @Test
  void batchWritesAreRecordedToo() {
    String customer = newCustomer();
    CreateMemoriesResponse created = memories.createMemories(CreateMemoriesRequest.newBuilder()
        .addRequests(CreateMemoryRequest.newBuilder().setCustomerId(customer).setMemory(fact("a", "likes tea")))
        .addRequests(CreateMemoryRequest.newBuilder().setCustomerId(customer).setMemory(fact("b", "has a cat")))
        .build());
    memories.upsertMemories(UpsertMemoriesRequest.newBuilder()
        .addRequests(UpsertMemoryRequest.newBuilder().setCustomerId(customer).setMemory(fact("a", "likes coffee")))
        .build());
    List<MemoryChange> a = history(ListMemoryHistoryRequest.newBuilder()
        .setMemoryId(created.getResults(0).getMemory().getId()));
    assertEquals(List.of(MemoryChangeType.MEMORY_CHANGE_TYPE_CREATED, MemoryChangeType.MEMORY_CHANGE_TYPE_SUPERSEDED),
        a.stream().map(MemoryChange::getType).toList());
    assertEquals("likes tea", a.get(1).getPrevious().getContent());
    assertEquals(3, history(ListMemoryHistoryRequest.newBuilder().setCustomerId(customer)).size());
  }

  @Test
  void asOfAnswersWithTheFactsValidThen() {
    String customer = newCustomer();
    Memory m = memories.createMemory(CreateMemoryRequest.newBuilder().setCustomerId(customer)
        .setMemory(fact("city", "lives in Lisbon").addAllEmbedding(vec(1))).build()).getMemory();
    Memory gone = memories.createMemory(CreateMemoryRequest.newBuilder().setCustomerId(customer)
        .setMemory(fact(null, "owns a Lisbon tram ticket").addAllEmbedding(vec(3))).build()).getMemory();
    memories.upsertMemory(UpsertMemoryRequest.newBuilder().setCustomerId(customer)
        .setMemory(fact("city", "lives in Porto").addAllEmbedding(vec(2))).build());
    memories.deleteMemory(DeleteMemoryRequest.newBuilder().setMemoryId(gone.getId()).build());
    Memory later = memories.createMemory(CreateMemoryRequest.newBuilder().setCustomerId(customer)
        .setMemory(fact(null, "visited Lisbon last week").addAllEmbedding(vec(1))).build()).getMemory();

    List<MemoryChange> h = history(ListMemoryHistoryRequest.newBuilder().setMemoryId(m.getId()));
    // After the second memory was created, before the upsert replaced Lisbon.
    Timestamp before = between(gone.getCreateTime(), h.get(1).getValidToTime());
    Timestamp beforeAll = Timestamps.fromMicros(Timestamps.toMicros(m.getCreateTime()) - 1);

    // ListMemories: then, the Lisbon version and the since-deleted memory; now, Porto and the newer one.
    List<String> then = memories.listMemories(ListMemoriesRequest.newBuilder().setCustomerId(customer)
        .setAsOfTime(before).build()).getMemoriesList().stream().map(Memory::getContent).sorted().toList();
    assertEquals(List.of("lives in Lisbon", "owns a Lisbon tram ticket"), then);
    List<String> now = memories.listMemories(ListMemoriesRequest.newBuilder().setCustomerId(customer).build())
        .getMemoriesList().stream().map(Memory::getContent).sorted().toList();
    assertEquals(List.of("lives in Porto", "visited Lisbon last week"), now);
    assertEquals(0, memories.listMemories(ListMemoriesRequest.newBuilder().setCustomerId(customer)
        .setAsOfTime(beforeAll).build()).getMemoriesCount());
    assertEquals(m.getId(), memories.listMemories(ListMemoriesRequest.newBuilder().setCustomerId(customer)
        .setKey("city").setAsOfTime(before).build()).getMemories(0).getId(), "a version keeps its memory's id");

    // SearchMemories by text and by vector, then and now.
    List<String> textThen = memories.searchMemories(SearchMemoriesRequest.newBuilder().setCustomerId(customer)
        .setQueryText("Lisbon").setAsOfTime(before).build()).getHitsList().stream()
        .map(x -> x.getMemory().getContent()).sorted().toList();
    assertEquals(List.of("lives in Lisbon", "owns a Lisbon tram ticket"), textThen);
    List<String> textNow = memories.searchMemories(SearchMemoriesRequest.newBuilder().setCustomerId(customer)
        .setQueryText("Lisbon").build()).getHitsList().stream().map(x -> x.getMemory().getContent()).toList();
    assertEquals(List.of("visited Lisbon last week"), textNow);
    SearchMemoriesResponse vectorThen = memories.searchMemories(SearchMemoriesRequest.newBuilder()
        .setCustomerId(customer).addAllQueryEmbedding(vec(1)).setTopK(1).setAsOfTime(before).build());
    assertEquals("lives in Lisbon", vectorThen.getHits(0).getMemory().getContent());
    assertEquals(1.0, vectorThen.getHits(0).getScore(), 1e-6);
    SearchMemoriesResponse hybridThen = memories.searchMemories(SearchMemoriesRequest.newBuilder()
        .setCustomerId(customer).addAllQueryEmbedding(vec(3)).setQueryText("tram").setAsOfTime(before).build());
    assertEquals("owns a Lisbon tram ticket", hybridThen.getHits(0).getMemory().getContent());
    assertEquals(later.getId(), memories.searchMemories(SearchMemoriesRequest.newBuilder().setCustomerId(customer)
        .addAllQueryEmbedding(vec(1)).setTopK(1).build()).getHits(0).getMemory().getId());
  }

  @Test
  void asOfInTheFutureAndBadHistoryRequestsAreInvalid() {
    String customer = newCustomer();
    Timestamp future = Timestamps.fromMillis(System.currentTimeMillis() + 60_000);
    assertInvalid("as_of_time", () -> memories.listMemories(ListMemoriesRequest.newBuilder().setCustomerId(customer)
        .setAsOfTime(future).build()));
    assertInvalid("as_of_time", () -> memories.searchMemories(SearchMemoriesRequest.newBuilder().setCustomerId(customer)
        .setQueryText("x").setAsOfTime(future).build()));
    assertInvalid("memory_id", () -> memories.listMemoryHistory(ListMemoryHistoryRequest.getDefaultInstance()));
    assertInvalid("customer_id", () -> memories.listMemoryHistory(ListMemoryHistoryRequest.newBuilder()
        .setCustomerId(customer).setMemoryId(UUID.randomUUID().toString()).build()));
    assertInvalid("page_token", () -> memories.listMemoryHistory(ListMemoryHistoryRequest.newBuilder()
        .setCustomerId(customer).setPageToken("forged").build()));
    assertError(Code.NOT_FOUND, "MEMORY_NOT_FOUND", () -> memories.listMemoryHistory(ListMemoryHistoryRequest
        .newBuilder().setMemoryId(UUID.randomUUID().toString()).build()));
    assertError(Code.NOT_FOUND, "CUSTOMER_NOT_FOUND", () -> memories.listMemoryHistory(ListMemoryHistoryRequest
        .newBuilder().setCustomerId(UUID.randomUUID().toString()).build()));
  }

  @Test
  void erasingTheCustomerErasesAndCountsTheirHistory() throws SQLException {
    String customer = newCustomer();
    String kept = newCustomer();
    Memory m = memories.createMemory(CreateMemoryRequest.newBuilder().setCustomerId(customer)
        .setMemory(fact("k", "one")).build()).getMemory();
    memories.upsertMemory(UpsertMemoryRequest.newBuilder().setCustomerId(customer).setMemory(fact("k", "two")).build());
    Memory deleted = memories.createMemory(CreateMemoryRequest.newBuilder().setCustomerId(customer)
        .setMemory(fact(null, "three")).build()).getMemory();
    memories.deleteMemory(DeleteMemoryRequest.newBuilder().setMemoryId(deleted.getId()).build());
    memories.createMemory(CreateMemoryRequest.newBuilder().setCustomerId(kept).setMemory(fact(null, "stays")).build());

    DeleteCustomerResponse r = customers.deleteCustomer(DeleteCustomerRequest.newBuilder().setCustomerId(customer)
        .setErase(true).build());
    assertEquals(1, r.getMemoriesDeleted());
    assertEquals(4, r.getMemoryHistoryDeleted(), r::toString); // created, superseded, created, deleted
    assertEquals(0, count("SELECT count(*) FROM memory_history WHERE customer_id = ?", UUID.fromString(customer)));
    assertError(Code.NOT_FOUND, "MEMORY_NOT_FOUND", () -> memories.listMemoryHistory(ListMemoryHistoryRequest
        .newBuilder().setMemoryId(m.getId()).build()));
    assertEquals(1, count("SELECT count(*) FROM memory_history WHERE customer_id = ?", UUID.fromString(kept)));
    // The erase is audited with its counts.
    assertEquals(1, count("SELECT count(*) FROM audit_events WHERE target_id = ? AND action = 'customer.erase'"
        + " AND counts ->> 'memory_history' = '4'", customer));
  }
}

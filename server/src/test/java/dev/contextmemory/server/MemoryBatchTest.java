package dev.contextmemory.server;

import static dev.contextmemory.server.testing.GrpcErrors.assertInvalid;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.contextmemory.server.testing.TestServer;
import dev.contextmemory.v1.*;
import io.grpc.stub.StreamObserver;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** CreateMemories, UpsertMemories and ImportMemories over gRPC against real PostgreSQL. */
class MemoryBatchTest {
  private static final int DIM = 768;
  private static TestServer server;
  private static CustomerServiceGrpc.CustomerServiceBlockingStub customers;
  private static ConversationServiceGrpc.ConversationServiceBlockingStub conversations;
  private static MemoryServiceGrpc.MemoryServiceBlockingStub memories;
  private static MemoryServiceGrpc.MemoryServiceStub async;

  @AfterAll
  static void stop() {
    server.close();
  }

  @BeforeAll
  static void start() {
    // Its own database: tenant-wide searches of other classes must not meet these memories.
    server = TestServer.start(java.util.Map.of());
    customers = CustomerServiceGrpc.newBlockingStub(server.channel());
    conversations = ConversationServiceGrpc.newBlockingStub(server.channel());
    memories = MemoryServiceGrpc.newBlockingStub(server.channel());
    async = MemoryServiceGrpc.newStub(server.channel());
  }

  private static String newCustomer() {
    return customers.createCustomer(CreateCustomerRequest.newBuilder().setCustomer(Customer.newBuilder()
        .setDisplayName("Batch").setPhone("+1555" + (2000000 + ThreadLocalRandom.current().nextInt(7999999))))
        .build()).getCustomer().getId();
  }

  private static List<Float> vec(int axis) {
    List<Float> v = new ArrayList<>(Collections.nCopies(DIM, 0f));
    v.set(axis % DIM, 1f);
    return v;
  }

  private static CreateMemoryRequest.Builder item(String customerId, String content) {
    return CreateMemoryRequest.newBuilder().setCustomerId(customerId)
        .setMemory(Memory.newBuilder().setKind(MemoryKind.MEMORY_KIND_FACT).setContent(content));
  }

  private static UpsertMemoryRequest.Builder upsertItem(String customerId, String key, String content) {
    return UpsertMemoryRequest.newBuilder().setCustomerId(customerId)
        .setMemory(Memory.newBuilder().setKind(MemoryKind.MEMORY_KIND_FACT).setKey(key).setContent(content));
  }

  /** Makes these memories expired (expiry is never in the past through the API). */
  private static void expire(String... memoryIds) throws SQLException {
    try (Connection c = DriverManager.getConnection(server.dbUrl());
        PreparedStatement ps = c.prepareStatement("UPDATE memories SET expires_at = now() - interval '1 second'"
            + " WHERE id = ANY(?)")) {
      ps.setArray(1, c.createArrayOf("uuid", Arrays.stream(memoryIds).map(UUID::fromString).toArray()));
      ps.execute();
    }
  }

  private static CreateMemoryRequest.Builder keyed(String customerId, String key, String content) {
    return item(customerId, content).setMemory(Memory.newBuilder().setKind(MemoryKind.MEMORY_KIND_FACT).setKey(key)
        .setContent(content));
  }

  private static long memoryCount(String customerId) throws SQLException {
    try (Connection c = DriverManager.getConnection(server.dbUrl());
        PreparedStatement ps = c.prepareStatement("SELECT count(*) FROM memories WHERE customer_id = ?")) {
      ps.setObject(1, UUID.fromString(customerId));
      try (ResultSet rs = ps.executeQuery()) {
        rs.next();
        return rs.getLong(1);
      }
    }
  }

  @Test
  void oneBadItemFailsOnlyItself() throws SQLException {
    String customer = newCustomer();
    String other = newCustomer();
    String othersConversation = conversations.getOrCreateOpenConversation(GetOrCreateOpenConversationRequest
        .newBuilder().setCustomerId(other).setChannel(Channel.CHANNEL_SMS).setThreadKey("t").build())
        .getConversation().getId();
    memories.createMemory(item(customer, "taken").setMemory(Memory.newBuilder().setKind(MemoryKind.MEMORY_KIND_FACT)
        .setKey("taken").setContent("first")).build());

    CreateMemoriesResponse r = memories.createMemories(CreateMemoriesRequest.newBuilder()
        .addRequests(item(customer, "lives in Lisbon").setMemory(Memory.newBuilder()
            .setKind(MemoryKind.MEMORY_KIND_FACT).setContent("lives in Lisbon").addAllEmbedding(vec(1))))
        .addRequests(item(customer, " "))
        .addRequests(item(UUID.randomUUID().toString(), "nobody's"))
        .addRequests(item(customer, "x").setMemory(Memory.newBuilder().setKind(MemoryKind.MEMORY_KIND_FACT)
            .setKey("taken").setContent("second")))
        .addRequests(item(customer, "y").setMemory(Memory.newBuilder().setKind(MemoryKind.MEMORY_KIND_FACT)
            .setContent("y").setConversationId(othersConversation)))
        .addRequests(item(customer, "z").setMemory(Memory.newBuilder().setKind(MemoryKind.MEMORY_KIND_FACT)
            .setContent("z").setConversationId(UUID.randomUUID().toString())))
        .addRequests(item(customer, "no vector, found by text"))
        .build());

    assertEquals(7, r.getResultsCount());
    assertTrue(r.getResults(0).getCreated());
    assertEquals("lives in Lisbon", r.getResults(0).getMemory().getContent());
    // The batch's vector is staged outside the HNSW index: PENDING until the indexer moves it in.
    assertEquals(EmbeddingState.EMBEDDING_STATE_PENDING, r.getResults(0).getMemory().getEmbeddingState());
    assertFailed(r.getResults(1), "INVALID_FIELD", "memory.content");
    assertFailed(r.getResults(2), "CUSTOMER_NOT_FOUND", "customer_id");
    assertFailed(r.getResults(3), "MEMORY_KEY_ALREADY_EXISTS", "memory.key");
    assertFailed(r.getResults(4), "INVALID_FIELD", "memory.conversation_id");
    assertFailed(r.getResults(5), "CONVERSATION_NOT_FOUND", "memory.conversation_id");
    assertTrue(r.getResults(6).getCreated());
    assertFalse(r.getResults(6).getMemory().getHasEmbedding());
    // What succeeded is stored and readable; the failures wrote nothing.
    assertEquals("lives in Lisbon", memories.getMemory(GetMemoryRequest.newBuilder()
        .setMemoryId(r.getResults(0).getMemory().getId()).build()).getMemory().getContent());
    assertEquals(3, memoryCount(customer));
    assertEquals(1, memories.searchMemories(SearchMemoriesRequest.newBuilder().setCustomerId(customer)
        .setQueryText("vector found").build()).getHitsCount());
  }

  @Test
  void aBatchsVectorsAreStagedThenIndexedInTheBackgroundWithoutAHistoryEntry() throws Exception {
    String customer = newCustomer();
    CreateMemoriesRequest.Builder req = CreateMemoriesRequest.newBuilder();
    int n = 150; // more than one indexer batch
    for (int i = 0; i < n; i++) {
      req.addRequests(item(customer, "staged fact " + i).setMemory(Memory.newBuilder()
          .setKind(MemoryKind.MEMORY_KIND_FACT).setContent("staged fact " + i).addAllEmbedding(vec(i))));
    }
    CreateMemoriesResponse r = memories.createMemories(req.build());
    for (int i = 0; i < n; i++) {
      Memory m = r.getResults(i).getMemory();
      // Acknowledged and found by text at once; by vector once indexed.
      assertTrue(m.getEmbeddingState() == EmbeddingState.EMBEDDING_STATE_PENDING
          || m.getEmbeddingState() == EmbeddingState.EMBEDDING_STATE_READY, m.getEmbeddingState().toString());
    }
    for (int i = 0; i < n; i++) {
      Memory m = ServerEmbeddingTest.await(memories, r.getResults(i).getMemory().getId(),
          EmbeddingState.EMBEDDING_STATE_READY, "client");
      assertTrue(m.getHasEmbedding());
    }
    // The vector the client sent, intact, and found by it.
    Memory got = memories.getMemory(GetMemoryRequest.newBuilder().setMemoryId(r.getResults(7).getMemory().getId())
        .setIncludeEmbedding(true).build()).getMemory();
    assertEquals(vec(7), got.getEmbeddingList());
    SearchMemoriesResponse byVector = memories.searchMemories(SearchMemoriesRequest.newBuilder().setCustomerId(customer)
        .setMode(MemorySearchMode.MEMORY_SEARCH_MODE_VECTOR).addAllQueryEmbedding(vec(7)).setTopK(1).build());
    assertEquals(got.getId(), byVector.getHits(0).getMemory().getId());
    // Moving the vector into the index is no change of the fact.
    assertEquals(List.of(MemoryChangeType.MEMORY_CHANGE_TYPE_CREATED),
        memories.listMemoryHistory(ListMemoryHistoryRequest.newBuilder().setMemoryId(got.getId()).build())
            .getChangesList().stream().map(MemoryChange::getType).toList());
    // A staged row a single write replaces in the meantime keeps the single write's vector.
    CreateMemoriesResponse again = memories.createMemories(CreateMemoriesRequest.newBuilder()
        .addRequests(item(customer, "k").setMemory(Memory.newBuilder().setKind(MemoryKind.MEMORY_KIND_FACT)
            .setKey("staged-key").setContent("k").addAllEmbedding(vec(1)))).build());
    Memory replaced = memories.upsertMemory(UpsertMemoryRequest.newBuilder().setCustomerId(customer)
        .setMemory(Memory.newBuilder().setKind(MemoryKind.MEMORY_KIND_FACT).setKey("staged-key").setContent("k2")
            .addAllEmbedding(vec(2))).build()).getMemory();
    assertEquals(again.getResults(0).getMemory().getId(), replaced.getId());
    assertEquals(EmbeddingState.EMBEDDING_STATE_READY, replaced.getEmbeddingState());
    assertEquals(vec(2), memories.getMemory(GetMemoryRequest.newBuilder().setMemoryId(replaced.getId())
        .setIncludeEmbedding(true).build()).getMemory().getEmbeddingList());
  }

  /** A vector with no two equal values, so a slice that is off by one or by an item shows. */
  private static List<Float> distinct(int seed) {
    List<Float> v = new ArrayList<>(DIM);
    for (int i = 0; i < DIM; i++) {
      v.add((float) Math.sin(seed * 1_000.0 + i) / 3);
    }
    return v;
  }

  /** The stored vector, staged or already moved into the index, as floats. */
  private static List<Float> storedVector(String memoryId) throws SQLException {
    try (Connection c = DriverManager.getConnection(server.dbUrl()); PreparedStatement ps = c.prepareStatement(
        "SELECT CAST(coalesce(embedding_staged, embedding) AS real[]) FROM memories WHERE id = ?")) {
      ps.setObject(1, UUID.fromString(memoryId));
      try (ResultSet rs = ps.executeQuery()) {
        assertTrue(rs.next());
        java.sql.Array a = rs.getArray(1);
        return a == null ? null : List.of((Float[]) a.getArray());
      }
    }
  }

  @Test
  void eachItemKeepsItsOwnVectorInABatchMixingItemsWithAndWithoutOne() throws SQLException {
    String customer = newCustomer();
    CreateMemoriesRequest.Builder req = CreateMemoriesRequest.newBuilder();
    for (int i = 0; i < 9; i++) {
      Memory.Builder m = Memory.newBuilder().setKind(MemoryKind.MEMORY_KIND_FACT).setContent("mixed " + i);
      if (i % 3 != 1) {
        m.addAllEmbedding(distinct(i));
      }
      // Item 4 fails in the store (no such customer), item 6 at the edge: neither may shift the others.
      String owner = i == 4 ? UUID.randomUUID().toString() : customer;
      if (i == 6) {
        m.setImportance(2);
      }
      req.addRequests(CreateMemoryRequest.newBuilder().setCustomerId(owner).setMemory(m));
    }
    CreateMemoriesResponse r = memories.createMemories(req.build());
    for (int i = 0; i < 9; i++) {
      if (i == 4) {
        assertFailed(r.getResults(i), "CUSTOMER_NOT_FOUND", "customer_id");
      } else if (i == 6) {
        assertFailed(r.getResults(i), "INVALID_FIELD", "memory.importance");
      } else {
        assertEquals(i % 3 != 1 ? distinct(i) : null, storedVector(r.getResults(i).getMemory().getId()), "item " + i);
      }
    }
    // Upserts write items with and without importance by one statement each, each its own vectors.
    UpsertMemoriesRequest.Builder up = UpsertMemoriesRequest.newBuilder();
    for (int i = 0; i < 6; i++) {
      Memory.Builder m = Memory.newBuilder().setKind(MemoryKind.MEMORY_KIND_FACT).setKey("mixed-" + i)
          .setContent("mixed upsert " + i);
      if (i != 2) {
        m.addAllEmbedding(distinct(100 + i));
      }
      if (i % 2 == 0) {
        m.setImportance(0.9f);
      }
      up.addRequests(UpsertMemoryRequest.newBuilder().setCustomerId(customer).setMemory(m));
    }
    UpsertMemoriesResponse u = memories.upsertMemories(up.build());
    for (int i = 0; i < 6; i++) {
      assertEquals(i != 2 ? distinct(100 + i) : null, storedVector(u.getResults(i).getMemory().getId()), "item " + i);
    }
  }

  @Test
  void aRetriedBatchCreatesNothingNew() throws SQLException {
    String customer = newCustomer();
    CreateMemoriesRequest.Builder req = CreateMemoriesRequest.newBuilder();
    for (int i = 0; i < 50; i++) {
      req.addRequests(item(customer, "fact " + i).setRequestId("req-" + i)
          .setMemory(Memory.newBuilder().setKind(MemoryKind.MEMORY_KIND_FACT).setContent("fact " + i)
              .setKey("k" + i).addAllEmbedding(vec(i))));
    }
    CreateMemoriesResponse first = memories.createMemories(req.build());
    CreateMemoriesResponse retry = memories.createMemories(req.build());
    for (int i = 0; i < 50; i++) {
      assertTrue(first.getResults(i).getCreated(), first.getResults(i)::toString);
      assertFalse(retry.getResults(i).getCreated(), retry.getResults(i)::toString);
      assertFalse(retry.getResults(i).hasError(), retry.getResults(i)::toString);
      assertEquals(first.getResults(i).getMemory().getId(), retry.getResults(i).getMemory().getId());
    }
    assertEquals(50, memoryCount(customer));
  }

  @Test
  void duplicatesWithinABatchFailTheLaterItem() {
    String customer = newCustomer();
    CreateMemoriesResponse r = memories.createMemories(CreateMemoriesRequest.newBuilder()
        .addRequests(item(customer, "a").setRequestId("same"))
        .addRequests(item(customer, "b").setRequestId("same"))
        .build());
    assertTrue(r.getResults(0).getCreated());
    assertFailed(r.getResults(1), "INVALID_FIELD", "request_id");

    UpsertMemoriesResponse u = memories.upsertMemories(UpsertMemoriesRequest.newBuilder()
        .addRequests(upsertItem(customer, "k", "one"))
        .addRequests(upsertItem(customer, "k", "two"))
        .addRequests(upsertItem(customer, "", "no key"))
        .build());
    assertTrue(u.getResults(0).getCreated());
    assertFailed(u.getResults(1), "INVALID_FIELD", "memory.key");
    assertFailed(u.getResults(2), "INVALID_FIELD", "memory.key");
  }

  @Test
  void batchSizeIsCheckedForTheCall() {
    assertInvalid("requests", () -> memories.createMemories(CreateMemoriesRequest.getDefaultInstance()));
    assertInvalid("requests", () -> memories.upsertMemories(UpsertMemoriesRequest.getDefaultInstance()));
    String customer = newCustomer();
    CreateMemoriesRequest.Builder big = CreateMemoriesRequest.newBuilder();
    for (int i = 0; i < 1_001; i++) {
      big.addRequests(item(customer, "m" + i));
    }
    assertInvalid("requests", () -> memories.createMemories(big.build()));
  }

  @Test
  void upsertsCreateThenReplaceByKey() {
    String customer = newCustomer();
    UpsertMemoriesResponse first = memories.upsertMemories(UpsertMemoriesRequest.newBuilder()
        .addRequests(upsertItem(customer, "channel", "prefers SMS").setMemory(Memory.newBuilder()
            .setKind(MemoryKind.MEMORY_KIND_PREFERENCE).setKey("channel").setContent("prefers SMS").setImportance(0.9f)))
        .addRequests(upsertItem(customer, "city", "lives in Porto"))
        .build());
    assertTrue(first.getResults(0).getCreated());
    assertTrue(first.getResults(1).getCreated());
    assertEquals(0.5f, first.getResults(1).getMemory().getImportance());

    UpsertMemoriesResponse second = memories.upsertMemories(UpsertMemoriesRequest.newBuilder()
        .addRequests(upsertItem(customer, "channel", "prefers email"))
        .addRequests(upsertItem(customer, "city", "lives in Faro").setMemory(Memory.newBuilder()
            .setKind(MemoryKind.MEMORY_KIND_FACT).setKey("city").setContent("lives in Faro").setImportance(0.2f)))
        .addRequests(upsertItem(customer, "new", "has a dog"))
        .build());
    assertFalse(second.getResults(0).getCreated());
    assertEquals(first.getResults(0).getMemory().getId(), second.getResults(0).getMemory().getId());
    assertEquals("prefers email", second.getResults(0).getMemory().getContent());
    assertEquals(0.9f, second.getResults(0).getMemory().getImportance(), "kept: the item gave none");
    assertFalse(second.getResults(1).getCreated());
    assertEquals(0.2f, second.getResults(1).getMemory().getImportance(), "replaced: the item gave one");
    assertTrue(second.getResults(2).getCreated());
  }

  @Test
  void anExpiredMemoryDoesNotHoldItsKeyOrRequestId() throws SQLException {
    String customer = newCustomer();
    CreateMemoriesRequest req = CreateMemoriesRequest.newBuilder()
        .addRequests(item(customer, "x").setRequestId("r1").setMemory(Memory.newBuilder()
            .setKind(MemoryKind.MEMORY_KIND_FACT).setKey("k").setContent("old"))).build();
    String oldId = memories.createMemories(req).getResults(0).getMemory().getId();
    expire(oldId);
    MemoryWriteResult again = memories.createMemories(req).getResults(0);
    assertTrue(again.getCreated(), again::toString);
    assertFalse(oldId.equals(again.getMemory().getId()));
    assertEquals(1, memoryCount(customer));
  }

  @Test
  void anUpsertReplacesAnExpiredKeyHolderWithANewMemory() throws SQLException {
    String customer = newCustomer();
    String oldId = memories.upsertMemories(UpsertMemoriesRequest.newBuilder()
        .addRequests(upsertItem(customer, "k", "old")).build()).getResults(0).getMemory().getId();
    expire(oldId);
    MemoryWriteResult again = memories.upsertMemories(UpsertMemoriesRequest.newBuilder()
        .addRequests(upsertItem(customer, "k", "new")).addRequests(upsertItem(customer, "other", "x")).build())
        .getResults(0);
    assertTrue(again.getCreated(), again::toString);
    assertFalse(oldId.equals(again.getMemory().getId()));
    assertEquals("new", again.getMemory().getContent());
    assertEquals(2, memoryCount(customer));
  }

  /** Only the items an expired memory refused are written again; live names still refuse theirs. */
  @Test
  void aBatchTakesExpiredNamesAndStillRefusesLiveOnes() throws SQLException {
    String customer = newCustomer();
    var held = memories.createMemories(CreateMemoriesRequest.newBuilder()
        .addRequests(keyed(customer, "gone", "expired by key"))
        .addRequests(item(customer, "expired by request id").setRequestId("r-gone"))
        .addRequests(keyed(customer, "live", "live by key"))
        .addRequests(item(customer, "live by request id").setRequestId("r-live")).build());
    expire(held.getResults(0).getMemory().getId(), held.getResults(1).getMemory().getId());

    CreateMemoriesResponse second = memories.createMemories(CreateMemoriesRequest.newBuilder()
        .addRequests(item(customer, "new"))
        .addRequests(keyed(customer, "gone", "takes the key"))
        .addRequests(item(customer, "takes the request id").setRequestId("r-gone"))
        .addRequests(keyed(customer, "live", "refused"))
        .addRequests(item(customer, "replayed").setRequestId("r-live")).build());
    assertTrue(second.getResults(0).getCreated(), second::toString);
    assertTrue(second.getResults(1).getCreated(), second::toString);
    assertEquals("takes the key", second.getResults(1).getMemory().getContent());
    assertTrue(second.getResults(2).getCreated(), second::toString);
    assertEquals("takes the request id", second.getResults(2).getMemory().getContent());
    assertEquals("MEMORY_KEY_ALREADY_EXISTS", second.getResults(3).getError().getReason(), second::toString);
    assertFalse(second.getResults(4).getCreated(), second::toString);
    assertEquals(held.getResults(3).getMemory().getId(), second.getResults(4).getMemory().getId());
    // two live from the first batch, three new: the expired two are gone (and their history says so)
    assertEquals(5, memoryCount(customer));
    try (Connection c = DriverManager.getConnection(server.dbUrl());
        PreparedStatement ps = c.prepareStatement(
            "SELECT count(*) FROM memory_history WHERE customer_id = ? AND change = 'expired'")) {
      ps.setObject(1, UUID.fromString(customer));
      try (ResultSet rs = ps.executeQuery()) {
        rs.next();
        assertEquals(2, rs.getLong(1));
      }
    }
  }

  @Test
  void importCreatesOnceAndReRunSkipsEverything() throws SQLException {
    String customer = newCustomer();
    List<ImportMemoriesRequest> items = new ArrayList<>();
    for (int i = 0; i < 1_200; i++) { // more than one chunk; a few with vectors (each costs an HNSW insert)
      Memory.Builder m = Memory.newBuilder().setKind(MemoryKind.MEMORY_KIND_FACT).setContent("imported fact " + i);
      items.add(ImportMemoriesRequest.newBuilder().setCustomerId(customer).setRequestId("src-" + i)
          .setMemory(i % 100 == 0 ? m.addAllEmbedding(vec(i)) : m).build());
    }
    items.add(ImportMemoriesRequest.newBuilder().setCustomerId(customer)
        .setMemory(Memory.newBuilder().setKind(MemoryKind.MEMORY_KIND_FACT).setContent("no request id")).build());
    items.add(ImportMemoriesRequest.newBuilder().setCustomerId(UUID.randomUUID().toString()).setRequestId("src-x")
        .setMemory(Memory.newBuilder().setKind(MemoryKind.MEMORY_KIND_FACT).setContent("unknown customer")).build());
    items.add(items.get(5)); // a repeat within the stream

    ImportMemoriesResponse first = importAll(items);
    assertEquals(1_203, first.getItemsReceived());
    assertEquals(1_200, first.getMemoriesCreated(), first::toString);
    assertEquals(1, first.getMemoriesSkipped(), first::toString);
    assertEquals(2, first.getItemsFailed());
    assertEquals(1_200, first.getErrors(0).getIndex());
    assertEquals("request_id", first.getErrors(0).getError().getField());
    assertEquals(1_201, first.getErrors(1).getIndex());
    assertEquals("CUSTOMER_NOT_FOUND", first.getErrors(1).getError().getReason());

    ImportMemoriesResponse again = importAll(items);
    assertEquals(0, again.getMemoriesCreated(), again::toString);
    assertEquals(1_201, again.getMemoriesSkipped(), again::toString);
    assertEquals(2, again.getItemsFailed());
    assertEquals(1_200, memoryCount(customer));
  }

  private static ImportMemoriesResponse importAll(List<ImportMemoriesRequest> items) {
    CompletableFuture<ImportMemoriesResponse> done = new CompletableFuture<>();
    StreamObserver<ImportMemoriesRequest> in = async.importMemories(new StreamObserver<>() {
      @Override
      public void onNext(ImportMemoriesResponse value) {
        done.complete(value);
      }

      @Override
      public void onError(Throwable t) {
        done.completeExceptionally(t);
      }

      @Override
      public void onCompleted() {}
    });
    items.forEach(in::onNext);
    in.onCompleted();
    try {
      return done.get(60, TimeUnit.SECONDS);
    } catch (Exception e) {
      throw new AssertionError("ImportMemories failed", e);
    }
  }

  private static void assertFailed(MemoryWriteResult r, String reason, String field) {
    assertFalse(r.hasMemory(), r::toString);
    assertFalse(r.getCreated(), r::toString);
    assertEquals(reason, r.getError().getReason(), r::toString);
    assertEquals(field, r.getError().getField(), r::toString);
  }
}

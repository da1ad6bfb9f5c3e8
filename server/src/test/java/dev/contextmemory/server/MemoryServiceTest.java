package dev.contextmemory.server;

import static dev.contextmemory.server.testing.GrpcErrors.assertError;
import static dev.contextmemory.server.testing.GrpcErrors.assertFieldError;
import static dev.contextmemory.server.testing.GrpcErrors.assertInvalid;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.FieldMask;
import com.google.protobuf.Struct;
import com.google.protobuf.Value;
import com.google.protobuf.util.Durations;
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
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** MemoryService over gRPC against real PostgreSQL: every RPC, its error paths, expiry and the sweeper. */
class MemoryServiceTest {
  private static final int DIM = 768;
  private static TestServer server;
  private static CustomerServiceGrpc.CustomerServiceBlockingStub customers;
  private static ConversationServiceGrpc.ConversationServiceBlockingStub conversations;
  private static MemoryServiceGrpc.MemoryServiceBlockingStub memories;

  @BeforeAll
  static void start() {
    server = TestServer.shared();
    customers = CustomerServiceGrpc.newBlockingStub(server.channel());
    conversations = ConversationServiceGrpc.newBlockingStub(server.channel());
    memories = MemoryServiceGrpc.newBlockingStub(server.channel());
  }

  // -----------------------------------------------------------------------------------------------
  // Helpers

  private static String newCustomer() {
    return customers.createCustomer(CreateCustomerRequest.newBuilder().setCustomer(Customer.newBuilder()
        .setDisplayName("Mem").setPhone("+1555" + (2000000 + ThreadLocalRandom.current().nextInt(7999999))))
        .build()).getCustomer().getId();
  }

  /** A unit-ish vector pointing mostly along axis {@code axis}, a little along {@code other}. */
  private static List<Float> vec(int axis, int other, float mix) {
    List<Float> v = new ArrayList<>(DIM);
    for (int i = 0; i < DIM; i++) {
      v.add(i == axis ? 1f : i == other ? mix : 0f);
    }
    return v;
  }

  private static Memory.Builder note(MemoryKind kind, String content) {
    return Memory.newBuilder().setKind(kind).setContent(content);
  }

  private static Memory create(String customerId, Memory.Builder m) {
    return memories.createMemory(CreateMemoryRequest.newBuilder().setCustomerId(customerId).setMemory(m).build())
        .getMemory();
  }

  private static UpsertMemoryResponse upsert(String customerId, Memory.Builder m) {
    return memories.upsertMemory(UpsertMemoryRequest.newBuilder().setCustomerId(customerId).setMemory(m).build());
  }

  private static Memory get(String id) {
    return memories.getMemory(GetMemoryRequest.newBuilder().setMemoryId(id).build()).getMemory();
  }

  private static Struct struct(String k, String v) {
    return Struct.newBuilder().putFields(k, Value.newBuilder().setStringValue(v).build()).build();
  }

  private static void sql(String statement, Object... args) throws SQLException {
    try (Connection c = DriverManager.getConnection(server.dbUrl()); PreparedStatement ps = c.prepareStatement(statement)) {
      for (int i = 0; i < args.length; i++) {
        ps.setObject(i + 1, args[i]);
      }
      ps.execute();
    }
  }

  private static long count(String statement, Object... args) throws SQLException {
    try (Connection c = DriverManager.getConnection(server.dbUrl()); PreparedStatement ps = c.prepareStatement(statement)) {
      for (int i = 0; i < args.length; i++) {
        ps.setObject(i + 1, args[i]);
      }
      try (ResultSet rs = ps.executeQuery()) {
        rs.next();
        return rs.getLong(1);
      }
    }
  }

  private static void expire(String memoryId) throws SQLException {
    sql("UPDATE memories SET expires_at = now() - interval '1 second' WHERE id = ?", UUID.fromString(memoryId));
  }

  // -----------------------------------------------------------------------------------------------
  // Create, Get, Upsert, Update, Delete

  @Test
  void createStoresTheMemoryAndGetReturnsItsEmbeddingOnRequest() {
    String c = newCustomer();
    Memory m = create(c, note(MemoryKind.MEMORY_KIND_FACT, " Has a piano in the basement ")
        .setKey("piano").addAllEmbedding(vec(1, 2, 0.5f)).setSource("agent").setMetadata(struct("topic", "move")));
    assertEquals(c, m.getCustomerId());
    assertEquals("Has a piano in the basement", m.getContent());
    assertEquals(0.5f, m.getImportance(), "importance defaults to 0.5");
    assertTrue(m.getHasEmbedding());
    assertEquals(0, m.getEmbeddingCount());
    assertEquals(vec(1, 2, 0.5f), memories.getMemory(GetMemoryRequest.newBuilder().setMemoryId(m.getId())
        .setIncludeEmbedding(true).build()).getMemory().getEmbeddingList());

    // request_id makes a retried create return the first memory.
    var req = CreateMemoryRequest.newBuilder().setCustomerId(c).setRequestId("req-1")
        .setMemory(note(MemoryKind.MEMORY_KIND_PREFERENCE, "Prefers text over calls")).build();
    assertEquals(memories.createMemory(req).getMemory().getId(), memories.createMemory(req).getMemory().getId());

    assertFieldError(Code.ALREADY_EXISTS, "MEMORY_KEY_ALREADY_EXISTS", "memory.key",
        () -> create(c, note(MemoryKind.MEMORY_KIND_FACT, "again").setKey("piano")));
  }

  @Test
  void createRejectsBadFields() {
    String c = newCustomer();
    assertInvalid("memory.kind", () -> create(c, Memory.newBuilder().setContent("x")));
    assertInvalid("memory.content", () -> create(c, note(MemoryKind.MEMORY_KIND_FACT, "  ")));
    assertInvalid("memory.content", () -> create(c, note(MemoryKind.MEMORY_KIND_FACT, "x".repeat(8193))));
    assertInvalid("memory.embedding", () -> create(c, note(MemoryKind.MEMORY_KIND_FACT, "x").addEmbedding(1f)));
    List<Float> inf = vec(0, 1, 0);
    inf.set(3, Float.POSITIVE_INFINITY);
    assertInvalid("memory.embedding", () -> create(c, note(MemoryKind.MEMORY_KIND_FACT, "x").addAllEmbedding(inf)));
    assertInvalid("memory.importance", () -> create(c, note(MemoryKind.MEMORY_KIND_FACT, "x").setImportance(1.5f)));
    assertInvalid("memory.importance", () -> create(c, note(MemoryKind.MEMORY_KIND_FACT, "x").setImportance(Float.NaN)));
    assertInvalid("memory.expire_time", () -> create(c, note(MemoryKind.MEMORY_KIND_FACT, "x")
        .setExpireTime(Timestamps.fromMillis(System.currentTimeMillis() - 1000))));
    assertInvalid("memory.conversation_id", () -> create(c, note(MemoryKind.MEMORY_KIND_FACT, "x").setConversationId("1")));
    assertInvalid("customer_id", () -> create("nope", note(MemoryKind.MEMORY_KIND_FACT, "x")));
    assertError(Code.NOT_FOUND, "CUSTOMER_NOT_FOUND",
        () -> create(UUID.randomUUID().toString(), note(MemoryKind.MEMORY_KIND_FACT, "x")));
    String otherCustomersConversation = conversations.getOrCreateOpenConversation(GetOrCreateOpenConversationRequest
        .newBuilder().setCustomerId(newCustomer()).setChannel(Channel.CHANNEL_SMS).setThreadKey("t").build())
        .getConversation().getId();
    assertInvalid("memory.conversation_id", () -> create(c, note(MemoryKind.MEMORY_KIND_FACT, "x")
        .setConversationId(otherCustomersConversation)));
    assertError(Code.NOT_FOUND, "CONVERSATION_NOT_FOUND", () -> create(c, note(MemoryKind.MEMORY_KIND_FACT, "x")
        .setConversationId(UUID.randomUUID().toString())));
  }

  @Test
  void upsertUpdatesInPlaceAndKeepsConfirmations() {
    String c = newCustomer();
    UpsertMemoryResponse first = upsert(c, note(MemoryKind.MEMORY_KIND_SUMMARY, "Quoted $179 on 1 Nov")
        .setKey("quote").setImportance(0.9f).addAllEmbedding(vec(5, 6, 0.1f)));
    assertTrue(first.getCreated());
    memories.confirmMemories(ConfirmMemoriesRequest.newBuilder().addConfirmations(MemoryConfirmation.newBuilder()
        .setMemoryId(first.getMemory().getId()).setOutcome(ConfirmationOutcome.CONFIRMATION_OUTCOME_CONFIRMED)).build());

    UpsertMemoryResponse second = upsert(c, note(MemoryKind.MEMORY_KIND_SUMMARY, "Quoted $199 on 3 Nov").setKey("quote"));
    assertFalse(second.getCreated());
    Memory m = second.getMemory();
    assertEquals(first.getMemory().getId(), m.getId());
    assertEquals(first.getMemory().getCreateTime(), m.getCreateTime());
    assertEquals("Quoted $199 on 3 Nov", m.getContent());
    assertEquals(0.9f, m.getImportance(), "unset importance is kept");
    assertFalse(m.getHasEmbedding(), "an upsert without an embedding removes the stale one");
    assertEquals(1, m.getConfirmCount());

    assertInvalid("memory.key", () -> upsert(c, note(MemoryKind.MEMORY_KIND_FACT, "no key")));
  }

  @Test
  void concurrentUpsertsOfOneKeyLeaveOneMemory() throws Exception {
    String c = newCustomer();
    int callers = 16;
    ExecutorService pool = Executors.newFixedThreadPool(callers);
    try {
      CountDownLatch go = new CountDownLatch(1);
      List<Future<UpsertMemoryResponse>> results = new ArrayList<>();
      for (int i = 0; i < callers; i++) {
        int n = i;
        results.add(pool.submit(() -> {
          go.await();
          return upsert(c, note(MemoryKind.MEMORY_KIND_PREFERENCE, "channel v" + n).setKey("preferred_channel"));
        }));
      }
      go.countDown();
      Set<String> ids = new HashSet<>();
      int created = 0;
      for (var f : results) {
        var r = f.get(30, TimeUnit.SECONDS);
        ids.add(r.getMemory().getId());
        created += r.getCreated() ? 1 : 0;
      }
      assertEquals(1, ids.size());
      assertEquals(1, created);
      assertEquals(1, count("SELECT count(*) FROM memories WHERE customer_id = ?", UUID.fromString(c)));
    } finally {
      pool.shutdownNow();
    }
  }

  @Test
  void updateWritesTheMaskAndDeleteRemoves() {
    String c = newCustomer();
    Memory m = create(c, note(MemoryKind.MEMORY_KIND_FACT, "Lives on floor 3").setKey("floor"));
    create(c, note(MemoryKind.MEMORY_KIND_FACT, "Has a dog").setKey("dog"));
    Memory u = memories.updateMemory(UpdateMemoryRequest.newBuilder()
        .setMemory(Memory.newBuilder().setId(m.getId()).setContent("Lives on floor 4").setImportance(0.8f)
            .setSource("ignored"))
        .setUpdateMask(FieldMask.newBuilder().addPaths("content").addPaths("importance")).build()).getMemory();
    assertEquals("Lives on floor 4", u.getContent());
    assertEquals(0.8f, u.getImportance());
    assertEquals("", u.getSource());
    assertEquals("floor", u.getKey());

    assertFieldError(Code.ALREADY_EXISTS, "MEMORY_KEY_ALREADY_EXISTS", "memory.key", () -> memories.updateMemory(
        UpdateMemoryRequest.newBuilder().setMemory(Memory.newBuilder().setId(m.getId()).setKey("dog")).build()));
    assertInvalid("update_mask.paths[0]", () -> memories.updateMemory(UpdateMemoryRequest.newBuilder()
        .setMemory(Memory.newBuilder().setId(m.getId())).setUpdateMask(FieldMask.newBuilder().addPaths("id")).build()));
    assertInvalid("memory.importance", () -> memories.updateMemory(UpdateMemoryRequest.newBuilder()
        .setMemory(Memory.newBuilder().setId(m.getId())).setUpdateMask(FieldMask.newBuilder().addPaths("*")).build()));
    assertError(Code.NOT_FOUND, "MEMORY_NOT_FOUND", () -> memories.updateMemory(UpdateMemoryRequest.newBuilder()
        .setMemory(Memory.newBuilder().setId(UUID.randomUUID().toString()).setContent("x")).build()));

    memories.deleteMemory(DeleteMemoryRequest.newBuilder().setMemoryId(m.getId()).build());
    assertError(Code.NOT_FOUND, "MEMORY_NOT_FOUND", () -> get(m.getId()));
    assertError(Code.NOT_FOUND, "MEMORY_NOT_FOUND",
        () -> memories.deleteMemory(DeleteMemoryRequest.newBuilder().setMemoryId(m.getId()).build()));
    assertInvalid("memory_id", () -> get("x"));
  }

  @Test
  void listFiltersAndPages() {
    String c = newCustomer();
    String conv = conversations.getOrCreateOpenConversation(GetOrCreateOpenConversationRequest.newBuilder()
        .setCustomerId(c).setChannel(Channel.CHANNEL_WEB).setThreadKey("w").build()).getConversation().getId();
    Memory a = create(c, note(MemoryKind.MEMORY_KIND_FACT, "a").setConversationId(conv).setMetadata(struct("src", "crm")));
    Memory b = create(c, note(MemoryKind.MEMORY_KIND_PREFERENCE, "b").setKey("kb"));
    Memory d = create(c, note(MemoryKind.MEMORY_KIND_FACT, "d"));
    List<String> all = new ArrayList<>();
    String token = "";
    do {
      var page = memories.listMemories(ListMemoriesRequest.newBuilder().setCustomerId(c).setPageSize(2)
          .setPageToken(token).build());
      page.getMemoriesList().forEach(m -> all.add(m.getId()));
      token = page.getNextPageToken();
    } while (!token.isEmpty());
    assertEquals(List.of(d.getId(), b.getId(), a.getId()), all, "newest first");
    assertEquals(List.of(d.getId(), a.getId()), ids(ListMemoriesRequest.newBuilder().setCustomerId(c)
        .addKinds(MemoryKind.MEMORY_KIND_FACT)));
    assertEquals(List.of(a.getId()), ids(ListMemoriesRequest.newBuilder().setCustomerId(c).setConversationId(conv)));
    assertEquals(List.of(b.getId()), ids(ListMemoriesRequest.newBuilder().setCustomerId(c).setKey("kb")));
    assertEquals(List.of(a.getId()), ids(ListMemoriesRequest.newBuilder().setCustomerId(c)
        .setMetadataFilter(struct("src", "crm"))));
    assertInvalid("kinds[0]", () -> ids(ListMemoriesRequest.newBuilder().setCustomerId(c)
        .addKinds(MemoryKind.MEMORY_KIND_UNSPECIFIED)));
    assertInvalid("page_token", () -> ids(ListMemoriesRequest.newBuilder().setCustomerId(c).setPageToken("zz")));
    assertError(Code.NOT_FOUND, "CUSTOMER_NOT_FOUND",
        () -> ids(ListMemoriesRequest.newBuilder().setCustomerId(UUID.randomUUID().toString())));
  }

  private static List<String> ids(ListMemoriesRequest.Builder r) {
    return memories.listMemories(r.build()).getMemoriesList().stream().map(Memory::getId).toList();
  }

  // -----------------------------------------------------------------------------------------------
  // Expiry and the sweeper

  @Test
  void anExpiredMemoryIsInvisibleAtOnceAndItsKeyIsFree() throws SQLException {
    String c = newCustomer();
    Memory m = create(c, note(MemoryKind.MEMORY_KIND_FACT, "Temporary gate code zebra4711").setKey("gate")
        .addAllEmbedding(vec(40, 41, 0.2f))
        .setExpireTime(Timestamps.fromMillis(System.currentTimeMillis() + 3_600_000)));
    assertEquals(m.getId(), get(m.getId()).getId());
    expire(m.getId());

    assertError(Code.NOT_FOUND, "MEMORY_NOT_FOUND", () -> get(m.getId()));
    assertEquals(0, ids(ListMemoriesRequest.newBuilder().setCustomerId(c)).size());
    assertEquals(0, memories.searchMemories(SearchMemoriesRequest.newBuilder().setCustomerId(c)
        .setQueryText("zebra4711").build()).getHitsCount());
    assertEquals(0, memories.searchMemories(SearchMemoriesRequest.newBuilder().setCustomerId(c)
        .addAllQueryEmbedding(vec(40, 41, 0.2f)).build()).getHitsCount());
    assertEquals(0, memories.fetchContext(FetchContextRequest.newBuilder().setCustomerId(c).build()).getMemoriesCount());
    assertError(Code.NOT_FOUND, "MEMORY_NOT_FOUND",
        () -> memories.deleteMemory(DeleteMemoryRequest.newBuilder().setMemoryId(m.getId()).build()));

    UpsertMemoryResponse again = upsert(c, note(MemoryKind.MEMORY_KIND_FACT, "New gate code").setKey("gate"));
    assertTrue(again.getCreated(), "an expired memory counts as absent");
    assertNotEquals(m.getId(), again.getMemory().getId());
  }

  @Test
  void theSweeperDeletesExpiredRowsOnlyWhileItHoldsTheLock() throws Exception {
    try (TestServer own = TestServer.start(java.util.Map.of("MEMORY_SWEEP_INTERVAL_MS", "3600000",
        "MEMORY_SWEEP_BATCH", "7"))) {
      var stub = MemoryServiceGrpc.newBlockingStub(own.channel());
      String c = CustomerServiceGrpc.newBlockingStub(own.channel()).createCustomer(CreateCustomerRequest.newBuilder()
          .setCustomer(Customer.newBuilder().setDisplayName("Sweep")).build()).getCustomer().getId();
      for (int i = 0; i < 20; i++) {
        stub.createMemory(CreateMemoryRequest.newBuilder().setCustomerId(c)
            .setMemory(note(MemoryKind.MEMORY_KIND_OTHER, "m" + i)
                .setExpireTime(Timestamps.fromMillis(System.currentTimeMillis() + 3_600_000))).build());
      }
      stub.createMemory(CreateMemoryRequest.newBuilder().setCustomerId(c)
          .setMemory(note(MemoryKind.MEMORY_KIND_OTHER, "keeper")).build());
      try (Connection db = DriverManager.getConnection(own.dbUrl())) {
        db.createStatement().execute("UPDATE memories SET expires_at = now() - interval '1 minute'"
            + " WHERE content <> 'keeper'");
        // Another server sweeping = someone else holding the advisory lock.
        try (PreparedStatement lock = db.prepareStatement("SELECT pg_advisory_lock(?)")) {
          lock.setLong(1, 0x636d5f7377656570L);
          lock.execute();
        }
        assertEquals(-1, own.server().sweeper().sweep(), "skipped: the lock is taken");
        assertEquals(21, countIn(db, "SELECT count(*) FROM memories"));
        try (PreparedStatement unlock = db.prepareStatement("SELECT pg_advisory_unlock(?)")) {
          unlock.setLong(1, 0x636d5f7377656570L);
          unlock.execute();
        }
        try (dev.contextmemory.server.testing.CapturedLog log = dev.contextmemory.server.testing.CapturedLog.attach()) {
          assertEquals(20, own.server().sweeper().sweep(), "three batches of at most 7, in one round under one lock");
          // The round says what it deleted, in counts only (never the content).
          assertTrue(log.text().contains("expiry sweep deleted 20 expired memories and 0 rows"), log.text());
        }
        assertEquals(1, countIn(db, "SELECT count(*) FROM memories"));
        assertEquals(0, own.server().sweeper().sweep());
      }
    }
  }

  private static long countIn(Connection db, String sql) throws SQLException {
    try (ResultSet rs = db.createStatement().executeQuery(sql)) {
      rs.next();
      return rs.getLong(1);
    }
  }

  // -----------------------------------------------------------------------------------------------
  // SearchMemories

  @Test
  void searchByVectorTextAndHybridOnAKnownSet() {
    String c = newCustomer();
    String other = newCustomer();
    String tag = "qm" + UUID.randomUUID().toString().replace("-", "").substring(0, 8);
    Memory piano = create(c, note(MemoryKind.MEMORY_KIND_FACT, "Has a piano " + tag + " in the basement")
        .addAllEmbedding(vec(100, 101, 0.1f)));
    Memory stairs = create(c, note(MemoryKind.MEMORY_KIND_FACT, "Narrow stairs to the basement")
        .addAllEmbedding(vec(100, 101, 0.9f)));
    Memory text = create(c, note(MemoryKind.MEMORY_KIND_PREFERENCE, "Prefers text over calls " + tag)
        .addAllEmbedding(vec(200, 201, 0.1f)).setMetadata(struct("channel", "sms")));
    create(c, note(MemoryKind.MEMORY_KIND_OTHER, "No embedding, mentions " + tag));
    Memory foreign = create(other, note(MemoryKind.MEMORY_KIND_FACT, "Other customer's piano " + tag)
        .addAllEmbedding(vec(100, 101, 0.1f)));

    var vector = memories.searchMemories(SearchMemoriesRequest.newBuilder().setCustomerId(c)
        .addAllQueryEmbedding(vec(100, 101, 0f)).setTopK(2).build());
    assertEquals(MemorySearchMode.MEMORY_SEARCH_MODE_VECTOR, vector.getMode());
    assertEquals(List.of(piano.getId(), stairs.getId()), hitIds(vector));
    assertEquals(1 / Math.sqrt(1.01), vector.getHits(0).getScore(), 1e-5, "score is the cosine similarity");
    assertEquals(1, vector.getHits(0).getVectorRank());

    var cut = memories.searchMemories(SearchMemoriesRequest.newBuilder().setCustomerId(c)
        .addAllQueryEmbedding(vec(100, 101, 0f)).setMinScore(0.9).build());
    assertEquals(List.of(piano.getId()), hitIds(cut), "stairs (cosine 0.74) is below min_score");

    var words = memories.searchMemories(SearchMemoriesRequest.newBuilder().setCustomerId(c).setQueryText(tag).build());
    assertEquals(MemorySearchMode.MEMORY_SEARCH_MODE_TEXT, words.getMode());
    assertEquals(3, words.getHitsCount());
    assertTrue(words.getHitsList().stream().allMatch(h -> h.getTextRank() > 0 && h.getVectorRank() == 0));

    var hybrid = memories.searchMemories(SearchMemoriesRequest.newBuilder().setCustomerId(c).setQueryText(tag)
        .addAllQueryEmbedding(vec(100, 101, 0f)).build());
    assertEquals(MemorySearchMode.MEMORY_SEARCH_MODE_HYBRID, hybrid.getMode());
    assertEquals(piano.getId(), hybrid.getHits(0).getMemory().getId(), "first by meaning and matched by words");
    assertEquals(1.0 / 61 + 1.0 / (60 + hybrid.getHits(0).getTextRank()), hybrid.getHits(0).getScore(), 1e-12);

    assertEquals(List.of(text.getId()), hitIds(memories.searchMemories(SearchMemoriesRequest.newBuilder()
        .setCustomerId(c).setQueryText(tag).addKinds(MemoryKind.MEMORY_KIND_PREFERENCE).build())));
    assertEquals(List.of(text.getId()), hitIds(memories.searchMemories(SearchMemoriesRequest.newBuilder()
        .setCustomerId(c).setQueryText(tag).setMetadataFilter(struct("channel", "sms")).build())));
    List<String> tenantWide = hitIds(memories.searchMemories(SearchMemoriesRequest.newBuilder().setQueryText(tag).build()));
    assertTrue(tenantWide.contains(foreign.getId()) && tenantWide.size() == 4, tenantWide.toString());

    assertInvalid("query_text", () -> memories.searchMemories(SearchMemoriesRequest.getDefaultInstance()));
    assertInvalid("query_embedding", () -> memories.searchMemories(SearchMemoriesRequest.newBuilder()
        .setMode(MemorySearchMode.MEMORY_SEARCH_MODE_HYBRID).setQueryText("x").build()));
    assertInvalid("query_embedding", () -> memories.searchMemories(SearchMemoriesRequest.newBuilder()
        .addAllQueryEmbedding(List.of(1f, 2f)).build()));
    assertInvalid("top_k", () -> memories.searchMemories(SearchMemoriesRequest.newBuilder().setQueryText("x").setTopK(-1).build()));
    assertInvalid("min_score", () -> memories.searchMemories(SearchMemoriesRequest.newBuilder().setQueryText("x")
        .setMinScore(2).build()));
    assertError(Code.NOT_FOUND, "CUSTOMER_NOT_FOUND", () -> memories.searchMemories(SearchMemoriesRequest.newBuilder()
        .setCustomerId(UUID.randomUUID().toString()).setQueryText("x").build()));
    for (String hostile : List.of("\"", "&|!():*", "\\", "'; DROP TABLE memories; --", "ピアノ", "-")) {
      memories.searchMemories(SearchMemoriesRequest.newBuilder().setCustomerId(c).setQueryText(hostile).build());
    }
  }

  private static List<String> hitIds(SearchMemoriesResponse r) {
    return r.getHitsList().stream().map(h -> h.getMemory().getId()).toList();
  }

  @Test
  void searchConversationsBySummaryEmbedding() {
    String c = newCustomer();
    List<String> ids = new ArrayList<>();
    for (int i = 0; i < 3; i++) {
      String id = conversations.getOrCreateOpenConversation(GetOrCreateOpenConversationRequest.newBuilder()
          .setCustomerId(c).setChannel(i == 2 ? Channel.CHANNEL_EMAIL : Channel.CHANNEL_SMS).setThreadKey("s" + i)
          .build()).getConversation().getId();
      conversations.updateConversation(UpdateConversationRequest.newBuilder().setConversation(Conversation.newBuilder()
          .setId(id).addAllSummaryEmbedding(vec(300, 301, 0.3f * i))).build());
      ids.add(id);
    }
    var hits = memories.searchConversations(SearchConversationsRequest.newBuilder().setCustomerId(c)
        .addAllQueryEmbedding(vec(300, 301, 0f)).build()).getHitsList();
    assertEquals(ids, hits.stream().map(h -> h.getConversation().getId()).toList());
    assertEquals(1.0, hits.get(0).getScore(), 1e-6);
    assertEquals(List.of(ids.get(2)), memories.searchConversations(SearchConversationsRequest.newBuilder()
        .setCustomerId(c).setChannel(Channel.CHANNEL_EMAIL).addAllQueryEmbedding(vec(300, 301, 0f)).build())
        .getHitsList().stream().map(h -> h.getConversation().getId()).toList());
    conversations.deleteConversation(DeleteConversationRequest.newBuilder().setConversationId(ids.get(0)).build());
    assertEquals(2, memories.searchConversations(SearchConversationsRequest.newBuilder().setCustomerId(c)
        .addAllQueryEmbedding(vec(300, 301, 0f)).build()).getHitsCount(), "deleted ones never match");
    assertInvalid("query_embedding", () -> memories.searchConversations(SearchConversationsRequest.getDefaultInstance()));
    assertError(Code.NOT_FOUND, "CUSTOMER_NOT_FOUND", () -> memories.searchConversations(SearchConversationsRequest
        .newBuilder().setCustomerId(UUID.randomUUID().toString()).addAllQueryEmbedding(vec(1, 2, 0)).build()));
  }

  // -----------------------------------------------------------------------------------------------
  // FetchContext, ConfirmMemories

  @Test
  void fetchContextAssemblesEverythingInOneCall() {
    String c = newCustomer();
    String conv = conversations.getOrCreateOpenConversation(GetOrCreateOpenConversationRequest.newBuilder()
        .setCustomerId(c).setChannel(Channel.CHANNEL_SMS).setThreadKey("ctx").build()).getConversation().getId();
    var batch = AppendMessagesRequest.newBuilder().setConversationId(conv);
    for (int i = 0; i < 30; i++) {
      batch.addMessages(Message.newBuilder().setRole(MessageRole.MESSAGE_ROLE_USER).setContent("turn " + i));
    }
    conversations.appendMessages(batch.build());
    Memory piano = create(c, note(MemoryKind.MEMORY_KIND_FACT, "Has a grand piano in the basement")
        .addAllEmbedding(vec(500, 501, 0.1f)).setImportance(0.5f));
    Memory calls = create(c, note(MemoryKind.MEMORY_KIND_PREFERENCE, "Prefers text over calls")
        .addAllEmbedding(vec(600, 601, 0.1f)).setImportance(0.6f));

    FetchContextResponse ctx = memories.fetchContext(FetchContextRequest.newBuilder().setCustomerId(c)
        .setQueryText("piano").addAllQueryEmbedding(vec(500, 501, 0f)).build());
    assertEquals(c, ctx.getCustomer().getId());
    assertEquals(List.of(conv), ctx.getOpenConversationsList().stream().map(Conversation::getId).toList());
    assertEquals(conv, ctx.getConversation().getId());
    assertEquals(20, ctx.getRecentMessagesCount(), "20 by default");
    assertEquals("turn 10", ctx.getRecentMessages(0).getContent(), "chronological, the last 20");
    assertEquals("turn 29", ctx.getRecentMessages(19).getContent());
    assertEquals(piano.getId(), ctx.getMemories(0).getMemory().getId(), "relevance beats importance");
    ScoreBreakdown b = ctx.getMemories(0).getBreakdown();
    assertEquals(1.0, b.getRelevance(), 1e-9, "first in both lists");
    assertEquals(0.5, b.getImportance(), 1e-6);
    assertEquals(1.0, b.getRecency(), 1e-3);
    assertEquals(0, b.getConfirmation(), 1e-9);
    assertEquals(0.55 * b.getRelevance() + 0.20 * b.getImportance() + 0.15 * b.getRecency() + 0.10 * b.getConfirmation(),
        b.getFinalScore(), 1e-9);
    assertEquals(0, ctx.getMemories(1).getBreakdown().getTextScore(), 1e-9);

    // Without a query, importance leads; confirmations then lift a memory.
    FetchContextResponse plain = memories.fetchContext(FetchContextRequest.newBuilder().setCustomerId(c)
        .setMessageLimit(0).build());
    assertEquals(0, plain.getRecentMessagesCount());
    assertEquals(calls.getId(), plain.getMemories(0).getMemory().getId());
    ScoreBreakdown pb = plain.getMemories(0).getBreakdown();
    assertEquals((0.20 * pb.getImportance() + 0.15 * pb.getRecency() + 0.10 * pb.getConfirmation()) / 0.45,
        pb.getFinalScore(), 1e-9);
    var confirm = ConfirmMemoriesRequest.newBuilder();
    confirm.addConfirmations(MemoryConfirmation.newBuilder().setMemoryId(piano.getId())
        .setOutcome(ConfirmationOutcome.CONFIRMATION_OUTCOME_CONFIRMED));
    for (int i = 0; i < 3; i++) {
      memories.confirmMemories(confirm.build());
    }
    FetchContextResponse confirmed = memories.fetchContext(FetchContextRequest.newBuilder().setCustomerId(c).build());
    assertEquals(piano.getId(), confirmed.getMemories(0).getMemory().getId(), "three confirmations outweigh importance");
    assertEquals(0.6, confirmed.getMemories(0).getBreakdown().getConfirmation(), 1e-9);

    String other = newCustomer();
    assertInvalid("conversation_id", () -> memories.fetchContext(FetchContextRequest.newBuilder().setCustomerId(other)
        .setConversationId(conv).build()));
    assertError(Code.NOT_FOUND, "CONVERSATION_NOT_FOUND", () -> memories.fetchContext(FetchContextRequest.newBuilder()
        .setCustomerId(c).setConversationId(UUID.randomUUID().toString()).build()));
    assertError(Code.NOT_FOUND, "CUSTOMER_NOT_FOUND", () -> memories.fetchContext(FetchContextRequest.newBuilder()
        .setCustomerId(UUID.randomUUID().toString()).build()));
    assertInvalid("message_limit", () -> memories.fetchContext(FetchContextRequest.newBuilder().setCustomerId(c)
        .setMessageLimit(-1).build()));
    FetchContextResponse none = memories.fetchContext(FetchContextRequest.newBuilder().setCustomerId(other).build());
    assertFalse(none.hasConversation());
    assertEquals(0, none.getMemoriesCount());
  }

  @Test
  void confirmMemoriesRecordsVerdicts() {
    String c = newCustomer();
    Memory keep = create(c, note(MemoryKind.MEMORY_KIND_FACT, "keep")
        .setExpireTime(Timestamps.fromMillis(System.currentTimeMillis() + 60_000)));
    Memory demote = create(c, note(MemoryKind.MEMORY_KIND_FACT, "demote").setImportance(0.8f));
    Memory drop = create(c, note(MemoryKind.MEMORY_KIND_FACT, "drop"));
    String missing = UUID.randomUUID().toString();
    var r = memories.confirmMemories(ConfirmMemoriesRequest.newBuilder()
        .addConfirmations(MemoryConfirmation.newBuilder().setMemoryId(keep.getId())
            .setOutcome(ConfirmationOutcome.CONFIRMATION_OUTCOME_CONFIRMED).setExtendExpiry(Durations.fromDays(30)))
        .addConfirmations(MemoryConfirmation.newBuilder().setMemoryId(demote.getId())
            .setOutcome(ConfirmationOutcome.CONFIRMATION_OUTCOME_REJECTED))
        .addConfirmations(MemoryConfirmation.newBuilder().setMemoryId(drop.getId())
            .setOutcome(ConfirmationOutcome.CONFIRMATION_OUTCOME_REJECTED).setDeleteOnReject(true))
        .addConfirmations(MemoryConfirmation.newBuilder().setMemoryId(missing)
            .setOutcome(ConfirmationOutcome.CONFIRMATION_OUTCOME_CONFIRMED))
        .build()).getResultsList();
    assertEquals(ConfirmationEffect.CONFIRMATION_EFFECT_CONFIRMED, r.get(0).getEffect());
    assertEquals(1, r.get(0).getMemory().getConfirmCount());
    assertTrue(r.get(0).getMemory().hasLastConfirmTime());
    assertTrue(Timestamps.toMillis(r.get(0).getMemory().getExpireTime()) > System.currentTimeMillis() + 29L * 86_400_000);
    assertEquals(ConfirmationEffect.CONFIRMATION_EFFECT_DEMOTED, r.get(1).getEffect());
    assertEquals(0.4f, r.get(1).getMemory().getImportance(), 1e-6);
    assertEquals(ConfirmationEffect.CONFIRMATION_EFFECT_DELETED, r.get(2).getEffect());
    assertError(Code.NOT_FOUND, "MEMORY_NOT_FOUND", () -> get(drop.getId()));
    assertEquals(ConfirmationEffect.CONFIRMATION_EFFECT_NOT_FOUND, r.get(3).getEffect());

    assertInvalid("confirmations", () -> memories.confirmMemories(ConfirmMemoriesRequest.getDefaultInstance()));
    assertInvalid("confirmations[0].outcome", () -> memories.confirmMemories(ConfirmMemoriesRequest.newBuilder()
        .addConfirmations(MemoryConfirmation.newBuilder().setMemoryId(keep.getId())).build()));
    assertInvalid("confirmations[1].memory_id", () -> memories.confirmMemories(ConfirmMemoriesRequest.newBuilder()
        .addConfirmations(MemoryConfirmation.newBuilder().setMemoryId(keep.getId())
            .setOutcome(ConfirmationOutcome.CONFIRMATION_OUTCOME_CONFIRMED))
        .addConfirmations(MemoryConfirmation.newBuilder().setMemoryId(keep.getId())
            .setOutcome(ConfirmationOutcome.CONFIRMATION_OUTCOME_CONFIRMED)).build()));
    assertInvalid("confirmations[0].extend_expiry", () -> memories.confirmMemories(ConfirmMemoriesRequest.newBuilder()
        .addConfirmations(MemoryConfirmation.newBuilder().setMemoryId(keep.getId())
            .setOutcome(ConfirmationOutcome.CONFIRMATION_OUTCOME_REJECTED).setExtendExpiry(Durations.fromDays(1)))
        .build()));
    assertInvalid("confirmations[0].delete_on_reject", () -> memories.confirmMemories(ConfirmMemoriesRequest
        .newBuilder().addConfirmations(MemoryConfirmation.newBuilder().setMemoryId(keep.getId())
            .setOutcome(ConfirmationOutcome.CONFIRMATION_OUTCOME_CONFIRMED).setDeleteOnReject(true)).build()));
  }
}

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
import com.google.protobuf.Timestamp;
import com.google.protobuf.Value;
import com.google.protobuf.util.Durations;
import com.google.protobuf.util.Timestamps;
import dev.contextmemory.server.testing.Rows;
import dev.contextmemory.server.testing.TestServer;
import dev.contextmemory.v1.*;
import io.grpc.Status.Code;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * MemoryService over gRPC against real PostgreSQL, written independently of the implementation
 * from memory.proto alone (by a second engineer who built a competing implementation): every RPC
 * and its error paths, as the contract states them. It complements MemoryServiceTest; where the
 * two disagreed, the contract was clarified and both now agree.
 */
class MemoryServiceContractTest {
  private static final int DIM = 768;
  private static final double EPS = 1e-6;

  private static TestServer server;
  private static MemoryServiceGrpc.MemoryServiceBlockingStub memories;
  private static CustomerServiceGrpc.CustomerServiceBlockingStub customers;
  private static Rows db;

  @BeforeAll
  static void start() {
    server = TestServer.shared();
    memories = MemoryServiceGrpc.newBlockingStub(server.channel());
    customers = CustomerServiceGrpc.newBlockingStub(server.channel());
    db = new Rows(server.dbUrl());
  }

  @AfterAll
  static void stop() {
    db.close();
  }

  // -----------------------------------------------------------------------------------------------
  // Helpers

  private static String newCustomer() {
    return customers.createCustomer(CreateCustomerRequest.newBuilder()
        .setCustomer(Customer.newBuilder().setDisplayName("Memory test " + UUID.randomUUID())).build())
        .getCustomer().getId();
  }

  /** A 768-dim vector whose first components are {@code head}, the rest 0. */
  private static List<Float> vec(double... head) {
    List<Float> v = new ArrayList<>(DIM);
    for (int i = 0; i < DIM; i++) {
      v.add(i < head.length ? (float) head[i] : 0f);
    }
    return v;
  }

  /** A unit vector in the plane of dimensions {@code d} and {@code d + 1}, at {@code degrees} from axis d. */
  private static List<Float> angle(int d, double degrees) {
    List<Float> v = vec();
    v.set(d, (float) Math.cos(Math.toRadians(degrees)));
    v.set(d + 1, (float) Math.sin(Math.toRadians(degrees)));
    return v;
  }

  private static String literal(List<Float> v) {
    StringBuilder sb = new StringBuilder("[");
    for (int i = 0; i < v.size(); i++) {
      sb.append(i == 0 ? "" : ",").append(v.get(i));
    }
    return sb.append(']').toString();
  }

  private static Struct struct(String key, String value) {
    return Struct.newBuilder().putFields(key, Value.newBuilder().setStringValue(value).build()).build();
  }

  private static Timestamp inFuture(Duration d) {
    return Timestamps.fromMillis(Instant.now().plus(d).toEpochMilli());
  }

  private static Memory.Builder fact(String content) {
    return Memory.newBuilder().setKind(MemoryKind.MEMORY_KIND_FACT).setContent(content);
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

  private static List<String> ids(List<Memory> ms) {
    return ms.stream().map(Memory::getId).toList();
  }

  private static List<String> hitIds(SearchMemoriesResponse r) {
    return r.getHitsList().stream().map(h -> h.getMemory().getId()).toList();
  }

  private static SearchMemoriesResponse search(SearchMemoriesRequest.Builder r) {
    return memories.searchMemories(r.build());
  }

  // -----------------------------------------------------------------------------------------------
  // Create, Get

  @Test
  void createStoresEveryFieldAndGetReadsItBack() {
    String customer = newCustomer();
    UUID conversation = db.conversation(customer, "sms", "t-" + UUID.randomUUID(), true, "", null, null);
    List<Float> embedding = angle(0, 33);
    Timestamp expire = inFuture(Duration.ofDays(7));
    Memory created = create(customer, Memory.newBuilder()
        .setKind(MemoryKind.MEMORY_KIND_PREFERENCE)
        .setKey("preferred_contact_channel")
        .setContent("  Prefers text over calls ")
        .setMetadata(struct("source_system", "crm"))
        .addAllEmbedding(embedding)
        .setImportance(0.8f)
        .setSource("agent")
        .setExpireTime(expire)
        .setConversationId(conversation.toString()));

    assertEquals(7, UUID.fromString(created.getId()).version(), "ids are UUID v7");
    assertEquals(customer, created.getCustomerId());
    assertEquals(conversation.toString(), created.getConversationId());
    assertEquals(MemoryKind.MEMORY_KIND_PREFERENCE, created.getKind());
    assertEquals("preferred_contact_channel", created.getKey());
    assertEquals("Prefers text over calls", created.getContent());
    assertEquals("crm", created.getMetadata().getFieldsOrThrow("source_system").getStringValue());
    assertTrue(created.getHasEmbedding());
    assertEquals(0, created.getEmbeddingCount(), "embeddings are left out of responses unless asked for");
    assertEquals(0.8f, created.getImportance());
    assertEquals("agent", created.getSource());
    assertEquals(expire, created.getExpireTime());
    assertEquals(0, created.getConfirmCount());
    assertFalse(created.hasLastConfirmTime());
    assertTrue(created.hasCreateTime() && created.hasUpdateTime());

    assertEquals(created, get(created.getId()));
    Memory withEmbedding = memories.getMemory(GetMemoryRequest.newBuilder()
        .setMemoryId(created.getId()).setIncludeEmbedding(true).build()).getMemory();
    assertEquals(embedding, withEmbedding.getEmbeddingList(), "the stored vector is the one sent, bit for bit");

    Memory plain = create(customer, fact("Has a piano in the basement"));
    assertEquals(0.5f, plain.getImportance(), "importance defaults to 0.5");
    assertFalse(plain.getHasEmbedding());
    assertFalse(plain.hasExpireTime());
    assertEquals("", plain.getKey());
    assertEquals("", plain.getConversationId());
  }

  @Test
  void createWithTheSameRequestIdReturnsTheFirstMemory() {
    String customer = newCustomer();
    CreateMemoryRequest req = CreateMemoryRequest.newBuilder()
        .setCustomerId(customer)
        .setMemory(fact("Quoted $179 on 1 Nov").setKey("quote:2024-11-01"))
        .setRequestId(UUID.randomUUID().toString())
        .build();
    Memory first = memories.createMemory(req).getMemory();
    Memory again = memories.createMemory(req).getMemory();
    assertEquals(first, again, "a retried create returns the stored memory, not ALREADY_EXISTS");
    assertEquals(1, db.count("SELECT count(*) FROM memories WHERE customer_id = ?::uuid", customer));

    // Without the request id, the same key is taken.
    assertFieldError(Code.ALREADY_EXISTS, "MEMORY_KEY_ALREADY_EXISTS", "memory.key",
        () -> memories.createMemory(req.toBuilder().clearRequestId().build()));
  }

  @Test
  void createReplacesAnExpiredMemoryWithTheSameKey() {
    String customer = newCustomer();
    Memory old = create(customer, fact("Lives in Leeds").setKey("city"));
    db.expireMemory(old.getId());
    Memory fresh = create(customer, fact("Lives in York").setKey("city"));
    assertNotEquals(old.getId(), fresh.getId());
    assertEquals(1, db.count("SELECT count(*) FROM memories WHERE customer_id = ?::uuid", customer),
        "the expired memory made way for the new one");
  }

  @Test
  void createChecksTheCustomerAndTheConversation() {
    String customer = newCustomer();
    String other = newCustomer();
    assertError(Code.NOT_FOUND, "CUSTOMER_NOT_FOUND",
        () -> create(UUID.randomUUID().toString(), fact("x")));
    assertError(Code.NOT_FOUND, "CONVERSATION_NOT_FOUND",
        () -> create(customer, fact("x").setConversationId(UUID.randomUUID().toString())));
    UUID othersConversation = db.conversation(other, "web", "w-" + UUID.randomUUID(), true, "", null, null);
    assertInvalid("memory.conversation_id",
        () -> create(customer, fact("x").setConversationId(othersConversation.toString())));
    UUID deleted = db.conversation(customer, "web", "w-" + UUID.randomUUID(), true, "", null, null);
    db.deleteConversation(deleted);
    assertError(Code.NOT_FOUND, "CONVERSATION_NOT_FOUND",
        () -> create(customer, fact("x").setConversationId(deleted.toString())));
  }

  @Test
  void createValidatesEveryField() {
    String c = newCustomer();
    assertInvalid("customer_id", () -> create("", fact("x")));
    assertInvalid("customer_id", () -> create("42", fact("x")));
    assertInvalid("memory.kind", () -> create(c, Memory.newBuilder().setContent("x")));
    assertInvalid("memory.kind", () -> create(c, Memory.newBuilder().setKindValue(99).setContent("x")));
    assertInvalid("memory.content", () -> create(c, fact("   ")));
    assertInvalid("memory.content", () -> create(c, fact("x".repeat(8193))));
    assertInvalid("memory.content", () -> create(c, fact("nul\0byte")));
    assertInvalid("memory.key", () -> create(c, fact("x").setKey("k".repeat(257))));
    assertInvalid("memory.source", () -> create(c, fact("x").setSource("s".repeat(257))));
    assertInvalid("memory.metadata", () -> create(c, fact("x").setMetadata(struct("blob", "x".repeat(17 * 1024)))));
    assertInvalid("memory.importance", () -> create(c, fact("x").setImportance(1.5f)));
    assertInvalid("memory.importance", () -> create(c, fact("x").setImportance(-0.1f)));
    assertInvalid("memory.importance", () -> create(c, fact("x").setImportance(Float.NaN)));
    assertInvalid("memory.expire_time", () -> create(c, fact("x").setExpireTime(Timestamps.fromSeconds(1))));
    assertInvalid("memory.conversation_id", () -> create(c, fact("x").setConversationId("nope")));
    assertInvalid("request_id", () -> memories.createMemory(CreateMemoryRequest.newBuilder()
        .setCustomerId(c).setMemory(fact("x")).setRequestId("r".repeat(129)).build()));

    // Embeddings: the deployment's dimension, finite, not all zeros.
    assertInvalid("memory.embedding", () -> create(c, fact("x").addAllEmbedding(List.of(1f, 2f, 3f))));
    assertInvalid("memory.embedding", () -> create(c, fact("x").addAllEmbedding(vec(1, Double.NaN))));
    assertInvalid("memory.embedding", () -> create(c, fact("x").addAllEmbedding(vec(Double.POSITIVE_INFINITY))));
    assertInvalid("memory.embedding", () -> create(c, fact("x").addAllEmbedding(vec())));

    // Every bad field at once.
    var status = assertInvalid("memory.kind", () -> create(c, Memory.newBuilder().setImportance(2f)));
    var fields = dev.contextmemory.server.testing.GrpcErrors.detail(status, com.google.rpc.BadRequest.class)
        .orElseThrow().getFieldViolationsList().stream().map(com.google.rpc.BadRequest.FieldViolation::getField).toList();
    assertEquals(List.of("memory.kind", "memory.content", "memory.importance"), fields);
  }

  @Test
  void getRejectsBadIdsAndReportsUnknownOnes() {
    assertInvalid("memory_id", () -> get(""));
    assertInvalid("memory_id", () -> get("not-a-uuid"));
    assertError(Code.NOT_FOUND, "MEMORY_NOT_FOUND", () -> get(UUID.randomUUID().toString()));
  }

  // -----------------------------------------------------------------------------------------------
  // Upsert

  @Test
  void upsertCreatesThenUpdatesInPlace() {
    String customer = newCustomer();
    UpsertMemoryResponse first = upsert(customer, Memory.newBuilder()
        .setKind(MemoryKind.MEMORY_KIND_PREFERENCE).setKey("channel").setContent("Prefers calls")
        .addAllEmbedding(angle(0, 10)).setImportance(0.9f).setSource("agent")
        .setMetadata(struct("v", "1")).setExpireTime(inFuture(Duration.ofDays(1))));
    assertTrue(first.getCreated());
    memories.confirmMemories(ConfirmMemoriesRequest.newBuilder().addConfirmations(MemoryConfirmation.newBuilder()
        .setMemoryId(first.getMemory().getId()).setOutcome(ConfirmationOutcome.CONFIRMATION_OUTCOME_CONFIRMED)).build());

    UpsertMemoryResponse second = upsert(customer, Memory.newBuilder()
        .setKind(MemoryKind.MEMORY_KIND_FACT).setKey("channel").setContent("Prefers text over calls"));
    assertFalse(second.getCreated());
    Memory m = second.getMemory();
    assertEquals(first.getMemory().getId(), m.getId(), "updated in place");
    assertEquals(first.getMemory().getCreateTime(), m.getCreateTime());
    assertEquals(MemoryKind.MEMORY_KIND_FACT, m.getKind());
    assertEquals("Prefers text over calls", m.getContent());
    assertFalse(m.getHasEmbedding(), "an upsert without an embedding removes the old one");
    assertEquals(0, m.getMetadata().getFieldsCount());
    assertEquals("", m.getSource());
    assertFalse(m.hasExpireTime(), "unset expire_time clears the expiry");
    assertEquals(0.9f, m.getImportance(), "importance is kept when not given");
    assertEquals(1, m.getConfirmCount(), "confirmations are kept");
    assertTrue(m.hasLastConfirmTime());

    Memory third = upsert(customer, fact("Prefers email").setKey("channel").setImportance(0.2f)).getMemory();
    assertEquals(0.2f, third.getImportance(), "importance is replaced when given");
    assertEquals(1, db.count("SELECT count(*) FROM memories WHERE customer_id = ?::uuid", customer));
  }

  @Test
  void upsertReplacesAnExpiredMemoryAsANewOne() {
    String customer = newCustomer();
    Memory old = upsert(customer, fact("Dog called Rex").setKey("pet").setImportance(0.9f)).getMemory();
    memories.confirmMemories(ConfirmMemoriesRequest.newBuilder().addConfirmations(MemoryConfirmation.newBuilder()
        .setMemoryId(old.getId()).setOutcome(ConfirmationOutcome.CONFIRMATION_OUTCOME_CONFIRMED)).build());
    db.expireMemory(old.getId());

    UpsertMemoryResponse r = upsert(customer, fact("Cat called Tom").setKey("pet"));
    assertTrue(r.getCreated(), "an expired memory counts as absent");
    assertNotEquals(old.getId(), r.getMemory().getId());
    assertEquals(0.5f, r.getMemory().getImportance(), "a new memory gets the default importance");
    assertEquals(0, r.getMemory().getConfirmCount());
    assertFalse(r.getMemory().hasLastConfirmTime());
    assertFalse(r.getMemory().hasExpireTime());
    assertEquals(1, db.count("SELECT count(*) FROM memories WHERE customer_id = ?::uuid", customer));
  }

  @Test
  void upsertValidates() {
    String c = newCustomer();
    assertInvalid("memory.key", () -> upsert(c, fact("no key")));
    assertInvalid("customer_id", () -> upsert("", fact("x").setKey("k")));
    assertInvalid("memory.content", () -> upsert(c, Memory.newBuilder().setKind(MemoryKind.MEMORY_KIND_FACT).setKey("k")));
    assertInvalid("memory.embedding", () -> upsert(c, fact("x").setKey("k").addAllEmbedding(vec(0, 0, Float.NaN))));
    assertError(Code.NOT_FOUND, "CUSTOMER_NOT_FOUND", () -> upsert(UUID.randomUUID().toString(), fact("x").setKey("k")));
    assertError(Code.NOT_FOUND, "CONVERSATION_NOT_FOUND",
        () -> upsert(c, fact("x").setKey("k").setConversationId(UUID.randomUUID().toString())));
  }

  @Test
  void concurrentUpsertsOfOneKeyLeaveOneMemory() throws Exception {
    String customer = newCustomer();
    int callers = 16;
    CountDownLatch go = new CountDownLatch(1);
    ExecutorService pool = Executors.newFixedThreadPool(callers);
    try {
      List<Future<UpsertMemoryResponse>> results = new ArrayList<>();
      for (int i = 0; i < callers; i++) {
        int n = i;
        results.add(pool.submit(() -> {
          go.await();
          return upsert(customer, fact("version " + n).setKey("race").addAllEmbedding(angle(0, n)));
        }));
      }
      go.countDown();
      Set<String> ids = new HashSet<>();
      int created = 0;
      for (Future<UpsertMemoryResponse> f : results) {
        UpsertMemoryResponse r = f.get(30, TimeUnit.SECONDS);
        ids.add(r.getMemory().getId());
        created += r.getCreated() ? 1 : 0;
      }
      assertEquals(1, ids.size(), "every caller got the same memory");
      assertEquals(1, created, "exactly one caller created it");
      assertEquals(1, db.count("SELECT count(*) FROM memories WHERE customer_id = ?::uuid", customer));
    } finally {
      pool.shutdownNow();
    }
  }

  // -----------------------------------------------------------------------------------------------
  // List

  @Test
  void listReturnsNewestFirstWithFiltersAndPages() {
    String customer = newCustomer();
    UUID conversation = db.conversation(customer, "sms", "l-" + UUID.randomUUID(), true, "", null, null);
    List<Memory> made = new ArrayList<>();
    for (int i = 0; i < 5; i++) {
      made.add(create(customer, Memory.newBuilder()
          .setKind(i % 2 == 0 ? MemoryKind.MEMORY_KIND_FACT : MemoryKind.MEMORY_KIND_INSTRUCTION)
          .setContent("note " + i)
          .setKey("k" + i)
          .setMetadata(struct("shop", i < 3 ? "42" : "7"))
          .setConversationId(i == 4 ? conversation.toString() : "")));
    }
    create(newCustomer(), fact("someone else's"));
    List<String> newestFirst = ids(made).reversed();

    ListMemoriesRequest all = ListMemoriesRequest.newBuilder().setCustomerId(customer).build();
    assertEquals(newestFirst, ids(memories.listMemories(all).getMemoriesList()));

    // Pages of 2 walk the same order.
    List<String> paged = new ArrayList<>();
    String token = "";
    int pages = 0;
    do {
      ListMemoriesResponse page = memories.listMemories(all.toBuilder().setPageSize(2).setPageToken(token).build());
      paged.addAll(ids(page.getMemoriesList()));
      token = page.getNextPageToken();
      pages++;
    } while (!token.isEmpty());
    assertEquals(newestFirst, paged);
    assertEquals(3, pages);

    assertEquals(List.of(made.get(4).getId(), made.get(2).getId(), made.get(0).getId()),
        ids(memories.listMemories(all.toBuilder().addKinds(MemoryKind.MEMORY_KIND_FACT).build()).getMemoriesList()));
    assertEquals(List.of(made.get(4).getId()), ids(memories.listMemories(
        all.toBuilder().setConversationId(conversation.toString()).build()).getMemoriesList()));
    assertEquals(List.of(made.get(1).getId()), ids(memories.listMemories(
        all.toBuilder().setKey("k1").build()).getMemoriesList()));
    assertEquals(List.of(made.get(4).getId(), made.get(3).getId()), ids(memories.listMemories(
        all.toBuilder().setMetadataFilter(struct("shop", "7")).build()).getMemoriesList()));

    // A token is bound to its filters.
    String first = memories.listMemories(all.toBuilder().setPageSize(2).build()).getNextPageToken();
    assertInvalid("page_token", () -> memories.listMemories(all.toBuilder().setPageToken(first).setKey("k1").build()));
    assertInvalid("page_token", () -> memories.listMemories(all.toBuilder().setPageToken("garbage").build()));
    assertInvalid("page_size", () -> memories.listMemories(all.toBuilder().setPageSize(-1).build()));
    assertInvalid("kinds[1]", () -> memories.listMemories(all.toBuilder()
        .addKinds(MemoryKind.MEMORY_KIND_FACT).addKinds(MemoryKind.MEMORY_KIND_UNSPECIFIED).build()));
    assertInvalid("conversation_id", () -> memories.listMemories(all.toBuilder().setConversationId("x").build()));
    assertInvalid("customer_id", () -> memories.listMemories(ListMemoriesRequest.getDefaultInstance()));
    assertError(Code.NOT_FOUND, "CUSTOMER_NOT_FOUND", () -> memories.listMemories(
        ListMemoriesRequest.newBuilder().setCustomerId(UUID.randomUUID().toString()).build()));
    assertEquals(0, memories.listMemories(ListMemoriesRequest.newBuilder().setCustomerId(newCustomer()).build())
        .getMemoriesCount(), "a customer without memories lists none");
  }

  // -----------------------------------------------------------------------------------------------
  // Update, Delete

  @Test
  void updateWritesTheMaskedFields() {
    String customer = newCustomer();
    Memory m = create(customer, fact("Has a piano").setKey("piano").setImportance(0.7f).setSource("agent")
        .addAllEmbedding(angle(0, 5)).setExpireTime(inFuture(Duration.ofDays(3))));

    // An explicit mask writes exactly its paths.
    Memory updated = memories.updateMemory(UpdateMemoryRequest.newBuilder()
        .setMemory(Memory.newBuilder().setId(m.getId()).setContent("Has a grand piano").setSource("ignored"))
        .setUpdateMask(FieldMask.newBuilder().addPaths("content")).build()).getMemory();
    assertEquals("Has a grand piano", updated.getContent());
    assertEquals("agent", updated.getSource());
    assertEquals(m.getCreateTime(), updated.getCreateTime());
    assertTrue(updated.getHasEmbedding(), "changing content does not touch the embedding");

    // No mask: every field set in the request.
    Memory noMask = memories.updateMemory(UpdateMemoryRequest.newBuilder()
        .setMemory(Memory.newBuilder().setId(m.getId()).setImportance(0.1f).setKind(MemoryKind.MEMORY_KIND_SUMMARY))
        .build()).getMemory();
    assertEquals(0.1f, noMask.getImportance());
    assertEquals(MemoryKind.MEMORY_KIND_SUMMARY, noMask.getKind());
    assertEquals("Has a grand piano", noMask.getContent());

    // "*" writes everything; empty values clear.
    Memory star = memories.updateMemory(UpdateMemoryRequest.newBuilder()
        .setMemory(Memory.newBuilder().setId(m.getId()).setKind(MemoryKind.MEMORY_KIND_OTHER).setContent("Reset")
            .setImportance(0.3f))
        .setUpdateMask(FieldMask.newBuilder().addPaths("*")).build()).getMemory();
    assertEquals("Reset", star.getContent());
    assertEquals("", star.getKey());
    assertFalse(star.getHasEmbedding());
    assertFalse(star.hasExpireTime());
    assertEquals("", star.getSource());
    assertEquals(0.3f, star.getImportance());
  }

  @Test
  void updateRejectsBadMasksValuesAndTakenKeys() {
    String customer = newCustomer();
    Memory a = create(customer, fact("a").setKey("a"));
    Memory b = create(customer, fact("b").setKey("b"));
    UpdateMemoryRequest.Builder base = UpdateMemoryRequest.newBuilder().setMemory(Memory.newBuilder().setId(a.getId()));

    assertInvalid("update_mask.paths[1]", () -> memories.updateMemory(base.clone()
        .setUpdateMask(FieldMask.newBuilder().addPaths("content").addPaths("customer_id")).build()));
    assertInvalid("memory.importance", () -> memories.updateMemory(base.clone()
        .setMemory(Memory.newBuilder().setId(a.getId()).setKind(MemoryKind.MEMORY_KIND_FACT).setContent("x"))
        .setUpdateMask(FieldMask.newBuilder().addPaths("*")).build()));
    assertInvalid("memory.content", () -> memories.updateMemory(base.clone()
        .setUpdateMask(FieldMask.newBuilder().addPaths("content")).build()));
    assertInvalid("memory.kind", () -> memories.updateMemory(base.clone()
        .setUpdateMask(FieldMask.newBuilder().addPaths("kind")).build()));
    assertInvalid("memory.expire_time", () -> memories.updateMemory(base.clone()
        .setMemory(Memory.newBuilder().setId(a.getId()).setExpireTime(Timestamps.fromSeconds(5))).build()));
    assertInvalid("memory.embedding", () -> memories.updateMemory(base.clone()
        .setMemory(Memory.newBuilder().setId(a.getId()).addAllEmbedding(List.of(1f))).build()));
    assertInvalid("memory.id", () -> memories.updateMemory(UpdateMemoryRequest.getDefaultInstance()));
    assertError(Code.NOT_FOUND, "MEMORY_NOT_FOUND", () -> memories.updateMemory(UpdateMemoryRequest.newBuilder()
        .setMemory(Memory.newBuilder().setId(UUID.randomUUID().toString()).setContent("x")).build()));
    assertFieldError(Code.ALREADY_EXISTS, "MEMORY_KEY_ALREADY_EXISTS", "memory.key", () -> memories.updateMemory(
        base.clone().setMemory(Memory.newBuilder().setId(a.getId()).setKey(b.getKey())).build()));
    assertError(Code.NOT_FOUND, "CONVERSATION_NOT_FOUND", () -> memories.updateMemory(base.clone()
        .setMemory(Memory.newBuilder().setId(a.getId()).setConversationId(UUID.randomUUID().toString())).build()));

    // An expired memory's key is free.
    db.expireMemory(b.getId());
    assertEquals("b", memories.updateMemory(base.clone()
        .setMemory(Memory.newBuilder().setId(a.getId()).setKey("b")).build()).getMemory().getKey());
  }

  @Test
  void deleteRemovesTheMemoryForGood() {
    String customer = newCustomer();
    Memory m = create(customer, fact("to delete"));
    memories.deleteMemory(DeleteMemoryRequest.newBuilder().setMemoryId(m.getId()).build());
    assertError(Code.NOT_FOUND, "MEMORY_NOT_FOUND", () -> get(m.getId()));
    assertError(Code.NOT_FOUND, "MEMORY_NOT_FOUND",
        () -> memories.deleteMemory(DeleteMemoryRequest.newBuilder().setMemoryId(m.getId()).build()));
    assertInvalid("memory_id", () -> memories.deleteMemory(DeleteMemoryRequest.getDefaultInstance()));
    assertEquals(0, db.count("SELECT count(*) FROM memories WHERE id = ?::uuid", m.getId()));
  }

  // -----------------------------------------------------------------------------------------------
  // Expiry

  @Test
  void anExpiredMemoryIsInvisibleEverywhereAtOnce() {
    String customer = newCustomer();
    String word = "zyxexpiry" + UUID.randomUUID().toString().substring(0, 6).replace("-", "");
    Memory keep = create(customer, fact("keep " + word).addAllEmbedding(angle(2, 10)));
    Memory gone = create(customer, fact("gone " + word).addAllEmbedding(angle(2, 0)).setKey("gone"));
    db.expireMemory(gone.getId());
    assertEquals(1, db.count("SELECT count(*) FROM memories WHERE id = ?::uuid", gone.getId()),
        "the row is still there: invisibility does not wait for the sweeper");

    assertError(Code.NOT_FOUND, "MEMORY_NOT_FOUND", () -> get(gone.getId()));
    assertEquals(List.of(keep.getId()), ids(memories.listMemories(
        ListMemoriesRequest.newBuilder().setCustomerId(customer).build()).getMemoriesList()));
    assertEquals(List.of(), ids(memories.listMemories(
        ListMemoriesRequest.newBuilder().setCustomerId(customer).setKey("gone").build()).getMemoriesList()));
    assertEquals(List.of(keep.getId()), hitIds(search(SearchMemoriesRequest.newBuilder()
        .setCustomerId(customer).addAllQueryEmbedding(angle(2, 0)))));
    assertEquals(List.of(keep.getId()), hitIds(search(SearchMemoriesRequest.newBuilder().setQueryText(word))));
    assertEquals(List.of(keep.getId()), memories.fetchContext(FetchContextRequest.newBuilder().setCustomerId(customer)
            .setQueryText(word).addAllQueryEmbedding(angle(2, 0)).build())
        .getMemoriesList().stream().map(s -> s.getMemory().getId()).toList());
    assertEquals(ConfirmationEffect.CONFIRMATION_EFFECT_NOT_FOUND, memories.confirmMemories(
            ConfirmMemoriesRequest.newBuilder().addConfirmations(MemoryConfirmation.newBuilder()
                .setMemoryId(gone.getId()).setOutcome(ConfirmationOutcome.CONFIRMATION_OUTCOME_CONFIRMED)).build())
        .getResults(0).getEffect());
    assertError(Code.NOT_FOUND, "MEMORY_NOT_FOUND", () -> memories.updateMemory(UpdateMemoryRequest.newBuilder()
        .setMemory(Memory.newBuilder().setId(gone.getId()).setContent("revive")).build()));
    assertError(Code.NOT_FOUND, "MEMORY_NOT_FOUND",
        () -> memories.deleteMemory(DeleteMemoryRequest.newBuilder().setMemoryId(gone.getId()).build()));
  }

  @Test
  void aMemoryDisappearsWhenItsExpiryPasses() throws Exception {
    String customer = newCustomer();
    // Readable until its expiry, gone after. On a loaded machine the read can come after the
    // expiry: that attempt shows nothing, and one with a longer life follows.
    Memory m = null;
    for (long lifeMillis = 1500; m == null; lifeMillis *= 2) {
      Timestamp expiry = inFuture(Duration.ofMillis(lifeMillis));
      try {
        Memory created = create(customer, fact("short-lived " + lifeMillis).setExpireTime(expiry));
        assertEquals(created, get(created.getId()));
        m = created;
      } catch (io.grpc.StatusRuntimeException e) {
        long late = System.currentTimeMillis() - Timestamps.toMillis(expiry);
        assertTrue(late > 0 && lifeMillis < 30_000, () -> "gone before its expiry: " + e);
      }
    }
    Memory kept = m;
    long waitMs = Timestamps.toMillis(kept.getExpireTime()) - System.currentTimeMillis() + 50;
    if (waitMs > 0) {
      Thread.sleep(waitMs);
    }
    assertError(Code.NOT_FOUND, "MEMORY_NOT_FOUND", () -> get(kept.getId()));
  }

  // -----------------------------------------------------------------------------------------------
  // SearchMemories

  @Test
  void vectorSearchReturnsTheExactNearestNeighbours() {
    String customer = newCustomer();
    String other = newCustomer();
    // Unit vectors in the plane of dimensions 10 and 11, at known angles from the query (axis 10).
    List<Memory> byAngle = new ArrayList<>();
    for (int deg : new int[] {40, 0, 70, 20, 60, 10}) {
      byAngle.add(create(customer, Memory.newBuilder()
          .setKind(deg % 20 == 0 ? MemoryKind.MEMORY_KIND_FACT : MemoryKind.MEMORY_KIND_PREFERENCE)
          .setContent("angle " + deg).setMetadata(struct("deg", Integer.toString(deg)))
          .addAllEmbedding(angle(10, deg))));
    }
    Memory opposite = create(customer, fact("opposite").addAllEmbedding(angle(10, 180)));
    create(customer, fact("no embedding"));
    Memory othersBest = create(other, fact("other customer").addAllEmbedding(angle(10, 5)));

    SearchMemoriesResponse r = search(SearchMemoriesRequest.newBuilder()
        .setCustomerId(customer).addAllQueryEmbedding(angle(10, 0)));
    assertEquals(MemorySearchMode.MEMORY_SEARCH_MODE_VECTOR, r.getMode());
    int[] expectedOrder = {0, 10, 20, 40, 60, 70};
    assertEquals(expectedOrder.length, r.getHitsCount(), "the opposite vector (similarity -1) is cut by min_score 0");
    for (int i = 0; i < expectedOrder.length; i++) {
      MemorySearchHit h = r.getHits(i);
      assertEquals("angle " + expectedOrder[i], h.getMemory().getContent());
      assertEquals(Math.cos(Math.toRadians(expectedOrder[i])), h.getScore(), EPS);
      assertEquals(h.getScore(), h.getVectorSimilarity(), 0);
      assertEquals(i + 1, h.getVectorRank());
      assertEquals(0, h.getTextRank());
      assertTrue(h.getMemory().getHasEmbedding());
      assertEquals(0, h.getMemory().getEmbeddingCount());
    }

    // top_k, min_score, kinds, metadata.
    assertEquals(List.of("angle 0", "angle 10"), search(SearchMemoriesRequest.newBuilder().setCustomerId(customer)
        .addAllQueryEmbedding(angle(10, 0)).setTopK(2)).getHitsList().stream().map(h -> h.getMemory().getContent()).toList());
    assertEquals(3, search(SearchMemoriesRequest.newBuilder().setCustomerId(customer)
        .addAllQueryEmbedding(angle(10, 0)).setMinScore(Math.cos(Math.toRadians(25)))).getHitsCount());
    assertEquals(List.of("angle 0", "angle 20", "angle 40", "angle 60"), search(SearchMemoriesRequest.newBuilder()
        .setCustomerId(customer).addAllQueryEmbedding(angle(10, 0)).addKinds(MemoryKind.MEMORY_KIND_FACT))
        .getHitsList().stream().map(h -> h.getMemory().getContent()).toList());
    assertEquals(List.of("angle 60"), search(SearchMemoriesRequest.newBuilder().setCustomerId(customer)
        .addAllQueryEmbedding(angle(10, 0)).setMetadataFilter(struct("deg", "60")))
        .getHitsList().stream().map(h -> h.getMemory().getContent()).toList());
    SearchMemoriesResponse all = search(SearchMemoriesRequest.newBuilder().setCustomerId(customer)
        .addAllQueryEmbedding(angle(10, 0)).setMinScore(-1));
    assertEquals(opposite.getId(), all.getHits(all.getHitsCount() - 1).getMemory().getId());
    assertEquals(-1, all.getHits(all.getHitsCount() - 1).getScore(), EPS);

    // Tenant-wide: the other customer's memory ranks between 0 and 10 degrees.
    SearchMemoriesResponse tenant = search(SearchMemoriesRequest.newBuilder()
        .addAllQueryEmbedding(angle(10, 0)).setTopK(3));
    assertEquals(List.of(byAngle.get(1).getId(), othersBest.getId(), byAngle.get(5).getId()), hitIds(tenant));
  }

  @Test
  void textSearchRanksMatchesByTextRank() {
    String customer = newCustomer();
    String w = "qpiano" + UUID.randomUUID().toString().substring(0, 6);
    Memory twice = create(customer, fact("The " + w + " in the basement is a " + w));
    Memory once = create(customer, fact("Tuned the " + w + " last spring"));
    Memory neither = create(customer, fact("Prefers text over calls"));
    Memory phrase = create(customer, fact("basement flooding " + w));

    SearchMemoriesResponse r = search(SearchMemoriesRequest.newBuilder().setCustomerId(customer).setQueryText(w));
    assertEquals(MemorySearchMode.MEMORY_SEARCH_MODE_TEXT, r.getMode());
    assertEquals(twice.getId(), r.getHits(0).getMemory().getId(), "more occurrences rank higher");
    assertEquals(Set.of(once.getId(), phrase.getId()), Set.copyOf(hitIds(r).subList(1, 3)));
    assertEquals(phrase.getId(), r.getHits(1).getMemory().getId(), "equal ranks: newest first");
    for (int i = 0; i < r.getHitsCount(); i++) {
      MemorySearchHit h = r.getHits(i);
      assertEquals(i + 1, h.getTextRank());
      assertEquals(h.getScore(), h.getTextScore(), 0);
      assertTrue(h.getScore() > 0 && h.getScore() < 1);
      assertEquals(0, h.getVectorRank());
    }
    assertTrue(r.getHits(0).getScore() > r.getHits(1).getScore());

    // Web-search syntax: phrase, exclusion, OR.
    assertEquals(List.of(phrase.getId()), hitIds(search(SearchMemoriesRequest.newBuilder().setCustomerId(customer)
        .setQueryText("\"basement flooding\""))));
    assertEquals(List.of(once.getId()), hitIds(search(SearchMemoriesRequest.newBuilder()
        .setCustomerId(customer).setQueryText(w + " -basement"))));
    assertEquals(Set.of(once.getId(), phrase.getId()), Set.copyOf(hitIds(search(SearchMemoriesRequest.newBuilder()
        .setCustomerId(customer).setQueryText("tuned OR flooding")))));
    assertEquals(List.of(neither.getId()), hitIds(search(SearchMemoriesRequest.newBuilder().setCustomerId(customer)
        .setQueryText("calls"))));
    assertEquals(0, search(SearchMemoriesRequest.newBuilder().setCustomerId(customer).setQueryText("the of and"))
        .getHitsCount(), "stop words only match nothing");
    assertEquals(0, search(SearchMemoriesRequest.newBuilder().setCustomerId(customer).setQueryText("'); DROP TABLE x; --"))
        .getHitsCount(), "any text is safe");
    assertEquals(List.of(twice.getId()), hitIds(search(SearchMemoriesRequest.newBuilder().setCustomerId(customer)
        .setQueryText(w).setMinScore(r.getHits(0).getScore()))), "min_score cuts text hits by text rank");
  }

  @Test
  void hybridSearchFusesBothListsByReciprocalRank() {
    String customer = newCustomer();
    String w = "hpiano" + UUID.randomUUID().toString().substring(0, 6);
    // Vector list (query at 0 degrees in dims 20/21): a (0), b (30), c (80); d is
    // at 120 degrees (negative, cut before fusion). Text list for w: a (two occurrences), then d
    // and c (one each; ties newest first).
    Memory a = create(customer, fact(w + " in the basement, a " + w).addAllEmbedding(angle(20, 0)));
    Memory b = create(customer, fact("likes strong coffee").addAllEmbedding(angle(20, 30)));
    Memory c = create(customer, fact("the " + w + " was tuned").addAllEmbedding(angle(20, 80)));
    Memory d = create(customer, fact("sold the old " + w).addAllEmbedding(angle(20, 120)));

    SearchMemoriesResponse r = search(SearchMemoriesRequest.newBuilder().setCustomerId(customer)
        .setQueryText(w).addAllQueryEmbedding(angle(20, 0)));
    assertEquals(MemorySearchMode.MEMORY_SEARCH_MODE_HYBRID, r.getMode());
    assertEquals(List.of(a.getId(), c.getId(), d.getId(), b.getId()), hitIds(r));
    MemorySearchHit top = r.getHits(0);
    assertEquals(2.0 / 61, top.getScore(), 1e-12, "ranked first in both lists");
    assertEquals(1, top.getVectorRank());
    assertEquals(1, top.getTextRank());
    assertEquals(1.0, top.getVectorSimilarity(), EPS);
    assertEquals(3, r.getHits(1).getVectorRank());
    assertEquals(3, r.getHits(1).getTextRank());
    assertEquals(2.0 / 63, r.getHits(1).getScore(), 1e-12);
    assertEquals(0, r.getHits(2).getVectorRank(), "d's negative similarity is cut before fusion");
    assertEquals(2, r.getHits(2).getTextRank());
    assertEquals(1.0 / 62, r.getHits(2).getScore(), 1e-12);
    assertEquals(2, r.getHits(3).getVectorRank());
    assertEquals(0, r.getHits(3).getTextRank());
    assertEquals(1.0 / 62, r.getHits(3).getScore(), 1e-12);

    // The explicit mode needs both parts.
    assertInvalid("query_text", () -> search(SearchMemoriesRequest.newBuilder().setCustomerId(customer)
        .setMode(MemorySearchMode.MEMORY_SEARCH_MODE_HYBRID).addAllQueryEmbedding(angle(20, 0))));
    assertEquals(MemorySearchMode.MEMORY_SEARCH_MODE_TEXT, search(SearchMemoriesRequest.newBuilder()
        .setCustomerId(customer).setMode(MemorySearchMode.MEMORY_SEARCH_MODE_TEXT).setQueryText(w)
        .addAllQueryEmbedding(angle(20, 0))).getMode(), "an explicit mode ignores the other part");
  }

  @Test
  void searchValidatesItsRequest() {
    String c = newCustomer();
    SearchMemoriesRequest.Builder ok = SearchMemoriesRequest.newBuilder().setCustomerId(c).setQueryText("piano");
    assertInvalid("query_text", () -> search(SearchMemoriesRequest.newBuilder().setCustomerId(c)));
    assertInvalid("query_embedding", () -> search(SearchMemoriesRequest.newBuilder().setCustomerId(c)));
    assertInvalid("query_embedding", () -> search(ok.clone().setMode(MemorySearchMode.MEMORY_SEARCH_MODE_VECTOR)));
    assertInvalid("query_text", () -> search(SearchMemoriesRequest.newBuilder().setCustomerId(c)
        .setMode(MemorySearchMode.MEMORY_SEARCH_MODE_TEXT).addAllQueryEmbedding(angle(0, 0))));
    assertInvalid("query_embedding", () -> search(ok.clone().addAllQueryEmbedding(List.of(1f, 2f))));
    assertInvalid("query_embedding", () -> search(ok.clone().addAllQueryEmbedding(vec(Double.NEGATIVE_INFINITY))));
    assertInvalid("query_embedding", () -> search(ok.clone().addAllQueryEmbedding(vec(0, 0))));
    assertInvalid("query_text", () -> search(ok.clone().setQueryText("x".repeat(1025))));
    assertInvalid("top_k", () -> search(ok.clone().setTopK(-1)));
    assertInvalid("min_score", () -> search(ok.clone().setMinScore(1.5)));
    assertInvalid("min_score", () -> search(ok.clone().setMinScore(Double.NaN)));
    assertInvalid("kinds[0]", () -> search(ok.clone().addKinds(MemoryKind.MEMORY_KIND_UNSPECIFIED)));
    assertInvalid("mode", () -> search(ok.clone().setModeValue(42)));
    assertInvalid("customer_id", () -> search(ok.clone().setCustomerId("nope")));
    assertInvalid("metadata_filter", () -> search(ok.clone().setMetadataFilter(struct("x", "y".repeat(17000)))));
    assertError(Code.NOT_FOUND, "CUSTOMER_NOT_FOUND",
        () -> search(ok.clone().setCustomerId(UUID.randomUUID().toString())));

    // top_k above 100 is treated as 100.
    for (int i = 0; i < 3; i++) {
      create(c, fact("topk piano " + i));
    }
    assertEquals(3, search(ok.clone().setTopK(100_000)).getHitsCount());
  }

  // -----------------------------------------------------------------------------------------------
  // SearchConversations

  @Test
  void searchConversationsBySummaryEmbedding() {
    String customer = newCustomer();
    String other = newCustomer();
    UUID near = db.conversation(customer, "sms", "s-" + UUID.randomUUID(), true, "asked about tuning",
        literal(angle(30, 0)), null);
    UUID mid = db.conversation(customer, "web", "s-" + UUID.randomUUID(), false, "quote for moving",
        literal(angle(30, 45)), null);
    db.conversation(customer, "sms", "s-" + UUID.randomUUID(), true, "no embedding", null, null);
    UUID deleted = db.conversation(customer, "sms", "s-" + UUID.randomUUID(), true, "deleted",
        literal(angle(30, 1)), null);
    db.deleteConversation(deleted);
    UUID others = db.conversation(other, "sms", "s-" + UUID.randomUUID(), true, "other", literal(angle(30, 10)), null);

    SearchConversationsRequest.Builder q = SearchConversationsRequest.newBuilder().addAllQueryEmbedding(angle(30, 0));
    SearchConversationsResponse r = memories.searchConversations(q.clone().setCustomerId(customer).build());
    assertEquals(List.of(near.toString(), mid.toString()),
        r.getHitsList().stream().map(h -> h.getConversation().getId()).toList());
    assertEquals(1.0, r.getHits(0).getScore(), EPS);
    assertEquals(Math.cos(Math.toRadians(45)), r.getHits(1).getScore(), EPS);
    Conversation c = r.getHits(0).getConversation();
    assertEquals("asked about tuning", c.getSummary());
    assertTrue(c.getHasSummaryEmbedding());
    assertEquals(0, c.getSummaryEmbeddingCount());
    assertEquals(Channel.CHANNEL_SMS, c.getChannel());
    assertEquals(ConversationStatus.CONVERSATION_STATUS_OPEN, c.getStatus());
    assertEquals(ConversationStatus.CONVERSATION_STATUS_CLOSED, r.getHits(1).getConversation().getStatus());

    assertEquals(List.of(mid.toString()), memories.searchConversations(q.clone().setCustomerId(customer)
        .setChannel(Channel.CHANNEL_WEB).build()).getHitsList().stream().map(h -> h.getConversation().getId()).toList());
    assertEquals(List.of(mid.toString()), memories.searchConversations(q.clone().setCustomerId(customer)
        .setStatus(ConversationStatus.CONVERSATION_STATUS_CLOSED).build())
        .getHitsList().stream().map(h -> h.getConversation().getId()).toList());
    assertEquals(List.of(near.toString(), others.toString()), memories.searchConversations(q.clone().setTopK(2)
        .build()).getHitsList().stream().map(h -> h.getConversation().getId()).toList());
    assertEquals(1, memories.searchConversations(q.clone().setCustomerId(customer).setMinScore(0.9).build())
        .getHitsCount());

    assertInvalid("query_embedding", () -> memories.searchConversations(SearchConversationsRequest.getDefaultInstance()));
    assertInvalid("query_embedding", () -> memories.searchConversations(SearchConversationsRequest.newBuilder()
        .addAllQueryEmbedding(vec(Double.NaN)).build()));
    assertInvalid("top_k", () -> memories.searchConversations(q.clone().setTopK(-5).build()));
    assertInvalid("min_score", () -> memories.searchConversations(q.clone().setMinScore(-2).build()));
    assertInvalid("customer_id", () -> memories.searchConversations(q.clone().setCustomerId("x").build()));
    assertInvalid("channel", () -> memories.searchConversations(q.clone().setChannelValue(77).build()));
    assertError(Code.NOT_FOUND, "CUSTOMER_NOT_FOUND", () -> memories.searchConversations(
        q.clone().setCustomerId(UUID.randomUUID().toString()).build()));
  }

  // -----------------------------------------------------------------------------------------------
  // FetchContext

  @Test
  void fetchContextAssemblesTheAgentsContextInOneCall() {
    String customer = newCustomer();
    Instant now = Instant.now();
    UUID older = db.conversation(customer, "web", "f-" + UUID.randomUUID(), true, "older chat", null,
        now.minus(Duration.ofHours(5)));
    UUID closed = db.conversation(customer, "sms", "f-" + UUID.randomUUID(), false, "closed chat", null, now);
    UUID recent = db.conversation(customer, "sms", "f-" + UUID.randomUUID(), true, "booking a piano move", null,
        now.minus(Duration.ofHours(1)));
    for (int i = 1; i <= 25; i++) {
      db.message(recent, i % 2 == 1 ? "user" : "assistant", "message " + i, null, null);
    }
    db.message(recent, "assistant", "", "[{\"id\": \"call_1\", \"name\": \"get_quote\", \"arguments\": \"{\\\"items\\\": 3}\"}]",
        "[{\"uri\": \"https://x.test/a.jpg\", \"media_type\": \"image/jpeg\", \"size_bytes\": 1234, \"name\": \"a.jpg\"}]");
    db.message(closed, "user", "in the closed one", null, null);

    String w = "fpiano" + UUID.randomUUID().toString().substring(0, 6);
    Memory best = create(customer, fact("Has a " + w + " in the basement").addAllEmbedding(angle(40, 0))
        .setImportance(0.9f));
    Memory vectorOnly = create(customer, fact("Stairs are narrow").addAllEmbedding(angle(40, 30)).setImportance(0.5f));
    Memory unrelated = create(customer, fact("Prefers text").setImportance(0.2f));
    create(newCustomer(), fact("someone else's " + w).addAllEmbedding(angle(40, 0)));

    FetchContextResponse r = memories.fetchContext(FetchContextRequest.newBuilder().setCustomerId(customer)
        .setQueryText(w).addAllQueryEmbedding(angle(40, 0)).setMessageLimit(5).build());
    assertEquals(customer, r.getCustomer().getId());
    assertEquals(List.of(recent.toString(), older.toString()),
        r.getOpenConversationsList().stream().map(Conversation::getId).toList(), "open ones, latest activity first");
    assertEquals(recent.toString(), r.getConversation().getId());
    assertEquals("booking a piano move", r.getConversation().getSummary());
    assertEquals(List.of(22L, 23L, 24L, 25L, 26L),
        r.getRecentMessagesList().stream().map(Message::getSequence).toList(), "the last 5, oldest first");
    Message tool = r.getRecentMessages(4);
    assertEquals(MessageRole.MESSAGE_ROLE_ASSISTANT, tool.getRole());
    assertEquals("get_quote", tool.getToolCalls(0).getName());
    assertEquals("{\"items\": 3}", tool.getToolCalls(0).getArguments());
    assertEquals(1234, tool.getAttachments(0).getSizeBytes());
    assertEquals("image/jpeg", tool.getAttachments(0).getMediaType());

    assertEquals(List.of(best.getId(), vectorOnly.getId(), unrelated.getId()),
        r.getMemoriesList().stream().map(s -> s.getMemory().getId()).toList());
    ScoreBreakdown b0 = r.getMemories(0).getBreakdown();
    assertEquals(1.0, b0.getRelevance(), 1e-9, "first in both lists");
    assertEquals(1.0, b0.getVectorSimilarity(), EPS);
    assertTrue(b0.getTextScore() > 0);
    assertEquals(0.9, b0.getImportance(), EPS);
    assertEquals(1.0, b0.getRecency(), 1e-3, "created just now");
    assertEquals(0, b0.getConfirmation(), 0);
    ScoreBreakdown b1 = r.getMemories(1).getBreakdown();
    assertEquals((1.0 / 62) * 61 / 2, b1.getRelevance(), 1e-9, "second in the vector list, not in the text list");
    assertEquals(Math.cos(Math.toRadians(30)), b1.getVectorSimilarity(), EPS);
    assertEquals(0, b1.getTextScore(), 0);
    ScoreBreakdown b2 = r.getMemories(2).getBreakdown();
    assertEquals(0, b2.getRelevance(), 0, "in no list");
    for (ScoredMemory s : r.getMemoriesList()) {
      ScoreBreakdown b = s.getBreakdown();
      assertEquals(0.55 * b.getRelevance() + 0.20 * b.getImportance() + 0.15 * b.getRecency() + 0.10 * b.getConfirmation(),
          b.getFinalScore(), 1e-9);
    }

    // A named (closed) conversation, limits 0.
    FetchContextResponse named = memories.fetchContext(FetchContextRequest.newBuilder().setCustomerId(customer)
        .setConversationId(closed.toString()).setMemoryLimit(0).build());
    assertEquals(closed.toString(), named.getConversation().getId());
    assertEquals(List.of("in the closed one"), named.getRecentMessagesList().stream().map(Message::getContent).toList());
    assertEquals(0, named.getMemoriesCount());
    assertEquals(2, named.getOpenConversationsCount());
    assertEquals(0, memories.fetchContext(FetchContextRequest.newBuilder().setCustomerId(customer)
        .setMessageLimit(0).build()).getRecentMessagesCount());
    assertEquals(20, memories.fetchContext(FetchContextRequest.newBuilder().setCustomerId(customer).build())
        .getRecentMessagesCount(), "20 messages by default");
  }

  @Test
  void fetchContextWithoutAQueryRanksByImportanceRecencyAndConfirmations() {
    String customer = newCustomer();
    Memory important = create(customer, fact("important").setImportance(1f));
    Memory old = create(customer, fact("old but important").setImportance(1f));
    db.update("UPDATE memories SET created_at = now() - interval '30 days' WHERE id = ?::uuid", old.getId());
    Memory confirmed = create(customer, fact("confirmed twice").setImportance(0.5f));
    for (int i = 0; i < 2; i++) {
      memories.confirmMemories(ConfirmMemoriesRequest.newBuilder().addConfirmations(MemoryConfirmation.newBuilder()
          .setMemoryId(confirmed.getId()).setOutcome(ConfirmationOutcome.CONFIRMATION_OUTCOME_CONFIRMED)).build());
    }
    Memory trivial = create(customer, fact("trivial").setImportance(0f));

    FetchContextResponse r = memories.fetchContext(FetchContextRequest.newBuilder().setCustomerId(customer).build());
    // important: (0.20 + 0.15) / 0.45 = 0.78; confirmed: (0.10 + 0.15 + 0.05) / 0.45 = 0.67;
    // old: (0.20 + 0.075) / 0.45 = 0.61; trivial: 0.15 / 0.45 = 0.33.
    assertEquals(List.of(important.getId(), confirmed.getId(), old.getId(), trivial.getId()),
        r.getMemoriesList().stream().map(s -> s.getMemory().getId()).toList());
    assertEquals(0.5, r.getMemories(1).getBreakdown().getConfirmation(), 1e-9, "2 / (2 + 2)");
    assertEquals(0.5, r.getMemories(2).getBreakdown().getRecency(), 1e-3, "30 days: half");
    for (ScoredMemory s : r.getMemoriesList()) {
      ScoreBreakdown b = s.getBreakdown();
      assertEquals(0, b.getRelevance(), 0);
      assertEquals((0.20 * b.getImportance() + 0.15 * b.getRecency() + 0.10 * b.getConfirmation()) / 0.45,
          b.getFinalScore(), 1e-9);
    }
    assertFalse(r.hasConversation(), "no open conversation");
    assertEquals(0, r.getRecentMessagesCount());
    assertEquals(2, memories.fetchContext(FetchContextRequest.newBuilder().setCustomerId(customer)
        .setMemoryLimit(2).build()).getMemoriesCount());
    assertEquals(1, memories.fetchContext(FetchContextRequest.newBuilder().setCustomerId(customer)
        .addMemoryKinds(MemoryKind.MEMORY_KIND_FACT).setMemoryLimit(1).build()).getMemoriesCount());
  }

  @Test
  void fetchContextValidatesAndChecksOwnership() {
    String customer = newCustomer();
    UUID othersConversation = db.conversation(newCustomer(), "sms", "o-" + UUID.randomUUID(), true, "", null, null);
    FetchContextRequest.Builder ok = FetchContextRequest.newBuilder().setCustomerId(customer);
    assertInvalid("customer_id", () -> memories.fetchContext(FetchContextRequest.getDefaultInstance()));
    assertInvalid("conversation_id", () -> memories.fetchContext(ok.clone().setConversationId("x").build()));
    assertInvalid("message_limit", () -> memories.fetchContext(ok.clone().setMessageLimit(-1).build()));
    assertInvalid("memory_limit", () -> memories.fetchContext(ok.clone().setMemoryLimit(-1).build()));
    assertInvalid("query_embedding", () -> memories.fetchContext(ok.clone().addAllQueryEmbedding(vec(1)
        .subList(0, 10)).build()));
    assertInvalid("query_text", () -> memories.fetchContext(ok.clone().setQueryText("q".repeat(1025)).build()));
    assertInvalid("memory_kinds[0]", () -> memories.fetchContext(ok.clone()
        .addMemoryKinds(MemoryKind.MEMORY_KIND_UNSPECIFIED).build()));
    assertInvalid("conversation_id", () -> memories.fetchContext(ok.clone()
        .setConversationId(othersConversation.toString()).build()));
    assertError(Code.NOT_FOUND, "CUSTOMER_NOT_FOUND", () -> memories.fetchContext(FetchContextRequest.newBuilder()
        .setCustomerId(UUID.randomUUID().toString()).addAllQueryEmbedding(angle(0, 0)).build()));
    assertError(Code.NOT_FOUND, "CONVERSATION_NOT_FOUND", () -> memories.fetchContext(ok.clone()
        .setConversationId(UUID.randomUUID().toString()).build()));
    UUID deleted = db.conversation(customer, "sms", "d-" + UUID.randomUUID(), true, "", null, null);
    db.deleteConversation(deleted);
    assertError(Code.NOT_FOUND, "CONVERSATION_NOT_FOUND", () -> memories.fetchContext(ok.clone()
        .setConversationId(deleted.toString()).build()));
  }

  // -----------------------------------------------------------------------------------------------
  // ConfirmMemories

  @Test
  void confirmMemoriesAppliesEveryVerdict() {
    String customer = newCustomer();
    Memory confirmed = create(customer, fact("confirmed").setExpireTime(inFuture(Duration.ofDays(1))));
    Memory neverExpires = create(customer, fact("never expires"));
    Memory longLived = create(customer, fact("long-lived").setExpireTime(inFuture(Duration.ofDays(100))));
    Memory rejected = create(customer, fact("rejected").setImportance(0.8f));
    Memory deleted = create(customer, fact("deleted"));
    String missing = UUID.randomUUID().toString();

    ConfirmMemoriesResponse r = memories.confirmMemories(ConfirmMemoriesRequest.newBuilder()
        .addConfirmations(MemoryConfirmation.newBuilder().setMemoryId(confirmed.getId())
            .setOutcome(ConfirmationOutcome.CONFIRMATION_OUTCOME_CONFIRMED).setExtendExpiry(Durations.fromDays(30)))
        .addConfirmations(MemoryConfirmation.newBuilder().setMemoryId(missing)
            .setOutcome(ConfirmationOutcome.CONFIRMATION_OUTCOME_CONFIRMED))
        .addConfirmations(MemoryConfirmation.newBuilder().setMemoryId(neverExpires.getId())
            .setOutcome(ConfirmationOutcome.CONFIRMATION_OUTCOME_CONFIRMED).setExtendExpiry(Durations.fromDays(30)))
        .addConfirmations(MemoryConfirmation.newBuilder().setMemoryId(longLived.getId())
            .setOutcome(ConfirmationOutcome.CONFIRMATION_OUTCOME_CONFIRMED).setExtendExpiry(Durations.fromDays(1)))
        .addConfirmations(MemoryConfirmation.newBuilder().setMemoryId(rejected.getId())
            .setOutcome(ConfirmationOutcome.CONFIRMATION_OUTCOME_REJECTED))
        .addConfirmations(MemoryConfirmation.newBuilder().setMemoryId(deleted.getId())
            .setOutcome(ConfirmationOutcome.CONFIRMATION_OUTCOME_REJECTED).setDeleteOnReject(true))
        .build());

    assertEquals(List.of(confirmed.getId(), missing, neverExpires.getId(), longLived.getId(), rejected.getId(),
        deleted.getId()), r.getResultsList().stream().map(MemoryConfirmationResult::getMemoryId).toList());
    assertEquals(List.of(ConfirmationEffect.CONFIRMATION_EFFECT_CONFIRMED, ConfirmationEffect.CONFIRMATION_EFFECT_NOT_FOUND,
            ConfirmationEffect.CONFIRMATION_EFFECT_CONFIRMED, ConfirmationEffect.CONFIRMATION_EFFECT_CONFIRMED,
            ConfirmationEffect.CONFIRMATION_EFFECT_DEMOTED, ConfirmationEffect.CONFIRMATION_EFFECT_DELETED),
        r.getResultsList().stream().map(MemoryConfirmationResult::getEffect).toList());

    Memory c = r.getResults(0).getMemory();
    assertEquals(1, c.getConfirmCount());
    assertTrue(c.hasLastConfirmTime());
    long extendedTo = Timestamps.toMillis(c.getExpireTime());
    long expected = System.currentTimeMillis() + Duration.ofDays(30).toMillis();
    assertTrue(Math.abs(extendedTo - expected) < 60_000, "expiry pushed to about now + 30 days");
    assertFalse(r.getResults(1).hasMemory());
    assertFalse(r.getResults(2).getMemory().hasExpireTime(), "a memory without expiry gets none");
    assertEquals(longLived.getExpireTime(), r.getResults(3).getMemory().getExpireTime(), "never shortened");
    assertEquals(0.4f, r.getResults(4).getMemory().getImportance(), 1e-6, "rejection halves importance");
    assertEquals(0, r.getResults(4).getMemory().getConfirmCount());
    assertFalse(r.getResults(5).hasMemory());
    assertError(Code.NOT_FOUND, "MEMORY_NOT_FOUND", () -> get(deleted.getId()));
    assertEquals(c, get(confirmed.getId()));
  }

  @Test
  void confirmMemoriesValidatesEveryItem() {
    String id = create(newCustomer(), fact("x")).getId();
    MemoryConfirmation.Builder ok = MemoryConfirmation.newBuilder().setMemoryId(id)
        .setOutcome(ConfirmationOutcome.CONFIRMATION_OUTCOME_CONFIRMED);
    assertInvalid("confirmations", () -> memories.confirmMemories(ConfirmMemoriesRequest.getDefaultInstance()));
    ConfirmMemoriesRequest.Builder tooMany = ConfirmMemoriesRequest.newBuilder();
    for (int i = 0; i < 101; i++) {
      tooMany.addConfirmations(ok.clone().setMemoryId(UUID.randomUUID().toString()));
    }
    assertInvalid("confirmations", () -> memories.confirmMemories(tooMany.build()));
    assertInvalid("confirmations[1].memory_id", () -> memories.confirmMemories(ConfirmMemoriesRequest.newBuilder()
        .addConfirmations(ok).addConfirmations(ok).build()));
    assertInvalid("confirmations[0].memory_id", () -> memories.confirmMemories(ConfirmMemoriesRequest.newBuilder()
        .addConfirmations(ok.clone().setMemoryId("x")).build()));
    assertInvalid("confirmations[0].outcome", () -> memories.confirmMemories(ConfirmMemoriesRequest.newBuilder()
        .addConfirmations(ok.clone().clearOutcome()).build()));
    assertInvalid("confirmations[0].extend_expiry", () -> memories.confirmMemories(ConfirmMemoriesRequest.newBuilder()
        .addConfirmations(ok.clone().setOutcome(ConfirmationOutcome.CONFIRMATION_OUTCOME_REJECTED)
            .setExtendExpiry(Durations.fromDays(1))).build()));
    assertInvalid("confirmations[0].delete_on_reject", () -> memories.confirmMemories(ConfirmMemoriesRequest.newBuilder()
        .addConfirmations(ok.clone().setDeleteOnReject(true)).build()));
    assertInvalid("confirmations[0].extend_expiry", () -> memories.confirmMemories(ConfirmMemoriesRequest.newBuilder()
        .addConfirmations(ok.clone().setExtendExpiry(Durations.fromSeconds(-5))).build()));
    assertInvalid("confirmations[0].extend_expiry", () -> memories.confirmMemories(ConfirmMemoriesRequest.newBuilder()
        .addConfirmations(ok.clone().setExtendExpiry(Durations.fromSeconds(0))).build()));
    assertInvalid("confirmations[0].extend_expiry", () -> memories.confirmMemories(ConfirmMemoriesRequest.newBuilder()
        .addConfirmations(ok.clone().setExtendExpiry(Durations.fromDays(3651))).build()));
    assertEquals(0, get(id).getConfirmCount(), "a rejected request changes nothing");
  }
}

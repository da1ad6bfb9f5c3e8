package dev.contextmemory.server;

import static dev.contextmemory.server.testing.GrpcErrors.assertInvalid;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.FieldMask;
import dev.contextmemory.server.embedding.LocalEmbedder;
import dev.contextmemory.server.testing.TestServer;
import dev.contextmemory.v1.*;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ThreadLocalRandom;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Server-side embeddings with the local model through the real stack: a memory written without a
 * vector is stored and found by text at once, queued, embedded by the worker and then found by
 * meaning; a conversation summary likewise; searches and FetchContext accept query_text alone;
 * client vectors must be of the active model; a content change requeues.
 */
class ServerEmbeddingTest {
  static final String MODEL = "all-minilm-l6-v2-q";
  private static TestServer server;
  private static CustomerServiceGrpc.CustomerServiceBlockingStub customers;
  private static ConversationServiceGrpc.ConversationServiceBlockingStub conversations;
  private static MemoryServiceGrpc.MemoryServiceBlockingStub memories;

  @BeforeAll
  static void start() {
    server = TestServer.start(Map.of("EMBEDDER", "local"));
    customers = CustomerServiceGrpc.newBlockingStub(server.channel());
    conversations = ConversationServiceGrpc.newBlockingStub(server.channel());
    memories = MemoryServiceGrpc.newBlockingStub(server.channel());
  }

  @AfterAll
  static void stop() {
    server.close();
  }

  static String newCustomer(CustomerServiceGrpc.CustomerServiceBlockingStub customers) {
    return customers.createCustomer(CreateCustomerRequest.newBuilder().setCustomer(Customer.newBuilder()
        .setDisplayName("Emb").setPhone("+1555" + (2000000 + ThreadLocalRandom.current().nextInt(7999999))))
        .build()).getCustomer().getId();
  }

  static Memory create(MemoryServiceGrpc.MemoryServiceBlockingStub memories, String customer, String content) {
    return memories.createMemory(CreateMemoryRequest.newBuilder().setCustomerId(customer)
        .setMemory(Memory.newBuilder().setKind(MemoryKind.MEMORY_KIND_FACT).setContent(content)).build()).getMemory();
  }

  /** Waits (at most 60 s, polling) until the memory's embedding state is {@code state}. */
  static Memory await(MemoryServiceGrpc.MemoryServiceBlockingStub memories, String id, EmbeddingState state)
      throws InterruptedException {
    return await(memories, id, state, null);
  }

  /** Waits (at most 60 s) for {@code state} and, unless null, an embedding of {@code model}. */
  static Memory await(MemoryServiceGrpc.MemoryServiceBlockingStub memories, String id, EmbeddingState state,
      String model) throws InterruptedException {
    long until = System.nanoTime() + 60_000_000_000L;
    Memory m;
    do {
      m = memories.getMemory(GetMemoryRequest.newBuilder().setMemoryId(id).build()).getMemory();
      if (m.getEmbeddingState() == state && (model == null || model.equals(m.getEmbeddingModel()))) {
        return m;
      }
      Thread.sleep(50);
    } while (System.nanoTime() < until);
    throw new AssertionError("memory " + id + " still " + m.getEmbeddingState() + " of " + m.getEmbeddingModel()
        + ", expected " + state + " of " + model);
  }

  private static List<Float> local(String text) {
    List<Float> out = new ArrayList<>();
    for (float x : new LocalEmbedder(MODEL).embed(List.of(text)).get(0)) {
      out.add(x);
    }
    return out;
  }

  @Test
  void aMemoryWrittenWithoutAVectorIsFoundByTextAtOnceAndByMeaningOnceEmbedded() throws Exception {
    String customer = newCustomer(customers);
    Memory m = create(memories, customer, "Has a golden retriever named Max.");
    // Stored at once, queued, not embedded inline (the write path has no model in it).
    assertTrue(m.getEmbeddingState() == EmbeddingState.EMBEDDING_STATE_PENDING
        || m.getEmbeddingState() == EmbeddingState.EMBEDDING_STATE_READY, m.getEmbeddingState().toString());
    SearchMemoriesResponse byText = memories.searchMemories(SearchMemoriesRequest.newBuilder().setCustomerId(customer)
        .setMode(MemorySearchMode.MEMORY_SEARCH_MODE_TEXT).setQueryText("retriever").build());
    assertEquals(m.getId(), byText.getHits(0).getMemory().getId());

    Memory ready = await(memories, m.getId(), EmbeddingState.EMBEDDING_STATE_READY);
    assertEquals(MODEL, ready.getEmbeddingModel());
    assertTrue(ready.getHasEmbedding());
    assertEquals(384, memories.getMemory(GetMemoryRequest.newBuilder().setMemoryId(m.getId()).setIncludeEmbedding(true)
        .build()).getMemory().getEmbeddingCount());

    // query_text alone: HYBRID by default, and the vector list finds what no word matches.
    create(memories, customer, "Prefers email; never call before noon.");
    SearchMemoriesResponse hybrid = memories.searchMemories(SearchMemoriesRequest.newBuilder().setCustomerId(customer)
        .setQueryText("do they have any animals").build());
    assertEquals(MemorySearchMode.MEMORY_SEARCH_MODE_HYBRID, hybrid.getMode());
    assertEquals(m.getId(), hybrid.getHits(0).getMemory().getId());
    assertEquals(1, hybrid.getHits(0).getVectorRank());
    SearchMemoriesResponse vector = memories.searchMemories(SearchMemoriesRequest.newBuilder().setCustomerId(customer)
        .setMode(MemorySearchMode.MEMORY_SEARCH_MODE_VECTOR).setQueryText("pets at home").build());
    assertEquals(m.getId(), vector.getHits(0).getMemory().getId());
    assertTrue(vector.getHits(0).getVectorSimilarity() > 0.2, "similarity " + vector.getHits(0).getVectorSimilarity());

    // FetchContext ranks by meaning from the text alone.
    FetchContextResponse ctx = memories.fetchContext(FetchContextRequest.newBuilder().setCustomerId(customer)
        .setQueryText("any dogs or cats").build());
    assertEquals(m.getId(), ctx.getMemories(0).getMemory().getId());
    assertTrue(ctx.getMemories(0).getBreakdown().getVectorSimilarity() > 0);
  }

  @Test
  void changedContentIsQueuedAgainAndReEmbedded() throws Exception {
    String customer = newCustomer(customers);
    Memory m = await(memories, create(memories, customer, "Drives a red Mini Cooper.").getId(),
        EmbeddingState.EMBEDDING_STATE_READY);
    Memory updated = memories.updateMemory(UpdateMemoryRequest.newBuilder()
        .setMemory(Memory.newBuilder().setId(m.getId()).setContent("Rides a motorbike, no car."))
        .setUpdateMask(FieldMask.newBuilder().addPaths("content")).build()).getMemory();
    assertTrue(updated.getEmbeddingState() != EmbeddingState.EMBEDDING_STATE_NONE);
    await(memories, m.getId(), EmbeddingState.EMBEDDING_STATE_READY);
    SearchMemoriesResponse r = memories.searchMemories(SearchMemoriesRequest.newBuilder().setCustomerId(customer)
        .setMode(MemorySearchMode.MEMORY_SEARCH_MODE_VECTOR).setQueryText("motorcycle").build());
    assertTrue(r.getHits(0).getVectorSimilarity() > 0.3, "the new content's vector: " + r.getHits(0).getVectorSimilarity());
  }

  @Test
  void clientVectorsMustBeOfTheActiveModel() {
    String customer = newCustomer(customers);
    List<Float> v = local("Lives at 12 Elm Street, Springfield.");
    // Naming the active model, or no model (the client model defaults to the active one): READY at once.
    Memory named = memories.createMemory(CreateMemoryRequest.newBuilder().setCustomerId(customer).setMemory(
        Memory.newBuilder().setKind(MemoryKind.MEMORY_KIND_FACT).setContent("Lives at 12 Elm Street, Springfield.")
            .addAllEmbedding(v).setEmbeddingModel(MODEL)).build()).getMemory();
    assertEquals(EmbeddingState.EMBEDDING_STATE_READY, named.getEmbeddingState());
    assertEquals(MODEL, named.getEmbeddingModel());
    // Another model's vector: INVALID_ARGUMENT on the model field, nothing stored.
    assertInvalid("memory.embedding_model", () -> memories.createMemory(CreateMemoryRequest.newBuilder()
        .setCustomerId(customer).setMemory(Memory.newBuilder().setKind(MemoryKind.MEMORY_KIND_FACT).setContent("x")
            .addAllEmbedding(v).setEmbeddingModel("text-embedding-3-small")).build()));
    assertInvalid("query_embedding_model", () -> memories.searchMemories(SearchMemoriesRequest.newBuilder()
        .setCustomerId(customer).addAllQueryEmbedding(v).setQueryEmbeddingModel("nomic-embed-text").build()));
    // The active model's vector of the wrong length.
    assertInvalid("memory.embedding", () -> memories.createMemory(CreateMemoryRequest.newBuilder()
        .setCustomerId(customer).setMemory(Memory.newBuilder().setKind(MemoryKind.MEMORY_KIND_FACT).setContent("x")
            .addAllEmbedding(v.subList(0, 100))).build()));
    assertEquals(1, memories.listMemories(ListMemoriesRequest.newBuilder().setCustomerId(customer).build())
        .getMemoriesCount());
  }

  @Test
  void batchWritesAreQueuedAndEmbeddedLikeSingleOnesAndTheirVectorsFollowTheModelRules() throws Exception {
    String customer = newCustomer(customers);
    List<Float> v = local("Speaks Portuguese and English.");
    CreateMemoriesResponse created = memories.createMemories(CreateMemoriesRequest.newBuilder()
        .addRequests(CreateMemoryRequest.newBuilder().setCustomerId(customer).setMemory(Memory.newBuilder()
            .setKind(MemoryKind.MEMORY_KIND_FACT).setContent("Keeps bees in the garden.")))
        .addRequests(CreateMemoryRequest.newBuilder().setCustomerId(customer).setMemory(Memory.newBuilder()
            .setKind(MemoryKind.MEMORY_KIND_FACT).setContent("Speaks Portuguese and English.").addAllEmbedding(v)))
        .addRequests(CreateMemoryRequest.newBuilder().setCustomerId(customer).setMemory(Memory.newBuilder()
            .setKind(MemoryKind.MEMORY_KIND_FACT).setContent("x").addAllEmbedding(v)
            .setEmbeddingModel("text-embedding-3-small")))
        .build());
    // Text alone: queued, then embedded by the worker.
    assertFalse(created.getResults(0).hasError(), created.getResults(0)::toString);
    await(memories, created.getResults(0).getMemory().getId(), EmbeddingState.EMBEDDING_STATE_READY, MODEL);
    // The active model's vector: staged outside the index, READY once the indexer moved it in.
    await(memories, created.getResults(1).getMemory().getId(), EmbeddingState.EMBEDDING_STATE_READY, MODEL);
    // Another model's vector: that item is invalid, the others are written.
    assertFalse(created.getResults(2).hasMemory(), created.getResults(2)::toString);
    assertEquals("INVALID_FIELD", created.getResults(2).getError().getReason());
    assertEquals("memory.embedding_model", created.getResults(2).getError().getField());

    UpsertMemoriesResponse upserted = memories.upsertMemories(UpsertMemoriesRequest.newBuilder()
        .addRequests(UpsertMemoryRequest.newBuilder().setCustomerId(customer).setMemory(Memory.newBuilder()
            .setKind(MemoryKind.MEMORY_KIND_PREFERENCE).setKey("drink").setContent("Drinks green tea.")))
        .build());
    Memory tea = await(memories, upserted.getResults(0).getMemory().getId(), EmbeddingState.EMBEDDING_STATE_READY,
        MODEL);
    java.time.Instant before = java.time.Instant.now();
    Thread.sleep(20);
    memories.upsertMemories(UpsertMemoriesRequest.newBuilder()
        .addRequests(UpsertMemoryRequest.newBuilder().setCustomerId(customer).setMemory(Memory.newBuilder()
            .setKind(MemoryKind.MEMORY_KIND_PREFERENCE).setKey("drink").setContent("Drinks black coffee.")))
        .build());
    await(memories, tea.getId(), EmbeddingState.EMBEDDING_STATE_READY, MODEL);
    // The worker's vector is no change of the fact: created, superseded, nothing more.
    assertEquals(List.of(MemoryChangeType.MEMORY_CHANGE_TYPE_CREATED, MemoryChangeType.MEMORY_CHANGE_TYPE_SUPERSEDED),
        memories.listMemoryHistory(ListMemoryHistoryRequest.newBuilder().setMemoryId(tea.getId()).build())
            .getChangesList().stream().map(MemoryChange::getType).toList());
    // A search in the past finds the superseded version by meaning, in the active model's space.
    SearchMemoriesResponse past = memories.searchMemories(SearchMemoriesRequest.newBuilder().setCustomerId(customer)
        .setMode(MemorySearchMode.MEMORY_SEARCH_MODE_VECTOR).setQueryText("tea")
        .setAsOfTime(com.google.protobuf.Timestamp.newBuilder().setSeconds(before.getEpochSecond())
            .setNanos(before.getNano()))
        .build());
    assertEquals(tea.getId(), past.getHits(0).getMemory().getId());
    assertEquals("Drinks green tea.", past.getHits(0).getMemory().getContent());
    assertEquals(MODEL, past.getHits(0).getMemory().getEmbeddingModel());
  }

  @Test
  void searchConversationsTakesQueryTextAlone() {
    String customer = newCustomer(customers);
    Conversation c = conversations.getOrCreateOpenConversation(GetOrCreateOpenConversationRequest.newBuilder()
        .setCustomerId(customer).setChannel(Channel.CHANNEL_SMS).setThreadKey("t-" + customer).build()).getConversation();
    conversations.updateConversation(UpdateConversationRequest.newBuilder().setConversation(c.toBuilder()
            .setSummary("Asked for a quote to move a piano down three flights of stairs.")
            .addAllSummaryEmbedding(local("Asked for a quote to move a piano down three flights of stairs.")))
        .setUpdateMask(FieldMask.newBuilder().addPaths("summary").addPaths("summary_embedding")).build());
    Conversation stored = conversations.getConversation(GetConversationRequest.newBuilder().setConversationId(c.getId())
        .build()).getConversation();
    // The caller's vector of the active model: READY at once, nothing queued.
    assertEquals(EmbeddingState.EMBEDDING_STATE_READY, stored.getSummaryEmbeddingState());
    assertEquals(MODEL, stored.getSummaryEmbeddingModel());
    SearchConversationsResponse r = memories.searchConversations(SearchConversationsRequest.newBuilder()
        .setCustomerId(customer).setQueryText("moving a musical instrument").build());
    assertEquals(c.getId(), r.getHits(0).getConversation().getId());
    assertTrue(r.getHits(0).getScore() > 0.2, "score " + r.getHits(0).getScore());
    assertInvalid("query_embedding", () -> memories.searchConversations(SearchConversationsRequest.newBuilder()
        .setCustomerId(customer).build()));
  }

  /** Waits (at most 60 s, polling) until the conversation's summary embedding is {@code state}. */
  static Conversation awaitSummary(ConversationServiceGrpc.ConversationServiceBlockingStub conversations, String id,
      EmbeddingState state, String model) throws InterruptedException {
    long until = System.nanoTime() + 60_000_000_000L;
    Conversation c;
    do {
      c = conversations.getConversation(GetConversationRequest.newBuilder().setConversationId(id).build())
          .getConversation();
      if (c.getSummaryEmbeddingState() == state && (model == null || model.equals(c.getSummaryEmbeddingModel()))) {
        return c;
      }
      Thread.sleep(50);
    } while (System.nanoTime() < until);
    throw new AssertionError("conversation " + id + " summary still " + c.getSummaryEmbeddingState() + " of "
        + c.getSummaryEmbeddingModel() + ", expected " + state + " of " + model);
  }

  static Conversation writeSummary(ConversationServiceGrpc.ConversationServiceBlockingStub conversations,
      Conversation c, String summary) {
    return conversations.updateConversation(UpdateConversationRequest.newBuilder()
        .setConversation(c.toBuilder().setSummary(summary))
        .setUpdateMask(FieldMask.newBuilder().addPaths("summary")).build()).getConversation();
  }

  @Test
  void aSummaryWrittenWithoutAVectorIsQueuedEmbeddedAndFoundByQueryTextAlone() throws Exception {
    String customer = newCustomer(customers);
    Conversation c = conversations.getOrCreateOpenConversation(GetOrCreateOpenConversationRequest.newBuilder()
        .setCustomerId(customer).setChannel(Channel.CHANNEL_WEB).setThreadKey("s-" + customer).build()).getConversation();
    assertEquals(EmbeddingState.EMBEDDING_STATE_NONE, c.getSummaryEmbeddingState());
    Conversation written = writeSummary(conversations, c, "Wants a refund for a blender that arrived broken.");
    // Stored at once; the model is not in the write path.
    assertTrue(written.getSummaryEmbeddingState() == EmbeddingState.EMBEDDING_STATE_PENDING
        || written.getSummaryEmbeddingState() == EmbeddingState.EMBEDDING_STATE_READY,
        written.getSummaryEmbeddingState().toString());
    assertEquals("Wants a refund for a blender that arrived broken.", written.getSummary());
    Conversation ready = awaitSummary(conversations, c.getId(), EmbeddingState.EMBEDDING_STATE_READY, MODEL);
    assertTrue(ready.getHasSummaryEmbedding());
    assertEquals(384, conversations.getConversation(GetConversationRequest.newBuilder().setConversationId(c.getId())
        .setIncludeSummaryEmbedding(true).build()).getConversation().getSummaryEmbeddingCount());
    SearchConversationsResponse r = memories.searchConversations(SearchConversationsRequest.newBuilder()
        .setCustomerId(customer).setQueryText("kitchen appliance damaged in delivery, money back").build());
    assertEquals(c.getId(), r.getHits(0).getConversation().getId());
    assertEquals(EmbeddingState.EMBEDDING_STATE_READY, r.getHits(0).getConversation().getSummaryEmbeddingState());

    // A new summary is queued again; the worker's vector is of the new text.
    writeSummary(conversations, c, "Booked a table for eight people on Friday evening.");
    awaitSummary(conversations, c.getId(), EmbeddingState.EMBEDDING_STATE_READY, MODEL);
    SearchConversationsResponse dinner = memories.searchConversations(SearchConversationsRequest.newBuilder()
        .setCustomerId(customer).setQueryText("restaurant reservation for a group").build());
    assertEquals(c.getId(), dinner.getHits(0).getConversation().getId());
    assertTrue(dinner.getHits(0).getScore() > 0.3, "score " + dinner.getHits(0).getScore());

    // An empty summary has nothing to embed: the vector goes, and searches no longer find it.
    Conversation cleared = conversations.updateConversation(UpdateConversationRequest.newBuilder()
        .setConversation(c.toBuilder().setSummary("")).setUpdateMask(FieldMask.newBuilder().addPaths("summary"))
        .build()).getConversation();
    assertEquals(EmbeddingState.EMBEDDING_STATE_NONE, cleared.getSummaryEmbeddingState());
    assertFalse(cleared.getHasSummaryEmbedding());
    assertEquals("", cleared.getSummaryEmbeddingModel());
    assertEquals(0, memories.searchConversations(SearchConversationsRequest.newBuilder().setCustomerId(customer)
        .setQueryText("restaurant reservation for a group").build()).getHitsCount());
  }

  @Test
  void withoutAnEmbedderQueryTextAloneIsATextSearchAndVectorsStayTheClientsJob() {
    TestServer none = TestServer.shared(); // EMBEDDER unset: none
    var mem = MemoryServiceGrpc.newBlockingStub(none.channel());
    String customer = newCustomer(CustomerServiceGrpc.newBlockingStub(none.channel()));
    Memory m = create(mem, customer, "Keeps a parrot called Kiwi.");
    assertEquals(EmbeddingState.EMBEDDING_STATE_NONE, m.getEmbeddingState());
    assertFalse(m.getHasEmbedding());
    assertEquals(MemorySearchMode.MEMORY_SEARCH_MODE_TEXT, mem.searchMemories(SearchMemoriesRequest.newBuilder()
        .setCustomerId(customer).setQueryText("parrot").build()).getMode());
    assertInvalid("query_embedding", () -> mem.searchMemories(SearchMemoriesRequest.newBuilder()
        .setCustomerId(customer).setMode(MemorySearchMode.MEMORY_SEARCH_MODE_HYBRID).setQueryText("parrot").build()));
    assertInvalid("query_text", () -> mem.searchConversations(SearchConversationsRequest.newBuilder()
        .setQueryText("parrot").build()));
    assertInvalid("query_embedding", () -> mem.searchConversations(SearchConversationsRequest.newBuilder().build()));
    // A summary without a vector is not queued: nothing would embed it.
    var conv = ConversationServiceGrpc.newBlockingStub(none.channel());
    Conversation c = conv.getOrCreateOpenConversation(GetOrCreateOpenConversationRequest.newBuilder()
        .setCustomerId(customer).setChannel(Channel.CHANNEL_SMS).setThreadKey("n-" + customer).build()).getConversation();
    assertEquals(EmbeddingState.EMBEDDING_STATE_NONE, writeSummary(conv, c, "Asked about opening hours.")
        .getSummaryEmbeddingState());
  }
}

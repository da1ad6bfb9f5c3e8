package dev.contextmemory.server;

import static dev.contextmemory.server.ServerEmbeddingTest.await;
import static dev.contextmemory.server.ServerEmbeddingTest.create;
import static dev.contextmemory.server.ServerEmbeddingTest.newCustomer;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.contextmemory.server.testing.FakeEmbeddingEndpoint;
import dev.contextmemory.server.testing.FakeEmbeddingEndpoint.Failure;
import dev.contextmemory.server.testing.TestDatabase;
import dev.contextmemory.server.testing.TestServer;
import dev.contextmemory.v1.*;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * A deployment changing its embedding model, and its dimension, on one database without downtime:
 * client vectors (768, model 'client') → the local model (384) → an openai-compatible model (768).
 * Each new server re-embeds the other models' rows (memories and conversation summaries) in the
 * background, and gives rows that FAILED under another model another chance; searches read only the
 * active model's; a row not (yet) re-embedded is found by text.
 */
class EmbeddingModelChangeTest {
  private static List<Float> unit(int dim, int axis) {
    List<Float> v = new ArrayList<>(dim);
    for (int i = 0; i < dim; i++) {
      v.add(i == axis ? 1f : 0.01f);
    }
    return v;
  }

  private static void sql(String url, String statement) throws Exception {
    try (Connection c = DriverManager.getConnection(url)) {
      c.createStatement().execute(statement);
    }
  }

  private static Map<String, Integer> indexesByModel(String url) throws Exception {
    Map<String, Integer> out = new HashMap<>();
    try (Connection c = DriverManager.getConnection(url);
        ResultSet rs = c.createStatement().executeQuery("SELECT indexdef FROM pg_indexes WHERE tablename = 'memories'"
            + " AND indexname LIKE 'memories_embedding_%_idx' AND indexname <> 'memories_embedding_queue_idx'")) {
      while (rs.next()) {
        String def = rs.getString(1);
        out.merge(def.replaceAll(".*embedding_model = '([^']+)'.*", "$1"), 1, Integer::sum);
      }
    }
    return out;
  }

  @Test
  void clientVectorsToTheLocalModelToA768DimensionalEndpoint() throws Exception {
    String url = TestDatabase.create();
    List<String> ids = new ArrayList<>();
    String customer;
    String stuck;
    String failedBefore;
    String clientSummary;
    String textSummary;
    // 1. No embedder: callers bring 768-dimensional vectors (model 'client').
    try (TestServer a = TestServer.startOn(url, Map.of())) {
      var mem = MemoryServiceGrpc.newBlockingStub(a.channel());
      customer = newCustomer(CustomerServiceGrpc.newBlockingStub(a.channel()));
      String[] facts = {"Has a golden retriever named Max.", "Prefers email; never call before noon.",
          "Drives a red Mini Cooper.", "Allergic to peanuts."};
      for (int i = 0; i < facts.length; i++) {
        Memory m = mem.createMemory(CreateMemoryRequest.newBuilder().setCustomerId(customer).setMemory(Memory.newBuilder()
            .setKind(MemoryKind.MEMORY_KIND_FACT).setContent(facts[i]).addAllEmbedding(unit(768, i))).build()).getMemory();
        assertEquals("client", m.getEmbeddingModel());
        ids.add(m.getId());
      }
      stuck = create(mem, customer, "Keeps a pool table in the attic.").getId();
      failedBefore = create(mem, customer, "Collects vintage fountain pens.").getId();
      // Summaries: one with a client vector, one without (nothing embeds it on this deployment).
      var conv = ConversationServiceGrpc.newBlockingStub(a.channel());
      Conversation withVector = conv.getOrCreateOpenConversation(GetOrCreateOpenConversationRequest.newBuilder()
          .setCustomerId(customer).setChannel(Channel.CHANNEL_SMS).setThreadKey("a").build()).getConversation();
      withVector = conv.updateConversation(UpdateConversationRequest.newBuilder().setConversation(withVector.toBuilder()
              .setSummary("Wants to repaint the fence green.").addAllSummaryEmbedding(unit(768, 5)))
          .setUpdateMask(com.google.protobuf.FieldMask.newBuilder().addPaths("summary").addPaths("summary_embedding"))
          .build()).getConversation();
      assertEquals(EmbeddingState.EMBEDDING_STATE_READY, withVector.getSummaryEmbeddingState());
      assertEquals("client", withVector.getSummaryEmbeddingModel());
      clientSummary = withVector.getId();
      Conversation textOnly = conv.getOrCreateOpenConversation(GetOrCreateOpenConversationRequest.newBuilder()
          .setCustomerId(customer).setChannel(Channel.CHANNEL_WEB).setThreadKey("b").build()).getConversation();
      textOnly = ServerEmbeddingTest.writeSummary(conv, textOnly, "Asked how to return a pair of hiking boots.");
      assertEquals(EmbeddingState.EMBEDDING_STATE_NONE, textOnly.getSummaryEmbeddingState());
      textSummary = textOnly.getId();
      assertEquals(EmbeddingState.EMBEDDING_STATE_NONE, mem.getMemory(GetMemoryRequest.newBuilder().setMemoryId(stuck)
          .build()).getMemory().getEmbeddingState());
    }
    // One memory the next embedder will not get to: it FAILED under that very model, and a row
    // failed under the active model stays FAILED (until its content is written again)...
    sql(url, "UPDATE memories SET embedding_state = 'failed', embedding_failed_model = '" + ServerEmbeddingTest.MODEL
        + "' WHERE id = '" + ids.get(3) + "'");
    // ...and one that failed under the old model, which the change gives another chance.
    sql(url, "UPDATE memories SET embedding_state = 'failed', embedding_failed_model = 'client' WHERE id = '"
        + failedBefore + "'");

    // 2. The local model (384): everything else is re-embedded in the background.
    try (TestServer b = TestServer.startOn(url, Map.of("EMBEDDER", "local"))) {
      var mem = MemoryServiceGrpc.newBlockingStub(b.channel());
      for (String id : List.of(ids.get(0), ids.get(1), ids.get(2), stuck, failedBefore)) {
        Memory m = await(mem, id, EmbeddingState.EMBEDDING_STATE_READY, ServerEmbeddingTest.MODEL);
        assertTrue(m.getHasEmbedding());
      }
      var conv = ConversationServiceGrpc.newBlockingStub(b.channel());
      for (String id : List.of(clientSummary, textSummary)) {
        ServerEmbeddingTest.awaitSummary(conv, id, EmbeddingState.EMBEDDING_STATE_READY, ServerEmbeddingTest.MODEL);
      }
      assertEquals(textSummary, mem.searchConversations(SearchConversationsRequest.newBuilder().setCustomerId(customer)
          .setQueryText("sending shoes back").build()).getHits(0).getConversation().getId());
      SearchMemoriesResponse r = mem.searchMemories(SearchMemoriesRequest.newBuilder().setCustomerId(customer)
          .setQueryText("do they have a dog").build());
      assertEquals(ids.get(0), r.getHits(0).getMemory().getId());
      // The memory still holding a 'client' vector is outside the local model's space: found by its
      // words only, never by a vector of another space.
      SearchMemoriesResponse peanuts = mem.searchMemories(SearchMemoriesRequest.newBuilder().setCustomerId(customer)
          .setQueryText("peanuts").build());
      MemorySearchHit hit = peanuts.getHitsList().stream().filter(h -> h.getMemory().getId().equals(ids.get(3)))
          .findFirst().orElseThrow();
      assertEquals(0, hit.getVectorRank());
      assertEquals(1, hit.getTextRank());
      assertEquals("client", hit.getMemory().getEmbeddingModel());
      assertEquals(EmbeddingState.EMBEDDING_STATE_FAILED, hit.getMemory().getEmbeddingState());
      long until = System.nanoTime() + 60_000_000_000L;
      while (!indexesByModel(url).containsKey(ServerEmbeddingTest.MODEL) && System.nanoTime() < until) {
        Thread.sleep(100);
      }
      assertEquals(1, indexesByModel(url).get(ServerEmbeddingTest.MODEL), indexesByModel(url)::toString);
    }

    // 3. Back to 768 dimensions, from an OpenAI-compatible endpoint.
    try (FakeEmbeddingEndpoint endpoint = new FakeEmbeddingEndpoint(768);
        TestServer c = TestServer.startOn(url, Map.of("EMBEDDER", "openai-compatible", "EMBEDDING_URL", endpoint.url(),
            "EMBEDDING_MODEL", "bag-of-words-768", "EMBEDDING_DIMENSION", "768"))) {
      var mem = MemoryServiceGrpc.newBlockingStub(c.channel());
      // The memory that FAILED under the local model gets another chance under this one.
      for (String id : List.of(ids.get(0), ids.get(1), ids.get(2), ids.get(3), stuck)) {
        await(mem, id, EmbeddingState.EMBEDDING_STATE_READY, "bag-of-words-768");
        assertEquals(768, mem.getMemory(GetMemoryRequest.newBuilder().setMemoryId(id).setIncludeEmbedding(true).build())
            .getMemory().getEmbeddingCount());
      }
      SearchMemoriesResponse r = mem.searchMemories(SearchMemoriesRequest.newBuilder().setCustomerId(customer)
          .setMode(MemorySearchMode.MEMORY_SEARCH_MODE_VECTOR).setQueryText("mini cooper").build());
      assertEquals(ids.get(2), r.getHits(0).getMemory().getId());
      ServerEmbeddingTest.awaitSummary(ConversationServiceGrpc.newBlockingStub(c.channel()), textSummary,
          EmbeddingState.EMBEDDING_STATE_READY, "bag-of-words-768");
    }
  }

  @Test
  void anEndpointThatKeepsFailingLeavesTheMemoryFailedAndFoundByText() throws Exception {
    try (FakeEmbeddingEndpoint endpoint = new FakeEmbeddingEndpoint(16).failAlways(new Failure(503, null, 0));
        TestServer s = TestServer.start(Map.of("EMBEDDER", "openai-compatible", "EMBEDDING_URL", endpoint.url(),
            "EMBEDDING_MODEL", "flaky", "EMBEDDING_DIMENSION", "16", "EMBEDDING_MAX_RETRIES", "0",
            "EMBEDDING_MAX_ATTEMPTS", "2"))) {
      var mem = MemoryServiceGrpc.newBlockingStub(s.channel());
      String customer = newCustomer(CustomerServiceGrpc.newBlockingStub(s.channel()));
      Memory m = create(mem, customer, "Has solar panels on the roof.");
      await(mem, m.getId(), EmbeddingState.EMBEDDING_STATE_FAILED);
      assertEquals(2, endpoint.seen().size(), "two attempts, each one request (no retries within an attempt)");
      assertEquals(m.getId(), mem.searchMemories(SearchMemoriesRequest.newBuilder().setCustomerId(customer)
          .setMode(MemorySearchMode.MEMORY_SEARCH_MODE_TEXT).setQueryText("solar").build()).getHits(0).getMemory().getId());
      // A query text the endpoint cannot embed: UNAVAILABLE, retryable, for the search that needs it.
      dev.contextmemory.server.testing.GrpcErrors.assertError(io.grpc.Status.Code.UNAVAILABLE, "EMBEDDER_UNAVAILABLE",
          () -> mem.searchMemories(SearchMemoriesRequest.newBuilder().setCustomerId(customer).setQueryText("solar")
              .build()));
      // FetchContext ranks by text alone instead of failing.
      assertEquals(m.getId(), mem.fetchContext(FetchContextRequest.newBuilder().setCustomerId(customer)
          .setQueryText("solar").build()).getMemories(0).getMemory().getId());
      // A summary goes the same way: stored, queued, FAILED after the attempts; the summary is kept.
      var conv = ConversationServiceGrpc.newBlockingStub(s.channel());
      Conversation c = conv.getOrCreateOpenConversation(GetOrCreateOpenConversationRequest.newBuilder()
          .setCustomerId(customer).setChannel(Channel.CHANNEL_SMS).setThreadKey("f").build()).getConversation();
      ServerEmbeddingTest.writeSummary(conv, c, "Asked about battery storage.");
      Conversation failed = ServerEmbeddingTest.awaitSummary(conv, c.getId(), EmbeddingState.EMBEDDING_STATE_FAILED,
          null);
      assertEquals("Asked about battery storage.", failed.getSummary());
      assertEquals(false, failed.getHasSummaryEmbedding());
    }
  }
}

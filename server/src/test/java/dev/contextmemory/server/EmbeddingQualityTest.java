package dev.contextmemory.server;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.contextmemory.server.embedding.QualitySet;
import dev.contextmemory.server.testing.TestServer;
import dev.contextmemory.v1.*;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Recall@5 on the labelled set (src/test/resources/quality: 208 facts of 8 customers, 128 queries
 * phrased unlike their fact), through the real API with the local model: the facts are written
 * as text only and embedded by the worker; each query searches its customer's 26 facts by text,
 * by vector (query_text embedded by the server) and hybrid. Floors sit just under what was
 * measured (docs/search.md "Quality"), so a change that loses recall fails here.
 */
class EmbeddingQualityTest {
  /**
   * Measured: text 0.039, vector 0.844, hybrid 0.844 (all-minilm-l6-v2-q). Text search ANDs the
   * query's words, and the queries are phrased on purpose without their fact's words.
   */
  static final double TEXT_FLOOR = 0.03;
  static final double VECTOR_FLOOR = 0.82;
  static final double HYBRID_FLOOR = 0.82;

  private static TestServer server;
  private static MemoryServiceGrpc.MemoryServiceBlockingStub memories;
  private static final Map<String, String> customerIds = new HashMap<>();
  private static final Map<String, String> factIds = new HashMap<>(); // memory id -> fact id

  @BeforeAll
  static void load() throws Exception {
    server = TestServer.start(Map.of("EMBEDDER", "local"));
    var customers = CustomerServiceGrpc.newBlockingStub(server.channel());
    memories = MemoryServiceGrpc.newBlockingStub(server.channel());
    for (QualitySet.Fact f : QualitySet.facts()) {
      String customer = customerIds.computeIfAbsent(f.customer(), name -> customers.createCustomer(
          CreateCustomerRequest.newBuilder().setCustomer(Customer.newBuilder().setDisplayName(name)
              .setExternalRef("quality-" + name)).build()).getCustomer().getId());
      Memory m = memories.createMemory(CreateMemoryRequest.newBuilder().setCustomerId(customer)
          .setMemory(Memory.newBuilder().setKind(MemoryKind.MEMORY_KIND_FACT).setContent(f.content())).build()).getMemory();
      factIds.put(m.getId(), f.id());
    }
    for (String id : factIds.keySet()) {
      ServerEmbeddingTest.await(memories, id, EmbeddingState.EMBEDDING_STATE_READY);
    }
  }

  @AfterAll
  static void stop() {
    server.close();
  }

  private static double recallAt5(MemorySearchMode mode) {
    List<QualitySet.Query> queries = QualitySet.queries();
    int found = 0;
    for (QualitySet.Query q : queries) {
      SearchMemoriesResponse r = memories.searchMemories(SearchMemoriesRequest.newBuilder()
          .setCustomerId(customerIds.get(q.customer())).setMode(mode).setQueryText(q.text()).setTopK(5).build());
      if (r.getHitsList().stream().anyMatch(h -> q.factId().equals(factIds.get(h.getMemory().getId())))) {
        found++;
      }
    }
    return (double) found / queries.size();
  }

  @Test
  void recallAt5OfTextVectorAndHybridSearch() {
    double text = recallAt5(MemorySearchMode.MEMORY_SEARCH_MODE_TEXT);
    double vector = recallAt5(MemorySearchMode.MEMORY_SEARCH_MODE_VECTOR);
    double hybrid = recallAt5(MemorySearchMode.MEMORY_SEARCH_MODE_HYBRID);
    System.out.printf("QUALITY recall@5 over %d queries: text %.3f, vector %.3f, hybrid %.3f%n",
        QualitySet.queries().size(), text, vector, hybrid);
    assertTrue(text >= TEXT_FLOOR, "text recall@5 " + text);
    assertTrue(vector >= VECTOR_FLOOR, "vector recall@5 " + vector);
    assertTrue(hybrid >= HYBRID_FLOOR, "hybrid recall@5 " + hybrid);
  }
}

package dev.contextmemory.server.embedding;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Not part of the build (no *Test suffix): the numbers behind the choice of the local model and
 * of its thread cap. Embedding throughput one text at a time (and the p50 of one text: a text
 * query's embedding) and in batches of 32, and in-memory recall@5 (cosine, within the customer's
 * 26 facts) on the labelled set, for each bundled model on langchain4j's own session and executor
 * ("default") and for the int8 model on the server's session with 1 and 2 threads
 * (CONTEXT_MEMORY_EMBEDDING_THREADS). Run with
 * {@code scripts/test -pl server -am -Dtest=LocalModelMeasurement -Dsurefire.failIfNoSpecifiedTests=false}.
 */
class LocalModelMeasurement {
  @Test
  void measure() {
    List<QualitySet.Fact> facts = QualitySet.facts();
    List<String> texts = facts.stream().map(QualitySet.Fact::content).toList();
    List<String> variants = List.of("all-minilm-l6-v2-q threads=1", "all-minilm-l6-v2-q threads=2",
        "all-minilm-l6-v2-q default", "all-minilm-l6-v2 default");
    Map<String, LocalEmbedder> embedders = new java.util.LinkedHashMap<>();
    Map<String, Double> loadMs = new HashMap<>();
    for (String variant : variants) {
      String model = variant.substring(0, variant.indexOf(' '));
      long loadStart = System.nanoTime();
      LocalEmbedder e = variant.endsWith("threads=1") ? new LocalEmbedder(model, 1)
          : variant.endsWith("threads=2") ? new LocalEmbedder(model, 2)
          : new LocalEmbedder(model, model.endsWith("-q")
              ? new dev.langchain4j.model.embedding.onnx.allminilml6v2q.AllMiniLmL6V2QuantizedEmbeddingModel()
              : new dev.langchain4j.model.embedding.onnx.allminilml6v2.AllMiniLmL6V2EmbeddingModel());
      e.embed(List.of("warm up"));
      loadMs.put(variant, (System.nanoTime() - loadStart) / 1e6);
      e.embed(texts); // warm-up round
      embedders.put(variant, e);
    }
    // Interleaved: each round measures every variant in turn, so a change of the machine's load
    // (other builds on the same 2 cores) hits all of them alike; the best round of each is kept.
    Map<String, Double> single = new HashMap<>();
    Map<String, Double> batched = new HashMap<>();
    Map<String, List<Double>> oneMs = new HashMap<>();
    for (int round = 0; round < 3; round++) {
      for (var entry : embedders.entrySet()) {
        LocalEmbedder e = entry.getValue();
        long t0 = System.nanoTime();
        for (String t : texts) {
          long t2 = System.nanoTime();
          e.embed(List.of(t));
          oneMs.computeIfAbsent(entry.getKey(), k -> new ArrayList<>()).add((System.nanoTime() - t2) / 1e6);
        }
        single.merge(entry.getKey(), texts.size() / ((System.nanoTime() - t0) / 1e9), Math::max);
        long t1 = System.nanoTime();
        for (int i = 0; i < texts.size(); i += 32) {
          e.embed(texts.subList(i, Math.min(texts.size(), i + 32)));
        }
        batched.merge(entry.getKey(), texts.size() / ((System.nanoTime() - t1) / 1e9), Math::max);
      }
    }
    for (var entry : embedders.entrySet()) {
      LocalEmbedder e = entry.getValue();
      String variant = entry.getKey();
      Map<String, float[]> vectors = new HashMap<>();
      List<float[]> all = e.embed(texts);
      for (int i = 0; i < facts.size(); i++) {
        vectors.put(facts.get(i).id(), all.get(i));
      }
      int found = 0;
      List<QualitySet.Query> queries = QualitySet.queries();
      for (QualitySet.Query q : queries) {
        float[] qv = e.embed(List.of(q.text())).get(0);
        List<QualitySet.Fact> mine = new ArrayList<>(facts.stream().filter(f -> f.customer().equals(q.customer())).toList());
        mine.sort((a, b) -> Double.compare(cos(qv, vectors.get(b.id())), cos(qv, vectors.get(a.id()))));
        if (mine.subList(0, 5).stream().anyMatch(f -> f.id().equals(q.factId()))) {
          found++;
        }
      }
      List<Double> ms = oneMs.get(variant);
      ms.sort(null);
      System.out.printf("MEASURE %s load+first=%.0f ms single=%.1f/s (one text p50 %.1f ms, p99 %.1f ms)"
              + " batched32=%.1f/s recall@5=%.3f (%d/%d), cores=%d%n",
          variant, loadMs.get(variant), single.get(variant), ms.get(ms.size() / 2), ms.get((int) (ms.size() * 0.99)),
          batched.get(variant), (double) found / queries.size(), found, queries.size(),
          Runtime.getRuntime().availableProcessors());
    }
  }

  private static double cos(float[] a, float[] b) {
    double dot = 0, na = 0, nb = 0;
    for (int i = 0; i < a.length; i++) {
      dot += a[i] * b[i];
      na += a[i] * a[i];
      nb += b[i] * b[i];
    }
    return dot / Math.sqrt(na * nb);
  }
}

package dev.contextmemory.server.embedding;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Not part of the build (no *Test suffix): the numbers behind the choice of the local model.
 * Embedding throughput one text at a time and in batches of 32, and in-memory recall@5 (cosine,
 * within the customer's 26 facts) on the labelled set, for each bundled model. Run with
 * {@code scripts/test -pl server -am -Dtest=LocalModelMeasurement -Dsurefire.failIfNoSpecifiedTests=false}.
 */
class LocalModelMeasurement {
  @Test
  void measure() {
    List<QualitySet.Fact> facts = QualitySet.facts();
    List<String> texts = facts.stream().map(QualitySet.Fact::content).toList();
    for (String model : List.of("all-minilm-l6-v2-q", "all-minilm-l6-v2")) {
      long loadStart = System.nanoTime();
      LocalEmbedder e = model.endsWith("-q") ? new LocalEmbedder(model)
          : new LocalEmbedder(model, new dev.langchain4j.model.embedding.onnx.allminilml6v2.AllMiniLmL6V2EmbeddingModel());
      e.embed(List.of("warm up"));
      double loadMs = (System.nanoTime() - loadStart) / 1e6;
      e.embed(texts); // warm-up round
      double single = 0;
      double batched = 0;
      for (int round = 0; round < 3; round++) {
        long t0 = System.nanoTime();
        for (String t : texts) {
          e.embed(List.of(t));
        }
        single = Math.max(single, texts.size() / ((System.nanoTime() - t0) / 1e9));
        long t1 = System.nanoTime();
        for (int i = 0; i < texts.size(); i += 32) {
          e.embed(texts.subList(i, Math.min(texts.size(), i + 32)));
        }
        batched = Math.max(batched, texts.size() / ((System.nanoTime() - t1) / 1e9));
      }
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
      System.out.printf("MEASURE model=%s load+first=%.0f ms single=%.1f/s batched32=%.1f/s recall@5=%.3f (%d/%d), cores=%d%n",
          model, loadMs, single, batched, (double) found / queries.size(), found, queries.size(),
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

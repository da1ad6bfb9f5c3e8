package dev.contextmemory.server.embedding;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;

import dev.contextmemory.server.config.EmbeddingSettings;
import org.junit.jupiter.api.Test;

/** The background worker's embedder never takes every core the query path may use. */
class EmbeddersTest {
  private static EmbeddingSettings settings(String... pairs) {
    return EmbeddingSettingsTest.settings(pairs).embedding();
  }

  @Test
  void theLocalModelsWorkerHasOneThreadFewerThanTheQueryPath() {
    EmbeddingSettings s = settings("EMBEDDER", "local", "EMBEDDING_THREADS", "2");
    Embedder queries = Embedders.create(s);
    Embedder worker = Embedders.forWorker(s, queries);
    assertNotSame(queries, worker);
    assertEquals(2, ((LocalEmbedder) queries).threads());
    assertEquals(1, ((LocalEmbedder) worker).threads());
    // Same model, same space: the worker's vectors are the query path's.
    assertEquals(queries.model(), worker.model());
    float[] a = queries.embed(java.util.List.of("lives at 12 Elm Street")).get(0);
    float[] b = worker.embed(java.util.List.of("lives at 12 Elm Street")).get(0);
    for (int i = 0; i < a.length; i++) {
      assertEquals(a[i], b[i], 1e-4, "dimension " + i);
    }
  }

  @Test
  void oneThreadIsSharedAndOtherEmbeddersAreTheSameInstance() {
    EmbeddingSettings one = settings("EMBEDDER", "local", "EMBEDDING_THREADS", "1");
    Embedder single = Embedders.create(one);
    assertSame(single, Embedders.forWorker(one, single));
    EmbeddingSettings remote = settings("EMBEDDER", "openai-compatible", "EMBEDDING_URL", "http://127.0.0.1:9/v1",
        "EMBEDDING_MODEL", "m", "EMBEDDING_DIMENSION", "8");
    Embedder http = Embedders.create(remote);
    assertSame(http, Embedders.forWorker(remote, http));
    assertNull(Embedders.forWorker(settings(), Embedders.create(settings())));
  }
}

package dev.contextmemory.server.embedding;

import com.github.benmanes.caffeine.cache.Cache;
import com.github.benmanes.caffeine.cache.Caffeine;
import java.util.List;

/**
 * Embeds search query texts for SearchMemories, SearchConversations and FetchContext, keeping the
 * vectors of the most recently used texts (agents repeat their queries: "what does the customer
 * prefer"). Bounded by EMBEDDING_QUERY_CACHE_SIZE entries of one vector each (384 floats, 1.5 KiB,
 * for the local model); 0 turns the cache off.
 */
public final class QueryEmbeddings {
  private final Embedder embedder;
  private final Cache<String, float[]> cache;

  public QueryEmbeddings(Embedder embedder, int cacheSize) {
    this.embedder = embedder;
    this.cache = Caffeine.newBuilder().maximumSize(cacheSize).build();
  }

  /** The query's vector in the active model's space (the cached one when the text was seen lately). */
  public float[] embed(String text) {
    // Not computeIfAbsent: a slow endpoint must not block other threads on the cache's bin lock.
    float[] v = cache.getIfPresent(text);
    if (v == null) {
      v = embedder.embed(List.of(text)).get(0);
      cache.put(text, v);
    }
    return v;
  }

  public String model() {
    return embedder.model();
  }
}

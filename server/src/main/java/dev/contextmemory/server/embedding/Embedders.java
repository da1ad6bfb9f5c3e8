package dev.contextmemory.server.embedding;

import dev.contextmemory.server.config.EmbeddingSettings;

/** The deployment's embedder from its settings; null for {@code none}. */
public final class Embedders {
  private Embedders() {}

  public static Embedder create(EmbeddingSettings s) {
    return switch (s.embedder()) {
      case EmbeddingSettings.LOCAL -> new LocalEmbedder(s.model(), s.threads());
      case EmbeddingSettings.OPENAI -> new OpenAiCompatibleEmbedder(s);
      default -> null;
    };
  }

  /**
   * The embedder of the background worker: for the local model, a session with one thread fewer
   * than the query path's (at least one), so that the worker never holds every core while text-only
   * writes and searches wait for one. On 2 cores, text-only CreateMemory at 50/s beside a worker on
   * both cores had a p99 14 % above the embedder off (3,000 calls each, pooled); the worker's
   * latency barely matters (write to searchable: p99 48 to 51 ms against a 1 s target). Other embedders
   * do their work elsewhere: {@code shared} itself.
   */
  public static Embedder forWorker(EmbeddingSettings s, Embedder shared) {
    return shared != null && s.embedder().equals(EmbeddingSettings.LOCAL) && s.threads() > 1
        ? new LocalEmbedder(s.model(), s.threads() - 1)
        : shared;
  }
}

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
}

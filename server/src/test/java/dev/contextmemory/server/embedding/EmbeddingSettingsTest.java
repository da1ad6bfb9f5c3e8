package dev.contextmemory.server.embedding;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.contextmemory.server.config.EmbeddingSettings;
import dev.contextmemory.server.config.Settings;
import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The embedder settings are checked at start-up; a bad one names its variable (Main exits 2). */
class EmbeddingSettingsTest {
  /** Settings from CONTEXT_MEMORY_* name/value pairs (the prefix added), with a database URL. */
  static Settings settings(String... pairs) {
    Map<String, String> env = new HashMap<>();
    env.put("CONTEXT_MEMORY_DB_URL", "jdbc:postgresql://localhost/x");
    for (int i = 0; i < pairs.length; i += 2) {
      env.put("CONTEXT_MEMORY_" + pairs[i], pairs[i + 1]);
    }
    return Settings.from(env);
  }

  private static void refused(String variable, String... pairs) {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> settings(pairs));
    assertTrue(e.getMessage().startsWith("CONTEXT_MEMORY_" + variable), e.getMessage());
  }

  @Test
  void defaults() {
    EmbeddingSettings none = settings().embedding();
    assertEquals("none", none.embedder());
    assertEquals("client", none.model());
    assertEquals(768, none.dimension());
    assertFalse(none.serverEmbeds());
    EmbeddingSettings local = settings("EMBEDDER", "local").embedding();
    assertEquals("all-minilm-l6-v2-q", local.model());
    assertEquals(384, local.dimension());
    assertEquals(384, settings("EMBEDDER", "local").embeddingDimension());
    assertEquals("all-minilm-l6-v2-q", local.clientModel());
  }

  @Test
  void badValuesNameTheirVariable() {
    refused("EMBEDDER", "EMBEDDER", "bert");
    refused("EMBEDDING_MODEL", "EMBEDDER", "local", "EMBEDDING_MODEL", "all-mpnet-base-v2");
    refused("EMBEDDING_DIMENSION", "EMBEDDER", "local", "EMBEDDING_DIMENSION", "768");
    refused("EMBEDDING_MODEL", "EMBEDDER", "openai-compatible", "EMBEDDING_URL", "http://localhost:1/v1");
    refused("EMBEDDING_URL", "EMBEDDER", "openai-compatible", "EMBEDDING_MODEL", "m");
    refused("EMBEDDING_URL", "EMBEDDER", "openai-compatible", "EMBEDDING_MODEL", "m", "EMBEDDING_URL", "ftp://x/v1");
    refused("EMBEDDING_MODEL", "EMBEDDING_MODEL", "it's'; DROP TABLE memories");
    refused("CLIENT_EMBEDDING_MODEL", "CLIENT_EMBEDDING_MODEL", "a b");
    refused("EMBEDDING_BATCH_SIZE", "EMBEDDING_BATCH_SIZE", "0");
    refused("EMBEDDING_DIMENSION", "EMBEDDING_DIMENSION", "4096");
  }

  @Test
  void theApiKeyIsNeverPrinted() {
    Settings s = settings("EMBEDDER", "openai-compatible", "EMBEDDING_MODEL", "text-embedding-3-small",
        "EMBEDDING_URL", "https://user:pw@api.example.com/v1?x=1", "EMBEDDING_API_KEY", "sk-very-secret");
    assertFalse(s.toString().contains("sk-very-secret"), s.toString());
    assertFalse(s.toString().contains("pw"), s.toString());
    assertTrue(s.toString().contains("apiKey=***"), s.toString());
  }
}

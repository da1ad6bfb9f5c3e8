package dev.contextmemory.server.config;

import java.net.URI;
import java.time.Duration;
import java.util.List;
import java.util.Locale;
import java.util.regex.Pattern;

/**
 * Who makes embeddings in this deployment (docs/search.md "Embedders"): {@code local} (a model
 * in-process), {@code openai-compatible} (an HTTP /v1/embeddings endpoint) or {@code none} (callers
 * bring vectors). The active model's name and dimension define the one vector space searches use;
 * rows of any other model are re-embedded in the background or, with {@code none}, ignored by
 * vector search.
 *
 * @param embedder local, openai-compatible or none
 * @param model the name stored with every embedding (and inlined into the partial index's predicate,
 *     hence the restricted alphabet)
 * @param dimension the active model's vector length
 * @param clientModel the model a client vector is assumed to come from when its request names none
 * @param url openai-compatible only: the endpoint's base URL (…/v1) or the full …/embeddings URL
 * @param apiKey openai-compatible only: sent as a bearer token; empty sends none
 * @param timeout openai-compatible only: per HTTP request
 * @param maxRetries openai-compatible only: retries of one batch within one worker attempt
 * @param batchSize texts per embedder call (and rows the worker claims at a time)
 * @param maxAttempts worker attempts before a row is marked FAILED
 * @param pollInterval how often an idle worker looks for queued rows (a local write wakes it at once)
 * @param queryCacheSize query texts whose embeddings are kept (Caffeine, least recently used out)
 * @param threads local only: onnxruntime threads of a query text's inference (they do not spin;
 *     LocalEmbedder says why; default 2, or 1 on one core); the background worker's session has one
 *     fewer, at least one, for an inference and for the texts of a batch embedded at once
 *     (Embedders.forWorker)
 */
public record EmbeddingSettings(String embedder, String model, int dimension, String clientModel, URI url,
    String apiKey, Duration timeout, int maxRetries, int batchSize, int maxAttempts, Duration pollInterval,
    int queryCacheSize, int threads) {

  public static final String LOCAL = "local";
  public static final String OPENAI = "openai-compatible";
  public static final String NONE = "none";
  /** The local model: langchain4j's bundled ONNX all-MiniLM-L6-v2, int8-quantized, 384 dimensions. */
  public static final List<String> LOCAL_MODELS = List.of("all-minilm-l6-v2-q");
  public static final int LOCAL_DIMENSION = 384;
  /** The model name of vectors stored before server-side embeddings existed, and of {@code none}'s default. */
  public static final String CLIENT_MODEL = "client";
  private static final Pattern MODEL_NAME = Pattern.compile("[A-Za-z0-9._:/@+-]{1,200}");

  /** Whether the server makes embeddings (queue, worker, query embedding). */
  public boolean serverEmbeds() {
    return !embedder.equals(NONE);
  }

  static EmbeddingSettings read(Settings.Reader r) {
    String p = Settings.PREFIX;
    String embedder = r.string("EMBEDDER", NONE).toLowerCase(Locale.ROOT);
    String model;
    int dimension;
    URI url = null;
    switch (embedder) {
      case LOCAL -> {
        model = r.string("EMBEDDING_MODEL", LOCAL_MODELS.get(0));
        if (!LOCAL_MODELS.contains(model)) {
          throw new IllegalArgumentException(p + "EMBEDDING_MODEL must be one of " + LOCAL_MODELS
              + " with " + p + "EMBEDDER=local, got '" + model + "'");
        }
        dimension = r.integer("EMBEDDING_DIMENSION", LOCAL_DIMENSION, 1, Settings.MAX_EMBEDDING_DIMENSION);
        if (dimension != LOCAL_DIMENSION) {
          throw new IllegalArgumentException(p + "EMBEDDING_DIMENSION must be " + LOCAL_DIMENSION + " (or unset) with "
              + p + "EMBEDDER=local, got " + dimension);
        }
      }
      case OPENAI -> {
        model = r.string("EMBEDDING_MODEL", null);
        if (model == null) {
          throw new IllegalArgumentException(p + "EMBEDDING_MODEL is required with " + p + "EMBEDDER=" + OPENAI
              + " (the model the endpoint serves, e.g. text-embedding-3-small or nomic-embed-text)");
        }
        dimension = r.integer("EMBEDDING_DIMENSION", 768, 1, Settings.MAX_EMBEDDING_DIMENSION);
        String u = r.string("EMBEDDING_URL", null);
        if (u == null) {
          throw new IllegalArgumentException(p + "EMBEDDING_URL is required with " + p + "EMBEDDER=" + OPENAI
              + " (e.g. https://api.openai.com/v1 or http://localhost:11434/v1)");
        }
        try {
          url = URI.create(u);
        } catch (IllegalArgumentException e) {
          throw new IllegalArgumentException(p + "EMBEDDING_URL is not a URL", e);
        }
        if (!("http".equals(url.getScheme()) || "https".equals(url.getScheme())) || url.getHost() == null) {
          throw new IllegalArgumentException(p + "EMBEDDING_URL must be an http:// or https:// URL");
        }
      }
      case NONE -> {
        model = r.string("EMBEDDING_MODEL", CLIENT_MODEL);
        dimension = r.integer("EMBEDDING_DIMENSION", 768, 1, Settings.MAX_EMBEDDING_DIMENSION);
      }
      default -> throw new IllegalArgumentException(p + "EMBEDDER must be one of [" + LOCAL + ", " + OPENAI + ", "
          + NONE + "], got '" + embedder + "'");
    }
    if (!MODEL_NAME.matcher(model).matches()) {
      throw new IllegalArgumentException(p + "EMBEDDING_MODEL must be 1 to 200 of A-Z a-z 0-9 . _ : / @ + -");
    }
    String clientModel = r.string("CLIENT_EMBEDDING_MODEL", model);
    if (!MODEL_NAME.matcher(clientModel).matches()) {
      throw new IllegalArgumentException(p + "CLIENT_EMBEDDING_MODEL must be 1 to 200 of A-Z a-z 0-9 . _ : / @ + -");
    }
    return new EmbeddingSettings(embedder, model, dimension, clientModel, url,
        r.string("EMBEDDING_API_KEY", ""),
        Duration.ofMillis(r.integer("EMBEDDING_TIMEOUT_MS", 10_000, 100, 600_000)),
        r.integer("EMBEDDING_MAX_RETRIES", 3, 0, 20),
        r.integer("EMBEDDING_BATCH_SIZE", 32, 1, 2048),
        r.integer("EMBEDDING_MAX_ATTEMPTS", 5, 1, 100),
        Duration.ofMillis(r.integer("EMBEDDING_POLL_INTERVAL_MS", 500, 10, 600_000)),
        r.integer("EMBEDDING_QUERY_CACHE_SIZE", 1_000, 0, 1_000_000),
        r.integer("EMBEDDING_THREADS", Math.min(2, Runtime.getRuntime().availableProcessors()), 1, 64));
  }

  @Override
  public String toString() {
    // The API key is a secret: never printed.
    return "Embedding[embedder=" + embedder + ", model=" + model + ", dimension=" + dimension
        + (embedder.equals(LOCAL) ? ", threads=" + threads : "")
        + (url == null ? "" : ", url=" + url.getScheme() + "://" + url.getHost() + (url.getPort() < 0 ? "" : ":" + url.getPort()))
        + ", apiKey=" + (apiKey.isEmpty() ? "none" : "***") + "]";
  }
}

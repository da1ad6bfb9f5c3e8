package dev.contextmemory.server.grpc;

import dev.contextmemory.server.config.EmbeddingSettings;
import dev.contextmemory.server.domain.UnavailableException;
import dev.contextmemory.server.embedding.EmbeddingException;
import dev.contextmemory.server.embedding.QueryEmbeddings;
import java.time.Duration;
import java.util.List;

/**
 * The edge's view of the deployment's embedding model: checks that a client's vector is of the
 * active model (by the model its request names, else CLIENT_EMBEDDING_MODEL) and of its dimension,
 * and embeds query texts when the deployment has an embedder.
 */
final class Embeddings {
  private final EmbeddingSettings settings;
  private final QueryEmbeddings queries;

  /** {@code queries} null: the deployment has no embedder (callers bring every vector). */
  Embeddings(EmbeddingSettings settings, QueryEmbeddings queries) {
    this.settings = settings;
    this.queries = queries;
  }

  boolean serverEmbeds() {
    return queries != null;
  }

  /**
   * A client's vector, or null when it sent none. Its model ({@code model}, else the deployment's
   * client model) must be the active one: a vector of another model is in another space, and
   * comparing it with the stored ones would return confident nonsense.
   */
  float[] clientVector(Validator v, String field, List<Float> values, String modelField, String model,
      boolean required) {
    String named = model.isEmpty() ? settings.clientModel() : model;
    if (!values.isEmpty() && !named.equals(settings.model())) {
      v.add(model.isEmpty() ? field : modelField, (model.isEmpty() ? "comes from the client model '" + named
          + "' (CONTEXT_MEMORY_CLIENT_EMBEDDING_MODEL)" : "names model '" + clip(named) + "'")
          + ", but this deployment's embeddings are of model '" + settings.model()
          + "'; send a vector of that model, or none" + (serverEmbeds() ? " and let the server embed the text" : ""));
      return null;
    }
    if (values.isEmpty() && !model.isEmpty() && !named.equals(settings.model())) {
      v.add(modelField, "names model '" + clip(named) + "' without a vector; this deployment's model is '"
          + settings.model() + "'");
    }
    return v.embedding(field, values, settings.dimension(), required);
  }

  /** A caller's model name, cut for an error message. */
  private static String clip(String s) {
    return s.length() <= 64 ? s : s.substring(0, 64) + "…";
  }

  /**
   * The server's embedding of a query text.
   *
   * @throws UnavailableException when the embedder fails (an endpoint down, slow or rate limiting)
   */
  float[] query(String text) {
    try {
      return queries.embed(text);
    } catch (EmbeddingException e) {
      throw new UnavailableException("EMBEDDER_UNAVAILABLE", "the query text could not be embedded ("
          + e.getMessage() + "); retry, or search by text only", e.retryAfter().isZero() ? Duration.ofSeconds(1)
          : e.retryAfter());
    }
  }

  /** The server's embedding of a query text, or null (rank by text alone) when the embedder fails. */
  float[] queryOrNull(String text) {
    try {
      return queries.embed(text);
    } catch (EmbeddingException e) {
      return null;
    }
  }
}

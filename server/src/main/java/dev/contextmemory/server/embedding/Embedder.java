package dev.contextmemory.server.embedding;

import java.util.List;

/**
 * Turns texts into vectors of one model. Implementations are thread-safe; they are called by the
 * embedding worker (batches of queued rows) and by searches (one query text at a time), never on a
 * write's path.
 */
public interface Embedder extends AutoCloseable {
  /** The name stored with every embedding this embedder makes. */
  String model();

  /** The length of every vector it returns. */
  int dimension();

  /**
   * One vector per text, in order, each of {@link #dimension()} finite floats.
   *
   * @throws EmbeddingException when the texts could not be embedded (retryable or not)
   */
  List<float[]> embed(List<String> texts);

  @Override
  default void close() {}
}

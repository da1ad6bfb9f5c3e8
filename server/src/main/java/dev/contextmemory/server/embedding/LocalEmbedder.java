package dev.contextmemory.server.embedding;

import dev.langchain4j.data.segment.TextSegment;
import dev.langchain4j.model.embedding.EmbeddingModel;
import dev.langchain4j.model.embedding.onnx.allminilml6v2q.AllMiniLmL6V2QuantizedEmbeddingModel;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * all-MiniLM-L6-v2 (sentence-transformers, 384 dimensions, mean pooling, normalized) on
 * onnxruntime, in-process: the model file, its tokenizer and the runtime come inside the
 * langchain4j artifact, so nothing is downloaded. The quantized (int8) variant: on this project's
 * 2-core machine it embedded 74 texts/s one at a time (the unquantized one 37) for a recall@5 of
 * 0.84 on the labelled set (0.88), and a query's embedding is on every text search's path
 * (docs/search.md "Choosing the local model").
 *
 * <p>A loaded model holds about 25 MB of weights plus onnxruntime's arenas, so
 * it is loaded once per JVM and shared by every server in it (tests start many servers).
 * Texts longer than the model's 256 tokens are embedded by langchain4j in 256-token windows
 * whose vectors are averaged.
 */
public final class LocalEmbedder implements Embedder {
  private static final Map<String, EmbeddingModel> LOADED = new ConcurrentHashMap<>();

  private final String model;
  private final EmbeddingModel onnx;

  public LocalEmbedder(String model) {
    this(model, LOADED.computeIfAbsent(model, LocalEmbedder::load));
  }

  /** Any of langchain4j's in-process models under a name (LocalModelMeasurement compares two). */
  LocalEmbedder(String model, EmbeddingModel onnx) {
    this.model = model;
    this.onnx = onnx;
  }

  private static EmbeddingModel load(String model) {
    // langchain4j's default executor: one task per text on a pool as large as the cores.
    return switch (model) {
      case "all-minilm-l6-v2-q" -> new AllMiniLmL6V2QuantizedEmbeddingModel();
      default -> throw new IllegalArgumentException("unknown local model " + model);
    };
  }

  @Override
  public String model() {
    return model;
  }

  @Override
  public int dimension() {
    return 384;
  }

  @Override
  public List<float[]> embed(List<String> texts) {
    List<TextSegment> segments = new ArrayList<>(texts.size());
    for (String t : texts) {
      // The tokenizer rejects an empty segment; a blank text (never stored: content is required)
      // still gets a vector, that of a single space.
      segments.add(TextSegment.from(t.isBlank() ? " " : t));
    }
    try {
      List<float[]> out = new ArrayList<>(texts.size());
      onnx.embedAll(segments).content().forEach(e -> out.add(e.vector()));
      return out;
    } catch (RuntimeException e) {
      // onnxruntime failing on an input is not going to change on a retry.
      throw new EmbeddingException("the local model failed: " + e.getClass().getSimpleName(), false, null, e);
    }
  }
}

package dev.contextmemory.server.embedding;

import dev.langchain4j.data.segment.TextSegment;
import dev.langchain4j.model.embedding.EmbeddingModel;
import dev.langchain4j.model.embedding.onnx.AbstractInProcessEmbeddingModel;
import dev.langchain4j.model.embedding.onnx.OnnxBertBiEncoder;
import dev.langchain4j.model.embedding.onnx.PoolingMode;
import dev.langchain4j.model.embedding.onnx.allminilml6v2q.AllMiniLmL6V2QuantizedEmbeddingModel;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import java.io.IOException;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executor;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * all-MiniLM-L6-v2 (sentence-transformers, 384 dimensions, mean pooling, normalized) on
 * onnxruntime, in-process: the model file, its tokenizer and the runtime come inside the
 * langchain4j artifact, so nothing is downloaded. The quantized (int8) variant: on this project's
 * 2-core machine it embedded 74 texts/s one at a time (the unquantized one 37) for a recall@5 of
 * 0.84 on the labelled set (0.88), and a query's embedding is on every text search's path
 * (docs/search.md "Choosing the local model").
 *
 * <p>Threads (CONTEXT_MEMORY_EMBEDDING_THREADS, default 2, or 1 on one core): langchain4j's own
 * session lets onnxruntime's intra-op threads spin while idle and embeds the texts of a batch in
 * parallel on a pool as large as the cores, so on a 2-core machine the background worker's batch
 * kept every core busy and text-only CreateMemory calls waited for CPU (p50 5.8 times the
 * embedder-off figure). Here the session is built from the same model bytes with {@code threads}
 * intra-op threads that do not spin, and a batch's texts are embedded at most {@code threads} at a
 * time. Measured side by side on the shared 2-core machine (docs/search.md "Measured figures"): one
 * text p50 2.6 ms with 2 such threads, 9 to 18 ms with 1, 27 ms with langchain4j's session.
 *
 * <p>A loaded model holds about 25 MB of weights plus onnxruntime's arenas, so
 * it is loaded once per JVM and thread count and shared by every server in it (tests start many).
 * Texts longer than the model's 256 tokens are embedded by langchain4j in 256-token windows
 * whose vectors are averaged.
 */
public final class LocalEmbedder implements Embedder {
  /** The default of CONTEXT_MEMORY_EMBEDDING_THREADS: 2, or 1 on a single core. */
  public static final int DEFAULT_THREADS = Math.min(2, Runtime.getRuntime().availableProcessors());
  private static final Map<String, EmbeddingModel> LOADED = new ConcurrentHashMap<>();

  private final String model;
  private final EmbeddingModel onnx;
  private final int threads;

  public LocalEmbedder(String model) {
    this(model, DEFAULT_THREADS);
  }

  public LocalEmbedder(String model, int threads) {
    this(model, LOADED.computeIfAbsent(model + "/" + threads, k -> load(model, threads)), threads);
  }

  /** Any of langchain4j's in-process models under a name (LocalModelMeasurement compares two). */
  LocalEmbedder(String model, EmbeddingModel onnx) {
    this(model, onnx, 0);
  }

  private LocalEmbedder(String model, EmbeddingModel onnx, int threads) {
    this.model = model;
    this.onnx = onnx;
    this.threads = threads;
  }

  /** The session's onnxruntime threads (0: a model handed in, not loaded here). */
  int threads() {
    return threads;
  }

  private static EmbeddingModel load(String model, int threads) {
    return switch (model) {
      case "all-minilm-l6-v2-q" -> new Capped(AllMiniLmL6V2QuantizedEmbeddingModel.class, "all-minilm-l6-v2-q.onnx",
          "all-minilm-l6-v2-q-tokenizer.json", PoolingMode.MEAN, 384, threads);
      default -> throw new IllegalArgumentException("unknown local model " + model);
    };
  }

  /**
   * One of langchain4j's bundled models on a session of our own: {@code threads} intra-op threads,
   * no spinning, and a batch embedded at most {@code threads} texts at a time.
   */
  static final class Capped extends AbstractInProcessEmbeddingModel {
    private final OnnxBertBiEncoder encoder;
    private final int dimension;

    Capped(Class<?> artifact, String modelFile, String tokenizerFile, PoolingMode pooling, int dimension, int threads) {
      super(executor(threads));
      this.dimension = dimension;
      try (InputStream m = resource(artifact, modelFile); InputStream t = resource(artifact, tokenizerFile);
           OrtSession.SessionOptions options = new OrtSession.SessionOptions()) {
        options.setIntraOpNumThreads(threads);
        options.setInterOpNumThreads(1);
        // Idle onnxruntime threads otherwise spin on the cores the request threads need.
        options.addConfigEntry("session.intra_op.allow_spinning", "0");
        options.addConfigEntry("session.inter_op.allow_spinning", "0");
        OrtEnvironment env = OrtEnvironment.getEnvironment();
        this.encoder = new OnnxBertBiEncoder(env, env.createSession(m.readAllBytes(), options), t, pooling);
      } catch (IOException | OrtException e) {
        throw new IllegalStateException("could not load the local model " + modelFile + ": " + e.getMessage(), e);
      }
    }

    private static Executor executor(int threads) {
      if (threads == 1) {
        return Runnable::run; // a batch's texts one after the other, on the caller's thread
      }
      AtomicInteger n = new AtomicInteger();
      return Executors.newFixedThreadPool(threads, r -> {
        Thread th = new Thread(r, "local-embedder-" + n.incrementAndGet());
        th.setDaemon(true);
        return th;
      });
    }

    private static InputStream resource(Class<?> artifact, String name) throws IOException {
      InputStream in = artifact.getResourceAsStream("/" + name);
      if (in == null) {
        throw new IOException(name + " is not on the class path");
      }
      return in;
    }

    @Override
    protected OnnxBertBiEncoder model() {
      return encoder;
    }

    @Override
    protected Integer knownDimension() {
      return dimension;
    }
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

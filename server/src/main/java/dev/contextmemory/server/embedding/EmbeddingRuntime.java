package dev.contextmemory.server.embedding;

import dev.contextmemory.server.config.EmbeddingSettings;
import dev.contextmemory.server.store.EmbeddingQueueStore;
import dev.contextmemory.server.store.StagedVectorStore;
import dev.contextmemory.server.store.VectorIndexes;
import dev.contextmemory.server.store.VectorSpace;
import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import java.sql.Connection;
import java.sql.SQLException;
import java.util.List;
import java.util.concurrent.atomic.AtomicReference;
import org.jdbi.v3.core.Handle;
import org.jdbi.v3.core.Jdbi;
import org.postgresql.PGConnection;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The server's embedding machinery, started after the gRPC server and stopped before the pool: the
 * embedder, the query-embedding cache, the worker that drains the queue (with an embedder), and,
 * always, the background build of the active model's vector indexes and the indexer of vectors that
 * bulk writes staged.
 */
public final class EmbeddingRuntime implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(EmbeddingRuntime.class);

  private final EmbeddingSettings settings;
  private final VectorSpace space;
  private final Jdbi jdbi;
  private final Embedder embedder;
  private final QueryEmbeddings queries;
  private final EmbeddingWorker worker;
  private final StagedVectorIndexer staged;
  private final Thread indexes;
  private final IndexConnection indexConnection;
  /** The index build's connection while it builds; closing the runtime aborts it. */
  private final AtomicReference<Connection> building = new AtomicReference<>();
  private volatile boolean closed;

  /** Opens the connection the index build runs on, outside the request pool. */
  @FunctionalInterface
  public interface IndexConnection {
    Connection open() throws SQLException;
  }

  /** Loads the embedder (the local model: about a second) but starts nothing yet. */
  public EmbeddingRuntime(EmbeddingSettings settings, Jdbi jdbi, IndexConnection indexConnection) {
    this.settings = settings;
    this.indexConnection = indexConnection;
    this.space = new VectorSpace(settings.model(), settings.dimension());
    this.jdbi = jdbi;
    this.embedder = Embedders.create(settings);
    this.queries = embedder == null ? null : new QueryEmbeddings(embedder, settings.queryCacheSize());
    this.worker = embedder == null ? null : new EmbeddingWorker(List.of(
        new EmbeddingQueueStore(jdbi, space, EmbeddingQueueStore.Target.MEMORIES),
        new EmbeddingQueueStore(jdbi, space, EmbeddingQueueStore.Target.CONVERSATION_SUMMARIES)),
        Embedders.forWorker(settings, embedder),
        settings.batchSize(), settings.maxAttempts(), settings.pollInterval());
    this.staged = new StagedVectorIndexer(new StagedVectorStore(jdbi), settings.pollInterval());
    this.indexes = new Thread(this::buildIndexes, "vector-index-build");
    indexes.setDaemon(true);
  }

  public VectorSpace space() {
    return space;
  }

  /** Null without an embedder. */
  public QueryEmbeddings queries() {
    return queries;
  }

  /** Wakes the worker after a write queued a memory or a summary; a no-op without one. */
  public void queued() {
    if (worker != null) {
      worker.wake();
    }
  }

  /** Wakes the staged-vector indexer after a bulk write staged vectors. */
  public void staged() {
    staged.wake();
  }

  public void start() {
    indexes.start();
    staged.start();
    if (worker != null) {
      worker.start();
    }
  }

  /**
   * On a connection of its own: a build holds it for minutes on a big table, and waits for every
   * older open transaction; a request-pool connection would be one fewer for calls all that time.
   */
  private void buildIndexes() {
    try (Connection c = indexConnection.open()) {
      building.set(c);
      if (closed) {
        return;
      }
      try (Handle h = Jdbi.open(c)) {
        VectorIndexes.ensure(h, space);
      }
    } catch (SQLException | RuntimeException e) {
      if (!closed) {
        // Searches stay correct without the index (exact scans); the next start tries again.
        log.warn("could not build the vector indexes of model {}: {}", space.model(), e.toString());
      }
    } finally {
      building.set(null);
    }
  }

  /** The worker, for tests and tools; null without an embedder. */
  public EmbeddingWorker worker() {
    return worker;
  }

  /** The staged-vector indexer, for tests and tools. */
  public StagedVectorIndexer stagedVectors() {
    return staged;
  }

  /** The queue's gauges and the worker's counters (docs/observability.md). */
  public void monitor(MeterRegistry registry) {
    Gauge.builder("contextmemory.vectors.staged", staged, StagedVectorIndexer::staged)
        .description("Vectors bulk writes staged that wait to enter the HNSW index (all servers), refreshed every second")
        .register(registry);
    Gauge.builder("contextmemory.vectors.staged.lag", staged, StagedVectorIndexer::lagSeconds).baseUnit("seconds")
        .description("Age of the oldest staged vector; 0 when none waits").register(registry);
    FunctionCounter.builder("contextmemory.vectors.indexed", staged, StagedVectorIndexer::indexedTotal)
        .description("Staged vectors this server moved into the HNSW index").register(registry);
    FunctionCounter.builder("contextmemory.vectors.indexing.deferred", staged, StagedVectorIndexer::deferredTotal)
        .description("Indexer rounds put off because this server's bulk writes were still staging rows")
        .register(registry);
    if (worker == null) {
      return;
    }
    String model = settings.model();
    Gauge.builder("contextmemory.embedding.queue.depth", worker, EmbeddingWorker::pending)
        .description("Memories and conversation summaries waiting for an embedding (the database's, all servers),"
            + " refreshed every second")
        .tag("model", model).register(registry);
    Gauge.builder("contextmemory.embedding.queue.lag", worker, EmbeddingWorker::lagSeconds).baseUnit("seconds")
        .description("Age of the oldest memory or summary waiting for an embedding; 0 when none waits")
        .tag("model", model).register(registry);
    FunctionCounter.builder("contextmemory.embedding.rows", worker, EmbeddingWorker::embeddedTotal)
        .tag("model", model).tag("outcome", "embedded").description("Memories and summaries this server embedded").register(registry);
    FunctionCounter.builder("contextmemory.embedding.rows", worker, EmbeddingWorker::retriedTotal)
        .tag("model", model).tag("outcome", "retry").description("Memories and summaries put back after a failed attempt")
        .register(registry);
    FunctionCounter.builder("contextmemory.embedding.rows", worker, EmbeddingWorker::failedTotal)
        .tag("model", model).tag("outcome", "failed").description("Memories and summaries marked FAILED").register(registry);
    FunctionCounter.builder("contextmemory.embedding.rows", worker, EmbeddingWorker::requeuedTotal)
        .tag("model", model).tag("outcome", "requeued").description("Rows of other models, or failed under them, queued for re-embedding")
        .register(registry);
  }

  @Override
  public void close() {
    if (worker != null) {
      worker.close();
    }
    staged.close();
    closed = true;
    Connection c = building.get();
    if (c != null) {
      // Ends a build in progress: PostgreSQL leaves its index INVALID, and the next start drops it
      // and builds it again (VectorIndexes). A cancel first: a backend waiting on a lock does not
      // notice its client went away (only after client_connection_check_interval, VectorIndexes).
      try {
        c.unwrap(PGConnection.class).cancelQuery();
      } catch (SQLException ignored) {
        // Nothing running, or already closed.
      }
      try {
        c.abort(Runnable::run);
      } catch (SQLException ignored) {
        // Already closed.
      }
    }
    indexes.interrupt();
    // The loaded local model is shared by the JVM (LocalEmbedder); an HTTP client has nothing to close.
  }
}

package dev.contextmemory.server.embedding;

import dev.contextmemory.server.store.StagedVectorStore;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Moves the vectors bulk writes staged into the HNSW index, in the background (docs/search.md "Bulk
 * writes and the vector index"). One thread per server, with or without an embedder: batches of
 * {@value #BATCH} rows, each one short transaction (its cost is the HNSW inserts, about 0.2 s per
 * batch on two cores), back to back until none is left; then it sleeps for the poll interval or
 * until a bulk write on this server staged rows ({@link #wake()}). Several servers share the work
 * (SKIP LOCKED). Bounded: one pooled connection at a time, nothing held in memory.
 */
public final class StagedVectorIndexer extends BackgroundRounds {
  private static final Logger log = LoggerFactory.getLogger(StagedVectorIndexer.class);
  /** Small, so a batch holds its rows' locks for a fraction of a second (a write to them waits). */
  static final int BATCH = 100;
  private static final long DEPTH_REFRESH_NANOS = Duration.ofSeconds(1).toNanos();

  private final StagedVectorStore store;
  private final AtomicLong indexed = new AtomicLong();
  private volatile long staged;
  private volatile double lagSeconds;
  private volatile long depthRefreshedAt = System.nanoTime() - DEPTH_REFRESH_NANOS;

  public StagedVectorIndexer(StagedVectorStore store, Duration poll) {
    super("staged-vector-indexer", poll, log, "staged vector indexing failed, will retry: {}");
    this.store = store;
  }

  @Override
  boolean round() {
    int n = store.index(BATCH);
    indexed.addAndGet(n);
    refreshDepth(n > 0);
    return n == BATCH;
  }

  private void refreshDepth(boolean force) {
    long now = System.nanoTime();
    if (force || now - depthRefreshedAt >= DEPTH_REFRESH_NANOS) {
      double[] d = store.depth();
      staged = (long) d[0];
      lagSeconds = d[1];
      depthRefreshedAt = now;
    }
  }

  /** Staged rows in the database (all servers'), as of the last refresh. */
  public long staged() {
    return staged;
  }

  /** Age in seconds of the oldest staged row, as of the last refresh; 0 when none. */
  public double lagSeconds() {
    return lagSeconds;
  }

  /** Rows this server moved into the index. */
  public long indexedTotal() {
    return indexed.get();
  }

}

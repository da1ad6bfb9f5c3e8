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
 *
 * <p>Bulk writes first: while this server's bulk writes keep staging rows (the last less than
 * {@link #QUIET} ago), the indexer waits, since its HNSW inserts take a whole core from the
 * writes (on 2 cores, CreateMemories of 1,000 with vectors went from 4,744 to 6,496 memories/s with
 * the indexer idle). Bounded: once the oldest staged row is {@link #MAX_DEFER} old, it indexes
 * whether or not writes go on, so a backfill of any length is not left out of the index for
 * longer than that plus the index's own rate.
 */
public final class StagedVectorIndexer extends BackgroundRounds {
  private static final Logger log = LoggerFactory.getLogger(StagedVectorIndexer.class);
  /** Small, so a batch holds its rows' locks for a fraction of a second (a write to them waits). */
  static final int BATCH = 100;
  private static final long DEPTH_REFRESH_NANOS = Duration.ofSeconds(1).toNanos();
  /** Longer than the gap between one client's back-to-back bulk calls, short beside MAX_DEFER. */
  static final Duration QUIET = Duration.ofMillis(250);
  static final Duration MAX_DEFER = Duration.ofSeconds(30);

  private final StagedVectorStore store;
  private final AtomicLong indexed = new AtomicLong();
  private volatile long staged;
  private volatile double lagSeconds;
  private volatile long depthRefreshedAt = System.nanoTime() - DEPTH_REFRESH_NANOS;
  private volatile long lastStagedAt = System.nanoTime() - QUIET.toNanos();
  private final AtomicLong deferred = new AtomicLong();

  public StagedVectorIndexer(StagedVectorStore store, Duration poll) {
    super("staged-vector-indexer", poll, log, "staged vector indexing failed, will retry: {}");
    this.store = store;
  }

  /** A bulk write on this server staged rows: index them once writes pause (or MAX_DEFER passes). */
  @Override
  public void wake() {
    lastStagedAt = System.nanoTime();
    super.wake();
  }

  @Override
  boolean round() throws InterruptedException {
    long sinceStaged = System.nanoTime() - lastStagedAt;
    if (sinceStaged < QUIET.toNanos()) {
      refreshDepth(false);
      if (defer(sinceStaged, lagSeconds)) {
        deferred.incrementAndGet();
        Thread.sleep(Math.max(1, (QUIET.toNanos() - sinceStaged) / 1_000_000));
        return true; // look again at once
      }
    }
    int n = store.index(BATCH);
    indexed.addAndGet(n);
    refreshDepth(n > 0);
    return n == BATCH;
  }

  /** Whether to put a round off: this server staged rows within QUIET, and none has waited MAX_DEFER. */
  static boolean defer(long nanosSinceStaged, double oldestStagedSeconds) {
    return nanosSinceStaged < QUIET.toNanos() && oldestStagedSeconds < MAX_DEFER.toSeconds();
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

  /** Rounds this server put off because its bulk writes were still staging rows (tests, metrics). */
  public long deferredTotal() {
    return deferred.get();
  }

  /** Rows this server moved into the index. */
  public long indexedTotal() {
    return indexed.get();
  }

}

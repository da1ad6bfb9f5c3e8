package dev.contextmemory.server.embedding;

import dev.contextmemory.server.store.EmbeddingQueueStore;
import dev.contextmemory.server.store.EmbeddingQueueStore.Claimed;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Embeds queued memories and conversation summaries in the background, off every request's path
 * (docs/search.md "The embedding queue"). One thread for both queues: first it queues the rows of
 * other models (after a model change, in batches), then it claims due rows of each queue in batches,
 * embeds them and writes the vectors back, until no queue has anything due; then it sleeps for the
 * poll interval or until a write on this server queues a row
 * ({@link #wake()}). A failed batch goes back with exponential backoff (1 s doubling to at most
 * 5 min, or the endpoint's Retry-After if longer); a row that failed EMBEDDING_MAX_ATTEMPTS times is
 * marked FAILED. Several servers can run workers on one database (EmbeddingQueueStore's claim).
 */
public final class EmbeddingWorker extends BackgroundRounds {
  private static final Logger log = LoggerFactory.getLogger(EmbeddingWorker.class);
  private static final Duration BASE_BACKOFF = Duration.ofSeconds(1);
  private static final Duration MAX_BACKOFF = Duration.ofMinutes(5);
  /** How long a claim keeps other workers off its rows: past any embedder call's timeout and retries. */
  private static final Duration LEASE = Duration.ofMinutes(5);
  private static final int REQUEUE_BATCH = 1_000;
  /** The depth and lag gauges are refreshed at most this often (one indexed count). */
  private static final long DEPTH_REFRESH_NANOS = Duration.ofSeconds(1).toNanos();

  private final List<EmbeddingQueueStore> queues;
  private final Embedder embedder;
  private final int batch;
  private final int maxAttempts;
  private final Duration poll;
  private final AtomicLong embedded = new AtomicLong();
  private final AtomicLong retried = new AtomicLong();
  private final AtomicLong failed = new AtomicLong();
  private final AtomicLong requeued = new AtomicLong();
  private volatile long pending;
  private volatile double lagSeconds;
  private volatile long depthRefreshedAt = System.nanoTime() - DEPTH_REFRESH_NANOS;

  public EmbeddingWorker(List<EmbeddingQueueStore> queues, Embedder embedder, int batch, int maxAttempts,
      Duration poll) {
    super("embedding-worker", poll, log, "embedding worker round failed: {}");
    this.queues = List.copyOf(queues);
    this.embedder = embedder;
    this.batch = batch;
    this.maxAttempts = maxAttempts;
    this.poll = poll;
  }

  @Override
  boolean round() {
    int n = 0;
    boolean full = false;
    for (EmbeddingQueueStore queue : queues) {
      int claimed = drainOnce(queue);
      n += claimed;
      full |= claimed == batch;
    }
    refreshDepth(n > 0);
    return full;
  }

  @Override
  void beforeRounds() {
    for (EmbeddingQueueStore queue : queues) {
      requeueOtherModels(queue);
    }
  }

  private void requeueOtherModels(EmbeddingQueueStore queue) {
    long total = 0;
    while (!closed()) {
      try {
        int n = queue.requeueOtherModels(REQUEUE_BATCH);
        requeued.addAndGet(n);
        total += n;
        if (n < REQUEUE_BATCH) {
          if (total > 0) {
            log.info("queued {} {} of other models (or failed under them) for re-embedding with {}", total,
                queue.target().label, embedder.model());
          }
          return;
        }
      } catch (RuntimeException e) {
        log.warn("re-embedding queue pass failed, will retry: {}", e.toString());
        try {
          Thread.sleep(poll.toMillis());
        } catch (InterruptedException ie) {
          return;
        }
      }
    }
  }

  /** Claims one batch of each queue and embeds it; returns the rows claimed. Public for tests and tools. */
  public int drainOnce() {
    int n = 0;
    for (EmbeddingQueueStore queue : queues) {
      n += drainOnce(queue);
    }
    return n;
  }

  private int drainOnce(EmbeddingQueueStore queue) {
    List<Claimed> rows = queue.claim(batch, LEASE);
    if (rows.isEmpty()) {
      return 0;
    }
    try {
      List<float[]> vectors = embedder.embed(rows.stream().map(Claimed::content).toList());
      embedded.addAndGet(queue.complete(rows, vectors));
    } catch (EmbeddingException e) {
      if (!e.retryable() && rows.size() > 1) {
        // One bad text (or an answer the endpoint cannot give for it) fails a whole batch: find it.
        rows.forEach(r -> drainOne(queue, r));
        return rows.size();
      }
      int attempts = rows.stream().mapToInt(Claimed::attempts).max().orElse(1);
      Duration backoff = BASE_BACKOFF.multipliedBy(1L << Math.min(attempts - 1, 20));
      backoff = backoff.compareTo(MAX_BACKOFF) > 0 ? MAX_BACKOFF : backoff;
      if (e.retryAfter().compareTo(backoff) > 0) {
        backoff = e.retryAfter();
      }
      int gaveUp = queue.fail(rows, backoff, e.retryable() ? maxAttempts : 0);
      failed.addAndGet(gaveUp);
      retried.addAndGet(rows.size() - gaveUp);
      // The message names the status and model, never the texts.
      log.warn("embedding {} {} with {} failed (attempt {}, {} now FAILED): {}", rows.size(), queue.target().label,
          embedder.model(), attempts, gaveUp, e.getMessage());
    }
    return rows.size();
  }

  private void drainOne(EmbeddingQueueStore queue, Claimed row) {
    try {
      embedded.addAndGet(queue.complete(List.of(row), embedder.embed(List.of(row.content()))));
    } catch (EmbeddingException e) {
      int gaveUp = queue.fail(List.of(row), MAX_BACKOFF, e.retryable() ? maxAttempts : 0);
      failed.addAndGet(gaveUp);
      retried.addAndGet(1 - gaveUp);
      log.warn("embedding {} {} with {} failed ({}): {}", queue.target().label, row.id(), embedder.model(),
          gaveUp > 0 ? "now FAILED" : "will retry", e.getMessage());
    }
  }

  private void refreshDepth(boolean force) {
    long now = System.nanoTime();
    if (force || now - depthRefreshedAt >= DEPTH_REFRESH_NANOS) {
      long p = 0;
      double lag = 0;
      for (EmbeddingQueueStore queue : queues) {
        EmbeddingQueueStore.Depth d = queue.depth();
        p += d.pending();
        lag = Math.max(lag, d.lagSeconds());
      }
      pending = p;
      lagSeconds = lag;
      depthRefreshedAt = now;
    }
  }

  /** Pending memories and summaries in the database (all servers' queues), as of the last refresh. */
  public long pending() {
    return pending;
  }

  /** Age in seconds of the oldest pending row, as of the last refresh; 0 when none. */
  public double lagSeconds() {
    return lagSeconds;
  }

  /** Memories and summaries this server embedded. */
  public long embeddedTotal() {
    return embedded.get();
  }

  /** Rows this server put back for a later attempt. */
  public long retriedTotal() {
    return retried.get();
  }

  /** Rows this server marked FAILED. */
  public long failedTotal() {
    return failed.get();
  }

  /** Rows of other models (or failed under them) this server queued for re-embedding. */
  public long requeuedTotal() {
    return requeued.get();
  }

}

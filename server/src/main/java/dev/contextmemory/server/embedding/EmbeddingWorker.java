package dev.contextmemory.server.embedding;

import dev.contextmemory.server.store.EmbeddingQueueStore;
import dev.contextmemory.server.store.EmbeddingQueueStore.Claimed;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Embeds queued memories in the background, off every request's path (docs/search.md "The embedding
 * queue"). One thread: first it queues the rows of other models (after a model change, in batches),
 * then it claims due rows in batches, embeds them and writes the vectors back, until the queue has
 * nothing due; then it sleeps for the poll interval or until a write on this server queues a row
 * ({@link #wake()}). A failed batch goes back with exponential backoff (1 s doubling to at most
 * 5 min, or the endpoint's Retry-After if longer); a row that failed EMBEDDING_MAX_ATTEMPTS times is
 * marked FAILED. Several servers can run workers on one database (EmbeddingQueueStore's claim).
 */
public final class EmbeddingWorker implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(EmbeddingWorker.class);
  private static final Duration BASE_BACKOFF = Duration.ofSeconds(1);
  private static final Duration MAX_BACKOFF = Duration.ofMinutes(5);
  /** How long a claim keeps other workers off its rows: past any embedder call's timeout and retries. */
  private static final Duration LEASE = Duration.ofMinutes(5);
  private static final int REQUEUE_BATCH = 1_000;
  /** The depth and lag gauges are refreshed at most this often (one indexed count). */
  private static final long DEPTH_REFRESH_NANOS = Duration.ofSeconds(1).toNanos();

  private final EmbeddingQueueStore queue;
  private final Embedder embedder;
  private final int batch;
  private final int maxAttempts;
  private final Duration poll;
  private final Semaphore wake = new Semaphore(0);
  private final Thread thread;
  private final AtomicLong embedded = new AtomicLong();
  private final AtomicLong retried = new AtomicLong();
  private final AtomicLong failed = new AtomicLong();
  private final AtomicLong requeued = new AtomicLong();
  private volatile long pending;
  private volatile double lagSeconds;
  private volatile long depthRefreshedAt = System.nanoTime() - DEPTH_REFRESH_NANOS;
  private volatile boolean closed;

  public EmbeddingWorker(EmbeddingQueueStore queue, Embedder embedder, int batch, int maxAttempts, Duration poll) {
    this.queue = queue;
    this.embedder = embedder;
    this.batch = batch;
    this.maxAttempts = maxAttempts;
    this.poll = poll;
    this.thread = new Thread(this::run, "embedding-worker");
    thread.setDaemon(true);
  }

  public void start() {
    thread.start();
  }

  /** A row was queued on this server: look now instead of at the next poll. */
  public void wake() {
    if (wake.availablePermits() == 0) {
      wake.release();
    }
  }

  private void run() {
    requeueOtherModels();
    while (!closed) {
      try {
        int n = drainOnce();
        refreshDepth(n > 0);
        if (n < batch) {
          wake.tryAcquire(poll.toMillis(), TimeUnit.MILLISECONDS);
          wake.drainPermits();
        }
      } catch (InterruptedException e) {
        return;
      } catch (RuntimeException e) {
        // The database may be down for a moment: try again after a poll interval.
        log.warn("embedding worker round failed: {}", e.toString());
        try {
          Thread.sleep(poll.toMillis());
        } catch (InterruptedException ie) {
          return;
        }
      }
    }
  }

  private void requeueOtherModels() {
    while (!closed) {
      try {
        int n = queue.requeueOtherModels(REQUEUE_BATCH);
        requeued.addAndGet(n);
        if (n < REQUEUE_BATCH) {
          if (requeued.get() > 0) {
            log.info("queued {} memories of other models for re-embedding with {}", requeued.get(), embedder.model());
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

  /** Claims one batch and embeds it; returns the rows claimed. Public for tests and tools. */
  public int drainOnce() {
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
        rows.forEach(r -> drainOne(r));
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
      log.warn("embedding {} memories with {} failed (attempt {}, {} now FAILED): {}", rows.size(), embedder.model(),
          attempts, gaveUp, e.getMessage());
    }
    return rows.size();
  }

  private void drainOne(Claimed row) {
    try {
      embedded.addAndGet(queue.complete(List.of(row), embedder.embed(List.of(row.content()))));
    } catch (EmbeddingException e) {
      int gaveUp = queue.fail(List.of(row), MAX_BACKOFF, e.retryable() ? maxAttempts : 0);
      failed.addAndGet(gaveUp);
      retried.addAndGet(1 - gaveUp);
      log.warn("embedding memory {} with {} failed ({}): {}", row.id(), embedder.model(),
          gaveUp > 0 ? "now FAILED" : "will retry", e.getMessage());
    }
  }

  private void refreshDepth(boolean force) {
    long now = System.nanoTime();
    if (force || now - depthRefreshedAt >= DEPTH_REFRESH_NANOS) {
      EmbeddingQueueStore.Depth d = queue.depth();
      pending = d.pending();
      lagSeconds = d.lagSeconds();
      depthRefreshedAt = now;
    }
  }

  /** Pending memories in the database (all servers' queue), as of the last refresh. */
  public long pending() {
    return pending;
  }

  /** Age in seconds of the oldest pending memory, as of the last refresh; 0 when none. */
  public double lagSeconds() {
    return lagSeconds;
  }

  /** Memories this server embedded. */
  public long embeddedTotal() {
    return embedded.get();
  }

  /** Memories this server put back for a later attempt. */
  public long retriedTotal() {
    return retried.get();
  }

  /** Memories this server marked FAILED. */
  public long failedTotal() {
    return failed.get();
  }

  /** Memories of other models this server queued for re-embedding. */
  public long requeuedTotal() {
    return requeued.get();
  }

  @Override
  public void close() {
    closed = true;
    thread.interrupt();
    try {
      thread.join(5_000);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}

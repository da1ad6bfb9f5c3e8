package dev.contextmemory.server.embedding;

import java.time.Duration;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;

/**
 * One daemon thread running rounds of bounded background work against the database: a round that
 * filled its batch is followed at once by the next; otherwise the thread sleeps for the poll
 * interval or until a write on this server calls {@link #wake()}. A round that fails (the database
 * down) is tried again after the poll interval, doubled for each failure in a row up to
 * {@link #MAX_BACKOFF} (or sooner, on {@link #wake()}); the first failure of a spell is logged, then
 * one line a minute, so that an outage does not flood the log with two lines a second. The loop of
 * {@link EmbeddingWorker} and {@link StagedVectorIndexer}, which differ only in their rounds.
 */
public abstract class BackgroundRounds implements AutoCloseable {
  static final Duration MAX_BACKOFF = Duration.ofSeconds(30);
  private static final long LOG_EVERY_NANOS = Duration.ofMinutes(1).toNanos();
  private final Duration poll;
  private final Logger log;
  private final String failure;
  private final Semaphore wake = new Semaphore(0);
  private final Thread thread;
  private volatile boolean closed;

  /** @param failure the warning's format for a failed round, with one {} for the cause */
  BackgroundRounds(String threadName, Duration poll, Logger log, String failure) {
    this.poll = poll;
    this.log = log;
    this.failure = failure;
    this.thread = new Thread(this::run, threadName);
    thread.setDaemon(true);
  }

  public void start() {
    thread.start();
  }

  /** Work was queued on this server: look now instead of at the next poll. */
  public void wake() {
    if (wake.availablePermits() == 0) {
      wake.release();
    }
  }

  final boolean closed() {
    return closed;
  }

  /** Runs once on the thread before the first round. */
  void beforeRounds() {}

  /** One round of work; true when it filled a batch, so that the next one runs without waiting. */
  abstract boolean round() throws InterruptedException;

  private void run() {
    beforeRounds();
    int failuresInARow = 0;
    long loggedAt = 0;
    while (!closed) {
      try {
        boolean full = round();
        if (failuresInARow > 0) {
          log.info("background rounds of {} work again after {} failed", thread.getName(), failuresInARow);
          failuresInARow = 0;
        }
        if (!full) {
          await(poll.toMillis());
        }
      } catch (InterruptedException e) {
        return;
      } catch (RuntimeException e) {
        failuresInARow++;
        long now = System.nanoTime();
        if (failuresInARow == 1 || now - loggedAt >= LOG_EVERY_NANOS) {
          log.warn(failure, e + (failuresInARow == 1 ? "" : " (" + failuresInARow + " failed rounds in a row)"));
          loggedAt = now;
        }
        try {
          await(backoffMillis(poll, failuresInARow));
        } catch (InterruptedException ie) {
          return;
        }
      }
    }
  }

  private void await(long millis) throws InterruptedException {
    wake.tryAcquire(millis, TimeUnit.MILLISECONDS);
    wake.drainPermits();
  }

  /** The wait after the n-th failed round in a row: the poll interval, doubled per failure, capped. */
  static long backoffMillis(Duration poll, int failuresInARow) {
    long cap = Math.max(poll.toMillis(), MAX_BACKOFF.toMillis());
    long wait = poll.toMillis() << Math.min(failuresInARow - 1, 20);
    return Math.min(Math.max(wait, 1), cap);
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

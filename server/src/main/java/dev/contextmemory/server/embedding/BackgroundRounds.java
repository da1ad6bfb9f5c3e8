package dev.contextmemory.server.embedding;

import java.time.Duration;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;

/**
 * One daemon thread running rounds of bounded background work against the database: a round that
 * filled its batch is followed at once by the next; otherwise the thread sleeps for the poll
 * interval or until a write on this server calls {@link #wake()}. A round that fails (the database
 * down for a moment) is logged and tried again after the poll interval. The loop of
 * {@link EmbeddingWorker} and {@link StagedVectorIndexer}, which differ only in their rounds.
 */
public abstract class BackgroundRounds implements AutoCloseable {
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
    while (!closed) {
      try {
        if (!round()) {
          wake.tryAcquire(poll.toMillis(), TimeUnit.MILLISECONDS);
          wake.drainPermits();
        }
      } catch (InterruptedException e) {
        return;
      } catch (RuntimeException e) {
        log.warn(failure, e.toString());
        try {
          Thread.sleep(poll.toMillis());
        } catch (InterruptedException ie) {
          return;
        }
      }
    }
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

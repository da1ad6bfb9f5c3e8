package dev.contextmemory.server.store;

import java.time.Duration;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Deletes expired memories in the background, and purges conversations soft-deleted longer than the
 * retention ago with their messages: every interval, batches of at most {@code batch} rows, each
 * batch its own short transaction (no long locks, no long-running statement), until a batch comes
 * back short. Only one server of those sharing a database sweeps at a time: each batch
 * takes a transaction-level advisory lock and a server that does not get it skips the round.
 * Expired rows are invisible to reads already, so sweeping late is harmless.
 */
public final class ExpirySweeper implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(ExpirySweeper.class);
  /** A round stops after this many batches, so one huge backlog cannot pin a connection for long. */
  private static final int MAX_BATCHES_PER_ROUND = 100;

  private final MemoryStore store;
  private final ConversationStore conversations;
  private final Duration retention;
  private final int batch;
  private final ScheduledExecutorService timer;
  private final AtomicLong deleted = new AtomicLong();
  private final AtomicLong rounds = new AtomicLong();
  private final AtomicLong failures = new AtomicLong();
  private final AtomicLong purged = new AtomicLong();

  /** {@code retention} zero keeps soft-deleted conversations until their customer is erased. */
  public ExpirySweeper(MemoryStore store, ConversationStore conversations, Duration interval, int batch,
      Duration retention) {
    this.store = store;
    this.conversations = conversations;
    this.retention = retention;
    this.batch = batch;
    this.timer = Executors.newSingleThreadScheduledExecutor(r -> {
      Thread t = new Thread(r, "memory-expiry-sweeper");
      t.setDaemon(true);
      return t;
    });
    timer.scheduleWithFixedDelay(this::sweep, interval.toMillis(), interval.toMillis(), TimeUnit.MILLISECONDS);
  }

  /**
   * One round; public so operators' tooling and tests can trigger it. Returns the expired memories
   * deleted, -1 if another server holds the lock; the retention purge follows in the same round.
   */
  public long sweep() {
    long memories = sweepMemories();
    if (!retention.isZero() && memories >= 0) {
      purgeDeletedConversations();
    }
    return memories;
  }

  private long sweepMemories() {
    long total = 0;
    rounds.incrementAndGet();
    try {
      for (int i = 0; i < MAX_BATCHES_PER_ROUND; i++) {
        int n = store.sweepExpired(batch);
        if (n < 0) {
          return i == 0 ? -1 : total; // another server holds the lock
        }
        total += n;
        if (n < batch) {
          break;
        }
      }
      if (total > 0) {
        deleted.addAndGet(total);
        log.info("expiry sweep deleted {} expired memories", total);
      }
    } catch (RuntimeException e) {
      // The database may be down for a moment; the next round tries again.
      failures.incrementAndGet();
      log.warn("expiry sweep failed: {}", e.toString());
    }
    return total;
  }

  private void purgeDeletedConversations() {
    long total = 0;
    try {
      for (int i = 0; i < MAX_BATCHES_PER_ROUND; i++) {
        int n = conversations.purgeDeleted(retention, batch);
        if (n < 0) {
          break; // another server holds the lock
        }
        total += n;
        if (n < batch) {
          break;
        }
      }
      if (total > 0) {
        purged.addAndGet(total);
        log.info("retention purge deleted {} rows of conversations deleted over {} ago", total, retention);
      }
    } catch (RuntimeException e) {
      failures.incrementAndGet();
      log.warn("retention purge failed: {}", e.toString());
    }
  }

  /** Messages and conversations the retention purge has deleted since this server started. */
  public long purgedTotal() {
    return purged.get();
  }

  /** Expired memories this server has deleted since it started. */
  public long deletedTotal() {
    return deleted.get();
  }

  /** Rounds started since start-up, including skipped and failed ones (metrics). */
  public long roundsTotal() {
    return rounds.get();
  }

  /** Sweeps and purges that failed (the database was unreachable, say) since start-up (metrics). */
  public long failuresTotal() {
    return failures.get();
  }

  @Override
  public void close() {
    timer.shutdownNow();
    try {
      timer.awaitTermination(5, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}

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
 * back short. Only one server of those sharing a database sweeps at a time: a round runs under the
 * {@link SweepLock}, held from its first batch to its last, and a server that does not get it skips
 * the round. Every round that deleted something logs how many rows of which kind (never their
 * content), also when it ends early. Expired rows are invisible to reads already, so sweeping late
 * is harmless.
 */
public final class ExpirySweeper implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(ExpirySweeper.class);
  /** A round stops after this many batches, so one huge backlog cannot pin a connection for long. */
  private static final int MAX_BATCHES_PER_ROUND = 100;

  private final MemoryStore store;
  private final ConversationStore conversations;
  private final SweepLock lock;
  private final Duration retention;
  private final int batch;
  private final ScheduledExecutorService timer;
  private final AtomicLong deleted = new AtomicLong();
  private final AtomicLong rounds = new AtomicLong();
  private final AtomicLong failures = new AtomicLong();
  private final AtomicLong purged = new AtomicLong();

  /** {@code retention} zero keeps soft-deleted conversations until their customer is erased. */
  public ExpirySweeper(MemoryStore store, ConversationStore conversations, SweepLock lock, Duration interval,
      int batch, Duration retention) {
    this.store = store;
    this.conversations = conversations;
    this.lock = lock;
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
   * deleted, -1 if another server holds the lock; the retention purge follows under the same lock.
   */
  public long sweep() {
    rounds.incrementAndGet();
    long[] memories = {0};
    long[] purgedRows = {0};
    String ended = "";
    try (SweepLock.Held held = lock.tryAcquire()) {
      if (held == null) {
        return -1; // another server is sweeping this round
      }
      boolean whole = batches(held, store::sweepExpired, memories);
      if (!whole) {
        ended = " (the round lost its lock and stopped early)";
      } else if (!retention.isZero() && !batches(held, n -> conversations.purgeDeleted(retention, n), purgedRows)) {
        ended = " (the round lost its lock and stopped early)";
      }
    } catch (java.sql.SQLException | RuntimeException e) {
      // The database may be down for a moment; the next round tries again.
      failures.incrementAndGet();
      ended = " (then failed: " + e.getClass().getSimpleName() + ")";
      log.warn("expiry sweep failed: {}", e.toString());
    } finally {
      deleted.addAndGet(memories[0]);
      purged.addAndGet(purgedRows[0]);
      if (memories[0] > 0 || purgedRows[0] > 0) {
        log.info("expiry sweep deleted {} expired memories and {} rows of conversations deleted over {} ago{}",
            memories[0], purgedRows[0], retention, ended);
      }
    }
    return memories[0];
  }

  /**
   * Runs batches until one comes back short (or the round's cap), adding to {@code total} as each
   * commits; false if the lock was lost between two batches.
   */
  private boolean batches(SweepLock.Held held, java.util.function.IntUnaryOperator oneBatch, long[] total) {
    for (int i = 0; i < MAX_BATCHES_PER_ROUND; i++) {
      if (!held.stillHeld()) {
        return false;
      }
      int n = oneBatch.applyAsInt(batch);
      total[0] += n;
      if (n < batch) {
        break;
      }
    }
    return true;
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

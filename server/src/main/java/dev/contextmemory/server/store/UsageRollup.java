package dev.contextmemory.server.store;

import java.time.Duration;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Refreshes the usage rollup (V7_1's materialized views behind GetUsageMetrics) every interval, on
 * a thread of its own. Of several servers on one database, the one that gets the advisory lock
 * refreshes and the others skip the round, so the views are refreshed about once per interval
 * whatever the number of replicas. A refresh reads every conversation, message and memory (about
 * 1.5 s for 1,000,000 messages on an idle 2-core machine, docs/architecture.md "Usage metrics"),
 * which is why it runs on a schedule and not on the write path.
 */
public final class UsageRollup implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(UsageRollup.class);

  private final UsageStore store;
  private final ScheduledExecutorService timer;
  private final AtomicLong refreshes = new AtomicLong();
  private final AtomicLong failures = new AtomicLong();

  public UsageRollup(UsageStore store, Duration interval) {
    this.store = store;
    this.timer = Executors.newSingleThreadScheduledExecutor(r -> {
      Thread t = new Thread(r, "usage-rollup");
      t.setDaemon(true);
      return t;
    });
    timer.scheduleWithFixedDelay(this::refresh, interval.toMillis(), interval.toMillis(), TimeUnit.MILLISECONDS);
  }

  /**
   * One refresh; public so tests and operators' tooling can make the figures current. Returns
   * whether this server refreshed (false: another server held the lock, or the refresh failed).
   */
  public boolean refresh() {
    try {
      long started = System.nanoTime();
      boolean done = store.refresh();
      if (done) {
        refreshes.incrementAndGet();
        log.debug("usage rollup refreshed in {} ms", (System.nanoTime() - started) / 1_000_000);
      }
      return done;
    } catch (RuntimeException e) {
      // The database may be down for a moment; the next round tries again.
      failures.incrementAndGet();
      log.warn("usage rollup refresh failed: {}", e.toString());
      return false;
    }
  }

  /** Refreshes this server has done since it started. */
  public long refreshesTotal() {
    return refreshes.get();
  }

  /** Refreshes that failed since start-up. */
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

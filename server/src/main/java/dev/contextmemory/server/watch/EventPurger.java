package dev.contextmemory.server.watch;

import dev.contextmemory.server.store.ConversationEvents;
import java.time.Duration;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Keeps conversation_events bounded: every interval, events older than the retention go in
 * batches, each its own short transaction under an advisory lock (one server of those sharing a
 * database purges at a time), until a batch comes back short or the round's batch budget is spent.
 * A resume cursor below what was purged answers CURSOR_EXPIRED.
 */
public final class EventPurger implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(EventPurger.class);
  private static final int BATCH = 5000;
  private static final int MAX_BATCHES_PER_ROUND = 100;

  private final ConversationEvents events;
  private final Duration retention;
  private final ScheduledExecutorService timer;
  private final AtomicLong purged = new AtomicLong();

  public EventPurger(ConversationEvents events, Duration retention, Duration interval) {
    this.events = events;
    this.retention = retention;
    this.timer = Executors.newSingleThreadScheduledExecutor(r -> {
      Thread t = new Thread(r, "watch-event-purge");
      t.setDaemon(true);
      return t;
    });
    timer.scheduleWithFixedDelay(this::purge, interval.toMillis(), interval.toMillis(), TimeUnit.MILLISECONDS);
  }

  /** One round; returns the events deleted, -1 if another server holds the lock. */
  public long purge() {
    long total = 0;
    try {
      for (int i = 0; i < MAX_BATCHES_PER_ROUND; i++) {
        int n = events.purge(retention, BATCH);
        if (n < 0) {
          return i == 0 ? -1 : total;
        }
        total += n;
        if (n < BATCH) {
          break;
        }
      }
    } catch (RuntimeException e) {
      log.warn("watch event purge failed (next round retries): {}", e.toString());
    }
    if (total > 0) {
      purged.addAndGet(total);
      log.info("watch event purge deleted {} events older than {}", total, retention);
    }
    return total;
  }

  /** Events purged by this server since it started (metrics). */
  public long purgedTotal() {
    return purged.get();
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

package dev.contextmemory.server.watch;

import dev.contextmemory.server.store.ConversationEvents;
import java.time.Duration;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Numbers committed conversation events ({@link ConversationEvents#sequence}) on a thread of its
 * own, {@code watch-sequencer}: a pass soon after a local write that recorded events (coalesced: at
 * most one pass queued), and every second for other replicas' writes and to retry a failed pass.
 * After a pass that numbered events it calls {@code onNumbered} (the poller reads them without
 * waiting for its NOTIFY to come back).
 *
 * <p>Writes that commit while a pass runs share the next pass: with 4 writers appending back to
 * back, 400 appends took 122 passes (2026-11-30). A minimum gap of 5 ms between passes, tried
 * then, saved only a fifth of them (96) for up to 5 ms of added watch latency, so a pass starts
 * as soon as it is woken.
 */
final class EventSequencer implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(EventSequencer.class);
  private static final Duration FALLBACK_INTERVAL = Duration.ofSeconds(1);

  private final ConversationEvents events;
  private final Runnable onNumbered;
  private final AtomicLong failures;
  private final ScheduledExecutorService thread =
      Executors.newSingleThreadScheduledExecutor(WatchHub.daemon("watch-sequencer"));
  private final AtomicBoolean pending = new AtomicBoolean();
  private final AtomicLong passes = new AtomicLong();
  private volatile boolean stopping;

  /** @param failures counts failed passes (shared with the hub's other failures, for metrics) */
  EventSequencer(ConversationEvents events, Runnable onNumbered, AtomicLong failures) {
    this.events = events;
    this.onNumbered = onNumbered;
    this.failures = failures;
    thread.scheduleWithFixedDelay(this::wake, FALLBACK_INTERVAL.toMillis(), FALLBACK_INTERVAL.toMillis(),
        TimeUnit.MILLISECONDS);
  }

  /** A write committed events: number them soon. */
  void wake() {
    if (pending.compareAndSet(false, true)) {
      try {
        thread.execute(this::pass);
      } catch (RejectedExecutionException stopped) {
        pending.set(false);
      }
    }
  }

  private void pass() {
    pending.set(false);
    try {
      int total = 0;
      int n;
      do {
        n = events.sequence(WatchHub.BATCH);
        total += n;
      } while (n == WatchHub.BATCH && !stopping);
      if (total > 0) {
        onNumbered.run();
      }
    } catch (RuntimeException e) {
      failures.incrementAndGet();
      log.warn("watch sequencer pass failed (retried within a second): {}", e.toString());
    } finally {
      passes.incrementAndGet();
    }
  }

  /** Passes run since start, empty ones included (metrics: passes per append show the batching). */
  long passes() {
    return passes.get();
  }

  @Override
  public void close() {
    stopping = true;
    thread.shutdownNow();
    try {
      thread.awaitTermination(5, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}

package dev.contextmemory.server.auth;

import dev.contextmemory.server.store.ApiKeyStore;
import java.time.Duration;
import java.time.Instant;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Keeps {@code api_keys.last_used_at} without a write on the request path: a use is noted in memory
 * (at most once a minute per key) and a background thread stamps the noted keys in one statement
 * every flush interval. A failed flush is logged and dropped: a last-use time is a hint for
 * operators, not worth a retry queue.
 */
final class LastUseRecorder implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(LastUseRecorder.class);
  private static final Duration RESOLUTION = Duration.ofMinutes(1);
  /** Bounds memory under a flood of distinct valid keys; beyond it uses go unrecorded until a flush. */
  private static final int MAX_TRACKED_KEYS = 100_000;

  private final ApiKeyStore store;
  private final Map<String, Instant> pending = new ConcurrentHashMap<>();
  private final Map<String, Instant> lastNoted = new ConcurrentHashMap<>();
  private final ScheduledExecutorService flusher;

  LastUseRecorder(ApiKeyStore store, Duration flushInterval) {
    this.store = store;
    this.flusher = Executors.newSingleThreadScheduledExecutor(r -> {
      Thread t = new Thread(r, "api-key-last-use");
      t.setDaemon(true);
      return t;
    });
    flusher.scheduleWithFixedDelay(this::flush, flushInterval.toMillis(), flushInterval.toMillis(),
        TimeUnit.MILLISECONDS);
  }

  void noteUse(String prefix, Instant now) {
    Instant last = lastNoted.get(prefix);
    if (last != null && last.plus(RESOLUTION).isAfter(now)) {
      return;
    }
    if (last == null && lastNoted.size() >= MAX_TRACKED_KEYS) {
      return;
    }
    lastNoted.put(prefix, now);
    pending.put(prefix, now);
  }

  void flush() {
    Map<String, Instant> batch = new HashMap<>();
    for (String prefix : pending.keySet()) {
      Instant t = pending.remove(prefix);
      if (t != null) {
        batch.put(prefix, t);
      }
    }
    Instant horizon = Instant.now().minus(RESOLUTION);
    lastNoted.values().removeIf(t -> t.isBefore(horizon));
    if (batch.isEmpty()) {
      return;
    }
    try {
      store.touchLastUsed(batch);
    } catch (RuntimeException e) {
      log.warn("could not record the last use of {} API key(s): {}", batch.size(), e.toString());
    }
  }

  @Override
  public void close() {
    flusher.shutdownNow();
    flush();
  }
}

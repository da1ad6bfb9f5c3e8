package dev.contextmemory.server.config;

import java.time.Duration;

/**
 * WatchConversations' settings (README "Configuration", docs/operations.md "Watch streams").
 *
 * @param bufferEvents events a stream may hold that its client has not read yet; past it the stream
 *     ends with RESOURCE_EXHAUSTED and its resume cursor
 * @param maxStreamsPerTenant open streams a tenant may have (0: no cap)
 * @param checkpointInterval how long a stream may stay silent before it gets a CHECKPOINT
 * @param retention how long events are kept for resuming streams (older cursors: CURSOR_EXPIRED)
 * @param purgeInterval how often the retention purge runs
 */
public record WatchSettings(int bufferEvents, int maxStreamsPerTenant, Duration checkpointInterval,
    Duration retention, Duration purgeInterval) {

  static WatchSettings read(Settings.Reader r) {
    return new WatchSettings(
        r.integer("WATCH_BUFFER_EVENTS", 1000, 10, 100_000),
        r.integer("WATCH_MAX_STREAMS_PER_TENANT", 100, 0, 100_000),
        Duration.ofSeconds(r.integer("WATCH_CHECKPOINT_SECONDS", 30, 1, 3600)),
        Duration.ofHours(r.integer("WATCH_RETENTION_HOURS", 24, 1, 24 * 90)),
        Duration.ofMillis(r.integer("WATCH_PURGE_INTERVAL_MS", 60_000, 100, 86_400_000)));
  }
}

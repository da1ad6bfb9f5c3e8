package dev.contextmemory.server.domain;

import java.time.Duration;
import java.time.Instant;
import java.util.List;

/** GetUsageMetrics' answer. Channels are stored names; "" is no channel (ungrouped, or memories without one). */
public record Usage(List<Bucket> buckets, Instant refreshedAt) {

  /** Counts of one bucket (and channel); the waits are null when no handoff was accepted in it. */
  public record Bucket(Instant start, String channel, long conversationsStarted, long conversationsWithEmbedding,
      long conversationsClosed, long messagesUser, long messagesAssistant, long messagesSystem, long messagesTool,
      long messagesHumanAgent, long memoriesCreated, long memoriesWithEmbedding, long handoffsRequested,
      long handoffsAccepted, long handoffsCompleted, Duration medianWaitToAccept, Duration p90WaitToAccept) {}

  /** What to report: [start, end) whole buckets of {@code width} (an hour or a day), maybe per channel. */
  public record Query(Instant start, Instant end, Duration width, boolean byChannel) {}
}

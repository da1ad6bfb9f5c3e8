package dev.contextmemory.server.domain;

import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.UUID;

/**
 * One handoff of a conversation to a human agent. {@code state} and {@code channel} hold the stored
 * names (requested, accepted, completed, cancelled; sms, ...); actors are API key prefixes. Fields
 * of transitions not taken yet are null.
 */
public record Handoff(
    UUID id,
    UUID conversationId,
    UUID customerId,
    String channel,
    String state,
    String reason,
    int priority,
    String requestId,
    Instant requestedAt,
    String requestedBy,
    String assigneeId,
    Instant acceptedAt,
    String acceptedBy,
    Instant completedAt,
    String completedBy,
    String resolution,
    boolean closedConversation,
    Instant cancelledAt,
    String cancelledBy) {

  /** A transition's answer: the handoff as stored, and whether the call only replayed an earlier one. */
  public record Result(Handoff handoff, boolean replayed) {}

  /** CompleteHandoff's answer: also the conversation, back with the AI (and maybe closed). */
  public record Completed(Handoff handoff, Conversation conversation, boolean replayed) {}

  /** A waiting handoff and how long it has waited, by the database's clock. */
  public record Queued(Handoff handoff, Duration waited) {}

  /** A page of the queue and the position after its last entry (null at the end). */
  public record QueuePage(List<Queued> handoffs, QueueCursor next) {}

  /** Queue keyset position: the queue's order is (priority DESC, requested_at, id). */
  public record QueueCursor(int priority, Instant requestedAt, UUID id) {}

  /** A page of a conversation's history, newest first, and the position after it (null at the end). */
  public record Page(List<Handoff> handoffs, Cursor next) {}

  /** History keyset position: (requested_at, id) of the last row, descending. */
  public record Cursor(Instant requestedAt, UUID id) {}
}

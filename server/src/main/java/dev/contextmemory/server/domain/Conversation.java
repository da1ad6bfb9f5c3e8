package dev.contextmemory.server.domain;

import java.time.Instant;
import java.util.List;
import java.util.UUID;

/**
 * A conversation row. {@code channel} holds the stored name (sms, messenger, ...); {@code
 * summaryEmbedding} is null unless it was asked for, {@code hasSummaryEmbedding} always tells;
 * {@code handoffState} is the stored name (ai, requested, accepted); {@code summaryEmbeddingState}
 * too (none, pending, ready, failed), and {@code summaryEmbeddingModel} is null without an embedding.
 */
public record Conversation(
    UUID id,
    UUID customerId,
    String channel,
    String threadKey,
    Instant startedAt,
    Instant lastMessageAt,
    Instant closedAt,
    long messageCount,
    String summary,
    float[] summaryEmbedding,
    boolean hasSummaryEmbedding,
    String metadataJson,
    Instant createdAt,
    Instant updatedAt,
    String handoffState,
    String summaryEmbeddingState,
    String summaryEmbeddingModel) {

  /** GetOrCreateOpenConversation's answer. */
  public record Opened(Conversation conversation, boolean created) {}

  /** ListConversations filters; null means "any". */
  public record Filter(String status, String channel, String metadataJson) {}

  /** A page, newest last message first, and the position after its last row (null at the end). */
  public record Page(List<Conversation> conversations, Cursor next) {}

  /** Keyset position: (last_message_at, id) of the last row; the time is null for empty ones. */
  public record Cursor(Instant lastMessageAt, UUID id) {}

  /** The new values of the fields an update writes; values of fields not in {@code fields} are ignored. */
  public record Change(String summary, float[] summaryEmbedding, String metadataJson,
      java.util.Set<ConversationField> fields) {}

  /** GetConversationStats' answer. */
  public record Stats(Instant windowStart, Instant windowEnd, long total, long open, long closed,
      long withSummaryEmbedding, long messagesUser, long messagesAssistant, long messagesSystem,
      long messagesTool, long messagesHumanAgent, long handoffsRequested, long handoffsAccepted,
      long handoffsCompleted, long conversationsHandoffComplete) {}
}

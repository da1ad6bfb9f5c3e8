package dev.contextmemory.server.domain;

import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Set;
import java.util.UUID;

/**
 * A memory row. {@code kind} holds the stored name (fact, preference, ...); {@code embedding} is
 * null unless it was asked for, {@code hasEmbedding} always tells.
 */
public record Memory(
    UUID id,
    UUID customerId,
    UUID conversationId,
    String kind,
    String key,
    String content,
    String metadataJson,
    float[] embedding,
    boolean hasEmbedding,
    float importance,
    String source,
    Instant expiresAt,
    int confirmCount,
    Instant lastConfirmedAt,
    Instant createdAt,
    Instant updatedAt) {

  /**
   * The values a create, upsert or update writes; only {@code fields} are written by an update.
   * {@code importance} null means "not given".
   */
  public record Draft(UUID conversationId, String kind, String key, String content, String metadataJson,
      float[] embedding, Float importance, String source, Instant expiresAt, Set<MemoryField> fields) {}

  /** UpsertMemory's answer. */
  public record Upserted(Memory memory, boolean created) {}

  /**
   * ListMemories filters; empty or null means "any". {@code asOf} non-null lists the versions valid
   * at that time instead of the live memories.
   */
  public record Filter(List<String> kinds, UUID conversationId, String key, String metadataJson, Instant asOf) {}

  /** A page, newest first, and the position after its last row (null at the end). */
  public record Page(List<Memory> memories, Cursor next) {}

  /** Keyset position: (created_at, id) of the last row. */
  public record Cursor(Instant createdAt, UUID id) {}

  /** How SearchMemories matches. */
  public enum Mode { VECTOR, TEXT, HYBRID }

  /**
   * A search: mode, query parts, size, cut-off and filters (customer null = whole tenant);
   * {@code asOf} non-null searches the versions valid at that time.
   */
  public record Search(UUID customerId, Mode mode, String text, float[] embedding, int topK, double minScore,
      List<String> kinds, String metadataJson, Instant asOf) {}

  /**
   * A search hit with its component scores; ranks are 1-based, 0 when the memory is not in that
   * list.
   */
  public record Hit(Memory memory, double score, double vectorSimilarity, int vectorRank, double textScore,
      int textRank) {}

  /** FetchContext's memory: the components of its blended score. */
  public record Scored(Memory memory, double finalScore, double relevance, double vectorSimilarity, double textScore,
      double importance, double recency, double confirmation) {}

  /** One ConfirmMemories item. {@code extendExpiry} null means no change. */
  public record Confirmation(UUID memoryId, boolean confirmed, Duration extendExpiry, boolean deleteOnReject) {}

  /** What ConfirmMemories did to one memory; {@code memory} null when deleted or not found. */
  public record ConfirmationResult(UUID memoryId, Effect effect, Memory memory) {}

  /** The effects of ConfirmMemories. */
  public enum Effect { CONFIRMED, DEMOTED, DELETED, NOT_FOUND }
}

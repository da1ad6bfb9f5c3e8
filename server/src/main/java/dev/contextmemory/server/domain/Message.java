package dev.contextmemory.server.domain;

import java.time.Instant;
import java.util.List;
import java.util.UUID;

/**
 * A stored message. {@code role} holds the stored name (user, assistant, system, tool); tool calls
 * and attachments are kept exactly as given (arguments are JSON text, never parsed).
 */
public record Message(
    UUID id,
    UUID conversationId,
    long sequence,
    String role,
    String content,
    List<ToolCall> toolCalls,
    String toolCallId,
    List<Attachment> attachments,
    String metadataJson,
    String idempotencyKey,
    Instant createdAt) {

  /** An assistant's call of a tool; {@code arguments} is the model's JSON text, byte for byte. */
  public record ToolCall(String id, String name, String arguments) {}

  /** A reference to a file sent with a message; 0 size means unknown. */
  public record Attachment(String uri, String mediaType, long sizeBytes, String name) {}

  /**
   * A message to append, validated. {@code createdAt} null means the server's time; {@code
   * idempotencyKey} null means none.
   */
  public record Draft(String role, String content, List<ToolCall> toolCalls, String toolCallId,
      List<Attachment> attachments, String metadataJson, String idempotencyKey, Instant createdAt) {}

  /** AppendMessage's answer: the stored message, and whether it was stored by an earlier call. */
  public record Appended(Message message, boolean replayed) {}

  /** One item's outcome in a batch append. */
  public record Stored(UUID id, long sequence, Instant createdAt, boolean replayed) {}

  /** ListMessages and SearchMessages filters; empty roles and null bounds mean "any". */
  public record Filter(List<String> roles, Instant from, Instant until) {}

  /** A page of messages and the sequence after which the next page starts (null at the end). */
  public record Page(List<Message> messages, Long nextAfterSequence) {}

  /** A search hit: the message, its customer, its rank and a highlighted excerpt. */
  public record Hit(Message message, UUID customerId, double score, String snippet) {}

  /** A page of hits and the position after its last hit (null at the end). */
  public record HitPage(List<Hit> hits, HitCursor next) {}

  /** Keyset position in a ranking: (score, created_at, id) of the last hit. */
  public record HitCursor(double score, Instant createdAt, UUID id) {}
}

package dev.contextmemory.server.domain;

import java.util.UUID;

/**
 * One validated item of ImportMessages: its position in the stream, its customer (by id or by a
 * normalized contact key, exactly one set), its thread, the message, and the metadata for a
 * conversation it creates.
 */
public record ImportItem(long index, UUID customerId, ContactKey contactKey, String channel,
    String threadKey, Message.Draft message, String conversationMetadataJson) {

  /** What one chunk, or a whole import, did. */
  public record Outcome(long conversationsCreated, long messagesCreated, long messagesSkipped,
      java.util.List<Failure> failures) {}

  /** An item that was not imported, with the field to blame (may be empty) and the reason. */
  public record Failure(long index, String field, String reason, String description) {}
}

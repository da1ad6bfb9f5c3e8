package dev.contextmemory.server.domain;

import java.time.Instant;
import java.util.UUID;

/**
 * One committed change to a conversation, as WatchConversations delivers it. {@code position} is
 * its place in the global order of events (assigned after commit, see ConversationEvents).
 * {@code message} is set for MESSAGE_APPENDED (null if the message was erased since), {@code
 * conversation} for the lifecycle kinds (its state when the event is read, null once erased),
 * {@code payloadJson} for HANDOFF_CHANGED; {@code messageSequence} names the message (0 otherwise).
 */
public record ConversationEvent(
    long position,
    String tenant,
    UUID conversationId,
    UUID customerId,
    String channel,
    Kind kind,
    Instant occurredAt,
    Message message,
    Conversation conversation,
    String payloadJson,
    long messageSequence) {

  /** This event with its message or conversation read. */
  public ConversationEvent withContent(Message m, Conversation c) {
    return new ConversationEvent(position, tenant, conversationId, customerId, channel, kind, occurredAt, m, c,
        payloadJson, messageSequence);
  }

  /** The kinds of change, with the names stored in conversation_events.kind. */
  public enum Kind {
    MESSAGE_APPENDED("message_appended"),
    CONVERSATION_OPENED("conversation_opened"),
    CONVERSATION_CLOSED("conversation_closed"),
    CONVERSATION_UPDATED("conversation_updated"),
    CONVERSATION_DELETED("conversation_deleted"),
    HANDOFF_CHANGED("handoff_changed");

    private final String stored;

    Kind(String stored) {
      this.stored = stored;
    }

    public String stored() {
      return stored;
    }

    public static Kind fromStored(String s) {
      for (Kind k : values()) {
        if (k.stored.equals(s)) {
          return k;
        }
      }
      throw new IllegalArgumentException("unknown event kind " + s);
    }
  }

  /**
   * What a subscriber wants: every non-null part must match (all null: every event of the tenant).
   * {@code handoffQueue} keeps only HANDOFF_CHANGED events.
   */
  public record Filter(UUID conversationId, UUID customerId, String channel, boolean handoffQueue) {
    public boolean matches(ConversationEvent e) {
      return (conversationId == null || conversationId.equals(e.conversationId()))
          && (customerId == null || customerId.equals(e.customerId()))
          && (channel == null || channel.equals(e.channel()))
          && (!handoffQueue || e.kind() == Kind.HANDOFF_CHANGED);
    }
  }
}

package dev.contextmemory.server.grpc;

import dev.contextmemory.server.domain.Conversation;
import dev.contextmemory.server.domain.Message;
import dev.contextmemory.v1.Attachment;
import dev.contextmemory.v1.Channel;
import dev.contextmemory.v1.ConversationStatus;
import dev.contextmemory.v1.MessageRole;
import dev.contextmemory.v1.ToolCall;

/** Conversations and messages between their stored form and proto, enums included. */
final class ConversationMapping {
  private ConversationMapping() {}

  /** The stored channel name, or null for UNSPECIFIED or a value this server does not know. */
  static String channel(Channel c) {
    return switch (c) {
      case CHANNEL_SMS -> "sms";
      case CHANNEL_MESSENGER -> "messenger";
      case CHANNEL_WEB -> "web";
      case CHANNEL_VOICE -> "voice";
      case CHANNEL_EMAIL -> "email";
      case CHANNEL_OTHER -> "other";
      case CHANNEL_UNSPECIFIED, UNRECOGNIZED -> null;
    };
  }

  static Channel channel(String stored) {
    return switch (stored) {
      case "sms" -> Channel.CHANNEL_SMS;
      case "messenger" -> Channel.CHANNEL_MESSENGER;
      case "web" -> Channel.CHANNEL_WEB;
      case "voice" -> Channel.CHANNEL_VOICE;
      case "email" -> Channel.CHANNEL_EMAIL;
      default -> Channel.CHANNEL_OTHER;
    };
  }

  /** The stored role name, or null for UNSPECIFIED or a value this server does not know. */
  static String role(MessageRole r) {
    return switch (r) {
      case MESSAGE_ROLE_USER -> "user";
      case MESSAGE_ROLE_ASSISTANT -> "assistant";
      case MESSAGE_ROLE_SYSTEM -> "system";
      case MESSAGE_ROLE_TOOL -> "tool";
      case MESSAGE_ROLE_HUMAN_AGENT -> "human_agent";
      case MESSAGE_ROLE_UNSPECIFIED, UNRECOGNIZED -> null;
    };
  }

  static MessageRole role(String stored) {
    return switch (stored) {
      case "user" -> MessageRole.MESSAGE_ROLE_USER;
      case "assistant" -> MessageRole.MESSAGE_ROLE_ASSISTANT;
      case "system" -> MessageRole.MESSAGE_ROLE_SYSTEM;
      case "human_agent" -> MessageRole.MESSAGE_ROLE_HUMAN_AGENT;
      default -> MessageRole.MESSAGE_ROLE_TOOL;
    };
  }

  static dev.contextmemory.v1.Conversation conversation(Conversation c) {
    var b = dev.contextmemory.v1.Conversation.newBuilder()
        .setId(c.id().toString())
        .setCustomerId(c.customerId().toString())
        .setChannel(channel(c.channel()))
        .setThreadKey(c.threadKey())
        .setStatus(c.closedAt() == null ? ConversationStatus.CONVERSATION_STATUS_OPEN
            : ConversationStatus.CONVERSATION_STATUS_CLOSED)
        .setStartTime(ProtoMapping.timestamp(c.startedAt()))
        .setMessageCount(c.messageCount())
        .setSummary(c.summary())
        .setHasSummaryEmbedding(c.hasSummaryEmbedding())
        .setMetadata(ProtoMapping.struct(c.metadataJson()))
        .setCreateTime(ProtoMapping.timestamp(c.createdAt()))
        .setUpdateTime(ProtoMapping.timestamp(c.updatedAt()))
        .setHandoffState(HandoffMapping.conversationState(c.handoffState()))
        .setSummaryEmbeddingState(MemoryMapping.embeddingState(c.summaryEmbeddingState()));
    if (c.summaryEmbeddingModel() != null) {
      b.setSummaryEmbeddingModel(c.summaryEmbeddingModel());
    }
    if (c.lastMessageAt() != null) {
      b.setLastMessageTime(ProtoMapping.timestamp(c.lastMessageAt()));
    }
    if (c.closedAt() != null) {
      b.setCloseTime(ProtoMapping.timestamp(c.closedAt()));
    }
    if (c.summaryEmbedding() != null) {
      for (float x : c.summaryEmbedding()) {
        b.addSummaryEmbedding(x);
      }
    }
    return b.build();
  }

  static dev.contextmemory.v1.Message message(Message m) {
    var b = dev.contextmemory.v1.Message.newBuilder()
        .setId(m.id().toString())
        .setConversationId(m.conversationId().toString())
        .setSequence(m.sequence())
        .setRole(role(m.role()))
        .setContent(m.content())
        .setMetadata(ProtoMapping.struct(m.metadataJson()))
        .setCreateTime(ProtoMapping.timestamp(m.createdAt()));
    for (Message.ToolCall t : m.toolCalls()) {
      b.addToolCalls(ToolCall.newBuilder().setId(t.id()).setName(t.name()).setArguments(t.arguments()));
    }
    if (m.toolCallId() != null) {
      b.setToolCallId(m.toolCallId());
    }
    for (Message.Attachment a : m.attachments()) {
      b.addAttachments(Attachment.newBuilder().setUri(a.uri()).setMediaType(a.mediaType())
          .setSizeBytes(a.sizeBytes()).setName(a.name()));
    }
    if (m.idempotencyKey() != null) {
      b.setIdempotencyKey(m.idempotencyKey());
    }
    return b.build();
  }
}

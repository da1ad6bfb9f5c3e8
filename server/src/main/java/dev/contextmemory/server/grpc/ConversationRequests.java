package dev.contextmemory.server.grpc;

import dev.contextmemory.server.domain.Message;
import dev.contextmemory.v1.Attachment;
import dev.contextmemory.v1.Channel;
import dev.contextmemory.v1.MessageRole;
import dev.contextmemory.v1.ToolCall;
import java.net.URI;
import java.net.URISyntaxException;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;

/** Field checks shared by ConversationService's RPCs and its import stream: messages, channels, filters. */
final class ConversationRequests {
  static final int MAX_THREAD_KEY_LENGTH = 256;
  static final int MAX_CONTENT_LENGTH = 32_768;
  static final int MAX_TOOL_CALLS = 128;
  static final int MAX_TOOL_ID_LENGTH = 256;
  static final int MAX_TOOL_ARGUMENTS_LENGTH = 65_536;
  static final int MAX_ATTACHMENTS = 32;
  static final int MAX_URI_LENGTH = 2_048;
  static final int MAX_ATTACHMENT_TEXT_LENGTH = 255;
  static final int MAX_IDEMPOTENCY_KEY_LENGTH = 128;
  /** Client clocks drift; a timestamp further ahead than this is a bug, not drift. */
  static final Duration MAX_CLOCK_SKEW = Duration.ofMinutes(5);

  private ConversationRequests() {}

  static String channel(Validator v, String field, Channel c) {
    String stored = ConversationMapping.channel(c);
    if (stored == null) {
      v.add(field, c == Channel.CHANNEL_UNSPECIFIED ? "is required" : "unknown channel " + c);
    }
    return stored;
  }

  /** Thread keys are compared byte for byte, so they are taken as given, not stripped. */
  static String threadKey(Validator v, String field, String key) {
    if (key.isEmpty()) {
      v.add(field, "is required");
      return null;
    }
    return v.raw(field, key, MAX_THREAD_KEY_LENGTH);
  }


  /**
   * A message to append. Content, tool calls and attachments are checked but never rewritten: what
   * the agent sent is what it reads back. In an import the key and the original time are required.
   */
  static Message.Draft message(Validator v, String prefix, dev.contextmemory.v1.Message m, boolean importing,
      Instant now) {
    String role = ConversationMapping.role(m.getRole());
    if (role == null) {
      v.add(prefix + ".role", m.getRole() == MessageRole.MESSAGE_ROLE_UNSPECIFIED ? "is required"
          : "unknown role " + m.getRoleValue());
    }
    String content = v.raw(prefix + ".content", m.getContent(), MAX_CONTENT_LENGTH);

    List<Message.ToolCall> toolCalls = new ArrayList<>(m.getToolCallsCount());
    if (m.getToolCallsCount() > 0 && role != null && !role.equals("assistant")) {
      v.add(prefix + ".tool_calls", "are allowed only on ASSISTANT messages");
    } else if (m.getToolCallsCount() > MAX_TOOL_CALLS) {
      v.add(prefix + ".tool_calls", "must hold at most " + MAX_TOOL_CALLS + " calls");
    } else {
      for (int i = 0; i < m.getToolCallsCount(); i++) {
        ToolCall t = m.getToolCalls(i);
        String f = prefix + ".tool_calls[" + i + "]";
        String id = required(v, f + ".id", t.getId(), MAX_TOOL_ID_LENGTH);
        String name = required(v, f + ".name", t.getName(), MAX_TOOL_ID_LENGTH);
        String args = v.raw(f + ".arguments", t.getArguments(), MAX_TOOL_ARGUMENTS_LENGTH);
        toolCalls.add(new Message.ToolCall(id, name, args));
      }
    }

    String toolCallId = null;
    if ("tool".equals(role)) {
      toolCallId = required(v, prefix + ".tool_call_id", m.getToolCallId(), MAX_TOOL_ID_LENGTH);
    } else if (!m.getToolCallId().isEmpty()) {
      v.add(prefix + ".tool_call_id", "is allowed only on TOOL messages");
    }

    List<Message.Attachment> attachments = new ArrayList<>(m.getAttachmentsCount());
    if (m.getAttachmentsCount() > MAX_ATTACHMENTS) {
      v.add(prefix + ".attachments", "must hold at most " + MAX_ATTACHMENTS + " attachments");
    } else {
      for (int i = 0; i < m.getAttachmentsCount(); i++) {
        Attachment a = m.getAttachments(i);
        String f = prefix + ".attachments[" + i + "]";
        String uri = required(v, f + ".uri", a.getUri(), MAX_URI_LENGTH);
        if (uri != null && !isAbsoluteUri(uri)) {
          v.add(f + ".uri", "must be an absolute URI like https://example.com/photo.jpg");
        }
        String type = v.raw(f + ".media_type", a.getMediaType(), MAX_ATTACHMENT_TEXT_LENGTH);
        String name = v.raw(f + ".name", a.getName(), MAX_ATTACHMENT_TEXT_LENGTH);
        if (a.getSizeBytes() < 0) {
          v.add(f + ".size_bytes", "must not be negative (0 means unknown)");
        }
        attachments.add(new Message.Attachment(uri, type, a.getSizeBytes(), name));
      }
    }

    if (m.getContent().isEmpty() && m.getToolCallsCount() == 0 && m.getAttachmentsCount() == 0) {
      v.add(prefix + ".content", "is required unless the message has tool calls or attachments");
    }

    String metadata = v.metadata(prefix + ".metadata", m.getMetadata());
    String key = m.getIdempotencyKey().isEmpty() ? null
        : v.raw(prefix + ".idempotency_key", m.getIdempotencyKey(), MAX_IDEMPOTENCY_KEY_LENGTH);
    if (importing && m.getIdempotencyKey().isEmpty()) {
      v.add(prefix + ".idempotency_key", "is required in ImportMessages (it makes re-running an import safe)");
    }
    Instant createdAt = v.timestamp(prefix + ".create_time", m.hasCreateTime(), m.getCreateTime());
    if (createdAt != null && createdAt.isAfter(now.plus(MAX_CLOCK_SKEW))) {
      v.add(prefix + ".create_time", "must not be more than " + MAX_CLOCK_SKEW.toMinutes() + " minutes in the future");
    }
    if (importing && !m.hasCreateTime()) {
      v.add(prefix + ".create_time", "is required in ImportMessages (the message's original time)");
    }
    return new Message.Draft(role, content == null ? "" : content, toolCalls, toolCallId, attachments, metadata, key,
        createdAt);
  }

  private static String required(Validator v, String field, String s, int maxLength) {
    if (s.isEmpty()) {
      v.add(field, "is required");
      return null;
    }
    return v.raw(field, s, maxLength);
  }

  private static boolean isAbsoluteUri(String s) {
    try {
      return new URI(s).isAbsolute();
    } catch (URISyntaxException e) {
      return false;
    }
  }

  static Message.Filter filter(Validator v, List<Integer> roleValues, boolean hasRange,
      dev.contextmemory.v1.TimeRange range) {
    List<String> roles = new ArrayList<>();
    for (int i = 0; i < roleValues.size(); i++) {
      MessageRole r = MessageRole.forNumber(roleValues.get(i));
      String stored = r == null ? null : ConversationMapping.role(r);
      if (stored == null) {
        v.add("roles[" + i + "]", r == MessageRole.MESSAGE_ROLE_UNSPECIFIED
            ? "must not be MESSAGE_ROLE_UNSPECIFIED" : "unknown role " + roleValues.get(i));
      } else if (!roles.contains(stored)) {
        roles.add(stored);
      }
    }
    roles.sort(null); // the same set in any order is the same filter (and page-token fingerprint)
    Instant from = null;
    Instant until = null;
    if (hasRange) {
      from = v.timestamp("create_time_range.start_time", range.hasStartTime(), range.getStartTime());
      until = v.timestamp("create_time_range.end_time", range.hasEndTime(), range.getEndTime());
      if (from != null && until != null && !from.isBefore(until)) {
        v.add("create_time_range", "start_time must be before end_time");
      }
    }
    return new Message.Filter(List.copyOf(roles), from, until);
  }
}

package dev.contextmemory.server.store;

import com.google.gson.FieldNamingPolicy;
import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import com.google.gson.reflect.TypeToken;
import dev.contextmemory.server.domain.Message;
import java.lang.reflect.Type;
import java.util.List;

/**
 * Tool calls and attachments as the jsonb arrays of the messages table. A tool call's arguments are
 * a JSON string value, not a nested object, so the model's text (even malformed) is returned byte
 * for byte: jsonb keeps string values exactly, only object layout is normalized.
 */
final class MessageJson {
  private static final Gson GSON = new GsonBuilder()
      .setFieldNamingPolicy(FieldNamingPolicy.LOWER_CASE_WITH_UNDERSCORES)
      .disableHtmlEscaping()
      .create();
  private static final Type TOOL_CALLS = new TypeToken<List<Message.ToolCall>>() {}.getType();
  private static final Type ATTACHMENTS = new TypeToken<List<Message.Attachment>>() {}.getType();

  private MessageJson() {}

  /** The jsonb text of a list, or null for an empty one (the column is then SQL NULL). */
  static String write(List<?> items) {
    return items.isEmpty() ? null : GSON.toJson(items);
  }

  static List<Message.ToolCall> toolCalls(String json) {
    return json == null ? List.of() : List.copyOf(GSON.<List<Message.ToolCall>>fromJson(json, TOOL_CALLS));
  }

  static List<Message.Attachment> attachments(String json) {
    return json == null ? List.of() : List.copyOf(GSON.<List<Message.Attachment>>fromJson(json, ATTACHMENTS));
  }
}

package dev.contextmemory.mcp;

import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Message;
import com.google.protobuf.MessageOrBuilder;
import com.google.protobuf.util.JsonFormat;
import io.modelcontextprotocol.json.McpJsonMapper;
import io.modelcontextprotocol.json.TypeRef;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.Map;

/**
 * Tool arguments to requests and responses to structured content, through the standard proto3
 * JSON mapping (protobuf's JsonFormat) with the .proto field names: a tool argument is named as
 * the request field it fills, so the server's field violations ("messages[0].content") name the
 * argument to fix. Enum values are their proto names ("CHANNEL_SMS"); int64 values are strings;
 * fields at their default (false, 0, empty) are left out.
 */
final class Json {
  private static final TypeRef<Map<String, Object>> MAP = new TypeRef<>() {};

  private final McpJsonMapper mapper;
  private final JsonFormat.Parser parser = JsonFormat.parser();
  private final JsonFormat.Printer printer = JsonFormat.printer().preservingProtoFieldNames()
      .omittingInsignificantWhitespace();

  Json(McpJsonMapper mapper) {
    this.mapper = mapper;
  }

  McpJsonMapper mapper() {
    return mapper;
  }

  /** {@code arguments} merged into {@code prototype}'s values; unknown fields are an error. */
  @SuppressWarnings("unchecked")
  <Q extends Message> Q request(Map<String, Object> arguments, Q prototype) throws InvalidProtocolBufferException {
    Message.Builder b = prototype.toBuilder();
    if (arguments != null && !arguments.isEmpty()) {
      parser.merge(write(arguments), b);
    }
    return (Q) b.build();
  }

  /** The message as a JSON object. */
  Map<String, Object> object(MessageOrBuilder message) {
    return object(text(message));
  }

  /** The message as JSON text. */
  String text(MessageOrBuilder message) {
    try {
      return printer.print(message);
    } catch (InvalidProtocolBufferException e) {
      throw new IllegalStateException("a response that JsonFormat cannot print: " + e.getMessage(), e);
    }
  }

  /** JSON object text as a map. */
  Map<String, Object> object(String json) {
    try {
      return mapper.readValue(json, MAP);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  String write(Object value) {
    try {
      return mapper.writeValueAsString(value);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}

package dev.contextmemory.mcp;

import com.google.protobuf.Any;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.rpc.BadRequest;
import com.google.rpc.ErrorInfo;
import com.google.rpc.RetryInfo;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.protobuf.StatusProto;
import io.modelcontextprotocol.spec.McpSchema.CallToolResult;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A failed gRPC call as an MCP tool error ({@code isError: true}): one or two sentences a model
 * can act on, built from the status code, the server's description and its google.rpc details
 * (ErrorInfo reason, BadRequest field violations, RetryInfo delay), never a stack trace. The same
 * facts go into the structured content as {@code error}, for hosts that act on them in code.
 */
final class ToolErrors {
  private ToolErrors() {}

  /** The error result of {@code tool}'s failed call. */
  static CallToolResult of(String tool, StatusRuntimeException e) {
    Status status = e.getStatus();
    com.google.rpc.Status details = StatusProto.fromThrowable(e);
    String reason = "";
    List<BadRequest.FieldViolation> violations = List.of();
    Long retryAfterMs = null;
    if (details != null) {
      for (Any any : details.getDetailsList()) {
        try {
          if (any.is(ErrorInfo.class)) {
            reason = any.unpack(ErrorInfo.class).getReason();
          } else if (any.is(BadRequest.class)) {
            violations = any.unpack(BadRequest.class).getFieldViolationsList();
          } else if (any.is(RetryInfo.class)) {
            var delay = any.unpack(RetryInfo.class).getRetryDelay();
            retryAfterMs = delay.getSeconds() * 1000 + delay.getNanos() / 1_000_000;
          }
        } catch (InvalidProtocolBufferException ignored) {
          // A detail that does not decode adds nothing to the sentence.
        }
      }
    }
    String description = status.getDescription() == null ? "" : status.getDescription();
    String text = sentence(tool, status.getCode(), description, reason, violations, retryAfterMs);

    Map<String, Object> error = new LinkedHashMap<>();
    error.put("code", status.getCode().name());
    if (!reason.isEmpty()) {
      error.put("reason", reason);
    }
    error.put("message", description);
    if (!violations.isEmpty()) {
      List<Map<String, String>> fields = new ArrayList<>();
      violations.forEach(v -> fields.add(Map.of("field", v.getField(), "description", v.getDescription())));
      error.put("field_violations", fields);
    }
    if (retryAfterMs != null) {
      error.put("retry_after_ms", retryAfterMs);
    }
    return result(text, error);
  }

  /** Arguments that do not fit the request message (the schema check should have caught them). */
  static CallToolResult badArguments(String tool, String problem) {
    String text = "The arguments of " + tool + " could not be read: " + problem
        + ". Fix them as the tool's input schema describes and call " + tool + " again.";
    return result(text, Map.of("code", "INVALID_ARGUMENT", "message", problem));
  }

  private static CallToolResult result(String text, Map<String, Object> error) {
    return CallToolResult.builder().addTextContent(text).structuredContent(Map.of("error", error)).isError(true).build();
  }

  private static String sentence(String tool, Status.Code code, String description, String reason,
      List<BadRequest.FieldViolation> violations, Long retryAfterMs) {
    String what = description.isEmpty() ? code.name() : description;
    String tag = reason.isEmpty() || reason.equals(code.name()) ? code.name() : code.name() + ", " + reason;
    StringBuilder s = new StringBuilder();
    switch (code) {
      case INVALID_ARGUMENT, OUT_OF_RANGE -> {
        s.append("The memory server refused the arguments of ").append(tool).append(" (").append(tag).append(")");
        if (violations.isEmpty()) {
          s.append(": ").append(what).append('.');
        } else {
          s.append(": ");
          for (int i = 0; i < violations.size(); i++) {
            BadRequest.FieldViolation v = violations.get(i);
            s.append(i == 0 ? "" : "; ").append('`').append(v.getField()).append("`: ").append(v.getDescription());
          }
          s.append('.');
        }
        s.append(" Fix ").append(violations.size() > 1 ? "these arguments" : "this").append(" and call ")
            .append(tool).append(" again.");
      }
      case NOT_FOUND -> s.append(what).append(" (").append(tag).append("). Use an id returned by an earlier tool")
          .append(" result of this session (upsert_customer_profile returns customer.id, open_conversation")
          .append(" conversation.id, fetch_context and search_memories memory.id); do not invent ids.");
      case ALREADY_EXISTS -> s.append(what).append(" (").append(tag).append(")")
          .append(violations.isEmpty() ? "" : ": `" + violations.getFirst().getField() + "` is taken")
          .append(". Use the existing record, or choose another value.");
      case FAILED_PRECONDITION -> s.append(what).append(" (").append(tag).append(").")
          .append(reason.startsWith("CONVERSATION_") ? " Call open_conversation to get the thread's open conversation"
              + " and use its id." : " The call cannot succeed in this state; do not repeat it unchanged.");
      case UNAUTHENTICATED -> s.append("The memory server refused the API key (").append(tag).append("): ").append(what)
          .append(". This is the MCP host's configuration, not the arguments: calling again will not help.");
      case PERMISSION_DENIED -> s.append("The API key may not call ").append(tool).append(" (").append(tag).append("): ")
          .append(what).append(". Calling again will not help; the key needs another scope.");
      case RESOURCE_EXHAUSTED -> s.append("The memory server is busy or this API key is over its rate limit (")
          .append(tag).append("). Nothing was stored; wait ")
          .append(retryAfterMs == null ? "a second" : retryAfterMs + " ms").append(" and call ").append(tool)
          .append(" again with the same arguments.");
      case UNAVAILABLE, DEADLINE_EXCEEDED, ABORTED, CANCELLED -> s.append("The call did not complete (").append(tag)
          .append("): ").append(what).append(". Call ").append(tool).append(" again with the same arguments;")
          .append(" messages with the same idempotency_key are never stored twice.");
      default -> s.append("The memory server failed (").append(tag).append("): ").append(what)
          .append(". Calling again may not help; tell the operator.");
    }
    return s.toString();
  }
}

package dev.contextmemory.mcp;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.Any;
import com.google.protobuf.Duration;
import com.google.rpc.BadRequest;
import com.google.rpc.Code;
import com.google.rpc.ErrorInfo;
import com.google.rpc.RetryInfo;
import com.google.rpc.Status;
import dev.contextmemory.v1.DeleteMemoryRequest;
import io.grpc.StatusRuntimeException;
import io.grpc.protobuf.StatusProto;
import io.modelcontextprotocol.json.McpJsonDefaults;
import io.modelcontextprotocol.spec.McpSchema.CallToolResult;
import io.modelcontextprotocol.spec.McpSchema.TextContent;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** What a model reads when a call fails: the sentence and the structured error, from the status details. */
class ToolErrorsTest {
  private static StatusRuntimeException error(Code code, String message, com.google.protobuf.Message... details) {
    Status.Builder s = Status.newBuilder().setCode(code.getNumber()).setMessage(message);
    for (var d : details) {
      s.addDetails(Any.pack(d));
    }
    return StatusProto.toStatusRuntimeException(s.build());
  }

  private static String text(CallToolResult r) {
    return ((TextContent) r.content().getFirst()).text();
  }

  @SuppressWarnings("unchecked")
  private static Map<String, Object> error(CallToolResult r) {
    return (Map<String, Object>) ((Map<String, Object>) r.structuredContent()).get("error");
  }

  @Test
  void fieldViolationsNameTheArgumentsToFix() {
    CallToolResult r = ToolErrors.of("append_messages", error(Code.INVALID_ARGUMENT, "2 invalid fields",
        ErrorInfo.newBuilder().setReason("INVALID_ARGUMENT").setDomain("contextmemory.dev").build(),
        BadRequest.newBuilder()
            .addFieldViolations(BadRequest.FieldViolation.newBuilder().setField("messages[0].content").setDescription("is empty"))
            .addFieldViolations(BadRequest.FieldViolation.newBuilder().setField("messages[1].role").setDescription("is required"))
            .build()));
    assertTrue(r.isError());
    assertEquals("The memory server refused the arguments of append_messages (INVALID_ARGUMENT): `messages[0].content`:"
        + " is empty; `messages[1].role`: is required. Fix these arguments and call append_messages again.", text(r));
    assertEquals(List.of(Map.of("field", "messages[0].content", "description", "is empty"),
        Map.of("field", "messages[1].role", "description", "is required")), error(r).get("field_violations"));
  }

  @Test
  void aBusyServerSaysHowLongToWait() {
    CallToolResult r = ToolErrors.of("fetch_context", error(Code.RESOURCE_EXHAUSTED, "rate limit",
        ErrorInfo.newBuilder().setReason("RATE_LIMITED").build(),
        RetryInfo.newBuilder().setRetryDelay(Duration.newBuilder().setSeconds(1).setNanos(500_000_000)).build()));
    assertTrue(text(r).contains("(RESOURCE_EXHAUSTED, RATE_LIMITED)") && text(r).contains("wait 1500 ms"), text(r));
    assertEquals(1500L, error(r).get("retry_after_ms"));
  }

  @Test
  void aClosedConversationPointsToOpenConversation() {
    CallToolResult r = ToolErrors.of("append_messages", error(Code.FAILED_PRECONDITION, "the conversation is closed",
        ErrorInfo.newBuilder().setReason("CONVERSATION_CLOSED").build()));
    assertTrue(text(r).startsWith("the conversation is closed (FAILED_PRECONDITION, CONVERSATION_CLOSED). Call"
        + " open_conversation"), text(r));
  }

  @Test
  void aTransportErrorWithoutDetailsStillReadsAsASentence() {
    CallToolResult r = ToolErrors.of("remember", io.grpc.Status.UNAVAILABLE.withDescription("io exception")
        .asRuntimeException());
    assertEquals("The call did not complete (UNAVAILABLE): io exception. Call remember again with the same arguments;"
        + " messages with the same idempotency_key are never stored twice.", text(r));
  }

  @Test
  void anArgumentTheRequestDoesNotHaveIsRefusedBeforeAnyCall() {
    Tool<DeleteMemoryRequest, ?> forget = MemoryTools.forget();
    CallToolResult r = forget.call(null, new Json(McpJsonDefaults.getMapper()), Map.of("memoryid", "x"));
    assertTrue(r.isError());
    assertTrue(text(r).startsWith("The arguments of forget could not be read") && text(r).contains("memoryid"), text(r));
  }
}

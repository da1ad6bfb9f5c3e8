package dev.contextmemory.mcp;

import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Message;
import io.grpc.StatusRuntimeException;
import io.modelcontextprotocol.server.McpServerFeatures.SyncToolSpecification;
import io.modelcontextprotocol.server.McpStatelessServerFeatures;
import io.modelcontextprotocol.spec.McpSchema;
import io.modelcontextprotocol.spec.McpSchema.CallToolResult;
import io.modelcontextprotocol.spec.McpSchema.ToolAnnotations;
import java.util.Map;
import java.util.function.BiFunction;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One MCP tool that is one gRPC call: the arguments fill the request message (proto JSON with the
 * .proto field names, over {@code prototype}'s preset values), the RPC runs with the caller's key,
 * and the response is the structured result (also as JSON text, for hosts that read only text).
 *
 * @param name the tool name (snake_case)
 * @param title a short human title
 * @param description for the model: when to call it, what it returns, whether it changes state
 * @param input the closed JSON Schema of the arguments
 * @param effect what the call does to stored state, for the tool's annotations
 * @param prototype the request with the values the arguments start from
 * @param rpc the gRPC call
 */
record Tool<Q extends Message, R extends Message>(String name, String title, String description,
    Map<String, Object> input, Effect effect, Q prototype, BiFunction<Backend.Calls, Q, R> rpc) {
  private static final Logger log = LoggerFactory.getLogger(Tool.class);

  /** The tool annotations' hints: whether state changes, and how. */
  enum Effect {
    /** Reads only. */
    READ(true, false, true),
    /** Writes; the same arguments again change nothing more (upserts, keyed appends). */
    IDEMPOTENT_WRITE(false, false, true),
    /** Writes; repeating counts again. */
    WRITE(false, false, false),
    /** Deletes. */
    DELETE(false, true, true);

    final boolean readOnly;
    final boolean destructive;
    final boolean idempotent;

    Effect(boolean readOnly, boolean destructive, boolean idempotent) {
      this.readOnly = readOnly;
      this.destructive = destructive;
      this.idempotent = idempotent;
    }
  }

  McpSchema.Tool definition() {
    return McpSchema.Tool.builder(name, input)
        .title(title)
        .description(description)
        // openWorld false: the tool touches only this memory, nothing outside it.
        .annotations(new ToolAnnotations(title, effect.readOnly, effect.destructive, effect.idempotent, false, null))
        .build();
  }

  /** For a server with sessions (stdio). */
  SyncToolSpecification specification(Backend backend, Json json) {
    return SyncToolSpecification.builder()
        .tool(definition())
        .callHandler((exchange, call) -> call(backend.calls(exchange.transportContext()), json, call.arguments()))
        .build();
  }

  /** For the stateless server (Streamable HTTP). */
  McpStatelessServerFeatures.SyncToolSpecification statelessSpecification(Backend backend, Json json) {
    return McpStatelessServerFeatures.SyncToolSpecification.builder()
        .tool(definition())
        .callHandler((context, call) -> call(backend.calls(context), json, call.arguments()))
        .build();
  }

  CallToolResult call(Backend.Calls calls, Json json, Map<String, Object> arguments) {
    Q request;
    try {
      request = json.request(arguments, prototype);
    } catch (InvalidProtocolBufferException | RuntimeException e) {
      return ToolErrors.badArguments(name, e.getMessage());
    }
    try {
      String text = json.text(rpc.apply(calls, request));
      return CallToolResult.builder().addTextContent(text).structuredContent(json.object(text)).build();
    } catch (StatusRuntimeException e) {
      // The code only: descriptions may quote arguments, which can be personal data.
      log.debug("tool {} failed: {}", name, e.getStatus().getCode());
      return ToolErrors.of(name, e);
    }
  }
}

package dev.contextmemory.mcp;

import io.modelcontextprotocol.json.McpJsonDefaults;
import io.modelcontextprotocol.server.McpServer;
import io.modelcontextprotocol.server.McpStatelessSyncServer;
import io.modelcontextprotocol.server.McpSyncServer;
import io.modelcontextprotocol.spec.McpSchema.ServerCapabilities;
import io.modelcontextprotocol.spec.McpServerTransportProvider;
import io.modelcontextprotocol.spec.McpStatelessServerTransport;
import java.util.ArrayList;
import java.util.List;

/**
 * The context-memory MCP server: its tools and resources over any of the SDK's transports. Nothing
 * here knows the transport; {@link McpStdio} and {@link McpHttpServer} pick one.
 */
public final class ContextMemoryMcp {
  /** The name and version an MCP client sees in the initialize result. */
  public static final String NAME = "context-memory";

  static final String INSTRUCTIONS = "context-memory keeps what an agent knows about the people it talks to:"
      + " customer profiles, conversations with their messages, and memory notes. A turn: upsert_customer_profile"
      + " (find or create the person by phone, email or external reference), open_conversation (the thread's open"
      + " conversation), append_messages (their message, with an idempotency_key), fetch_context (profile, recent"
      + " messages and the notes that fit their message), answer, append_messages (your reply), remember (anything"
      + " worth keeping) and confirm_memories (the notes you used). Ids come from earlier results; never invent"
      + " them. Results use the .proto field names; enum values are their full names (CHANNEL_SMS); fields at"
      + " their default (false, 0, empty) are left out.";

  private ContextMemoryMcp() {}

  /** Every tool, in the order tools/list shows them. */
  static List<Tool<?, ?>> tools() {
    List<Tool<?, ?>> tools = new ArrayList<>();
    tools.addAll(CustomerTools.all());
    tools.addAll(ConversationTools.all());
    tools.addAll(MemoryTools.all());
    return tools;
  }

  /** The server over a single-session transport (stdio). */
  public static McpSyncServer serve(McpServerTransportProvider transport, Backend backend, String version) {
    return configure(McpServer.sync(transport), backend, version).build();
  }

  /**
   * The server over a stateless transport (Streamable HTTP without sessions): each request stands
   * alone, so the server keeps nothing per client and answers with plain JSON, not an event stream.
   */
  public static McpStatelessSyncServer serve(McpStatelessServerTransport transport, Backend backend, String version) {
    Json json = new Json(McpJsonDefaults.getMapper());
    return McpServer.sync(transport)
        .serverInfo(NAME, version)
        .instructions(INSTRUCTIONS)
        .jsonMapper(json.mapper())
        .capabilities(ServerCapabilities.builder().tools(false).resources(false, false).build())
        .validateToolInputs(true)
        .immediateExecution(true)
        .tools(tools().stream().map(t -> t.statelessSpecification(backend, json)).toList())
        .resourceTemplates(Resources.stateless(backend, json))
        .build();
  }

  private static <S extends McpServer.SyncSpecification<S>> McpServer.SyncSpecification<S> configure(
      McpServer.SyncSpecification<S> spec, Backend backend, String version) {
    Json json = new Json(McpJsonDefaults.getMapper());
    // The same settings as the stateless server's below (the SDK's two builders share no type).
    return spec.serverInfo(NAME, version)
        .instructions(INSTRUCTIONS)
        .jsonMapper(json.mapper())
        .capabilities(ServerCapabilities.builder().tools(false).resources(false, false).build())
        // Arguments are checked against the tool's schema before the handler runs: a misspelt or
        // missing argument gets the validator's sentence, and no gRPC call is made.
        .validateToolInputs(true)
        // Handlers block on one gRPC call: run them on the thread that received the request
        // rather than hop to another pool (that hop is most of what MCP adds to a call).
        .immediateExecution(true)
        .tools(tools().stream().map(t -> t.specification(backend, json)).toList())
        .resourceTemplates(Resources.all(backend, json));
  }
}

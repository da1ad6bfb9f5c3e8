package dev.contextmemory.mcp;

import dev.contextmemory.v1.GetConversationRequest;
import dev.contextmemory.v1.GetCustomerRequest;
import dev.contextmemory.v1.ListAddressesRequest;
import dev.contextmemory.v1.ListMessagesRequest;
import dev.contextmemory.v1.ListMessagesResponse;
import dev.contextmemory.v1.MessageOrder;
import io.grpc.StatusRuntimeException;
import io.modelcontextprotocol.common.McpTransportContext;
import io.modelcontextprotocol.server.McpServerFeatures.SyncResourceTemplateSpecification;
import io.modelcontextprotocol.server.McpStatelessServerFeatures;
import io.modelcontextprotocol.spec.McpError;
import io.modelcontextprotocol.spec.McpSchema;
import io.modelcontextprotocol.spec.McpSchema.ReadResourceRequest;
import io.modelcontextprotocol.spec.McpSchema.ReadResourceResult;
import io.modelcontextprotocol.spec.McpSchema.ResourceTemplate;
import io.modelcontextprotocol.spec.McpSchema.TextResourceContents;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.BiFunction;

/**
 * A customer's profile and a conversation's transcript as MCP resources, for a host to attach to
 * the model's context: {@code contextmemory://customers/{customer_id}} (the profile with its
 * addresses) and {@code contextmemory://conversations/{conversation_id}} (the conversation and its
 * latest {@value #TRANSCRIPT_MESSAGES} messages, oldest first). Both are JSON.
 */
final class Resources {
  static final String CUSTOMERS = "contextmemory://customers/";
  static final String CONVERSATIONS = "contextmemory://conversations/";
  /** A transcript holds at most this many messages (the latest), so a resource stays bounded. */
  static final int TRANSCRIPT_MESSAGES = 200;

  private Resources() {}

  /** For a server with sessions (stdio). */
  static List<SyncResourceTemplateSpecification> all(Backend backend, Json json) {
    return templates(backend, json).stream().map(t -> new SyncResourceTemplateSpecification(t.template(),
        (exchange, request) -> t.read().apply(exchange.transportContext(), request))).toList();
  }

  /** For the stateless server (Streamable HTTP). */
  static List<McpStatelessServerFeatures.SyncResourceTemplateSpecification> stateless(Backend backend, Json json) {
    return templates(backend, json).stream()
        .map(t -> new McpStatelessServerFeatures.SyncResourceTemplateSpecification(t.template(), t.read())).toList();
  }

  /** A resource template and how to read its resources. */
  private record Template(ResourceTemplate template,
      BiFunction<McpTransportContext, ReadResourceRequest, ReadResourceResult> read) {}

  private static List<Template> templates(Backend backend, Json json) {
    return List.of(
        template(CUSTOMERS + "{customer_id}", "customer", "Customer profile",
            "A customer's profile (name, contact details, metadata) and postal addresses.",
            backend, json, Resources::customer),
        template(CONVERSATIONS + "{conversation_id}", "conversation", "Conversation transcript",
            "A conversation (channel, status, summary) and its latest " + TRANSCRIPT_MESSAGES
                + " messages, oldest first.",
            backend, json, Resources::conversation));
  }

  private static Template template(String uriTemplate, String name, String title,
      String description, Backend backend, Json json, Read read) {
    String prefix = uriTemplate.substring(0, uriTemplate.indexOf('{'));
    ResourceTemplate template = ResourceTemplate.builder(uriTemplate, name).title(title)
        .description(description).mimeType("application/json").build();
    return new Template(template, (context, request) -> {
      String id = request.uri().substring(prefix.length());
      Backend.Calls calls = backend.calls(context);
      Object content;
      try {
        content = read.read(calls, json, id);
      } catch (StatusRuntimeException e) {
        int code = e.getStatus().getCode() == io.grpc.Status.Code.NOT_FOUND
            || e.getStatus().getCode() == io.grpc.Status.Code.INVALID_ARGUMENT
            ? McpSchema.ErrorCodes.RESOURCE_NOT_FOUND : McpSchema.ErrorCodes.INTERNAL_ERROR;
        String text = ToolErrors.of("resources/read", e).content().getFirst() instanceof McpSchema.TextContent t
            ? t.text() : e.getStatus().getCode().name();
        throw McpError.builder(code).message(text).build();
      }
      return new ReadResourceResult(List.of(new TextResourceContents(request.uri(), "application/json",
          json.write(content), null)), null);
    });
  }

  /** Reads one resource's content by the id in its URI. */
  private interface Read {
    Object read(Backend.Calls calls, Json json, String id);
  }

  private static Object customer(Backend.Calls calls, Json json, String id) {
    Map<String, Object> out = new LinkedHashMap<>();
    out.put("customer", json.object(calls.customers()
        .getCustomer(GetCustomerRequest.newBuilder().setCustomerId(id).build()).getCustomer()));
    out.put("addresses", calls.customers().listAddresses(ListAddressesRequest.newBuilder().setCustomerId(id).build())
        .getAddressesList().stream().map(json::object).toList());
    return out;
  }

  private static Object conversation(Backend.Calls calls, Json json, String id) {
    Map<String, Object> out = new LinkedHashMap<>();
    out.put("conversation", json.object(calls.conversations()
        .getConversation(GetConversationRequest.newBuilder().setConversationId(id).build()).getConversation()));
    ListMessagesResponse latest = calls.conversations().listMessages(ListMessagesRequest.newBuilder()
        .setConversationId(id).setPageSize(TRANSCRIPT_MESSAGES).setOrder(MessageOrder.MESSAGE_ORDER_NEWEST_FIRST)
        .build());
    out.put("messages", latest.getMessagesList().reversed().stream().map(json::object).toList());
    out.put("truncated", !latest.getNextPageToken().isEmpty());
    return out;
  }
}

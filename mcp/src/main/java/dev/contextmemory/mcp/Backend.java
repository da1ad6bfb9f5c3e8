package dev.contextmemory.mcp;

import dev.contextmemory.v1.ConversationServiceGrpc;
import dev.contextmemory.v1.ConversationServiceGrpc.ConversationServiceBlockingStub;
import dev.contextmemory.v1.CustomerServiceGrpc;
import dev.contextmemory.v1.CustomerServiceGrpc.CustomerServiceBlockingStub;
import dev.contextmemory.v1.MemoryServiceGrpc;
import dev.contextmemory.v1.MemoryServiceGrpc.MemoryServiceBlockingStub;
import io.grpc.Channel;
import io.grpc.Metadata;
import io.grpc.stub.AbstractStub;
import io.grpc.stub.MetadataUtils;
import io.modelcontextprotocol.common.McpTransportContext;
import java.time.Duration;
import java.util.Objects;

/**
 * Where the tools' gRPC calls go and whose they are. Over HTTP each MCP request carries its own
 * API key ({@link #AUTHORIZATION} in the transport context, put there by {@link McpHttpServer}),
 * which goes on the gRPC call unchanged, so the server's authentication, scopes and per-key limits
 * decide exactly as for a gRPC client. Over stdio the context is empty and the channel itself
 * carries the one key of the process.
 */
public final class Backend {
  /** Transport-context key of the HTTP request's {@code Authorization} header value. */
  public static final String AUTHORIZATION = "authorization";

  private static final Metadata.Key<String> AUTHORIZATION_HEADER =
      Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER);

  private final CustomerServiceBlockingStub customers;
  private final ConversationServiceBlockingStub conversations;
  private final MemoryServiceBlockingStub memories;
  private final Duration deadline;

  /** Calls on {@code channel}, each bounded by {@code deadline}. */
  public Backend(Channel channel, Duration deadline) {
    Objects.requireNonNull(channel, "channel");
    this.deadline = Objects.requireNonNull(deadline, "deadline");
    this.customers = CustomerServiceGrpc.newBlockingStub(channel);
    this.conversations = ConversationServiceGrpc.newBlockingStub(channel);
    this.memories = MemoryServiceGrpc.newBlockingStub(channel);
  }

  /** The stubs for one tool call made in {@code context}. */
  Calls calls(McpTransportContext context) {
    Object authorization = context == null ? null : context.get(AUTHORIZATION);
    Metadata headers = null;
    if (authorization instanceof String value && !value.isBlank()) {
      headers = new Metadata();
      headers.put(AUTHORIZATION_HEADER, value);
    }
    return new Calls(prepare(customers, headers), prepare(conversations, headers), prepare(memories, headers));
  }

  private <S extends AbstractStub<S>> S prepare(S stub, Metadata headers) {
    S s = stub.withDeadlineAfter(deadline);
    return headers == null ? s : s.withInterceptors(MetadataUtils.newAttachHeadersInterceptor(headers));
  }

  /** The three services' stubs for one call. */
  record Calls(CustomerServiceBlockingStub customers, ConversationServiceBlockingStub conversations,
      MemoryServiceBlockingStub memories) {}
}

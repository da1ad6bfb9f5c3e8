package dev.contextmemory.client;

import dev.contextmemory.client.ServiceConfig.Retry;
import dev.contextmemory.v1.Conversation;
import dev.contextmemory.v1.ConversationServiceGrpc;
import dev.contextmemory.v1.ConversationServiceGrpc.ConversationServiceBlockingStub;
import dev.contextmemory.v1.Customer;
import dev.contextmemory.v1.CustomerServiceGrpc;
import dev.contextmemory.v1.CustomerServiceGrpc.CustomerServiceBlockingStub;
import dev.contextmemory.v1.ListConversationsRequest;
import dev.contextmemory.v1.ListConversationsResponse;
import dev.contextmemory.v1.ListCustomersRequest;
import dev.contextmemory.v1.ListCustomersResponse;
import dev.contextmemory.v1.ListMemoriesRequest;
import dev.contextmemory.v1.ListMemoriesResponse;
import dev.contextmemory.v1.ListMessagesRequest;
import dev.contextmemory.v1.ListMessagesResponse;
import dev.contextmemory.v1.Memory;
import dev.contextmemory.v1.MemoryServiceGrpc;
import dev.contextmemory.v1.MemoryServiceGrpc.MemoryServiceBlockingStub;
import dev.contextmemory.v1.Message;
import dev.contextmemory.v1.MessageSearchHit;
import dev.contextmemory.v1.SearchMessagesRequest;
import dev.contextmemory.v1.SearchMessagesResponse;
import io.grpc.CallCredentials;
import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ChannelCredentials;
import io.grpc.ClientCall;
import io.grpc.ClientInterceptor;
import io.grpc.ClientInterceptors;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.MethodDescriptor;
import io.grpc.TlsChannelCredentials;
import io.opentelemetry.api.OpenTelemetry;
import io.opentelemetry.instrumentation.grpc.v1_6.GrpcTelemetry;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import java.util.function.Supplier;
import java.util.stream.Stream;

/**
 * A client of the context-memory API: one gRPC channel set up the way this server should be
 * called, and the generated blocking stubs on it, unchanged.
 *
 * <pre>{@code
 * try (ContextMemoryClient client = ContextMemoryClient.newBuilder("localhost:50051").build()) {
 *   Customer c = client.customers().upsertCustomer(UpsertCustomerRequest.newBuilder()
 *       .setContactKey(ContactKey.newBuilder().setPhone("+15550102030"))
 *       .setCustomer(Customer.newBuilder().setDisplayName("Ada")).build()).getCustomer();
 * }
 * }</pre>
 *
 * <p>What the channel does for every call, including calls on stubs built from {@link #channel()}:
 *
 * <ul>
 *   <li><b>Deadline:</b> a call without a deadline gets {@link Builder#defaultDeadline} (10 s);
 *       set another with {@code stub.withDeadlineAfter(...)}. Streaming calls (ImportMessages,
 *       WatchConversations) get none: they take as long as the stream.
 *   <li><b>Retries:</b> up to 5 attempts with exponential backoff, throttled while most calls
 *       fail, when the status says a second attempt is safe. ABORTED (a conflict or lock timeout
 *       rolled the transaction back) and RESOURCE_EXHAUSTED (the server shed the call or had no
 *       database connection for it) mean nothing was done: every unary RPC is retried on them.
 *       UNAVAILABLE and CANCELLED (a server past its shutdown grace) leave the outcome unknown: only
 *       the RPCs that are safe to send twice are retried on them: every Get, List, Lookup, Search
 *       and FetchContext, the upserts, GetOrCreateOpenConversation, CloseConversation, and the
 *       creates and appends (which carry idempotency keys). DEADLINE_EXCEEDED is never retried (the
 *       deadline covers all attempts; the outcome is unknown, so retry yourself with the same
 *       idempotency key), nor is ImportMessages. gRPC retries only requests up to 1 MiB and only
 *       until the server starts to answer; a safe-to-repeat call whose server died while answering
 *       (response headers received, then the connection lost) is sent once more by the client
 *       itself ({@code CommittedCallRetry}).
 *   <li><b>Idempotency keys:</b> a create or append without one gets a random key (see
 *       {@link IdempotencyKeys}), so a retried append never stores a message twice.
 *   <li><b>Wait for ready:</b> a call made while the server is unreachable (restarting) waits for
 *       it, up to its deadline, instead of failing at once; turn off with
 *       {@link Builder#waitForReady(boolean)}.
 *   <li><b>Load balancing:</b> round_robin over every address the target resolves to; a target
 *       of several {@code host:port} entries, comma-separated, spreads calls over all of them.
 *   <li><b>Read-your-writes:</b> against a server that reads from standbys, the consistency token
 *       of the newest write this client made goes with every later call, so reads see the
 *       client's own writes (see {@link #consistencyToken()}).
 *   <li><b>Keepalive:</b> an HTTP/2 ping every 30 s (the server permits one every 20 s), so a dead
 *       connection is noticed within 40 s even when idle.
 * </ul>
 *
 * <p>Errors are the server's {@code StatusRuntimeException}s; {@link ApiErrors} reads their
 * reason and field violations. The client is thread-safe; share one per process and close it at
 * the end.
 */
public final class ContextMemoryClient implements AutoCloseable {
  /** Deadline of a call that sets none. */
  public static final Duration DEFAULT_DEADLINE = Duration.ofSeconds(10);
  /** Largest response accepted: the server's default request limit, which FetchContext can reach. */
  public static final int DEFAULT_MAX_INBOUND_MESSAGE_BYTES = 16 * 1024 * 1024;

  private final ManagedChannel managedChannel;
  private final Channel channel;
  private final CustomerServiceBlockingStub customers;
  private final ConversationServiceBlockingStub conversations;
  private final MemoryServiceBlockingStub memories;
  private final ConsistencyTokens tokens;

  private ContextMemoryClient(ManagedChannel managedChannel, Channel channel, ConsistencyTokens tokens) {
    this.managedChannel = managedChannel;
    this.channel = channel;
    this.tokens = tokens;
    this.customers = CustomerServiceGrpc.newBlockingStub(channel);
    this.conversations = ConversationServiceGrpc.newBlockingStub(channel);
    this.memories = MemoryServiceGrpc.newBlockingStub(channel);
  }

  /**
   * A builder for a client of {@code target}: {@code "host:port"}; any gRPC target string
   * ({@code "dns:///svc.ns:50051"}); or several {@code host:port} entries separated by commas
   * ({@code "10.0.0.1:50051,10.0.0.2:50051"}, IPv6 as {@code "[::1]:50051"}) to balance over.
   */
  public static Builder newBuilder(String target) {
    return new Builder(target);
  }

  /** CustomerService, as generated. */
  public CustomerServiceBlockingStub customers() {
    return customers;
  }

  /** ConversationService, as generated. */
  public ConversationServiceBlockingStub conversations() {
    return conversations;
  }

  /** MemoryService, as generated. */
  public MemoryServiceBlockingStub memories() {
    return memories;
  }

  /**
   * The channel with this client's behaviour (deadlines, keys, credentials), for the other stub
   * flavours: {@code ConversationServiceGrpc.newStub(client.channel())} for ImportMessages,
   * {@code newFutureStub} for non-blocking calls, {@code HealthGrpc} (from grpc-services).
   */
  public Channel channel() {
    return channel;
  }

  /**
   * The consistency token of the newest write this client has seen answered (null before the
   * first, or when the server reads from no standby). Opaque; hand it to {@link
   * Builder#consistencyToken} of another client (another process, say) to let it read this
   * client's writes.
   */
  public String consistencyToken() {
    return tokens.newest();
  }

  /** Every customer that {@code request}'s filters select, page after page (lazily). */
  public Stream<Customer> listAllCustomers(ListCustomersRequest request) {
    return Pages.stream(request, customers::listCustomers, ListCustomersResponse::getCustomersList,
        ListCustomersResponse::getNextPageToken, (r, t) -> r.toBuilder().setPageToken(t).build());
  }

  /** Every conversation of the customer that {@code request} selects, page after page (lazily). */
  public Stream<Conversation> listAllConversations(ListConversationsRequest request) {
    return Pages.stream(request, conversations::listConversations, ListConversationsResponse::getConversationsList,
        ListConversationsResponse::getNextPageToken, (r, t) -> r.toBuilder().setPageToken(t).build());
  }

  /** Every message of the conversation that {@code request} selects, in its order (lazily). */
  public Stream<Message> listAllMessages(ListMessagesRequest request) {
    return Pages.stream(request, conversations::listMessages, ListMessagesResponse::getMessagesList,
        ListMessagesResponse::getNextPageToken, (r, t) -> r.toBuilder().setPageToken(t).build());
  }

  /** Every hit of a message search, best first (lazily; stop early with {@code limit}). */
  public Stream<MessageSearchHit> searchAllMessages(SearchMessagesRequest request) {
    return Pages.stream(request, conversations::searchMessages, SearchMessagesResponse::getHitsList,
        SearchMessagesResponse::getNextPageToken, (r, t) -> r.toBuilder().setPageToken(t).build());
  }

  /** Every memory of the customer that {@code request} selects, newest first (lazily). */
  public Stream<Memory> listAllMemories(ListMemoriesRequest request) {
    return Pages.stream(request, memories::listMemories, ListMemoriesResponse::getMemoriesList,
        ListMemoriesResponse::getNextPageToken, (r, t) -> r.toBuilder().setPageToken(t).build());
  }

  /** Lets calls in flight finish for up to 5 s, then cancels the rest and closes the channel. */
  @Override
  public void close() {
    managedChannel.shutdown();
    try {
      if (!managedChannel.awaitTermination(5, TimeUnit.SECONDS)) {
        managedChannel.shutdownNow();
        managedChannel.awaitTermination(5, TimeUnit.SECONDS);
      }
    } catch (InterruptedException e) {
      managedChannel.shutdownNow();
      Thread.currentThread().interrupt();
    }
  }

  /** Sets up a {@link ContextMemoryClient}. Every setting has a default that suits most callers. */
  public static final class Builder {
    private final String target;
    private Duration defaultDeadline = DEFAULT_DEADLINE;
    private boolean waitForReady = true;
    private Duration keepAliveTime = Duration.ofSeconds(30);
    private Duration keepAliveTimeout = Duration.ofSeconds(10);
    private Retry retry = new Retry(5, Duration.ofMillis(100), Duration.ofSeconds(5), 2.0);
    private ChannelCredentials channelCredentials = InsecureChannelCredentials.create();
    private CallCredentials callCredentials;
    private Supplier<String> bearerTokens;
    private boolean allowPlaintextCredentials;
    private String authority;
    private int maxInboundMessageBytes = DEFAULT_MAX_INBOUND_MESSAGE_BYTES;
    private final List<ClientInterceptor> interceptors = new ArrayList<>();
    private String consistencyToken;
    private Consumer<ManagedChannelBuilder<?>> customizer = b -> {};
    private OpenTelemetry openTelemetry;

    private Builder(String target) {
      this.target = Objects.requireNonNull(target, "target").strip();
      if (this.target.isEmpty()) {
        throw new IllegalArgumentException("target is empty; give host:port");
      }
      if (Targets.isList(this.target)) {
        Targets.parseList(this.target); // fail here, not at the first call
      }
    }

    /** Deadline of calls that set none (default 10 s); {@code null} or zero means no deadline. */
    public Builder defaultDeadline(Duration deadline) {
      this.defaultDeadline = deadline == null || deadline.isZero() ? null : requirePositive(deadline, "deadline");
      return this;
    }

    /**
     * Whether a call waits (up to its deadline) for an unreachable server instead of failing at once
     * with UNAVAILABLE. Default true, so calls ride out a server restart. A stub's
     * {@code withWaitForReady()} / {@code withoutWaitForReady()} overrides it per call.
     */
    public Builder waitForReady(boolean waitForReady) {
      this.waitForReady = waitForReady;
      return this;
    }

    /**
     * Keepalive ping interval and how long to wait for its answer (default 30 s and 10 s). The
     * server allows a ping every 20 s; more frequent pings make it close the connection.
     */
    public Builder keepAlive(Duration time, Duration timeout) {
      this.keepAliveTime = requirePositive(time, "keepalive time");
      this.keepAliveTimeout = requirePositive(timeout, "keepalive timeout");
      return this;
    }

    /**
     * Retries (see the class comment for which status codes and RPCs): at most {@code maxAttempts} attempts in all (default 5;
     * 1 turns retries off), the n-th retry after a random pause of up to
     * min(initialBackoff x 2^(n-1), maxBackoff) (defaults 100 ms and 5 s).
     */
    public Builder retryPolicy(int maxAttempts, Duration initialBackoff, Duration maxBackoff) {
      this.retry = new Retry(maxAttempts, initialBackoff, maxBackoff, 2.0);
      return this;
    }

    /** Use TLS, trusting the JDK's default certificate authorities. */
    public Builder useTransportSecurity() {
      this.channelCredentials = TlsChannelCredentials.create();
      return this;
    }

    /** Use TLS, trusting only the PEM certificates in {@code trustedCertificates} (a private CA). */
    public Builder useTransportSecurity(Path trustedCertificates) throws IOException {
      this.channelCredentials = TlsChannelCredentials.newBuilder().trustManager(trustedCertificates.toFile()).build();
      return this;
    }

    /** Any channel credentials, e.g. mutual TLS: {@code TlsChannelCredentials.newBuilder().keyManager(...)}. */
    public Builder channelCredentials(ChannelCredentials credentials) {
      this.channelCredentials = Objects.requireNonNull(credentials, "credentials");
      return this;
    }

    /**
     * Sends {@code authorization: Bearer <token>} with every call, the token asked from
     * {@code tokens} per call (see {@link BearerTokenCredentials}). Sent over TLS only, unless
     * {@link #allowCredentialsOverPlaintext()}.
     */
    public Builder bearerToken(Supplier<String> tokens) {
      this.bearerTokens = Objects.requireNonNull(tokens, "tokens");
      return this;
    }

    /** Any per-call credentials (instead of a bearer token), attached to calls that carry none. */
    public Builder callCredentials(CallCredentials credentials) {
      this.callCredentials = Objects.requireNonNull(credentials, "credentials");
      return this;
    }

    /** Lets a bearer token go over plaintext: only for a TLS-terminating proxy on the same host. */
    public Builder allowCredentialsOverPlaintext() {
      this.allowPlaintextCredentials = true;
      return this;
    }

    /** The authority (host name) TLS verifies and :authority names, when it is not the target's. */
    public Builder overrideAuthority(String authority) {
      this.authority = Objects.requireNonNull(authority, "authority");
      return this;
    }

    /** Largest response accepted (default 16 MiB). */
    public Builder maxInboundMessageBytes(int bytes) {
      if (bytes < 1024) {
        throw new IllegalArgumentException("maxInboundMessageBytes must be at least 1024, got " + bytes);
      }
      this.maxInboundMessageBytes = bytes;
      return this;
    }

    /**
     * Starts the client's session at another client's {@link ContextMemoryClient#consistencyToken()},
     * so its reads see that client's writes too.
     */
    public Builder consistencyToken(String token) {
      this.consistencyToken = token;
      return this;
    }

    /** Adds an interceptor; the ones added first run first, before the client's own. */
    public Builder intercept(ClientInterceptor interceptor) {
      interceptors.add(Objects.requireNonNull(interceptor, "interceptor"));
      return this;
    }

    /**
     * Traces every call with {@code openTelemetry}: a client span per call, and the W3C
     * {@code traceparent} of the caller's current span in the call's metadata, so the server's
     * spans (its RPC and its SQL) join the caller's trace. Off by default; leave it off under the
     * OpenTelemetry Java agent, which instruments grpc-java itself.
     */
    public Builder openTelemetry(OpenTelemetry openTelemetry) {
      this.openTelemetry = Objects.requireNonNull(openTelemetry, "openTelemetry");
      return this;
    }

    /** Last word on the underlying grpc-java builder (executor, proxy, ...), applied just before build. */
    public Builder customizeChannel(Consumer<ManagedChannelBuilder<?>> customizer) {
      this.customizer = Objects.requireNonNull(customizer, "customizer");
      return this;
    }

    public ContextMemoryClient build() {
      ManagedChannelBuilder<?> b;
      if (Targets.isList(target)) {
        StaticNameResolverProvider.register();
        b = Grpc.newChannelBuilder(StaticNameResolverProvider.target(), channelCredentials)
            .setNameResolverArg(StaticNameResolverProvider.ADDRESSES, Targets.parseList(target));
      } else {
        b = Grpc.newChannelBuilder(target, channelCredentials);
      }
      b.defaultServiceConfig(ServiceConfig.build(retry, waitForReady))
          .disableServiceConfigLookUp() // this config, never one published in DNS
          .enableRetry()
          .maxRetryAttempts(Math.max(5, retry.maxAttempts()))
          .keepAliveTime(keepAliveTime.toNanos(), TimeUnit.NANOSECONDS)
          .keepAliveTimeout(keepAliveTimeout.toNanos(), TimeUnit.NANOSECONDS)
          .keepAliveWithoutCalls(true)
          .maxInboundMessageSize(maxInboundMessageBytes)
          .userAgent("context-memory-java-client");
      if (authority != null) {
        b.overrideAuthority(authority);
      }
      customizer.accept(b);
      ManagedChannel managed = b.build();

      CallCredentials credentials = callCredentials;
      if (bearerTokens != null) {
        if (credentials != null) {
          throw new IllegalStateException("set either bearerToken or callCredentials, not both");
        }
        credentials = new BearerTokenCredentials(bearerTokens, allowPlaintextCredentials);
      }
      // ClientInterceptors.intercept runs the last one first: the caller's, then the defaults, and
      // the keys last, right above the channel whose retries replay the keyed request.
      List<ClientInterceptor> chain = new ArrayList<>();
      ConsistencyTokens tokens = new ConsistencyTokens();
      tokens.offer(consistencyToken);
      chain.add(tokens);
      if (retry.maxAttempts() > 1) {
        // Between the keys and the tokens: a repeated call resends the keyed request, newest token.
        chain.add(new CommittedCallRetry(ServiceConfig.RETRYABLE));
      }
      chain.add(IdempotencyKeys.interceptor());
      chain.add(new CallDefaults(defaultDeadline, credentials));
      chain.addAll(interceptors.reversed());
      if (openTelemetry != null) {
        // Outermost: one span covers the call with its retries, started in the caller's context.
        chain.add(GrpcTelemetry.create(openTelemetry).createClientInterceptor());
      }
      return new ContextMemoryClient(managed, ClientInterceptors.intercept(managed, chain), tokens);
    }

    private static Duration requirePositive(Duration d, String what) {
      if (d == null || d.isNegative() || d.isZero()) {
        throw new IllegalArgumentException(what + " must be positive, got " + d);
      }
      return d;
    }
  }

  /** Adds the default deadline and the credentials to calls that set none. */
  private record CallDefaults(Duration deadline, CallCredentials credentials) implements ClientInterceptor {
    @Override
    public <ReqT, RespT> ClientCall<ReqT, RespT> interceptCall(
        MethodDescriptor<ReqT, RespT> method, CallOptions options, Channel next) {
      if (deadline != null && options.getDeadline() == null && method.getType() == MethodDescriptor.MethodType.UNARY) {
        options = options.withDeadlineAfter(deadline.toNanos(), TimeUnit.NANOSECONDS);
      }
      if (credentials != null && options.getCredentials() == null) {
        options = options.withCallCredentials(credentials);
      }
      return next.newCall(method, options);
    }
  }
}

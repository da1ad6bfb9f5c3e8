package dev.contextmemory.server.grpc;

import dev.contextmemory.server.domain.ContactNormalizer;
import dev.contextmemory.server.domain.Conversation;
import dev.contextmemory.server.domain.ConversationEvent;
import dev.contextmemory.server.domain.ConversationField;
import dev.contextmemory.server.domain.Message;
import dev.contextmemory.server.store.ConversationStore;
import dev.contextmemory.server.store.HandoffStore;
import dev.contextmemory.server.store.UsageStore;
import dev.contextmemory.server.store.MessageImportStore;
import dev.contextmemory.server.store.MessageSearchStore;
import dev.contextmemory.server.store.MessageStore;
import dev.contextmemory.v1.*;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;

/**
 * ConversationService over gRPC: validate the request, call one store method, map the result.
 * Errors are thrown and become statuses in {@link ExceptionInterceptor}. Message checks live in
 * {@link ConversationRequests}, the ImportMessages stream in {@link ImportMessagesStream}, the handoff
 * RPCs in {@link HandoffRpcs}, statistics and usage metrics in {@link UsageRpcs}.
 */
public final class ConversationGrpcService extends ConversationServiceGrpc.ConversationServiceImplBase {
  static final int MAX_SUMMARY_LENGTH = 16_384;
  static final int MAX_BATCH = 1_000;
  static final int MAX_QUERY_LENGTH = 1_024;
  static final int DEFAULT_SEARCH_PAGE_SIZE = 20;
  static final int MAX_SEARCH_PAGE_SIZE = 100;

  private static final Map<String, ConversationField> PATHS = new LinkedHashMap<>();

  static {
    for (ConversationField f : ConversationField.values()) {
      PATHS.put(f.path(), f);
    }
  }

  private final ConversationStore conversations;
  private final MessageStore messages;
  private final MessageImportStore imports;
  private final MessageSearchStore search;
  private final PageTokens tokens;
  private final ContactNormalizer contacts;
  private final int embeddingDimension;
  private final HandoffRpcs handoffs;
  private final UsageRpcs usage;

  private final dev.contextmemory.server.watch.WatchHub watch;
  private final int watchBuffer;

  public ConversationGrpcService(ConversationStore conversations, MessageStore messages, MessageImportStore imports,
      MessageSearchStore search, HandoffStore handoffs, UsageStore usage, ContactNormalizer contacts,
      PageTokens tokens, int embeddingDimension, dev.contextmemory.server.watch.WatchHub watch, int watchBuffer) {
    this.handoffs = new HandoffRpcs(handoffs, tokens);
    this.usage = new UsageRpcs(usage);
    this.watch = watch;
    this.watchBuffer = watchBuffer;
    this.search = search;
    this.tokens = tokens;
    this.conversations = conversations;
    this.messages = messages;
    this.imports = imports;
    this.contacts = contacts;
    this.embeddingDimension = embeddingDimension;
  }

  /**
   * Registers the stream with the hub and returns: the request thread and the tenant's in-flight
   * slot are free again once this returns (Authentication), the stream lives on the hub's threads.
   */
  @Override
  public void watchConversations(WatchConversationsRequest req, StreamObserver<WatchConversationsResponse> out) {
    Validator v = new Validator();
    UUID conversationId = req.getConversationId().isEmpty() ? null : v.id("conversation_id", req.getConversationId());
    UUID customerId = req.getCustomerId().isEmpty() ? null : v.id("customer_id", req.getCustomerId());
    String channel = null;
    if (req.getChannel() == Channel.UNRECOGNIZED) {
      v.add("channel", "unknown channel " + req.getChannelValue());
    } else if (req.getChannel() != Channel.CHANNEL_UNSPECIFIED) {
      channel = ConversationMapping.channel(req.getChannel());
    }
    Long after = v.check(() -> WatchStream.decodeCursor(tokens, Tenants.current(), req.getResumeCursor()));
    v.throwIfInvalid();
    WatchStream.open(watch, (ServerCallStreamObserver<WatchConversationsResponse>) out, tokens, Tenants.current(),
        new ConversationEvent.Filter(conversationId, customerId, channel, req.getHandoffQueue()), after, watchBuffer);
  }

  @Override
  public void getOrCreateOpenConversation(GetOrCreateOpenConversationRequest req,
      StreamObserver<GetOrCreateOpenConversationResponse> out) {
    Validator v = new Validator();
    UUID customerId = v.id("customer_id", req.getCustomerId());
    String channel = ConversationRequests.channel(v, "channel", req.getChannel());
    String threadKey = ConversationRequests.threadKey(v, "thread_key", req.getThreadKey());
    String metadata = v.metadata("metadata", req.getMetadata());
    v.throwIfInvalid();
    Conversation.Opened o = conversations.getOrCreateOpen(Tenants.current(), customerId, channel, threadKey, metadata);
    reply(out, GetOrCreateOpenConversationResponse.newBuilder()
        .setConversation(ConversationMapping.conversation(o.conversation())).setCreated(o.created()).build());
  }

  @Override
  public void getConversation(GetConversationRequest req, StreamObserver<GetConversationResponse> out) {
    Validator v = new Validator();
    UUID id = v.id("conversation_id", req.getConversationId());
    v.throwIfInvalid();
    Conversation c = conversations.get(Tenants.current(), id, req.getIncludeSummaryEmbedding());
    reply(out, GetConversationResponse.newBuilder().setConversation(ConversationMapping.conversation(c)).build());
  }

  @Override
  public void listConversations(ListConversationsRequest req, StreamObserver<ListConversationsResponse> out) {
    Validator v = new Validator();
    UUID customerId = req.getCustomerId().isEmpty() ? null : v.id("customer_id", req.getCustomerId());
    int pageSize = v.pageSize("page_size", req.getPageSize());
    String status = switch (req.getStatus()) {
      case CONVERSATION_STATUS_UNSPECIFIED -> null;
      case CONVERSATION_STATUS_OPEN -> "open";
      case CONVERSATION_STATUS_CLOSED -> "closed";
      case UNRECOGNIZED -> {
        v.add("status", "unknown status " + req.getStatusValue());
        yield null;
      }
    };
    String channel = null;
    if (req.getChannel() == Channel.UNRECOGNIZED) {
      v.add("channel", "unknown channel " + req.getChannelValue());
    } else if (req.getChannel() != Channel.CHANNEL_UNSPECIFIED) {
      channel = ConversationMapping.channel(req.getChannel());
    }
    Conversation.Filter filter = new Conversation.Filter(status, channel,
        v.metadata("metadata_filter", req.getMetadataFilter()));
    String filterKey = "conversations|" + customerId + "|" + filter;
    Conversation.Cursor after = v.ok() ? v.check(() -> tokens.decode(Tenants.current(), req.getPageToken(), filterKey,
        "page_token", 2, p -> new Conversation.Cursor(PageTokens.instant(p[0]), PageTokens.uuid(p[1])))) : null;
    v.throwIfInvalid();
    Conversation.Page page = conversations.list(Tenants.current(), customerId, filter, after, pageSize);
    ListConversationsResponse.Builder b = ListConversationsResponse.newBuilder();
    page.conversations().forEach(c -> b.addConversations(ConversationMapping.conversation(c)));
    if (page.next() != null) {
      b.setNextPageToken(tokens.encode(Tenants.current(), filterKey, PageTokens.micros(page.next().lastMessageAt()),
          page.next().id().toString()));
    }
    reply(out, b.build());
  }

  @Override
  public void closeConversation(CloseConversationRequest req, StreamObserver<CloseConversationResponse> out) {
    Validator v = new Validator();
    UUID id = v.id("conversation_id", req.getConversationId());
    v.throwIfInvalid();
    reply(out, CloseConversationResponse.newBuilder()
        .setConversation(ConversationMapping.conversation(conversations.close(Tenants.current(), id, Tenants.caller().actor()))).build());
  }

  @Override
  public void updateConversation(UpdateConversationRequest req, StreamObserver<UpdateConversationResponse> out) {
    Validator v = new Validator();
    dev.contextmemory.v1.Conversation c = req.getConversation();
    UUID id = v.id("conversation.id", c.getId());
    Set<ConversationField> fields = v.mask(req.getUpdateMask(), PATHS, ConversationField.class, f -> switch (f) {
      case SUMMARY -> !c.getSummary().isBlank();
      case SUMMARY_EMBEDDING -> c.getSummaryEmbeddingCount() > 0;
      case METADATA -> c.getMetadata().getFieldsCount() > 0;
    });
    String summary = v.text("conversation.summary", c.getSummary(), MAX_SUMMARY_LENGTH);
    float[] embedding = v.embedding("conversation.summary_embedding", c.getSummaryEmbeddingList(), embeddingDimension,
        false);
    String metadata = v.metadata("conversation.metadata", c.getMetadata());
    v.throwIfInvalid();
    Conversation updated = conversations.update(Tenants.current(), id,
        new Conversation.Change(summary, embedding, metadata, fields));
    reply(out, UpdateConversationResponse.newBuilder().setConversation(ConversationMapping.conversation(updated)).build());
  }

  @Override
  public void deleteConversation(DeleteConversationRequest req, StreamObserver<DeleteConversationResponse> out) {
    Validator v = new Validator();
    UUID id = v.id("conversation_id", req.getConversationId());
    v.throwIfInvalid();
    conversations.delete(Tenants.current(), id, Tenants.caller().actor());
    reply(out, DeleteConversationResponse.getDefaultInstance());
  }

  @Override
  public void appendMessage(AppendMessageRequest req, StreamObserver<AppendMessageResponse> out) {
    Validator v = new Validator();
    UUID id = v.id("conversation_id", req.getConversationId());
    if (!req.hasMessage()) {
      v.add("message", "is required");
    }
    Message.Draft draft = ConversationRequests.message(v, "message", req.getMessage(), false, Instant.now());
    v.throwIfInvalid();
    Message.Appended a = messages.append(Tenants.current(), id, draft);
    reply(out, AppendMessageResponse.newBuilder()
        .setMessage(ConversationMapping.message(a.message())).setReplayed(a.replayed()).build());
  }

  @Override
  public void appendMessages(AppendMessagesRequest req, StreamObserver<AppendMessagesResponse> out) {
    Validator v = new Validator();
    UUID id = v.id("conversation_id", req.getConversationId());
    int n = req.getMessagesCount();
    if (n == 0) {
      v.add("messages", "must hold at least one message");
    } else if (n > MAX_BATCH) {
      v.add("messages", "must hold at most " + MAX_BATCH + " messages, got " + n);
    }
    List<Message.Draft> drafts = new ArrayList<>(Math.min(n, MAX_BATCH));
    if (n <= MAX_BATCH) {
      Instant now = Instant.now();
      Set<String> keys = new HashSet<>();
      for (int i = 0; i < n; i++) {
        String field = "messages[" + i + "]";
        Message.Draft d = ConversationRequests.message(v, field, req.getMessages(i), false, now);
        if (d != null && d.idempotencyKey() != null && !keys.add(d.idempotencyKey())) {
          v.add(field + ".idempotency_key", "repeats the idempotency_key of an earlier item of this batch");
        }
        drafts.add(d);
      }
    }
    v.throwIfInvalid();
    List<Message.Stored> stored = messages.appendBatch(Tenants.current(), id, drafts);
    AppendMessagesResponse.Builder b = AppendMessagesResponse.newBuilder();
    int created = 0;
    for (Message.Stored s : stored) {
      b.addResults(AppendedMessage.newBuilder()
          .setMessageId(s.id().toString())
          .setSequence(s.sequence())
          .setCreateTime(ProtoMapping.timestamp(s.createdAt()))
          .setReplayed(s.replayed()));
      created += s.replayed() ? 0 : 1;
    }
    reply(out, b.setCreatedCount(created).build());
  }

  @Override
  public StreamObserver<ImportMessagesRequest> importMessages(StreamObserver<ImportMessagesResponse> out) {
    return new ImportMessagesStream(Tenants.current(), out, imports, contacts);
  }

  @Override
  public void listMessages(ListMessagesRequest req, StreamObserver<ListMessagesResponse> out) {
    Validator v = new Validator();
    UUID id = v.id("conversation_id", req.getConversationId());
    int pageSize = v.pageSize("page_size", req.getPageSize());
    boolean newestFirst = switch (req.getOrder()) {
      case MESSAGE_ORDER_UNSPECIFIED, MESSAGE_ORDER_NEWEST_FIRST -> true;
      case MESSAGE_ORDER_OLDEST_FIRST -> false;
      case UNRECOGNIZED -> {
        v.add("order", "unknown order " + req.getOrderValue());
        yield true;
      }
    };
    Message.Filter filter = ConversationRequests.filter(v, req.getRolesValueList(), req.hasCreateTimeRange(),
        req.getCreateTimeRange());
    String filterKey = "messages|" + id + "|" + newestFirst + "|" + filter;
    Long after = v.ok() ? v.check(() -> tokens.decode(Tenants.current(), req.getPageToken(), filterKey, "page_token", 1,
        p -> Long.parseLong(p[0]))) : null;
    v.throwIfInvalid();
    Message.Page page = messages.list(Tenants.current(), id, newestFirst, after, filter, pageSize);
    ListMessagesResponse.Builder b = ListMessagesResponse.newBuilder();
    page.messages().forEach(m -> b.addMessages(ConversationMapping.message(m)));
    if (page.nextAfterSequence() != null) {
      b.setNextPageToken(tokens.encode(Tenants.current(), filterKey, Long.toString(page.nextAfterSequence())));
    }
    reply(out, b.build());
  }

  @Override
  public void searchMessages(SearchMessagesRequest req, StreamObserver<SearchMessagesResponse> out) {
    Validator v = new Validator();
    String query = req.getQuery();
    if (query.isBlank()) {
      v.add("query", "is required (not empty or only whitespace)");
    } else if (query.codePointCount(0, query.length()) > MAX_QUERY_LENGTH) {
      v.add("query", "must be at most " + MAX_QUERY_LENGTH + " characters");
    } else if (query.indexOf('\0') >= 0) {
      v.add("query", "must not contain NUL characters");
    }
    UUID conversationId = req.getScopeCase() == SearchMessagesRequest.ScopeCase.CONVERSATION_ID
        ? v.id("conversation_id", req.getConversationId()) : null;
    UUID customerId = req.getScopeCase() == SearchMessagesRequest.ScopeCase.CUSTOMER_ID
        ? v.id("customer_id", req.getCustomerId()) : null;
    int pageSize = req.getPageSize() < 0 ? v.pageSize("page_size", req.getPageSize())
        : req.getPageSize() == 0 ? DEFAULT_SEARCH_PAGE_SIZE : Math.min(req.getPageSize(), MAX_SEARCH_PAGE_SIZE);
    Message.Filter filter = ConversationRequests.filter(v, req.getRolesValueList(), req.hasCreateTimeRange(),
        req.getCreateTimeRange());
    String filterKey = "search|" + query + "|" + conversationId + "|" + customerId + "|" + filter;
    Message.HitCursor after = v.ok() ? v.check(() -> tokens.decode(Tenants.current(), req.getPageToken(), filterKey,
        "page_token", 3, p -> new Message.HitCursor(Double.longBitsToDouble(Long.parseUnsignedLong(p[0], 16)),
            PageTokens.instant(p[1]), PageTokens.uuid(p[2])))) : null;
    v.throwIfInvalid();
    String tenant = Tenants.current();
    if (conversationId != null) {
      conversations.get(tenant, conversationId, false); // NOT_FOUND for an unknown or deleted scope
    }
    Message.HitPage page = search.search(tenant, query, conversationId, customerId, filter, after, pageSize);
    if (customerId != null && page.hits().isEmpty()) {
      conversations.requireCustomer(tenant, customerId); // an empty result must not hide an unknown scope
    }
    SearchMessagesResponse.Builder b = SearchMessagesResponse.newBuilder();
    for (Message.Hit h : page.hits()) {
      b.addHits(MessageSearchHit.newBuilder()
          .setMessage(ConversationMapping.message(h.message()))
          .setCustomerId(h.customerId().toString())
          .setScore(h.score())
          .setSnippet(h.snippet()));
    }
    if (page.next() != null) {
      b.setNextPageToken(tokens.encode(Tenants.current(), filterKey, Long.toHexString(Double.doubleToLongBits(page.next().score())),
          PageTokens.micros(page.next().createdAt()), page.next().id().toString()));
    }
    reply(out, b.build());
  }

  @Override
  public void getConversationStats(GetConversationStatsRequest req, StreamObserver<GetConversationStatsResponse> out) {
    usage.stats(req, out);
  }

  @Override
  public void getUsageMetrics(GetUsageMetricsRequest req, StreamObserver<GetUsageMetricsResponse> out) {
    usage.usage(req, out);
  }

  @Override
  public void requestHandoff(RequestHandoffRequest req, StreamObserver<RequestHandoffResponse> out) {
    handoffs.request(req, out);
  }

  @Override
  public void acceptHandoff(AcceptHandoffRequest req, StreamObserver<AcceptHandoffResponse> out) {
    handoffs.accept(req, out);
  }

  @Override
  public void completeHandoff(CompleteHandoffRequest req, StreamObserver<CompleteHandoffResponse> out) {
    handoffs.complete(req, out);
  }

  @Override
  public void cancelHandoff(CancelHandoffRequest req, StreamObserver<CancelHandoffResponse> out) {
    handoffs.cancel(req, out);
  }

  @Override
  public void listHandoffQueue(ListHandoffQueueRequest req, StreamObserver<ListHandoffQueueResponse> out) {
    handoffs.queue(req, out);
  }

  @Override
  public void listHandoffs(ListHandoffsRequest req, StreamObserver<ListHandoffsResponse> out) {
    handoffs.history(req, out);
  }

  private static <T> void reply(StreamObserver<T> out, T response) {
    out.onNext(response);
    out.onCompleted();
  }
}

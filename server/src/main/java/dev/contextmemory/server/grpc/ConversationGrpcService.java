package dev.contextmemory.server.grpc;

import dev.contextmemory.server.domain.ContactKey;
import dev.contextmemory.server.domain.ContactNormalizer;
import dev.contextmemory.server.domain.Conversation;
import dev.contextmemory.server.domain.ConversationField;
import dev.contextmemory.server.domain.CustomerField;
import dev.contextmemory.server.domain.FieldViolation;
import dev.contextmemory.server.domain.ImportItem;
import dev.contextmemory.server.domain.InvalidArgumentException;
import dev.contextmemory.server.domain.Message;
import dev.contextmemory.server.store.ConversationStore;
import dev.contextmemory.server.store.MessageStore;
import dev.contextmemory.v1.*;
import io.grpc.stub.StreamObserver;
import java.net.URI;
import java.net.URISyntaxException;
import java.time.Duration;
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
 * Errors are thrown and become statuses in {@link ExceptionInterceptor}.
 */
public final class ConversationGrpcService extends ConversationServiceGrpc.ConversationServiceImplBase {
  static final int MAX_THREAD_KEY_LENGTH = 256;
  static final int MAX_SUMMARY_LENGTH = 16_384;
  static final int MAX_CONTENT_LENGTH = 32_768;
  static final int MAX_TOOL_CALLS = 128;
  static final int MAX_TOOL_ID_LENGTH = 256;
  static final int MAX_TOOL_ARGUMENTS_LENGTH = 65_536;
  static final int MAX_ATTACHMENTS = 32;
  static final int MAX_URI_LENGTH = 2_048;
  static final int MAX_ATTACHMENT_TEXT_LENGTH = 255;
  static final int MAX_IDEMPOTENCY_KEY_LENGTH = 128;
  static final int MAX_BATCH = 1_000;
  static final int MAX_QUERY_LENGTH = 1_024;
  static final int DEFAULT_SEARCH_PAGE_SIZE = 20;
  static final int MAX_SEARCH_PAGE_SIZE = 100;
  static final int DEFAULT_STATS_DAYS = 30;
  static final int MAX_STATS_DAYS = 3_650;
  /** Client clocks drift; a timestamp further ahead than this is a bug, not drift. */
  static final Duration MAX_CLOCK_SKEW = Duration.ofMinutes(5);
  /** ImportMessages commits in chunks of this many items, so memory stays flat however long the stream. */
  static final int IMPORT_CHUNK = 1_000;
  static final int MAX_IMPORT_ERRORS_REPORTED = 1_000;

  private static final Map<String, ConversationField> PATHS = new LinkedHashMap<>();

  static {
    for (ConversationField f : ConversationField.values()) {
      PATHS.put(f.path(), f);
    }
  }

  private final ConversationStore conversations;
  private final MessageStore messages;
  private final ContactNormalizer contacts;
  private final int embeddingDimension;

  public ConversationGrpcService(ConversationStore conversations, MessageStore messages, ContactNormalizer contacts,
      int embeddingDimension) {
    this.conversations = conversations;
    this.messages = messages;
    this.contacts = contacts;
    this.embeddingDimension = embeddingDimension;
  }

  @Override
  public void getOrCreateOpenConversation(GetOrCreateOpenConversationRequest req,
      StreamObserver<GetOrCreateOpenConversationResponse> out) {
    Validator v = new Validator();
    UUID customerId = v.id("customer_id", req.getCustomerId());
    String channel = channel(v, "channel", req.getChannel());
    String threadKey = threadKey(v, "thread_key", req.getThreadKey());
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
    Conversation.Cursor after = v.ok() ? v.check(() -> PageTokens.decodeParts(req.getPageToken(), filterKey,
        "page_token", 2, p -> new Conversation.Cursor(PageTokens.instant(p[0]), PageTokens.uuid(p[1])))) : null;
    v.throwIfInvalid();
    Conversation.Page page = conversations.list(Tenants.current(), customerId, filter, after, pageSize);
    ListConversationsResponse.Builder b = ListConversationsResponse.newBuilder();
    page.conversations().forEach(c -> b.addConversations(ConversationMapping.conversation(c)));
    if (page.next() != null) {
      b.setNextPageToken(PageTokens.encodeParts(filterKey, PageTokens.micros(page.next().lastMessageAt()),
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
        .setConversation(ConversationMapping.conversation(conversations.close(Tenants.current(), id))).build());
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
    conversations.delete(Tenants.current(), id);
    reply(out, DeleteConversationResponse.getDefaultInstance());
  }

  @Override
  public void appendMessage(AppendMessageRequest req, StreamObserver<AppendMessageResponse> out) {
    Validator v = new Validator();
    UUID id = v.id("conversation_id", req.getConversationId());
    if (!req.hasMessage()) {
      v.add("message", "is required");
    }
    Message.Draft draft = message(v, "message", req.getMessage(), false, Instant.now());
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
        Message.Draft d = message(v, field, req.getMessages(i), false, now);
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
    return new Import(Tenants.current(), out);
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
    Message.Filter filter = filter(v, req.getRolesValueList(), req.hasCreateTimeRange(), req.getCreateTimeRange());
    String filterKey = "messages|" + id + "|" + newestFirst + "|" + filter;
    Long after = v.ok() ? v.check(() -> PageTokens.decodeParts(req.getPageToken(), filterKey, "page_token", 1,
        p -> Long.parseLong(p[0]))) : null;
    v.throwIfInvalid();
    Message.Page page = messages.list(Tenants.current(), id, newestFirst, after, filter, pageSize);
    ListMessagesResponse.Builder b = ListMessagesResponse.newBuilder();
    page.messages().forEach(m -> b.addMessages(ConversationMapping.message(m)));
    if (page.nextAfterSequence() != null) {
      b.setNextPageToken(PageTokens.encodeParts(filterKey, Long.toString(page.nextAfterSequence())));
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
    Message.Filter filter = filter(v, req.getRolesValueList(), req.hasCreateTimeRange(), req.getCreateTimeRange());
    String filterKey = "search|" + query + "|" + conversationId + "|" + customerId + "|" + filter;
    Message.HitCursor after = v.ok() ? v.check(() -> PageTokens.decodeParts(req.getPageToken(), filterKey,
        "page_token", 3, p -> new Message.HitCursor(Double.longBitsToDouble(Long.parseUnsignedLong(p[0], 16)),
            PageTokens.instant(p[1]), PageTokens.uuid(p[2])))) : null;
    v.throwIfInvalid();
    String tenant = Tenants.current();
    if (conversationId != null) {
      conversations.get(tenant, conversationId, false); // NOT_FOUND for an unknown or deleted scope
    }
    Message.HitPage page = messages.search(tenant, query, conversationId, customerId, filter, after, pageSize);
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
      b.setNextPageToken(PageTokens.encodeParts(filterKey, Long.toHexString(Double.doubleToLongBits(page.next().score())),
          PageTokens.micros(page.next().createdAt()), page.next().id().toString()));
    }
    reply(out, b.build());
  }

  @Override
  public void getConversationStats(GetConversationStatsRequest req, StreamObserver<GetConversationStatsResponse> out) {
    Validator v = new Validator();
    UUID customerId = req.getCustomerId().isEmpty() ? null : v.id("customer_id", req.getCustomerId());
    int days = req.getDays() == 0 ? DEFAULT_STATS_DAYS : req.getDays();
    if (days < 1 || days > MAX_STATS_DAYS) {
      v.add("days", "must be within 1.." + MAX_STATS_DAYS + " (0 means " + DEFAULT_STATS_DAYS + ")");
    }
    v.throwIfInvalid();
    Conversation.Stats s = conversations.stats(Tenants.current(), customerId, days);
    reply(out, GetConversationStatsResponse.newBuilder()
        .setWindowStartTime(ProtoMapping.timestamp(s.windowStart()))
        .setWindowEndTime(ProtoMapping.timestamp(s.windowEnd()))
        .setConversationsTotal(s.total())
        .setConversationsOpen(s.open())
        .setConversationsClosed(s.closed())
        .setConversationsWithSummaryEmbedding(s.withSummaryEmbedding())
        .setMessagesTotal(s.messagesUser() + s.messagesAssistant() + s.messagesSystem() + s.messagesTool())
        .setMessagesByRole(MessageRoleCounts.newBuilder()
            .setUser(s.messagesUser()).setAssistant(s.messagesAssistant())
            .setSystem(s.messagesSystem()).setTool(s.messagesTool()))
        .setAverageConversationsPerDay((double) s.total() / days)
        .build());
  }

  // ---------------------------------------------------------------------------------------------
  // ImportMessages

  /**
   * One import stream. Items are validated as they arrive and buffered; every {@link #IMPORT_CHUNK}
   * items are written in one transaction. onNext runs on the request executor and blocks while a
   * chunk is written, and grpc-java only asks the client for more once it returns: that is the
   * backpressure that keeps memory flat.
   */
  private final class Import implements StreamObserver<ImportMessagesRequest> {
    private final String tenant;
    private final StreamObserver<ImportMessagesResponse> out;
    private final List<ImportItem> chunk = new ArrayList<>(IMPORT_CHUNK);
    private final ImportMessagesResponse.Builder result = ImportMessagesResponse.newBuilder();
    private long received;

    Import(String tenant, StreamObserver<ImportMessagesResponse> out) {
      this.tenant = tenant;
      this.out = out;
    }

    @Override
    public void onNext(ImportMessagesRequest item) {
      long index = received++;
      Validator v = new Validator();
      ImportItem parsed = importItem(v, index, item);
      if (!v.ok() || parsed == null) {
        FieldViolation first = firstViolation(v);
        fail(new ImportItem.Failure(index, first.field(), "INVALID_FIELD", first.description()));
        return;
      }
      chunk.add(parsed);
      if (chunk.size() == IMPORT_CHUNK) {
        flush();
      }
    }

    @Override
    public void onError(Throwable t) {
      // The client cancelled or the stream broke: committed chunks stay, the buffered rest is dropped.
      chunk.clear();
    }

    @Override
    public void onCompleted() {
      flush();
      reply(out, result.setItemsReceived(received).build());
    }

    private void flush() {
      if (chunk.isEmpty()) {
        return;
      }
      ImportItem.Outcome o = messages.importChunk(tenant, List.copyOf(chunk));
      chunk.clear();
      result.setConversationsCreated(result.getConversationsCreated() + o.conversationsCreated())
          .setMessagesCreated(result.getMessagesCreated() + o.messagesCreated())
          .setMessagesSkipped(result.getMessagesSkipped() + o.messagesSkipped());
      o.failures().stream().sorted((a, b) -> Long.compare(a.index(), b.index())).forEach(this::fail);
    }

    private void fail(ImportItem.Failure f) {
      result.setItemsFailed(result.getItemsFailed() + 1);
      if (result.getErrorsCount() < MAX_IMPORT_ERRORS_REPORTED) {
        result.addErrors(ImportMessagesError.newBuilder()
            .setIndex(f.index()).setField(f.field()).setReason(f.reason()).setDescription(f.description()));
      }
    }
  }

  private ImportItem importItem(Validator v, long index, ImportMessagesRequest item) {
    UUID customerId = null;
    ContactKey key = null;
    switch (item.getCustomerCase()) {
      case CUSTOMER_ID -> customerId = v.id("customer_id", item.getCustomerId());
      case CONTACT_KEY -> key = contactKey(v, item.getContactKey());
      case CUSTOMER_NOT_SET -> v.add("customer", "is required: set customer_id or contact_key");
    }
    String channel = channel(v, "channel", item.getChannel());
    String threadKey = threadKey(v, "thread_key", item.getThreadKey());
    if (!item.hasMessage()) {
      v.add("message", "is required");
    }
    Message.Draft draft = message(v, "message", item.getMessage(), true, Instant.now());
    String metadata = v.metadata("conversation_metadata", item.getConversationMetadata());
    return v.ok() ? new ImportItem(index, customerId, key, channel, threadKey, draft, metadata) : null;
  }

  private ContactKey contactKey(Validator v, dev.contextmemory.v1.ContactKey k) {
    return switch (k.getKeyCase()) {
      case PHONE -> {
        String p = v.check(() -> contacts.phone(k.getPhone(), "contact_key.phone"));
        yield p == null ? null : new ContactKey(CustomerField.PHONE, p);
      }
      case EMAIL -> {
        String e = v.check(() -> contacts.email(k.getEmail(), "contact_key.email"));
        yield e == null ? null : new ContactKey(CustomerField.EMAIL, e);
      }
      case EXTERNAL_REF -> {
        String r = v.requiredText("contact_key.external_ref", k.getExternalRef(), CustomerGrpcService.MAX_EXTERNAL_REF_LENGTH);
        yield r == null ? null : new ContactKey(CustomerField.EXTERNAL_REF, r);
      }
      case KEY_NOT_SET -> {
        v.add("contact_key", "is required: set one of phone, email or external_ref");
        yield null;
      }
    };
  }

  private static FieldViolation firstViolation(Validator v) {
    try {
      v.throwIfInvalid();
    } catch (InvalidArgumentException e) {
      return e.violations().get(0);
    }
    return new FieldViolation("", "invalid item");
  }

  // ---------------------------------------------------------------------------------------------
  // Field checks

  private static String channel(Validator v, String field, Channel c) {
    String stored = ConversationMapping.channel(c);
    if (stored == null) {
      v.add(field, c == Channel.CHANNEL_UNSPECIFIED ? "is required" : "unknown channel " + c);
    }
    return stored;
  }

  /** Thread keys are compared byte for byte, so they are taken as given, not stripped. */
  private static String threadKey(Validator v, String field, String key) {
    if (key.isEmpty()) {
      v.add(field, "is required");
      return null;
    }
    return v.raw(field, key, MAX_THREAD_KEY_LENGTH);
  }


  /**
   * A message to append. Content, tool calls and attachments are checked but never rewritten: what
   * the agent sent is what it reads back. In an import the key and the original time are required.
   */
  private static Message.Draft message(Validator v, String prefix, dev.contextmemory.v1.Message m, boolean importing,
      Instant now) {
    String role = ConversationMapping.role(m.getRole());
    if (role == null) {
      v.add(prefix + ".role", m.getRole() == MessageRole.MESSAGE_ROLE_UNSPECIFIED ? "is required"
          : "unknown role " + m.getRoleValue());
    }
    String content = v.raw(prefix + ".content", m.getContent(), MAX_CONTENT_LENGTH);

    List<Message.ToolCall> toolCalls = new ArrayList<>(m.getToolCallsCount());
    if (m.getToolCallsCount() > 0 && role != null && !role.equals("assistant")) {
      v.add(prefix + ".tool_calls", "are allowed only on ASSISTANT messages");
    } else if (m.getToolCallsCount() > MAX_TOOL_CALLS) {
      v.add(prefix + ".tool_calls", "must hold at most " + MAX_TOOL_CALLS + " calls");
    } else {
      for (int i = 0; i < m.getToolCallsCount(); i++) {
        ToolCall t = m.getToolCalls(i);
        String f = prefix + ".tool_calls[" + i + "]";
        String id = required(v, f + ".id", t.getId(), MAX_TOOL_ID_LENGTH);
        String name = required(v, f + ".name", t.getName(), MAX_TOOL_ID_LENGTH);
        String args = v.raw(f + ".arguments", t.getArguments(), MAX_TOOL_ARGUMENTS_LENGTH);
        toolCalls.add(new Message.ToolCall(id, name, args));
      }
    }

    String toolCallId = null;
    if ("tool".equals(role)) {
      toolCallId = required(v, prefix + ".tool_call_id", m.getToolCallId(), MAX_TOOL_ID_LENGTH);
    } else if (!m.getToolCallId().isEmpty()) {
      v.add(prefix + ".tool_call_id", "is allowed only on TOOL messages");
    }

    List<Message.Attachment> attachments = new ArrayList<>(m.getAttachmentsCount());
    if (m.getAttachmentsCount() > MAX_ATTACHMENTS) {
      v.add(prefix + ".attachments", "must hold at most " + MAX_ATTACHMENTS + " attachments");
    } else {
      for (int i = 0; i < m.getAttachmentsCount(); i++) {
        Attachment a = m.getAttachments(i);
        String f = prefix + ".attachments[" + i + "]";
        String uri = required(v, f + ".uri", a.getUri(), MAX_URI_LENGTH);
        if (uri != null && !isAbsoluteUri(uri)) {
          v.add(f + ".uri", "must be an absolute URI like https://example.com/photo.jpg");
        }
        String type = v.raw(f + ".media_type", a.getMediaType(), MAX_ATTACHMENT_TEXT_LENGTH);
        String name = v.raw(f + ".name", a.getName(), MAX_ATTACHMENT_TEXT_LENGTH);
        if (a.getSizeBytes() < 0) {
          v.add(f + ".size_bytes", "must not be negative (0 means unknown)");
        }
        attachments.add(new Message.Attachment(uri, type, a.getSizeBytes(), name));
      }
    }

    if (m.getContent().isEmpty() && m.getToolCallsCount() == 0 && m.getAttachmentsCount() == 0) {
      v.add(prefix + ".content", "is required unless the message has tool calls or attachments");
    }

    String metadata = v.metadata(prefix + ".metadata", m.getMetadata());
    String key = m.getIdempotencyKey().isEmpty() ? null
        : v.raw(prefix + ".idempotency_key", m.getIdempotencyKey(), MAX_IDEMPOTENCY_KEY_LENGTH);
    if (importing && m.getIdempotencyKey().isEmpty()) {
      v.add(prefix + ".idempotency_key", "is required in ImportMessages (it makes re-running an import safe)");
    }
    Instant createdAt = v.timestamp(prefix + ".create_time", m.hasCreateTime(), m.getCreateTime());
    if (createdAt != null && createdAt.isAfter(now.plus(MAX_CLOCK_SKEW))) {
      v.add(prefix + ".create_time", "must not be more than " + MAX_CLOCK_SKEW.toMinutes() + " minutes in the future");
    }
    if (importing && !m.hasCreateTime()) {
      v.add(prefix + ".create_time", "is required in ImportMessages (the message's original time)");
    }
    return new Message.Draft(role, content == null ? "" : content, toolCalls, toolCallId, attachments, metadata, key,
        createdAt);
  }

  private static String required(Validator v, String field, String s, int maxLength) {
    if (s.isEmpty()) {
      v.add(field, "is required");
      return null;
    }
    return v.raw(field, s, maxLength);
  }

  private static boolean isAbsoluteUri(String s) {
    try {
      return new URI(s).isAbsolute();
    } catch (URISyntaxException e) {
      return false;
    }
  }

  private static Message.Filter filter(Validator v, List<Integer> roleValues, boolean hasRange,
      dev.contextmemory.v1.TimeRange range) {
    List<String> roles = new ArrayList<>();
    for (int i = 0; i < roleValues.size(); i++) {
      MessageRole r = MessageRole.forNumber(roleValues.get(i));
      String stored = r == null ? null : ConversationMapping.role(r);
      if (stored == null) {
        v.add("roles[" + i + "]", r == MessageRole.MESSAGE_ROLE_UNSPECIFIED
            ? "must not be MESSAGE_ROLE_UNSPECIFIED" : "unknown role " + roleValues.get(i));
      } else if (!roles.contains(stored)) {
        roles.add(stored);
      }
    }
    roles.sort(null); // the same set in any order is the same filter (and page-token fingerprint)
    Instant from = null;
    Instant until = null;
    if (hasRange) {
      from = v.timestamp("create_time_range.start_time", range.hasStartTime(), range.getStartTime());
      until = v.timestamp("create_time_range.end_time", range.hasEndTime(), range.getEndTime());
      if (from != null && until != null && !from.isBefore(until)) {
        v.add("create_time_range", "start_time must be before end_time");
      }
    }
    return new Message.Filter(List.copyOf(roles), from, until);
  }

  private static <T> void reply(StreamObserver<T> out, T response) {
    out.onNext(response);
    out.onCompleted();
  }
}

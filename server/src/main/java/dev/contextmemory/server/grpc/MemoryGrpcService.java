package dev.contextmemory.server.grpc;

import dev.contextmemory.server.domain.Context;
import dev.contextmemory.server.domain.Conversation;
import dev.contextmemory.server.domain.Memory;
import dev.contextmemory.server.domain.MemoryField;
import dev.contextmemory.server.domain.MemoryChange;
import dev.contextmemory.server.store.ConversationStore;
import dev.contextmemory.server.store.MemoryBatchStore;
import dev.contextmemory.server.store.MemoryConfirmationStore;
import dev.contextmemory.server.store.MemoryHistoryStore;
import dev.contextmemory.server.store.MemorySearchStore;
import dev.contextmemory.server.store.MemoryStore;
import dev.contextmemory.v1.*;
import io.grpc.stub.StreamObserver;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;

/**
 * MemoryService over gRPC: validate the request, call one store method, map the result. Errors
 * are thrown and become statuses in {@link ExceptionInterceptor}. Field checks live in
 * {@link MemoryRequests}, proto mapping in {@link MemoryMapping}.
 */
public final class MemoryGrpcService extends MemoryServiceGrpc.MemoryServiceImplBase {
  static final int DEFAULT_CONTEXT_MESSAGES = 20;
  static final int MAX_CONTEXT_MESSAGES = 100;
  static final int DEFAULT_CONTEXT_MEMORIES = 10;
  static final int MAX_CONTEXT_MEMORIES = 50;
  static final int MAX_CONFIRMATIONS = 100;
  static final Duration MAX_EXTENSION = Duration.ofDays(3_650);

  private static final Map<String, MemoryField> PATHS = new LinkedHashMap<>();

  static {
    for (MemoryField f : MemoryField.values()) {
      PATHS.put(f.path(), f);
    }
  }

  private final MemoryStore memories;
  private final MemorySearchStore search;
  private final PageTokens tokens;
  private final ConversationStore conversations;
  private final int embeddingDimension;
  private final MemoryBatchStore batchStore;
  private final MemoryBatchRpcs batches;
  private final MemoryHistoryStore history;
  private final MemoryConfirmationStore confirmations;

  public MemoryGrpcService(MemoryStore memories, MemorySearchStore search, ConversationStore conversations,
      MemoryBatchStore batchStore, MemoryHistoryStore history, MemoryConfirmationStore confirmations, PageTokens tokens,
      int embeddingDimension) {
    this.confirmations = confirmations;
    this.batchStore = batchStore;
    this.batches = new MemoryBatchRpcs(batchStore, embeddingDimension);
    this.history = history;
    this.tokens = tokens;
    this.memories = memories;
    this.search = search;
    this.conversations = conversations;
    this.embeddingDimension = embeddingDimension;
  }

  @Override
  public void createMemory(CreateMemoryRequest req, StreamObserver<CreateMemoryResponse> out) {
    Validator v = new Validator();
    UUID customerId = v.id("customer_id", req.getCustomerId());
    Memory.Draft d = MemoryRequests.draft(v, embeddingDimension, req.getMemory(), EnumSet.allOf(MemoryField.class), false, Instant.now());
    String requestId = v.requestId("request_id", req.getRequestId());
    v.throwIfInvalid();
    Memory m = memories.create(Tenants.current(), Tenants.caller().actor(), customerId, d, requestId);
    reply(out, CreateMemoryResponse.newBuilder().setMemory(MemoryMapping.memory(m)).build());
  }

  @Override
  public void upsertMemory(UpsertMemoryRequest req, StreamObserver<UpsertMemoryResponse> out) {
    Validator v = new Validator();
    UUID customerId = v.id("customer_id", req.getCustomerId());
    Memory.Draft d = MemoryRequests.draft(v, embeddingDimension, req.getMemory(), EnumSet.allOf(MemoryField.class), true, Instant.now());
    v.throwIfInvalid();
    Memory.Upserted u = memories.upsert(Tenants.current(), Tenants.caller().actor(), customerId, d);
    reply(out, UpsertMemoryResponse.newBuilder().setMemory(MemoryMapping.memory(u.memory())).setCreated(u.created()).build());
  }

  @Override
  public void createMemories(CreateMemoriesRequest req, StreamObserver<CreateMemoriesResponse> out) {
    reply(out, batches.create(req));
  }

  @Override
  public void upsertMemories(UpsertMemoriesRequest req, StreamObserver<UpsertMemoriesResponse> out) {
    reply(out, batches.upsert(req));
  }

  @Override
  public StreamObserver<ImportMemoriesRequest> importMemories(StreamObserver<ImportMemoriesResponse> out) {
    return new ImportMemoriesStream(Tenants.current(), Tenants.caller().actor(), out, batchStore, batches);
  }

  @Override
  public void listMemoryHistory(ListMemoryHistoryRequest req, StreamObserver<ListMemoryHistoryResponse> out) {
    Validator v = new Validator();
    if (req.getMemoryId().isEmpty() == req.getCustomerId().isEmpty()) {
      v.add(req.getMemoryId().isEmpty() ? "memory_id" : "customer_id",
          "give exactly one of memory_id and customer_id");
    }
    UUID memoryId = req.getMemoryId().isEmpty() ? null : v.id("memory_id", req.getMemoryId());
    UUID customerId = req.getCustomerId().isEmpty() ? null : v.id("customer_id", req.getCustomerId());
    int pageSize = v.pageSize("page_size", req.getPageSize());
    String filterKey = "memory_history|" + memoryId + "|" + customerId;
    Long after = v.ok() ? v.check(() -> tokens.decode(Tenants.current(), req.getPageToken(), filterKey, "page_token", 1,
        p -> Long.parseLong(p[0]))) : null;
    v.throwIfInvalid();
    MemoryChange.Page page = history.list(Tenants.current(), memoryId, customerId, after, pageSize);
    ListMemoryHistoryResponse.Builder b = ListMemoryHistoryResponse.newBuilder();
    page.changes().forEach(c -> b.addChanges(MemoryBatchRpcs.change(c)));
    if (page.next() != null) {
      b.setNextPageToken(tokens.encode(Tenants.current(), filterKey, Long.toString(page.next())));
    }
    reply(out, b.build());
  }

  @Override
  public void getMemory(GetMemoryRequest req, StreamObserver<GetMemoryResponse> out) {
    Validator v = new Validator();
    UUID id = v.id("memory_id", req.getMemoryId());
    v.throwIfInvalid();
    reply(out, GetMemoryResponse.newBuilder()
        .setMemory(MemoryMapping.memory(memories.get(Tenants.current(), id, req.getIncludeEmbedding()))).build());
  }

  @Override
  public void listMemories(ListMemoriesRequest req, StreamObserver<ListMemoriesResponse> out) {
    Validator v = new Validator();
    UUID customerId = v.id("customer_id", req.getCustomerId());
    int pageSize = v.pageSize("page_size", req.getPageSize());
    List<String> kinds = MemoryRequests.kinds(v, "kinds", req.getKindsValueList());
    UUID conversationId = req.getConversationId().isEmpty() ? null : v.id("conversation_id", req.getConversationId());
    String key = req.getKey().isEmpty() ? null : v.raw("key", req.getKey(), MemoryRequests.MAX_KEY_LENGTH);
    Memory.Filter filter = new Memory.Filter(kinds, conversationId, key, v.metadata("metadata_filter",
        req.getMetadataFilter()), MemoryRequests.asOf(v, req.hasAsOfTime(), req.getAsOfTime(), Instant.now()));
    String filterKey = "memories|" + customerId + "|" + filter;
    Memory.Cursor after = v.ok() ? v.check(() -> tokens.decode(Tenants.current(), req.getPageToken(), filterKey, "page_token", 2,
        p -> new Memory.Cursor(PageTokens.instant(p[0]), PageTokens.uuid(p[1])))) : null;
    v.throwIfInvalid();
    Memory.Page page = memories.list(Tenants.current(), customerId, filter, after, pageSize);
    ListMemoriesResponse.Builder b = ListMemoriesResponse.newBuilder();
    page.memories().forEach(m -> b.addMemories(MemoryMapping.memory(m)));
    if (page.next() != null) {
      b.setNextPageToken(tokens.encode(Tenants.current(), filterKey, PageTokens.micros(page.next().createdAt()),
          page.next().id().toString()));
    }
    reply(out, b.build());
  }

  @Override
  public void updateMemory(UpdateMemoryRequest req, StreamObserver<UpdateMemoryResponse> out) {
    Validator v = new Validator();
    dev.contextmemory.v1.Memory m = req.getMemory();
    UUID id = v.id("memory.id", m.getId());
    Set<MemoryField> fields = v.mask(req.getUpdateMask(), PATHS, MemoryField.class, f -> switch (f) {
      case KIND -> m.getKind() != MemoryKind.MEMORY_KIND_UNSPECIFIED;
      case KEY -> !m.getKey().isEmpty();
      case CONTENT -> !m.getContent().isBlank();
      case EMBEDDING -> m.getEmbeddingCount() > 0;
      case IMPORTANCE -> m.hasImportance();
      case METADATA -> m.getMetadata().getFieldsCount() > 0;
      case SOURCE -> !m.getSource().isBlank();
      case EXPIRE_TIME -> m.hasExpireTime();
      case CONVERSATION_ID -> !m.getConversationId().isEmpty();
    });
    Memory.Draft d = MemoryRequests.draft(v, embeddingDimension, m, fields, false, Instant.now());
    if (fields.contains(MemoryField.IMPORTANCE) && !m.hasImportance()) {
      v.add("memory.importance", "is required when the mask names it (there is no 'unset' importance)");
    }
    v.throwIfInvalid();
    reply(out, UpdateMemoryResponse.newBuilder().setMemory(MemoryMapping.memory(memories.update(Tenants.current(), Tenants.caller().actor(), id, d))).build());
  }

  @Override
  public void deleteMemory(DeleteMemoryRequest req, StreamObserver<DeleteMemoryResponse> out) {
    Validator v = new Validator();
    UUID id = v.id("memory_id", req.getMemoryId());
    v.throwIfInvalid();
    memories.delete(Tenants.current(), Tenants.caller().actor(), id);
    reply(out, DeleteMemoryResponse.getDefaultInstance());
  }

  @Override
  public void searchMemories(SearchMemoriesRequest req, StreamObserver<SearchMemoriesResponse> out) {
    Validator v = new Validator();
    UUID customerId = req.getCustomerId().isEmpty() ? null : v.id("customer_id", req.getCustomerId());
    String text = MemoryRequests.queryText(v, "query_text", req.getQueryText());
    float[] embedding = v.embedding("query_embedding", req.getQueryEmbeddingList(), embeddingDimension, false);
    Memory.Mode mode = switch (req.getMode()) {
      case MEMORY_SEARCH_MODE_VECTOR -> Memory.Mode.VECTOR;
      case MEMORY_SEARCH_MODE_TEXT -> Memory.Mode.TEXT;
      case MEMORY_SEARCH_MODE_HYBRID -> Memory.Mode.HYBRID;
      case MEMORY_SEARCH_MODE_UNSPECIFIED -> req.getQueryEmbeddingCount() > 0
          ? (req.getQueryText().isBlank() ? Memory.Mode.VECTOR : Memory.Mode.HYBRID)
          : Memory.Mode.TEXT;
      case UNRECOGNIZED -> {
        v.add("mode", "unknown mode " + req.getModeValue());
        yield Memory.Mode.TEXT;
      }
    };
    boolean neither = req.getQueryEmbeddingCount() == 0 && req.getQueryText().isBlank();
    if (neither && req.getMode() == MemorySearchMode.MEMORY_SEARCH_MODE_UNSPECIFIED) {
      v.add("query_embedding", "is required unless query_text is given");
    }
    if (mode != Memory.Mode.TEXT && req.getQueryEmbeddingCount() == 0) {
      v.add("query_embedding", "is required for " + mode + " search");
    }
    if (mode != Memory.Mode.VECTOR && req.getQueryText().isBlank()) {
      v.add("query_text", mode == Memory.Mode.TEXT && req.getMode() == MemorySearchMode.MEMORY_SEARCH_MODE_UNSPECIFIED
          ? "is required: give query_text, query_embedding or both" : "is required for " + mode + " search");
    }
    int topK = MemoryRequests.topK(v, req.getTopK());
    double min = req.getMinScore();
    if (Double.isNaN(min) || min < -1 || min > 1) {
      v.add("min_score", "must be within [-1, 1]");
    }
    List<String> kinds = MemoryRequests.kinds(v, "kinds", req.getKindsValueList());
    String metadata = v.metadata("metadata_filter", req.getMetadataFilter());
    Instant asOf = MemoryRequests.asOf(v, req.hasAsOfTime(), req.getAsOfTime(), Instant.now());
    v.throwIfInvalid();
    List<Memory.Hit> hits = search.search(Tenants.current(),
        new Memory.Search(customerId, mode, text, embedding, topK, min, kinds, metadata, asOf));
    reply(out, MemoryMapping.searchResponse(mode, hits));
  }

  @Override
  public void searchConversations(SearchConversationsRequest req, StreamObserver<SearchConversationsResponse> out) {
    Validator v = new Validator();
    float[] embedding = v.embedding("query_embedding", req.getQueryEmbeddingList(), embeddingDimension, true);
    UUID customerId = req.getCustomerId().isEmpty() ? null : v.id("customer_id", req.getCustomerId());
    String channel = null;
    if (req.getChannel() == Channel.UNRECOGNIZED) {
      v.add("channel", "unknown channel " + req.getChannelValue());
    } else if (req.getChannel() != Channel.CHANNEL_UNSPECIFIED) {
      channel = ConversationMapping.channel(req.getChannel());
    }
    String status = switch (req.getStatus()) {
      case CONVERSATION_STATUS_UNSPECIFIED -> null;
      case CONVERSATION_STATUS_OPEN -> "open";
      case CONVERSATION_STATUS_CLOSED -> "closed";
      case UNRECOGNIZED -> {
        v.add("status", "unknown status " + req.getStatusValue());
        yield null;
      }
    };
    int topK = MemoryRequests.topK(v, req.getTopK());
    double min = req.getMinScore();
    if (Double.isNaN(min) || min < -1 || min > 1) {
      v.add("min_score", "must be within [-1, 1]");
    }
    v.throwIfInvalid();
    SearchConversationsResponse.Builder b = SearchConversationsResponse.newBuilder();
    for (Map.Entry<Conversation, Double> e : conversations.searchBySummary(Tenants.current(), embedding, customerId,
        channel, status, topK, min)) {
      b.addHits(ConversationSearchHit.newBuilder()
          .setConversation(ConversationMapping.conversation(e.getKey())).setScore(e.getValue()));
    }
    reply(out, b.build());
  }

  @Override
  public void fetchContext(FetchContextRequest req, StreamObserver<FetchContextResponse> out) {
    Validator v = new Validator();
    UUID customerId = v.id("customer_id", req.getCustomerId());
    UUID conversationId = req.getConversationId().isEmpty() ? null : v.id("conversation_id", req.getConversationId());
    String text = req.getQueryText().isBlank() ? null : MemoryRequests.queryText(v, "query_text", req.getQueryText());
    float[] embedding = v.embedding("query_embedding", req.getQueryEmbeddingList(), embeddingDimension, false);
    int messages = MemoryRequests.limit(v, "message_limit", req.hasMessageLimit(), req.getMessageLimit(), DEFAULT_CONTEXT_MESSAGES,
        MAX_CONTEXT_MESSAGES);
    int memoryLimit = MemoryRequests.limit(v, "memory_limit", req.hasMemoryLimit(), req.getMemoryLimit(), DEFAULT_CONTEXT_MEMORIES,
        MAX_CONTEXT_MEMORIES);
    List<String> kinds = MemoryRequests.kinds(v, "memory_kinds", req.getMemoryKindsValueList());
    v.throwIfInvalid();
    Context c = search.context(Tenants.current(),
        new Context.Request(customerId, conversationId, text, embedding, messages, memoryLimit, kinds));
    reply(out, MemoryMapping.fetchContextResponse(c));
  }

  @Override
  public void confirmMemories(ConfirmMemoriesRequest req, StreamObserver<ConfirmMemoriesResponse> out) {
    Validator v = new Validator();
    int n = req.getConfirmationsCount();
    if (n == 0) {
      v.add("confirmations", "must hold at least one item");
    } else if (n > MAX_CONFIRMATIONS) {
      v.add("confirmations", "must hold at most " + MAX_CONFIRMATIONS + " items, got " + n);
    }
    List<Memory.Confirmation> items = new ArrayList<>();
    Set<UUID> seen = new HashSet<>();
    for (int i = 0; i < Math.min(n, MAX_CONFIRMATIONS); i++) {
      MemoryConfirmation c = req.getConfirmations(i);
      String f = "confirmations[" + i + "]";
      UUID id = v.id(f + ".memory_id", c.getMemoryId());
      if (id != null && !seen.add(id)) {
        v.add(f + ".memory_id", "names a memory an earlier item already names");
      }
      boolean confirmed = switch (c.getOutcome()) {
        case CONFIRMATION_OUTCOME_CONFIRMED -> true;
        case CONFIRMATION_OUTCOME_REJECTED -> false;
        case CONFIRMATION_OUTCOME_UNSPECIFIED, UNRECOGNIZED -> {
          v.add(f + ".outcome", "must be CONFIRMED or REJECTED");
          yield true;
        }
      };
      Duration extend = null;
      if (c.hasExtendExpiry()) {
        extend = Duration.ofSeconds(c.getExtendExpiry().getSeconds(), c.getExtendExpiry().getNanos());
        if (!confirmed) {
          v.add(f + ".extend_expiry", "is only allowed with outcome CONFIRMED");
        } else if (extend.isNegative() || extend.isZero() || extend.compareTo(MAX_EXTENSION) > 0) {
          v.add(f + ".extend_expiry", "must be positive and at most 3,650 days");
        }
      }
      if (c.getDeleteOnReject() && confirmed) {
        v.add(f + ".delete_on_reject", "is only allowed with outcome REJECTED");
      }
      items.add(new Memory.Confirmation(id, confirmed, extend, c.getDeleteOnReject()));
    }
    v.throwIfInvalid();
    ConfirmMemoriesResponse.Builder b = ConfirmMemoriesResponse.newBuilder();
    for (Memory.ConfirmationResult r : confirmations.confirm(Tenants.current(), Tenants.caller().actor(), items)) {
      b.addResults(MemoryMapping.confirmationResult(r));
    }
    reply(out, b.build());
  }

  private static <T> void reply(StreamObserver<T> out, T response) {
    out.onNext(response);
    out.onCompleted();
  }
}

package dev.contextmemory.server.grpc;

import dev.contextmemory.server.domain.Context;
import dev.contextmemory.server.domain.Conversation;
import dev.contextmemory.server.domain.Memory;
import dev.contextmemory.server.domain.MemoryField;
import dev.contextmemory.server.store.ConversationStore;
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
 * are thrown and become statuses in {@link ExceptionInterceptor}.
 */
public final class MemoryGrpcService extends MemoryServiceGrpc.MemoryServiceImplBase {
  static final int MAX_KEY_LENGTH = 256;
  static final int MAX_CONTENT_LENGTH = 8_192;
  static final int MAX_SOURCE_LENGTH = 256;
  static final int MAX_QUERY_LENGTH = 1_024;
  static final int DEFAULT_TOP_K = 10;
  static final int MAX_TOP_K = 100;
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
  private final ConversationStore conversations;
  private final int embeddingDimension;

  public MemoryGrpcService(MemoryStore memories, ConversationStore conversations, int embeddingDimension) {
    this.memories = memories;
    this.conversations = conversations;
    this.embeddingDimension = embeddingDimension;
  }

  @Override
  public void createMemory(CreateMemoryRequest req, StreamObserver<CreateMemoryResponse> out) {
    Validator v = new Validator();
    UUID customerId = v.id("customer_id", req.getCustomerId());
    Memory.Draft d = draft(v, req.getMemory(), EnumSet.allOf(MemoryField.class), false, Instant.now());
    String requestId = v.requestId("request_id", req.getRequestId());
    v.throwIfInvalid();
    Memory m = memories.create(Tenants.current(), customerId, d, requestId);
    reply(out, CreateMemoryResponse.newBuilder().setMemory(memory(m)).build());
  }

  @Override
  public void upsertMemory(UpsertMemoryRequest req, StreamObserver<UpsertMemoryResponse> out) {
    Validator v = new Validator();
    UUID customerId = v.id("customer_id", req.getCustomerId());
    Memory.Draft d = draft(v, req.getMemory(), EnumSet.allOf(MemoryField.class), true, Instant.now());
    v.throwIfInvalid();
    Memory.Upserted u = memories.upsert(Tenants.current(), customerId, d);
    reply(out, UpsertMemoryResponse.newBuilder().setMemory(memory(u.memory())).setCreated(u.created()).build());
  }

  @Override
  public void getMemory(GetMemoryRequest req, StreamObserver<GetMemoryResponse> out) {
    Validator v = new Validator();
    UUID id = v.id("memory_id", req.getMemoryId());
    v.throwIfInvalid();
    reply(out, GetMemoryResponse.newBuilder()
        .setMemory(memory(memories.get(Tenants.current(), id, req.getIncludeEmbedding()))).build());
  }

  @Override
  public void listMemories(ListMemoriesRequest req, StreamObserver<ListMemoriesResponse> out) {
    Validator v = new Validator();
    UUID customerId = v.id("customer_id", req.getCustomerId());
    int pageSize = v.pageSize("page_size", req.getPageSize());
    List<String> kinds = kinds(v, "kinds", req.getKindsValueList());
    UUID conversationId = req.getConversationId().isEmpty() ? null : v.id("conversation_id", req.getConversationId());
    String key = req.getKey().isEmpty() ? null : v.raw("key", req.getKey(), MAX_KEY_LENGTH);
    Memory.Filter filter = new Memory.Filter(kinds, conversationId, key, v.metadata("metadata_filter",
        req.getMetadataFilter()));
    String filterKey = "memories|" + customerId + "|" + filter;
    Memory.Cursor after = v.ok() ? v.check(() -> PageTokens.decodeParts(req.getPageToken(), filterKey, "page_token", 2,
        p -> new Memory.Cursor(PageTokens.instant(p[0]), PageTokens.uuid(p[1])))) : null;
    v.throwIfInvalid();
    Memory.Page page = memories.list(Tenants.current(), customerId, filter, after, pageSize);
    ListMemoriesResponse.Builder b = ListMemoriesResponse.newBuilder();
    page.memories().forEach(m -> b.addMemories(memory(m)));
    if (page.next() != null) {
      b.setNextPageToken(PageTokens.encodeParts(filterKey, PageTokens.micros(page.next().createdAt()),
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
    Memory.Draft d = draft(v, m, fields, false, Instant.now());
    if (fields.contains(MemoryField.IMPORTANCE) && !m.hasImportance()) {
      v.add("memory.importance", "is required when the mask names it (there is no 'unset' importance)");
    }
    v.throwIfInvalid();
    reply(out, UpdateMemoryResponse.newBuilder().setMemory(memory(memories.update(Tenants.current(), id, d))).build());
  }

  @Override
  public void deleteMemory(DeleteMemoryRequest req, StreamObserver<DeleteMemoryResponse> out) {
    Validator v = new Validator();
    UUID id = v.id("memory_id", req.getMemoryId());
    v.throwIfInvalid();
    memories.delete(Tenants.current(), id);
    reply(out, DeleteMemoryResponse.getDefaultInstance());
  }

  @Override
  public void searchMemories(SearchMemoriesRequest req, StreamObserver<SearchMemoriesResponse> out) {
    Validator v = new Validator();
    UUID customerId = req.getCustomerId().isEmpty() ? null : v.id("customer_id", req.getCustomerId());
    String text = queryText(v, "query_text", req.getQueryText());
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
    int topK = topK(v, req.getTopK());
    double min = req.getMinScore();
    if (Double.isNaN(min) || min < -1 || min > 1) {
      v.add("min_score", "must be within [-1, 1]");
    }
    List<String> kinds = kinds(v, "kinds", req.getKindsValueList());
    String metadata = v.metadata("metadata_filter", req.getMetadataFilter());
    v.throwIfInvalid();
    List<Memory.Hit> hits = memories.search(Tenants.current(),
        new Memory.Search(customerId, mode, text, embedding, topK, min, kinds, metadata));
    SearchMemoriesResponse.Builder b = SearchMemoriesResponse.newBuilder().setMode(switch (mode) {
      case VECTOR -> MemorySearchMode.MEMORY_SEARCH_MODE_VECTOR;
      case TEXT -> MemorySearchMode.MEMORY_SEARCH_MODE_TEXT;
      case HYBRID -> MemorySearchMode.MEMORY_SEARCH_MODE_HYBRID;
    });
    for (Memory.Hit h : hits) {
      b.addHits(MemorySearchHit.newBuilder().setMemory(memory(h.memory())).setScore(h.score())
          .setVectorSimilarity(h.vectorSimilarity()).setVectorRank(h.vectorRank())
          .setTextScore(h.textScore()).setTextRank(h.textRank()));
    }
    reply(out, b.build());
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
    int topK = topK(v, req.getTopK());
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
    String text = req.getQueryText().isBlank() ? null : queryText(v, "query_text", req.getQueryText());
    float[] embedding = v.embedding("query_embedding", req.getQueryEmbeddingList(), embeddingDimension, false);
    int messages = limit(v, "message_limit", req.hasMessageLimit(), req.getMessageLimit(), DEFAULT_CONTEXT_MESSAGES,
        MAX_CONTEXT_MESSAGES);
    int memoryLimit = limit(v, "memory_limit", req.hasMemoryLimit(), req.getMemoryLimit(), DEFAULT_CONTEXT_MEMORIES,
        MAX_CONTEXT_MEMORIES);
    List<String> kinds = kinds(v, "memory_kinds", req.getMemoryKindsValueList());
    v.throwIfInvalid();
    Context c = memories.context(Tenants.current(),
        new Context.Request(customerId, conversationId, text, embedding, messages, memoryLimit, kinds));
    FetchContextResponse.Builder b = FetchContextResponse.newBuilder().setCustomer(ProtoMapping.customer(c.customer()));
    c.openConversations().forEach(o -> b.addOpenConversations(ConversationMapping.conversation(o)));
    if (c.conversation() != null) {
      b.setConversation(ConversationMapping.conversation(c.conversation()));
    }
    c.recentMessages().forEach(m -> b.addRecentMessages(ConversationMapping.message(m)));
    for (Memory.Scored s : c.memories()) {
      b.addMemories(ScoredMemory.newBuilder().setMemory(memory(s.memory())).setBreakdown(ScoreBreakdown.newBuilder()
          .setFinalScore(s.finalScore()).setRelevance(s.relevance()).setVectorSimilarity(s.vectorSimilarity())
          .setTextScore(s.textScore()).setImportance(s.importance()).setRecency(s.recency())
          .setConfirmation(s.confirmation())));
    }
    reply(out, b.build());
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
    for (Memory.ConfirmationResult r : memories.confirm(Tenants.current(), items)) {
      MemoryConfirmationResult.Builder rb = MemoryConfirmationResult.newBuilder().setMemoryId(r.memoryId().toString())
          .setEffect(switch (r.effect()) {
            case CONFIRMED -> ConfirmationEffect.CONFIRMATION_EFFECT_CONFIRMED;
            case DEMOTED -> ConfirmationEffect.CONFIRMATION_EFFECT_DEMOTED;
            case DELETED -> ConfirmationEffect.CONFIRMATION_EFFECT_DELETED;
            case NOT_FOUND -> ConfirmationEffect.CONFIRMATION_EFFECT_NOT_FOUND;
          });
      if (r.memory() != null) {
        rb.setMemory(memory(r.memory()));
      }
      b.addResults(rb);
    }
    reply(out, b.build());
  }

  // ---------------------------------------------------------------------------------------------

  /**
   * The memory fields of a create, upsert or update. Create and upsert write every field (kind and
   * content required; upsert also needs the key); an update checks only what its mask names.
   */
  private Memory.Draft draft(Validator v, dev.contextmemory.v1.Memory m, Set<MemoryField> fields, boolean upsert,
      Instant now) {
    boolean all = fields.size() == MemoryField.values().length;
    String kind = null;
    if (fields.contains(MemoryField.KIND)) {
      kind = kind(m.getKind());
      if (kind == null) {
        v.add("memory.kind", m.getKind() == MemoryKind.MEMORY_KIND_UNSPECIFIED ? "is required"
            : "unknown kind " + m.getKindValue());
      }
    }
    String key = m.getKey().isEmpty() ? null : v.raw("memory.key", m.getKey(), MAX_KEY_LENGTH);
    if (upsert && m.getKey().isEmpty()) {
      v.add("memory.key", "is required: UpsertMemory finds the memory by its key");
    }
    String content = fields.contains(MemoryField.CONTENT)
        ? v.requiredText("memory.content", m.getContent(), MAX_CONTENT_LENGTH) : null;
    float[] embedding = v.embedding("memory.embedding", m.getEmbeddingList(), embeddingDimension, false);
    Float importance = null;
    if (m.hasImportance()) {
      float x = m.getImportance();
      if (Float.isNaN(x) || x < 0 || x > 1) {
        v.add("memory.importance", "must be within [0, 1]");
      } else {
        importance = x;
      }
    }
    String source = v.text("memory.source", m.getSource(), MAX_SOURCE_LENGTH);
    Instant expires = v.timestamp("memory.expire_time", m.hasExpireTime(), m.getExpireTime());
    if (expires != null && !expires.isAfter(now) && (all || fields.contains(MemoryField.EXPIRE_TIME))) {
      v.add("memory.expire_time", "must be in the future");
    }
    UUID conversationId = m.getConversationId().isEmpty() ? null
        : v.id("memory.conversation_id", m.getConversationId());
    return new Memory.Draft(conversationId, kind, key, content, v.metadata("memory.metadata", m.getMetadata()),
        embedding, importance, source, expires, fields);
  }

  private static String kind(MemoryKind k) {
    return switch (k) {
      case MEMORY_KIND_FACT -> "fact";
      case MEMORY_KIND_PREFERENCE -> "preference";
      case MEMORY_KIND_SUMMARY -> "summary";
      case MEMORY_KIND_INSTRUCTION -> "instruction";
      case MEMORY_KIND_OTHER -> "other";
      case MEMORY_KIND_UNSPECIFIED, UNRECOGNIZED -> null;
    };
  }

  private static MemoryKind kind(String stored) {
    return switch (stored) {
      case "fact" -> MemoryKind.MEMORY_KIND_FACT;
      case "preference" -> MemoryKind.MEMORY_KIND_PREFERENCE;
      case "summary" -> MemoryKind.MEMORY_KIND_SUMMARY;
      case "instruction" -> MemoryKind.MEMORY_KIND_INSTRUCTION;
      default -> MemoryKind.MEMORY_KIND_OTHER;
    };
  }

  private static List<String> kinds(Validator v, String field, List<Integer> values) {
    List<String> out = new ArrayList<>();
    for (int i = 0; i < values.size(); i++) {
      MemoryKind k = MemoryKind.forNumber(values.get(i));
      String stored = k == null ? null : kind(k);
      if (stored == null) {
        v.add(field + "[" + i + "]", k == MemoryKind.MEMORY_KIND_UNSPECIFIED
            ? "must not be MEMORY_KIND_UNSPECIFIED" : "unknown kind " + values.get(i));
      } else if (!out.contains(stored)) {
        out.add(stored);
      }
    }
    out.sort(null);
    return List.copyOf(out);
  }

  private static int topK(Validator v, int requested) {
    if (requested < 0) {
      v.add("top_k", "must not be negative (0 means " + DEFAULT_TOP_K + ")");
      return DEFAULT_TOP_K;
    }
    return requested == 0 ? DEFAULT_TOP_K : Math.min(requested, MAX_TOP_K);
  }

  private static int limit(Validator v, String field, boolean present, int value, int fallback, int max) {
    if (!present) {
      return fallback;
    }
    if (value < 0) {
      v.add(field, "must not be negative");
      return fallback;
    }
    return Math.min(value, max);
  }

  private static String queryText(Validator v, String field, String s) {
    if (s.isBlank()) {
      return null;
    }
    return v.raw(field, s, MAX_QUERY_LENGTH);
  }


  static dev.contextmemory.v1.Memory memory(Memory m) {
    var b = dev.contextmemory.v1.Memory.newBuilder()
        .setId(m.id().toString())
        .setCustomerId(m.customerId().toString())
        .setKind(kind(m.kind()))
        .setContent(m.content())
        .setMetadata(ProtoMapping.struct(m.metadataJson()))
        .setHasEmbedding(m.hasEmbedding())
        .setImportance(m.importance())
        .setSource(m.source())
        .setConfirmCount(m.confirmCount())
        .setCreateTime(ProtoMapping.timestamp(m.createdAt()))
        .setUpdateTime(ProtoMapping.timestamp(m.updatedAt()));
    if (m.conversationId() != null) {
      b.setConversationId(m.conversationId().toString());
    }
    if (m.key() != null) {
      b.setKey(m.key());
    }
    if (m.embedding() != null) {
      for (float x : m.embedding()) {
        b.addEmbedding(x);
      }
    }
    if (m.expiresAt() != null) {
      b.setExpireTime(ProtoMapping.timestamp(m.expiresAt()));
    }
    if (m.lastConfirmedAt() != null) {
      b.setLastConfirmTime(ProtoMapping.timestamp(m.lastConfirmedAt()));
    }
    return b.build();
  }

  private static <T> void reply(StreamObserver<T> out, T response) {
    out.onNext(response);
    out.onCompleted();
  }
}

package dev.contextmemory.loadtest.scenarios;

import dev.contextmemory.loadtest.Profile;
import dev.contextmemory.loadtest.Targets;
import dev.contextmemory.loadtest.data.DataSet;
import dev.contextmemory.loadtest.data.FactSetup;
import dev.contextmemory.loadtest.data.Facts;
import dev.contextmemory.loadtest.data.Setup;
import dev.contextmemory.loadtest.data.Texts;
import dev.contextmemory.loadtest.dsl.Assertion;
import dev.contextmemory.loadtest.dsl.Injection;
import dev.contextmemory.loadtest.dsl.Scenario;
import dev.contextmemory.loadtest.dsl.Session;
import dev.contextmemory.loadtest.dsl.Step;
import com.google.protobuf.Struct;
import com.google.protobuf.Value;
import dev.contextmemory.v1.AppendMessageRequest;
import dev.contextmemory.v1.AppendMessagesRequest;
import dev.contextmemory.v1.ConversationServiceGrpc;
import dev.contextmemory.v1.ConversationStatus;
import dev.contextmemory.v1.CreateMemoriesRequest;
import dev.contextmemory.v1.CreateMemoryRequest;
import dev.contextmemory.v1.FetchContextRequest;
import dev.contextmemory.v1.GetOrCreateOpenConversationRequest;
import dev.contextmemory.v1.GetUsageMetricsRequest;
import dev.contextmemory.v1.ListConversationsRequest;
import dev.contextmemory.v1.ListMessagesRequest;
import dev.contextmemory.v1.Memory;
import dev.contextmemory.v1.MemoryKind;
import dev.contextmemory.v1.MemorySearchHit;
import dev.contextmemory.v1.MemoryServiceGrpc;
import dev.contextmemory.v1.Message;
import dev.contextmemory.v1.MessageRole;
import dev.contextmemory.v1.SearchMemoriesRequest;
import dev.contextmemory.v1.SearchMessagesRequest;
import dev.contextmemory.v1.TimeRange;
import dev.contextmemory.v1.UpsertMemoryRequest;
import dev.contextmemory.v1.UsageBucketWidth;
import io.grpc.MethodDescriptor;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.UUID;
import java.util.function.Function;

/**
 * The scenarios of the issue, in report order. Each session picks its inputs from the data set
 * with its own random source; queries are drawn from the same distributions as the data (the
 * vector queries from the clusters the memories come from), so searches find real matches.
 */
public final class Scenarios {
  /** Session keys. */
  private static final String CONVERSATION = "conversation";
  private static final String MEMORY = "memory";
  private static final String QUERY = "query";
  private static final String CONVERSATION_ID = "conversation_id";
  /** Top k of the memory searches, and the k of recall@k. */
  public static final int K = 10;

  /**
   * A scenario as the run plans it.
   *
   * @param needs the data the scenario reads: "conversations" and/or "memories"; when the set-up
   *     could not write them (service not implemented yet) it is skipped
   * @param build makes the scenario once the data exists
   * @param recall the sampler of its answers, for the memory searches; else null
   * @param quality the top-hit check of its answers (search_memories_text); else null
   */
  public record Definition(String name, Set<String> needs, Function<Setup.Result, Scenario> build,
      RecallSampler recall, TopHitQuality quality) {
    public Definition(String name, Set<String> needs, Function<Setup.Result, Scenario> build, RecallSampler recall) {
      this(name, needs, build, recall, null);
    }
  }

  private final Profile profile;
  private final Targets targets;
  private final DataSet data;
  private final FactSetup.Loaded facts;

  public Scenarios(Profile profile, Targets targets, DataSet data) {
    this(profile, targets, data, null);
  }

  /** @param facts the text-search data set, once written (null before, or without an embedder) */
  public Scenarios(Profile profile, Targets targets, DataSet data, FactSetup.Loaded facts) {
    this.profile = profile;
    this.targets = targets;
    this.data = data;
    this.facts = facts;
  }

  public List<Definition> all() {
    List<Definition> d = new ArrayList<>();
    d.add(new Definition("append_message", Set.of("conversations"), this::appendMessage, null));
    d.add(new Definition("append_messages_100", Set.of("conversations"), this::appendMessages100, null));
    d.add(new Definition("list_messages_20", Set.of("conversations"), this::listMessages20, null));
    d.add(new Definition("search_messages", Set.of("conversations"), this::searchMessages, null));
    RecallSampler perCustomer = new RecallSampler(profile.recallSamples());
    d.add(new Definition("search_memories_customer", Set.of("memories"),
        s -> searchMemories("search_memories_customer", s, true, perCustomer), perCustomer));
    RecallSampler tenant = new RecallSampler(profile.recallSamples());
    d.add(new Definition("search_memories_tenant", Set.of("memories"),
        s -> searchMemories("search_memories_tenant", s, false, tenant), tenant));
    d.add(new Definition("fetch_context", Set.of("conversations", "memories"), this::fetchContext, null));
    d.add(new Definition("list_conversations_customer", Set.of("conversations"), this::listConversationsCustomer, null));
    d.add(new Definition("list_conversations_open", Set.of("conversations"), this::listConversationsOpen, null));
    d.add(new Definition("list_conversations_metadata", Set.of("conversations"), this::listConversationsMetadata, null));
    d.add(new Definition("usage_metrics", Set.of("conversations"), this::usageMetrics, null));
    // Last: it writes memories (in the reserved cluster) and messages while it runs.
    d.add(new Definition("agent_turn", Set.of("conversations", "memories"), this::agentTurn, null));
    // On demand (ON_DEMAND), after everything that reads: they add memories to the data set.
    d.add(new Definition("create_memory", Set.of("memories"), this::createMemory, null));
    d.add(new Definition("create_memories_batch", Set.of("memories"), this::createMemoriesBatch, null));
    // On demand, on a server that embeds (EMBEDDER_SCENARIOS): their own data set of fact texts.
    TopHitQuality quality = new TopHitQuality(Facts.MIN_TOP_HIT_SHARE);
    d.add(new Definition("search_memories_text", Set.of("facts"), s -> searchMemoriesText(s, quality), null, quality));
    return d;
  }

  /**
   * The scenarios that need the server to embed (CONTEXT_MEMORY_EMBEDDER=local): on demand, and
   * never in one run with the others. A deployment has one model; the other scenarios write and
   * search 768-dimensional client vectors, which a server with the local model would not search
   * (and would queue for re-embedding at its next start). The harness starts its server with the
   * local model when --only names these (docs/search.md "Measured figures").
   */
  public static final Set<String> EMBEDDER_SCENARIOS = Set.of("search_memories_text", "write_searchable");

  /**
   * Scenarios that run only when named in --only: the bulk-write throughput measurement (issue 15)
   * and its single-write comparison. Each 1,000-memory batch with 768-dim vectors is 1,000 HNSW
   * inserts, seconds of database CPU on a shared 2-core machine, which no fixed p99 gate of every
   * build can hold; docs/search.md has the measured figures and the command.
   */
  public static final Set<String> ON_DEMAND = Set.of("create_memory", "create_memories_batch", "search_memories_text",
      "write_searchable");

  /** Items per CreateMemories call of create_memories_batch: the API's maximum. */
  public static final int BATCH = 1_000;

  /** The rate of the transport floor: the highest of the read scenarios' rates (list_messages_20). */
  public static final double FLOOR_RATE = 200;

  /**
   * The transport floor: gRPC Health/Check, which touches no database, through the same channel and
   * engine at {@link #FLOOR_RATE}. Every scenario's latency includes it: it is what this machine's
   * scheduler, the HTTP/2 stack and the harness cost before our code runs, and on a 2-core VM where
   * threads park between requests its p99 alone is several milliseconds.
   */
  public Scenario transportFloor() {
    return Scenario.named("transport_floor")
        .warmUp(Injection.constantRate(FLOOR_RATE, profile.warmUp()))
        .inject(Injection.constantRate(FLOOR_RATE, profile.measure()))
        .exec(Step.call(HEALTH_CHECK, s -> new byte[0])) // an empty HealthCheckRequest: the server's health
        .build();
  }

  /** Passes the bytes through: Health/Check's request and response are used as they are on the wire. */
  private static final MethodDescriptor.Marshaller<byte[]> RAW = new MethodDescriptor.Marshaller<>() {
    @Override
    public InputStream stream(byte[] value) {
      return new ByteArrayInputStream(value);
    }

    @Override
    public byte[] parse(InputStream in) {
      try {
        return in.readAllBytes();
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }
  };

  /** grpc.health.v1.Health/Check without the grpc-services stubs (which the harness does not need). */
  private static final MethodDescriptor<byte[], byte[]> HEALTH_CHECK = MethodDescriptor.<byte[], byte[]>newBuilder()
      .setType(MethodDescriptor.MethodType.UNARY)
      .setFullMethodName("grpc.health.v1.Health/Check")
      .setRequestMarshaller(RAW)
      .setResponseMarshaller(RAW)
      .build();

  private Scenario.Builder base(String name) {
    double rate = profile.rate(name);
    return Scenario.named(name)
        .warmUp(Injection.constantRate(rate, profile.warmUp()))
        .inject(Injection.constantRate(rate, profile.measure()))
        .targetP99Ms(targets.p99Ms(name))
        .assertThat(Assertion.errorRate(profile.maxErrorRate()));
  }

  /** A random conversation of the data set. */
  private Scenario.Builder withConversation(Scenario.Builder b) {
    int n = data.sizes().conversations();
    return b.feed(CONVERSATION, s -> s.random().nextInt(n));
  }

  // ------------------------------------------------------------------------------- conversations

  private Scenario appendMessage(Setup.Result setup) {
    return withConversation(base("append_message"))
        .exec(Step.call(ConversationServiceGrpc.getAppendMessageMethod(), s -> AppendMessageRequest.newBuilder()
            .setConversationId(setup.conversationIds()[s.<Integer>get(CONVERSATION)])
            .setMessage(newMessage(s, MessageRole.MESSAGE_ROLE_USER))
            .build()))
        .build();
  }

  private Scenario appendMessages100(Setup.Result setup) {
    return withConversation(base("append_messages_100"))
        .exec(Step.call(ConversationServiceGrpc.getAppendMessagesMethod(), s -> {
          var b = AppendMessagesRequest.newBuilder()
              .setConversationId(setup.conversationIds()[s.<Integer>get(CONVERSATION)]);
          for (int i = 0; i < 100; i++) {
            b.addMessages(newMessage(s, i % 2 == 0 ? MessageRole.MESSAGE_ROLE_USER : MessageRole.MESSAGE_ROLE_ASSISTANT));
          }
          return b.build();
        }))
        .build();
  }

  private Scenario listMessages20(Setup.Result setup) {
    return withConversation(base("list_messages_20"))
        .exec(Step.call(ConversationServiceGrpc.getListMessagesMethod(), s -> ListMessagesRequest.newBuilder()
            .setConversationId(setup.conversationIds()[s.<Integer>get(CONVERSATION)])
            .setPageSize(20)
            .build()))
        .build();
  }

  /** A customer's history searched for one or two words: the agent's "what did we say about X". */
  private Scenario searchMessages(Setup.Result setup) {
    int customers = data.sizes().customers();
    return base("search_messages")
        .feed("customer", s -> s.random().nextInt(customers))
        .exec(Step.call(ConversationServiceGrpc.getSearchMessagesMethod(), s -> SearchMessagesRequest.newBuilder()
            .setQuery(Texts.query(s.random()))
            .setCustomerId(setup.customerIds()[s.<Integer>get("customer")])
            .build()))
        .build();
  }

  /** Page size of the conversation lookups: what an agent console shows at once. */
  public static final int CONVERSATION_PAGE = 20;
  /** The share of list_conversations_open calls that ask tenant-wide for one channel's open conversations. */
  public static final double OPEN_TENANT_WIDE_SHARE = 0.2;

  /**
   * The handoff seed's "user conversation lookup": the first page of one regular customer's
   * conversations, newest first. Regulars (two open and twenty closed conversations) are the
   * customers whose lookup has the most to read.
   */
  private Scenario listConversationsCustomer(Setup.Result setup) {
    int regulars = data.regulars();
    return base("list_conversations_customer")
        .feed("customer", s -> s.random().nextInt(regulars))
        .exec(Step.call(ConversationServiceGrpc.getListConversationsMethod(), s -> ListConversationsRequest.newBuilder()
            .setCustomerId(setup.customerIds()[s.<Integer>get("customer")])
            .setPageSize(CONVERSATION_PAGE)
            .build()))
        .build();
  }

  /**
   * The seed's "active conversations lookup": a regular customer's open conversations (found among
   * its closed history), and in {@link #OPEN_TENANT_WIDE_SHARE} of the calls the tenant's open
   * conversations of one channel, newest first (an agent console's queue).
   */
  private Scenario listConversationsOpen(Setup.Result setup) {
    int regulars = data.regulars();
    int channels = data.sizes().conversationsPerCustomer();
    return base("list_conversations_open")
        .feed("customer", s -> s.random().nextDouble() < OPEN_TENANT_WIDE_SHARE ? -1 : s.random().nextInt(regulars))
        .feed("channel", s -> s.random().nextInt(channels))
        .exec(Step.call(ConversationServiceGrpc.getListConversationsMethod(), s -> {
          var b = ListConversationsRequest.newBuilder()
              .setStatus(ConversationStatus.CONVERSATION_STATUS_OPEN)
              .setPageSize(CONVERSATION_PAGE);
          int customer = s.get("customer");
          if (customer >= 0) {
            b.setCustomerId(setup.customerIds()[customer]);
          } else {
            b.setChannel(data.channel(s.<Integer>get("channel")));
          }
          return b.build();
        }))
        .build();
  }

  /**
   * The seed's "metadata query": the tenant's conversations of one shop ({@code {"shop_id": "n"}},
   * about 1 % of them), first page, newest first.
   */
  private Scenario listConversationsMetadata(Setup.Result setup) {
    return base("list_conversations_metadata")
        .feed("shop", s -> s.random().nextInt(DataSet.SHOPS))
        .exec(Step.call(ConversationServiceGrpc.getListConversationsMethod(), s -> ListConversationsRequest.newBuilder()
            .setMetadataFilter(Struct.newBuilder().putFields("shop_id",
                Value.newBuilder().setStringValue(Integer.toString(s.<Integer>get("shop"))).build()))
            .setPageSize(CONVERSATION_PAGE)
            .build()))
        .build();
  }

  /** Days of the usage_metrics range: issue 14's "90 daily buckets". */
  public static final int USAGE_DAYS = 90;
  /** The share of usage_metrics calls that group by channel. */
  public static final double USAGE_BY_CHANNEL_SHARE = 0.25;

  /**
   * A dashboard's usage chart: GetUsageMetrics of the last 90 UTC days in daily buckets, in
   * {@link #USAGE_BY_CHANNEL_SHARE} of the calls per channel.
   */
  private Scenario usageMetrics(Setup.Result setup) {
    return base("usage_metrics")
        .feed("by_channel", s -> s.random().nextDouble() < USAGE_BY_CHANNEL_SHARE)
        .exec(Step.call(ConversationServiceGrpc.getGetUsageMetricsMethod(), s -> {
          long tomorrow = java.time.Instant.now().truncatedTo(java.time.temporal.ChronoUnit.DAYS).getEpochSecond()
              + 86_400;
          return GetUsageMetricsRequest.newBuilder()
              .setTimeRange(TimeRange.newBuilder()
                  .setStartTime(com.google.protobuf.Timestamp.newBuilder().setSeconds(tomorrow - USAGE_DAYS * 86_400L))
                  .setEndTime(com.google.protobuf.Timestamp.newBuilder().setSeconds(tomorrow)))
              .setBucketWidth(UsageBucketWidth.USAGE_BUCKET_WIDTH_DAY)
              .setGroupByChannel(s.<Boolean>get("by_channel"))
              .build();
        }))
        .build();
  }

  // ------------------------------------------------------------------------------------ memories

  /**
   * k-NN by embedding. Per customer: a random memory picks the customer (so customers with more
   * memories are searched more, as regulars are) and the query's cluster. Tenant-wide: a random
   * cluster. Every answer is offered to the recall sampler with its query.
   */
  private Scenario searchMemories(String name, Setup.Result setup, boolean perCustomer, RecallSampler sampler) {
    int memories = data.sizes().memories();
    int clusters = data.sizes().clusters();
    return base(name)
        .feed(MEMORY, s -> s.random().nextInt(memories))
        .exec(Step.call(MemoryServiceGrpc.getSearchMemoriesMethod(), s -> {
          int j = s.get(MEMORY);
          int cluster = perCustomer ? data.clusterOfMemory(j) : s.random().nextInt(clusters);
          float[] q = data.vectors().member(cluster, queryKey(s));
          s.put(QUERY, q);
          var b = SearchMemoriesRequest.newBuilder().setTopK(K);
          if (perCustomer) {
            b.setCustomerId(setup.customerIds()[data.customerOfMemory(j)]);
          }
          for (float f : q) {
            b.addQueryEmbedding(f);
          }
          return b.build();
        }).saving((s, r) -> sampler.offer(s.get(QUERY), perCustomer ? data.customerOfMemory(s.get(MEMORY)) : -1,
            r.getHitsList().stream().map(MemorySearchHit::getMemory).map(Memory::getId).toList())))
        .build();
  }

  /**
   * Issue 15: SearchMemories with {@code query_text} alone (no vector) on a server with the local
   * model, so every call embeds its question (the harness's server runs with the query-embedding
   * cache off) and runs the default HYBRID search (vector list and text list fused by RRF). A
   * random memory picks the customer (regulars are searched more) and the question's category
   * (so the customer has at least one fact of it); a random question of that category is asked.
   * Each answer's top hit is checked against the category ({@link TopHitQuality}).
   */
  private Scenario searchMemoriesText(Setup.Result setup, TopHitQuality quality) {
    if (facts == null) {
      throw new IllegalStateException("search_memories_text needs the fact data set");
    }
    Facts f = facts.facts();
    int memories = facts.memoryIds().length;
    return base("search_memories_text")
        .feed(MEMORY, s -> s.random().nextInt(memories))
        .exec(Step.call(MemoryServiceGrpc.getSearchMemoriesMethod(), s -> {
          int j = s.get(MEMORY);
          int category = f.categoryOfTextIndex(f.textOf(j));
          s.put(QUERY, category);
          List<String> questions = f.questions(category);
          return SearchMemoriesRequest.newBuilder()
              .setCustomerId(setup.customerIds()[data.customerOfMemory(j)])
              .setQueryText(questions.get(s.random().nextInt(questions.size())))
              .setTopK(K)
              .build();
        }).saving((s, r) -> quality.offer(s.<Integer>get(QUERY),
            r.getHitsCount() == 0 ? -1 : f.categoryOf(r.getHits(0).getMemory().getContent()))))
        .build();
  }

  /** An agent's context for its next answer in a known conversation, ranked by text and embedding. */
  private Scenario fetchContext(Setup.Result setup) {
    return withConversation(base("fetch_context"))
        .exec(Step.call(MemoryServiceGrpc.getFetchContextMethod(), s -> fetchContextRequest(s, setup,
            setup.conversationIds()[s.<Integer>get(CONVERSATION)])))
        .build();
  }

  /**
   * One turn of an agent: find (or open) the thread's conversation, fetch the context, store the
   * customer's message and the agent's answer, and in a share of turns keep a memory. The memory
   * upserts use a handful of keys per customer (so the table does not grow without bound) and
   * embeddings from the reserved cluster (so they never disturb the searches' recall).
   */
  private Scenario agentTurn(Setup.Result setup) {
    double share = profile.agentTurnMemoryShare();
    return withConversation(base("agent_turn"))
        .feed("remember", s -> s.random().nextDouble() < share)
        .exec(Step.call(ConversationServiceGrpc.getGetOrCreateOpenConversationMethod(), s -> {
          int c = s.get(CONVERSATION);
          return GetOrCreateOpenConversationRequest.newBuilder()
              .setCustomerId(setup.customerIds()[data.customerOfConversation(c)])
              .setChannel(data.channel(c))
              .setThreadKey(data.threadKey(c))
              .build();
        }).saving((s, r) -> s.put(CONVERSATION_ID, r.getConversation().getId())))
        .exec(Step.call(MemoryServiceGrpc.getFetchContextMethod(),
            s -> fetchContextRequest(s, setup, s.get(CONVERSATION_ID))))
        .exec(Step.call(ConversationServiceGrpc.getAppendMessageMethod(), s -> AppendMessageRequest.newBuilder()
            .setConversationId(s.get(CONVERSATION_ID))
            .setMessage(newMessage(s, MessageRole.MESSAGE_ROLE_USER))
            .build()))
        .exec(Step.call(ConversationServiceGrpc.getAppendMessageMethod(), s -> AppendMessageRequest.newBuilder()
            .setConversationId(s.get(CONVERSATION_ID))
            .setMessage(newMessage(s, MessageRole.MESSAGE_ROLE_ASSISTANT))
            .build()))
        .exec(Step.call(MemoryServiceGrpc.getUpsertMemoryMethod(), s -> {
          int customer = data.customerOfConversation(s.get(CONVERSATION));
          long key = s.random().nextLong();
          var m = Memory.newBuilder()
              .setKey("lt-turn:" + customer + ":" + Math.floorMod(key, 4))
              .setKind(MemoryKind.MEMORY_KIND_FACT)
              .setContent(Texts.sentence(key))
              .setSource("loadtest-agent")
              .setConversationId(s.get(CONVERSATION_ID));
          for (float f : data.vectors().member(data.vectors().reservedCluster(), key)) {
            m.addEmbedding(f);
          }
          return UpsertMemoryRequest.newBuilder()
              .setCustomerId(setup.customerIds()[customer])
              .setMemory(m)
              .build();
        }).when(s -> s.<Boolean>get("remember")))
        .build();
  }

  /**
   * One CreateMemory with a vector from the reserved cluster (searches never look there) and a
   * fresh request id: the single write whose latency the history triggers must not move.
   */
  private Scenario createMemory(Setup.Result setup) {
    int customers = data.sizes().customers();
    return base("create_memory")
        .exec(Step.call(MemoryServiceGrpc.getCreateMemoryMethod(), s -> CreateMemoryRequest.newBuilder()
            .setCustomerId(setup.customerIds()[s.random().nextInt(customers)])
            .setMemory(newMemory(s.random().nextLong()))
            .setRequestId(UUID.randomUUID().toString())
            .build()))
        .build();
  }

  /**
   * CreateMemory of a memory as text only (no vector) for a random customer, at create_memory's
   * rate: on a server with an embedder each is queued for its worker. For --compare-embedder (not
   * a scenario of the report): the same writes against the local model and against none.
   */
  public Scenario createMemoryText(Setup.Result setup) {
    int customers = data.sizes().customers();
    Facts f = new Facts(data.seed());
    List<String> texts = f.texts();
    return Scenario.named("create_memory_text")
        .warmUp(Injection.constantRate(profile.rate("create_memory"), profile.warmUp()))
        .inject(Injection.constantRate(profile.rate("create_memory"), profile.measure()))
        .exec(Step.call(MemoryServiceGrpc.getCreateMemoryMethod(), s -> CreateMemoryRequest.newBuilder()
            .setCustomerId(setup.customerIds()[s.random().nextInt(customers)])
            .setMemory(Memory.newBuilder().setKind(MemoryKind.MEMORY_KIND_FACT)
                .setContent(texts.get(s.random().nextInt(texts.size())) + ", noted on visit " + (1 + s.random().nextInt(1_000_000)))
                .setSource("loadtest-text"))
            .setRequestId(UUID.randomUUID().toString())
            .build()))
        .build();
  }

  /**
   * CreateMemories of {@link #BATCH} memories for random customers, each with a client vector from
   * the reserved cluster and its own request id: memories/s = BATCH / the call's latency.
   */
  private Scenario createMemoriesBatch(Setup.Result setup) {
    int customers = data.sizes().customers();
    return base("create_memories_batch")
        .exec(Step.call(MemoryServiceGrpc.getCreateMemoriesMethod(), s -> {
          var b = CreateMemoriesRequest.newBuilder();
          for (int i = 0; i < BATCH; i++) {
            b.addRequests(CreateMemoryRequest.newBuilder()
                .setCustomerId(setup.customerIds()[s.random().nextInt(customers)])
                .setMemory(newMemory(s.random().nextLong()))
                .setRequestId(UUID.randomUUID().toString()));
          }
          return b.build();
        }))
        .build();
  }

  private Memory.Builder newMemory(long key) {
    var m = Memory.newBuilder().setKind(MemoryKind.MEMORY_KIND_FACT).setContent(Texts.sentence(key))
        .setSource("loadtest-bulk");
    for (float f : data.vectors().member(data.vectors().reservedCluster(), key)) {
      m.addEmbedding(f);
    }
    return m;
  }

  /** A text and an embedding query on a random topic, for the conversation's customer. */
  private FetchContextRequest fetchContextRequest(Session s, Setup.Result setup, String conversationId) {
    int customer = data.customerOfConversation(s.get(CONVERSATION));
    int cluster = s.random().nextInt(data.sizes().clusters());
    var b = FetchContextRequest.newBuilder()
        .setCustomerId(setup.customerIds()[customer])
        .setConversationId(conversationId)
        .setQueryText(Texts.query(s.random()));
    for (float f : data.vectors().member(cluster, queryKey(s))) {
      b.addQueryEmbedding(f);
    }
    return b.build();
  }

  /**
   * A message as an agent runtime sends it: server time, and an idempotency key that is new to
   * the server. The key is not drawn from the session's seeded random: that would repeat it in the
   * next run (warm-up, measurement, capacity step, a rerun on a kept database), and the server would
   * answer a cheap replay instead of appending.
   */
  private static Message newMessage(Session s, MessageRole role) {
    return Message.newBuilder()
        .setRole(role)
        .setContent(Texts.sentence(s.random().nextLong()))
        .setIdempotencyKey(UUID.randomUUID().toString())
        .build();
  }

  /** Query vectors come from their own key space, never equal to a stored memory's vector. */
  private static long queryKey(Session s) {
    return s.random().nextLong() | Long.MIN_VALUE;
  }
}

package dev.contextmemory.loadtest.data;

import com.google.protobuf.Timestamp;
import dev.contextmemory.loadtest.dsl.Mix;
import dev.contextmemory.v1.Channel;
import dev.contextmemory.v1.Memory;
import dev.contextmemory.v1.MemoryKind;
import dev.contextmemory.v1.Message;
import dev.contextmemory.v1.MessageRole;
import java.time.Instant;
import java.util.Locale;

/**
 * The load test's data set, every item a pure function of the seed and its index, so a second
 * set-up finds exactly what the first one wrote (the set-up is idempotent through the API's own
 * keys: customers by external_ref, conversations by thread key, messages by idempotency key,
 * memories by memory key) and the harness can recompute any embedding it needs.
 *
 * <p>Shape: {@code customers} customers, each with {@code conversationsPerCustomer} open
 * conversations of {@code messagesPerConversation} messages (alternating user/assistant, spread
 * over the 60 days before {@link #EPOCH}); one customer in twenty a regular with
 * {@link #CLOSED_PER_REGULAR} closed conversations of two messages more; every conversation in
 * one of {@link #SHOPS} shops ({@code shop_id} metadata); {@code memories} memories spread over the customers
 * with a heavy skew (a few customers have hundreds, most a few dozen, as with real agents' regulars),
 * each with a clustered embedding.
 */
public final class DataSet {
  /**
   * "Now" of the data set: today's midnight (UTC). Message times only matter when first written;
   * a later set-up's appends are replays, which keep the stored message.
   */
  static final Instant EPOCH = Instant.now().truncatedTo(java.time.temporal.ChronoUnit.DAYS);
  private static final Channel[] CHANNELS = {Channel.CHANNEL_SMS, Channel.CHANNEL_WEB, Channel.CHANNEL_MESSENGER,
      Channel.CHANNEL_EMAIL, Channel.CHANNEL_VOICE};
  private static final MemoryKind[] KINDS = {MemoryKind.MEMORY_KIND_FACT, MemoryKind.MEMORY_KIND_PREFERENCE,
      MemoryKind.MEMORY_KIND_FACT, MemoryKind.MEMORY_KIND_SUMMARY, MemoryKind.MEMORY_KIND_INSTRUCTION};

  /** How big the data set is. */
  public record Sizes(int customers, int conversationsPerCustomer, int messagesPerConversation, int memories,
      int clusters, int dimension) {
    public Sizes {
      if (customers < 1 || conversationsPerCustomer < 1 || conversationsPerCustomer > CHANNELS.length
          || messagesPerConversation < 1 || memories < 1 || clusters < 1) {
        throw new IllegalArgumentException("bad data set sizes: " + this);
      }
    }

    public int conversations() {
      return customers * conversationsPerCustomer;
    }

    public long messages() {
      return (long) conversations() * messagesPerConversation;
    }
  }

  private final Sizes sizes;
  private final long seed;
  private final Vectors vectors;

  public DataSet(Sizes sizes, long seed) {
    this.sizes = sizes;
    this.seed = seed;
    this.vectors = new Vectors(sizes.dimension(), sizes.clusters(), seed, Vectors.DEFAULT_SPREAD);
  }

  public Sizes sizes() {
    return sizes;
  }

  public Vectors vectors() {
    return vectors;
  }

  public long seed() {
    return seed;
  }

  // ------------------------------------------------------------------------------------- customers

  public String externalRef(int customer) {
    return String.format(Locale.ROOT, "lt-c-%07d", customer);
  }

  public String displayName(int customer) {
    return "Load Test Customer " + customer;
  }

  // --------------------------------------------------------------------------------- conversations

  public int customerOfConversation(int conversation) {
    return conversation / sizes.conversationsPerCustomer();
  }

  public Channel channel(int conversation) {
    return CHANNELS[conversation % sizes.conversationsPerCustomer()];
  }

  public String threadKey(int conversation) {
    return String.format(Locale.ROOT, "lt-t-%08d", conversation);
  }

  /** The i-th message (0-based) of a conversation, as appended during set-up. */
  public Message message(int conversation, int i) {
    long key = ((long) conversation << 24) ^ i ^ seed;
    Instant start = EPOCH.minusSeconds(60L * 86_400 - Mix.pick(key ^ 0xC0FFEEL, 86_400 * 30));
    Instant at = start.plusSeconds(90L * i);
    return Message.newBuilder()
        .setRole(i % 2 == 0 ? MessageRole.MESSAGE_ROLE_USER : MessageRole.MESSAGE_ROLE_ASSISTANT)
        .setContent(Texts.sentence(key))
        .setIdempotencyKey("lt:" + conversation + ":" + i)
        .setCreateTime(Timestamp.newBuilder().setSeconds(at.getEpochSecond()))
        .build();
  }

  /** How many shops the conversations' {@code shop_id} metadata spreads over: one shop is ~1 %. */
  public static final int SHOPS = 100;
  /** Closed conversations of each regular customer, besides its open ones. */
  public static final int CLOSED_PER_REGULAR = 20;

  /**
   * The shop a conversation belongs to, {@code {"shop_id": "<0..99>"}} in its metadata: a metadata
   * query for one shop matches about 1 % of the tenant's conversations. Numbered over the
   * open conversations first, then the closed history ({@link #historyConversation}).
   */
  public String shopOf(int conversation) {
    return Integer.toString(Mix.pick(seed ^ 0x5409L ^ Mix.mix64(conversation), SHOPS));
  }

  /**
   * Customers 0 to regulars() - 1 are regulars: besides their open conversations they have
   * {@link #CLOSED_PER_REGULAR} closed ones, the history a returning customer piles up. One in
   * twenty customers.
   */
  public int regulars() {
    return Math.max(1, sizes.customers() / 20);
  }

  /** The number the k-th closed conversation of regular customer r has after the open ones. */
  public int historyConversation(int regular, int k) {
    return sizes.conversations() + regular * CLOSED_PER_REGULAR + k;
  }

  public String historyThreadKey(int regular, int k) {
    return String.format(Locale.ROOT, "lt-h-%07d-%02d", regular, k);
  }

  /**
   * The two messages of a closed conversation: a question and its answer, 60 to 90 days before
   * {@link #EPOCH}, so the history sorts after the open conversations.
   */
  public Message historyMessage(int regular, int k, int i) {
    long key = Mix.mix64(seed ^ 0x41570L ^ ((long) regular << 16) ^ k) ^ i;
    Instant at = EPOCH.minusSeconds(90L * 86_400 - Mix.pick(key ^ 0xC0FFEEL, 86_400 * 30)).plusSeconds(90L * i);
    return Message.newBuilder()
        .setRole(i % 2 == 0 ? MessageRole.MESSAGE_ROLE_USER : MessageRole.MESSAGE_ROLE_ASSISTANT)
        .setContent(Texts.sentence(key))
        .setIdempotencyKey("lt-h:" + regular + ":" + k + ":" + i)
        .setCreateTime(Timestamp.newBuilder().setSeconds(at.getEpochSecond()))
        .build();
  }

  // -------------------------------------------------------------------------------------- memories

  /**
   * The customer a memory belongs to: floor(customers · u²) for a uniform u, so customer 0 holds
   * about 3% of all memories with 1,000 customers and the median customer a few dozen.
   */
  public int customerOfMemory(int memory) {
    double u = (Mix.mix64(seed ^ 0xA11CEL ^ Mix.mix64(memory)) >>> 11) * 0x1.0p-53;
    return Math.min(sizes.customers() - 1, (int) (sizes.customers() * u * u));
  }

  public int clusterOfMemory(int memory) {
    return Mix.pick(seed ^ 0xC1A57E5L ^ memory, sizes.clusters());
  }

  public float[] embedding(int memory) {
    return vectors.member(clusterOfMemory(memory), memory);
  }

  public String memoryKey(int memory) {
    return "lt-mem-" + memory;
  }

  /** The memory as UpsertMemory writes it (embedding included). */
  public Memory memory(int memory) {
    Memory.Builder b = Memory.newBuilder()
        .setKey(memoryKey(memory))
        .setKind(KINDS[memory % KINDS.length])
        .setContent(Texts.sentence(seed ^ 0x3E3L ^ ((long) memory << 20)))
        .setImportance(0.2f + 0.6f * Mix.pick(memory, 100) / 100f)
        .setSource("loadtest");
    for (float f : embedding(memory)) {
      b.addEmbedding(f);
    }
    return b.build();
  }
}

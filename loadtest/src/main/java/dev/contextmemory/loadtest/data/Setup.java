package dev.contextmemory.loadtest.data;

import dev.contextmemory.loadtest.dsl.Calls;
import com.google.protobuf.Struct;
import com.google.protobuf.Value;
import dev.contextmemory.v1.AppendMessagesRequest;
import dev.contextmemory.v1.CloseConversationRequest;
import dev.contextmemory.v1.ConversationStatus;
import dev.contextmemory.v1.ContactKey;
import dev.contextmemory.v1.ConversationServiceGrpc;
import dev.contextmemory.v1.Customer;
import dev.contextmemory.v1.CustomerServiceGrpc;
import dev.contextmemory.v1.GetOrCreateOpenConversationRequest;
import dev.contextmemory.v1.ListConversationsRequest;
import dev.contextmemory.v1.ListMemoriesRequest;
import dev.contextmemory.v1.ListMemoriesResponse;
import dev.contextmemory.v1.Memory;
import dev.contextmemory.v1.MemoryServiceGrpc;
import dev.contextmemory.v1.UpsertCustomerRequest;
import dev.contextmemory.v1.UpsertMemoryRequest;
import io.grpc.Channel;
import java.io.PrintStream;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Writes the {@link DataSet} through the public API, idempotently, and times each phase:
 * customers (UpsertCustomer by external_ref), conversations (GetOrCreateOpenConversation by thread
 * key, with their shop_id metadata), messages (AppendMessages in batches of up to 1,000, each
 * message with an idempotency key; conversations that already hold their messages are skipped),
 * the regulars' closed history (listed first; missing thread keys opened, given two messages and
 * closed) and memories (UpsertMemory by
 * memory key; customers that already existed have their memories listed first, and only missing
 * ones are written). A second set-up against the same database writes nothing new.
 *
 * <p>Phases whose service is not implemented yet (the probe found UNIMPLEMENTED) are left out,
 * and so are the scenarios that need them.
 */
public final class Setup {
  private static final int BATCH = 1_000;
  /** Fewer missing memories than this are written with the vector index in place. */
  private static final int BULK_THRESHOLD = 1_000;

  /**
   * A bulk-load path for the memories' vector index: building an HNSW index over n vectors at
   * once is several times faster than n incremental inserts into it (pgvector; 20,000 768-dim
   * vectors on 2 cores: about 35 s against about 160 s). When the harness owns the database it
   * drops the index before the memories are written and rebuilds it, with the same definition,
   * afterwards; the rows themselves still go through the API.
   */
  public interface VectorIndexes {
    /** Drops the vector indexes of the memories table, remembering their definitions. */
    void drop();

    /** Recreates what {@link #drop} dropped. */
    void rebuild();

    /**
     * Waits until the server has moved every vector that batch writes staged (version 13) into
     * {@code embedding}: with the index dropped each move is a plain UPDATE, so a bulk load of
     * CreateMemories waits for this before {@link #rebuild}.
     */
    default void awaitStagedMoved() {}
  }

  /** What one phase did: items planned, items actually written (the rest existed), seconds. */
  public record Phase(String name, long items, long written, double seconds) {}

  /** The server's ids of the data set's items (null arrays for phases that were not run). */
  public record Result(String[] customerIds, String[] conversationIds, String[] memoryIds,
      String baselineConversationId, List<Phase> phases) {

    public boolean hasConversations() {
      return conversationIds != null;
    }

    public boolean hasMemories() {
      return memoryIds != null;
    }

    public double seconds() {
      return phases.stream().mapToDouble(Phase::seconds).sum();
    }
  }

  private final Channel channel;
  private final DataSet data;
  private final int concurrency;
  private final Duration timeout;
  private final PrintStream log;
  private final VectorIndexes indexes;

  /** @param indexes the bulk-load path for the vector index, or null to write with it in place */
  public Setup(Channel channel, DataSet data, int concurrency, Duration timeout, PrintStream log,
      VectorIndexes indexes) {
    this.channel = channel;
    this.data = data;
    this.concurrency = concurrency;
    this.timeout = timeout;
    this.log = log;
    this.indexes = indexes;
  }

  /**
   * @param conversations whether ConversationService is implemented
   * @param memories whether MemoryService is implemented
   */
  public Result run(boolean conversations, boolean memories) {
    List<Phase> phases = new ArrayList<>();
    var sizes = data.sizes();
    boolean[] createdCustomer = new boolean[sizes.customers()];
    String[] customerIds = new String[sizes.customers()];
    phases.add(timed("customers", sizes.customers(), written -> {
      Parallel.forEach(sizes.customers(), concurrency * 2, c -> upsertCustomer(data.externalRef(c), data.displayName(c))
          .thenAccept(r -> {
            customerIds[c] = r.getCustomer().getId();
            createdCustomer[c] = r.getCreated();
            if (r.getCreated()) {
              written.incrementAndGet();
            }
          }));
    }));

    String[] conversationIds = null;
    String baselineConversation = null;
    if (conversations) {
      String[] ids = new String[sizes.conversations()];
      long[] counts = new long[sizes.conversations()];
      phases.add(timed("conversations", sizes.conversations(), written -> {
        Parallel.forEach(sizes.conversations(), concurrency * 2, i -> openConversation(
            customerIds[data.customerOfConversation(i)], data.channel(i), data.threadKey(i), data.shopOf(i))
            .thenAccept(r -> {
              ids[i] = r.getConversation().getId();
              counts[i] = r.getConversation().getMessageCount();
              if (r.getCreated()) {
                written.incrementAndGet();
              }
            }));
      }));
      phases.add(timed("messages", sizes.messages(), written -> appendMessages(ids, counts, written)));
      phases.add(timed("history", (long) data.regulars() * DataSet.CLOSED_PER_REGULAR,
          written -> closedHistory(customerIds, written)));
      // A conversation of its own for the JDBC insert baselines, so their rows never collide with
      // the sequences the server hands out in the scenarios' conversations.
      String baselineCustomer = upsertCustomer("lt-baseline", "Load Test Baseline").join().getCustomer().getId();
      baselineConversation = openConversation(baselineCustomer, dev.contextmemory.v1.Channel.CHANNEL_OTHER, "lt-baseline",
          null).join()
          .getConversation().getId();
      conversationIds = ids;
    }

    String[] memoryIds = null;
    if (memories) {
      String[] ids = new String[sizes.memories()];
      List<Integer> missing = new ArrayList<>();
      phases.add(timed("memories", sizes.memories(), written -> {
        missing.addAll(findMemories(customerIds, createdCustomer, ids));
        boolean bulk = indexes != null && missing.size() >= BULK_THRESHOLD;
        if (bulk) {
          indexes.drop();
        }
        writeMemories(customerIds, missing, ids, written);
        if (bulk) {
          log.println("set-up: rebuilding the memories' vector index");
          indexes.rebuild();
        }
      }));
      memoryIds = ids;
    }
    return new Result(customerIds, conversationIds, memoryIds, baselineConversation, List.copyOf(phases));
  }

  private CompletableFuture<dev.contextmemory.v1.UpsertCustomerResponse> upsertCustomer(String ref, String name) {
    var req = UpsertCustomerRequest.newBuilder()
        .setContactKey(ContactKey.newBuilder().setExternalRef(ref))
        .setCustomer(Customer.newBuilder().setDisplayName(name))
        .build();
    return Parallel.retrying(() -> Calls.unary(channel, CustomerServiceGrpc.getUpsertCustomerMethod(), req, timeout));
  }

  /** @param shop the conversation's shop_id metadata, or null for none */
  private CompletableFuture<dev.contextmemory.v1.GetOrCreateOpenConversationResponse> openConversation(
      String customerId, dev.contextmemory.v1.Channel ch, String threadKey, String shop) {
    var req = GetOrCreateOpenConversationRequest.newBuilder()
        .setCustomerId(customerId).setChannel(ch).setThreadKey(threadKey);
    if (shop != null) {
      req.setMetadata(Struct.newBuilder().putFields("shop_id", Value.newBuilder().setStringValue(shop).build()));
    }
    var built = req.build();
    return Parallel.retrying(() -> Calls.unary(channel,
        ConversationServiceGrpc.getGetOrCreateOpenConversationMethod(), built, timeout));
  }

  /**
   * Gives each regular customer its closed history: conversations opened (with their shop),
   * given a question and an answer, and closed. A regular's closed conversations are listed first
   * and only the missing thread keys are written, so a second set-up adds none; one interrupted
   * between open and close is found open again by its thread key and closed.
   */
  private void closedHistory(String[] customerIds, AtomicLong written) {
    Parallel.forEach(data.regulars(), concurrency, r -> {
      var list = ListConversationsRequest.newBuilder().setCustomerId(customerIds[r])
          .setStatus(ConversationStatus.CONVERSATION_STATUS_CLOSED).setPageSize(1000).build();
      return Parallel.retrying(() -> Calls.unary(channel, ConversationServiceGrpc.getListConversationsMethod(), list,
              timeout))
          .thenCompose(existing -> {
            java.util.Set<String> closed = new java.util.HashSet<>();
            existing.getConversationsList().forEach(c -> closed.add(c.getThreadKey()));
            CompletableFuture<?> chain = CompletableFuture.completedFuture(null);
            for (int k = 0; k < DataSet.CLOSED_PER_REGULAR; k++) {
              int kk = k;
              if (!closed.contains(data.historyThreadKey(r, k))) {
                chain = chain.thenCompose(x -> closedConversation(customerIds[r], r, kk))
                    .thenRun(written::incrementAndGet);
              }
            }
            return chain;
          });
    });
  }

  private CompletableFuture<?> closedConversation(String customerId, int regular, int k) {
    int n = data.historyConversation(regular, k);
    return openConversation(customerId, data.channel(n), data.historyThreadKey(regular, k), data.shopOf(n))
        .thenCompose(open -> {
          String id = open.getConversation().getId();
          var append = AppendMessagesRequest.newBuilder().setConversationId(id)
              .addMessages(data.historyMessage(regular, k, 0)).addMessages(data.historyMessage(regular, k, 1)).build();
          var close = CloseConversationRequest.newBuilder().setConversationId(id).build();
          return Parallel.retrying(() -> Calls.unary(channel, ConversationServiceGrpc.getAppendMessagesMethod(), append,
                  timeout))
              .thenCompose(x -> Parallel.retrying(() -> Calls.unary(channel,
                  ConversationServiceGrpc.getCloseConversationMethod(), close, timeout)));
        });
  }

  /**
   * Appends each conversation's messages unless it already holds them all. Batches are sent in
   * order per conversation; a batch already stored (an interrupted earlier set-up) is replayed by
   * its idempotency keys and writes nothing.
   */
  private void appendMessages(String[] ids, long[] counts, AtomicLong written) {
    int perConversation = data.sizes().messagesPerConversation();
    int batchesPerConversation = (perConversation + BATCH - 1) / BATCH;
    List<int[]> work = new ArrayList<>(); // {conversation, batch}
    for (int i = 0; i < ids.length; i++) {
      if (counts[i] < perConversation) {
        for (int b = 0; b < batchesPerConversation; b++) {
          work.add(new int[] {i, b});
        }
      }
    }
    // Batches of one conversation must run in order (sequence numbers follow the append order):
    // a conversation's batches are chained, conversations run in parallel.
    Map<Integer, CompletableFuture<?>> tail = new ConcurrentHashMap<>();
    Progress progress = new Progress("messages", data.sizes().messages());
    Parallel.forEach(work.size(), Math.max(2, concurrency / 2), w -> {
      int conv = work.get(w)[0];
      int batch = work.get(w)[1];
      int from = batch * BATCH;
      int to = Math.min(perConversation, from + BATCH);
      var req = AppendMessagesRequest.newBuilder().setConversationId(ids[conv]);
      for (int m = from; m < to; m++) {
        req.addMessages(data.message(conv, m));
      }
      AppendMessagesRequest built = req.build();
      CompletableFuture<?> previous = tail.getOrDefault(conv, CompletableFuture.completedFuture(null));
      CompletableFuture<?> next = previous.thenCompose(x -> Parallel.retrying(() -> Calls.unary(channel,
              ConversationServiceGrpc.getAppendMessagesMethod(), built, timeout)))
          .thenAccept(r -> {
            written.addAndGet(r.getCreatedCount());
            progress.add(to - from);
          });
      tail.put(conv, next);
      return next;
    });
  }

  /**
   * Fills {@code ids} with the memories that customers who already existed hold (listed by
   * customer) and returns the indexes of the memories still missing.
   */
  private List<Integer> findMemories(String[] customerIds, boolean[] createdCustomer, String[] ids) {
    Map<String, String> existing = new ConcurrentHashMap<>(); // memory key -> id
    List<Integer> known = new ArrayList<>();
    for (int c = 0; c < customerIds.length; c++) {
      if (!createdCustomer[c]) {
        known.add(c);
      }
    }
    Parallel.forEach(known.size(), concurrency * 2, k -> listMemories(customerIds[known.get(k)], "", existing));
    List<Integer> missing = new ArrayList<>();
    for (int j = 0; j < ids.length; j++) {
      String id = existing.get(data.memoryKey(j));
      if (id != null) {
        ids[j] = id;
      } else {
        missing.add(j);
      }
    }
    return missing;
  }

  /** Upserts the missing memories (by key, so a retry or a rerun cannot duplicate them). */
  private void writeMemories(String[] customerIds, List<Integer> missing, String[] ids, AtomicLong written) {
    Progress progress = new Progress("memories", missing.size());
    Parallel.forEach(missing.size(), concurrency, k -> {
      int j = missing.get(k);
      Memory memory = data.memory(j);
      var req = UpsertMemoryRequest.newBuilder()
          .setCustomerId(customerIds[data.customerOfMemory(j)])
          .setMemory(memory)
          .build();
      return Parallel.retrying(() -> Calls.unary(channel, MemoryServiceGrpc.getUpsertMemoryMethod(), req, timeout))
          .thenAccept(r -> {
            ids[j] = r.getMemory().getId();
            written.incrementAndGet();
            progress.add(1);
          });
    });
  }

  private CompletableFuture<?> listMemories(String customerId, String pageToken, Map<String, String> into) {
    var req = ListMemoriesRequest.newBuilder().setCustomerId(customerId).setPageSize(1000).setPageToken(pageToken)
        .build();
    return Parallel.retrying(() -> Calls.unary(channel, MemoryServiceGrpc.getListMemoriesMethod(), req, timeout))
        .thenCompose((ListMemoriesResponse r) -> {
          r.getMemoriesList().forEach(m -> into.put(m.getKey(), m.getId()));
          return r.getNextPageToken().isEmpty()
              ? CompletableFuture.completedFuture(null)
              : listMemories(customerId, r.getNextPageToken(), into);
        });
  }

  private Phase timed(String name, long items, java.util.function.Consumer<AtomicLong> body) {
    long t0 = System.nanoTime();
    AtomicLong written = new AtomicLong();
    body.accept(written);
    double s = (System.nanoTime() - t0) / 1e9;
    log.printf(Locale.ROOT, "set-up: %-13s %,10d items, %,10d written, %6.1f s%n", name, items, written.get(), s);
    return new Phase(name, items, written.get(), s);
  }

  /** Logs a progress line at most every 10 s for the long phases. */
  private final class Progress {
    private final String name;
    private final long total;
    private final AtomicLong done = new AtomicLong();
    private final long start = System.nanoTime();
    private volatile long lastLog = System.nanoTime();

    Progress(String name, long total) {
      this.name = name;
      this.total = total;
    }

    void add(long n) {
      long d = done.addAndGet(n);
      long now = System.nanoTime();
      if (now - lastLog > 10_000_000_000L) {
        lastLog = now;
        double s = (now - start) / 1e9;
        log.printf(Locale.ROOT, "set-up: %s %,d/%,d (%.0f/s)%n", name, d, total, d / s);
      }
    }
  }
}

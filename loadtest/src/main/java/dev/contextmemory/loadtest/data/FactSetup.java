package dev.contextmemory.loadtest.data;

import dev.contextmemory.loadtest.dsl.Calls;
import dev.contextmemory.v1.ContactKey;
import dev.contextmemory.v1.CreateMemoriesRequest;
import dev.contextmemory.v1.CreateMemoriesResponse;
import dev.contextmemory.v1.CreateMemoryRequest;
import dev.contextmemory.v1.CustomerServiceGrpc;
import dev.contextmemory.v1.EmbeddingState;
import dev.contextmemory.v1.GetMemoryRequest;
import dev.contextmemory.v1.Memory;
import dev.contextmemory.v1.MemoryKind;
import dev.contextmemory.v1.MemoryServiceGrpc;
import dev.contextmemory.v1.MemoryWriteResult;
import dev.contextmemory.v1.UpsertCustomerRequest;
import dev.contextmemory.v1.Customer;
import io.grpc.Channel;
import java.io.PrintStream;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Writes the {@link Facts} data set for the text-search scenarios through the API, on a server
 * that embeds (CONTEXT_MEMORY_EMBEDDER=local): first every distinct fact text and every question
 * once, text only, under a customer of their own ({@code lt-f-vectors}), so the server's worker
 * embeds each with the deployment's model; their vectors are read back (GetMemory with
 * include_embedding). Then the memories themselves with CreateMemories in batches of 1,000, each
 * with its fact's vector as a client vector of that same model, so 100,000 memories cost a few
 * hundred embeddings, not 100,000. With the harness's own database the vector index is dropped
 * around that load, the server's indexer is left to move the staged vectors (version 13: batch
 * writes stage client vectors outside the index), and the index is rebuilt after, as {@link Setup}
 * does. Against a --target without the bulk path, memories are searchable by vector only once
 * that server's indexer has moved them. Idempotent by request id: a second
 * set-up on a kept database creates nothing.
 */
public final class FactSetup {
  /** Thrown when the server does not embed: the scenarios that need it are skipped. */
  public static final class NoEmbedder extends RuntimeException {
    private static final long serialVersionUID = 1L;

    NoEmbedder(String message) {
      super(message);
    }
  }

  /**
   * What the scenarios and their SQL floor need.
   *
   * @param memoryIds the server's id of memory j
   * @param textVectors the model's vector of each distinct fact text
   * @param questionVectors the model's vector of each question, in {@link Facts#allQuestions} order
   * @param model the deployment's model (the name stored with every embedding)
   */
  public record Loaded(Facts facts, String[] memoryIds, float[][] textVectors, float[][] questionVectors, String model,
      int dimension, List<Setup.Phase> phases) {}

  private static final int BATCH = 1_000;
  private static final Duration EMBED_WAIT = Duration.ofMinutes(20);

  private final Channel channel;
  private final DataSet data;
  private final Facts facts;
  private final String[] customerIds;
  private final Duration timeout;
  private final PrintStream log;
  private final Setup.VectorIndexes indexes;

  public FactSetup(Channel channel, DataSet data, Facts facts, String[] customerIds, Duration timeout, PrintStream log,
      Setup.VectorIndexes indexes) {
    this.channel = channel;
    this.data = data;
    this.facts = facts;
    this.customerIds = customerIds;
    this.timeout = timeout;
    this.log = log;
    this.indexes = indexes;
  }

  public Loaded run() {
    List<Setup.Phase> phases = new ArrayList<>();
    List<String> texts = new ArrayList<>(facts.texts());
    List<String> questions = facts.allQuestions();
    texts.addAll(questions);
    float[][] vectors = new float[texts.size()][];
    String[] model = new String[1];
    long t0 = System.nanoTime();
    long embedded = embedOnce(texts, vectors, model);
    double s = (System.nanoTime() - t0) / 1e9;
    phases.add(new Setup.Phase("fact vectors", texts.size(), embedded, s));
    log.printf(Locale.ROOT, "set-up: %-13s %,10d items, %,10d written, %6.1f s (embedded by the server's %s)%n",
        "fact vectors", texts.size(), embedded, s, model[0]);
    int nTexts = facts.texts().size();
    float[][] textVectors = java.util.Arrays.copyOfRange(vectors, 0, nTexts);
    float[][] questionVectors = java.util.Arrays.copyOfRange(vectors, nTexts, vectors.length);

    int n = data.sizes().memories();
    String[] ids = new String[n];
    long t1 = System.nanoTime();
    long[] created = new long[1];
    boolean bulk = indexes != null;
    if (bulk) {
      indexes.drop();
    }
    int batches = (n + BATCH - 1) / BATCH;
    Parallel.forEach(batches, 2, b -> {
      var req = CreateMemoriesRequest.newBuilder();
      for (int j = b * BATCH; j < Math.min(n, (b + 1) * BATCH); j++) {
        int text = facts.textOf(j);
        Memory.Builder m = Memory.newBuilder().setKind(MemoryKind.MEMORY_KIND_FACT).setContent(facts.texts().get(text))
            .setSource("loadtest-facts").setEmbeddingModel(model[0]);
        for (float f : textVectors[text]) {
          m.addEmbedding(f);
        }
        req.addRequests(CreateMemoryRequest.newBuilder().setCustomerId(customerIds[data.customerOfMemory(j)])
            .setMemory(m).setRequestId("lt-f-" + data.seed() + "-" + j));
      }
      int first = b * BATCH;
      return Parallel.retrying(() -> Calls.unary(channel, MemoryServiceGrpc.getCreateMemoriesMethod(), req.build(),
          timeout.multipliedBy(6))).thenAccept((CreateMemoriesResponse r) -> {
            for (int i = 0; i < r.getResultsCount(); i++) {
              MemoryWriteResult w = r.getResults(i);
              if (w.hasError()) {
                throw new IllegalStateException("fact memory " + (first + i) + " not written: "
                    + w.getError().getReason() + " " + w.getError().getField());
              }
              ids[first + i] = w.getMemory().getId();
              if (w.getCreated()) {
                synchronized (created) {
                  created[0]++;
                }
              }
            }
          });
    });
    if (bulk) {
      // Batch writes stage their vectors outside the index (version 13); the server's indexer moves
      // them, cheaply while the index is dropped, and the index is rebuilt over all of them.
      indexes.awaitStagedMoved();
      indexes.rebuild();
    }
    double s1 = (System.nanoTime() - t1) / 1e9;
    phases.add(new Setup.Phase("fact memories", n, created[0], s1));
    log.printf(Locale.ROOT, "set-up: %-13s %,10d items, %,10d written, %6.1f s (%,.0f/s, CreateMemories of %,d)%n",
        "fact memories", n, created[0], s1, n / s1, BATCH);
    return new Loaded(facts, ids, textVectors, questionVectors, model[0], textVectors[0].length, phases);
  }

  /**
   * Creates each text once as a text-only memory of the vectors customer and waits until the
   * server's worker has embedded them all; fills {@code vectors} and {@code model}. Returns how
   * many memories it created (0 on a kept database).
   */
  private long embedOnce(List<String> texts, float[][] vectors, String[] model) {
    Customer owner = Calls.blocking(channel, CustomerServiceGrpc.getUpsertCustomerMethod(),
        UpsertCustomerRequest.newBuilder().setContactKey(ContactKey.newBuilder().setExternalRef("lt-f-vectors"))
            .setCustomer(Customer.newBuilder().setDisplayName("Load test fact vectors")).build(), timeout).getCustomer();
    String[] ids = new String[texts.size()];
    long created = 0;
    for (int first = 0; first < texts.size(); first += BATCH) {
      var req = CreateMemoriesRequest.newBuilder();
      for (int i = first; i < Math.min(texts.size(), first + BATCH); i++) {
        req.addRequests(CreateMemoryRequest.newBuilder().setCustomerId(owner.getId())
            .setMemory(Memory.newBuilder().setKind(MemoryKind.MEMORY_KIND_FACT).setContent(texts.get(i))
                .setSource("loadtest-fact-vectors"))
            .setRequestId("lt-fv-" + i + "-" + Integer.toHexString(texts.get(i).hashCode())));
      }
      CreateMemoriesResponse r = Calls.blocking(channel, MemoryServiceGrpc.getCreateMemoriesMethod(), req.build(),
          timeout.multipliedBy(6));
      for (int i = 0; i < r.getResultsCount(); i++) {
        MemoryWriteResult w = r.getResults(i);
        if (w.hasError()) {
          throw new IllegalStateException("fact text " + (first + i) + " not written: " + w.getError().getReason());
        }
        if (w.getMemory().getEmbeddingState() == EmbeddingState.EMBEDDING_STATE_NONE) {
          throw new NoEmbedder("the server does not embed (a text-only memory's embedding_state is NONE);"
              + " run these scenarios on a server with CONTEXT_MEMORY_EMBEDDER=local");
        }
        ids[first + i] = w.getMemory().getId();
        created += w.getCreated() ? 1 : 0;
      }
    }
    long deadline = System.nanoTime() + EMBED_WAIT.toNanos();
    List<Integer> waiting = new ArrayList<>();
    for (int i = 0; i < texts.size(); i++) {
      waiting.add(i);
    }
    while (!waiting.isEmpty()) {
      // The worker drains the queue oldest first: until the last text is embedded, asking for the
      // others is wasted calls.
      Memory last = get(ids[waiting.get(waiting.size() - 1)], false);
      if (last.getEmbeddingState() == EmbeddingState.EMBEDDING_STATE_PENDING) {
        if (System.nanoTime() > deadline) {
          throw new IllegalStateException(waiting.size() + " fact texts still not embedded after " + EMBED_WAIT);
        }
        sleep(1_000);
        continue;
      }
      List<Integer> still = new ArrayList<>();
      for (int i : waiting) {
        Memory m = get(ids[i], true);
        switch (m.getEmbeddingState()) {
          case EMBEDDING_STATE_READY -> {
            vectors[i] = toArray(m.getEmbeddingList());
            model[0] = m.getEmbeddingModel();
          }
          case EMBEDDING_STATE_PENDING -> still.add(i);
          default -> throw new IllegalStateException("fact text " + i + " was not embedded: " + m.getEmbeddingState());
        }
      }
      waiting = still;
      if (!waiting.isEmpty()) {
        sleep(1_000);
      }
    }
    return created;
  }

  private Memory get(String id, boolean withEmbedding) {
    return Calls.blocking(channel, MemoryServiceGrpc.getGetMemoryMethod(),
        GetMemoryRequest.newBuilder().setMemoryId(id).setIncludeEmbedding(withEmbedding).build(), timeout).getMemory();
  }

  private static float[] toArray(List<Float> l) {
    float[] a = new float[l.size()];
    for (int i = 0; i < a.length; i++) {
      a[i] = l.get(i);
    }
    return a;
  }

  private static void sleep(long ms) {
    try {
      Thread.sleep(ms);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted", e);
    }
  }
}

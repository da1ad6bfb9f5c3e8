package dev.contextmemory.server;

import dev.contextmemory.server.config.Settings;
import dev.contextmemory.server.testing.TestDatabase;
import dev.contextmemory.server.testing.TestServer;
import dev.contextmemory.v1.*;
import io.grpc.ManagedChannel;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.grpc.stub.StreamObserver;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;

/**
 * Not a test: the bulk-write and history-overhead measurement of docs/search.md, run on demand
 * with {@code scripts/test -pl server -am -Dtest=MemoryBulkMeasurement -Dmeasure.bulk=true
 * -Dsurefire.failIfNoSpecifiedTests=false}. One in-process server on its own database: memories/s
 * of CreateMemories (1,000 per call) and ImportMemories, with 768-dim client vectors (clustered, as
 * real embeddings are) and without; then CreateMemory and UpsertMemory one call at a time with the
 * history triggers on and off, in alternating blocks so both see the same machine load. It asserts
 * nothing about time; it writes target/memory-bulk.txt. {@code -Dmeasure.bulk.netty=true} serves over
 * Netty on loopback TCP instead of in-process.
 */
@EnabledIfSystemProperty(named = "measure.bulk", matches = "true")
class MemoryBulkMeasurement {
  /** The load test's dimension by default; {@code -Dmeasure.bulk.dim=384} for the local model's. */
  private static final int DIM = Integer.getInteger("measure.bulk.dim", 768);
  /** {@code -Dmeasure.bulk.index=false}: drop the memories' HNSW index first (the floor without it). */
  private static final boolean INDEX = Boolean.parseBoolean(System.getProperty("measure.bulk.index", "true"));
  /** {@code -Dmeasure.bulk.single=false}: skip the single-write history comparison. */
  private static final boolean SINGLE = Boolean.parseBoolean(System.getProperty("measure.bulk.single", "true"));
  /**
   * {@code -Dmeasure.bulk.netty=true}: the server on Netty over loopback TCP (as {@code Main serve}
   * runs it, message limits and HTTP/2 framing included) instead of the in-process transport.
   */
  private static final boolean NETTY = Boolean.getBoolean("measure.bulk.netty");
  /**
   * {@code -Dmeasure.bulk.inflight=N}: also send {@link #CALLS} CreateMemories of 1,000, built beforehand,
   * with N calls in flight (a backfill tool's way; 1 skips it). Default 2.
   */
  private static final int IN_FLIGHT = Integer.getInteger("measure.bulk.inflight", 2);
  /** {@code -Dmeasure.bulk.calls=N}: how many calls the in-flight run sends (default 12). */
  private static final int CALLS = Integer.getInteger("measure.bulk.calls", 12);
  private static final int CUSTOMERS = 100;
  private static final int IMPORTED = 3_000;
  private final Random random = new Random(42);
  private final float[][] centroids = new float[32][];
  private final StringBuilder out = new StringBuilder();

  @Test
  void bulkThroughputAndHistoryOverhead() throws Exception {
    for (int i = 0; i < centroids.length; i++) {
      centroids[i] = gaussian(1);
    }
    // A 1,000-vector batch is 1,000 HNSW inserts: seconds on a busy machine, so roomier timeouts.
    Map<String, String> settings = Map.of("DB_STATEMENT_TIMEOUT_MS", "300000",
        "MAX_CALL_DEADLINE_MS", "600000", "EMBEDDING_DIMENSION", Integer.toString(DIM));
    try (Server server = NETTY ? Server.netty(settings) : Server.inProcess(settings)) {
      awaitIndex(server.dbUrl());
      line("dimension %d, HNSW index on memories: %s, transport %s", DIM, INDEX ? "yes" : "dropped",
          NETTY ? "Netty (loopback TCP)" : "in-process");
      var customers = CustomerServiceGrpc.newBlockingStub(server.channel());
      var memories = MemoryServiceGrpc.newBlockingStub(server.channel());
      var async = MemoryServiceGrpc.newStub(server.channel());
      List<String> ids = new ArrayList<>();
      for (int i = 0; i < CUSTOMERS; i++) {
        ids.add(customers.createCustomer(CreateCustomerRequest.newBuilder().setCustomer(Customer.newBuilder()
            .setDisplayName("bulk " + i)).build()).getCustomer().getId());
      }
      for (boolean vectors : new boolean[] {true, false}) {
        double[] rates = new double[5];
        double[] builds = new double[rates.length];
        int bytes = 0;
        for (int round = 0; round < rates.length + 1; round++) { // the first is warm-up
          long b0 = System.nanoTime();
          CreateMemoriesRequest.Builder b = CreateMemoriesRequest.newBuilder();
          for (int i = 0; i < 1_000; i++) {
            b.addRequests(CreateMemoryRequest.newBuilder().setCustomerId(ids.get(random.nextInt(CUSTOMERS)))
                .setMemory(memory(vectors)).setRequestId(UUID.randomUUID().toString()));
          }
          CreateMemoriesRequest req = b.build();
          bytes = req.getSerializedSize();
          long t0 = System.nanoTime();
          memories.createMemories(req);
          if (round > 0) {
            rates[round - 1] = 1_000 / ((System.nanoTime() - t0) / 1e9);
            // The client's own share, outside the call's clock: random vectors drawn, protos built.
            builds[round - 1] = (t0 - b0) / 1e6;
          }
        }
        Arrays.sort(rates);
        Arrays.sort(builds);
        line("CreateMemories of 1,000 %s vectors: median %.0f memories/s (min %.0f, max %.0f over %d calls);"
            + " request %,d bytes, drawn and built by the client in %.0f ms (median, outside the call's clock)",
            vectors ? "with" : "without", rates[rates.length / 2], rates[0], rates[rates.length - 1], rates.length,
            bytes, builds[builds.length / 2]);

        if (IN_FLIGHT > 1) {
          List<CreateMemoriesRequest> calls = new ArrayList<>();
          for (int c = 0; c < CALLS; c++) {
            CreateMemoriesRequest.Builder cb = CreateMemoriesRequest.newBuilder();
            for (int i = 0; i < 1_000; i++) {
              cb.addRequests(CreateMemoryRequest.newBuilder().setCustomerId(ids.get(random.nextInt(CUSTOMERS)))
                  .setMemory(memory(vectors)).setRequestId(UUID.randomUUID().toString()));
            }
            calls.add(cb.build());
          }
          // IN_FLIGHT threads, each with one blocking call at a time: IN_FLIGHT calls in flight.
          java.util.concurrent.ExecutorService senders = java.util.concurrent.Executors.newFixedThreadPool(IN_FLIGHT);
          long t0 = System.nanoTime();
          try {
            List<java.util.concurrent.Future<CreateMemoriesResponse>> answers = new ArrayList<>();
            for (CreateMemoriesRequest call : calls) {
              answers.add(senders.submit(() -> memories.createMemories(call)));
            }
            for (java.util.concurrent.Future<CreateMemoriesResponse> a : answers) {
              a.get(10, TimeUnit.MINUTES);
            }
          } finally {
            senders.shutdownNow();
          }
          double seconds = (System.nanoTime() - t0) / 1e9;
          line("CreateMemories of 1,000 %s vectors, %d calls in flight: %.0f memories/s (%d calls, built beforehand;"
              + " CLOCK_MONOTONIC %.3f to %.3f s, for perf record -k mono)",
              vectors ? "with" : "without", IN_FLIGHT, calls.size() * 1_000 / seconds, calls.size(), t0 / 1e9,
              (t0 + (long) (seconds * 1e9)) / 1e9);
        }

        List<ImportMemoriesRequest> items = new ArrayList<>();
        for (int i = 0; i < IMPORTED; i++) {
          items.add(ImportMemoriesRequest.newBuilder().setCustomerId(ids.get(random.nextInt(CUSTOMERS)))
              .setRequestId(UUID.randomUUID().toString()).setMemory(memory(vectors)).build());
        }
        long t0 = System.nanoTime();
        ImportMemoriesResponse r = importAll(async, items);
        double s = (System.nanoTime() - t0) / 1e9;
        line("ImportMemories of %,d %s vectors: %.0f memories/s (%d created)", IMPORTED, vectors ? "with" : "without",
            IMPORTED / s, r.getMemoriesCreated());
        long t1 = System.nanoTime();
        ImportMemoriesResponse again = importAll(async, items);
        line("  the same import again: %.0f items/s, %d created, %d skipped", IMPORTED / ((System.nanoTime() - t1) / 1e9),
            again.getMemoriesCreated(), again.getMemoriesSkipped());
        if (vectors) {
          // Batches stage their vectors outside the HNSW index; how fast the indexer moves them in
          // (what "searchable by vector" trails the acknowledgement by).
          long staged = stagedCount(server.dbUrl());
          long t2 = System.nanoTime();
          while (stagedCount(server.dbUrl()) > 0) {
            Thread.sleep(200);
          }
          double drain = (System.nanoTime() - t2) / 1e9;
          line("  staged vectors left after the writes: %d, moved into the index in %.1f s (%.0f rows/s)", staged,
              drain, staged / Math.max(drain, 0.001));
        }
      }

      // Single writes, history triggers on and off in alternating blocks; with a vector (an HNSW
      // insert, most of the time) and without (what recording costs, relatively).
      for (boolean vectors : SINGLE ? new boolean[] {true, false} : new boolean[0]) {
        List<Long> createOn = new ArrayList<>();
        List<Long> createOff = new ArrayList<>();
        List<Long> upsertOn = new ArrayList<>();
        List<Long> upsertOff = new ArrayList<>();
        for (int block = 0; block < 12; block++) {
          boolean on = block % 2 == 0;
          triggers(server.dbUrl(), on);
          for (int i = 0; i < 200; i++) {
            String customer = ids.get(random.nextInt(CUSTOMERS));
            long t0 = System.nanoTime();
            memories.createMemory(CreateMemoryRequest.newBuilder().setCustomerId(customer).setMemory(memory(vectors))
                .setRequestId(UUID.randomUUID().toString()).build());
            long t1 = System.nanoTime();
            memories.upsertMemory(UpsertMemoryRequest.newBuilder().setCustomerId(customer)
                .setMemory(memory(vectors).setKey("k" + random.nextInt(20))).build());
            long t2 = System.nanoTime();
            if (block >= 2) { // the first two blocks are warm-up
              (on ? createOn : createOff).add(t1 - t0);
              (on ? upsertOn : upsertOff).add(t2 - t1);
            }
          }
        }
        triggers(server.dbUrl(), true);
        String with = vectors ? "with a vector" : "without a vector";
        line("CreateMemory %s p50: history on %.3f ms, off %.3f ms (%d calls each)", with, p50(createOn),
            p50(createOff), createOn.size());
        line("UpsertMemory %s p50: history on %.3f ms, off %.3f ms (%d calls each)", with, p50(upsertOn),
            p50(upsertOff), upsertOn.size());
      }
    }
    Path file = Path.of("target", "memory-bulk.txt");
    Files.writeString(file, out);
    System.out.print(out);
  }

  /** The server under measurement and a channel to it, on either transport. */
  private record Server(AutoCloseable server, ManagedChannel channel, String dbUrl) implements AutoCloseable {
    static Server inProcess(Map<String, String> settings) {
      TestServer s = TestServer.start(settings);
      return new Server(s, s.channel(), s.dbUrl());
    }

    /** As TestServer's settings, on NettyTransport as Main serves (plaintext, loopback). */
    static Server netty(Map<String, String> settings) throws IOException {
      String dbUrl = TestDatabase.create();
      int port;
      try (var socket = new java.net.ServerSocket(0)) {
        port = socket.getLocalPort();
      }
      Map<String, String> env = new HashMap<>();
      env.put("CONTEXT_MEMORY_DB_URL", dbUrl);
      env.put("CONTEXT_MEMORY_DB_POOL_SIZE", "4");
      env.put("CONTEXT_MEMORY_AUTH", "none");
      env.put("CONTEXT_MEMORY_HOST", "127.0.0.1");
      env.put("CONTEXT_MEMORY_PORT", Integer.toString(port));
      settings.forEach((k, v) -> env.put(Settings.PREFIX + k, v));
      ContextMemoryServer s = NettyTransport.serve(Settings.from(env));
      return new Server(s, NettyChannelBuilder.forAddress("127.0.0.1", port).usePlaintext().build(), dbUrl);
    }

    @Override
    public void close() throws Exception {
      channel.shutdownNow();
      server.close();
    }
  }

  private Memory.Builder memory(boolean vector) {
    Memory.Builder m = Memory.newBuilder().setKind(MemoryKind.MEMORY_KIND_FACT)
        .setContent("customer fact number " + random.nextInt(1_000_000) + " about the kitchen and the garden");
    if (vector) {
      float[] c = centroids[random.nextInt(centroids.length)];
      float[] noise = gaussian(0.3);
      for (int i = 0; i < DIM; i++) {
        m.addEmbedding(c[i] + noise[i]);
      }
    }
    return m;
  }

  private float[] gaussian(double scale) {
    float[] v = new float[DIM];
    for (int i = 0; i < DIM; i++) {
      v[i] = (float) (random.nextGaussian() * scale / Math.sqrt(DIM));
    }
    return v;
  }

  private static ImportMemoriesResponse importAll(MemoryServiceGrpc.MemoryServiceStub async,
      List<ImportMemoriesRequest> items) throws Exception {
    CompletableFuture<ImportMemoriesResponse> done = new CompletableFuture<>();
    StreamObserver<ImportMemoriesRequest> in = async.importMemories(new StreamObserver<>() {
      @Override
      public void onNext(ImportMemoriesResponse value) {
        done.complete(value);
      }

      @Override
      public void onError(Throwable t) {
        done.completeExceptionally(t);
      }

      @Override
      public void onCompleted() {}
    });
    items.forEach(in::onNext);
    in.onCompleted();
    return done.get(30, TimeUnit.MINUTES);
  }

  /**
   * Waits for the server's background build of the client model's memories index, then drops it
   * when {@link #INDEX} is false (a server started later would build it again).
   */
  private static void awaitIndex(String dbUrl) throws Exception {
    long until = System.nanoTime() + TimeUnit.MINUTES.toNanos(2);
    try (Connection c = DriverManager.getConnection(dbUrl); Statement s = c.createStatement()) {
      String name = null;
      while (name == null && System.nanoTime() < until) {
        try (var rs = s.executeQuery("SELECT indexname FROM pg_indexes WHERE tablename = 'memories'"
            + " AND indexdef LIKE '%hnsw%'")) {
          name = rs.next() ? rs.getString(1) : null;
        }
        Thread.sleep(100);
      }
      if (name == null) {
        throw new IllegalStateException("no HNSW index on memories after 2 minutes");
      }
      if (!INDEX) {
        s.execute("DROP INDEX " + name);
      }
    }
  }

  private static long stagedCount(String dbUrl) throws SQLException {
    try (Connection c = DriverManager.getConnection(dbUrl); Statement s = c.createStatement();
        var rs = s.executeQuery("SELECT count(*) FROM memories WHERE embedding_state = 'staged'")) {
      rs.next();
      return rs.getLong(1);
    }
  }

  private static void triggers(String dbUrl, boolean on) throws SQLException {
    try (Connection c = DriverManager.getConnection(dbUrl); Statement s = c.createStatement()) {
      for (String t : List.of("memories_history_insert", "memories_history_update", "memories_history_delete")) {
        s.execute("ALTER TABLE memories " + (on ? "ENABLE" : "DISABLE") + " TRIGGER " + t);
      }
    }
  }

  private static double p50(List<Long> nanos) {
    long[] a = nanos.stream().mapToLong(Long::longValue).sorted().toArray();
    return a[a.length / 2] / 1e6;
  }

  private void line(String format, Object... args) throws IOException {
    out.append(String.format(Locale.ROOT, format, args)).append('\n');
    System.out.printf(Locale.ROOT, format + "%n", args);
  }
}

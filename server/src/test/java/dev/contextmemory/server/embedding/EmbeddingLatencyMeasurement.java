package dev.contextmemory.server.embedding;

import dev.contextmemory.server.testing.TestServer;
import dev.contextmemory.v1.*;
import java.io.StringReader;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import org.junit.jupiter.api.Test;
import org.postgresql.PGConnection;

/**
 * Not part of the build (no *Test suffix): the latencies of server-side embedding, through the real
 * stack on the in-process transport (so without the network and HTTP/2 costs the load test adds).
 * <ul>
 *   <li>CreateMemory at 50/s, p50/p99, with the embedder off and with the local model on (the worker
 *       embedding in the background on the same 2 cores);
 *   <li>write to searchable by vector (READY) at 50 memories/s with the local model;
 *   <li>search_memories_text: query_text alone (embedded by the local model, cache off) + HYBRID,
 *       one customer's memories, over {@code -Dmemories=N} memories (default 20,000) of 100
 *       customers loaded by COPY with random unit vectors of the local model's space.
 * </ul>
 * {@code scripts/test -pl server -am -Dtest=EmbeddingLatencyMeasurement -Dsurefire.failIfNoSpecifiedTests=false [-Dmemories=100000]}
 */
class EmbeddingLatencyMeasurement {
  private static final int RATE = 50;

  private static String customer(TestServer s) {
    return CustomerServiceGrpc.newBlockingStub(s.channel()).createCustomer(CreateCustomerRequest.newBuilder()
        .setCustomer(Customer.newBuilder().setDisplayName("m").setExternalRef(UUID.randomUUID().toString())).build())
        .getCustomer().getId();
  }

  private static String percentiles(long[] nanos) {
    long[] s = nanos.clone();
    Arrays.sort(s);
    return String.format("p50 %.2f ms, p99 %.2f ms, max %.2f ms (n=%d)", s[s.length / 2] / 1e6,
        s[(int) Math.ceil(s.length * 0.99) - 1] / 1e6, s[s.length - 1] / 1e6, s.length);
  }

  /** CreateMemory at RATE/s; returns the latencies, and records each id's response time. */
  private static long[] paced(TestServer s, int n, Map<String, Long> answeredAt) throws InterruptedException {
    var mem = MemoryServiceGrpc.newBlockingStub(s.channel());
    String c = customer(s);
    List<QualitySet.Fact> facts = QualitySet.facts();
    long[] out = new long[n];
    long start = System.nanoTime();
    for (int i = 0; i < n; i++) {
      long due = start + i * 1_000_000_000L / RATE;
      long wait = due - System.nanoTime();
      if (wait > 0) {
        Thread.sleep(wait / 1_000_000, (int) (wait % 1_000_000));
      }
      long t0 = System.nanoTime();
      Memory m = mem.createMemory(CreateMemoryRequest.newBuilder().setCustomerId(c).setMemory(Memory.newBuilder()
          .setKind(MemoryKind.MEMORY_KIND_FACT).setContent(facts.get(i % facts.size()).content() + " #" + i)).build())
          .getMemory();
      long t1 = System.nanoTime();
      out[i] = t1 - t0;
      if (answeredAt != null) {
        answeredAt.put(m.getId(), t1);
      }
    }
    return out;
  }

  @Test
  void createMemoryWithAndWithoutTheEmbedderAndWriteToSearchable() throws Exception {
    int n = Integer.getInteger("writes", 1_000);
    try (TestServer off = TestServer.start(Map.of())) {
      paced(off, 200, null);
      System.out.println("MEASURE CreateMemory at 50/s, embedder none:  " + percentiles(paced(off, n, null)));
    }
    try (TestServer on = TestServer.start(Map.of("EMBEDDER", "local"))) {
      paced(on, 200, null);
      Map<String, Long> answered = new ConcurrentHashMap<>();
      Map<String, Long> ready = new ConcurrentHashMap<>();
      Thread watcher = new Thread(() -> {
        try (Connection db = DriverManager.getConnection(on.dbUrl());
            PreparedStatement q = db.prepareStatement(
                "SELECT id::text FROM memories WHERE embedding_state = 'ready' AND updated_at > now() - interval '5 seconds'")) {
          while (!Thread.currentThread().isInterrupted()) {
            try (ResultSet rs = q.executeQuery()) {
              long now = System.nanoTime();
              while (rs.next()) {
                ready.putIfAbsent(rs.getString(1), now);
              }
            }
            Thread.sleep(5);
          }
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        } catch (Exception e) {
          throw new IllegalStateException(e);
        }
      });
      watcher.start();
      long[] create = paced(on, n, answered);
      Thread.sleep(3_000);
      watcher.interrupt();
      watcher.join();
      System.out.println("MEASURE CreateMemory at 50/s, embedder local: " + percentiles(create));
      long[] lag = answered.entrySet().stream().filter(e -> ready.containsKey(e.getKey()))
          .mapToLong(e -> Math.max(0, ready.get(e.getKey()) - e.getValue())).toArray();
      System.out.println("MEASURE write -> READY (searchable by vector) at 50/s, local: " + percentiles(lag)
          + ", " + (answered.size() - lag.length) + " not seen READY within 3 s of the last write");
    }
  }

  @Test
  void searchMemoriesText() throws Exception {
    int total = Integer.getInteger("memories", 20_000);
    int customers = 100;
    try (TestServer s = TestServer.start(Map.of("EMBEDDER", "local", "EMBEDDING_QUERY_CACHE_SIZE", "0"))) {
      List<String> ids = new ArrayList<>();
      for (int i = 0; i < customers; i++) {
        ids.add(customer(s));
      }
      List<QualitySet.Fact> facts = QualitySet.facts();
      Random rnd = new Random(42);
      StringBuilder rows = new StringBuilder();
      for (int i = 0; i < total; i++) {
        StringBuilder v = new StringBuilder("[");
        double norm = 0;
        double[] x = new double[384];
        for (int j = 0; j < 384; j++) {
          x[j] = rnd.nextGaussian();
          norm += x[j] * x[j];
        }
        for (int j = 0; j < 384; j++) {
          v.append(j == 0 ? "" : ",").append((float) (x[j] / Math.sqrt(norm)));
        }
        rows.append("default\t").append(UUID.randomUUID()).append('\t').append(ids.get(i % customers))
            .append("\tfact\t").append(facts.get(i % facts.size()).content()).append('\t').append(v).append("]\t")
            .append("all-minilm-l6-v2-q\tready\n");
      }
      long t0 = System.nanoTime();
      try (Connection db = DriverManager.getConnection(s.dbUrl())) {
        db.unwrap(PGConnection.class).getCopyAPI().copyIn("COPY memories (tenant_id, id, customer_id, kind, content,"
            + " embedding, embedding_model, embedding_state) FROM STDIN", new StringReader(rows.toString()));
        db.createStatement().execute("ANALYZE memories");
      }
      System.out.printf("MEASURE loaded %d memories in %.1f s%n", total, (System.nanoTime() - t0) / 1e9);
      var mem = MemoryServiceGrpc.newBlockingStub(s.channel());
      List<QualitySet.Query> queries = QualitySet.queries();
      int warm = 100;
      int n = 500;
      long[] out = new long[n];
      for (int i = 0; i < warm + n; i++) {
        long a = System.nanoTime();
        SearchMemoriesResponse r = mem.searchMemories(SearchMemoriesRequest.newBuilder()
            .setCustomerId(ids.get(rnd.nextInt(customers))).setQueryText(queries.get(i % queries.size()).text() + " " + i)
            .setTopK(10).build());
        if (r.getMode() != MemorySearchMode.MEMORY_SEARCH_MODE_HYBRID) {
          throw new AssertionError(r.getMode().toString());
        }
        if (i >= warm) {
          out[i - warm] = System.nanoTime() - a;
        }
      }
      System.out.println("MEASURE search_memories_text (local model, cache off, HYBRID, " + total + " memories, "
          + total / customers + " per customer): " + percentiles(out));
    }
  }
}

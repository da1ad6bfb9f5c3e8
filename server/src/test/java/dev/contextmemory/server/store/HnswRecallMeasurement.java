package dev.contextmemory.server.store;

import com.pgvector.PGvector;
import dev.contextmemory.server.testing.TestDatabase;
import java.io.StringReader;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.PriorityQueue;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;
import org.postgresql.PGConnection;

/**
 * docs/search.md "What the default trades": tenant-wide recall@10 and p50 of the server's HNSW
 * statement shape (settings as in MemorySearchStore.SETTINGS, candidates re-ranked) for several
 * {@code ef_search} / candidate counts and index builds, on MemoryRecallTest's hard set (its
 * generator and seeds: 31,940 vectors, five customers holding 20,000 in crowded sub-topics; 60
 * queries near a stored vector), against brute force. A table of its own in a fresh database, so
 * only the vectors and the index matter. On demand (minutes; it prints, asserts nothing):
 * {@code scripts/test -pl server -am -Dtest=HnswRecallMeasurement -Dmeasure.hnsw=true
 * -Dsurefire.failIfNoSpecifiedTests=false}
 */
@EnabledIfSystemProperty(named = "measure.hnsw", matches = "true")
class HnswRecallMeasurement {
  private static final int DIM = 768;
  private static final String[] BUILDS = {"m = 16, ef_construction = 64", "m = 16, ef_construction = 128",
      "m = 24, ef_construction = 128"};
  private static final int[][] SEARCHES = {{40, 10}, {100, 10}, {100, 40}, {200, 40}, {400, 40}, {800, 400}};

  @Test
  void recallAndLatencyPerSetting() throws Exception {
    Random rnd = new Random(42);
    float[][] topics = new float[64][];
    for (int t = 0; t < topics.length; t++) {
      topics[t] = around(rnd, new float[DIM], 1.0);
    }
    List<float[]> rows = new ArrayList<>();
    for (int c = 0; c < 1000; c++) {
      float[][] own = new float[3][];
      for (int t = 0; t < own.length; t++) {
        own[t] = around(rnd, topics[rnd.nextInt(topics.length)], 0.5);
      }
      for (int i = 0, n = c < 5 ? 4000 : 12; i < n; i++) {
        rows.add(around(rnd, own[rnd.nextInt(own.length)], 0.3 * (0.5 + rnd.nextDouble())));
      }
    }
    Random q = new Random(11);
    List<float[]> queries = new ArrayList<>();
    List<Set<Integer>> truth = new ArrayList<>();
    for (int i = 0; i < 60; i++) {
      float[] v = around(q, rows.get(q.nextInt(rows.size())), 0.2);
      queries.add(v);
      truth.add(bruteForce(rows, v));
    }
    java.util.Properties server = new java.util.Properties();
    server.setProperty("prepareThreshold", "1"); // server-side prepared, as the server's pool
    try (Connection c = DriverManager.getConnection(TestDatabase.create(), server)) {
      Statement st = c.createStatement();
      st.execute("CREATE EXTENSION IF NOT EXISTS vector");
      st.execute("CREATE TABLE hard (id int PRIMARY KEY, embedding vector(768))");
      StringBuilder sb = new StringBuilder();
      for (int i = 0; i < rows.size(); i++) {
        sb.append(i).append('\t').append(Arrays.toString(rows.get(i)).replace(" ", "")).append('\n');
      }
      c.unwrap(PGConnection.class).getCopyAPI().copyIn("COPY hard FROM STDIN", new StringReader(sb.toString()));
      st.execute("SET maintenance_work_mem = '512MB'");
      PGvector.addVectorType(c);
      for (String build : BUILDS) {
        st.execute("DROP INDEX IF EXISTS hard_hnsw");
        long t0 = System.nanoTime();
        st.execute("CREATE INDEX hard_hnsw ON hard USING hnsw (embedding vector_cosine_ops) WITH (" + build + ")");
        System.out.printf(Locale.ROOT, "index (%s) built in %.1f s%n", build, (System.nanoTime() - t0) / 1e9);
        st.execute("ANALYZE hard");
        for (int[] s : SEARCHES) {
          measure(c, s[0], s[1], queries, truth);
        }
      }
    }
  }

  private static void measure(Connection c, int ef, int candidates, List<float[]> queries, List<Set<Integer>> truth)
      throws Exception {
    String sql = "SELECT set_config('hnsw.ef_search', '" + ef + "', true)"
        + " || set_config('hnsw.iterative_scan', 'relaxed_order', true) || set_config('enable_seqscan', 'off', true)"
        + " || set_config('enable_sort', 'off', true) || set_config('jit', 'off', true);\n"
        + "WITH knn AS MATERIALIZED (SELECT id, embedding <=> CAST(? AS vector(768)) AS distance FROM hard"
        + " ORDER BY embedding <=> CAST(? AS vector(768)) LIMIT " + candidates + ")"
        + " SELECT id FROM knn ORDER BY distance LIMIT 10";
    try (PreparedStatement ps = c.prepareStatement(sql)) {
      double recall = 0;
      long[] nanos = new long[queries.size()];
      for (int round = 0; round < 2; round++) { // the first round warms the caches and the plan
        for (int i = 0; i < queries.size(); i++) {
          ps.setObject(1, new PGvector(queries.get(i)));
          ps.setObject(2, new PGvector(queries.get(i)));
          long t0 = System.nanoTime();
          ps.execute();
          ps.getMoreResults();
          Set<Integer> got = new HashSet<>();
          try (ResultSet rs = ps.getResultSet()) {
            while (rs.next()) {
              got.add(rs.getInt(1));
            }
          }
          nanos[i] = System.nanoTime() - t0;
          if (round == 1) {
            got.retainAll(truth.get(i));
            recall += got.size() / 10.0;
          }
        }
      }
      Arrays.sort(nanos);
      System.out.printf(Locale.ROOT, "ef_search %4d, candidates %4d: recall@10 %.4f, p50 %.3f ms%n", ef, candidates,
          recall / queries.size(), nanos[nanos.length / 2] / 1e6);
    }
  }

  private static float[] around(Random rnd, float[] centre, double sigma) {
    float[] v = new float[DIM];
    for (int i = 0; i < DIM; i++) {
      v[i] = (float) (centre[i] + rnd.nextGaussian() * sigma);
    }
    return v;
  }

  private static Set<Integer> bruteForce(List<float[]> rows, float[] q) {
    PriorityQueue<double[]> top = new PriorityQueue<>((x, y) -> Double.compare(x[0], y[0]));
    for (int i = 0; i < rows.size(); i++) {
      double dot = 0;
      double na = 0;
      double nb = 0;
      float[] v = rows.get(i);
      for (int j = 0; j < DIM; j++) {
        dot += q[j] * v[j];
        na += q[j] * q[j];
        nb += v[j] * v[j];
      }
      top.add(new double[] {dot / Math.sqrt(na * nb), i});
      if (top.size() > 10) {
        top.poll();
      }
    }
    Set<Integer> ids = new HashSet<>();
    top.forEach(x -> ids.add((int) x[1]));
    return ids;
  }
}

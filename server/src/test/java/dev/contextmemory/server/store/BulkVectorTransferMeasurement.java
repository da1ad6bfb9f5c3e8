package dev.contextmemory.server.store;

import dev.contextmemory.server.testing.TestDatabase;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;

/**
 * Not a test: how a 1,000-vector batch's vectors reach PostgreSQL, text against binary, side by
 * side on one connection and one table (no index, no trigger), run on demand with {@code scripts/test
 * -pl server -am -Dtest=BulkVectorTransferMeasurement -Dmeasure.bulk=true
 * -Dsurefire.failIfNoSpecifiedTests=false} (docs/search.md "Bulk writes"). Each round times, from
 * the floats in Java to the INSERT's end: pgvector text in a {@code text[]} (what MemoryBatchStore
 * bound first), the floats end to end in one binary {@code real[]} sliced per row, a binary
 * {@code vector[]} ({@link VectorArray}, what it binds now), and no vector at all (the rows' own
 * floor). The variants alternate so each sees the same machine load; it asserts nothing about time
 * and writes target/bulk-vector-transfer.txt.
 */
@EnabledIfSystemProperty(named = "measure.bulk", matches = "true")
class BulkVectorTransferMeasurement {
  private static final int DIM = Integer.getInteger("measure.bulk.dim", 768);
  private static final int ROWS = 1_000;
  private static final int ROUNDS = 15;

  @Test
  void textAgainstBinary() throws Exception {
    Random random = new Random(7);
    float[][] vectors = new float[ROWS][DIM];
    for (float[] v : vectors) {
      for (int i = 0; i < DIM; i++) {
        v[i] = (float) random.nextGaussian() / 28;
      }
    }
    Integer[] ids = new Integer[ROWS];
    for (int i = 0; i < ROWS; i++) {
      ids[i] = i;
    }
    List<List<Long>> nanos = List.of(new ArrayList<>(), new ArrayList<>(), new ArrayList<>(), new ArrayList<>(),
        new ArrayList<>());
    String url = TestDatabase.create();
    // Server-side prepared statements from the first use, as the server's pool has them.
    try (Connection c = DriverManager.getConnection(url + (url.contains("?") ? "&" : "?") + "prepareThreshold=1")) {
      try (Statement st = c.createStatement()) {
        st.execute("CREATE EXTENSION vector");
        st.execute("CREATE TABLE t (id int, v vector(" + DIM + "))");
        // The same rows with the vector kept in the row (STORAGE MAIN) instead of TOAST's default.
        st.execute("CREATE TABLE t_main (id int, v vector(" + DIM + "))");
        st.execute("ALTER TABLE t_main ALTER COLUMN v SET STORAGE MAIN");
      }
      PreparedStatement text = c.prepareStatement(
          "INSERT INTO t SELECT u.i, CAST(u.v AS vector) FROM unnest(CAST(? AS int[]), CAST(? AS text[])) AS u(i, v)");
      PreparedStatement binary = c.prepareStatement("INSERT INTO t SELECT u.i, CAST((CAST(? AS real[]))[u.s : u.s + "
          + DIM + " - 1] AS vector) FROM unnest(CAST(? AS int[]), CAST(? AS int[])) AS u(i, s)");
      PreparedStatement vectorArray = c.prepareStatement(
          "INSERT INTO t SELECT u.i, u.v FROM unnest(CAST(? AS int[]), CAST(? AS vector[])) AS u(i, v)");
      PreparedStatement vectorArrayMain = c.prepareStatement(
          "INSERT INTO t_main SELECT u.i, u.v FROM unnest(CAST(? AS int[]), CAST(? AS vector[])) AS u(i, v)");
      PreparedStatement none = c.prepareStatement(
          "INSERT INTO t SELECT u.i, NULL FROM unnest(CAST(? AS int[])) AS u(i)");
      for (int round = 0; round < ROUNDS; round++) {
        for (int variant = 0; variant < 5; variant++) {
          try (Statement st = c.createStatement()) {
            st.execute("TRUNCATE t, t_main");
          }
          long t0 = System.nanoTime();
          switch (variant) {
            case 0 -> {
              String[] texts = new String[ROWS];
              for (int i = 0; i < ROWS; i++) {
                texts[i] = Rows.vectorText(vectors[i]);
              }
              text.setArray(1, c.createArrayOf("int4", ids));
              text.setArray(2, c.createArrayOf("text", texts));
              text.executeUpdate();
            }
            case 1 -> {
              float[] all = new float[ROWS * DIM];
              Integer[] starts = new Integer[ROWS];
              for (int i = 0; i < ROWS; i++) {
                System.arraycopy(vectors[i], 0, all, i * DIM, DIM);
                starts[i] = i * DIM + 1;
              }
              binary.setObject(1, all); // pgjdbc's binary encoder for float[]
              binary.setArray(2, c.createArrayOf("int4", ids));
              binary.setArray(3, c.createArrayOf("int4", starts));
              binary.executeUpdate();
            }
            case 2 -> {
              vectorArray.setArray(1, c.createArrayOf("int4", ids));
              vectorArray.setObject(2, VectorArray.of(c, vectors));
              vectorArray.executeUpdate();
            }
            case 3 -> {
              vectorArrayMain.setArray(1, c.createArrayOf("int4", ids));
              vectorArrayMain.setObject(2, VectorArray.of(c, vectors));
              vectorArrayMain.executeUpdate();
            }
            default -> {
              none.setArray(1, c.createArrayOf("int4", ids));
              none.executeUpdate();
            }
          }
          if (round >= 3) { // the first rounds warm up the JIT and the plans
            nanos.get(variant).add(System.nanoTime() - t0);
          }
        }
      }
    }
    StringBuilder out = new StringBuilder();
    String[] names = {"text[] of pgvector text (the first)", "one binary real[], sliced per row",
        "binary vector[] (VectorArray, now)", "binary vector[] into a STORAGE MAIN column", "no vector (floor)"};
    for (int variant = 0; variant < 5; variant++) {
      long[] a = nanos.get(variant).stream().mapToLong(Long::longValue).sorted().toArray();
      out.append(String.format(Locale.ROOT, "%d rows of %d dims, %s: median %.1f ms (min %.1f, max %.1f, %d rounds)%n",
          ROWS, DIM, names[variant], a[a.length / 2] / 1e6, a[0] / 1e6, a[a.length - 1] / 1e6, a.length));
    }
    Files.writeString(Path.of("target", "bulk-vector-transfer.txt"), out);
    System.out.print(out);
  }
}

package dev.contextmemory.loadtest;

import dev.contextmemory.loadtest.data.Setup;
import java.io.PrintStream;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The bulk-load path of the set-up, over JDBC, for a database the harness created itself (never
 * for a --target's): drops the vector (HNSW/IVFFlat) indexes of the memories table and recreates
 * them from their own definitions (pg_indexes.indexdef), so whatever the migrations and the
 * server declare is what gets rebuilt. The server builds its model's HNSW index in the background
 * after it starts (server/.../store/VectorIndexes), so drop() first waits for that build: dropping
 * before it ends would drop nothing, and the server's build would then race the bulk load.
 */
final class VectorIndexes implements Setup.VectorIndexes {
  private final String dbUrl;
  private final PrintStream log;
  private final Map<String, String> dropped = new LinkedHashMap<>();
  /** A cold start on a busy 2-core machine builds the empty index in well under a second. */
  private static final long BUILD_WAIT_MILLIS = 120_000;

  VectorIndexes(String dbUrl, PrintStream log) {
    this.dbUrl = dbUrl;
    this.log = log;
  }

  @Override
  public void drop() {
    try (Connection c = DriverManager.getConnection(dbUrl); Statement s = c.createStatement()) {
      awaitServerBuild(s);
      List<String[]> found = new ArrayList<>();
      try (ResultSet rs = s.executeQuery("""
          SELECT indexname, indexdef FROM pg_indexes
           WHERE schemaname = current_schema() AND tablename = 'memories'
             AND (indexdef ILIKE '%USING hnsw%' OR indexdef ILIKE '%USING ivfflat%')""")) {
        while (rs.next()) {
          found.add(new String[] {rs.getString(1), rs.getString(2)});
        }
      }
      for (String[] f : found) {
        s.execute("DROP INDEX " + quote(f[0]));
        dropped.put(f[0], f[1]);
      }
      log.println("set-up: bulk load: dropped the memories' vector index(es) " + dropped.keySet());
    } catch (SQLException e) {
      throw new IllegalStateException("dropping the memories' vector indexes: " + e.getMessage(), e);
    }
  }

  /** Waits until the server's background build has left a valid vector index on memories. */
  void awaitServerBuild() {
    try (Connection c = DriverManager.getConnection(dbUrl); Statement s = c.createStatement()) {
      awaitServerBuild(s);
    } catch (SQLException e) {
      throw new IllegalStateException("waiting for the server's vector index: " + e.getMessage(), e);
    }
  }

  private static void awaitServerBuild(Statement s) throws SQLException {
    long deadline = System.currentTimeMillis() + BUILD_WAIT_MILLIS;
    while (true) {
      try (ResultSet rs = s.executeQuery("""
          SELECT count(*) FROM pg_index i
            JOIN pg_class ix ON ix.oid = i.indexrelid
            JOIN pg_am am ON am.oid = ix.relam
           WHERE i.indrelid = 'memories'::regclass AND i.indisvalid AND am.amname IN ('hnsw', 'ivfflat')""")) {
        rs.next();
        if (rs.getLong(1) > 0) {
          return;
        }
      }
      if (System.currentTimeMillis() > deadline) {
        throw new IllegalStateException("the server built no vector index on memories within "
            + BUILD_WAIT_MILLIS / 1000 + " s of starting; its log says why");
      }
      try {
        Thread.sleep(100);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IllegalStateException("interrupted while waiting for the server's vector index", e);
      }
    }
  }

  /** The server's StagedVectorIndexer moves staged rows in batches of 100; a bulk load's wait is bounded. */
  private static final long STAGED_WAIT_MILLIS = 30 * 60_000;

  @Override
  public void awaitStagedMoved() {
    long t0 = System.nanoTime();
    long deadline = System.currentTimeMillis() + STAGED_WAIT_MILLIS;
    try (Connection c = DriverManager.getConnection(dbUrl); Statement s = c.createStatement()) {
      while (true) {
        long staged;
        try (ResultSet rs = s.executeQuery("SELECT count(*) FROM memories WHERE embedding_state = 'staged'")) {
          rs.next();
          staged = rs.getLong(1);
        }
        if (staged == 0) {
          break;
        }
        if (System.currentTimeMillis() > deadline) {
          throw new IllegalStateException(staged + " staged vectors still not moved by the server after "
              + STAGED_WAIT_MILLIS / 1000 + " s");
        }
        Thread.sleep(500);
      }
    } catch (SQLException e) {
      throw new IllegalStateException("waiting for the server to move staged vectors: " + e.getMessage(), e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted while waiting for staged vectors", e);
    }
    log.printf(Locale.ROOT, "set-up: bulk load: the server moved the staged vectors in %.1f s (no index to insert into)%n",
        (System.nanoTime() - t0) / 1e9);
  }

  @Override
  public void rebuild() {
    long t0 = System.nanoTime();
    try (Connection c = DriverManager.getConnection(dbUrl); Statement s = c.createStatement()) {
      for (var e : dropped.entrySet()) {
        s.execute(e.getValue());
      }
    } catch (SQLException e) {
      throw new IllegalStateException("rebuilding the memories' vector indexes " + dropped.values() + ": "
          + e.getMessage(), e);
    }
    log.printf(Locale.ROOT, "set-up: bulk load: rebuilt %s in %.1f s%n", dropped.keySet(),
        (System.nanoTime() - t0) / 1e9);
    dropped.clear();
  }

  private static String quote(String identifier) {
    return '"' + identifier.replace("\"", "\"\"") + '"';
  }
}

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
 * them from their own definitions (pg_indexes.indexdef), so whatever the migrations declare is
 * what gets rebuilt.
 */
final class VectorIndexes implements Setup.VectorIndexes {
  private final String dbUrl;
  private final PrintStream log;
  private final Map<String, String> dropped = new LinkedHashMap<>();

  VectorIndexes(String dbUrl, PrintStream log) {
    this.dbUrl = dbUrl;
    this.log = log;
  }

  @Override
  public void drop() {
    try (Connection c = DriverManager.getConnection(dbUrl); Statement s = c.createStatement()) {
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

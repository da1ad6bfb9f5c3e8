package dev.contextmemory.loadtest;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.contextmemory.server.testing.TestServer;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.Statement;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;

/** The bulk-load path leaves the schema exactly as the migrations made it. */
class VectorIndexesTest {

  private static Map<String, String> memoryIndexes(String url) throws Exception {
    Map<String, String> out = new TreeMap<>();
    try (Connection c = DriverManager.getConnection(url); Statement s = c.createStatement();
        ResultSet rs = s.executeQuery("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'memories'")) {
      while (rs.next()) {
        out.put(rs.getString(1), rs.getString(2));
      }
    }
    return out;
  }

  @Test
  void dropsOnlyTheVectorIndexAndRebuildsItAsDeclared() throws Exception {
    try (TestServer server = TestServer.start(Map.of())) {
      VectorIndexes ix = new VectorIndexes(server.dbUrl(),
          new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8));

      // The server builds its index in the background after it starts (CI once looked before
      // that build had ended); drop() waits for it the same way.
      ix.awaitServerBuild();
      Map<String, String> before = memoryIndexes(server.dbUrl());
      assertTrue(before.values().stream().anyMatch(d -> d.contains("USING hnsw")), before.toString());

      ix.drop();
      Map<String, String> during = memoryIndexes(server.dbUrl());
      assertFalse(during.values().stream().anyMatch(d -> d.contains("USING hnsw")), during.toString());
      assertEquals(before.size() - 1, during.size(), "only the vector index is gone");

      ix.rebuild();
      assertEquals(before, memoryIndexes(server.dbUrl()));
    }
  }
}

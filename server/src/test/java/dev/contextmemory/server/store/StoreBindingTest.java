package dev.contextmemory.server.store;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.contextmemory.server.testing.TestDatabase;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.Statement;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.postgresql.core.BaseConnection;

/**
 * The two ways the hot paths hand values to pgjdbc without Jdbi's per-call work: query vectors in
 * pgvector's binary format, and named statements turned positional for plain JDBC.
 */
class StoreBindingTest {
  @Test
  void vectorsTravelInPgvectorsBinaryFormatAndArriveExact() throws Exception {
    try (Connection c = DriverManager.getConnection(TestDatabase.create())) {
      try (Statement st = c.createStatement()) {
        st.execute("CREATE EXTENSION vector");
      }
      BaseConnection pg = c.unwrap(BaseConnection.class);
      int oid = pg.getTypeInfo().getPGType("vector");
      assertFalse(pg.binaryTransferSend(oid), "a fresh connection sends vectors as text");

      float[] v = {0.1f, -2.5f, 3.0e-7f, 1234.5678f, Float.MIN_VALUE};
      try (PreparedStatement ps = c.prepareStatement("SELECT CAST(? AS vector)::text, vector_dims(?)")) {
        Rows.vector(v).apply(1, ps, null);
        Rows.vector(v).apply(2, ps, null);
        assertTrue(pg.binaryTransferSend(oid), "binding a vector enables the binary format on its connection");
        try (ResultSet rs = ps.executeQuery()) {
          assertTrue(rs.next());
          // PostgreSQL prints the shortest text that reads back as the same float: bit-exact.
          assertArrayEquals(v, Rows.vector(rs.getString(1)));
          assertEquals(v.length, rs.getInt(2));
        }
      }
      try (PreparedStatement ps = c.prepareStatement("SELECT CAST(? AS vector) IS NULL")) {
        Rows.vector((float[]) null).apply(1, ps, null);
        try (ResultSet rs = ps.executeQuery()) {
          assertTrue(rs.next());
          assertTrue(rs.getBoolean(1));
        }
      }
    }
  }

  @Test
  void aVectorArrayTravelsInBinaryWithItsNullsAndArrivesExact() throws Exception {
    try (Connection c = DriverManager.getConnection(TestDatabase.create())) {
      try (Statement st = c.createStatement()) {
        st.execute("CREATE EXTENSION vector");
      }
      BaseConnection pg = c.unwrap(BaseConnection.class);
      int arrayOid = pg.getTypeInfo().getPGType("_vector");
      assertFalse(pg.binaryTransferSend(arrayOid), "a fresh connection sends vector[] as text");
      float[][] vectors = {{0.1f, -2.5f, 3.0e-7f}, null, {1234.5678f, Float.MIN_VALUE, -0f}, null};
      try (PreparedStatement ps = c.prepareStatement(
          "SELECT u.v::text, u.n FROM unnest(CAST(? AS vector[])) WITH ORDINALITY AS u(v, n) ORDER BY u.n")) {
        ps.setObject(1, VectorArray.of(c, vectors));
        assertTrue(pg.binaryTransferSend(arrayOid), "binding one enables the binary format on its connection");
        try (ResultSet rs = ps.executeQuery()) {
          for (float[] v : vectors) {
            assertTrue(rs.next());
            assertArrayEquals(v, Rows.vector(rs.getString(1)));
          }
          assertFalse(rs.next());
        }
      }
      // The text form pgjdbc would fall back to reads back as the same array.
      try (PreparedStatement ps = c.prepareStatement("SELECT CAST(? AS vector[]) = CAST(CAST(? AS text) AS vector[])")) {
        VectorArray a = VectorArray.of(c, vectors);
        ps.setObject(1, a);
        ps.setString(2, a.getValue());
        try (ResultSet rs = ps.executeQuery()) {
          assertTrue(rs.next());
          assertTrue(rs.getBoolean(1), a.getValue());
        }
      }
    }
  }

  @Test
  void namedParametersBecomePositionalAndCastsStay() {
    Store.Plain p = Store.Plain.of("SELECT a::text, b FROM t WHERE x = :tenant AND y = CAST(:q AS vector)"
        + " AND z = :tenant AND w = ANY(CAST(:roles AS text[])) LIMIT :limit");
    assertEquals("SELECT a::text, b FROM t WHERE x = ? AND y = CAST(? AS vector) AND z = ?"
        + " AND w = ANY(CAST(? AS text[])) LIMIT ?", p.sql());
    assertEquals(List.of("tenant", "q", "tenant", "roles", "limit"), p.names());
  }
}

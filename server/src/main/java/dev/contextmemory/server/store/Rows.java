package dev.contextmemory.server.store;

import com.pgvector.PGvector;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Timestamp;
import java.sql.Types;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import org.jdbi.v3.core.argument.Argument;
import org.postgresql.core.BaseConnection;

/** Column reading and parameter helpers shared by the stores. */
final class Rows {
  private Rows() {}

  static Instant instant(ResultSet rs, String column) throws SQLException {
    Timestamp t = rs.getTimestamp(column);
    return t == null ? null : t.toInstant();
  }

  /** A timestamptz parameter; bind it through {@code CAST(:x AS timestamptz)}. */
  static OffsetDateTime timestamptz(Instant i) {
    return i == null ? null : i.atOffset(ZoneOffset.UTC);
  }

  /**
   * A vector parameter in pgvector's binary format (pgvector's {@link PGvector}), so
   * {@code CAST(:x AS vector)} is a no-op. Typed, not text: a text parameter's cast would stay in a
   * generic plan and re-parse the 768 floats for every row it is compared with (8 ms instead of
   * 1.6 ms for 100 HNSW candidates, 30+ ms for an exact scan of 600 rows). Binary, not text: the
   * server reads 4 bytes a float instead of parsing ~10 characters, and nothing formats floats to
   * text here. Null binds SQL NULL.
   */
  static Argument vector(float[] v) {
    if (v == null) {
      return (position, statement, ctx) -> statement.setNull(position, Types.OTHER);
    }
    PGvector typed = new PGvector(v);
    return (position, statement, ctx) -> {
      binaryVectors(statement.getConnection());
      statement.setObject(position, typed);
    };
  }

  /**
   * Lets pgjdbc send (and receive) pgvector's {@code vector} in binary on this connection, once per
   * connection: pgjdbc decides binary transfer per connection from the type's OID, which it looks up
   * when the type is registered, so this cannot run before the migrations have created the
   * extension (a pool's first connections open before they run). Later calls are a map look-up.
   */
  static void binaryVectors(java.sql.Connection c) throws SQLException {
    BaseConnection pg = c.unwrap(BaseConnection.class);
    if (pg.getTypeInfo().getPGobject("vector") == null) {
      PGvector.addVectorType(pg);
    }
  }

  /** pgvector's text form, '[1.0,2.5,...]'. */
  static String vectorText(float[] v) {
    StringBuilder sb = new StringBuilder(v.length * 12).append('[');
    for (int i = 0; i < v.length; i++) {
      if (i > 0) {
        sb.append(',');
      }
      sb.append(v[i]);
    }
    return sb.append(']').toString();
  }

  /** Parses pgvector's text form back into floats; null stays null. */
  static float[] vector(String text) {
    if (text == null) {
      return null;
    }
    String body = text.substring(1, text.length() - 1);
    if (body.isEmpty()) {
      return new float[0];
    }
    String[] parts = body.split(",");
    float[] v = new float[parts.length];
    for (int i = 0; i < parts.length; i++) {
      v[i] = Float.parseFloat(parts[i]);
    }
    return v;
  }
}

package dev.contextmemory.server.store;

import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Timestamp;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;

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

  /** pgvector's text form, '[1.0,2.5,...]'; bind it through {@code CAST(:x AS vector)}. */
  static String vector(float[] v) {
    if (v == null) {
      return null;
    }
    StringBuilder sb = new StringBuilder(v.length * 10).append('[');
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

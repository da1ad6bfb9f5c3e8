package dev.contextmemory.server.store;

import com.pgvector.PGvector;
import java.nio.ByteBuffer;
import java.sql.Connection;
import java.sql.SQLException;
import org.postgresql.core.BaseConnection;
import org.postgresql.util.PGBinaryObject;
import org.postgresql.util.PGobject;

/**
 * A {@code vector[]} parameter that pgjdbc sends in binary: PostgreSQL's one-dimensional array
 * envelope around each element in pgvector's own binary format ({@link PGvector#toBytes}), null
 * elements as SQL NULL. pgjdbc encodes arrays of its built-in types only and sends any other array
 * as a text literal, which for a batch of 1,000 768-dim vectors is about 9 MB of formatted floats
 * that the server parses again; a {@code real[]} of the floats end to end is binary but costs the
 * server a function call per float to receive (80 to 110 ms of a 1,000-vector bind on this
 * project's busy 2-core machine, against 5 to 30 ms for 1,000 {@code vector_recv} calls).
 */
final class VectorArray extends PGobject implements PGBinaryObject {
  private final float[][] vectors;
  private final int elementOid;
  private final int length;

  private VectorArray(float[][] vectors, int elementOid) {
    this.vectors = vectors;
    this.elementOid = elementOid;
    this.type = "_vector";
    int n = 20; // ndim, has-nulls flag, element type, and the one dimension's size and lower bound
    for (float[] v : vectors) {
      n += 4 + (v == null ? 0 : 4 + 4 * v.length); // length, then pgvector's dim, unused, floats
    }
    this.length = n;
  }

  /**
   * The vectors (null for an element without one) as a parameter of {@code c}, whose connection
   * then sends {@code vector[]} in binary. Bind it through {@code CAST(:x AS vector[])}.
   */
  static VectorArray of(Connection c, float[][] vectors) throws SQLException {
    BaseConnection pg = c.unwrap(BaseConnection.class);
    int elementOid = pg.getTypeInfo().getPGType("vector");
    int arrayOid = pg.getTypeInfo().getPGType("_vector");
    if (elementOid == 0 || arrayOid == 0) {
      throw new SQLException("the vector extension is not installed in this database");
    }
    // Send only: nothing here reads a vector[] column, so its results stay in text.
    if (!pg.binaryTransferSend(arrayOid)) {
      pg.getQueryExecutor().addBinarySendOid(arrayOid);
    }
    return new VectorArray(vectors, elementOid);
  }

  @Override
  public int lengthInBytes() {
    return length;
  }

  @Override
  public void toBytes(byte[] bytes, int offset) {
    ByteBuffer b = ByteBuffer.wrap(bytes, offset, length); // big-endian, as the wire format
    boolean nulls = false;
    for (float[] v : vectors) {
      nulls |= v == null;
    }
    b.putInt(1).putInt(nulls ? 1 : 0).putInt(elementOid).putInt(vectors.length).putInt(1);
    for (float[] v : vectors) {
      if (v == null) {
        b.putInt(-1);
      } else {
        PGvector pv = new PGvector(v);
        int n = pv.lengthInBytes();
        b.putInt(n);
        pv.toBytes(bytes, b.position());
        b.position(b.position() + n);
      }
    }
  }

  @Override
  public void setByteValue(byte[] value, int offset) throws SQLException {
    throw new SQLException("VectorArray is a parameter only");
  }

  /** The text literal, which pgjdbc sends only if binary sending were off for vector[]. */
  @Override
  public String getValue() {
    StringBuilder sb = new StringBuilder().append('{');
    for (int i = 0; i < vectors.length; i++) {
      sb.append(i > 0 ? "," : "").append(vectors[i] == null ? "NULL" : '"' + Rows.vectorText(vectors[i]) + '"');
    }
    return sb.append('}').toString();
  }
}

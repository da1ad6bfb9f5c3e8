package dev.contextmemory.server.store;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/**
 * The deployment's active embedding model and its dimension: the one vector space k-NN searches
 * read. Since version 9 the vector columns have no fixed dimension; a search reads only rows whose
 * model is the active one, through the expression {@code (embedding::vector(N))} that the model's
 * partial HNSW index ({@link VectorIndexes}) is built on. The model name is inlined as a literal,
 * not bound: the planner matches a partial index's predicate only against constants, and a prepared
 * statement's generic plan would otherwise lose the index. EmbeddingSettings restricts the name to
 * characters that need no quoting.
 */
public record VectorSpace(String model, int dimension) {
  public VectorSpace {
    if (!model.matches("[A-Za-z0-9._:/@+-]{1,200}")) {
      throw new IllegalArgumentException("model name not safe to inline: " + model.length() + " characters");
    }
  }

  /** {@code <alias>.<column>_model = '<model>'}: the rows of this space. */
  String rows(String alias, String column) {
    return alias + "." + column + "_model = '" + model + "'";
  }

  /** The indexed expression: the column cast to this space's dimension. */
  String vector(String alias, String column) {
    return "(" + alias + "." + column + "::vector(" + dimension + "))";
  }

  /** Cosine distance of the indexed expression to the bound query vector {@code :q}. */
  String distance(String alias, String column) {
    return vector(alias, column) + " <=> CAST(:q AS vector(" + dimension + "))";
  }

  /** A stable index name for this model and dimension in {@code table}. */
  String indexName(String table) {
    try {
      byte[] h = MessageDigest.getInstance("SHA-256").digest((model + "/" + dimension).getBytes(StandardCharsets.UTF_8));
      return table + "_embedding_" + HexFormat.of().formatHex(h, 0, 6) + "_idx";
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }
}

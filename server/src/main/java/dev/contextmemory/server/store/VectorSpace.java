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

  /**
   * How the HNSW graphs are built. pgvector's defaults (m 16, ef_construction 64) gave a graph in
   * which MemoryRecallTest's hard set stopped at recall@10 0.967-0.978 however long the search
   * list (800 candidates included): the neighbours it missed were out of the graph's reach. With
   * ef_construction 128 the same set reached 0.980-0.983 from ef_search 100 and 40 candidates, as
   * fast as a bare query (docs/search.md "What the default trades"); the price is about twice the
   * build time and a dearer insert (each insert searches the graph at ef_construction).
   */
  static final String HNSW_BUILD = "m = 16, ef_construction = 128";

  /** A stable index name for this model, dimension and build in {@code table}. */
  String indexName(String table) {
    return name(table, model + "/" + dimension + "/" + HNSW_BUILD);
  }

  /** The name this model's index had when it was built with pgvector's defaults (before HNSW_BUILD). */
  String defaultBuildIndexName(String table) {
    return name(table, model + "/" + dimension);
  }

  private static String name(String table, String identity) {
    try {
      byte[] h = MessageDigest.getInstance("SHA-256").digest(identity.getBytes(StandardCharsets.UTF_8));
      return table + "_embedding_" + HexFormat.of().formatHex(h, 0, 6) + "_idx";
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }
}

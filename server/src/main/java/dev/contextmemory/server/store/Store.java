package dev.contextmemory.server.store;

import org.jdbi.v3.core.HandleCallback;
import org.jdbi.v3.core.Jdbi;
import org.jdbi.v3.core.JdbiException;

/**
 * Base of the per-aggregate stores: every database round trip goes through {@link #read} or
 * {@link #write}, so a unique violation is translated in exactly one place and a failed transaction
 * always rolls back and returns its connection to the pool.
 */
abstract class Store {
  protected final Jdbi jdbi;

  protected Store(Jdbi jdbi) {
    this.jdbi = jdbi;
  }

  /** One connection, autocommit: for single-statement reads. */
  protected <T> T read(HandleCallback<T, RuntimeException> callback) {
    try {
      return jdbi.withHandle(callback);
    } catch (JdbiException e) {
      throw UniqueViolations.translate(e);
    }
  }

  /** One transaction: committed when the callback returns, rolled back when it throws. */
  protected <T> T write(HandleCallback<T, RuntimeException> callback) {
    try {
      return jdbi.inTransaction(callback);
    } catch (JdbiException e) {
      throw UniqueViolations.translate(e);
    }
  }

  /**
   * Per-transaction pgvector settings for one k-NN query: iterative index scans, so a filter
   * (customer, kind, metadata, expiry) that rejects most index candidates makes HNSW keep
   * scanning instead of returning fewer than k rows; and a search list (ef_search) sized from
   * the number of candidates wanted, never below pgvector's default of 40.
   */
  protected static void tuneVectorSearch(org.jdbi.v3.core.Handle h, int candidates) {
    int ef = Math.min(1000, Math.max(100, 2 * candidates));
    h.createQuery("SELECT set_config('hnsw.ef_search', :ef, true) AS ef_search,"
            + " set_config('hnsw.iterative_scan', 'relaxed_order', true) AS iterative_scan")
        .bind("ef", Integer.toString(ef)).mapToMap().one();
  }

  /** Escapes LIKE wildcards so a user's prefix matches literally (escape char is backslash). */
  protected static String likePrefix(String prefix) {
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%";
  }
}

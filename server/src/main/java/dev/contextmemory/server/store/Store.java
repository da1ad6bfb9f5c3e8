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
   * How many index candidates an HNSW k-NN reads for k results: with relaxed order, and with
   * embeddings that crowd together (one topic's memories are all about equally near a query), the
   * first k rows the index yields miss some of the true k nearest; reading 10 x k (at least 100)
   * and re-ranking them exactly restores recall (see docs/search.md) for a few ms.
   */
  protected static int indexCandidates(int k, boolean oneCustomer) {
    // One customer's rows are a small share of what the graph walk meets, so it reads deeper.
    return oneCustomer ? Math.min(1000, Math.max(200, 20 * k)) : Math.min(1000, Math.max(100, 10 * k));
  }

  /** A k-NN scope of at most this many rows is searched exactly; a larger one through HNSW. */
  static final int EXACT_SCAN_MAX_ROWS = 1000;

  /**
   * Sizes a k-NN's scope (the tenant, or one customer) in {@code table}, counting at most
   * {@link #EXACT_SCAN_MAX_ROWS} + 1 rows, and returns whether to scan it exactly. For a larger
   * scope it SETs LOCAL, in the same round trip, what a correct HNSW scan needs:
   * <ul>
   *   <li>{@code hnsw.iterative_scan = relaxed_order} (pgvector 0.8): when the filters (customer,
   *       kind, metadata, expiry) reject most index candidates, the scan keeps walking the graph
   *       instead of returning fewer than k rows;
   *   <li>{@code hnsw.ef_search} from the number of candidates wanted, at least 100;
   *   <li>{@code enable_seqscan} and {@code enable_sort} off, so the planner cannot trade the index
   *       for an exact scan whose cost it underestimates (it prices a 768-dim distance on a
   *       TOASTed vector like an integer compare: 300 ms for a 2,000-memory customer), and
   *       {@code jit} off, which those disable-costs would otherwise switch on.
   * </ul>
   * Must run inside a transaction (the settings end with it).
   */
  protected static boolean prepareVectorSearch(org.jdbi.v3.core.Handle h, String table, String tenant,
      java.util.UUID customerId, int candidates) {
    String scope = customerId == null ? "x.tenant_id = :tenant" : "x.tenant_id = :tenant AND x.customer_id = :customer";
    var q = h.createQuery("""
            SELECT s.n <= %d AS exact,
                   CASE WHEN s.n > %d THEN
                     set_config('hnsw.ef_search', :ef, true) || set_config('hnsw.iterative_scan', 'relaxed_order', true)
                       || set_config('enable_seqscan', 'off', true) || set_config('enable_sort', 'off', true)
                       || set_config('jit', 'off', true)
                   END AS settings
              FROM (SELECT count(*) AS n FROM (SELECT 1 FROM %s x WHERE %s LIMIT %d) c) s"""
            .formatted(EXACT_SCAN_MAX_ROWS, EXACT_SCAN_MAX_ROWS, table, scope, EXACT_SCAN_MAX_ROWS + 1))
        .bind("tenant", tenant)
        .bind("ef", Integer.toString(Math.min(1000, Math.max(100, 2 * candidates))));
    if (customerId != null) {
      q.bind("customer", customerId);
    }
    // Read both columns, so no layer can drop the set_config calls as unused.
    return q.map((rs, ctx) -> {
      rs.getString("settings");
      return rs.getBoolean("exact");
    }).one();
  }

  /** Escapes LIKE wildcards so a user's prefix matches literally (escape char is backslash). */
  protected static String likePrefix(String prefix) {
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%";
  }
}

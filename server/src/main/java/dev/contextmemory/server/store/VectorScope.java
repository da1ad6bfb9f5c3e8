package dev.contextmemory.server.store;

import java.util.UUID;
import org.jdbi.v3.core.Handle;

/**
 * How a k-NN search of memories or conversation summaries sizes its scope and reads the HNSW
 * index: exact scan or index, how many candidates, and the settings a correct filtered HNSW scan
 * needs. Shared by every store that searches vectors, so they all choose alike.
 */
final class VectorScope {
  private VectorScope() {}

  /**
   * How many index candidates an HNSW k-NN reads for k results: with relaxed order, and with
   * embeddings that crowd together (one topic's memories are all about equally near a query), the
   * first k rows the index yields miss some of the true k nearest; reading 40 x k (400 to 1,000)
   * and re-ranking them exactly restores recall (see docs/search.md) for a few ms. SearchMemories
   * reads a tenant-wide scope shallower (MemorySearchStore.candidates): on the graph
   * VectorSpace.HNSW_BUILD builds, more candidates no longer buy recall there.
   */
  static int indexCandidates(int k) {
    return Math.min(1000, Math.max(400, 40 * k));
  }

  /** A k-NN scope of at most this many rows is always searched exactly. */
  static final int EXACT_SCAN_MIN_ROWS = 1000;
  /** One customer's scope is searched exactly up to this many rows at most (about 85 ms). */
  static final int EXACT_SCAN_MAX_ROWS = 5000;

  /** The exact-scan size of {@link #prepare} as an SQL expression. */
  static String exactScanRows(String table, boolean customer, int candidates) {
    return !customer ? Integer.toString(EXACT_SCAN_MIN_ROWS)
        : "greatest(%d, least(%d, sqrt(%d * greatest((SELECT reltuples FROM pg_class WHERE oid = '%s'::regclass), 0))))::int"
            .formatted(EXACT_SCAN_MIN_ROWS, EXACT_SCAN_MAX_ROWS, candidates, table);
  }

  /**
   * Sizes a k-NN's scope (the tenant, or one customer) in {@code table} and returns whether to scan
   * it exactly. For a larger scope it SETs LOCAL, in the same round trip, what a correct HNSW scan
   * needs:
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
   * Where exact stops paying: an exact scan costs about 17 us a row (a TOASTed 3 KiB vector each);
   * a filtered HNSW walk must visit about candidates x (index rows / scope rows) nodes at about
   * 20 us each before it has its candidates. The two meet near sqrt(candidates x index rows): at
   * 100,000 memories, a 1,428-memory customer took 292 ms through HNSW and 24 ms exactly. So one
   * customer's scope is scanned exactly up to that size (from the planner's row estimate of the
   * table, clamped to [{@link #EXACT_SCAN_MIN_ROWS}, {@link #EXACT_SCAN_MAX_ROWS}]); a tenant is
   * usually most of the index, so HNSW takes it from {@link #EXACT_SCAN_MIN_ROWS} rows.
   * Must run inside a transaction (the settings end with it).
   */
  static boolean prepare(Handle h, String table, String tenant,
      UUID customerId, int candidates) {
    String scope = customerId == null ? "x.tenant_id = :tenant" : "x.tenant_id = :tenant AND x.customer_id = :customer";
    String exactMax = exactScanRows(table, customerId != null, candidates);
    var q = h.createQuery("""
            WITH lim AS (SELECT %s AS n)
            SELECT s.n <= (SELECT n FROM lim) AS exact,
                   CASE WHEN s.n > (SELECT n FROM lim) THEN
                     set_config('hnsw.ef_search', :ef, true) || set_config('hnsw.iterative_scan', 'relaxed_order', true)
                       || set_config('enable_seqscan', 'off', true) || set_config('enable_sort', 'off', true)
                       || set_config('jit', 'off', true)
                   END AS settings
              FROM (SELECT count(*) AS n FROM (SELECT 1 FROM %s x WHERE %s LIMIT (SELECT n FROM lim) + 1) c) s"""
            .formatted(exactMax, table, scope))
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
}

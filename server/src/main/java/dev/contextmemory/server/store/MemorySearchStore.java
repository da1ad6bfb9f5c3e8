package dev.contextmemory.server.store;

import static dev.contextmemory.server.store.MemoryStore.COLUMNS;
import static dev.contextmemory.server.store.MemoryStore.MEMORY;
import static dev.contextmemory.server.store.MemoryStore.filters;

import com.pgvector.PGvector;
import dev.contextmemory.server.domain.Context;
import dev.contextmemory.server.domain.Memory;
import dev.contextmemory.server.domain.NotFoundException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import org.jdbi.v3.core.Jdbi;

/**
 * Reads that rank memories: SearchMemories (vector, text, or both fused by reciprocal rank fusion)
 * and FetchContext's one-statement ranking. How they stay on an index: docs/search.md.
 */
public final class MemorySearchStore extends Store {
  /** Reciprocal rank fusion constant (the usual 60 from Cormack et al.). */
  public static final int RRF_K = 60;
  /**
   * FetchContext ranks a customer's newest this-many memories besides those its vector and text
   * lists find: older ones, whose recency has decayed, rank only when a query finds them.
   */
  static final int RECENT_POOL = 1_000;

  private final VectorSpace space;

  /** Vector lists read only memories embedded by {@code space}'s model (docs/search.md "Model changes"). */
  public MemorySearchStore(Jdbi jdbi, VectorSpace space) {
    super(jdbi);
    this.space = space;
  }

  /**
   * SearchMemories in one round trip of plain JDBC ({@link Store#pipeline}): a head statement
   * (the customer's existence, and for an index search the settings {@link #SETTINGS} lists),
   * then the vector list, the text list, or both, fused here by reciprocal rank fusion. A query
   * text with a '-' may need {@link TextQueries#requirePositiveTerm}'s check first, a round trip of its own.
   */
  public List<Memory.Hit> search(String tenant, Memory.Search s) {
    int cut = s.mode() == Memory.Mode.HYBRID ? Math.max(4 * s.topK(), 40) : s.topK();
    Shape shape = new Shape(s.mode(), s.customerId() != null, !s.kinds().isEmpty(), s.metadataJson() != null,
        s.asOf() != null, cut);
    boolean vector = shape.vector();
    boolean text = shape.text();
    if (text) {
      requirePositiveTerm(s.text());
    }
    boolean customer = shape.customer();
    boolean settings = shape.settings();
    Args args = new Args().set("tenant", tenant);
    if (customer) {
      args.set("customer", s.customerId());
    }
    if (settings) {
      args.set("ef", efSearch(candidates(customer, cut)));
    }
    if (vector) {
      args.set("q", new PGvector(s.embedding())).set("min", s.minScore());
    }
    if (text) {
      args.set("text", s.text()).set("min_score", s.mode() == Memory.Mode.TEXT ? s.minScore() : 0.0);
    }
    if (!s.kinds().isEmpty()) {
      args.set("kinds", s.kinds().toArray(String[]::new));
    }
    if (s.metadataJson() != null) {
      args.set("metadata_filter", s.metadataJson());
    }
    if (s.asOf() != null) {
      args.set("as_of", Rows.timestamptz(s.asOf()));
    }
    List<List<Ranked>> lists = new ArrayList<>(2);
    boolean found = pipeline(pipelineFor(shape, s), args, results -> {
      boolean f = results.next(rs -> rs.getBoolean("customer_found")).get(0);
      if (vector) {
        lists.add(ranked(results.next(rs -> new Ranked(MEMORY.map(rs, null), 1 - rs.getDouble("distance"), 0))));
      }
      if (text) {
        lists.add(ranked(results.next(rs -> new Ranked(MEMORY.map(rs, null), rs.getDouble("score"), 0))));
      }
      return f;
    });
    if (!found) {
      throw new NotFoundException("customer", s.customerId().toString());
    }
    return fuse(s.mode(), vector ? lists.get(0) : List.of(), text ? lists.get(lists.size() - 1) : List.of(), s.topK());
  }

  /** What a search's statements depend on besides its bound values. */
  private record Shape(Memory.Mode mode, boolean customer, boolean kinds, boolean metadata, boolean asOf, int cut) {
    boolean vector() {
      return mode != Memory.Mode.TEXT;
    }

    boolean text() {
      return mode != Memory.Mode.VECTOR;
    }

    /** A search in the past has no index over the versions it ranges over: an exact scan, no settings. */
    boolean settings() {
      return vector() && !asOf;
    }

    /*
     * Written out rather than the record's generated ones: those go through method handles that
     * a short run never gets compiled well, and a JFR profile of the load test's per-customer
     * search (1 ms sampling, 2026-11-30) had this key's equals and hashCode in 25 of the request
     * threads' 221 samples, more than the statement's binding.
     */
    @Override
    public int hashCode() {
      int h = mode.ordinal() * 1024 + cut;
      return (((h * 2 + (customer ? 1 : 0)) * 2 + (kinds ? 1 : 0)) * 2 + (metadata ? 1 : 0)) * 2 + (asOf ? 1 : 0);
    }

    @Override
    public boolean equals(Object o) {
      return o instanceof Shape s && s.mode == mode && s.customer == customer && s.kinds == kinds
          && s.metadata == metadata && s.asOf == asOf && s.cut == cut;
    }
  }

  /**
   * Statements built per shape, once: a profile of the load test's per-customer search (JFR,
   * 2026-11-30) found building them (String.formatted over 2 KB of SQL, every call) the largest
   * item of this store's own CPU, about a third of it. Bounded: top_k takes at most 100 values and
   * the rest are flags; past the cap a shape is built per call, as before.
   */
  private static final int MAX_SHAPES = 2048;
  private final Map<Shape, Plain> shapes = new ConcurrentHashMap<>();

  private Plain pipelineFor(Shape shape, Memory.Search s) {
    Plain plain = shapes.get(shape);
    if (plain == null) {
      plain = Plain.of(pipelineSql(shape, s));
      if (shapes.size() < MAX_SHAPES) {
        shapes.putIfAbsent(shape, plain);
      }
    }
    return plain;
  }

  /** The head statement, then the vector list, the text list, or both ({@code s} only for its filters' shape). */
  private String pipelineSql(Shape shape, Memory.Search s) {
    StringBuilder sql = new StringBuilder(head(shape.settings(), shape.customer()));
    if (shape.vector()) {
      sql.append(";\n").append(vectorStatement(space, shape.customer(), s.kinds(), s.metadataJson(), s.asOf(),
          shape.cut()));
    }
    if (shape.text()) {
      sql.append(";\n").append(textStatement(shape.customer(), s.kinds(), s.metadataJson(), s.asOf(), shape.cut()));
    }
    return sql.toString();
  }

  /**
   * What an index search sets for its round trip (VectorScope.prepare says why each), set
   * whichever way the scope is searched: an exact scan has no sort or sequential scan to choose
   * instead of its own, and never reads the HNSW index. And {@code plan_cache_mode =
   * force_generic_plan}, read when the next statements are bound: their plan does not depend on
   * the values (one-time filters choose the exact or the HNSW branch at run time), but after a
   * prepared statement's five custom plans PostgreSQL compares costs and, for searches over
   * varying customers, often keeps planning every call afresh (pg_stat_statements: 647 plans in
   * 1,300 per-customer searches, 0.72 ms a plan on a 0.68 ms execution; psql: 40 custom plans
   * for 40 customers in a row). Which way a connection settled made the same statement's p50
   * 1.6 or 2.7 ms from run to run.
   */
  static final String SETTINGS = "set_config('hnsw.ef_search', :ef, true)"
      + " || set_config('hnsw.iterative_scan', 'relaxed_order', true) || set_config('enable_seqscan', 'off', true)"
      + " || set_config('enable_sort', 'off', true) || set_config('jit', 'off', true)"
      + " || set_config('plan_cache_mode', 'force_generic_plan', true)";

  /** The pipeline's first statement: one row, the settings (or null) and whether the customer exists (or true). */
  static String head(boolean settings, boolean customer) {
    return "SELECT " + (settings ? SETTINGS : "NULL") + " AS settings, "
        + (customer ? "EXISTS (SELECT 1 FROM customers WHERE tenant_id = :tenant AND id = :customer)" : "true")
        + " AS customer_found";
  }

  /** The ef_search for that many candidates: twice as many, between 100 and 1,000. */
  static String efSearch(int candidates) {
    return Integer.toString(Math.min(1000, Math.max(100, 2 * candidates)));
  }

  /** Numbers a list's rows 1, 2, ... in the order the statement returned them. */
  private static List<Ranked> ranked(List<Ranked> rows) {
    List<Ranked> out = new ArrayList<>(rows.size());
    for (Ranked r : rows) {
      out.add(new Ranked(r.memory(), r.score(), out.size() + 1));
    }
    return out;
  }

  /** A memory in one ranked list, with its 1-based rank there and that list's score. */
  private record Ranked(Memory memory, double score, int rank) {}

  /**
   * The vector list: the scope (one customer, or the tenant) sized and searched in one statement.
   * Up to the exact-scan size (VectorScope.prepare) its rows are materialized first, so the
   * ORDER BY cannot reach the HNSW index and the result is exact; beyond it, the index with an
   * iterative scan reads the candidates, which relaxed_order may return slightly out of order, so
   * they are sorted again. Each branch is gated on the sizing by a one-time filter: PostgreSQL
   * runs only the one that applies (and the HNSW scan starts after the sizing, with the settings).
   */
  static String vectorStatement(VectorSpace space, boolean customer, List<String> kinds, String metadataJson,
      Instant asOf, int limit) {
    StringBuilder where = new StringBuilder(" m.tenant_id = :tenant AND " + space.rows("m", "embedding") + " AND "
        + MemoryHistoryStore.live(asOf));
    if (customer) {
      where.append(" AND m.customer_id = :customer");
    }
    filters(where, kinds, metadataJson);
    if (asOf != null) {
      return """
          SELECT * FROM (SELECT %1$s, m.embedding <=> CAST(:q AS vector) AS distance FROM %2$s WHERE%3$s) r
           WHERE 1 - r.distance >= :min ORDER BY r.distance, r.created_at DESC LIMIT %4$d"""
          .formatted(COLUMNS, MemoryHistoryStore.source(asOf), where, limit);
    }
    String scope = customer ? "x.tenant_id = :tenant AND x.customer_id = :customer" : "x.tenant_id = :tenant";
    return """
        WITH lim AS (SELECT %6$s AS n),
        sized AS (SELECT count(*) <= (SELECT n FROM lim) AS exact
                    FROM (SELECT 1 FROM memories x WHERE %7$s LIMIT (SELECT n FROM lim) + 1) c),
        scope AS MATERIALIZED (SELECT m.id, m.embedding FROM memories m WHERE%2$s AND (SELECT exact FROM sized)),
        top AS (SELECT id, embedding <=> CAST(:q AS vector) AS distance FROM scope ORDER BY distance LIMIT %4$d),
        knn AS MATERIALIZED (
          SELECT %1$s, %5$s AS distance
            FROM memories m WHERE%2$s AND NOT (SELECT exact FROM sized)
           ORDER BY %5$s
           LIMIT %3$d
        )
        SELECT * FROM (
          SELECT %1$s, top.distance FROM top JOIN memories m ON m.tenant_id = :tenant AND m.id = top.id
          UNION ALL
          SELECT * FROM knn
        ) r WHERE 1 - r.distance >= :min ORDER BY r.distance, r.created_at DESC LIMIT %4$d"""
        .formatted(COLUMNS, where, candidates(customer, limit), limit, space.distance("m", "embedding"),
            VectorScope.exactScanRows("memories", customer, candidates(customer, limit)), scope);
  }

  /**
   * Index candidates a k-NN reads: one customer's scope as deep as VectorScope.indexCandidates (its
   * filter rejects most of what the graph yields); a tenant-wide one 4 x k (at least 40), at
   * ef_search 100: on the graph VectorSpace.HNSW_BUILD builds that measured recall@10 0.982 on
   * MemoryRecallTest's hard set at 2.2 ms, against 0.982 at 800 / 400 for several times the cost
   * (docs/search.md "What the default trades").
   */
  static int candidates(boolean customer, int k) {
    return customer ? VectorScope.indexCandidates(k) : Math.min(1000, Math.max(40, 4 * k));
  }

  /** The text list: websearch_to_tsquery over the scope's GIN index, ranked by ts_rank_cd. */
  static String textStatement(boolean customer, List<String> kinds, String metadataJson, Instant asOf, int limit) {
    StringBuilder where = new StringBuilder(" m.tenant_id = :tenant AND m.content_tsv @@ q.query AND "
        + MemoryHistoryStore.live(asOf));
    if (customer) {
      where.append(" AND m.customer_id = :customer");
    }
    filters(where, kinds, metadataJson);
    return """
        SELECT * FROM (
          SELECT %s, CAST(ts_rank_cd(m.content_tsv, q.query, 32) AS float8) AS score
            FROM websearch_to_tsquery('english', :text) AS q(query), %s WHERE%s
        ) r WHERE r.score >= :min_score
        ORDER BY r.score DESC, r.created_at DESC, r.id DESC LIMIT %d"""
        .formatted(COLUMNS, MemoryHistoryStore.source(asOf), where, limit);
  }

  /** TextQueries.requirePositiveTerm as plain JDBC: a round trip only for a query with a '-'. */
  private void requirePositiveTerm(String query) {
    if (query == null || query.indexOf('-') < 0) {
      return;
    }
    List<String> tree = query(Plain.of(TextQueries.POSITIVE_TERM), new Args().set("q", query), rs -> rs.getString(1));
    if ("T".equals(tree.get(0))) {
      throw TextQueries.positiveTermMissing("query_text");
    }
  }

  private static List<Memory.Hit> fuse(Memory.Mode mode, List<Ranked> vector, List<Ranked> text, int topK) {
    Map<UUID, double[]> parts = new LinkedHashMap<>(); // sim, vrank, text score, trank
    Map<UUID, Memory> memories = new HashMap<>();
    for (Ranked r : vector) {
      parts.computeIfAbsent(r.memory().id(), id -> new double[4]);
      parts.get(r.memory().id())[0] = r.score();
      parts.get(r.memory().id())[1] = r.rank();
      memories.put(r.memory().id(), r.memory());
    }
    for (Ranked r : text) {
      parts.computeIfAbsent(r.memory().id(), id -> new double[4]);
      parts.get(r.memory().id())[2] = r.score();
      parts.get(r.memory().id())[3] = r.rank();
      memories.put(r.memory().id(), r.memory());
    }
    List<Memory.Hit> hits = new ArrayList<>();
    parts.forEach((id, p) -> {
      double score = switch (mode) {
        case VECTOR -> p[0];
        case TEXT -> p[2];
        case HYBRID -> (p[1] > 0 ? 1.0 / (RRF_K + p[1]) : 0) + (p[3] > 0 ? 1.0 / (RRF_K + p[3]) : 0);
      };
      hits.add(new Memory.Hit(memories.get(id), score, p[0], (int) p[1], p[2], (int) p[3]));
    });
    hits.sort(HIT_ORDER);
    return List.copyOf(hits.subList(0, Math.min(topK, hits.size())));
  }

  /** Best score first, then newest, then the larger id: built once, not per search. */
  private static final Comparator<Memory.Hit> HIT_ORDER = Comparator.comparingDouble(Memory.Hit::score).reversed()
      .thenComparing((Memory.Hit hit) -> hit.memory().createdAt(), Comparator.reverseOrder())
      .thenComparing(hit -> hit.memory().id(), Comparator.reverseOrder());

  /**
   * FetchContext in one read-only transaction: the customer, their open conversations, the chosen
   * conversation's last messages, and the memories ranked by the documented blend
   * ({@link FetchContextQuery}).
   */
  public Context context(String tenant, Context.Request r) {
    return read(h -> h.inTransaction(tx -> FetchContextQuery.run(tx, space, tenant, r)));
  }
}

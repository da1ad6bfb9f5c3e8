package dev.contextmemory.server.store;

import static dev.contextmemory.server.store.MemoryStore.COLUMNS;
import static dev.contextmemory.server.store.MemoryStore.LIVE;
import static dev.contextmemory.server.store.MemoryStore.MEMORY;
import static dev.contextmemory.server.store.MemoryStore.filters;
import static dev.contextmemory.server.store.MemoryStore.kindsFilter;

import com.pgvector.PGvector;
import dev.contextmemory.server.domain.Context;
import dev.contextmemory.server.domain.Conversation;
import dev.contextmemory.server.domain.Customer;
import dev.contextmemory.server.domain.InvalidArgumentException;
import dev.contextmemory.server.domain.Memory;
import dev.contextmemory.server.domain.Message;
import dev.contextmemory.server.domain.NotFoundException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import org.jdbi.v3.core.Handle;
import org.jdbi.v3.core.Jdbi;
import org.jdbi.v3.core.statement.Query;

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
   * text with a '-' may need {@link #requirePositiveTerm}'s check first, a round trip of its own.
   */
  public List<Memory.Hit> search(String tenant, Memory.Search s) {
    int cut = s.mode() == Memory.Mode.HYBRID ? Math.max(4 * s.topK(), 40) : s.topK();
    boolean vector = s.mode() != Memory.Mode.TEXT;
    boolean text = s.mode() != Memory.Mode.VECTOR;
    if (text) {
      requirePositiveTerm(s.text());
    }
    boolean customer = s.customerId() != null;
    // A search in the past has no index over the versions it ranges over: it is an exact scan, and needs no settings.
    boolean settings = vector && s.asOf() == null;
    Args args = new Args().set("tenant", tenant);
    StringBuilder sql = new StringBuilder(head(settings, customer));
    if (customer) {
      args.set("customer", s.customerId());
    }
    if (settings) {
      args.set("ef", efSearch(indexCandidates(cut)));
    }
    if (vector) {
      sql.append(";\n").append(vectorStatement(space, customer, s.kinds(), s.metadataJson(), s.asOf(), cut));
      args.set("q", new PGvector(s.embedding())).set("min", s.minScore());
    }
    if (text) {
      sql.append(";\n").append(textStatement(customer, s.kinds(), s.metadataJson(), s.asOf(), cut));
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
    boolean found = pipeline(Plain.of(sql.toString()), args, results -> {
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

  /**
   * What an index search sets for its round trip (Store.prepareVectorSearch says why each), set
   * whichever way the scope is searched: an exact scan has no sort or sequential scan to choose
   * instead of its own, and never reads the HNSW index.
   */
  static final String SETTINGS = "set_config('hnsw.ef_search', :ef, true)"
      + " || set_config('hnsw.iterative_scan', 'relaxed_order', true) || set_config('enable_seqscan', 'off', true)"
      + " || set_config('enable_sort', 'off', true) || set_config('jit', 'off', true)";

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
   * Up to the exact-scan size (Store.prepareVectorSearch) its rows are materialized first, so the
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
        .formatted(COLUMNS, where, indexCandidates(limit), limit, space.distance("m", "embedding"),
            exactScanRows("memories", customer, indexCandidates(limit)), scope);
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

  /** Store.requirePositiveTerm as plain JDBC: a round trip only for a query with a '-'. */
  private void requirePositiveTerm(String query) {
    if (query == null || query.indexOf('-') < 0) {
      return;
    }
    List<String> tree = query(Plain.of(POSITIVE_TERM), new Args().set("q", query), rs -> rs.getString(1));
    if ("T".equals(tree.get(0))) {
      throw positiveTermMissing("query_text");
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
    hits.sort(Comparator.comparingDouble(Memory.Hit::score).reversed()
        .thenComparing(hit -> hit.memory().createdAt(), Comparator.reverseOrder())
        .thenComparing(hit -> hit.memory().id(), Comparator.reverseOrder()));
    return List.copyOf(hits.subList(0, Math.min(topK, hits.size())));
  }

  /**
   * FetchContext in one read-only transaction: the customer, their open conversations, the chosen
   * conversation's last messages, and the memories ranked by the documented blend, computed by
   * PostgreSQL in one statement over every live memory of the customer.
   */
  public Context context(String tenant, Context.Request r) {
    return read(h -> h.inTransaction(tx -> {
      tx.execute("SET TRANSACTION READ ONLY");
      requirePositiveTerm(tx, r.text(), "query_text");
      Customer customer = tx.createQuery("SELECT " + CustomerStore.CUSTOMER_COLUMNS
              + " FROM customers WHERE tenant_id = :tenant AND id = :id")
          .bind("tenant", tenant).bind("id", r.customerId())
          .map(CustomerStore.CUSTOMER).findOne()
          .orElseThrow(() -> new NotFoundException("customer", r.customerId().toString()));
      List<Conversation> open = tx.createQuery("SELECT " + ConversationStore.COLUMNS + " FROM conversations"
              + " WHERE tenant_id = :tenant AND customer_id = :customer AND closed_at IS NULL AND deleted_at IS NULL"
              + " ORDER BY last_message_at DESC NULLS LAST, id DESC LIMIT 10")
          .bind("tenant", tenant).bind("customer", r.customerId())
          .map(ConversationStore.CONVERSATION).list();
      Conversation conversation;
      if (r.conversationId() != null) {
        conversation = tx.createQuery("SELECT " + ConversationStore.COLUMNS
                + " FROM conversations WHERE tenant_id = :tenant AND id = :id AND deleted_at IS NULL")
            .bind("tenant", tenant).bind("id", r.conversationId())
            .map(ConversationStore.CONVERSATION).findOne()
            .orElseThrow(() -> new NotFoundException("conversation", r.conversationId().toString()));
        if (!conversation.customerId().equals(r.customerId())) {
          throw InvalidArgumentException.of("conversation_id", "belongs to another customer");
        }
      } else {
        conversation = open.isEmpty() ? null : open.get(0);
      }
      List<Message> messages = conversation == null || r.messageLimit() == 0 ? List.of()
          : tx.createQuery("SELECT * FROM (SELECT " + MessageStore.COLUMNS + " FROM messages"
                  + " WHERE tenant_id = :tenant AND conversation_id = :conversation ORDER BY sequence DESC LIMIT "
                  + r.messageLimit() + ") recent ORDER BY sequence")
              .bind("tenant", tenant).bind("conversation", conversation.id())
              .map(MessageStore.MESSAGE).list();
      List<Memory.Scored> memories = r.memoryLimit() == 0 ? List.of() : rankedMemories(tx, space, tenant, r);
      return new Context(customer, open, conversation, messages, memories);
    }));
  }

  private static List<Memory.Scored> rankedMemories(Handle h, VectorSpace space, String tenant, Context.Request r) {
    int cut = Math.max(4 * r.memoryLimit(), 40);
    int lists = (r.embedding() != null ? 1 : 0) + (r.text() != null ? 1 : 0);
    StringBuilder with = new StringBuilder();
    StringBuilder joins = new StringBuilder();
    String filter = kindsFilter(r.kinds());
    if (r.embedding() != null) {
      boolean exact = prepareVectorSearch(h, "memories", tenant, r.customerId(), indexCandidates(cut));
      String scope = "m.tenant_id = :tenant AND m.customer_id = :customer AND " + space.rows("m", "embedding")
          + " AND " + LIVE + filter;
      with.append(exact ? """
          scope AS MATERIALIZED (SELECT m.id, m.embedding FROM memories m WHERE %s),
          v AS (SELECT s.id, 1 - (s.embedding <=> CAST(:q AS vector)) AS sim FROM scope s
                 ORDER BY s.embedding <=> CAST(:q AS vector) LIMIT %d),
          """.formatted(scope, cut) : """
          candidates AS MATERIALIZED (
            SELECT m.id, 1 - (%4$s) AS sim FROM memories m WHERE %1$s
             ORDER BY %4$s LIMIT %2$d),
          v AS (SELECT id, sim FROM candidates ORDER BY sim DESC LIMIT %3$d),
          """.formatted(scope, indexCandidates(cut), cut, space.distance("m", "embedding")));
      with.append("vr AS (SELECT id, sim, row_number() OVER (ORDER BY sim DESC, id DESC) AS rank FROM v WHERE sim > 0),\n");
      joins.append(" LEFT JOIN vr ON vr.id = m.id");
    } else {
      with.append("vr AS (SELECT NULL::uuid AS id, 0::float8 AS sim, NULL::bigint AS rank WHERE false),\n");
      joins.append(" LEFT JOIN vr ON false");
    }
    if (r.text() != null) {
      with.append("""
          t AS (
            SELECT m.id, CAST(ts_rank_cd(m.content_tsv, q.query, 32) AS float8) AS score, m.created_at
              FROM websearch_to_tsquery('english', :text) AS q(query), memories m
             WHERE m.tenant_id = :tenant AND m.customer_id = :customer AND m.content_tsv @@ q.query AND %s%s
             ORDER BY score DESC, m.created_at DESC, m.id DESC LIMIT %d),
          tr AS (SELECT id, score, row_number() OVER (ORDER BY score DESC, created_at DESC, id DESC) AS rank FROM t)
          """.formatted(LIVE, filter, cut));
      joins.append(" LEFT JOIN tr ON tr.id = m.id");
    } else {
      with.append("tr AS (SELECT NULL::uuid AS id, 0::float8 AS score, NULL::bigint AS rank WHERE false)\n");
      joins.append(" LEFT JOIN tr ON false");
    }
    // Weights and components as documented on ScoreBreakdown in memory.proto.
    String relevance = lists == 0 ? "0"
        : "(coalesce(1.0 / (%d + vr.rank), 0) + coalesce(1.0 / (%d + tr.rank), 0)) / (%d.0 / %d)"
            .formatted(RRF_K, RRF_K, lists, RRF_K + 1);
    String weights = lists == 0
        ? "0 * c.relevance + (0.20 / 0.45) * c.importance + (0.15 / 0.45) * c.recency + (0.10 / 0.45) * c.confirmation"
        : "0.55 * c.relevance + 0.20 * c.importance + 0.15 * c.recency + 0.10 * c.confirmation";
    // The memories ranked: those a query list found plus the customer's newest RECENT_POOL (by the
    // recency index): the blend is computed for at most RECENT_POOL + 2 x cut rows, never for every
    // memory of a customer with tens of thousands (docs/search.md, "FetchContext's bound").
    with.append("""
        , recent AS (SELECT m.id FROM memories m WHERE m.tenant_id = :tenant AND m.customer_id = :customer AND %s%s
                      ORDER BY m.created_at DESC, m.id DESC LIMIT %d),
        pool AS (SELECT id FROM recent UNION SELECT id FROM vr UNION SELECT id FROM tr)
        """.formatted(LIVE, filter, RECENT_POOL));
    String sql = "WITH " + with + """
        SELECT c.*, %s AS final_score FROM (
          SELECT %s, %s AS relevance, greatest(coalesce(vr.sim, 0), 0) AS vector_similarity,
                 coalesce(tr.score, 0) AS text_score, CAST(CAST(m.importance AS numeric) AS float8) AS importance_score,
                 power(0.5, greatest(extract(epoch FROM now() - greatest(m.created_at,
                   coalesce(m.last_confirmed_at, m.created_at))), 0) / 86400.0 / 30.0) AS recency,
                 m.confirm_count / (m.confirm_count + 2.0) AS confirmation
            FROM pool JOIN memories m ON m.tenant_id = :tenant AND m.id = pool.id%s
           WHERE m.customer_id = :customer AND %s
        ) c
        ORDER BY final_score DESC, c.created_at DESC, c.id DESC
        LIMIT %d""".formatted(weights.replace("c.importance", "c.importance_score"), COLUMNS, relevance, joins, LIVE,
        r.memoryLimit());
    Query q = h.createQuery(sql).bind("tenant", tenant).bind("customer", r.customerId());
    if (r.embedding() != null) {
      q.bind("q", Rows.vector(r.embedding()));
    }
    if (r.text() != null) {
      q.bind("text", r.text());
    }
    if (!r.kinds().isEmpty()) {
      q.bindArray("kinds", String.class, r.kinds());
    }
    return q.map((rs, ctx) -> new Memory.Scored(MEMORY.map(rs, ctx), rs.getDouble("final_score"),
        rs.getDouble("relevance"), rs.getDouble("vector_similarity"), rs.getDouble("text_score"),
        rs.getDouble("importance_score"), rs.getDouble("recency"), rs.getDouble("confirmation"))).list();
  }
}

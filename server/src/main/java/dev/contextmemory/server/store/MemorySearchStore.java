package dev.contextmemory.server.store;

import static dev.contextmemory.server.store.MemoryStore.COLUMNS;
import static dev.contextmemory.server.store.MemoryStore.LIVE;
import static dev.contextmemory.server.store.MemoryStore.MEMORY;
import static dev.contextmemory.server.store.MemoryStore.bindFilters;
import static dev.contextmemory.server.store.MemoryStore.filters;
import static dev.contextmemory.server.store.MemoryStore.kindsFilter;

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

  public MemorySearchStore(Jdbi jdbi) {
    super(jdbi);
  }

  /**
   * SearchMemories: the vector list, the text list, or both fused by reciprocal rank fusion, in one
   * transaction (the vector settings are per transaction).
   */
  public List<Memory.Hit> search(String tenant, Memory.Search s) {
    int cut = s.mode() == Memory.Mode.HYBRID ? Math.max(4 * s.topK(), 40) : s.topK();
    return read(h -> h.inTransaction(tx -> {
      requirePositiveTerm(tx, s.mode() == Memory.Mode.VECTOR ? null : s.text(), "query_text");
      if (s.customerId() != null) {
        MemoryStore.requireCustomer(tx, tenant, s.customerId());
      }
      List<Ranked> vector = s.mode() == Memory.Mode.TEXT ? List.of()
          : vectorList(tx, tenant, s.customerId(), s.embedding(), cut, s.kinds(), s.metadataJson(), s.minScore(),
              s.asOf());
      List<Ranked> text = s.mode() == Memory.Mode.VECTOR ? List.of()
          : textList(tx, tenant, s.customerId(), s.text(), cut, s.kinds(), s.metadataJson(),
              s.mode() == Memory.Mode.TEXT ? s.minScore() : 0, s.asOf());
      return fuse(s.mode(), vector, text, s.topK());
    }));
  }

  /** A memory in one ranked list, with its 1-based rank there and that list's score. */
  private record Ranked(Memory memory, double score, int rank) {}

  private static List<Ranked> vectorList(Handle h, String tenant, UUID customerId, float[] q, int limit,
      List<String> kinds, String metadataJson, double minSimilarity, Instant asOf) {
    // A search in the past has no index over the versions it ranges over: it is an exact scan.
    boolean exact = asOf != null || prepareVectorSearch(h, "memories", tenant, customerId, indexCandidates(limit));
    StringBuilder where = new StringBuilder(" m.tenant_id = :tenant AND m.embedding IS NOT NULL AND "
        + MemoryHistoryStore.live(asOf));
    if (customerId != null) {
      where.append(" AND m.customer_id = :customer");
    }
    filters(where, kinds, metadataJson);
    // Small scope: materialize its rows first, so the ORDER BY cannot reach the HNSW index and the
    // result is exact. Large scope: the index (iterative scan); relaxed_order may return neighbours
    // slightly out of order, so the outer query sorts the materialized candidates again.
    String sql = asOf != null ? """
        SELECT * FROM (SELECT %1$s, m.embedding <=> CAST(:q AS vector) AS distance FROM %2$s WHERE%3$s) r
         WHERE 1 - r.distance >= :min ORDER BY r.distance, r.created_at DESC LIMIT %4$d"""
        .formatted(COLUMNS, MemoryHistoryStore.source(asOf), where, limit) : exact ? """
        WITH scope AS MATERIALIZED (SELECT m.id, m.embedding FROM memories m WHERE%2$s),
        top AS (SELECT id, embedding <=> CAST(:q AS vector) AS distance FROM scope ORDER BY distance LIMIT %3$d)
        SELECT %1$s, top.distance FROM top JOIN memories m ON m.tenant_id = :tenant AND m.id = top.id
         WHERE 1 - top.distance >= :min ORDER BY top.distance, m.created_at DESC"""
        .formatted(COLUMNS, where, limit) : """
        WITH knn AS MATERIALIZED (
          SELECT %s, m.embedding <=> CAST(:q AS vector) AS distance
            FROM memories m WHERE%s
           ORDER BY m.embedding <=> CAST(:q AS vector)
           LIMIT %d
        )
        SELECT * FROM knn WHERE 1 - distance >= :min ORDER BY distance, created_at DESC LIMIT %d"""
        .formatted(COLUMNS, where, indexCandidates(limit), limit);
    Query query = h.createQuery(sql).bind("tenant", tenant).bind("q", Rows.vector(q)).bind("min", minSimilarity);
    if (customerId != null) {
      query.bind("customer", customerId);
    }
    bindFilters(query, kinds, metadataJson);
    MemoryHistoryStore.bindAsOf(query, asOf);
    List<Ranked> out = new ArrayList<>();
    query.map((rs, ctx) -> new Ranked(MEMORY.map(rs, ctx), 1 - rs.getDouble("distance"), 0)).forEach(r ->
        out.add(new Ranked(r.memory(), r.score(), out.size() + 1)));
    return out;
  }

  private static List<Ranked> textList(Handle h, String tenant, UUID customerId, String text, int limit,
      List<String> kinds, String metadataJson, double minScore, Instant asOf) {
    StringBuilder where = new StringBuilder(" m.tenant_id = :tenant AND m.content_tsv @@ q.query AND "
        + MemoryHistoryStore.live(asOf));
    if (customerId != null) {
      where.append(" AND m.customer_id = :customer");
    }
    filters(where, kinds, metadataJson);
    String sql = """
        SELECT * FROM (
          SELECT %s, CAST(ts_rank_cd(m.content_tsv, q.query, 32) AS float8) AS score
            FROM websearch_to_tsquery('english', :text) AS q(query), %s WHERE%s
        ) r WHERE r.score >= :min
        ORDER BY r.score DESC, r.created_at DESC, r.id DESC LIMIT %d"""
        .formatted(COLUMNS, MemoryHistoryStore.source(asOf), where, limit);
    Query query = h.createQuery(sql).bind("tenant", tenant).bind("text", text).bind("min", minScore);
    if (customerId != null) {
      query.bind("customer", customerId);
    }
    bindFilters(query, kinds, metadataJson);
    MemoryHistoryStore.bindAsOf(query, asOf);
    List<Ranked> out = new ArrayList<>();
    query.map((rs, ctx) -> new Ranked(MEMORY.map(rs, ctx), rs.getDouble("score"), 0)).forEach(r ->
        out.add(new Ranked(r.memory(), r.score(), out.size() + 1)));
    return out;
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
      List<Memory.Scored> memories = r.memoryLimit() == 0 ? List.of() : rankedMemories(tx, tenant, r);
      return new Context(customer, open, conversation, messages, memories);
    }));
  }

  private static List<Memory.Scored> rankedMemories(Handle h, String tenant, Context.Request r) {
    int cut = Math.max(4 * r.memoryLimit(), 40);
    int lists = (r.embedding() != null ? 1 : 0) + (r.text() != null ? 1 : 0);
    StringBuilder with = new StringBuilder();
    StringBuilder joins = new StringBuilder();
    String filter = kindsFilter(r.kinds());
    if (r.embedding() != null) {
      boolean exact = prepareVectorSearch(h, "memories", tenant, r.customerId(), indexCandidates(cut));
      String scope = "m.tenant_id = :tenant AND m.customer_id = :customer AND m.embedding IS NOT NULL AND "
          + LIVE + filter;
      with.append(exact ? """
          scope AS MATERIALIZED (SELECT m.id, m.embedding FROM memories m WHERE %s),
          v AS (SELECT s.id, 1 - (s.embedding <=> CAST(:q AS vector)) AS sim FROM scope s
                 ORDER BY s.embedding <=> CAST(:q AS vector) LIMIT %d),
          """.formatted(scope, cut) : """
          candidates AS MATERIALIZED (
            SELECT m.id, 1 - (m.embedding <=> CAST(:q AS vector)) AS sim FROM memories m WHERE %s
             ORDER BY m.embedding <=> CAST(:q AS vector) LIMIT %d),
          v AS (SELECT id, sim FROM candidates ORDER BY sim DESC LIMIT %d),
          """.formatted(scope, indexCandidates(cut), cut));
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

package dev.contextmemory.server.store;

import static dev.contextmemory.server.store.MemorySearchStore.RECENT_POOL;
import static dev.contextmemory.server.store.MemorySearchStore.RRF_K;
import static dev.contextmemory.server.store.MemoryStore.COLUMNS;
import static dev.contextmemory.server.store.MemoryStore.LIVE;
import static dev.contextmemory.server.store.MemoryStore.MEMORY;
import static dev.contextmemory.server.store.MemoryStore.kindsFilter;
import static dev.contextmemory.server.store.VectorScope.indexCandidates;

import static dev.contextmemory.server.store.TextQueries.requirePositiveTerm;

import dev.contextmemory.server.domain.Context;
import dev.contextmemory.server.domain.Conversation;
import dev.contextmemory.server.domain.Customer;
import dev.contextmemory.server.domain.InvalidArgumentException;
import dev.contextmemory.server.domain.Memory;
import dev.contextmemory.server.domain.Message;
import dev.contextmemory.server.domain.NotFoundException;
import java.util.List;
import org.jdbi.v3.core.Handle;
import org.jdbi.v3.core.statement.Query;

/**
 * FetchContext's statements, run by {@link MemorySearchStore#context} in its read-only
 * transaction: the customer, their open conversations, the chosen conversation's last messages,
 * and the memories ranked by the documented blend, computed by PostgreSQL in one statement over
 * every live memory of the customer.
 */
final class FetchContextQuery {
  private FetchContextQuery() {}

  static Context run(Handle tx, VectorSpace space, String tenant, Context.Request r) {
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
  }

  private static List<Memory.Scored> rankedMemories(Handle h, VectorSpace space, String tenant, Context.Request r) {
    int cut = Math.max(4 * r.memoryLimit(), 40);
    int lists = (r.embedding() != null ? 1 : 0) + (r.text() != null ? 1 : 0);
    StringBuilder with = new StringBuilder();
    StringBuilder joins = new StringBuilder();
    String filter = kindsFilter(r.kinds());
    if (r.embedding() != null) {
      boolean exact = VectorScope.prepare(h, "memories", tenant, r.customerId(), indexCandidates(cut));
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

package dev.contextmemory.server.store;

import dev.contextmemory.server.domain.Message;
import java.util.List;
import java.util.UUID;
import org.jdbi.v3.core.Jdbi;
import org.jdbi.v3.core.statement.Query;

/** SearchMessages: full-text search over the message aggregate (the GIN index on content_tsv). */
public final class MessageSearchStore extends Store {
  public MessageSearchStore(Jdbi jdbi) {
    super(jdbi);
  }

  /**
   * Full-text search, ranked by ts_rank_cd (normalization 32: rank/(rank+1)), keyset-paged on
   * (score, created_at, id). Snippets are computed only for the rows of the page: ts_headline
   * re-parses the text and is by far the most expensive part per row.
   */
  public Message.HitPage search(String tenant, String query, UUID conversationId, UUID customerId,
      Message.Filter filter, Message.HitCursor after, int limit) {
    StringBuilder where = new StringBuilder();
    if (conversationId != null) {
      where.append(" AND m.conversation_id = :conversation");
    }
    if (customerId != null) {
      where.append(" AND c.customer_id = :customer");
    }
    MessageStore.appendFilter(where, filter);
    String sql = """
        SELECT h.*, ts_headline('english', h.content, h.query,
                 'StartSel=«, StopSel=», MinWords=15, MaxWords=35, MaxFragments=2, FragmentDelimiter=" … "') AS snippet
          FROM (
            SELECT r.* FROM (
              SELECT %s, c.customer_id, CAST(ts_rank_cd(m.content_tsv, q.query, 32) AS float8) AS score, q.query
                FROM websearch_to_tsquery('english', :query) AS q(query),
                     messages m
                JOIN conversations c ON c.tenant_id = m.tenant_id AND c.id = m.conversation_id AND c.deleted_at IS NULL
               WHERE m.tenant_id = :tenant AND m.content_tsv @@ q.query%s
            ) r
            %s
            ORDER BY r.score DESC, r.created_at DESC, r.id DESC
            LIMIT :limit
          ) h
         ORDER BY h.score DESC, h.created_at DESC, h.id DESC""".formatted(
        prefixed(MessageStore.COLUMNS), where,
        after == null ? "" : "WHERE (r.score, r.created_at, r.id) < (:after_score, CAST(:after_time AS timestamptz), :after_id)");
    List<Message.Hit> hits = read(h -> {
      TextQueries.requirePositiveTerm(h, query, "query");
      Query q = h.createQuery(sql).bind("tenant", tenant).bind("query", query).bind("limit", limit + 1);
      if (conversationId != null) {
        q.bind("conversation", conversationId);
      }
      if (customerId != null) {
        q.bind("customer", customerId);
      }
      if (after != null) {
        q.bind("after_score", after.score()).bind("after_time", Rows.timestamptz(after.createdAt()))
            .bind("after_id", after.id());
      }
      MessageStore.bindFilter(q, filter);
      return q.map((rs, ctx) -> new Message.Hit(MessageStore.MESSAGE.map(rs, ctx), rs.getObject("customer_id", UUID.class),
          rs.getDouble("score"), rs.getString("snippet"))).list();
    });
    if (hits.size() <= limit) {
      return new Message.HitPage(hits, null);
    }
    List<Message.Hit> page = List.copyOf(hits.subList(0, limit));
    Message.Hit last = page.get(limit - 1);
    return new Message.HitPage(page, new Message.HitCursor(last.score(), last.message().createdAt(), last.message().id()));
  }

  private static String prefixed(String columns) {
    StringBuilder sb = new StringBuilder();
    for (String c : columns.split(",\\s*")) {
      if (!sb.isEmpty()) {
        sb.append(", ");
      }
      sb.append("m.").append(c);
    }
    return sb.toString();
  }
}

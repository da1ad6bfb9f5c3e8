package dev.contextmemory.server.store;

import dev.contextmemory.server.domain.Conversation;
import dev.contextmemory.server.domain.NotFoundException;
import dev.contextmemory.server.domain.Usage;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.UUID;
import org.jdbi.v3.core.Handle;
import org.jdbi.v3.core.Jdbi;
import org.jdbi.v3.core.statement.Query;

/**
 * Statistics and usage metrics: GetConversationStats over a window ending now, counted live, and
 * GetUsageMetrics in buckets, from the rollup views that {@link UsageRollup} refreshes (V7_1), with
 * handoffs counted live.
 */
public final class UsageStore extends Store {
  /** The advisory lock under which one server of several refreshes the rollup. */
  static final long REFRESH_LOCK = 0x636d_7573_6167_6531L; // "cmusage1"

  private static final String ROLLUP_COLUMNS = """
      sum(conversations_started) AS conversations_started,
      sum(conversations_with_embedding) AS conversations_with_embedding,
      sum(conversations_closed) AS conversations_closed, sum(messages_user) AS messages_user,
      sum(messages_assistant) AS messages_assistant, sum(messages_system) AS messages_system,
      sum(messages_tool) AS messages_tool, sum(messages_human_agent) AS messages_human_agent,
      sum(memories_created) AS memories_created, sum(memories_with_embedding) AS memories_with_embedding""";

  public UsageStore(Jdbi jdbi) {
    super(jdbi);
  }

  /**
   * Counts over the window [now - days, now), in one statement. Conversations count by start,
   * messages by their time, handoffs by their request; deleted conversations and their messages and
   * handoffs never count.
   */
  public Conversation.Stats stats(String tenant, UUID customerId, int days) {
    String customerFilter = customerId == null ? "" : " AND c.customer_id = :customer";
    String sql = """
        WITH w AS (SELECT now() - make_interval(days => :days) AS start_at, now() AS end_at),
        conv AS (
          SELECT count(*) AS total,
                 count(*) FILTER (WHERE c.closed_at IS NULL) AS open,
                 count(*) FILTER (WHERE c.closed_at IS NOT NULL) AS closed,
                 count(*) FILTER (WHERE c.summary_embedding IS NOT NULL) AS with_embedding,
                 count(*) FILTER (WHERE EXISTS (SELECT 1 FROM handoffs h WHERE h.tenant_id = c.tenant_id
                   AND h.conversation_id = c.id AND h.state = 'completed')) AS handoff_complete
            FROM conversations c, w
           WHERE c.tenant_id = :tenant AND c.deleted_at IS NULL
             AND c.started_at >= w.start_at AND c.started_at < w.end_at%1$s
        ),
        msg AS (
          SELECT count(*) FILTER (WHERE m.role = 'user') AS user_n,
                 count(*) FILTER (WHERE m.role = 'assistant') AS assistant_n,
                 count(*) FILTER (WHERE m.role = 'system') AS system_n,
                 count(*) FILTER (WHERE m.role = 'tool') AS tool_n,
                 count(*) FILTER (WHERE m.role = 'human_agent') AS human_agent_n
            FROM messages m
            JOIN conversations c ON c.tenant_id = m.tenant_id AND c.id = m.conversation_id AND c.deleted_at IS NULL, w
           WHERE m.tenant_id = :tenant AND m.created_at >= w.start_at AND m.created_at < w.end_at%1$s
        ),
        hand AS (
          SELECT count(*) AS requested_n,
                 count(*) FILTER (WHERE h.accepted_at IS NOT NULL) AS accepted_n,
                 count(*) FILTER (WHERE h.state = 'completed') AS completed_n
            FROM handoffs h
            JOIN conversations c ON c.tenant_id = h.tenant_id AND c.id = h.conversation_id AND c.deleted_at IS NULL, w
           WHERE h.tenant_id = :tenant AND h.requested_at >= w.start_at AND h.requested_at < w.end_at%1$s
        )
        SELECT w.start_at, w.end_at, conv.*, msg.*, hand.* FROM w, conv, msg, hand""".formatted(customerFilter);
    return read(h -> {
      if (customerId != null) {
        requireCustomer(h, tenant, customerId);
      }
      Query q = h.createQuery(sql).bind("tenant", tenant).bind("days", days);
      if (customerId != null) {
        q.bind("customer", customerId);
      }
      return q.map((rs, ctx) -> new Conversation.Stats(Rows.instant(rs, "start_at"), Rows.instant(rs, "end_at"),
          rs.getLong("total"), rs.getLong("open"), rs.getLong("closed"), rs.getLong("with_embedding"),
          rs.getLong("user_n"), rs.getLong("assistant_n"), rs.getLong("system_n"), rs.getLong("tool_n"),
          rs.getLong("human_agent_n"), rs.getLong("requested_n"), rs.getLong("accepted_n"), rs.getLong("completed_n"),
          rs.getLong("handoff_complete"))).one();
    });
  }

  /**
   * GetUsageMetrics: the rollup's rows of the range summed per bucket (and channel), the handoffs
   * of the range counted live with their wait percentiles, and the rollup's refresh time, in three
   * short statements on one connection. Ungrouped, every bucket of the range is reported, empty
   * ones included; grouped, the (bucket, channel) pairs with any activity.
   */
  public Usage usage(String tenant, Usage.Query q) {
    boolean daily = q.width().equals(Duration.ofDays(1));
    String unit = daily ? "day" : "hour";
    String channel = q.byChannel() ? "channel" : "''";
    String rollup = "SELECT bucket, " + channel + " AS channel, " + ROLLUP_COLUMNS
        + " FROM " + (daily ? "usage_daily" : "usage_hourly")
        + " WHERE tenant_id = :tenant AND bucket >= :start AND bucket < :end GROUP BY 1, 2";
    String hChannel = q.byChannel() ? "h.channel" : "''";
    String trunc = "date_trunc('" + unit + "', %s AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'";
    String handoffs = """
        SELECT bucket, channel, sum(requested) AS requested, sum(accepted) AS accepted, sum(completed) AS completed,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY wait) AS wait_p50,
               percentile_cont(0.9) WITHIN GROUP (ORDER BY wait) AS wait_p90
          FROM (
            SELECT %2$s AS bucket, %1$s AS channel, 1 AS requested, 0 AS accepted, 0 AS completed, NULL::float8 AS wait
              FROM handoffs h WHERE h.tenant_id = :tenant AND h.requested_at >= :start AND h.requested_at < :end
               AND EXISTS (SELECT 1 FROM conversations c WHERE c.tenant_id = h.tenant_id AND c.id = h.conversation_id
                             AND c.deleted_at IS NULL)
            UNION ALL
            SELECT %3$s, %1$s, 0, 1, 0, extract(epoch FROM h.accepted_at - h.requested_at)::float8
              FROM handoffs h WHERE h.tenant_id = :tenant AND h.accepted_at >= :start AND h.accepted_at < :end
               AND EXISTS (SELECT 1 FROM conversations c WHERE c.tenant_id = h.tenant_id AND c.id = h.conversation_id
                             AND c.deleted_at IS NULL)
            UNION ALL
            SELECT %4$s, %1$s, 0, 0, 1, NULL
              FROM handoffs h WHERE h.tenant_id = :tenant AND h.completed_at >= :start AND h.completed_at < :end
               AND EXISTS (SELECT 1 FROM conversations c WHERE c.tenant_id = h.tenant_id AND c.id = h.conversation_id
                             AND c.deleted_at IS NULL)
          ) x
         GROUP BY 1, 2""".formatted(hChannel, trunc.formatted("h.requested_at"), trunc.formatted("h.accepted_at"),
        trunc.formatted("h.completed_at"));
    return read(h -> {
      Map<Key, Usage.Bucket> rows = new TreeMap<>();
      bind(h.createQuery(rollup), tenant, q).map((rs, ctx) -> {
        Instant start = Rows.instant(rs, "bucket");
        String ch = rs.getString("channel");
        rows.put(key(start, ch), new Usage.Bucket(start, ch, rs.getLong("conversations_started"),
            rs.getLong("conversations_with_embedding"), rs.getLong("conversations_closed"), rs.getLong("messages_user"),
            rs.getLong("messages_assistant"), rs.getLong("messages_system"), rs.getLong("messages_tool"),
            rs.getLong("messages_human_agent"), rs.getLong("memories_created"), rs.getLong("memories_with_embedding"),
            0, 0, 0, null, null));
        return null;
      }).list();
      bind(h.createQuery(handoffs), tenant, q).map((rs, ctx) -> {
        Instant start = Rows.instant(rs, "bucket");
        String ch = rs.getString("channel");
        Usage.Bucket b = rows.getOrDefault(key(start, ch), empty(start, ch));
        rows.put(key(start, ch), new Usage.Bucket(start, ch, b.conversationsStarted(), b.conversationsWithEmbedding(),
            b.conversationsClosed(), b.messagesUser(), b.messagesAssistant(), b.messagesSystem(), b.messagesTool(),
            b.messagesHumanAgent(), b.memoriesCreated(), b.memoriesWithEmbedding(), rs.getLong("requested"),
            rs.getLong("accepted"), rs.getLong("completed"), seconds(rs, "wait_p50"), seconds(rs, "wait_p90")));
        return null;
      }).list();
      Instant refreshed = h.createQuery("SELECT refreshed_at FROM usage_rollup_state")
          .map((rs, ctx) -> Rows.instant(rs, "refreshed_at")).findOne().orElse(null);
      List<Usage.Bucket> buckets = new ArrayList<>();
      if (q.byChannel()) {
        buckets.addAll(rows.values());
      } else {
        for (Instant t = q.start(); t.isBefore(q.end()); t = t.plus(q.width())) {
          buckets.add(rows.getOrDefault(key(t, ""), empty(t, "")));
        }
      }
      return new Usage(buckets, refreshed);
    });
  }

  /**
   * Refreshes the rollup under the refresh lock, in one transaction, and returns whether this
   * server did it (false: another holds the lock). CONCURRENTLY, so GetUsageMetrics reads the old
   * rows meanwhile instead of waiting; the refresh reads every row of the counted tables, so it has
   * no statement timeout of its own and runs on the rollup's schedule only.
   */
  boolean refresh() {
    return write(h -> {
      boolean mine = h.createQuery("SELECT pg_try_advisory_xact_lock(:key)").bind("key", REFRESH_LOCK)
          .mapTo(Boolean.class).one();
      if (!mine) {
        return false;
      }
      h.execute("SET LOCAL statement_timeout = 0");
      // The view's query costs far above jit_above_cost, so PostgreSQL would JIT-compile it with
      // inlining and optimisation on every refresh: 3.1 s of the 8.2 s EXPLAIN ANALYZE at 1,000,000
      // messages (load average 22), pure CPU taken from the appends beside it. Off, refreshes took
      // 4.5-5.4 s against 5.9-10.3 s on, interleaved 3 x 2 on the same data (docs/architecture.md).
      h.execute("SET LOCAL jit = off");
      h.execute("REFRESH MATERIALIZED VIEW CONCURRENTLY usage_hourly");
      h.execute("REFRESH MATERIALIZED VIEW CONCURRENTLY usage_daily");
      h.execute("UPDATE usage_rollup_state SET refreshed_at = now()");
      return true;
    });
  }

  private static Query bind(Query query, String tenant, Usage.Query q) {
    return query.bind("tenant", tenant).bind("start", Rows.timestamptz(q.start())).bind("end", Rows.timestamptz(q.end()));
  }

  /** Buckets sort by time, then channel. */
  private record Key(Instant start, String channel) implements Comparable<Key> {
    @Override
    public int compareTo(Key o) {
      int c = start.compareTo(o.start);
      return c != 0 ? c : channel.compareTo(o.channel);
    }
  }

  private static Key key(Instant start, String channel) {
    return new Key(start, channel);
  }

  private static Usage.Bucket empty(Instant start, String channel) {
    return new Usage.Bucket(start, channel, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, null, null);
  }

  private static Duration seconds(ResultSet rs, String column) throws SQLException {
    double s = rs.getDouble(column);
    return rs.wasNull() ? null : Duration.ofNanos(Math.round(s * 1e9));
  }

  private static void requireCustomer(Handle h, String tenant, UUID customerId) {
    boolean exists = h.createQuery("SELECT true FROM customers WHERE tenant_id = :tenant AND id = :id")
        .bind("tenant", tenant).bind("id", customerId).mapTo(Boolean.class).findOne().isPresent();
    if (!exists) {
      throw new NotFoundException("customer", customerId.toString());
    }
  }
}

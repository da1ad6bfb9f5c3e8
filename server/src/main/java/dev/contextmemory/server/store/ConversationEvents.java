package dev.contextmemory.server.store;

import dev.contextmemory.server.domain.Conversation;
import dev.contextmemory.server.domain.ConversationEvent;
import dev.contextmemory.server.domain.ConversationEvent.Kind;
import dev.contextmemory.server.domain.Message;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import org.jdbi.v3.core.Handle;
import org.jdbi.v3.core.Jdbi;
import org.jdbi.v3.core.mapper.RowMapper;
import org.jdbi.v3.core.statement.UnableToExecuteStatementException;

/**
 * The conversation_events outbox behind WatchConversations (V8; docs/architecture.md "Watch
 * streams"). Writers {@link #record} an event in their own transaction, after they hold the
 * conversation's row lock, with no position. {@link #sequence} numbers committed events afterwards,
 * one pass at a time across every replica (a transaction-level advisory lock), in id order, and
 * NOTIFYs {@link #CHANNEL}; readers read positioned events only, in position order. So a reader
 * that has read through position p never meets an event at or below p later: an event committing
 * late is numbered late. Per conversation, ids are drawn under the conversation's row lock and so
 * follow commit order, and one pass numbers them in id order: positions follow it too.
 */
public final class ConversationEvents extends Store {
  /** The LISTEN/NOTIFY channel a sequencer pass notifies with the highest position it assigned. */
  public static final String CHANNEL = "cm_conversation_events";
  private static final long SEQUENCER_LOCK = 0x636d5f6576736571L; // "cm_evseq"
  private static final long PURGE_LOCK = 0x636d5f6576707267L; // "cm_evprg"

  private static final String EVENT_COLUMNS = "e.position, e.tenant_id, e.conversation_id, e.customer_id, e.channel,"
      + " e.kind, e.message_sequence, e.payload::text AS payload, e.created_at";

  private static final RowMapper<ConversationEvent> EVENT = (rs, ctx) -> new ConversationEvent(
      rs.getLong("position"), rs.getString("tenant_id"), rs.getObject("conversation_id", UUID.class),
      rs.getObject("customer_id", UUID.class), rs.getString("channel"), Kind.fromStored(rs.getString("kind")),
      Rows.instant(rs, "created_at"), null, null, rs.getString("payload"),
      rs.getObject("message_sequence") == null ? 0 : rs.getLong("message_sequence"));

  private volatile Runnable onCommit = () -> {};

  public ConversationEvents(Jdbi jdbi) {
    super(jdbi);
  }

  /** What runs after a write that recorded events has committed (the local sequencer's wake-up). */
  public void onCommit(Runnable r) {
    this.onCommit = r;
  }

  /** Stores call this after a transaction that recorded events committed. */
  void committed() {
    onCommit.run();
  }

  // ---------------------------------------------------------------------------------------------
  // Writing, inside the writer's transaction

  /**
   * Records one event of {@code conversationId}. Call it inside the write's own transaction and
   * only once the transaction holds the conversation's row lock (an UPDATE of the row, or FOR
   * UPDATE, or the INSERT that created it): that lock is what makes event ids, and so positions,
   * follow commit order per conversation. Then call the store's post-commit wake-up.
   *
   * <p>HANDOFF_CHANGED (the handoff RPCs): {@code payloadJson} is a JSON object whose "state" is
   * the state the handoff moved to ("requested", "accepted", "completed", "cancelled"); its other
   * fields (handoff_id, priority, assignee_id) reach watchers as HandoffChange.details.
   * Other kinds pass null.
   */
  public static void record(Handle h, String tenant, UUID conversationId, Kind kind, String payloadJson) {
    h.createUpdate("""
            INSERT INTO conversation_events (tenant_id, conversation_id, customer_id, channel, kind, payload)
            SELECT :tenant, id, customer_id, channel, :kind, CAST(:payload AS jsonb)
              FROM conversations WHERE tenant_id = :tenant AND id = :id""")
        .bind("tenant", tenant).bind("id", conversationId).bind("kind", kind.stored()).bind("payload", payloadJson)
        .execute();
  }

  /** {@link #record} for several conversations (each locked), in one statement, in id order. */
  static void recordAll(Handle h, String tenant, Collection<UUID> conversationIds, Kind kind) {
    if (conversationIds.isEmpty()) {
      return;
    }
    h.createUpdate("""
            INSERT INTO conversation_events (tenant_id, conversation_id, customer_id, channel, kind)
            SELECT :tenant, id, customer_id, channel, :kind
              FROM conversations WHERE tenant_id = :tenant AND id = ANY(CAST(:ids AS uuid[]))
             ORDER BY id""")
        .bind("tenant", tenant).bindArray("ids", UUID.class, conversationIds).bind("kind", kind.stored())
        .execute();
  }

  /**
   * The CTE that records MESSAGE_APPENDED for the rows of a CTE {@code rows} with columns
   * conversation_id and sequence, inside a many-row insert statement (one event per message, in
   * sequence order within the statement).
   */
  static String messageEventsCte(String rows) {
    return """
        INSERT INTO conversation_events (tenant_id, conversation_id, customer_id, channel, kind, message_sequence)
        SELECT :tenant, r.conversation_id, c.customer_id, c.channel, 'message_appended', r.sequence
          FROM %s r JOIN conversations c ON c.tenant_id = :tenant AND c.id = r.conversation_id
         ORDER BY r.conversation_id, r.sequence""".formatted(rows);
  }

  // ---------------------------------------------------------------------------------------------
  // Sequencing

  /**
   * One sequencer pass: numbers up to {@code batch} committed, unnumbered events in id order and,
   * if it numbered any, notifies {@link #CHANNEL}. Passes of all replicas run one at a time (the
   * advisory lock), and each reads the pending rows in a statement that starts after it holds the
   * lock, so it sees everything the previous pass numbered. Synchronous commit stays on: a
   * position a reader has seen must survive a crash. Returns how many it numbered.
   */
  public int sequence(int batch) {
    // Plain JDBC on the transaction's connection: a pass runs after nearly every append, and in a
    // profile of the load test's append_message (JFR, 2026-11-30) the sequencer thread took a
    // third of the server's Java samples, most of it in Jdbi's statement machinery.
    return write(h -> {
      try {
        return sequence(h.getConnection(), batch);
      } catch (SQLException e) {
        throw new UnableToExecuteStatementException(e, null);
      }
    });
  }

  private static int sequence(Connection c, int batch) throws SQLException {
    try (PreparedStatement lock = c.prepareStatement("SELECT pg_advisory_xact_lock(?)")) {
      lock.setLong(1, SEQUENCER_LOCK);
      lock.executeQuery().close();
    }
    // Two statements the planner cannot get wrong on a table without statistics (a join of
    // the pending rows back to the table was planned as a nested loop over a sequential scan
    // and ran into the statement timeout with 200,000 pending rows): pick the pending rows in
    // id order through the partial index, drawing positions in that order (nextval runs above
    // the ordered, limited subquery), then update them by primary key from the arrays.
    List<String> tenants = new ArrayList<>();
    List<Long> ids = new ArrayList<>();
    List<Long> positions = new ArrayList<>();
    try (PreparedStatement pick = c.prepareStatement("""
        SELECT p.tenant_id, p.id, nextval('conversation_event_positions') AS position
          FROM (SELECT tenant_id, id FROM conversation_events WHERE position IS NULL ORDER BY id LIMIT ?) p""")) {
      pick.setInt(1, batch);
      try (ResultSet rs = pick.executeQuery()) {
        while (rs.next()) {
          tenants.add(rs.getString(1));
          ids.add(rs.getLong(2));
          positions.add(rs.getLong(3));
        }
      }
    }
    if (ids.isEmpty()) {
      return 0;
    }
    // The update and the NOTIFY in one statement: one round trip fewer per pass (the NOTIFY is
    // delivered at COMMIT either way).
    try (PreparedStatement number = c.prepareStatement("""
        WITH numbered AS (
          UPDATE conversation_events e SET position = u.position
            FROM unnest(CAST(? AS text[]), CAST(? AS bigint[]), CAST(? AS bigint[])) AS u(tenant_id, id, position)
           WHERE e.tenant_id = u.tenant_id AND e.id = u.id AND e.position IS NULL
          RETURNING 1)
        SELECT pg_notify(?, ?)::text FROM (SELECT count(*) FROM numbered) n""")) {
      number.setArray(1, c.createArrayOf("text", tenants.toArray()));
      number.setArray(2, c.createArrayOf("bigint", ids.toArray()));
      number.setArray(3, c.createArrayOf("bigint", positions.toArray()));
      number.setString(4, CHANNEL);
      number.setString(5, Long.toString(positions.get(positions.size() - 1)));
      number.executeQuery().close();
    }
    return ids.size();
  }

  /**
   * The highest position assigned and committed (0 when none); never below what the purge has
   * deleted, since an empty table does not mean no position was ever assigned.
   */
  public long head() {
    return read(h -> h.createQuery("""
            SELECT greatest((SELECT coalesce(max(position), 0) FROM conversation_events WHERE position IS NOT NULL),
                            (SELECT purged_through FROM conversation_event_retention))""")
        .mapTo(Long.class).one());
  }

  // ---------------------------------------------------------------------------------------------
  // Reading

  /**
   * Every tenant's events in (after, upto], at most {@code limit}, in position order, with their
   * messages and conversations: the one shared read of a server's watch poller.
   */
  public List<ConversationEvent> readAll(long after, long upto, int limit) {
    return read(h -> withContent(h, h.createQuery("SELECT " + EVENT_COLUMNS + " " + """
             FROM conversation_events e
            WHERE e.position > :after AND e.position <= :upto
            ORDER BY e.position LIMIT :limit""")
        .bind("after", after).bind("upto", upto).bind("limit", limit)
        .map(EVENT).list()));
  }

  /**
   * One tenant's events matching {@code filter} in (after, upto], at most {@code limit}, in
   * position order: a resuming subscriber's catch-up read. The caller bounds upto - after, which
   * bounds the index range read whatever the filter rejects.
   */
  public List<ConversationEvent> readTenant(String tenant, ConversationEvent.Filter filter, long after, long upto,
      int limit) {
    StringBuilder where = new StringBuilder(
        "e.tenant_id = :tenant AND e.position > :after AND e.position <= :upto");
    if (filter.conversationId() != null) {
      where.append(" AND e.conversation_id = :conversation");
    }
    if (filter.customerId() != null) {
      where.append(" AND e.customer_id = :customer");
    }
    if (filter.channel() != null) {
      where.append(" AND e.channel = :channel");
    }
    if (filter.handoffQueue()) {
      where.append(" AND e.kind = 'handoff_changed'");
    }
    return read(h -> {
      var q = h.createQuery("SELECT " + EVENT_COLUMNS + " FROM conversation_events e WHERE " + where
              + " ORDER BY e.position LIMIT :limit")
          .bind("tenant", tenant).bind("after", after).bind("upto", upto).bind("limit", limit);
      if (filter.conversationId() != null) {
        q.bind("conversation", filter.conversationId());
      }
      if (filter.customerId() != null) {
        q.bind("customer", filter.customerId());
      }
      if (filter.channel() != null) {
        q.bind("channel", filter.channel());
      }
      return withContent(h, q.map(EVENT).list());
    });
  }

  /**
   * Adds each message event's message and each lifecycle event's conversation, in one query each
   * for the whole batch. An event whose message was erased since is dropped (an erasure must not
   * come back through the stream); a deleted event carries no conversation.
   */
  private static List<ConversationEvent> withContent(Handle h, List<ConversationEvent> events) {
    List<ConversationEvent> messageEvents = new ArrayList<>();
    List<ConversationEvent> lifecycle = new ArrayList<>();
    for (ConversationEvent e : events) {
      if (e.kind() == Kind.MESSAGE_APPENDED) {
        messageEvents.add(e);
      } else if (e.kind() != Kind.CONVERSATION_DELETED) {
        lifecycle.add(e);
      }
    }
    Map<String, Message> messages = new HashMap<>();
    if (!messageEvents.isEmpty()) {
      h.createQuery("SELECT key_tenant, " + MessageStore.COLUMNS + " " + """
               FROM (SELECT m.*, m.tenant_id AS key_tenant
                       FROM unnest(CAST(:tenants AS text[]), CAST(:conversations AS uuid[]), CAST(:sequences AS bigint[]))
                         AS u(tenant_id, conversation_id, sequence)
                       JOIN messages m ON m.tenant_id = u.tenant_id AND m.conversation_id = u.conversation_id
                                      AND m.sequence = u.sequence) x""")
          .bindArray("tenants", String.class, messageEvents.stream().map(ConversationEvent::tenant).toList())
          .bindArray("conversations", UUID.class, messageEvents.stream().map(ConversationEvent::conversationId).toList())
          .bindArray("sequences", Long.class, messageEvents.stream().map(ConversationEvent::messageSequence).toList())
          .map((rs, ctx) -> {
            Message m = MessageStore.MESSAGE.map(rs, ctx);
            messages.put(rs.getString("key_tenant") + "|" + m.conversationId() + "|" + m.sequence(), m);
            return m;
          })
          .list();
    }
    Map<String, Conversation> conversations = new HashMap<>();
    // One row per conversation, however many of its events the batch holds.
    Map<String, ConversationEvent> distinct = new java.util.LinkedHashMap<>();
    lifecycle.forEach(e -> distinct.putIfAbsent(e.tenant() + "|" + e.conversationId(), e));
    lifecycle = new ArrayList<>(distinct.values());
    if (!lifecycle.isEmpty()) {
      h.createQuery("SELECT key_tenant, " + ConversationStore.COLUMNS + " " + """
               FROM (SELECT c.*, c.tenant_id AS key_tenant
                       FROM unnest(CAST(:tenants AS text[]), CAST(:ids AS uuid[])) AS u(tenant_id, id)
                       JOIN conversations c ON c.tenant_id = u.tenant_id AND c.id = u.id) x""")
          .bindArray("tenants", String.class, lifecycle.stream().map(ConversationEvent::tenant).toList())
          .bindArray("ids", UUID.class, lifecycle.stream().map(ConversationEvent::conversationId).toList())
          .map((rs, ctx) -> {
            Conversation c = ConversationStore.CONVERSATION.map(rs, ctx);
            conversations.put(rs.getString("key_tenant") + "|" + c.id(), c);
            return c;
          })
          .list();
    }
    List<ConversationEvent> out = new ArrayList<>(events.size());
    for (ConversationEvent e : events) {
      switch (e.kind()) {
        case MESSAGE_APPENDED -> {
          Message m = messages.get(e.tenant() + "|" + e.conversationId() + "|" + e.messageSequence());
          if (m != null) {
            out.add(e.withContent(m, null));
          }
        }
        case CONVERSATION_DELETED -> out.add(e);
        default -> out.add(e.withContent(null, conversations.get(e.tenant() + "|" + e.conversationId())));
      }
    }
    return out;
  }

  // ---------------------------------------------------------------------------------------------
  // Retention

  /**
   * One bounded batch of the retention purge under its own advisory lock: of the {@code batch}
   * oldest positioned events, those created longer than {@code retention} ago go, and the
   * purged-through mark rises to the highest position deleted. Returns the rows deleted, -1 when
   * another server holds the lock.
   */
  public int purge(Duration retention, int batch) {
    return write(h -> {
      boolean mine = h.createQuery("SELECT pg_try_advisory_xact_lock(:key)").bind("key", PURGE_LOCK)
          .mapTo(Boolean.class).one();
      if (!mine) {
        return -1;
      }
      return h.createQuery("""
              WITH oldest AS (
                SELECT tenant_id, id FROM (
                  SELECT tenant_id, id, created_at FROM conversation_events
                   WHERE position IS NOT NULL ORDER BY position LIMIT :batch) f
                 WHERE f.created_at < now() - make_interval(secs => :retention)
              ), d AS (
                DELETE FROM conversation_events e USING oldest o WHERE e.tenant_id = o.tenant_id AND e.id = o.id
                RETURNING e.position
              ), mark AS (
                UPDATE conversation_event_retention
                   SET purged_through = greatest(purged_through, (SELECT max(position) FROM d))
                 WHERE EXISTS (SELECT 1 FROM d)
                RETURNING 1
              )
              SELECT count(*) FROM d""")
          .bind("batch", batch).bind("retention", retention.toSeconds())
          .mapTo(Integer.class).one();
    });
  }

  /** The highest position the retention purge has deleted: a cursor below it has lost events. */
  public long purgedThrough() {
    return read(h -> h.createQuery("SELECT purged_through FROM conversation_event_retention")
        .mapTo(Long.class).one());
  }
}

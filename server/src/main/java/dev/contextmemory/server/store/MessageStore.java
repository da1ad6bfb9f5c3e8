package dev.contextmemory.server.store;

import dev.contextmemory.server.domain.FailedPreconditionException;
import dev.contextmemory.server.domain.Ids;
import dev.contextmemory.server.domain.Message;
import dev.contextmemory.server.domain.NotFoundException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import org.jdbi.v3.core.Handle;
import org.jdbi.v3.core.Jdbi;
import org.jdbi.v3.core.mapper.RowMapper;
import org.jdbi.v3.core.statement.Query;

/**
 * The message aggregate: appends (single and batch) and history. Bulk import is
 * {@link MessageImportStore}, which shares the many-row insert; full-text search is
 * {@link MessageSearchStore}.
 *
 * <p>Order: every append bumps its conversation's {@code last_sequence} under the conversation's
 * row lock, so sequence numbers are gap-free and total per conversation. Idempotency: the unique
 * index on (tenant, conversation, idempotency_key) guarantees one row per key whatever races.
 */
public final class MessageStore extends Store {
  static final String COLUMNS = "id, conversation_id, sequence, role, content, tool_calls::text AS tool_calls,"
      + " tool_call_id, attachments::text AS attachments, metadata::text AS metadata, idempotency_key, created_at";

  static final RowMapper<Message> MESSAGE = (rs, ctx) -> new Message(
      rs.getObject("id", UUID.class),
      rs.getObject("conversation_id", UUID.class),
      rs.getLong("sequence"),
      rs.getString("role"),
      rs.getString("content"),
      MessageJson.toolCalls(rs.getString("tool_calls")),
      rs.getString("tool_call_id"),
      MessageJson.attachments(rs.getString("attachments")),
      rs.getString("metadata"),
      rs.getString("idempotency_key"),
      Rows.instant(rs, "created_at"));

  /**
   * AppendMessage in ONE statement, the hottest path of the server: the replay lookup, the
   * conversation's counters (whose row lock orders concurrent appends), the insert and its
   * MESSAGE_APPENDED event (ConversationEvents: recorded under that row lock). When the
   * conversation is not open (or missing) nothing matches and the caller diagnoses why.
   */
  private static final String APPEND_ONE = """
      WITH existing AS (
        SELECT %1$s FROM messages m
         WHERE m.tenant_id = :tenant AND m.conversation_id = :conversation AND m.idempotency_key = :key
           AND EXISTS (SELECT 1 FROM conversations c
                        WHERE c.tenant_id = :tenant AND c.id = :conversation AND c.deleted_at IS NULL)
      ), conv AS (
        UPDATE conversations
           SET last_sequence = last_sequence + 1, message_count = message_count + 1,
               last_message_at = greatest(last_message_at, coalesce(CAST(:created_at AS timestamptz), now()))
         WHERE tenant_id = :tenant AND id = :conversation AND closed_at IS NULL AND deleted_at IS NULL
           AND NOT EXISTS (SELECT 1 FROM existing)
        RETURNING last_sequence, customer_id, channel
      ), ev AS (
        INSERT INTO conversation_events (tenant_id, conversation_id, customer_id, channel, kind, message_sequence)
        SELECT :tenant, :conversation, conv.customer_id, conv.channel, 'message_appended', conv.last_sequence FROM conv
      ), ins AS (
        INSERT INTO messages (tenant_id, id, conversation_id, sequence, role, content, tool_calls, tool_call_id,
                              attachments, metadata, idempotency_key, created_at)
        SELECT :tenant, :id, :conversation, conv.last_sequence, :role, :content, CAST(:tool_calls AS jsonb),
               :tool_call_id, CAST(:attachments AS jsonb), coalesce(CAST(:metadata AS jsonb), '{}'), :key,
               coalesce(CAST(:created_at AS timestamptz), now())
          FROM conv
        RETURNING %1$s
      )
      SELECT ins.*, false AS replayed FROM ins
      UNION ALL
      SELECT existing.*, true AS replayed FROM existing""".formatted(COLUMNS);

  /**
   * The many-row insert behind AppendMessages and ImportMessages: one INSERT over parallel arrays
   * (unnest), whatever the number of rows, and in the same statement each touched conversation's
   * counters and one MESSAGE_APPENDED event per row. Sequences are computed by the caller, which holds the conversations' row locks.
   */
  private static final String INSERT_MANY = """
      WITH ins AS (
        INSERT INTO messages (tenant_id, id, conversation_id, sequence, role, content, tool_calls, tool_call_id,
                              attachments, metadata, idempotency_key, created_at)
        SELECT :tenant, u.id, u.conversation_id, u.sequence, u.role, u.content, CAST(u.tool_calls AS jsonb),
               u.tool_call_id, CAST(u.attachments AS jsonb), coalesce(CAST(u.metadata AS jsonb), '{}'),
               u.idempotency_key, coalesce(CAST(u.created_at AS timestamptz), now())
          FROM unnest(CAST(:ids AS uuid[]), CAST(:conversation_ids AS uuid[]), CAST(:sequences AS bigint[]),
                      CAST(:roles AS text[]), CAST(:contents AS text[]), CAST(:tool_calls AS text[]),
                      CAST(:tool_call_ids AS text[]), CAST(:attachments AS text[]), CAST(:metadata AS text[]),
                      CAST(:keys AS text[]), CAST(:created_ats AS text[]))
            AS u(id, conversation_id, sequence, role, content, tool_calls, tool_call_id, attachments, metadata,
                 idempotency_key, created_at)
        RETURNING id, conversation_id, sequence, created_at
      ), counted AS (
        UPDATE conversations c
           SET last_sequence = c.last_sequence + a.n, message_count = c.message_count + a.n,
               last_message_at = greatest(c.last_message_at, a.newest)
          FROM (SELECT conversation_id, count(*) AS n, max(created_at) AS newest FROM ins GROUP BY conversation_id) a
         WHERE c.tenant_id = :tenant AND c.id = a.conversation_id
        RETURNING c.id
      ), ev AS (
      """ + ConversationEvents.messageEventsCte("ins") + """
      )
      SELECT id, sequence, created_at, (SELECT count(*) FROM counted) AS conversations FROM ins""";

  private final ConversationEvents events;

  public MessageStore(Jdbi jdbi, ConversationEvents events) {
    super(jdbi);
    this.events = events;
  }

  // ---------------------------------------------------------------------------------------------
  // Appends

  public Message.Appended append(String tenant, UUID conversationId, Message.Draft d) {
    for (int attempt = 0; ; attempt++) {
      try {
        var row = writeOne(APPEND_ONE, new Args()
            .set("tenant", tenant)
            .set("conversation", conversationId)
            .set("id", Ids.newId())
            .set("role", d.role())
            .set("content", d.content())
            .set("tool_calls", MessageJson.write(d.toolCalls()))
            .set("tool_call_id", d.toolCallId())
            .set("attachments", MessageJson.write(d.attachments()))
            .set("metadata", d.metadataJson())
            .set("key", d.idempotencyKey())
            .set("created_at", Rows.timestamptz(d.createdAt())),
            rs -> new Message.Appended(MESSAGE.map(rs, null), rs.getBoolean("replayed")));
        if (row.isPresent()) {
          if (!row.get().replayed()) {
            events.committed();
          }
          return row.get();
        }
        throw whyNotAppendable(tenant, conversationId);
      } catch (RuntimeException e) {
        // Two appends with one key raced past the replay lookup; the loser's insert hit the key's
        // unique index and rolled back whole. Run again: this time the lookup finds the winner.
        if (attempt == 0 && "messages_idempotency_key".equals(UniqueViolations.violatedUniqueConstraint(e))) {
          continue;
        }
        throw e;
      }
    }
  }

  /**
   * Appends a validated batch in one transaction with a constant number of statements: lock the
   * conversation, look up the batch's idempotency keys, insert the new items and count them.
   */
  public List<Message.Stored> appendBatch(String tenant, UUID conversationId, List<Message.Draft> drafts) {
    List<Message.Stored> stored = write(h -> {
      var state = h.createQuery("""
              SELECT last_sequence, closed_at IS NOT NULL AS closed, deleted_at IS NOT NULL AS deleted
                FROM conversations WHERE tenant_id = :tenant AND id = :id FOR UPDATE""")
          .bind("tenant", tenant).bind("id", conversationId)
          .map((rs, ctx) -> new long[] {rs.getLong(1), rs.getBoolean(2) ? 1 : 0, rs.getBoolean(3) ? 1 : 0})
          .findOne()
          .orElseThrow(() -> new NotFoundException("conversation", conversationId.toString()));
      if (state[2] == 1) {
        throw deleted(conversationId);
      }
      Map<String, Message.Stored> existing = existingKeys(h, tenant, conversationId, drafts);
      List<NewRow> rows = new ArrayList<>();
      long next = state[0];
      for (Message.Draft d : drafts) {
        if (d.idempotencyKey() == null || !existing.containsKey(d.idempotencyKey())) {
          rows.add(new NewRow(Ids.newId(), conversationId, ++next, d));
        }
      }
      if (!rows.isEmpty() && state[1] == 1) {
        throw closed(conversationId);
      }
      Map<UUID, Message.Stored> inserted = insertMany(h, tenant, rows);
      List<Message.Stored> out = new ArrayList<>(drafts.size());
      int r = 0;
      for (Message.Draft d : drafts) {
        Message.Stored replay = d.idempotencyKey() == null ? null : existing.get(d.idempotencyKey());
        out.add(replay != null ? replay : inserted.get(rows.get(r++).id()));
      }
      return out;
    });
    events.committed();
    return stored;
  }

  /** A message row to insert, its sequence already assigned under the conversation's row lock. */
  record NewRow(UUID id, UUID conversationId, long sequence, Message.Draft draft) {}

  private static Map<String, Message.Stored> existingKeys(Handle h, String tenant, UUID conversationId,
      List<Message.Draft> drafts) {
    List<String> keys = drafts.stream().map(Message.Draft::idempotencyKey).filter(k -> k != null).toList();
    Map<String, Message.Stored> found = new HashMap<>();
    if (keys.isEmpty()) {
      return found;
    }
    h.createQuery("""
            SELECT idempotency_key, id, sequence, created_at FROM messages
             WHERE tenant_id = :tenant AND conversation_id = :conversation
               AND idempotency_key = ANY(CAST(:keys AS text[]))""")
        .bind("tenant", tenant).bind("conversation", conversationId)
        .bindArray("keys", String.class, keys)
        .map((rs, ctx) -> Map.entry(rs.getString(1),
            new Message.Stored(rs.getObject(2, UUID.class), rs.getLong(3), Rows.instant(rs, "created_at"), true)))
        .forEach(e -> found.put(e.getKey(), e.getValue()));
    return found;
  }

  static Map<UUID, Message.Stored> insertMany(Handle h, String tenant, List<NewRow> rows) {
    Map<UUID, Message.Stored> out = new HashMap<>();
    if (rows.isEmpty()) {
      return out;
    }
    int n = rows.size();
    List<UUID> ids = new ArrayList<>(n);
    List<UUID> conversations = new ArrayList<>(n);
    List<Long> sequences = new ArrayList<>(n);
    List<String> roles = new ArrayList<>(n);
    List<String> contents = new ArrayList<>(n);
    List<String> toolCalls = new ArrayList<>(n);
    List<String> toolCallIds = new ArrayList<>(n);
    List<String> attachments = new ArrayList<>(n);
    List<String> metadata = new ArrayList<>(n);
    List<String> keys = new ArrayList<>(n);
    List<String> createdAts = new ArrayList<>(n);
    for (NewRow r : rows) {
      Message.Draft d = r.draft();
      ids.add(r.id());
      conversations.add(r.conversationId());
      sequences.add(r.sequence());
      roles.add(d.role());
      contents.add(d.content());
      toolCalls.add(MessageJson.write(d.toolCalls()));
      toolCallIds.add(d.toolCallId());
      attachments.add(MessageJson.write(d.attachments()));
      metadata.add(d.metadataJson());
      keys.add(d.idempotencyKey());
      createdAts.add(d.createdAt() == null ? null : d.createdAt().toString());
    }
    h.createQuery(INSERT_MANY)
        .bind("tenant", tenant)
        .bindArray("ids", UUID.class, ids)
        .bindArray("conversation_ids", UUID.class, conversations)
        .bindArray("sequences", Long.class, sequences)
        .bindArray("roles", String.class, roles)
        .bindArray("contents", String.class, contents)
        .bindArray("tool_calls", String.class, toolCalls)
        .bindArray("tool_call_ids", String.class, toolCallIds)
        .bindArray("attachments", String.class, attachments)
        .bindArray("metadata", String.class, metadata)
        .bindArray("keys", String.class, keys)
        .bindArray("created_ats", String.class, createdAts)
        .map((rs, ctx) -> new Message.Stored(rs.getObject(1, UUID.class), rs.getLong(2), Rows.instant(rs, "created_at"),
            false))
        .forEach(s -> out.put(s.id(), s));
    return out;
  }

  /** Why an append matched no open conversation: it does not exist, is deleted, or is closed. */
  private RuntimeException whyNotAppendable(String tenant, UUID conversationId) {
    var state = read(h -> h.createQuery("""
            SELECT deleted_at IS NOT NULL AS deleted FROM conversations WHERE tenant_id = :tenant AND id = :id""")
        .bind("tenant", tenant).bind("id", conversationId)
        .mapTo(Boolean.class)
        .findOne());
    if (state.isEmpty()) {
      return new NotFoundException("conversation", conversationId.toString());
    }
    return state.get() ? deleted(conversationId) : closed(conversationId);
  }

  private static FailedPreconditionException closed(UUID id) {
    return new FailedPreconditionException("CONVERSATION_CLOSED",
        "conversation " + id + " is closed; open a new one with GetOrCreateOpenConversation",
        Map.of("conversation_id", id.toString()));
  }

  private static FailedPreconditionException deleted(UUID id) {
    return new FailedPreconditionException("CONVERSATION_DELETED", "conversation " + id + " is deleted",
        Map.of("conversation_id", id.toString()));
  }

  // ---------------------------------------------------------------------------------------------
  // History and search

  /**
   * One page of a conversation's messages by sequence, in one statement: the conversation row
   * (which tells "not found" from "no messages") joined to a range scan of the sequence index.
   */
  public Message.Page list(String tenant, UUID conversationId, boolean newestFirst, Long afterSequence,
      Message.Filter filter, int limit) {
    StringBuilder where = new StringBuilder();
    if (afterSequence != null) {
      where.append(newestFirst ? " AND m.sequence < :after" : " AND m.sequence > :after");
    }
    appendFilter(where, filter);
    String order = newestFirst ? "DESC" : "ASC";
    String sql = """
        SELECT c.id AS found, m.* FROM conversations c
        LEFT JOIN LATERAL (
          SELECT %s FROM messages m
           WHERE m.tenant_id = :tenant AND m.conversation_id = :conversation%s
           ORDER BY m.sequence %s
           LIMIT %d
        ) m ON true
        WHERE c.tenant_id = :tenant AND c.id = :conversation AND c.deleted_at IS NULL
        ORDER BY m.sequence %s""".formatted(COLUMNS, where, order, limit + 1, order);
    // The limit is written into the SQL (it is a clamped int, never user text) rather than bound:
    // with "LIMIT $n" PostgreSQL's generic plan assumes 10% of the conversation and looks so
    // expensive that it re-plans every execution (~0.7 ms, more than the query itself); with the
    // number known, the cached generic plan is chosen after five runs and planning disappears.
    Args args = new Args().set("tenant", tenant).set("conversation", conversationId);
    if (afterSequence != null) {
      args.set("after", afterSequence);
    }
    bindFilter(args, filter);
    // Plain JDBC (Store.query): one of the three hottest reads.
    List<Message> rows = new ArrayList<>();
    boolean found = !query(Plain.of(sql), args, rs -> {
      if (rs.getObject("id") != null) {
        rows.add(MESSAGE.map(rs, null));
      }
      return true;
    }).isEmpty();
    if (!found) {
      throw new NotFoundException("conversation", conversationId.toString());
    }
    if (rows.size() <= limit) {
      return new Message.Page(rows, null);
    }
    List<Message> page = List.copyOf(rows.subList(0, limit));
    return new Message.Page(page, page.get(limit - 1).sequence());
  }

  static void appendFilter(StringBuilder where, Message.Filter f) {
    if (!f.roles().isEmpty()) {
      where.append(" AND m.role = ANY(CAST(:roles AS text[]))");
    }
    if (f.from() != null) {
      where.append(" AND m.created_at >= CAST(:from AS timestamptz)");
    }
    if (f.until() != null) {
      where.append(" AND m.created_at < CAST(:until AS timestamptz)");
    }
  }

  /** {@link #bindFilter(Query, Message.Filter)} for a plain statement. */
  static void bindFilter(Args a, Message.Filter f) {
    if (!f.roles().isEmpty()) {
      a.set("roles", f.roles().toArray(new String[0]));
    }
    if (f.from() != null) {
      a.set("from", Rows.timestamptz(f.from()));
    }
    if (f.until() != null) {
      a.set("until", Rows.timestamptz(f.until()));
    }
  }

  static void bindFilter(Query q, Message.Filter f) {
    if (!f.roles().isEmpty()) {
      q.bindArray("roles", String.class, f.roles());
    }
    if (f.from() != null) {
      q.bind("from", Rows.timestamptz(f.from()));
    }
    if (f.until() != null) {
      q.bind("until", Rows.timestamptz(f.until()));
    }
  }
}

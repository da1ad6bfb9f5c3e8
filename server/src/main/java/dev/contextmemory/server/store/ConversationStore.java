package dev.contextmemory.server.store;

import dev.contextmemory.server.domain.Conversation;
import dev.contextmemory.server.domain.ConversationEvent;
import dev.contextmemory.server.domain.ConversationField;
import dev.contextmemory.server.domain.NotFoundException;
import dev.contextmemory.server.domain.Ids;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.UUID;
import org.jdbi.v3.core.Jdbi;
import org.jdbi.v3.core.mapper.RowMapper;
import org.jdbi.v3.core.statement.Query;

/** The conversation aggregate: a thread's lifecycle and its summary (statistics: {@link UsageStore}). */
public final class ConversationStore extends Store {
  private static final String FOREIGN_KEY_VIOLATION = "23503";
  private static final int OPEN_ATTEMPTS = 5;

  static final String COLUMNS = "id, customer_id, channel, thread_key, started_at, last_message_at, closed_at,"
      + " message_count, summary, summary_embedding IS NOT NULL AS has_summary_embedding,"
      + " metadata::text AS metadata, created_at, updated_at, handoff_state, summary_embedding_state,"
      + " summary_embedding_model";
  private static final String COLUMNS_WITH_EMBEDDING = COLUMNS + ", summary_embedding::text AS summary_embedding";

  static final RowMapper<Conversation> CONVERSATION = mapper(false);
  private static final RowMapper<Conversation> CONVERSATION_WITH_EMBEDDING = mapper(true);

  private static RowMapper<Conversation> mapper(boolean withEmbedding) {
    return (rs, ctx) -> new Conversation(
      rs.getObject("id", UUID.class),
      rs.getObject("customer_id", UUID.class),
      rs.getString("channel"),
      rs.getString("thread_key"),
      Rows.instant(rs, "started_at"),
      Rows.instant(rs, "last_message_at"),
      Rows.instant(rs, "closed_at"),
      rs.getLong("message_count"),
      rs.getString("summary"),
      withEmbedding ? Rows.vector(rs.getString("summary_embedding")) : null,
      rs.getBoolean("has_summary_embedding"),
      rs.getString("metadata"),
      Rows.instant(rs, "created_at"),
      Rows.instant(rs, "updated_at"),
      rs.getString("handoff_state"),
      rs.getString("summary_embedding_state"),
      rs.getString("summary_embedding_model"));
  }

  /**
   * The open conversation of a thread, or a new one, in one statement. The insert's arbiter is the
   * partial unique index "one open conversation per thread", so of concurrent callers exactly one
   * inserts; the others' inserts wait for it and do nothing, and the next pass reads the winner.
   */
  private static final String OPEN = """
      WITH found AS (
        SELECT %1$s FROM conversations
         WHERE tenant_id = :tenant AND customer_id = :customer AND channel = :channel AND thread_key = :thread_key
           AND closed_at IS NULL AND deleted_at IS NULL
      ), ins AS (
        INSERT INTO conversations (tenant_id, id, customer_id, channel, thread_key, metadata)
        SELECT :tenant, :id, :customer, :channel, :thread_key, coalesce(CAST(:metadata AS jsonb), '{}')
         WHERE NOT EXISTS (SELECT 1 FROM found)
        ON CONFLICT (tenant_id, customer_id, channel, thread_key) WHERE closed_at IS NULL AND deleted_at IS NULL
        DO NOTHING
        RETURNING %1$s
      ), ev AS (
        INSERT INTO conversation_events (tenant_id, conversation_id, customer_id, channel, kind)
        SELECT :tenant, ins.id, ins.customer_id, ins.channel, 'conversation_opened' FROM ins
      )
      SELECT found.*, false AS created FROM found
      UNION ALL
      SELECT ins.*, true AS created FROM ins""".formatted(COLUMNS);

  private final VectorSpace space;
  private final ConversationEvents events;
  private final boolean serverEmbeds;
  private final Runnable queued;

  /**
   * Summary searches read only summaries embedded by {@code space}'s model; clients' summary
   * vectors are recorded as its. Every write records its event in {@code events} in its own
   * transaction (WatchConversations). With {@code serverEmbeds}, a summary written without a
   * vector is queued for the embedding worker, and {@code queued} wakes it after the commit.
   */
  public ConversationStore(Jdbi jdbi, VectorSpace space, ConversationEvents events, boolean serverEmbeds,
      Runnable queued) {
    super(jdbi);
    this.space = space;
    this.events = events;
    this.serverEmbeds = serverEmbeds;
    this.queued = queued;
  }

  public Conversation.Opened getOrCreateOpen(String tenant, UUID customerId, String channel, String threadKey,
      String metadataJson) {
    for (int attempt = 0; attempt < OPEN_ATTEMPTS; attempt++) {
      Optional<Conversation.Opened> opened;
      try {
        opened = writeOne((h, tail) -> h.createQuery(OPEN + tail)
            .bind("tenant", tenant)
            .bind("id", Ids.newId())
            .bind("customer", customerId)
            .bind("channel", channel)
            .bind("thread_key", threadKey)
            .bind("metadata", metadataJson),
            (rs, ctx) -> new Conversation.Opened(CONVERSATION.map(rs, ctx), rs.getBoolean("created")));
      } catch (RuntimeException e) {
        if (isForeignKeyViolation(e)) {
          throw new NotFoundException("customer", customerId.toString());
        }
        throw e;
      }
      if (opened.isPresent()) {
        if (opened.get().created()) {
          events.committed();
        }
        return opened.get();
      }
    }
    // Only reachable if the thread's open conversation is closed or deleted as fast as it appears.
    throw new IllegalStateException("no stable open conversation for the thread after " + OPEN_ATTEMPTS + " attempts");
  }

  public Conversation get(String tenant, UUID id, boolean withEmbedding) {
    return read(h -> h.createQuery("SELECT " + (withEmbedding ? COLUMNS_WITH_EMBEDDING : COLUMNS)
                + " FROM conversations WHERE tenant_id = :tenant AND id = :id AND deleted_at IS NULL")
            .bind("tenant", tenant).bind("id", id)
            .map(withEmbedding ? CONVERSATION_WITH_EMBEDDING : CONVERSATION).findOne())
        .orElseThrow(() -> notFound(id));
  }

  /**
   * A customer's conversations (or, with a null customer, the tenant's), latest message first,
   * conversations without messages last. The keyset on (last_message_at DESC NULLS LAST, id DESC)
   * matches the customer-recency index; tenant-wide, a metadata filter is served by the
   * (tenant_id, metadata) GIN index, open conversations by the open-recency index (V5), and
   * the page is cut from what they return.
   */
  public Conversation.Page list(String tenant, UUID customerId, Conversation.Filter filter, Conversation.Cursor after,
      int limit) {
    StringBuilder sql = new StringBuilder("SELECT " + COLUMNS
        + " FROM conversations WHERE tenant_id = :tenant AND deleted_at IS NULL");
    if (customerId != null) {
      sql.append(" AND customer_id = :customer");
    }
    if (filter.status() != null) {
      sql.append(filter.status().equals("open") ? " AND closed_at IS NULL" : " AND closed_at IS NOT NULL");
    }
    if (filter.channel() != null) {
      sql.append(" AND channel = :channel");
    }
    if (filter.metadataJson() != null) {
      sql.append(" AND metadata @> CAST(:metadata AS jsonb)");
    }
    if (after != null) {
      sql.append(after.lastMessageAt() == null
          ? " AND last_message_at IS NULL AND id < :after_id"
          : " AND ((last_message_at, id) < (CAST(:after_time AS timestamptz), :after_id) OR last_message_at IS NULL)");
    }
    sql.append(" ORDER BY last_message_at DESC NULLS LAST, id DESC LIMIT :limit");
    Args args = new Args().set("tenant", tenant).set("limit", limit + 1).set("customer", customerId)
        .set("channel", filter.channel()).set("metadata", filter.metadataJson());
    if (after != null) {
      args.set("after_id", after.id()).set("after_time", Rows.timestamptz(after.lastMessageAt()));
    }
    // Plain JDBC (Store.query): the hottest lookup of the handoff system, one round trip.
    List<Conversation> rows = query(Plain.of(sql.toString()), args, rs -> CONVERSATION.map(rs, null));
    if (rows.isEmpty() && after == null && customerId != null) {
      requireCustomer(tenant, customerId);
    }
    if (rows.size() <= limit) {
      return new Conversation.Page(rows, null);
    }
    List<Conversation> page = List.copyOf(rows.subList(0, limit));
    Conversation last = page.get(limit - 1);
    return new Conversation.Page(page, new Conversation.Cursor(last.lastMessageAt(), last.id()));
  }

  /**
   * Closes an open conversation; a closed one is returned unchanged, so retries are harmless. An
   * active (requested or accepted) handoff ends with it, in the same transaction: CANCELLED with
   * the note "conversation closed" and the caller as actor, recorded in its history and as a
   * HANDOFF_CHANGED event, so the queue never holds a closed conversation. (A conversation closed
   * before that rule, with a handoff still active, gets it cancelled by a repeated close.)
   */
  public Conversation close(String tenant, UUID id, String actor) {
    boolean[] changed = {false};
    Conversation c = write(h -> {
      HandoffStore.lockActive(h, tenant, id);
      Conversation closed = h.createQuery("UPDATE conversations SET closed_at = now()"
              + " WHERE tenant_id = :tenant AND id = :id AND closed_at IS NULL AND deleted_at IS NULL RETURNING " + COLUMNS)
          .bind("tenant", tenant).bind("id", id)
          .map(CONVERSATION).findOne()
          .map(now -> {
            ConversationEvents.record(h, tenant, id, ConversationEvent.Kind.CONVERSATION_CLOSED, null);
            changed[0] = true;
            return now;
          })
          .or(() -> h.createQuery("SELECT " + COLUMNS
                  + " FROM conversations WHERE tenant_id = :tenant AND id = :id AND deleted_at IS NULL FOR UPDATE")
              .bind("tenant", tenant).bind("id", id)
              .map(CONVERSATION).findOne())
          .orElseThrow(() -> notFound(id));
      if (closed.handoffState().equals("ai")
          || HandoffStore.cancelActive(h, tenant, id, "conversation closed", actor).isEmpty()) {
        return closed;
      }
      changed[0] = true;
      // Rare (a handoff was active): read the row back with its handoff_state now ai.
      return h.createQuery("SELECT " + COLUMNS + " FROM conversations WHERE tenant_id = :tenant AND id = :id")
          .bind("tenant", tenant).bind("id", id).map(CONVERSATION).one();
    });
    if (changed[0]) {
      events.committed();
    }
    return c;
  }

  public Conversation update(String tenant, UUID id, Conversation.Change change) {
    if (change.fields().isEmpty()) {
      return get(tenant, id, false);
    }
    List<String> sets = new ArrayList<>();
    for (ConversationField f : change.fields()) {
      if (f == ConversationField.SUMMARY) {
        sets.add("summary = :summary");
      } else if (f == ConversationField.METADATA) {
        sets.add("metadata = coalesce(CAST(:metadata AS jsonb), '{}')");
      }
    }
    sets.addAll(SummaryEmbeddingSets.of(change.fields(), serverEmbeds, space));
    Conversation updated = write(h -> h.createQuery("UPDATE conversations SET " + String.join(", ", sets)
                + " WHERE tenant_id = :tenant AND id = :id AND deleted_at IS NULL RETURNING " + COLUMNS)
            .bind("tenant", tenant).bind("id", id)
            .bind("summary", change.summary() == null ? "" : change.summary())
            .bind("summary_embedding", Rows.vector(change.summaryEmbedding()))
            .bind("metadata", change.metadataJson())
            .map(CONVERSATION).findOne()
            .map(c -> {
              ConversationEvents.record(h, tenant, id, ConversationEvent.Kind.CONVERSATION_UPDATED, null);
              return c;
            }))
        .orElseThrow(() -> notFound(id));
    events.committed();
    if ("pending".equals(updated.summaryEmbeddingState())) {
      queued.run();
    }
    return updated;
  }

  /**
   * Soft delete: the row stays (until the retention purge or the customer's erasure) but every read
   * treats it as absent, so the memories that named it stop naming it, in the same transaction. An
   * active handoff ends with it as on {@link #close} (CANCELLED, note "conversation deleted"); its
   * HANDOFF_CHANGED event is recorded before CONVERSATION_DELETED.
   */
  public void delete(String tenant, UUID id, String actor) {
    int n = write(h -> {
      HandoffStore.lockActive(h, tenant, id);
      Optional<String> handoffState = h.createQuery("UPDATE conversations SET deleted_at = now()"
              + " WHERE tenant_id = :tenant AND id = :id AND deleted_at IS NULL RETURNING handoff_state")
          .bind("tenant", tenant).bind("id", id).mapTo(String.class).findOne();
      if (handoffState.isEmpty()) {
        return 0;
      }
      h.createUpdate("UPDATE memories SET conversation_id = NULL WHERE tenant_id = :tenant AND conversation_id = :id")
          .bind("tenant", tenant).bind("id", id).execute();
      if (!handoffState.get().equals("ai")) {
        HandoffStore.cancelActive(h, tenant, id, "conversation deleted", actor);
      }
      ConversationEvents.record(h, tenant, id, ConversationEvent.Kind.CONVERSATION_DELETED, null);
      return 1;
    });
    if (n == 0) {
      throw notFound(id);
    }
    events.committed();
  }

  /**
   * One bounded batch of the retention purge, in one short transaction (only the
   * {@link ExpirySweeper} calls it, under its {@link SweepLock}): up to {@code batch} messages of conversations soft-deleted
   * longer than {@code retention} ago, then up to {@code batch} such conversations that have no
   * message left. A big conversation thus goes over several batches instead of one unbounded
   * cascade. Returns the rows deleted.
   */
  public int purgeDeleted(java.time.Duration retention, int batch) {
    return write(h -> {
      int messages = h.createUpdate("""
              DELETE FROM messages WHERE ctid IN (
                SELECT m.ctid FROM conversations c
                  JOIN messages m ON m.tenant_id = c.tenant_id AND m.conversation_id = c.id
                 WHERE c.deleted_at <= now() - make_interval(secs => :retention)
                 ORDER BY c.deleted_at LIMIT :batch FOR UPDATE OF m SKIP LOCKED)""")
          .bind("retention", retention.toSeconds()).bind("batch", batch).execute();
      int conversations = h.createUpdate("""
              DELETE FROM conversations WHERE ctid IN (
                SELECT c.ctid FROM conversations c
                 WHERE c.deleted_at <= now() - make_interval(secs => :retention)
                   AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.tenant_id = c.tenant_id AND m.conversation_id = c.id)
                 ORDER BY c.deleted_at LIMIT :batch FOR UPDATE SKIP LOCKED)""")
          .bind("retention", retention.toSeconds()).bind("batch", batch).execute();
      return messages + conversations;
    });
  }

  /**
   * SearchConversations: cosine k-NN over summary embeddings (HNSW, iterative scan for the
   * filters), exact order restored after the index's relaxed order. Returns (conversation,
   * similarity) pairs, best first.
   */
  public List<java.util.Map.Entry<Conversation, Double>> searchBySummary(String tenant, float[] query, UUID customerId,
      String channel, String status, int topK, double minScore) {
    StringBuilder where = new StringBuilder(
        "tenant_id = :tenant AND " + space.rows("conversations", "summary_embedding") + " AND deleted_at IS NULL");
    if (customerId != null) {
      where.append(" AND customer_id = :customer");
    }
    if (channel != null) {
      where.append(" AND channel = :channel");
    }
    if (status != null) {
      where.append(status.equals("open") ? " AND closed_at IS NULL" : " AND closed_at IS NOT NULL");
    }
    return read(h -> h.inTransaction(tx -> {
      if (customerId != null) {
        requireCustomer(tx, tenant, customerId);
      }
      // A small scope is materialized first, so the sort is exact and cannot use the index; a large
      // one goes through HNSW (iterative scan), and the outer query restores the exact order.
      String candidates = VectorScope.prepare(tx, "conversations", tenant, customerId, VectorScope.indexCandidates(topK))
          ? "WITH scope AS MATERIALIZED (SELECT * FROM conversations WHERE %2$s), knn AS (SELECT %1$s,"
              + " summary_embedding <=> CAST(:q AS vector) AS distance FROM scope ORDER BY distance LIMIT %3$d)"
          : "WITH knn AS MATERIALIZED (SELECT %1$s, %5$s AS distance"
              + " FROM conversations WHERE %2$s ORDER BY %5$s LIMIT %4$d)";
      String sql = candidates.formatted(COLUMNS, where, topK, VectorScope.indexCandidates(topK),
              space.distance("conversations", "summary_embedding"))
          + " SELECT * FROM knn WHERE 1 - distance >= :min ORDER BY distance, id DESC LIMIT " + topK;
      Query q = tx.createQuery(sql).bind("tenant", tenant).bind("q", Rows.vector(query)).bind("min", minScore);
      if (customerId != null) {
        q.bind("customer", customerId);
      }
      if (channel != null) {
        q.bind("channel", channel);
      }
      return q.map((rs, ctx) -> java.util.Map.entry(CONVERSATION.map(rs, ctx), 1 - rs.getDouble("distance"))).list();
    }));
  }

  /** Throws NOT_FOUND unless the customer exists. */
  public void requireCustomer(String tenant, UUID customerId) {
    read(h -> {
      requireCustomer(h, tenant, customerId);
      return null;
    });
  }

  private static void requireCustomer(org.jdbi.v3.core.Handle h, String tenant, UUID customerId) {
    boolean exists = h.createQuery("SELECT true FROM customers WHERE tenant_id = :tenant AND id = :id")
        .bind("tenant", tenant).bind("id", customerId).mapTo(Boolean.class).findOne().isPresent();
    if (!exists) {
      throw new NotFoundException("customer", customerId.toString());
    }
  }

  private static NotFoundException notFound(UUID id) {
    return new NotFoundException("conversation", id.toString());
  }

  private static boolean isForeignKeyViolation(Throwable e) {
    for (Throwable t = e; t != null; t = t.getCause()) {
      if (t instanceof SQLException sql && FOREIGN_KEY_VIOLATION.equals(sql.getSQLState())) {
        return true;
      }
    }
    return false;
  }
}

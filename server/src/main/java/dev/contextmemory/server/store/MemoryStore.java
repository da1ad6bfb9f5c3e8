package dev.contextmemory.server.store;

import dev.contextmemory.server.domain.Ids;
import dev.contextmemory.server.domain.InvalidArgumentException;
import dev.contextmemory.server.domain.Memory;
import dev.contextmemory.server.domain.MemoryField;
import dev.contextmemory.server.domain.NotFoundException;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.UUID;
import org.jdbi.v3.core.Handle;
import org.jdbi.v3.core.Jdbi;
import org.jdbi.v3.core.mapper.RowMapper;
import org.jdbi.v3.core.statement.Query;
import org.jdbi.v3.core.statement.SqlStatement;

/**
 * The memory aggregate: memory notes, their writes, reads and expiry. Their search and FetchContext's
 * ranking are {@link MemorySearchStore}, ConfirmMemories' verdicts {@link MemoryConfirmationStore},
 * batches {@link MemoryBatchStore} and history {@link MemoryHistoryStore}.
 *
 * <p>Expiry is a predicate, not a job: every read adds {@link #LIVE}, so a memory is invisible the
 * moment its expires_at passes; {@link #sweepExpired} only reclaims the space later.
 */
public final class MemoryStore extends Store {
  static final String LIVE = "(m.expires_at IS NULL OR m.expires_at > now())";
  private static final String FOREIGN_KEY_VIOLATION = "23503";

  static final String COLUMNS = "m.id, m.customer_id, m.conversation_id, m.kind, m.memory_key, m.content,"
      + " m.metadata::text AS metadata, m.embedding IS NOT NULL AS has_embedding, m.importance, m.source,"
      + " m.expires_at, m.confirm_count, m.last_confirmed_at, m.created_at, m.updated_at, m.embedding_state,"
      + " m.embedding_model";
  private static final String RETURNING = COLUMNS.replace("m.", "");

  static final RowMapper<Memory> MEMORY = mapper(false);
  private static final RowMapper<Memory> MEMORY_WITH_EMBEDDING = mapper(true);

  private static RowMapper<Memory> mapper(boolean withEmbedding) {
    return (rs, ctx) -> new Memory(
        rs.getObject("id", UUID.class),
        rs.getObject("customer_id", UUID.class),
        rs.getObject("conversation_id", UUID.class),
        rs.getString("kind"),
        rs.getString("memory_key"),
        rs.getString("content"),
        rs.getString("metadata"),
        withEmbedding ? Rows.vector(rs.getString("embedding")) : null,
        rs.getBoolean("has_embedding"),
        rs.getFloat("importance"),
        rs.getString("source"),
        Rows.instant(rs, "expires_at"),
        rs.getInt("confirm_count"),
        Rows.instant(rs, "last_confirmed_at"),
        Rows.instant(rs, "created_at"),
        Rows.instant(rs, "updated_at"),
        rs.getString("embedding_state"),
        rs.getString("embedding_model"));
  }

  private final String model;
  private final boolean serverEmbeds;
  private final Runnable queued;

  /**
   * @param model the active embedding model, recorded with every vector a client sends
   * @param serverEmbeds whether a memory written without a vector is queued for the embedding worker
   * @param queued called after a write queued a memory (wakes this server's worker)
   */
  public MemoryStore(Jdbi jdbi, String model, boolean serverEmbeds, Runnable queued) {
    super(jdbi);
    this.model = model;
    this.serverEmbeds = serverEmbeds;
    this.queued = queued;
  }

  // ---------------------------------------------------------------------------------------------
  // Writes

  /**
   * Creates a memory. With a request id, a retry returns the memory the first call created (the
   * request-id index is the ON CONFLICT arbiter); an expired memory holding the key is removed first,
   * since expired means absent. A live memory with the key is ALREADY_EXISTS. {@code actor} is
   * recorded in the memory's history (as for every write here).
   */
  public Memory create(String tenant, String actor, UUID customerId, Memory.Draft d, String requestId) {
    return notifying(write(h -> {
      requireConversation(h, tenant, customerId, d.conversationId());
      dropExpiredKey(h, tenant, customerId, d.key());
      if (requestId != null) {
        // Expired means absent here too: a retry must not hand back a memory every read hides.
        h.createUpdate("DELETE FROM memories WHERE tenant_id = :tenant AND customer_id = :customer"
                + " AND create_request_id = :request_id AND expires_at <= now()")
            .bind("tenant", tenant).bind("customer", customerId).bind("request_id", requestId).execute();
      }
      Optional<Memory> inserted = foreignKeys(customerId, () -> MemoryHistoryStore.tag(bindDraft(h.createQuery("""
              INSERT INTO memories AS m (tenant_id, id, customer_id, conversation_id, kind, memory_key, content, metadata,
                                    embedding, importance, source, expires_at, create_request_id, embedding_model,
                                    embedding_state, embedding_queued_at, embedding_due_at)
              SELECT :tenant, :id, :customer, :conversation, :kind, :key, :content,
                     coalesce(CAST(:metadata AS jsonb), '{}'), CAST(:embedding AS vector), coalesce(:importance, 0.5),
                     coalesce(:source, ''), CAST(:expires_at AS timestamptz), :request_id, :embedding_model,
                     :embedding_state, CASE WHEN :embedding_state = 'pending' THEN now() END,
                     CASE WHEN :embedding_state = 'pending' THEN now() END
                FROM\s""" + MemoryHistoryStore.TAG + """
               WHERE true
              ON CONFLICT (tenant_id, customer_id, create_request_id) DO NOTHING
              RETURNING\s""" + RETURNING), d), actor, "create")
          .bind("tenant", tenant).bind("id", Ids.newId()).bind("customer", customerId).bind("request_id", requestId)
          .map(MEMORY).findOne());
      if (inserted.isPresent()) {
        return inserted.get();
      }
      return h.createQuery("SELECT " + COLUMNS + " FROM memories m WHERE m.tenant_id = :tenant"
              + " AND m.customer_id = :customer AND m.create_request_id = :request_id")
          .bind("tenant", tenant).bind("customer", customerId).bind("request_id", requestId)
          .map(MEMORY).findOne()
          .orElseThrow(() -> new NotFoundException("memory", "of request_id " + requestId));
    }));
  }

  /**
   * Creates or replaces the customer's memory with the draft's key in one INSERT ... ON CONFLICT
   * DO UPDATE, so concurrent upserts of one key serialize on the key's index entry and leave one
   * row. confirm_count and last_confirmed_at are kept; importance only changes when given.
   */
  public Memory.Upserted upsert(String tenant, String actor, UUID customerId, Memory.Draft d) {
    Memory.Upserted u = write(h -> {
      requireConversation(h, tenant, customerId, d.conversationId());
      dropExpiredKey(h, tenant, customerId, d.key());
      return foreignKeys(customerId, () -> MemoryHistoryStore.tag(bindDraft(h.createQuery("""
              INSERT INTO memories AS m (tenant_id, id, customer_id, conversation_id, kind, memory_key, content, metadata,
                                    embedding, importance, source, expires_at, embedding_model, embedding_state,
                                    embedding_queued_at, embedding_due_at)
              SELECT :tenant, :id, :customer, :conversation, :kind, :key, :content,
                     coalesce(CAST(:metadata AS jsonb), '{}'), CAST(:embedding AS vector), coalesce(:importance, 0.5),
                     coalesce(:source, ''), CAST(:expires_at AS timestamptz), :embedding_model, :embedding_state,
                     CASE WHEN :embedding_state = 'pending' THEN now() END,
                     CASE WHEN :embedding_state = 'pending' THEN now() END
                FROM\s""" + MemoryHistoryStore.TAG + """
               WHERE true
              ON CONFLICT (tenant_id, customer_id, memory_key) DO UPDATE SET
                conversation_id = EXCLUDED.conversation_id, kind = EXCLUDED.kind, content = EXCLUDED.content,
                metadata = EXCLUDED.metadata, embedding = EXCLUDED.embedding, source = EXCLUDED.source,
                embedding_model = EXCLUDED.embedding_model, embedding_state = EXCLUDED.embedding_state,
                embedding_attempts = 0, embedding_queued_at = EXCLUDED.embedding_queued_at,
                embedding_due_at = EXCLUDED.embedding_due_at, embedding_staged = NULL, embedding_staged_model = NULL,
                expires_at = EXCLUDED.expires_at,
                importance = CASE WHEN :importance IS NULL THEN m.importance ELSE EXCLUDED.importance END,
                valid_from =\s""" + MemoryHistoryStore.NEW_VERSION_FROM_EXCLUDED
              + " RETURNING " + RETURNING + ", (xmax = 0) AS created"), d), actor, "upsert")
          .bind("tenant", tenant).bind("id", Ids.newId()).bind("customer", customerId)
          .map((rs, ctx) -> new Memory.Upserted(MEMORY.map(rs, ctx), rs.getBoolean("created")))
          .one());
    });
    notifying(u.memory());
    return u;
  }

  /** Wakes the embedding worker after the transaction that queued {@code m} committed. */
  private Memory notifying(Memory m) {
    if ("pending".equals(m.embeddingState())) {
      queued.run();
    }
    return m;
  }

  public Memory update(String tenant, String actor, UUID id, Memory.Draft d) {
    if (d.fields().isEmpty()) {
      return get(tenant, id, false);
    }
    List<String> sets = new ArrayList<>();
    for (MemoryField f : d.fields()) {
      sets.add(switch (f) {
        case KIND -> "kind = :kind";
        case KEY -> "memory_key = :key";
        case CONTENT -> "content = :content, valid_from = " + MemoryHistoryStore.NEW_VERSION_FROM_PARAMETER;
        case EMBEDDING -> "embedding = CAST(:embedding AS vector), embedding_model = :embedding_model,"
            + " embedding_state = :embedding_state, embedding_attempts = 0,"
            + " embedding_queued_at = CASE WHEN :embedding_state = 'pending' THEN now() END,"
            + " embedding_due_at = CASE WHEN :embedding_state = 'pending' THEN now() END,"
            + " embedding_staged = NULL, embedding_staged_model = NULL";
        case IMPORTANCE -> "importance = :importance";
        case METADATA -> "metadata = coalesce(CAST(:metadata AS jsonb), '{}')";
        case SOURCE -> "source = coalesce(:source, '')";
        case EXPIRE_TIME -> "expires_at = CAST(:expires_at AS timestamptz)";
        case CONVERSATION_ID -> "conversation_id = :conversation";
      });
    }
    // New content without a new vector: the old vector stays (searchable) until the worker's
    // replaces it; without an embedder it stays as before (the caller's to send).
    boolean requeue = serverEmbeds && d.fields().contains(MemoryField.CONTENT) && !d.fields().contains(MemoryField.EMBEDDING);
    if (requeue) {
      // A staged vector of the old content goes too: the worker's replaces it.
      sets.add("embedding_state = 'pending', embedding_attempts = 0, embedding_queued_at = now(), embedding_due_at = now(),"
          + " embedding_staged = NULL, embedding_staged_model = NULL");
    }
    return notifying(write(h -> {
      UUID customerId = h.createQuery("SELECT m.customer_id FROM memories m WHERE m.tenant_id = :tenant AND m.id = :id AND "
              + LIVE + " FOR UPDATE")
          .bind("tenant", tenant).bind("id", id).mapTo(UUID.class).findOne()
          .orElseThrow(() -> new NotFoundException("memory", id.toString()));
      if (d.fields().contains(MemoryField.CONVERSATION_ID)) {
        requireConversation(h, tenant, customerId, d.conversationId());
      }
      if (d.fields().contains(MemoryField.KEY)) {
        dropExpiredKey(h, tenant, customerId, d.key());
      }
      return MemoryHistoryStore.tag(bindDraft(h.createQuery("UPDATE memories AS m SET " + String.join(", ", sets)
              + " FROM " + MemoryHistoryStore.TAG + " WHERE m.tenant_id = :tenant AND m.id = :id RETURNING " + RETURNING), d),
              actor, "update")
          .bind("tenant", tenant).bind("id", id)
          .map(MEMORY).one();
    }));
  }

  /** Deletes a memory for good; the audit row (by {@code actor}) is written by the same statement. */
  public void delete(String tenant, String actor, UUID id) {
    int n = write(h -> MemoryHistoryStore.tag(AuditLog.deleteAudited(h, tenant, actor, "memory.delete", "memory",
            "DELETE FROM memories m USING " + MemoryHistoryStore.TAG + " WHERE m.tenant_id = :tenant AND m.id = :id AND "
                + LIVE + " RETURNING m.id AS id"), actor, "delete")
        .bind("id", id).execute());
    if (n == 0) {
      throw new NotFoundException("memory", id.toString());
    }
  }

  /**
   * Deletes up to {@code batch} expired memories of every tenant in one short statement, and
   * returns how many. Only the {@link ExpirySweeper} calls it, under its {@link SweepLock}. SKIP
   * LOCKED: rows a request is updating right now are left for the next round instead of waited for.
   */
  public int sweepExpired(int batch) {
    return write(h -> h.createUpdate("""
            DELETE FROM memories WHERE ctid IN (
              SELECT ctid FROM memories WHERE expires_at <= now() ORDER BY expires_at LIMIT :batch FOR UPDATE SKIP LOCKED)""")
        .bind("batch", batch).execute());
  }

  // ---------------------------------------------------------------------------------------------
  // Reads

  public Memory get(String tenant, UUID id, boolean withEmbedding) {
    return read(h -> h.createQuery("SELECT " + COLUMNS + (withEmbedding ? ", m.embedding::text AS embedding" : "")
                + " FROM memories m WHERE m.tenant_id = :tenant AND m.id = :id AND " + LIVE)
            .bind("tenant", tenant).bind("id", id)
            .map(withEmbedding ? MEMORY_WITH_EMBEDDING : MEMORY).findOne())
        .orElseThrow(() -> new NotFoundException("memory", id.toString()));
  }

  /**
   * A customer's live memories (or, with {@code f.asOf()}, those valid then), newest first,
   * keyset-paged on (created_at, id).
   */
  public Memory.Page list(String tenant, UUID customerId, Memory.Filter f, Memory.Cursor after, int limit) {
    StringBuilder sql = new StringBuilder("SELECT " + COLUMNS + " FROM " + MemoryHistoryStore.source(f.asOf())
        + " WHERE m.tenant_id = :tenant AND m.customer_id = :customer AND " + MemoryHistoryStore.live(f.asOf()));
    filters(sql, f.kinds(), f.metadataJson());
    if (f.conversationId() != null) {
      sql.append(" AND m.conversation_id = :conversation");
    }
    if (f.key() != null) {
      sql.append(" AND m.memory_key = :key");
    }
    if (after != null) {
      sql.append(" AND (m.created_at, m.id) < (CAST(:after_time AS timestamptz), :after_id)");
    }
    sql.append(" ORDER BY m.created_at DESC, m.id DESC LIMIT ").append(limit + 1);
    List<Memory> rows = read(h -> {
      Query q = h.createQuery(sql.toString()).bind("tenant", tenant).bind("customer", customerId);
      bindFilters(q, f.kinds(), f.metadataJson());
      MemoryHistoryStore.bindAsOf(q, f.asOf());
      if (f.conversationId() != null) {
        q.bind("conversation", f.conversationId());
      }
      if (f.key() != null) {
        q.bind("key", f.key());
      }
      if (after != null) {
        q.bind("after_time", Rows.timestamptz(after.createdAt())).bind("after_id", after.id());
      }
      List<Memory> list = q.map(MEMORY).list();
      if (list.isEmpty() && after == null) {
        requireCustomer(h, tenant, customerId);
      }
      return list;
    });
    if (rows.size() <= limit) {
      return new Memory.Page(rows, null);
    }
    List<Memory> page = List.copyOf(rows.subList(0, limit));
    Memory last = page.get(limit - 1);
    return new Memory.Page(page, new Memory.Cursor(last.createdAt(), last.id()));
  }

  // ---------------------------------------------------------------------------------------------

  static void filters(StringBuilder where, List<String> kinds, String metadataJson) {
    where.append(kindsFilter(kinds));
    if (metadataJson != null) {
      where.append(" AND m.metadata @> CAST(:metadata_filter AS jsonb)");
    }
  }

  static String kindsFilter(List<String> kinds) {
    return kinds.isEmpty() ? "" : " AND m.kind = ANY(CAST(:kinds AS text[]))";
  }

  static void bindFilters(Query q, List<String> kinds, String metadataJson) {
    if (!kinds.isEmpty()) {
      q.bindArray("kinds", String.class, kinds);
    }
    if (metadataJson != null) {
      q.bind("metadata_filter", metadataJson);
    }
  }

  private <S extends SqlStatement<S>> S bindDraft(S q, Memory.Draft d) {
    // A client's vector is the active model's (MemoryRequests checked its model and length).
    String state = d.embedding() != null ? "ready" : serverEmbeds ? "pending" : "none";
    return q.bind("conversation", d.conversationId())
        .bind("embedding_model", d.embedding() == null ? null : model)
        .bind("embedding_state", state)
        .bind("kind", d.kind())
        .bind("key", d.key())
        .bind("content", d.content())
        .bind("metadata", d.metadataJson())
        .bind("embedding", Rows.vector(d.embedding()))
        .bind("importance", d.importance())
        .bind("source", d.source())
        .bind("expires_at", Rows.timestamptz(d.expiresAt()));
  }

  /** Expired means absent: an expired memory holding the key must not block the key. */
  private static void dropExpiredKey(Handle h, String tenant, UUID customerId, String key) {
    if (key != null) {
      h.createUpdate("DELETE FROM memories WHERE tenant_id = :tenant AND customer_id = :customer"
              + " AND memory_key = :key AND expires_at <= now()")
          .bind("tenant", tenant).bind("customer", customerId).bind("key", key).execute();
    }
  }

  /**
   * A memory's conversation must be a live conversation of the same customer: a missing or deleted
   * one is NOT_FOUND, another customer's is the caller's mistake (INVALID_ARGUMENT).
   */
  private static void requireConversation(Handle h, String tenant, UUID customerId, UUID conversationId) {
    if (conversationId == null) {
      return;
    }
    UUID owner = h.createQuery("SELECT customer_id FROM conversations WHERE tenant_id = :tenant AND id = :id"
            + " AND deleted_at IS NULL")
        .bind("tenant", tenant).bind("id", conversationId)
        .mapTo(UUID.class).findOne()
        .orElseThrow(() -> new NotFoundException("conversation", conversationId.toString()));
    if (!owner.equals(customerId)) {
      throw InvalidArgumentException.of("memory.conversation_id", "belongs to another customer");
    }
  }

  static void requireCustomer(Handle h, String tenant, UUID customerId) {
    boolean exists = h.createQuery("SELECT true FROM customers WHERE tenant_id = :tenant AND id = :id")
        .bind("tenant", tenant).bind("id", customerId).mapTo(Boolean.class).findOne().isPresent();
    if (!exists) {
      throw new NotFoundException("customer", customerId.toString());
    }
  }

  /** Runs an insert whose only foreign key a caller can break is the customer's. */
  private static <T> T foreignKeys(UUID customerId, java.util.function.Supplier<T> insert) {
    try {
      return insert.get();
    } catch (RuntimeException e) {
      for (Throwable t = e; t != null; t = t.getCause()) {
        if (t instanceof SQLException sql && FOREIGN_KEY_VIOLATION.equals(sql.getSQLState())) {
          throw new NotFoundException("customer", customerId.toString());
        }
      }
      throw e;
    }
  }
}

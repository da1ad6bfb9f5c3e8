package dev.contextmemory.server.store;

import dev.contextmemory.server.domain.Memory;
import dev.contextmemory.server.domain.MemoryChange;
import dev.contextmemory.server.domain.NotFoundException;
import java.sql.Array;
import java.time.Instant;
import java.util.Arrays;
import java.util.List;
import java.util.UUID;
import org.jdbi.v3.core.Handle;
import org.jdbi.v3.core.Jdbi;
import org.jdbi.v3.core.statement.Query;
import org.jdbi.v3.core.statement.SqlStatement;

/**
 * Memory history: what ListMemoryHistory reads and what as_of reads rewind to. The rows are written
 * by the V10 triggers, inside the statement that changes the memory; a statement tells them who and
 * why through {@link #TAG} in its own FROM list, so recording costs no round trip.
 */
public final class MemoryHistoryStore extends Store {
  /**
   * A one-row FROM item that sets the transaction-local settings the history triggers read:
   * {@code context_memory.actor} and {@code context_memory.change}. Volatile, so it is evaluated
   * however the plan is shaped, and before the statement's AFTER triggers run.
   */
  static final String TAG = "(SELECT set_config('context_memory.actor', :history_actor, true) AS history_actor,"
      + " set_config('context_memory.change', :history_change, true) AS history_change) AS history_tag";

  /** valid_from of an upserted row: a new version begins when the content changes. */
  static final String NEW_VERSION_FROM_EXCLUDED =
      "CASE WHEN m.content IS DISTINCT FROM EXCLUDED.content THEN now() ELSE m.valid_from END";
  /** valid_from of a row an UPDATE gives {@code :content}. */
  static final String NEW_VERSION_FROM_PARAMETER =
      "CASE WHEN m.content IS DISTINCT FROM :content THEN now() ELSE m.valid_from END";

  /**
   * The memories as they were at {@code :as_of}, with the columns of {@code memories} that reads
   * use: current rows whose content was already valid then and not yet expired, and the versions
   * that history says were valid then. A memory's versions have disjoint validity, so each memory
   * appears at most once. The reader's tenant and customer predicates are pushed into both arms.
   */
  static final String AS_OF_SOURCE = """
      (SELECT c.tenant_id, c.id, c.customer_id, c.conversation_id, c.kind, c.memory_key, c.content, c.content_tsv,
              c.metadata, c.embedding, c.importance, c.source, c.expires_at, c.confirm_count, c.last_confirmed_at,
              c.created_at, c.updated_at
         FROM memories c
        WHERE coalesce(c.valid_from, c.created_at) <= CAST(:as_of AS timestamptz)
          AND (c.expires_at IS NULL OR c.expires_at > CAST(:as_of AS timestamptz))
       UNION ALL
       SELECT v.tenant_id, v.memory_id, v.customer_id, v.conversation_id, v.kind, v.memory_key, v.content, v.content_tsv,
              v.metadata, v.embedding, v.importance, v.source, v.expires_at, v.confirm_count, v.last_confirmed_at,
              v.created_at, v.valid_from
         FROM memory_history v
        WHERE v.content IS NOT NULL AND v.valid_from <= CAST(:as_of AS timestamptz)
          AND v.valid_to > CAST(:as_of AS timestamptz)
          AND (v.expires_at IS NULL OR v.expires_at > CAST(:as_of AS timestamptz)))""";

  private static final String COLUMNS = "h.seq, h.memory_id, h.customer_id, h.change, h.changed_fields, h.actor,"
      + " h.changed_at, h.conversation_id, h.kind, h.memory_key, h.content, h.metadata::text AS metadata,"
      + " h.embedding IS NOT NULL AS has_embedding, h.importance, h.source, h.expires_at, h.confirm_count,"
      + " h.last_confirmed_at, h.created_at, h.valid_from, h.valid_to";

  public MemoryHistoryStore(Jdbi jdbi) {
    super(jdbi);
  }

  /** The rows a read ranges over, as {@code m}: the memories, or their versions valid at {@code asOf}. */
  static String source(Instant asOf) {
    return asOf == null ? "memories m" : AS_OF_SOURCE + " m";
  }

  /** The liveness predicate of {@link #source}'s rows (the as-of source applies its own). */
  static String live(Instant asOf) {
    return asOf == null ? MemoryStore.LIVE : "true";
  }

  static void bindAsOf(Query q, Instant asOf) {
    if (asOf != null) {
      q.bind("as_of", Rows.timestamptz(asOf));
    }
  }

  /** Binds what {@link #TAG} reads: who writes and why ("create", "upsert", "update", ...). */
  static <S extends SqlStatement<S>> S tag(S statement, String actor, String change) {
    return statement.bind("history_actor", actor).bind("history_change", change);
  }

  /**
   * One page of the changes to one memory ({@code memoryId}) or to all of one customer's memories,
   * oldest first, after {@code afterSeq}. NOT_FOUND when the first page is empty and names a memory
   * with no recorded change, or a customer that does not exist.
   */
  public MemoryChange.Page list(String tenant, UUID memoryId, UUID customerId, Long afterSeq, int limit) {
    String scope = memoryId != null ? "h.memory_id = :scope" : "h.customer_id = :scope";
    List<MemoryChange> rows = read(h -> {
      var q = h.createQuery("SELECT " + COLUMNS + " FROM memory_history h WHERE h.tenant_id = :tenant AND "
              + scope + (afterSeq == null ? "" : " AND h.seq > :after") + " ORDER BY h.seq LIMIT " + (limit + 1))
          .bind("tenant", tenant).bind("scope", memoryId != null ? memoryId : customerId);
      if (afterSeq != null) {
        q.bind("after", afterSeq);
      }
      List<MemoryChange> list = q.map((rs, ctx) -> {
            boolean versioned = rs.getString("content") != null;
            UUID id = rs.getObject("memory_id", UUID.class);
            UUID customer = rs.getObject("customer_id", UUID.class);
            Memory previous = !versioned ? null : new Memory(id, customer, rs.getObject("conversation_id", UUID.class),
                rs.getString("kind"), rs.getString("memory_key"), rs.getString("content"), rs.getString("metadata"),
                null, rs.getBoolean("has_embedding"), rs.getFloat("importance"), rs.getString("source"),
                Rows.instant(rs, "expires_at"), rs.getInt("confirm_count"), Rows.instant(rs, "last_confirmed_at"),
                Rows.instant(rs, "created_at"), Rows.instant(rs, "valid_from"));
            Array fields = rs.getArray("changed_fields");
            return new MemoryChange(rs.getLong("seq"), id, customer, rs.getString("change"),
                List.copyOf(Arrays.asList((String[]) fields.getArray())), rs.getString("actor"),
                Rows.instant(rs, "changed_at"), previous, versioned ? Rows.instant(rs, "valid_from") : null,
                versioned ? Rows.instant(rs, "valid_to") : null);
          })
          .list();
      if (list.isEmpty() && afterSeq == null) {
        if (memoryId != null) {
          throw new NotFoundException("memory", memoryId.toString());
        }
        MemoryStore.requireCustomer(h, tenant, customerId);
      }
      return list;
    });
    if (rows.size() <= limit) {
      return new MemoryChange.Page(rows, null);
    }
    List<MemoryChange> page = List.copyOf(rows.subList(0, limit));
    return new MemoryChange.Page(page, page.get(limit - 1).seq());
  }

  /** Deletes a customer's history inside the caller's transaction (a customer delete or erase). */
  static long deleteForCustomer(Handle h, String tenant, UUID customerId) {
    return h.createUpdate("DELETE FROM memory_history WHERE tenant_id = :tenant AND customer_id = :customer")
        .bind("tenant", tenant).bind("customer", customerId).execute();
  }
}

package dev.contextmemory.loadtest.scenarios;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.SQLException;
import java.sql.Types;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The SQL the server runs for the hot RPCs, character for character (copied from the server's
 * stores; ServerStatementsTest fails when a store's text changes and this copy does not), so the
 * same-statement floor times exactly the server's database work. Named parameters (":tenant") are
 * turned into JDBC's positional ones the way Jdbi does, and bound by name.
 */
final class ServerStatements {
  private ServerStatements() {}

  /** MessageStore.COLUMNS. */
  static final String MESSAGE_COLUMNS = "id, conversation_id, sequence, role, content, tool_calls::text AS tool_calls,"
      + " tool_call_id, attachments::text AS attachments, metadata::text AS metadata, idempotency_key, created_at";

  /** MessageStore.APPEND_ONE: AppendMessage's one statement. */
  static final String APPEND_ONE = """
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
      SELECT existing.*, true AS replayed FROM existing""".formatted(MESSAGE_COLUMNS);

  /** MessageStore.list, newest first, no cursor, no filter, page 20 (LIMIT page + 1 written in). */
  static final String LIST_MESSAGES_20 = """
      SELECT c.id AS found, m.* FROM conversations c
      LEFT JOIN LATERAL (
        SELECT %s FROM messages m
         WHERE m.tenant_id = :tenant AND m.conversation_id = :conversation%s
         ORDER BY m.sequence %s
         LIMIT %d
      ) m ON true
      WHERE c.tenant_id = :tenant AND c.id = :conversation AND c.deleted_at IS NULL
      ORDER BY m.sequence %s""".formatted(MESSAGE_COLUMNS, "", "DESC", 21, "DESC");

  /** MemoryStore.COLUMNS. */
  static final String MEMORY_COLUMNS = "m.id, m.customer_id, m.conversation_id, m.kind, m.memory_key, m.content,"
      + " m.metadata::text AS metadata, m.embedding IS NOT NULL AS has_embedding, m.importance, m.source,"
      + " m.expires_at, m.confirm_count, m.last_confirmed_at, m.created_at, m.updated_at, m.embedding_state,"
      + " m.embedding_model";

  /** VectorScope.EXACT_SCAN_MIN_ROWS / EXACT_SCAN_MAX_ROWS. */
  static final int EXACT_SCAN_MIN_ROWS = 1000;
  static final int EXACT_SCAN_MAX_ROWS = 5000;

  /** VectorScope.indexCandidates. */
  static int indexCandidates(int k) {
    return Math.min(1000, Math.max(400, 40 * k));
  }

  /** MemorySearchStore.SETTINGS: what an index search sets for its round trip. */
  static final String SEARCH_SETTINGS = "set_config('hnsw.ef_search', :ef, true)"
      + " || set_config('hnsw.iterative_scan', 'relaxed_order', true) || set_config('enable_seqscan', 'off', true)"
      + " || set_config('enable_sort', 'off', true) || set_config('jit', 'off', true)"
      + " || set_config('plan_cache_mode', 'force_generic_plan', true)";

  /** MemorySearchStore.head for a per-customer search now (settings and the customer's existence). */
  static final String SEARCH_HEAD = "SELECT " + SEARCH_SETTINGS + " AS settings, "
      + "EXISTS (SELECT 1 FROM customers WHERE tenant_id = :tenant AND id = :customer) AS customer_found";

  /** MemorySearchStore.head for a tenant-wide search (settings; no customer to look for). */
  static final String SEARCH_HEAD_TENANT = "SELECT " + SEARCH_SETTINGS + " AS settings, true AS customer_found";

  /** MemorySearchStore.candidates for a tenant-wide k-NN: 4 x k, at least 40, at most 1,000. */
  static int tenantCandidates(int k) {
    return Math.min(1000, Math.max(40, 4 * k));
  }

  /** MemorySearchStore.efSearch: the ef_search set for that many candidates. */
  static String efSearch(int candidates) {
    return Integer.toString(Math.min(1000, Math.max(100, 2 * candidates)));
  }

  /** VectorScope.exactScanRows for one customer's memories. */
  static String exactScanRowsForCustomer(int candidates) {
    return "greatest(%d, least(%d, sqrt(%d * greatest((SELECT reltuples FROM pg_class WHERE oid = '%s'::regclass), 0))))::int"
        .formatted(EXACT_SCAN_MIN_ROWS, EXACT_SCAN_MAX_ROWS, candidates, "memories");
  }

  /**
   * The load test's server runs without an embedder (model 'client') on 768-dimensional vectors,
   * except for the text-search scenarios (the local model, 384): VectorSpace's predicate and
   * indexed distance for a model.
   */
  static String modelRows(String model) {
    return "m.embedding_model = '" + model + "'";
  }

  static String distance(int dimension) {
    return "(m.embedding::vector(%1$d)) <=> CAST(:q AS vector(%1$d))".formatted(dimension);
  }

  /** MemorySearchStore.vectorStatement for one customer, no kinds, no metadata filter, now, model 'client' (768). */
  static String vectorSearchForCustomer(int limit) {
    return vectorSearchForCustomer(limit, "client", 768);
  }

  /** MemorySearchStore.vectorStatement for one customer, no kinds, no metadata filter, now (not as of). */
  static String vectorSearchForCustomer(int limit, String model, int dimension) {
    return vectorSearch(true, limit, model, dimension);
  }

  /** MemorySearchStore.vectorStatement tenant-wide, no kinds, no metadata filter, now, model 'client' (768). */
  static String vectorSearchForTenant(int limit) {
    return vectorSearch(false, limit, "client", 768);
  }

  private static String vectorSearch(boolean customer, int limit, String model, int dimension) {
    String where = " m.tenant_id = :tenant AND " + modelRows(model) + " AND (m.expires_at IS NULL OR m.expires_at > now())"
        + (customer ? " AND m.customer_id = :customer" : "");
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
        .formatted(MEMORY_COLUMNS, where, customer ? indexCandidates(limit) : tenantCandidates(limit), limit,
            distance(dimension), customer ? exactScanRowsForCustomer(indexCandidates(limit)) : EXACT_SCAN_MIN_ROWS,
            customer ? "x.tenant_id = :tenant AND x.customer_id = :customer" : "x.tenant_id = :tenant");
  }

  /** MemorySearchStore.search's list length in HYBRID mode for top k: each list is cut at max(4k, 40). */
  static int hybridCut(int k) {
    return Math.max(4 * k, 40);
  }

  /** MemorySearchStore.textStatement for one customer, no kinds, no metadata filter, now (not as of). */
  static String textSearchForCustomer(int limit) {
    String where = " m.tenant_id = :tenant AND m.content_tsv @@ q.query AND (m.expires_at IS NULL OR m.expires_at > now())"
        + " AND m.customer_id = :customer";
    return """
        SELECT * FROM (
          SELECT %s, CAST(ts_rank_cd(m.content_tsv, q.query, 32) AS float8) AS score
            FROM websearch_to_tsquery('english', :text) AS q(query), %s WHERE%s
        ) r WHERE r.score >= :min_score
        ORDER BY r.score DESC, r.created_at DESC, r.id DESC LIMIT %d"""
        .formatted(MEMORY_COLUMNS, "memories m", where, limit);
  }

  private static final Pattern NAMED = Pattern.compile("(?<!:):([A-Za-z_][A-Za-z0-9_]*)");

  /** A statement with named parameters, prepared once on a connection; bound by name. */
  static final class Named {
    private final String sql;
    private final List<String> names = new ArrayList<>();

    Named(String namedSql) {
      Matcher m = NAMED.matcher(namedSql);
      StringBuilder sb = new StringBuilder();
      while (m.find()) {
        names.add(m.group(1));
        m.appendReplacement(sb, "?");
      }
      m.appendTail(sb);
      this.sql = sb.toString();
    }

    String sql() {
      return sql;
    }

    /** The parameter names in positional order (a name used twice appears twice). */
    List<String> names() {
      return List.copyOf(names);
    }

    /**
     * Prepares (pgjdbc's per-connection statement cache makes this a cache hit after the first
     * time, as with the server's Jdbi) and binds every occurrence of each name; a null value is
     * bound as a NULL varchar, as Jdbi binds a null String.
     */
    PreparedStatement bind(Connection c, Map<String, Object> values) throws SQLException {
      PreparedStatement ps = c.prepareStatement(sql);
      for (int i = 0; i < names.size(); i++) {
        if (!values.containsKey(names.get(i))) {
          throw new IllegalArgumentException("no value for :" + names.get(i));
        }
        Object v = values.get(names.get(i));
        if (v == null) {
          ps.setNull(i + 1, Types.VARCHAR);
        } else if (v instanceof String s) {
          ps.setString(i + 1, s);
        } else if (v instanceof com.pgvector.PGvector) {
          Baselines.binaryVectors(c);
          ps.setObject(i + 1, v);
        } else {
          ps.setObject(i + 1, v);
        }
      }
      return ps;
    }
  }
}

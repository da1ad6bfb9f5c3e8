package dev.contextmemory.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.contextmemory.server.auth.Scope;
import dev.contextmemory.server.testing.EveryRpc;
import dev.contextmemory.server.testing.OtlpReceiver;
import dev.contextmemory.server.testing.TestKeys;
import dev.contextmemory.server.testing.TestServer;
import io.opentelemetry.proto.common.v1.KeyValue;
import io.opentelemetry.proto.trace.v1.Span;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * The schema and the request path stay ready to be distributed by tenant (Citus, docs/scaling.md
 * "Distributed PostgreSQL"): every primary key, unique index and foreign key of a distributed table
 * contains {@code tenant_id} (so each is enforced inside one shard), no sequence hands out values
 * across tenants, and every statement an RPC runs on a distributed table binds the caller's tenant
 * (so it is routed to one shard). A later migration or store that breaks a rule fails here; each
 * rule also proves it can fail, on a schema of deliberately wrong tables.
 */
class DistributionReadinessTest {
  /** Distributed by tenant_id and co-located: every table that holds a tenant's data. */
  static final Set<String> DISTRIBUTED = Set.of("customers", "customer_addresses", "conversations", "messages",
      "memories", "audit_events", "handoffs", "memory_history", "conversation_events");
  /**
   * Reference tables (a copy on every node): api_keys is read by its globally unique public prefix
   * before the tenant is known, so its prefix index cannot contain tenant_id.
   */
  static final Set<String> REFERENCE = Set.of("api_keys");
  /**
   * Sequences allowed on a distributed table. memory_history.seq (an identity column) only orders
   * one memory's or one customer's changes for paging and is never an id another table points
   * at; Citus (11+) gives each node its own range of a distributed table's sequence, so values stay
   * unique and increase per node (docs/scaling.md).
   */
  static final Set<String> ALLOWED_SEQUENCES = Set.of("memory_history_seq_seq",
      // WatchConversations' outbox (V8). conversation_events.id (identity, CACHE 1) orders one
      // conversation's events, which live on one shard, so a per-node range keeps that order;
      // nothing references it. conversation_event_positions is the global position the
      // background sequencer (one pass at a time across every tenant, under an advisory lock)
      // draws after commit: not on the request path (no RPC draws it), but it is one order across
      // tenants, which a distributed deployment cannot keep as is: the sequencer would run per
      // shard (cursors then carry a position per shard) or positions would become per tenant
      // (docs/scaling.md "Distributed PostgreSQL").
      "conversation_events_id_seq", "conversation_event_positions");
  /**
   * Unique indexes on a distributed table allowed to lack tenant_id, each a known gap that
   * docs/scaling.md names. conversation_events_position_key is the background sequencer's global
   * position (see ALLOWED_SEQUENCES): Citus could not create it; with positions per shard or per
   * tenant it becomes (tenant_id, position) or goes, and the poller reads per shard.
   */
  static final Set<String> ALLOWED_GLOBAL_UNIQUE = Set.of("conversation_events_position_key");
  /**
   * Stays on the coordinator: Flyway's own table, the usage rollup's one-row refresh state (the
   * usage views are refreshed from every tenant's rows in the background, off the request path, so
   * on Citus they are coordinator-local materialized views; docs/scaling.md), and
   * conversation_event_retention, the watch retention purge's one-row high-water mark (written by
   * the background purge, read by WatchConversations to refuse an expired cursor).
   */
  static final Set<String> LOCAL = Set.of("flyway_schema_history", "usage_rollup_state",
      "conversation_event_retention");

  /**
   * The one exception to "every request statement binds the tenant": WatchConversations without a
   * cursor starts "from now", so its subscribe first runs a sequencer pass (numbers every
   * committed pending event, all tenants', under the sequencer's advisory lock) and reads the
   * global head position, on the calling thread. These statements (span names below, only in a
   * WatchConversations trace, only on conversation_events) are the background sequencer's, shared
   * across tenants by the global position; on Citus they go with it (per-shard sequencer or
   * per-tenant positions, docs/scaling.md "Distributed PostgreSQL"). Any other unbound statement
   * still fails the test.
   */
  static final Set<String> WATCH_SUBSCRIBE_SPANS = Set.of("ConversationEvents.sequence", "ConversationEvents.head");
  private static final String WATCH_RPC = "contextmemory.v1.ConversationService/WatchConversations";

  private static final Pattern DISTRIBUTED_TABLE = Pattern.compile(
      "\\b(" + String.join("|", DISTRIBUTED) + ")\\b", Pattern.CASE_INSENSITIVE);

  @Test
  void theMigratedSchemaFollowsTheRules() throws Exception {
    try (Connection c = DriverManager.getConnection(TestServer.shared().dbUrl())) {
      Set<String> tables = tables(c, "public");
      Set<String> classified = new TreeSet<>(DISTRIBUTED);
      classified.addAll(REFERENCE);
      classified.addAll(LOCAL);
      assertEquals(classified, tables, "every table is classified as distributed, reference or local"
          + " (a new table: add it here and to docs/scaling.md's create_distributed_table calls)");
      assertEquals(List.of(), violations(c, "public", DISTRIBUTED, REFERENCE));
    }
  }

  @Test
  void aTableThatBreaksARuleIsReported() throws Exception {
    try (Connection c = DriverManager.getConnection(TestServer.shared().dbUrl()); Statement st = c.createStatement()) {
      st.execute("DROP SCHEMA IF EXISTS readiness_probe CASCADE; CREATE SCHEMA readiness_probe");
      st.execute("""
          CREATE TABLE readiness_probe.parents (tenant_id text NOT NULL, id uuid NOT NULL, PRIMARY KEY (tenant_id, id));
          CREATE TABLE readiness_probe.keyless (id bigserial PRIMARY KEY, tenant_id text NOT NULL, email text);
          CREATE UNIQUE INDEX keyless_email ON readiness_probe.keyless (email) WHERE email IS NOT NULL;
          CREATE TABLE readiness_probe.children (tenant_id text NOT NULL, id uuid NOT NULL, parent_id bigint,
            PRIMARY KEY (tenant_id, id));
          ALTER TABLE readiness_probe.children ADD CONSTRAINT parent_by_id_only FOREIGN KEY (parent_id)
            REFERENCES readiness_probe.keyless (id);
          CREATE TABLE readiness_probe.ref (id uuid PRIMARY KEY, tenant_id text NOT NULL, parent_id uuid);
          ALTER TABLE readiness_probe.ref ADD CONSTRAINT ref_to_distributed FOREIGN KEY (tenant_id, parent_id)
            REFERENCES readiness_probe.parents (tenant_id, id);""");
      try {
        List<String> found = violations(c, "readiness_probe", Set.of("parents", "keyless", "children"), Set.of("ref"));
        String all = String.join("\n", found);
        assertTrue(all.contains("keyless: primary key keyless_pkey lacks tenant_id"), all);
        assertTrue(all.contains("keyless: unique index keyless_email lacks tenant_id"), all);
        assertTrue(all.contains("children: foreign key parent_by_id_only does not pair tenant_id"), all);
        assertTrue(all.contains("sequence keyless_id_seq"), all);
        assertTrue(all.contains("ref: a reference table must not reference distributed parents"), all);
        assertEquals(5, found.size(), all);
      } finally {
        st.execute("DROP SCHEMA readiness_probe CASCADE");
      }
    }
  }

  /**
   * Every statement that the RPCs run on a distributed table binds {@code :tenant}, the caller's
   * tenant from {@code Tenants.current()}: one statement per span of the SQL tracing, over a
   * workload of every RPC. (The sweeper's cross-tenant batches are not on the request path.)
   */
  @Test
  void everyRequestStatementOnADistributedTableBindsTheTenant() throws Exception {
    try (OtlpReceiver receiver = new OtlpReceiver();
        TestServer server = TestServer.start(Map.of("AUTH", "api-key", "OTEL_EXPORTER_OTLP_ENDPOINT",
            receiver.endpoint(), "OTEL_BSP_SCHEDULE_DELAY", "50", "MEMORY_SWEEP_INTERVAL_MS", "3600000"))) {
      String key = TestKeys.create(server, "tenant-d", Scope.values());
      assertEquals(EveryRpc.allMethods(), new EveryRpc(server.channel(), key, 768).run());
      // The workload's last call; its SQL spans end before its server span does.
      receiver.await(s -> s.getName().equals("contextmemory.v1.AdminService/RevokeApiKey"), Duration.ofSeconds(30));
      Map<com.google.protobuf.ByteString, String> rpcOfTrace = new java.util.HashMap<>();
      for (Span s : receiver.spans()) {
        if (s.getKind() == Span.SpanKind.SPAN_KIND_SERVER) {
          rpcOfTrace.put(s.getTraceId(), s.getName());
        }
      }
      Set<String> statements = new TreeSet<>();
      Set<String> watchSubscribe = new TreeSet<>();
      for (Span s : receiver.spans()) {
        for (KeyValue kv : s.getAttributesList()) {
          if (kv.getKey().equals("db.query.text")) {
            String sql = kv.getValue().getStringValue();
            if (WATCH_SUBSCRIBE_SPANS.contains(s.getName())
                && WATCH_RPC.equals(rpcOfTrace.get(s.getTraceId())) && !bindsTenant(sql)) {
              watchSubscribe.add(sql);
            } else {
              statements.add(sql);
            }
          }
        }
      }
      List<String> onDistributed = statements.stream().filter(sql -> DISTRIBUTED_TABLE.matcher(sql).find()).toList();
      assertTrue(onDistributed.size() >= 30, "the workload's statements were traced: " + onDistributed.size());
      List<String> crossTenant = onDistributed.stream().filter(sql -> !bindsTenant(sql)).toList();
      assertEquals(List.of(), crossTenant, "statements on distributed tables that do not bind the tenant");
      // The one documented exception touches the watch outbox and nothing else.
      for (String sql : watchSubscribe) {
        java.util.regex.Matcher m = DISTRIBUTED_TABLE.matcher(sql);
        while (m.find()) {
          assertEquals("conversation_events", m.group(1).toLowerCase(java.util.Locale.ROOT), sql);
        }
      }
    }
  }

  @Test
  void aStatementWithoutTheTenantIsCaught() {
    assertTrue(!bindsTenant("DELETE FROM memories WHERE expires_at <= now()"));
    assertTrue(!bindsTenant("SELECT * FROM messages m JOIN conversations c ON c.tenant_id = m.tenant_id WHERE c.id = :id"));
    assertTrue(bindsTenant("SELECT * FROM messages WHERE tenant_id = :tenant AND id = :id"));
  }

  /** The statement binds the caller's tenant (named parameter {@code :tenant}, the stores' one name for it). */
  static boolean bindsTenant(String sql) {
    return Pattern.compile(":tenant\\b").matcher(sql).find();
  }

  static Set<String> tables(Connection c, String schema) throws Exception {
    Set<String> out = new TreeSet<>();
    try (var ps = c.prepareStatement("SELECT relname FROM pg_class WHERE relnamespace = ?::regnamespace"
        + " AND relkind IN ('r', 'p')")) {
      ps.setString(1, schema);
      try (ResultSet rs = ps.executeQuery()) {
        while (rs.next()) {
          out.add(rs.getString(1));
        }
      }
    }
    return out;
  }

  /** What keeps {@code schema} from being distributed by tenant_id, one line per broken rule. */
  static List<String> violations(Connection c, String schema, Set<String> distributed, Set<String> reference)
      throws Exception {
    List<String> out = new ArrayList<>();
    try (var ps = c.prepareStatement("""
        SELECT t.relname, i.relname, x.indisprimary,
               EXISTS (SELECT 1 FROM unnest(x.indkey) k JOIN pg_attribute a
                         ON a.attrelid = t.oid AND a.attnum = k AND a.attname = 'tenant_id') AS has_tenant
          FROM pg_index x JOIN pg_class t ON t.oid = x.indrelid JOIN pg_class i ON i.oid = x.indexrelid
         WHERE t.relnamespace = ?::regnamespace AND x.indisunique ORDER BY 1, 2""")) {
      ps.setString(1, schema);
      try (ResultSet rs = ps.executeQuery()) {
        while (rs.next()) {
          if (distributed.contains(rs.getString(1)) && !rs.getBoolean(4)
              && !ALLOWED_GLOBAL_UNIQUE.contains(rs.getString(2))) {
            out.add(rs.getString(1) + ": " + (rs.getBoolean(3) ? "primary key " : "unique index ") + rs.getString(2)
                + " lacks tenant_id");
          }
        }
      }
    }
    try (var ps = c.prepareStatement("""
        SELECT t.relname, f.conname, p.relname AS parent,
               EXISTS (SELECT 1 FROM generate_subscripts(f.conkey, 1) s
                         JOIN pg_attribute ca ON ca.attrelid = f.conrelid AND ca.attnum = f.conkey[s]
                         JOIN pg_attribute pa ON pa.attrelid = f.confrelid AND pa.attnum = f.confkey[s]
                        WHERE ca.attname = 'tenant_id' AND pa.attname = 'tenant_id') AS pairs_tenant
          FROM pg_constraint f JOIN pg_class t ON t.oid = f.conrelid JOIN pg_class p ON p.oid = f.confrelid
         WHERE f.contype = 'f' AND t.relnamespace = ?::regnamespace ORDER BY 1, 2""")) {
      ps.setString(1, schema);
      try (ResultSet rs = ps.executeQuery()) {
        while (rs.next()) {
          String table = rs.getString(1);
          if (reference.contains(table) && distributed.contains(rs.getString(3))) {
            out.add(table + ": a reference table must not reference distributed parents (" + rs.getString(2) + ")");
          } else if (distributed.contains(table) && !rs.getBoolean(4)) {
            out.add(table + ": foreign key " + rs.getString(2) + " does not pair tenant_id with the parent's tenant_id");
          }
        }
      }
    }
    try (var ps = c.prepareStatement("SELECT relname FROM pg_class WHERE relnamespace = ?::regnamespace AND relkind = 'S'"
        + " ORDER BY 1")) {
      ps.setString(1, schema);
      try (ResultSet rs = ps.executeQuery()) {
        while (rs.next()) {
          if (ALLOWED_SEQUENCES.contains(rs.getString(1))) {
            continue;
          }
          out.add("sequence " + rs.getString(1) + ": its values are shared across tenants and shards (ids are UUIDv7)");
        }
      }
    }
    return out;
  }
}

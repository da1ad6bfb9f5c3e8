package dev.contextmemory.loadtest.scenarios;

import com.pgvector.PGvector;
import dev.contextmemory.loadtest.data.DataSet;
import dev.contextmemory.loadtest.data.Setup;
import dev.contextmemory.loadtest.data.Texts;
import dev.contextmemory.loadtest.data.Uuid7;
import java.io.PrintStream;
import java.sql.Array;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.SplittableRandom;
import java.util.UUID;
import org.HdrHistogram.Histogram;
import org.postgresql.core.BaseConnection;
import org.postgresql.util.PGobject;

/**
 * The database's own floor, timed over JDBC on the same database in the same run: the bare SQL of
 * each write and search, one statement at a time on one connection (server-side prepared, as the
 * server's pool does), with no gRPC, validation, mapping or pooling around it. The report divides
 * the server's latency by these to show what the server adds.
 *
 * <ul>
 *   <li>append_message: a one-row INSERT into messages (autocommit);
 *   <li>append_messages_100: a 100-row INSERT ... SELECT FROM unnest(arrays) (autocommit), and
 *       interleaved with it the same rows into an unindexed copy of the table ({@link #bareTable()});
 *   <li>list_messages_20: the last 20 rows of a conversation by the sequence index;
 *   <li>search_messages: ts_rank_cd over a customer's matching messages, top 20;
 *   <li>list_conversations_*: the statements the server's ConversationStore.list builds for the
 *       scenario's requests (see {@link #listConversations});
 *   <li>search_memories_customer / _tenant: the pgvector k-NN query, k = 10, cosine distance, with
 *       the settings a filtered HNSW search needs (see {@link #vectorSearchSettings}).
 * </ul>
 *
 * Inserts go to a conversation of their own (made by the set-up through the API), numbered after
 * its highest sequence; the conversation's counters are brought up to date afterwards, so the
 * database stays as the server would have left it.
 */
public final class Baselines {
  /** One floor: what was timed and its p50/p99 in milliseconds. */
  public record Baseline(String sql, long iterations, double p50Ms, double p99Ms, Double recallAt10) {
    public Baseline(String sql, long iterations, double p50Ms, double p99Ms) {
      this(sql, iterations, p50Ms, p99Ms, null);
    }

    /** The same floor with the recall@10 of its answers (the k-NN floors). */
    public Baseline withRecall(Double recall) {
      return new Baseline(sql, iterations, p50Ms, p99Ms, recall);
    }
  }

  /** The k-NN floors' answers, by scenario, scored once the harness has its copy of the memories. */
  private final Map<String, RecallSampler> knnAnswers = new LinkedHashMap<>();

  private static final int WARM_UP = 50;
  private static final long MAX_NANOS = 3_000_000_000L;

  private final String jdbcUrl;
  private final String tenant;
  private final DataSet data;
  private final Setup.Result setup;
  private final int iterations;
  private final PrintStream log;
  private final SplittableRandom random;
  private final Map<String, Baseline> bareTable = new LinkedHashMap<>();

  public Baselines(String jdbcUrl, String tenant, DataSet data, Setup.Result setup, int iterations, PrintStream log) {
    this.jdbcUrl = jdbcUrl;
    this.tenant = tenant;
    this.data = data;
    this.setup = setup;
    this.iterations = iterations;
    this.log = log;
    this.random = new SplittableRandom(data.seed() ^ 0xBA5E1L);
  }

  /**
   * The bare-table floors {@link #run} timed, by scenario (append_messages_100 only): the same rows
   * into a copy of the table without its indexes, foreign key and tsvector.
   */
  public Map<String, Baseline> bareTable() {
    return Map.copyOf(bareTable);
  }

  /** Runs every baseline whose data exists; keyed by the scenario it is the floor of. */
  public Map<String, Baseline> run() throws SQLException {
    Map<String, Baseline> out = new LinkedHashMap<>();
    Properties props = new Properties();
    props.setProperty("prepareThreshold", "1");
    props.setProperty("ApplicationName", "context-memory-loadtest");
    try (Connection c = DriverManager.getConnection(jdbcUrl, props)) {
      c.setAutoCommit(true);
      if (setup.hasConversations()) {
        put(out, "append_message", insertOne(c));
        put(out, "append_messages_100", insertHundred(c));
        bareTable.forEach((scenario, b) -> log.printf(Locale.ROOT,
            "baseline: %-25s p50 %8.3f ms  p99 %8.3f ms  (%d runs: %s)%n", scenario + " bare", b.p50Ms(), b.p99Ms(),
            b.iterations(), b.sql()));
        fixCounters(c);
        put(out, "list_messages_20", listLast20(c));
        put(out, "search_messages", searchMessages(c));
        put(out, "list_conversations_customer", listConversations(c, Lookup.CUSTOMER));
        put(out, "list_conversations_open", listConversations(c, Lookup.OPEN));
        put(out, "list_conversations_metadata", listConversations(c, Lookup.METADATA));
        Baseline usage = usageRollup(c);
        if (usage != null) {
          put(out, "usage_metrics", usage);
        }
      }
      if (setup.hasMemories()) {
        vectorSearchSettings(c);
        put(out, "search_memories_customer", knn(c, true));
        // Tenant-wide, the planner prices a seq scan with a top-N sort of every vector below the
        // index (it did so on the ci data: 100 ms, not an HNSW floor at all), so the bare query is
        // held to the index as the server's is.
        try (Statement s = c.createStatement()) {
          s.execute("SET enable_seqscan = off; SET enable_sort = off; SET jit = off");
        }
        put(out, "search_memories_tenant", knn(c, false));
      }
    }
    return out;
  }

  private void put(Map<String, Baseline> out, String scenario, Baseline b) {
    out.put(scenario, b);
    log.printf(Locale.ROOT, "baseline: %-25s p50 %8.3f ms  p99 %8.3f ms  (%d runs: %s)%n", scenario, b.p50Ms(),
        b.p99Ms(), b.iterations(), b.sql());
  }

  /** A statement under test: prepares its parameters (untimed), then executes (timed). */
  private interface Timed {
    void prepare(int i) throws SQLException;

    void execute() throws SQLException;
  }

  /** Warm-up (at most {@link #WARM_UP} runs or 1 s), then the measured runs (at most 3 s). */
  private Baseline time(String sql, Timed t) throws SQLException {
    Histogram h = new Histogram(3);
    long warmEnd = System.nanoTime() + MAX_NANOS / 3;
    for (int i = 0; i < WARM_UP && System.nanoTime() < warmEnd; i++) {
      t.prepare(i);
      t.execute();
    }
    long deadline = System.nanoTime() + MAX_NANOS;
    int done = 0;
    for (int i = 0; i < iterations && System.nanoTime() < deadline; i++) {
      t.prepare(WARM_UP + i);
      long t0 = System.nanoTime();
      t.execute();
      h.recordValue(Math.max(1, (System.nanoTime() - t0) / 1000));
      done++;
    }
    return new Baseline(sql, done, h.getValueAtPercentile(50) / 1000.0, h.getValueAtPercentile(99) / 1000.0);
  }

  /**
   * {@link #time} for two statements run alternately (a, b, a, b, ...), each into its own
   * histogram, so both see the same moments of a shared machine; the SQL text is left empty.
   */
  private Baseline[] timeInterleaved(Timed a, Timed b) throws SQLException {
    Timed[] pair = {a, b};
    Histogram[] h = {new Histogram(3), new Histogram(3)};
    long warmEnd = System.nanoTime() + MAX_NANOS / 3;
    for (int i = 0; i < WARM_UP && System.nanoTime() < warmEnd; i++) {
      for (Timed t : pair) {
        t.prepare(i);
        t.execute();
      }
    }
    long deadline = System.nanoTime() + 2 * MAX_NANOS;
    int done = 0;
    for (int i = 0; i < iterations && System.nanoTime() < deadline; i++) {
      for (int k = 0; k < 2; k++) {
        pair[k].prepare(WARM_UP + i);
        long t0 = System.nanoTime();
        pair[k].execute();
        h[k].recordValue(Math.max(1, (System.nanoTime() - t0) / 1000));
      }
      done++;
    }
    Baseline[] out = new Baseline[2];
    for (int k = 0; k < 2; k++) {
      out[k] = new Baseline("", done, h[k].getValueAtPercentile(50) / 1000.0, h[k].getValueAtPercentile(99) / 1000.0);
    }
    return out;
  }

  private long nextSequence(Connection c) throws SQLException {
    try (PreparedStatement ps = c.prepareStatement(
        "SELECT coalesce(max(sequence), 0) FROM messages WHERE tenant_id = ? AND conversation_id = ?")) {
      ps.setString(1, tenant);
      ps.setObject(2, UUID.fromString(setup.baselineConversationId()));
      try (ResultSet rs = ps.executeQuery()) {
        rs.next();
        return rs.getLong(1) + 1;
      }
    }
  }

  private Baseline insertOne(Connection c) throws SQLException {
    String sql = "INSERT INTO messages (tenant_id, id, conversation_id, sequence, role, content, idempotency_key)"
        + " VALUES (?, ?, ?, ?, 'user', ?, ?)";
    UUID conversation = UUID.fromString(setup.baselineConversationId());
    long[] seq = {nextSequence(c)};
    try (PreparedStatement ps = c.prepareStatement(sql)) {
      return time("one-row INSERT INTO messages", new Timed() {
        @Override
        public void prepare(int i) throws SQLException {
          ps.setString(1, tenant);
          ps.setObject(2, Uuid7.next());
          ps.setObject(3, conversation);
          ps.setLong(4, seq[0]++);
          ps.setString(5, Texts.sentence(random.nextLong()));
          ps.setString(6, UUID.randomUUID().toString()); // fresh per run: a rerun on a kept database must not collide
        }

        @Override
        public void execute() throws SQLException {
          ps.executeUpdate();
        }
      });
    }
  }

  /** The unindexed copy of messages the bare-table floor writes to (dropped after the run). */
  static final String BARE_TABLE = "loadtest_bare_messages";

  /**
   * The 100-row insert into messages and, interleaved with it run by run, the same kind of rows
   * into {@link #BARE_TABLE}: messages' columns and NOT NULLs, but no index, no foreign key, no
   * CHECK and a plain (never computed) tsvector column. The second is the "plain INSERT of the
   * same rows" issue 13 compares AppendMessages(100) to; interleaving keeps a busy machine's
   * noise out of the ratio. Fills {@link #bareTable()}.
   */
  private Baseline insertHundred(Connection c) throws SQLException {
    String sql = "100-row INSERT INTO messages ... SELECT FROM unnest(arrays)";
    try (Statement st = c.createStatement()) {
      st.execute("DROP TABLE IF EXISTS " + BARE_TABLE);
      st.execute("CREATE TABLE " + BARE_TABLE + " (LIKE messages INCLUDING DEFAULTS)");
    } catch (SQLException e) {
      // A --target database whose user may not create tables: the physical floor alone, as before.
      log.println("baseline: no bare-table floor (" + e.getMessage() + ")");
      try (PreparedStatement real = c.prepareStatement(hundredSql("messages"))) {
        return time(sql, hundredRows(c, real, nextSequence(c)));
      }
    }
    try (PreparedStatement real = c.prepareStatement(hundredSql("messages"));
        PreparedStatement bare = c.prepareStatement(hundredSql(BARE_TABLE))) {
      Timed realRuns = hundredRows(c, real, nextSequence(c));
      Timed bareRuns = hundredRows(c, bare, 1);
      Baseline[] both = timeInterleaved(realRuns, bareRuns);
      bareTable.put("append_messages_100", new Baseline("the same 100-row INSERT into an unindexed copy of messages"
          + " (no index, FK, CHECK or tsvector), interleaved with the physical floor", both[1].iterations(),
          both[1].p50Ms(), both[1].p99Ms()));
      return new Baseline(sql, both[0].iterations(), both[0].p50Ms(), both[0].p99Ms());
    } finally {
      try (Statement st = c.createStatement()) {
        st.execute("DROP TABLE IF EXISTS " + BARE_TABLE);
      }
    }
  }

  private static String hundredSql(String table) {
    return "INSERT INTO " + table + " (tenant_id, id, conversation_id, sequence, role, content, idempotency_key)"
        + " SELECT ?, u.id, ?, u.sequence, u.role, u.content, u.key"
        + " FROM unnest(CAST(? AS uuid[]), CAST(? AS bigint[]), CAST(? AS text[]), CAST(? AS text[]),"
        + " CAST(? AS text[])) AS u(id, sequence, role, content, key)";
  }

  /** 100 fresh rows of the baseline conversation per run, numbered from {@code firstSequence}. */
  private Timed hundredRows(Connection c, PreparedStatement ps, long firstSequence) {
    UUID conversation = UUID.fromString(setup.baselineConversationId());
    long[] seq = {firstSequence};
    Array[] arrays = new Array[5];
    return new Timed() {
      @Override
      public void prepare(int i) throws SQLException {
        UUID[] ids = new UUID[100];
        Long[] seqs = new Long[100];
        String[] roles = new String[100];
        String[] contents = new String[100];
        String[] keys = new String[100];
        for (int k = 0; k < 100; k++) {
          ids[k] = Uuid7.next();
          seqs[k] = seq[0]++;
          roles[k] = k % 2 == 0 ? "user" : "assistant";
          contents[k] = Texts.sentence(random.nextLong());
          keys[k] = UUID.randomUUID().toString(); // fresh per run: a rerun on a kept database must not collide
        }
        for (Array a : arrays) {
          if (a != null) {
            a.free();
          }
        }
        arrays[0] = c.createArrayOf("uuid", ids);
        arrays[1] = c.createArrayOf("bigint", seqs);
        arrays[2] = c.createArrayOf("text", roles);
        arrays[3] = c.createArrayOf("text", contents);
        arrays[4] = c.createArrayOf("text", keys);
        ps.setString(1, tenant);
        ps.setObject(2, conversation);
        for (int k = 0; k < 5; k++) {
          ps.setArray(3 + k, arrays[k]);
        }
      }

      @Override
      public void execute() throws SQLException {
        ps.executeUpdate();
      }
    };
  }

  /** Brings the baseline conversation's counters in line with the rows inserted behind the server's back. */
  private void fixCounters(Connection c) throws SQLException {
    try (PreparedStatement ps = c.prepareStatement("""
        UPDATE conversations c
           SET last_sequence = greatest(c.last_sequence, m.max_seq), message_count = m.n,
               last_message_at = m.newest
          FROM (SELECT max(sequence) AS max_seq, count(*) AS n, max(created_at) AS newest
                  FROM messages WHERE tenant_id = ? AND conversation_id = ?) m
         WHERE c.tenant_id = ? AND c.id = ?""")) {
      UUID conversation = UUID.fromString(setup.baselineConversationId());
      ps.setString(1, tenant);
      ps.setObject(2, conversation);
      ps.setString(3, tenant);
      ps.setObject(4, conversation);
      ps.executeUpdate();
    }
  }

  private Baseline listLast20(Connection c) throws SQLException {
    String sql = "SELECT * FROM messages WHERE tenant_id = ? AND conversation_id = ? ORDER BY sequence DESC LIMIT 20";
    try (PreparedStatement ps = c.prepareStatement(sql)) {
      return time("last 20 messages by (tenant_id, conversation_id, sequence) DESC", new Timed() {
        @Override
        public void prepare(int i) throws SQLException {
          ps.setString(1, tenant);
          ps.setObject(2, UUID.fromString(setup.conversationIds()[random.nextInt(setup.conversationIds().length)]));
        }

        @Override
        public void execute() throws SQLException {
          drain(ps);
        }
      });
    }
  }

  private Baseline searchMessages(Connection c) throws SQLException {
    String sql = """
        SELECT m.id, ts_rank_cd(m.content_tsv, q, 32) AS score
          FROM messages m JOIN conversations c ON c.tenant_id = m.tenant_id AND c.id = m.conversation_id,
               websearch_to_tsquery('english', ?) q
         WHERE m.tenant_id = ? AND c.customer_id = ? AND m.content_tsv @@ q
         ORDER BY score DESC, m.created_at DESC LIMIT 20""";
    try (PreparedStatement ps = c.prepareStatement(sql)) {
      return time("full-text top 20 of a customer's messages (ts_rank_cd)", new Timed() {
        @Override
        public void prepare(int i) throws SQLException {
          ps.setString(1, Texts.query(random));
          ps.setString(2, tenant);
          ps.setObject(3, UUID.fromString(setup.customerIds()[random.nextInt(setup.customerIds().length)]));
        }

        @Override
        public void execute() throws SQLException {
          drain(ps);
        }
      });
    }
  }

  /** The three conversation lookups of issue 19. */
  private enum Lookup {
    CUSTOMER, OPEN, METADATA
  }

  /**
   * The columns the server's ConversationStore reads for a list (its COLUMNS): the floor reads
   * the same row width, so the difference is the server's own.
   */
  static final String CONVERSATION_COLUMNS = "id, customer_id, channel, thread_key, started_at,"
      + " last_message_at, closed_at, message_count, summary, summary_embedding IS NOT NULL AS has_summary_embedding,"
      + " metadata::text AS metadata, created_at, updated_at, handoff_state, summary_embedding_state,"
      + " summary_embedding_model";
  private static final String CONVERSATION_ORDER = " ORDER BY last_message_at DESC NULLS LAST, id DESC LIMIT ?";

  /**
   * The very statements ConversationStore.list builds for the scenario's requests (its WHERE
   * clauses in its order, its columns, LIMIT page + 1), over the same inputs: one regular
   * customer's first page; its open conversations, or in the scenario's share of runs the
   * tenant's open conversations of one channel; the tenant's conversations of one shop.
   */
  private Baseline listConversations(Connection c, Lookup lookup) throws SQLException {
    String base = "SELECT " + CONVERSATION_COLUMNS + " FROM conversations WHERE tenant_id = ? AND deleted_at IS NULL";
    String customer = base + " AND customer_id = ?" + (lookup == Lookup.OPEN ? " AND closed_at IS NULL" : "")
        + CONVERSATION_ORDER;
    String channel = base + " AND closed_at IS NULL AND channel = ?" + CONVERSATION_ORDER;
    String shop = base + " AND metadata @> CAST(? AS jsonb)" + CONVERSATION_ORDER;
    int limit = Scenarios.CONVERSATION_PAGE + 1;
    try (PreparedStatement byCustomer = c.prepareStatement(customer);
        PreparedStatement byChannel = c.prepareStatement(channel);
        PreparedStatement byShop = c.prepareStatement(shop)) {
      PreparedStatement[] next = new PreparedStatement[1];
      String what = switch (lookup) {
        case CUSTOMER -> "first page of a regular customer's conversations (ConversationStore.list)";
        case OPEN -> "a regular customer's open conversations, 1 in 5 the tenant's open ones of a channel";
        case METADATA -> "first page of the tenant's conversations with metadata @> {\"shop_id\": n}";
      };
      return time(what, new Timed() {
        @Override
        public void prepare(int i) throws SQLException {
          if (lookup == Lookup.METADATA) {
            next[0] = byShop;
            byShop.setString(1, tenant);
            byShop.setString(2, "{\"shop_id\": \"" + random.nextInt(DataSet.SHOPS) + "\"}");
            byShop.setInt(3, limit);
          } else if (lookup == Lookup.OPEN && random.nextDouble() < Scenarios.OPEN_TENANT_WIDE_SHARE) {
            next[0] = byChannel;
            byChannel.setString(1, tenant);
            byChannel.setString(2, channelName(random.nextInt(data.sizes().conversationsPerCustomer())));
            byChannel.setInt(3, limit);
          } else {
            next[0] = byCustomer;
            byCustomer.setString(1, tenant);
            byCustomer.setObject(2, UUID.fromString(setup.customerIds()[random.nextInt(data.regulars())]));
            byCustomer.setInt(3, limit);
          }
        }

        @Override
        public void execute() throws SQLException {
          drain(next[0]);
        }
      });
    }
  }

  /** The stored name of the data set's i-th channel ("sms", "web", ...), as the server writes it. */
  /**
   * usage_metrics' floor: the rollup rows of the tenant's last 90 days summed per daily bucket, the
   * bulk of what GetUsageMetrics reads (it adds the live handoff counts and the refresh time). Null
   * when the server's schema has no rollup (before V7_1).
   */
  private Baseline usageRollup(Connection c) throws SQLException {
    String sql = "SELECT bucket, sum(conversations_started), sum(conversations_with_embedding),"
        + " sum(conversations_closed), sum(messages_user), sum(messages_assistant), sum(messages_system),"
        + " sum(messages_tool), sum(messages_human_agent), sum(memories_created), sum(memories_with_embedding)"
        + " FROM usage_daily WHERE tenant_id = ? AND bucket >= ? AND bucket < ? GROUP BY bucket";
    try (Statement st = c.createStatement();
        java.sql.ResultSet rs = st.executeQuery("SELECT to_regclass('usage_daily') IS NOT NULL")) {
      if (!rs.next() || !rs.getBoolean(1)) {
        return null;
      }
    }
    try (PreparedStatement ps = c.prepareStatement(sql)) {
      ps.setString(1, tenant);
      java.time.OffsetDateTime tomorrow = java.time.OffsetDateTime.now(java.time.ZoneOffset.UTC)
          .truncatedTo(java.time.temporal.ChronoUnit.DAYS).plusDays(1);
      return time(sql, new Timed() {
        @Override
        public void prepare(int i) throws SQLException {
          ps.setObject(2, tomorrow.minusDays(Scenarios.USAGE_DAYS));
          ps.setObject(3, tomorrow);
        }

        @Override
        public void execute() throws SQLException {
          drain(ps);
        }
      });
    }
  }

  private String channelName(int i) {
    return data.channel(i).name().substring("CHANNEL_".length()).toLowerCase(Locale.ROOT);
  }

  private Baseline knn(Connection c, boolean perCustomer) throws SQLException {
    String sql = "SELECT id FROM memories WHERE tenant_id = ?" + (perCustomer ? " AND customer_id = ?" : "")
        // The server's vector space without an embedder (schema version 9): its rows and the
        // expression its partial HNSW index is built on.
        + " AND embedding_model = 'client' ORDER BY (embedding::vector(" + data.sizes().dimension() + "))"
        + " <=> CAST(? AS vector(" + data.sizes().dimension() + ")) LIMIT 10";
    int memories = data.sizes().memories();
    RecallSampler answers = new RecallSampler(iterations);
    knnAnswers.put(perCustomer ? "search_memories_customer" : "search_memories_tenant", answers);
    float[][] query = new float[1][];
    int[] customer = new int[1];
    try (PreparedStatement ps = c.prepareStatement(sql)) {
      return time((perCustomer ? "k-NN of one customer's memories" : "k-NN over the tenant's memories")
          + " (cosine, k = 10, ef_search 100, iterative scan)", new Timed() {
        @Override
        public void prepare(int i) throws SQLException {
          int j = random.nextInt(memories);
          int cluster = perCustomer ? data.clusterOfMemory(j) : random.nextInt(data.sizes().clusters());
          int p = 1;
          ps.setString(p++, tenant);
          if (perCustomer) {
            ps.setObject(p++, UUID.fromString(setup.customerIds()[data.customerOfMemory(j)]));
          }
          query[0] = data.vectors().member(cluster, random.nextLong() | Long.MIN_VALUE);
          customer[0] = perCustomer ? data.customerOfMemory(j) : -1;
          bindVector(ps, p, query[0]);
        }

        @Override
        public void execute() throws SQLException {
          java.util.List<String> ids = new java.util.ArrayList<>(10);
          try (ResultSet rs = ps.executeQuery()) {
            while (rs.next()) {
              ids.add(rs.getString(1));
            }
          }
          answers.offer(query[0], customer[0], ids);
        }
      });
    }
  }

  /** Recall@10 of the k-NN floors' answers, by scenario, against the harness's brute force. */
  public Map<String, Double> knnRecall(dev.contextmemory.loadtest.data.MemoryCopy copy) {
    Map<String, Double> out = new LinkedHashMap<>();
    knnAnswers.forEach((scenario, answers) -> out.put(scenario, answers.recallAt(Scenarios.K, copy)));
    return out;
  }

  /**
   * The same pgvector settings as a filtered k-NN needs to return k rows at all (a customer's
   * memories are a sliver of the index): a search list of 100 and iterative index scans
   * (pgvector 0.8). Without them the floor would be a cheaper, different query that returns
   * fewer rows. On an older pgvector the iterative scan is left out.
   */
  private void vectorSearchSettings(Connection c) throws SQLException {
    try (Statement s = c.createStatement()) {
      s.execute("SET hnsw.ef_search = 100");
      try {
        s.execute("SET hnsw.iterative_scan = relaxed_order");
      } catch (SQLException e) {
        log.println("baseline: this pgvector has no iterative index scans (" + e.getMessage().strip() + ")");
      }
    }
  }

  private static void drain(PreparedStatement ps) throws SQLException {
    try (ResultSet rs = ps.executeQuery()) {
      while (rs.next()) {
        rs.getObject(1);
      }
    }
  }

  /**
   * The query vector typed as pgvector's {@code vector}, as the server binds it: bound as text,
   * {@code CAST(? AS vector)} would survive into a generic plan and re-parse the vector for every
   * row compared, and the floor would time that parsing instead of the search.
   */
  static PGobject vectorParameter(float[] v) {
    return new PGvector(v);
  }

  /**
   * Binds a query vector as the server does (Rows.vector): pgvector's binary format, which pgjdbc
   * uses on a connection once the type is registered there.
   */
  static void bindVector(PreparedStatement ps, int at, float[] v) throws SQLException {
    binaryVectors(ps.getConnection());
    ps.setObject(at, vectorParameter(v));
  }

  /** Registers pgvector's binary codec on the connection once (later calls are a map look-up). */
  static void binaryVectors(Connection c) throws SQLException {
    BaseConnection pg = c.unwrap(BaseConnection.class);
    if (pg.getTypeInfo().getPGobject("vector") == null) {
      PGvector.addVectorType(pg);
    }
  }
}

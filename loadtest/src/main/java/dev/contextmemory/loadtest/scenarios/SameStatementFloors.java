package dev.contextmemory.loadtest.scenarios;

import com.zaxxer.hikari.HikariConfig;
import com.zaxxer.hikari.HikariDataSource;
import dev.contextmemory.loadtest.CapacitySearch;
import dev.contextmemory.loadtest.Profile;
import dev.contextmemory.loadtest.data.DataSet;
import dev.contextmemory.loadtest.data.FactSetup;
import dev.contextmemory.loadtest.data.Facts;
import dev.contextmemory.loadtest.data.Setup;
import dev.contextmemory.loadtest.data.Texts;
import dev.contextmemory.loadtest.data.Uuid7;
import dev.contextmemory.loadtest.dsl.Summary;
import dev.contextmemory.loadtest.report.Outcome;
import java.io.PrintStream;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.ThreadLocalRandom;
import org.HdrHistogram.Histogram;

/**
 * Issue 13's honest SQL floor: for AppendMessage, ListMessages(20) and SearchMemories (per
 * customer and tenant-wide), the very statements the server runs for the RPC ({@link ServerStatements}: the
 * same CTE, the same search round trip with the same settings), on the scenario's inputs, through
 * a HikariCP pool configured as the server's (size, server-side prepared statements), at the scenario's arrival rate for its warm-up and measured
 * time. What the server's p50 adds to this floor and to the transport floor is the server's own.
 *
 * <p>The bare statements of {@link Baselines} stay as the "physical" floor: what PostgreSQL needs
 * at the least for the same rows.
 */
public final class SameStatementFloors {
  private final String jdbcUrl;
  private final String tenant;
  private final DataSet data;
  private final Setup.Result setup;
  private final Profile profile;
  private final PrintStream log;
  private FactSetup.Loaded facts;

  public SameStatementFloors(String jdbcUrl, String tenant, DataSet data, Setup.Result setup, Profile profile,
      PrintStream log) {
    this.jdbcUrl = jdbcUrl;
    this.tenant = tenant;
    this.data = data;
    this.setup = setup;
    this.profile = profile;
    this.log = log;
  }

  /** Also times search_memories_text's floor, on this text-search data set (null: none). */
  public SameStatementFloors withFacts(FactSetup.Loaded facts) {
    this.facts = facts;
    return this;
  }

  /** The server's default pool size (Settings: 2 × cores + 1), on this machine, where the server runs too. */
  static int serverPoolSize() {
    return 2 * Runtime.getRuntime().availableProcessors() + 1;
  }

  /** Runs the floors whose data exists, each for the scenarios it applies to (a subset of {@code only}, if given). */
  public Map<String, Baselines.Baseline> run(java.util.function.Predicate<String> selected) {
    Map<String, Baselines.Baseline> out = new LinkedHashMap<>();
    int size = serverPoolSize();
    try (HikariDataSource pool = pool(size)) {
      if (setup.hasConversations()) {
        put(out, pool, selected, "append_message", size, this::appendMessage,
            "AppendMessage's CTE (MessageStore.APPEND_ONE), autocommit");
        put(out, pool, selected, "list_messages_20", size, this::listMessages,
            "ListMessages' statement (conversation LEFT JOIN LATERAL last 21 messages)");
      }
      if (setup.hasMemories()) {
        put(out, pool, selected, "search_memories_customer", size, this::searchMemoriesCustomer,
            "SearchMemories' round trip: customer check + settings, then the sized vector search");
        put(out, pool, selected, "search_memories_tenant", size, this::searchMemoriesTenant,
            "SearchMemories' tenant-wide round trip: settings, then the sized vector search");
      }
      if (facts != null) {
        put(out, pool, selected, "search_memories_text", size, this::searchMemoriesText,
            "SearchMemories' HYBRID round trip with the question's vector precomputed: customer check +"
                + " settings, sized vector list, text list (no model)");
      }
    }
    return out;
  }

  /** Whether {@link #capacity} can time the server's own statement for this scenario. */
  public static boolean timesStatementOf(String scenario) {
    return switch (scenario) {
      case "append_message", "list_messages_20", "search_memories_customer", "search_memories_tenant" -> true;
      default -> false;
    };
  }

  /**
   * The capacity of the server's own statement for a scenario over JDBC, searched as the server's
   * (same start rate, factor, steps and break rules; the pool as large as the server's), on the
   * same database in the same run.
   */
  public Outcome.Capacity capacity(String scenario, Double targetP99Ms, double startRate) {
    PacedJdbc.Work work = switch (scenario) {
      case "append_message" -> this::appendMessage;
      case "list_messages_20" -> this::listMessages;
      case "search_memories_customer" -> this::searchMemoriesCustomer;
      case "search_memories_tenant" -> this::searchMemoriesTenant;
      default -> throw new IllegalArgumentException("no statement timed for " + scenario);
    };
    Profile.Capacity cap = profile.capacity();
    int size = serverPoolSize();
    try (HikariDataSource pool = pool(size)) {
      return CapacitySearch.run(scenario + " (same statement, JDBC)", cap, startRate, rate -> {
        PacedJdbc.Result r = PacedJdbc.run(pool, size, rate, cap.warmUp(), cap.step(), work);
        Histogram h = r.latencyMicros();
        long completed = h.getTotalCount();
        double seconds = cap.step().toNanos() / 1e9;
        Summary sum = new Summary(scenario + "_sql", completed + r.errors() + r.dropped(), r.errors() + r.dropped(),
            h.getMinValue() / 1000.0, h.getValueAtPercentile(50) / 1000.0, h.getValueAtPercentile(75) / 1000.0,
            h.getValueAtPercentile(95) / 1000.0, h.getValueAtPercentile(99) / 1000.0,
            h.getValueAtPercentile(99.9) / 1000.0, h.getMaxValue() / 1000.0, h.getMean() / 1000.0,
            completed / seconds, seconds, r.errors() + r.dropped() == 0 ? Map.of()
                : Map.of("ERROR", r.errors(), "DROPPED", r.dropped()),
            r.firstError() == null ? List.of() : List.of(r.firstError()), List.of(), h);
        String why = CapacitySearch.broke(sum.p99Ms(), targetP99Ms, sum.requests(), sum.errors(),
            String.valueOf(sum.errorsByCode()), profile.maxErrorRate(), rate * seconds);
        return new Outcome.CapacityStep(rate, sum, why == null, why == null ? "" : why);
      }, log);
    }
  }

  private void put(Map<String, Baselines.Baseline> out, HikariDataSource pool,
      java.util.function.Predicate<String> selected, String scenario, int threads, PacedJdbc.Work work, String what) {
    if (!selected.test(scenario)) {
      return;
    }
    double rate = profile.rate(scenario);
    PacedJdbc.Result r = PacedJdbc.run(pool, threads, rate, profile.warmUp(), profile.measure(), work);
    Histogram h = r.latencyMicros();
    String sql = what + String.format(Locale.ROOT, ", %s/s over a pool of %d", rate == Math.rint(rate)
        ? Long.toString((long) rate) : Double.toString(rate), threads);
    if (r.errors() > 0 || r.dropped() > 0) {
      log.printf(Locale.ROOT, "same-statement floor: %s had %d errors, %d dropped (%s); not used%n", scenario,
          r.errors(), r.dropped(), r.firstError());
      return;
    }
    Baselines.Baseline b = new Baselines.Baseline(sql, h.getTotalCount(), h.getValueAtPercentile(50) / 1000.0,
        h.getValueAtPercentile(99) / 1000.0);
    out.put(scenario, b);
    log.printf(Locale.ROOT, "same-statement floor: %-25s p50 %8.3f ms  p99 %8.3f ms  (%d runs: %s)%n", scenario,
        b.p50Ms(), b.p99Ms(), b.iterations(), sql);
  }

  /** A pool as the server's Database.pool builds it (fixed size, the same pgjdbc properties). */
  private HikariDataSource pool(int size) {
    HikariConfig c = new HikariConfig();
    c.setPoolName("loadtest-sql-floor");
    c.setJdbcUrl(jdbcUrl);
    c.setMaximumPoolSize(size);
    c.setMinimumIdle(size);
    c.setConnectionTimeout(5_000);
    c.addDataSourceProperty("ApplicationName", "context-memory-loadtest-floor");
    c.addDataSourceProperty("prepareThreshold", "1");
    c.addDataSourceProperty("preparedStatementCacheQueries", "512");
    c.addDataSourceProperty("preparedStatementCacheSizeMiB", "8");
    c.addDataSourceProperty("tcpKeepAlive", "true");
    c.addDataSourceProperty("reWriteBatchedInserts", "true");
    return new HikariDataSource(c);
  }

  private static final ServerStatements.Named APPEND = new ServerStatements.Named(ServerStatements.APPEND_ONE);
  private static final ServerStatements.Named LIST = new ServerStatements.Named(ServerStatements.LIST_MESSAGES_20);
  private static final int CANDIDATES = ServerStatements.indexCandidates(Scenarios.K);
  /** SearchMemories' one round trip for a customer: the head, then the vector list. */
  private static final ServerStatements.Named SEARCH = new ServerStatements.Named(ServerStatements.SEARCH_HEAD
      + ";\n" + ServerStatements.vectorSearchForCustomer(Scenarios.K));
  private static final ServerStatements.Named SEARCH_TENANT = new ServerStatements.Named(
      ServerStatements.SEARCH_HEAD_TENANT + ";\n" + ServerStatements.vectorSearchForTenant(Scenarios.K));

  /** A user message appended to a random conversation of the data set, as the scenario does. */
  private void appendMessage(Connection c) throws SQLException {
    var r = ThreadLocalRandom.current();
    Map<String, Object> v = new HashMap<>();
    v.put("tenant", tenant);
    v.put("conversation", UUID.fromString(setup.conversationIds()[r.nextInt(setup.conversationIds().length)]));
    v.put("id", Uuid7.next());
    v.put("role", "user");
    v.put("content", Texts.sentence(r.nextLong()));
    v.put("tool_calls", null);
    v.put("tool_call_id", null);
    v.put("attachments", null);
    v.put("metadata", null);
    v.put("key", UUID.randomUUID().toString());
    v.put("created_at", null);
    try (PreparedStatement ps = APPEND.bind(c, v)) {
      ps.execute();
      requireRows(ps, "AppendMessage's CTE appended nothing");
    }
  }

  private void listMessages(Connection c) throws SQLException {
    var r = ThreadLocalRandom.current();
    Map<String, Object> v = Map.of("tenant", tenant,
        "conversation", UUID.fromString(setup.conversationIds()[r.nextInt(setup.conversationIds().length)]));
    try (PreparedStatement ps = LIST.bind(c, v)) {
      ps.execute();
      requireRows(ps, "ListMessages found no conversation");
    }
  }

  /** A random memory picks the customer and the query's cluster, as the scenario does; one round trip. */
  private void searchMemoriesCustomer(Connection c) throws SQLException {
    var r = ThreadLocalRandom.current();
    int j = r.nextInt(data.sizes().memories());
    UUID customer = UUID.fromString(setup.customerIds()[data.customerOfMemory(j)]);
    Object q = Baselines.vectorParameter(data.vectors().member(data.clusterOfMemory(j), r.nextLong() | Long.MIN_VALUE));
    try (PreparedStatement ps = SEARCH.bind(c, Map.of("tenant", tenant, "customer", customer,
        "ef", ServerStatements.efSearch(CANDIDATES), "q", q, "min", 0.0))) {
      ps.execute();
      requireHead(ps);
      requireRows(ps, "the vector search found nothing");
    }
  }

  /** A random cluster picks the query, as the tenant-wide scenario does; one round trip. */
  private void searchMemoriesTenant(Connection c) throws SQLException {
    var r = ThreadLocalRandom.current();
    Object q = Baselines.vectorParameter(data.vectors().member(r.nextInt(data.sizes().clusters()),
        r.nextLong() | Long.MIN_VALUE));
    try (PreparedStatement ps = SEARCH_TENANT.bind(c, Map.of("tenant", tenant,
        "ef", ServerStatements.efSearch(ServerStatements.tenantCandidates(Scenarios.K)), "q", q, "min", 0.0))) {
      ps.execute();
      requireHead(ps);
      requireRows(ps, "the tenant-wide vector search found nothing");
    }
  }

  /**
   * What the server runs for search_memories_text, minus the embedding of the question: the same
   * random memory picks the customer and the question's category, and the question's vector (made
   * by the server's model during the set-up) is bound as the query. RRF fusion of the two lists
   * is done in Java by the server; it is not part of the floor.
   */
  private void searchMemoriesText(Connection c) throws SQLException {
    var r = ThreadLocalRandom.current();
    Facts f = facts.facts();
    int j = r.nextInt(facts.memoryIds().length);
    UUID customer = UUID.fromString(setup.customerIds()[data.customerOfMemory(j)]);
    int category = f.categoryOfTextIndex(f.textOf(j));
    int question = r.nextInt(f.questions(category).size());
    String text = f.questions(category).get(question);
    Object q = Baselines.vectorParameter(facts.questionVectors()[f.questionIndex(category, question)]);
    int cut = ServerStatements.hybridCut(Scenarios.K);
    int candidates = ServerStatements.indexCandidates(cut);
    try (PreparedStatement ps = new ServerStatements.Named(ServerStatements.SEARCH_HEAD + ";\n"
        + ServerStatements.vectorSearchForCustomer(cut, facts.model(), facts.dimension()) + ";\n" + TEXT)
        .bind(c, Map.of("tenant", tenant, "customer", customer, "ef", ServerStatements.efSearch(candidates), "q", q,
            "min", 0.0, "text", text, "min_score", 0.0))) {
      ps.execute();
      requireHead(ps);
      requireRows(ps, "the vector list found nothing");
      ps.getMoreResults();
      try (ResultSet rs = ps.getResultSet()) {
        int columns = rs.getMetaData().getColumnCount();
        while (rs.next()) { // most questions share no word with the facts: an empty text list is normal
          for (int i = 1; i <= columns; i++) {
            rs.getObject(i);
          }
        }
      }
    }
  }

  private static final String TEXT = ServerStatements.textSearchForCustomer(ServerStatements.hybridCut(Scenarios.K));

  /** The pipeline's head: its one row must say the customer exists. */
  private static void requireHead(PreparedStatement ps) throws SQLException {
    try (ResultSet rs = ps.getResultSet()) {
      if (!rs.next() || !rs.getBoolean("customer_found")) {
        throw new SQLException("no such customer");
      }
    }
    ps.getMoreResults();
  }

  /**
   * Reads every row and column of the statement's current result, as the server's mappers do;
   * fails on an empty result (the floor must do the work).
   */
  private static void requireRows(PreparedStatement ps, String empty) throws SQLException {
    int rows = 0;
    try (ResultSet rs = ps.getResultSet()) {
      int columns = rs.getMetaData().getColumnCount();
      while (rs.next()) {
        rows++;
        for (int i = 1; i <= columns; i++) {
          rs.getObject(i);
        }
      }
    }
    if (rows == 0) {
      throw new SQLException(empty);
    }
  }
}

package dev.contextmemory.server.config;

import com.zaxxer.hikari.HikariConfig;
import com.zaxxer.hikari.HikariDataSource;
import com.zaxxer.hikari.metrics.MetricsTrackerFactory;
import java.time.Duration;
import java.util.Map;
import javax.sql.DataSource;
import org.flywaydb.core.Flyway;
import org.flywaydb.core.api.output.MigrateResult;
import dev.contextmemory.server.store.PlainStatements;
import org.jdbi.v3.core.Jdbi;
import org.jdbi.v3.core.statement.StatementExceptions;
import org.jdbi.v3.postgres.PostgresPlugin;

/** The connection pool, the schema migrations and Jdbi: how the server reaches PostgreSQL. */
public final class Database {
  private Database() {}

  /**
   * A small, fixed-size HikariCP pool. Sizing follows HikariCP's "About Pool Sizing": throughput
   * peaks near 2 x database cores connections, and more only adds contention, so the pool is
   * sized from the database host's cores (Settings.dbPoolSize) and requests beyond it wait briefly
   * for a connection rather than piling onto PostgreSQL.
   */
  public static HikariDataSource pool(Settings s) {
    return pool(s, null);
  }

  /** The pool, reporting its state (total, active, idle, waiting, wait time, timeouts) to {@code metrics}. */
  public static HikariDataSource pool(Settings s, MetricsTrackerFactory metrics) {
    return pool(s, s.dbUrl(), "context-memory", metrics);
  }

  /**
   * A pool like the primary's for the standby at {@code url} (same credentials, size and
   * timeouts). It starts even while the standby is down: reads then go to the primary until the
   * standby answers the router's probe.
   */
  public static HikariDataSource standbyPool(Settings s, String url, String name, MetricsTrackerFactory metrics) {
    return pool(s, url, name, metrics, -1);
  }

  /**
   * A pool of its own on the primary for background work that must not take the requests'
   * connections (the WatchConversations sequencer, poller and catch-up reads), with the same
   * per-connection settings and its own application_name. Never a standby: the sequencer writes,
   * and the poller must see positions as soon as they commit.
   */
  public static HikariDataSource pool(Settings s, MetricsTrackerFactory metrics, String name, int size,
      String applicationName) {
    return pool(s, s.dbUrl(), name, metrics, Duration.ofSeconds(10).toMillis(), size, applicationName);
  }

  private static HikariDataSource pool(Settings s, String url, String name, MetricsTrackerFactory metrics) {
    return pool(s, url, name, metrics, Duration.ofSeconds(10).toMillis());
  }

  private static HikariDataSource pool(Settings s, String url, String name, MetricsTrackerFactory metrics,
      long initializationFailMillis) {
    return pool(s, url, name, metrics, initializationFailMillis, s.dbPoolSize(), s.applicationName());
  }

  private static HikariDataSource pool(Settings s, String url, String name, MetricsTrackerFactory metrics,
      long initializationFailMillis, int size, String applicationName) {
    HikariConfig c = new HikariConfig();
    c.setPoolName(name);
    c.setJdbcUrl(url);
    if (!s.dbUser().isEmpty()) {
      c.setUsername(s.dbUser());
    }
    if (!s.dbPassword().isEmpty()) {
      c.setPassword(s.dbPassword());
    }
    c.setMaximumPoolSize(size);
    // Fixed size (minimumIdle = maximum), as HikariCP recommends: no connection storms when load
    // arrives, and connection set-up never lands on a request's latency.
    c.setMinimumIdle(size);
    // A request that can't get a connection this fast answers RESOURCE_EXHAUSTED instead of
    // queueing invisibly; callers retry with backoff.
    c.setConnectionTimeout(s.dbConnectionTimeout().toMillis());
    // Recycle connections well before any proxy or server-side limit kills them mid-query;
    // HikariCP staggers the retirements.
    c.setMaxLifetime(Duration.ofMinutes(30).toMillis());
    // Keep idle connections alive through NATs and firewalls that drop quiet TCP flows.
    c.setKeepaliveTime(Duration.ofMinutes(2).toMillis());
    // Start-up fails, naming the cause, if the primary cannot be reached within 10 s (-1 for a
    // standby pool: it starts empty and fills when the standby answers).
    c.setInitializationFailTimeout(initializationFailMillis);
    if (metrics != null) {
      c.setMetricsTrackerFactory(metrics);
    }

    String timeouts = timeoutSql(s);
    if (timeouts != null) {
      // Once per connection, in the same round trip as Hikari's validation: a session-mode pooler
      // gives this client connection one server connection for its whole life.
      c.setConnectionInitSql(timeouts);
    }
    connectionProperties(s).forEach(c::addDataSourceProperty);
    c.addDataSourceProperty("ApplicationName", applicationName);
    return new HikariDataSource(c);
  }

  /**
   * The pgjdbc properties of every connection the server opens for requests and for the sweeper.
   * Timeouts go as startup {@code options} only without a pooler: PgBouncer refuses that startup
   * parameter (or, with {@code ignore_startup_parameters=options}, drops it silently).
   */
  private static Map<String, String> connectionProperties(Settings s) {
    Map<String, String> pg = new java.util.LinkedHashMap<>();
    // Shows up in pg_stat_activity, so an operator can tell our sessions apart.
    pg.put("ApplicationName", s.applicationName());
    if (s.dbPooler() == Settings.DbPooler.NONE) {
      // Set on every connection at start-up: no runaway statement, and no transaction left
      // open by a bug can hold locks for longer than these. lock_timeout is far shorter: a
      // writer queued behind a row lock someone else holds gives its connection back (SQLSTATE
      // 55P03, answered ABORTED and retried) instead of pinning it for the caller's deadline.
      pg.put("options", "-c statement_timeout=" + s.statementTimeout().toMillis()
          + " -c idle_in_transaction_session_timeout=" + s.idleInTransactionTimeout().toMillis()
          + " -c lock_timeout=" + s.lockTimeout().toMillis());
    }
    if (s.dbPooler() == Settings.DbPooler.TRANSACTION) {
      // A transaction-mode pooler hands each transaction to any server connection: a named
      // statement prepared on one is missing (or another client's) on the next. Unnamed
      // statements only (docs/scaling.md measures what that costs).
      pg.put("prepareThreshold", "0");
    } else {
      // Server-side prepared statements from the first use: our hot statements are few and run
      // millions of times, so parse/plan once per connection, and cache enough of them that
      // the variants of list queries never evict the hot ones.
      pg.put("prepareThreshold", "1");
      pg.put("preparedStatementCacheQueries", "512");
      pg.put("preparedStatementCacheSizeMiB", "8");
    }
    pg.put("reWriteBatchedInserts", "true");
    // PostgreSQL's error DETAIL quotes row values ("Key (phone)=(+1555…) already exists"):
    // keep it out of exception messages, which reach the log.
    pg.put("logServerErrorDetail", "false");
    // A host that does not answer at all (down, or a partition dropping packets) fails the
    // TCP connect in 5 s and the whole log-in in 10 s, instead of the OS's minutes.
    pg.put("connectTimeout", "5");
    pg.put("loginTimeout", "10");
    // A read that waits this long has no answer coming (a frozen or partitioned host):
    // PostgreSQL itself ends every statement by the statement timeout (or our cancel at the
    // call's deadline), so no legitimate wait comes near it. Without it a call on a hung
    // database would wait for the OS's TCP retransmission timeout (about 15 minutes).
    pg.put("socketTimeout", Long.toString(socketTimeoutSeconds(s)));
    // Cancelling a statement opens a new connection; on a hung host give up after 2 s, so
    // the one cancel thread does not queue every later cancel behind it. The socket timeout
    // still ends the statement's wait.
    pg.put("cancelSignalTimeout", "2");
    // Lets the OS notice a peer that vanished while the connection is idle in the pool;
    // HikariCP's keepalive (above) and the socket timeout cover the timely cases.
    pg.put("tcpKeepAlive", "true");
    return pg;
  }

  /**
   * The statement that sets the timeouts on a new session-mode connection, or null when they
   * arrive otherwise (startup options without a pooler, role settings behind a transaction-mode
   * one). One statement, so one round trip.
   */
  static String timeoutSql(Settings s) {
    if (s.dbPooler() != Settings.DbPooler.SESSION) {
      return null;
    }
    return "SELECT set_config('statement_timeout', '" + s.statementTimeout().toMillis() + "', false),"
        + " set_config('idle_in_transaction_session_timeout', '" + s.idleInTransactionTimeout().toMillis() + "', false),"
        + " set_config('lock_timeout', '" + s.lockTimeout().toMillis() + "', false)";
  }

  /**
   * A connection of its own, outside the request pool, with the pool's settings (the sweeper's
   * round lock holds one for a round, inside one transaction).
   */
  public static java.sql.Connection connect(Settings s, String purpose) throws java.sql.SQLException {
    return open(s, s.dbUrl(), purpose);
  }

  /**
   * The same, to {@link Settings#sessionDbUrl()}: for work that keeps state in its session
   * between statements (the vector index build's session advisory lock and {@code SET}s, which
   * must run outside a transaction). Through a transaction-mode pooler each statement may land on
   * another server connection, so a {@code SET statement_timeout = 0} stayed on one of them for the
   * requests that came to it next: PgBouncerProcessTest's UPDATE blocked behind a row lock was not
   * ended by the 3 s statement timeout but by the socket timeout 8 s later (UNAVAILABLE).
   */
  public static java.sql.Connection connectSession(Settings s, String purpose) throws java.sql.SQLException {
    return open(s, s.sessionDbUrl(), purpose);
  }

  private static java.sql.Connection open(Settings s, String url, String purpose) throws java.sql.SQLException {
    java.util.Properties p = new java.util.Properties();
    connectionProperties(s).forEach(p::setProperty);
    p.setProperty("ApplicationName", s.applicationName() + " " + purpose);
    if (!s.dbUser().isEmpty()) {
      p.setProperty("user", s.dbUser());
    }
    if (!s.dbPassword().isEmpty()) {
      p.setProperty("password", s.dbPassword());
    }
    java.sql.Connection c = java.sql.DriverManager.getConnection(url, p);
    String timeouts = timeoutSql(s);
    if (timeouts != null) {
      try (java.sql.Statement st = c.createStatement()) {
        st.execute(timeouts);
      } catch (java.sql.SQLException e) {
        c.close();
        throw e;
      }
    }
    return c;
  }

  /**
   * The session's statement, lock and idle-in-transaction timeouts must be the configured ones:
   * behind a transaction-mode pooler they come from role or database settings, which only an
   * operator can make; through a pooler that drops startup options they would silently be 0. A
   * server that can't bound its statements refuses to start (exit 2), naming the statements that
   * fix it. One sample session: a pooler keeps server connections opened before an ALTER ROLE
   * with the old values until they are reconnected.
   */
  public static void checkSessionTimeouts(Jdbi jdbi, Settings s) {
    Map<String, Long> want = new java.util.LinkedHashMap<>();
    want.put("statement_timeout", s.statementTimeout().toMillis());
    want.put("lock_timeout", s.lockTimeout().toMillis());
    want.put("idle_in_transaction_session_timeout", s.idleInTransactionTimeout().toMillis());
    record Session(String user, String database, Map<String, Long> settings) {}
    // One statement, so the three settings are read from one session (a transaction-mode pooler
    // may hand each statement to another).
    Session found = jdbi.withHandle(h -> h.createQuery("""
            SELECT current_user AS u, current_database() AS d,
                   (SELECT setting::bigint FROM pg_settings WHERE name = 'statement_timeout') AS st,
                   (SELECT setting::bigint FROM pg_settings WHERE name = 'lock_timeout') AS lt,
                   (SELECT setting::bigint FROM pg_settings WHERE name = 'idle_in_transaction_session_timeout') AS it""")
        .map((rs, ctx) -> new Session(rs.getString("u"), rs.getString("d"), Map.of("statement_timeout",
            rs.getLong("st"), "lock_timeout", rs.getLong("lt"), "idle_in_transaction_session_timeout", rs.getLong("it"))))
        .one());
    java.util.List<String> wrong = new java.util.ArrayList<>();
    java.util.List<String> fixes = new java.util.ArrayList<>();
    want.forEach((name, ms) -> {
      if (!ms.equals(found.settings().get(name))) {
        wrong.add(name + " is " + found.settings().get(name) + " ms, configured " + ms + " ms");
        fixes.add("ALTER ROLE " + ident(found.user()) + " IN DATABASE " + ident(found.database()) + " SET " + name
            + " = " + ms + ";");
      }
    });
    if (wrong.isEmpty()) {
      return;
    }
    String how = switch (s.dbPooler()) {
      case TRANSACTION -> "behind a transaction-mode pooler (" + Settings.PREFIX + "DB_POOLER=transaction) the"
          + " timeouts are settings of the database role. Run, as a superuser or the role's owner:\n  "
          + String.join("\n  ", fixes) + "\nthen make the pooler open new server connections (PgBouncer: RECONNECT"
          + " on its admin console), or change the " + Settings.PREFIX + "DB_*_TIMEOUT_MS variables to match";
      case NONE -> "the startup options did not arrive: is a pooler in between? Set " + Settings.PREFIX
          + "DB_POOLER=session or transaction (docs/scaling.md)";
      case SESSION -> "the session the server set them on is not the one it is using: is the pooler in"
          + " transaction mode? Then set " + Settings.PREFIX + "DB_POOLER=transaction (docs/scaling.md)";
    };
    throw new IllegalArgumentException("the database session's timeouts are not the configured ones ("
        + String.join("; ", wrong) + "): " + how);
  }

  private static String ident(String name) {
    return "\"" + name.replace("\"", "\"\"") + "\"";
  }


  /**
   * The pgjdbc socket timeout: 5 s past the longest a statement may legitimately run, which is
   * the statement timeout or, when that is off (0), the longest call deadline.
   */
  public static long socketTimeoutSeconds(Settings s) {
    Duration longest = s.statementTimeout().isZero() ? s.maxCallDeadline() : s.statementTimeout();
    return (longest.toMillis() + 999) / 1000 + 5;
  }

  /**
   * Applies pending migrations; a second run against a migrated database applies none. Flyway
   * connects on its own rather than through the request pool: it holds more than one connection at
   * a time (its lock and the migration), which a small pool may not have to spare. It connects to
   * {@code MIGRATION_DB_URL} when that is set: its session advisory lock and session SETs need a
   * session of their own, which a transaction-mode pooler does not give.
   */
  public static MigrateResult migrate(Settings s) {
    if (s.dbPooler() == Settings.DbPooler.TRANSACTION && s.migrationDbUrl() == null) {
      throw new IllegalArgumentException("migrations need a session of their own: set " + Settings.PREFIX
          + "MIGRATION_DB_URL to a direct (or session-mode) URL of the database");
    }
    return Flyway.configure()
        .dataSource(s.sessionDbUrl(), s.dbUser().isEmpty() ? null : s.dbUser(), s.dbPassword().isEmpty() ? null : s.dbPassword())
        .locations("classpath:db/migration")
        .placeholders(Map.of("embedding_dimension", Integer.toString(s.embeddingDimension())))
        .validateMigrationNaming(true)
        .load()
        .migrate();
  }

  /**
   * Before version 9 the embedding dimension was baked into the vector columns by the first
   * migration; a server configured for another one (with MIGRATE_ON_START off, on an old schema)
   * would reject or mis-store every vector, so it refuses to start.
   */
  public static void checkEmbeddingDimension(Jdbi jdbi, Settings s) {
    Integer stored = jdbi.withHandle(h -> h.createQuery("""
            SELECT atttypmod FROM pg_attribute
            WHERE attrelid = 'memories'::regclass AND attname = 'embedding'""")
        .mapTo(Integer.class).findOne().orElse(null));
    // Since version 9 the columns have no fixed dimension (-1): each model's rows carry their own.
    if (stored != null && stored > 0 && stored != s.embeddingDimension()) {
      throw new IllegalStateException("the database stores " + stored + "-dimensional embeddings but "
          + Settings.PREFIX + "EMBEDDING_DIMENSION is " + s.embeddingDimension());
    }
  }

  public static Jdbi jdbi(DataSource ds) {
    Jdbi jdbi = Jdbi.create(ds).installPlugin(new PostgresPlugin());
    // The hot reads' plain JDBC statements take their connections from the same data source.
    jdbi.getConfig(PlainStatements.class).setDataSource(ds);
    // Jdbi's exception messages render bound values by default (phones, emails, message text);
    // the error id and the stack trace are enough to find the statement.
    jdbi.getConfig(StatementExceptions.class).setMessageRendering(StatementExceptions.MessageRendering.NONE);
    return jdbi;
  }
}

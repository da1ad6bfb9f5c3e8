package dev.contextmemory.server.config;

import com.zaxxer.hikari.HikariConfig;
import com.zaxxer.hikari.HikariDataSource;
import com.zaxxer.hikari.metrics.MetricsTrackerFactory;
import java.time.Duration;
import java.util.Map;
import javax.sql.DataSource;
import org.flywaydb.core.Flyway;
import org.flywaydb.core.api.output.MigrateResult;
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
    return pool(s, metrics, "context-memory", s.dbPoolSize(), s.applicationName());
  }

  /**
   * A pool of its own for background work that must not take the requests' connections (the
   * WatchConversations sequencer, poller and catch-up reads), with the same per-connection
   * settings and its own application_name.
   */
  public static HikariDataSource pool(Settings s, MetricsTrackerFactory metrics, String name, int size,
      String applicationName) {
    HikariConfig c = new HikariConfig();
    c.setPoolName(name);
    c.setJdbcUrl(s.dbUrl());
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
    // Start-up fails, naming the cause, if the database can't be reached within this time.
    c.setInitializationFailTimeout(Duration.ofSeconds(10).toMillis());
    if (metrics != null) {
      c.setMetricsTrackerFactory(metrics);
    }

    Map<String, String> pg = Map.of(
        // Shows up in pg_stat_activity, so an operator can tell our sessions apart.
        "ApplicationName", applicationName,
        // Set on every connection at start-up: no runaway statement, and no transaction left
        // open by a bug can hold locks for longer than these. lock_timeout is far shorter: a
        // writer queued behind a row lock someone else holds gives its connection back (SQLSTATE
        // 55P03, answered ABORTED and retried) instead of pinning it for the caller's deadline.
        "options", "-c statement_timeout=" + s.statementTimeout().toMillis()
            + " -c idle_in_transaction_session_timeout=" + s.idleInTransactionTimeout().toMillis()
            + " -c lock_timeout=" + s.lockTimeout().toMillis(),
        // Server-side prepared statements from the first use: our hot statements are few and run
        // millions of times, so parse/plan once per connection, and cache enough of them that
        // the variants of list queries never evict the hot ones.
        "prepareThreshold", "1",
        "preparedStatementCacheQueries", "512",
        "preparedStatementCacheSizeMiB", "8",
        "reWriteBatchedInserts", "true",
        // PostgreSQL's error DETAIL quotes row values ("Key (phone)=(+1555…) already exists"):
        // keep it out of exception messages, which reach the log.
        "logServerErrorDetail", "false");
    Map<String, String> network = Map.of(
        // A host that does not answer at all (down, or a partition dropping packets) fails the
        // TCP connect in 5 s and the whole log-in in 10 s, instead of the OS's minutes.
        "connectTimeout", "5",
        "loginTimeout", "10",
        // A read that waits this long has no answer coming (a frozen or partitioned host):
        // PostgreSQL itself ends every statement by the statement timeout (or our cancel at the
        // call's deadline), so no legitimate wait comes near it. Without it a call on a hung
        // database would wait for the OS's TCP retransmission timeout (about 15 minutes).
        "socketTimeout", Long.toString(socketTimeoutSeconds(s)),
        // Cancelling a statement opens a new connection; on a hung host give up after 2 s, so
        // the one cancel thread does not queue every later cancel behind it. The socket timeout
        // still ends the statement's wait.
        "cancelSignalTimeout", "2",
        // Lets the OS notice a peer that vanished while the connection is idle in the pool;
        // HikariCP's keepalive (above) and the socket timeout cover the timely cases.
        "tcpKeepAlive", "true");
    pg.forEach(c::addDataSourceProperty);
    network.forEach(c::addDataSourceProperty);
    return new HikariDataSource(c);
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
   * a time (its lock and the migration), which a small pool may not have to spare.
   */
  public static MigrateResult migrate(Settings s) {
    return Flyway.configure()
        .dataSource(s.dbUrl(), s.dbUser().isEmpty() ? null : s.dbUser(), s.dbPassword().isEmpty() ? null : s.dbPassword())
        .locations("classpath:db/migration")
        .placeholders(Map.of("embedding_dimension", Integer.toString(s.embeddingDimension())))
        .validateMigrationNaming(true)
        .load()
        .migrate();
  }

  /**
   * The embedding dimension is baked into the vector columns by the first migration; a server
   * configured for another one would reject or mis-store every vector, so it refuses to start.
   */
  public static void checkEmbeddingDimension(Jdbi jdbi, Settings s) {
    Integer stored = jdbi.withHandle(h -> h.createQuery("""
            SELECT atttypmod FROM pg_attribute
            WHERE attrelid = 'memories'::regclass AND attname = 'embedding'""")
        .mapTo(Integer.class).findOne().orElse(null));
    if (stored != null && stored != s.embeddingDimension()) {
      throw new IllegalStateException("the database stores " + stored + "-dimensional embeddings but "
          + Settings.PREFIX + "EMBEDDING_DIMENSION is " + s.embeddingDimension());
    }
  }

  public static Jdbi jdbi(DataSource ds) {
    Jdbi jdbi = Jdbi.create(ds).installPlugin(new PostgresPlugin());
    // Jdbi's exception messages render bound values by default (phones, emails, message text);
    // the error id and the stack trace are enough to find the statement.
    jdbi.getConfig(StatementExceptions.class).setMessageRendering(StatementExceptions.MessageRendering.NONE);
    return jdbi;
  }
}

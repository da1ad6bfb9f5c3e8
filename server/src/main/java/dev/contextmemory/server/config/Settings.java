package dev.contextmemory.server.config;

import java.time.Duration;
import java.util.Map;
import java.util.Objects;

/**
 * Everything the server reads from its environment, read once at start-up. Each variable is
 * documented in README.md with its default; a value that does not parse stops the server before it
 * binds a port, naming the variable.
 */
public record Settings(
    String host,
    int port,
    String dbUrl,
    String dbUser,
    String dbPassword,
    DbPooler dbPooler,
    String migrationDbUrl,
    int dbPoolSize,
    Duration dbConnectionTimeout,
    Duration statementTimeout,
    Duration idleInTransactionTimeout,
    boolean migrateOnStart,
    int embeddingDimension,
    int requestThreads,
    int maxInboundMessageBytes,
    Duration shutdownGrace,
    Duration healthCheckInterval,
    String defaultPhoneRegion,
    String defaultTenant,
    String applicationName,
    Duration memorySweepInterval,
    int memorySweepBatch,
    Duration lockTimeout,
    Duration maxCallDeadline,
    int requestQueue,
    Duration healthCheckTimeout,
    Duration requestQueueWait,

    String pageTokenSecret,
    Duration deletedConversationRetention,
    Duration usageRefreshInterval,
    SecuritySettings security,
    Observability observability,
    EmbeddingSettings embedding,
    WatchSettings watch,
    StandbyReads standbyReads,
    int mcpPort) {

  public static final String PREFIX = "CONTEXT_MEMORY_";

  /**
   * What sits between the server and PostgreSQL (docs/scaling.md). A pooler cannot pass startup
   * {@code options}, so the timeouts reach the sessions another way; a transaction-mode pooler
   * also hands each transaction to any server connection, so nothing may outlive a transaction:
   * no named prepared statements, no session settings, no session advisory locks.
   */
  public enum DbPooler {
    /** Connections go straight to PostgreSQL (or through a TCP proxy): timeouts as startup options. */
    NONE,
    /** PgBouncer {@code pool_mode=session}: a client connection keeps one server connection; timeouts are SET once per connection. */
    SESSION,
    /** PgBouncer {@code pool_mode=transaction}: timeouts must be role/database settings, which start-up checks. */
    TRANSACTION
  }
  /** pgvector's HNSW index, which vector search relies on, indexes vectors of at most 2,000 dimensions. */
  public static final int MAX_EMBEDDING_DIMENSION = 2000;

  public Settings {
    Objects.requireNonNull(dbUrl, "dbUrl");
    if (!dbUrl.startsWith("jdbc:postgresql:")) {
      throw new IllegalArgumentException(PREFIX + "DB_URL must be a jdbc:postgresql: URL, got " + redact(dbUrl));
    }
    Objects.requireNonNull(dbPooler, "dbPooler");
    if (migrationDbUrl != null && !migrationDbUrl.startsWith("jdbc:postgresql:")) {
      throw new IllegalArgumentException(PREFIX + "MIGRATION_DB_URL must be a jdbc:postgresql: URL, got "
          + redact(migrationDbUrl));
    }
    // Flyway holds a session advisory lock across statements and SETs its role and search path,
    // the vector index build does the same outside a transaction, and the watch LISTENs: through a
    // transaction-mode pooler each of those may land on another server connection (and a SET then
    // stays there for other clients' transactions). So they use sessionDbUrl(), which must not be
    // the pooler's, whether or not this server migrates.
    if (dbPooler == DbPooler.TRANSACTION && migrationDbUrl == null) {
      throw new IllegalArgumentException(PREFIX + "DB_POOLER=transaction needs " + PREFIX + "MIGRATION_DB_URL, a direct"
          + " or session-mode URL: migrations, the vector index build and WatchConversations need a whole"
          + " PostgreSQL session, which a transaction-mode pooler does not give");
    }
    if (embeddingDimension < 1 || embeddingDimension > MAX_EMBEDDING_DIMENSION) {
      throw new IllegalArgumentException(PREFIX + "EMBEDDING_DIMENSION must be within 1.." + MAX_EMBEDDING_DIMENSION);
    }
    // pgjdbc runs its own start-up queries on every new connection under this timeout, and so
    // do the start-up checks: below this, no connection could serve a request.
    if (!statementTimeout.isZero() && statementTimeout.toMillis() < MIN_STATEMENT_TIMEOUT_MS) {
      throw new IllegalArgumentException(PREFIX + "DB_STATEMENT_TIMEOUT_MS must be 0 (none) or at least "
          + MIN_STATEMENT_TIMEOUT_MS + ", got " + statementTimeout.toMillis());
    }
    // A blocked writer must give up its connection (lock_timeout) before the statement timeout
    // would cancel it as a runaway; otherwise the lock bound never applies.
    if (!statementTimeout.isZero() && !lockTimeout.isZero() && lockTimeout.compareTo(statementTimeout) >= 0) {
      throw new IllegalArgumentException(PREFIX + "DB_LOCK_TIMEOUT_MS (" + lockTimeout.toMillis()
          + ") must be below " + PREFIX + "DB_STATEMENT_TIMEOUT_MS (" + statementTimeout.toMillis() + ")");
    }
  }

  /**
   * The URL for what needs a whole PostgreSQL session of its own (Flyway's and the vector index
   * build's session advisory locks and SET commands, LISTEN): {@code MIGRATION_DB_URL} when set (a
   * direct or session-mode URL beside a transaction-mode pooler, where it is required), else the
   * request URL.
   */
  public String sessionDbUrl() {
    return migrationDbUrl != null ? migrationDbUrl : dbUrl;
  }

  /** The smallest non-zero statement timeout: pgjdbc's connection set-up must fit under it. */
  public static final int MIN_STATEMENT_TIMEOUT_MS = 100;

  /** Reads the settings from {@code System.getenv()}. */
  public static Settings fromEnvironment() {
    return from(System.getenv());
  }

  /** Reads the settings from an environment map; unknown CONTEXT_MEMORY_* names are ignored. */
  public static Settings from(Map<String, String> env) {
    Reader r = new Reader(env);
    String dbUrl = r.string("DB_URL", null);
    if (dbUrl == null || dbUrl.isBlank()) {
      throw new IllegalArgumentException(
          PREFIX + "DB_URL is not set: give a jdbc:postgresql:// URL, or start through scripts/run,"
              + " which provisions a local database");
    }
    int cores = Runtime.getRuntime().availableProcessors();
    // HikariCP's pool-sizing rule of thumb: connections = 2 x database cores + effective spindles.
    // The default assumes the database runs on a host like this one (scripts/dev-db); set
    // CONTEXT_MEMORY_DB_POOL_SIZE from the real database host's cores in production.
    int poolSize = r.integer("DB_POOL_SIZE", cores * 2 + 1, 1, 1000);
    String host = r.string("HOST", "0.0.0.0");
    EmbeddingSettings embedding = EmbeddingSettings.read(r);
    return new Settings(
        host,
        r.integer("PORT", 50051, 0, 65535),
        dbUrl,
        r.string("DB_USER", ""),
        r.string("DB_PASSWORD", ""),
        DbPooler.valueOf(r.choice("DB_POOLER", "NONE", java.util.List.of("NONE", "SESSION", "TRANSACTION"))),
        r.string("MIGRATION_DB_URL", null),
        poolSize,
        Duration.ofMillis(r.integer("DB_CONNECTION_TIMEOUT_MS", 2000, 250, 600_000)),
        Duration.ofMillis(r.integer("DB_STATEMENT_TIMEOUT_MS", 15_000, 0, 3_600_000)),
        Duration.ofMillis(r.integer("DB_IDLE_IN_TRANSACTION_TIMEOUT_MS", 15_000, 0, 3_600_000)),
        r.bool("MIGRATE_ON_START", true),
        // The active model's; with EMBEDDER=local fixed by the model (EmbeddingSettings).
        embedding.dimension(),
        // Threads beyond the pool only queue on it; twice the pool keeps every connection busy
        // while other threads decode, validate and encode.
        r.integer("REQUEST_THREADS", Math.max(8, poolSize * 2), 1, 10_000),
        // gRPC's own default: a request of the documented maximum sizes fits (README "Limits").
        r.integer("MAX_INBOUND_MESSAGE_BYTES", 4 * 1024 * 1024, 1024, 256 * 1024 * 1024),
        Duration.ofSeconds(r.integer("SHUTDOWN_GRACE_SECONDS", 20, 0, 3600)),
        Duration.ofMillis(r.integer("HEALTH_CHECK_INTERVAL_MS", 2000, 100, 600_000)),
        r.string("DEFAULT_PHONE_REGION", "US").toUpperCase(java.util.Locale.ROOT),
        r.string("DEFAULT_TENANT", "default"),
        r.string("APPLICATION_NAME", "context-memory"),
        Duration.ofMillis(r.integer("MEMORY_SWEEP_INTERVAL_MS", 60_000, 100, 86_400_000)),
        r.integer("MEMORY_SWEEP_BATCH", 500, 1, 100_000),
        // Well under the statement timeout: a writer queued behind a held row lock gives its
        // connection back (ABORTED, retryable) instead of holding it for the caller's whole deadline.
        Duration.ofMillis(r.integer("DB_LOCK_TIMEOUT_MS", 2000, 0, 3_600_000)),
        // Calls without a deadline (or with a longer one) end here, with their SQL cancelled.
        Duration.ofMillis(r.integer("MAX_CALL_DEADLINE_MS", 60_000, 100, 3_600_000)),
        // Calls that may wait for a request thread; beyond that, new calls are shed at once. As
        // many as there are threads: an admitted call then waits at most one round of the calls
        // ahead of it (each bounded by the lock and connection timeouts), so it is answered before
        // a deadline of a few seconds instead of timing out in the queue. A deeper queue absorbs
        // bigger bursts but lets calls queue past their deadlines when the threads are stuck.
        r.integer("REQUEST_QUEUE", r.integer("REQUEST_THREADS", Math.max(8, poolSize * 2), 1, 10_000), 1, 100_000),
        Duration.ofMillis(r.integer("HEALTH_CHECK_TIMEOUT_MS", 1000, 100, 600_000)),
        // Once the next waiting call has waited this long, the threads are stuck (on locks, on the
        // pool): new calls are shed rather than queued behind it.
        Duration.ofMillis(r.integer("REQUEST_QUEUE_WAIT_MS", 1000, 1, 600_000)),

        r.string("PAGE_TOKEN_SECRET", null),
        // 0 keeps soft-deleted conversations until their customer is erased.
        Duration.ofSeconds(r.integer("DELETED_CONVERSATION_RETENTION_SECONDS", 30 * 86_400, 0, Integer.MAX_VALUE)),
        // A refresh reads every counted row (about 1.5 s per million messages): often enough for
        // dashboards, rare enough to cost the database little.
        Duration.ofSeconds(r.integer("USAGE_REFRESH_SECONDS", 300, 1, 86_400)),
        SecuritySettings.read(r, host),
        new Observability(
            r.string("METRICS_HOST", "127.0.0.1"),
            r.integer("METRICS_PORT", -1, 0, 65535),
            r.choice("ACCESS_LOG_LEVEL", "INFO", java.util.List.of("OFF", "ERROR", "WARN", "INFO", "DEBUG", "TRACE")),
            r.integer("ACCESS_LOG_SAMPLE_PERCENT", 100, 0, 100),
            otelVariables(env)),
        embedding,
        WatchSettings.read(r),
        new StandbyReads(
            readUrls(r.string("DB_READ_URL", "")),
            // A standby further behind than this is skipped for reads that carry no token.
            Duration.ofMillis(r.integer("DB_READ_MAX_STALENESS_MS", 1000, StandbyReads.MIN_STALENESS_MS, 3_600_000)),
            // A read with a token waits this long for a standby to replay the caller's write, then
            // goes to the primary: it holds a request thread meanwhile.
            Duration.ofMillis(r.integer("DB_READ_TOKEN_WAIT_MS", 50, 0, 10_000))),
        // The MCP Streamable HTTP endpoint (docs/mcp.md); -1 (unset) serves none, 0 any free port.
        r.integer("MCP_PORT", -1, 0, 65535));
  }

  /**
   * Reads on streaming-replication standbys (docs/scaling.md "Reads on standbys").
   *
   * @param urls the standbys' JDBC URLs; empty: every call goes to the primary and no consistency
   *     token is issued
   * @param maxStaleness how far behind a standby may be for a read without a token
   * @param tokenWait how long a read with a token waits for a standby to replay past it
   */
  public record StandbyReads(java.util.List<String> urls, Duration maxStaleness, Duration tokenWait) {
    /** Staleness is measured by a probe every {@code PROBE_INTERVAL_MS}; a bound below two probes is not one. */
    public static final int PROBE_INTERVAL_MS = 50;
    static final int MIN_STALENESS_MS = 2 * PROBE_INTERVAL_MS;

    public StandbyReads {
      urls = java.util.List.copyOf(urls);
      for (String u : urls) {
        if (!u.startsWith("jdbc:postgresql:")) {
          throw new IllegalArgumentException(PREFIX + "DB_READ_URL must list jdbc:postgresql: URLs, got " + redact(u));
        }
      }
    }

    public boolean enabled() {
      return !urls.isEmpty();
    }

    @Override
    public String toString() {
      return enabled() ? "StandbyReads[standbys=" + urls.size() + ", maxStaleness=" + maxStaleness + ", tokenWait="
          + tokenWait + "]" : "StandbyReads[off]";
    }
  }

  /**
   * Splits DB_READ_URL into URLs: separated by whitespace, or by a comma that starts the next
   * {@code jdbc:} URL (a comma inside one URL is pgjdbc's multi-host syntax and stays).
   */
  static java.util.List<String> readUrls(String value) {
    return java.util.Arrays.stream(value.trim().split("\\s+|,\\s*(?=jdbc:)"))
        .filter(u -> !u.isBlank()).toList();
  }

  /**
   * Metrics, access log and tracing settings (docs/observability.md).
   *
   * @param metricsPort the Prometheus endpoint's port; -1 (unset) serves no endpoint, 0 any free port
   * @param accessLogLevel the level of the one access-log line per RPC, or OFF
   * @param accessLogSamplePercent the share of successful calls that get an access-log line (failed
   *     calls always do)
   * @param otel the standard OTEL_* variables; tracing is on only when they name an exporter
   */
  public record Observability(String metricsHost, int metricsPort, String accessLogLevel,
      int accessLogSamplePercent, Map<String, String> otel) {
    public Observability {
      otel = Map.copyOf(otel);
    }

    @Override
    public String toString() {
      // OTEL_EXPORTER_OTLP_HEADERS may carry a collector's API key: print names only.
      return "Observability[metrics=" + (metricsPort < 0 ? "off" : metricsHost + ":" + metricsPort)
          + ", accessLog=" + accessLogLevel + "@" + accessLogSamplePercent + "%, otel=" + otel.keySet() + "]";
    }
  }

  private static Map<String, String> otelVariables(Map<String, String> env) {
    Map<String, String> otel = new java.util.TreeMap<>();
    env.forEach((k, v) -> {
      if (k.startsWith("OTEL_") && v != null && !v.isBlank()) {
        otel.put(k, v.trim());
      }
    });
    return otel;
  }

  @Override
  public String toString() {
    // Never print the password.
    return "Settings[host=" + host + ", port=" + port + ", dbUrl=" + redact(dbUrl)
        + ", dbPooler=" + dbPooler + (migrationDbUrl == null ? "" : ", migrationDbUrl=" + redact(migrationDbUrl))
        + ", dbPoolSize=" + dbPoolSize + ", requestThreads=" + requestThreads
        + ", requestQueue=" + requestQueue + ", requestQueueWait=" + requestQueueWait
        + ", statementTimeout=" + statementTimeout
        + ", lockTimeout=" + lockTimeout + ", maxCallDeadline=" + maxCallDeadline
        + ", migrateOnStart=" + migrateOnStart
        + ", " + embedding + ", auth=" + security.auth()
        + ", tls=" + security.tls() + ", " + observability + ", " + standbyReads
        + ", mcp=" + (mcpPort < 0 ? "off" : host + ":" + mcpPort) + "]";
  }

  /** A database URL fit for a log line: no password, in a query parameter or in user:password@. */
  public static String redact(String url) {
    return url.replaceAll("(?i)(password=)[^&]*", "$1***").replaceAll("(//[^/@:]*):[^/@]*@", "$1:***@");
  }

  record Reader(Map<String, String> env) {
    String string(String name, String fallback) {
      String v = env.get(PREFIX + name);
      return v == null || v.isEmpty() ? fallback : v.trim();
    }

    int integer(String name, int fallback, int min, int max) {
      String v = string(name, null);
      if (v == null) {
        return fallback;
      }
      try {
        int i = Integer.parseInt(v);
        if (i < min || i > max) {
          throw new IllegalArgumentException(PREFIX + name + " must be within " + min + ".." + max + ", got " + v);
        }
        return i;
      } catch (NumberFormatException e) {
        throw new IllegalArgumentException(PREFIX + name + " must be an integer, got '" + v + "'", e);
      }
    }

    String choice(String name, String fallback, java.util.List<String> allowed) {
      String v = string(name, fallback).toUpperCase(java.util.Locale.ROOT);
      if (!allowed.contains(v)) {
        throw new IllegalArgumentException(PREFIX + name + " must be one of " + allowed + ", got '" + v + "'");
      }
      return v;
    }

    boolean bool(String name, boolean fallback) {
      String v = string(name, null);
      if (v == null) {
        return fallback;
      }
      return switch (v.toLowerCase(java.util.Locale.ROOT)) {
        case "true", "1", "yes", "on" -> true;
        case "false", "0", "no", "off" -> false;
        default -> throw new IllegalArgumentException(PREFIX + name + " must be true or false, got '" + v + "'");
      };
    }
  }
}

package dev.contextmemory.loadtest;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The command line. See {@link #USAGE}.
 *
 * @param target host:port of a running server, or null to start one here
 * @param dbUrl with a target: the JDBC URL of that server's database (for the baselines and the
 *     post-set-up VACUUM ANALYZE; optional). Without one: the PostgreSQL cluster on which a fresh
 *     database is created for the server this run starts (required)
 * @param apiKey sent as {@code authorization: Bearer <key>} on every call ({@code --api-key}, else
 *     {@link HarnessChannel#API_KEY_ENV}), or null for none
 * @param serverEnv extra environment variables of the server this run starts ({@code --server-env})
 */
public record Options(
    String profile,
    String target,
    String dbUrl,
    Path serverJar,
    Path out,
    String tenant,
    double targetScale,
    List<String> overrides,
    Set<String> only,
    long seed,
    boolean keepDatabase,
    List<String> serverJavaOptions,
    String apiKey,
    Map<String, String> serverEnv,
    boolean compareAuth,
    boolean compareUsageRefresh,
    boolean compareEmbedder) {

  public static final String USAGE = """
      usage: loadtest [options]
        --profile ci|full|smoke     sizes, rates and durations (default ci)
        --target HOST:PORT          test a running server (default: start one here); several
                                    HOST:PORT,HOST:PORT: replicas of one database, called in turn
        --db-url JDBC_URL           without --target: the PostgreSQL cluster to create a fresh database on
                                    (required); with --target: that server's database, for the SQL baselines
        --server-jar PATH           the server's runnable jar (default server/target/context-memory-server-*-all.jar)
        --server-java-opt OPT       extra JVM option for the server this run starts (repeatable)
        --server-env NAME=VALUE     extra environment variable of the server this run starts (repeatable),
                                    e.g. CONTEXT_MEMORY_AUTH=api-key
        --api-key KEY               send "authorization: Bearer KEY" on every call (default: the
                                    CONTEXT_MEMORY_LOADTEST_API_KEY variable; unset: no header)
        --out DIR                   where report.json, report.html and server.log go (default loadtest/target)
        --tenant NAME               the server's tenant, for the SQL baselines (default "default")
        --target-scale F            multiply every p99 target by F (e.g. 0.001 to see the build fail)
        --override-target NAME=MS   set one scenario's p99 target (repeatable)
        --only NAME[,NAME...]       run only these scenarios
        --seed N                    data set and request seed (default 42)
        --keep-db                   keep the fresh database after the run (default: drop it)
        --compare-auth              without --target: also start a server without authentication on the same
                                    database and compare append_message and list_messages_20 p50 with and
                                    without API keys (the run's own server requires keys, made for the run)
        --compare-embedder          without --target, with --only naming the text-search scenarios
                                    (search_memories_text, write_searchable): also start a server with
                                    CONTEXT_MEMORY_EMBEDDER=none on the same database and compare text-only
                                    CreateMemory p50/p99 against the local model and none, alternating (issue 15:
                                    within 10 %)
        --compare-usage-refresh     with a database URL: also compare append_message p50 quiet and while the
                                    usage rollup is refreshed back to back, as the server does (JIT off) and
                                    with the default JIT (before) (issue 14: within 3 %)
      exit status: 0 every target met (skipped scenarios allowed), 1 a target missed, 2 usage or set-up error
      """;

  public static Options parse(String[] args) {
    String profile = "ci";
    String target = null;
    String dbUrl = null;
    Path jar = null;
    Path out = Path.of("loadtest", "target");
    String tenant = "default";
    double scale = 1;
    List<String> overrides = new ArrayList<>();
    Set<String> only = new LinkedHashSet<>();
    long seed = 42;
    boolean keep = false;
    boolean compareAuth = false;
    boolean compareUsageRefresh = false;
    boolean compareEmbedder = false;
    List<String> javaOpts = new ArrayList<>();
    String apiKey = System.getenv(HarnessChannel.API_KEY_ENV);
    Map<String, String> serverEnv = new LinkedHashMap<>();
    for (int i = 0; i < args.length; i++) {
      String a = args[i];
      String v = null;
      int eq = a.indexOf('=');
      if (a.startsWith("--") && eq > 0 && !a.equals("--keep-db") && !a.equals("--compare-auth")
          && !a.equals("--compare-usage-refresh") && !a.equals("--compare-embedder")) {
        v = a.substring(eq + 1);
        a = a.substring(0, eq);
      }
      switch (a) {
        case "--keep-db" -> keep = true;
        case "--compare-auth" -> compareAuth = true;
        case "--compare-usage-refresh" -> compareUsageRefresh = true;
        case "--compare-embedder" -> compareEmbedder = true;
        case "-h", "--help" -> throw new UsageException("");
        default -> {
          if (v == null) {
            if (i + 1 >= args.length) {
              throw new UsageException(a + " needs a value");
            }
            v = args[++i];
          }
          switch (a) {
            case "--profile" -> profile = v;
            case "--target" -> target = v;
            case "--db-url" -> dbUrl = v;
            case "--server-jar" -> jar = Path.of(v);
            case "--server-java-opt" -> javaOpts.add(v);
            case "--server-env" -> {
              int e = v.indexOf('=');
              if (e < 1) {
                throw new UsageException("--server-env wants NAME=VALUE, got " + v);
              }
              serverEnv.put(v.substring(0, e), v.substring(e + 1));
            }
            case "--api-key" -> apiKey = v;
            case "--out" -> out = Path.of(v);
            case "--tenant" -> tenant = v;
            case "--target-scale" -> scale = number(a, v);
            case "--override-target" -> overrides.add(v);
            case "--only" -> only.addAll(List.of(v.split(",")));
            case "--seed" -> seed = (long) number(a, v);
            default -> throw new UsageException("unknown option " + a);
          }
        }
      }
    }
    if (target != null && !target.matches("[^:,]+:\\d+(,[^:,]+:\\d+)*")) {
      throw new UsageException("--target wants HOST:PORT (or several, comma-separated), got " + target);
    }
    if (target == null && (dbUrl == null || dbUrl.isBlank())) {
      throw new UsageException("without --target, --db-url (the PostgreSQL cluster for a fresh database) is required");
    }
    for (String o : only) {
      if (!Targets.SCENARIOS.contains(o)) {
        throw new UsageException("--only: unknown scenario " + o + " (known: " + Targets.SCENARIOS + ")");
      }
    }
    if (compareEmbedder && (target != null || only.isEmpty()
        || !dev.contextmemory.loadtest.scenarios.Scenarios.EMBEDDER_SCENARIOS.containsAll(only))) {
      throw new UsageException("--compare-embedder starts its servers itself (no --target) and needs --only with"
          + " scenarios of " + dev.contextmemory.loadtest.scenarios.Scenarios.EMBEDDER_SCENARIOS);
    }
    return new Options(profile, target, dbUrl, jar, out, tenant, scale, List.copyOf(overrides), Set.copyOf(only), seed,
        keep, List.copyOf(javaOpts), apiKey == null || apiKey.isEmpty() ? null : apiKey,
        java.util.Collections.unmodifiableMap(serverEnv), compareAuth, compareUsageRefresh, compareEmbedder);
  }

  private static double number(String option, String v) {
    try {
      return Double.parseDouble(v);
    } catch (NumberFormatException e) {
      throw new UsageException(option + " wants a number, got " + v);
    }
  }

  /** A command-line mistake: the message, then the usage. */
  public static final class UsageException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public UsageException(String message) {
      super(message);
    }
  }
}

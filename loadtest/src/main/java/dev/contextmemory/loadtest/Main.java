package dev.contextmemory.loadtest;

import dev.contextmemory.loadtest.report.RunReport;
import io.grpc.ManagedChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * Command line entry point (see {@link Options#USAGE}); scripts/loadtest is the usual way in.
 * Exit status 0 when every target held, 1 when one was missed, 2 on a usage or set-up error.
 */
public final class Main {
  private Main() {}

  public static void main(String[] args) {
    int status;
    try {
      status = run(Options.parse(args));
    } catch (Options.UsageException e) {
      if (!e.getMessage().isEmpty()) {
        System.err.println("loadtest: " + e.getMessage());
      }
      System.err.print(Options.USAGE);
      status = 2;
    } catch (Exception e) {
      System.err.println("loadtest: error: " + e.getMessage());
      e.printStackTrace(System.err);
      status = 2;
    }
    System.exit(status);
  }

  static int run(Options o) throws Exception {
    Profile profile = Profile.named(o.profile());
    embedderRun(o.only()); // a usage error before anything starts
    Targets targets = Targets.adjusted(o.profile(), o.targetScale(), o.overrides());
    Files.createDirectories(o.out());
    LoadTest test = new LoadTest(profile, targets, o.only(), o.seed(), System.out)
        .comparingUsageRefresh(o.compareUsageRefresh());
    if (o.target() != null) {
      // HOST:PORT, or several separated by commas: replicas, called in turn.
      List<ManagedChannel> channels = new ArrayList<>();
      for (String t : o.target().split(",")) {
        String host = t.substring(0, t.lastIndexOf(':'));
        int port = Integer.parseInt(t.substring(t.lastIndexOf(':') + 1));
        channels.add(HarnessChannel.open(host, port, o.apiKey()));
      }
      ManagedChannel ch = channels.size() == 1 ? channels.get(0) : new RoundRobinChannel(channels);
      try {
        RunReport r = test.run(new LoadTest.Environment(ch, o.dbUrl(), false, o.tenant(), "--target " + o.target()
            + (o.dbUrl() == null ? " (no --db-url: no SQL baselines)" : ""), null, null));
        return finish(r, o.out());
      } finally {
        ch.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      }
    }
    Path jar = o.serverJar() != null ? o.serverJar() : ServerProcess.defaultJar();
    try (FreshDatabase db = FreshDatabase.create(o.dbUrl(), o.keepDatabase())) {
      Runtime.getRuntime().addShutdownHook(new Thread(db::close)); // also on Ctrl-C
      System.out.println("loadtest: fresh database " + db.name() + (o.keepDatabase() ? " (kept)" : "")
          + "; starting " + jar.getFileName() + " (log: " + o.out().resolve("server.log") + ")");
      long t0 = System.nanoTime();
      // The server authenticates as in production: it requires API keys, and the harness sends a
      // key made for this run (unless --server-env CONTEXT_MEMORY_AUTH=none or --api-key says otherwise).
      Map<String, String> env = new LinkedHashMap<>(o.serverEnv());
      env.putIfAbsent("CONTEXT_MEMORY_AUTH", "api-key");
      if (embedderRun(o.only()) || o.compareEmbedder()) {
        // The text-search scenarios measure the server's own model, each question embedded afresh.
        env.putIfAbsent("CONTEXT_MEMORY_EMBEDDER", "local");
        env.putIfAbsent("CONTEXT_MEMORY_EMBEDDING_QUERY_CACHE_SIZE", "0");
        System.out.println("loadtest: text-search scenarios: the server runs with CONTEXT_MEMORY_EMBEDDER="
            + env.get("CONTEXT_MEMORY_EMBEDDER") + " and a query-embedding cache of "
            + env.get("CONTEXT_MEMORY_EMBEDDING_QUERY_CACHE_SIZE"));
      }
      String key = o.apiKey();
      if (key == null && env.get("CONTEXT_MEMORY_AUTH").equals("api-key")) {
        key = ServerProcess.createKey(jar, o.serverJavaOptions(), db.url(), "default");
        System.out.println("loadtest: the server requires API keys; created one (read,write) for this run");
      }
      Map<String, String> noAuthEnv = new LinkedHashMap<>(env);
      noAuthEnv.put("CONTEXT_MEMORY_AUTH", "none");
      Map<String, String> noEmbedderEnv = new LinkedHashMap<>(env);
      noEmbedderEnv.put("CONTEXT_MEMORY_EMBEDDER", "none");
      try (ServerProcess server = ServerProcess.start(jar, db.url(), o.serverJavaOptions(), env, key,
              o.out().resolve("server.log"));
           ServerProcess noAuth = o.compareAuth() ? ServerProcess.start(jar, db.url(), o.serverJavaOptions(), noAuthEnv,
               null, o.out().resolve("server-noauth.log")) : null;
           ServerProcess noEmbedder = o.compareEmbedder() ? ServerProcess.start(jar, db.url(), o.serverJavaOptions(),
               noEmbedderEnv, key, o.out().resolve("server-noembedder.log")) : null) {
        Runtime.getRuntime().addShutdownHook(new Thread(server::close)); // also when the harness is killed
        if (noAuth != null) {
          Runtime.getRuntime().addShutdownHook(new Thread(noAuth::close));
        }
        if (noEmbedder != null) {
          Runtime.getRuntime().addShutdownHook(new Thread(noEmbedder::close));
        }
        System.out.printf("loadtest: server up on 127.0.0.1:%d in %.1f s%s%n", server.port(), (System.nanoTime() - t0) / 1e9,
            noAuth == null ? "" : "; without authentication on 127.0.0.1:" + noAuth.port() + ", for --compare-auth");
        ManagedChannel ch = HarnessChannel.open("127.0.0.1", server.port(), key);
        ManagedChannel off = noAuth == null ? null : HarnessChannel.open("127.0.0.1", noAuth.port(), null);
        ManagedChannel plain = noEmbedder == null ? null : HarnessChannel.open("127.0.0.1", noEmbedder.port(), key);
        test.comparingEmbedder(plain);
        try {
          RunReport r = test.run(new LoadTest.Environment(ch, db.url(), true, "default",
              "started here: " + jar.getFileName() + " on 127.0.0.1:" + server.port() + ", fresh database " + db.name(),
              off, server.metricsUrl()));
          return finish(r, o.out());
        } finally {
          ch.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
          if (off != null) {
            off.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
          }
          if (plain != null) {
            plain.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
          }
        }
      }
    }
  }

  /**
   * Whether --only names the scenarios that need the server's model (Scenarios.EMBEDDER_SCENARIOS);
   * they cannot share a run with the others (one model per deployment, see there).
   */
  static boolean embedderRun(java.util.Set<String> only) {
    boolean any = only.stream().anyMatch(dev.contextmemory.loadtest.scenarios.Scenarios.EMBEDDER_SCENARIOS::contains);
    if (any && !dev.contextmemory.loadtest.scenarios.Scenarios.EMBEDDER_SCENARIOS.containsAll(only)) {
      throw new Options.UsageException("--only: " + dev.contextmemory.loadtest.scenarios.Scenarios.EMBEDDER_SCENARIOS
          + " run on a server with the local model and cannot share a run with the other scenarios");
    }
    return any;
  }

  private static int finish(RunReport r, Path out) throws Exception {
    LoadTest.writeReports(r, out, System.out);
    return r.passed() ? 0 : 1;
  }
}

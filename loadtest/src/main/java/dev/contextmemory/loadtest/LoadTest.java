package dev.contextmemory.loadtest;

import dev.contextmemory.loadtest.data.DataSet;
import dev.contextmemory.loadtest.data.FactSetup;
import dev.contextmemory.loadtest.data.Facts;
import dev.contextmemory.loadtest.data.MemoryCopy;
import dev.contextmemory.loadtest.data.Setup;
import dev.contextmemory.loadtest.dsl.Assertion;
import dev.contextmemory.loadtest.dsl.Engine;
import dev.contextmemory.loadtest.dsl.Injection;
import dev.contextmemory.loadtest.dsl.RunResult;
import dev.contextmemory.loadtest.dsl.Scenario;
import dev.contextmemory.loadtest.dsl.Summary;
import dev.contextmemory.loadtest.report.ConsoleReport;
import dev.contextmemory.loadtest.report.Html;
import dev.contextmemory.loadtest.report.JsonReport;
import dev.contextmemory.loadtest.report.Outcome;
import dev.contextmemory.loadtest.report.RunReport;
import dev.contextmemory.loadtest.report.ServerLatency;
import dev.contextmemory.loadtest.scenarios.Baselines;
import dev.contextmemory.loadtest.scenarios.SameStatementFloors;
import dev.contextmemory.loadtest.scenarios.Scenarios;
import dev.contextmemory.loadtest.scenarios.TopHitQuality;
import dev.contextmemory.loadtest.scenarios.WatchLatency;
import dev.contextmemory.loadtest.scenarios.WriteSearchable;
import dev.contextmemory.v1.ConversationServiceGrpc;
import dev.contextmemory.v1.CustomerServiceGrpc;
import dev.contextmemory.v1.MemoryServiceGrpc;
import io.grpc.Channel;
import io.grpc.MethodDescriptor;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * One run: probe which RPCs exist, set up the data set through the API, VACUUM ANALYZE after a
 * bulk load, time the SQL baselines, run each scenario (warm-up, then measured), judge it, measure
 * recall, search capacity (profile full), and assemble the {@link RunReport}.
 */
public final class LoadTest {
  /** Every RPC the set-up and the scenarios call, probed up front. */
  static final List<MethodDescriptor<?, ?>> METHODS = List.of(
      CustomerServiceGrpc.getUpsertCustomerMethod(),
      ConversationServiceGrpc.getGetOrCreateOpenConversationMethod(),
      ConversationServiceGrpc.getAppendMessageMethod(),
      ConversationServiceGrpc.getAppendMessagesMethod(),
      ConversationServiceGrpc.getListMessagesMethod(),
      ConversationServiceGrpc.getSearchMessagesMethod(),
      ConversationServiceGrpc.getListConversationsMethod(),
      ConversationServiceGrpc.getCloseConversationMethod(),
      ConversationServiceGrpc.getGetUsageMetricsMethod(),
      MemoryServiceGrpc.getUpsertMemoryMethod(),
      MemoryServiceGrpc.getListMemoriesMethod(),
      MemoryServiceGrpc.getSearchMemoriesMethod(),
      MemoryServiceGrpc.getFetchContextMethod(),
      MemoryServiceGrpc.getCreateMemoryMethod(),
      MemoryServiceGrpc.getCreateMemoriesMethod());

  /** The recall gate of both memory searches (issue 13): mean recall@10 of the sampled answers. */
  static final double MIN_RECALL_AT_10 = 0.95;
  /** Deadline of every call the harness makes. */
  private static final Duration CALL_TIMEOUT = Duration.ofSeconds(10);
  /** Sessions in flight at most before new ones are dropped (and counted as errors). */
  private static final int MAX_IN_FLIGHT = 5_000;

  /**
   * Where the run goes.
   *
   * @param dbUrl JDBC URL of the server's database, or null (then no baselines, no VACUUM)
   * @param ownsDatabase the harness created the database for this run, so the set-up may take the
   *     bulk-load path (drop and rebuild the vector index around the memories' load)
   * @param metricsUrl the server's Prometheus endpoint, scraped around each scenario for its own
   *     latency histograms; null when unknown (--target)
   */
  public record Environment(Channel channel, String dbUrl, boolean ownsDatabase, String tenant, String server,
      Channel withoutAuth, java.net.URI metricsUrl) {}

  private final Profile profile;
  private final Targets targets;
  private final Set<String> only;
  private final long seed;
  private final PrintStream log;
  /** Per scenario (and second run), the server's own histograms of its RPCs; filled by {@link #measure}. */
  private final Map<String, List<ServerLatency>> serverSide = new java.util.LinkedHashMap<>();
  private java.net.URI metricsUrl;
  private boolean compareUsageRefresh;
  private Channel withoutEmbedder;
  /** The text-search data set of this run (search_memories_text), or null. */
  private FactSetup.Loaded facts;
  /** Why it could not be written (the server does not embed), or null. */
  private String factsMissing;

  public LoadTest(Profile profile, Targets targets, Set<String> only, long seed, PrintStream log) {
    this.profile = profile;
    this.targets = targets;
    this.only = only;
    this.seed = seed;
    this.log = log;
  }

  /**
   * Also runs {@link EmbedderComparison} against this channel: a server with
   * CONTEXT_MEMORY_EMBEDDER=none on the run's database (null: not run).
   */
  public LoadTest comparingEmbedder(Channel withoutEmbedder) {
    this.withoutEmbedder = withoutEmbedder;
    return this;
  }

  /** Also runs {@link UsageRefreshComparison} (needs the database URL). */
  public LoadTest comparingUsageRefresh(boolean on) {
    this.compareUsageRefresh = on;
    return this;
  }

  public RunReport run(Environment env) throws SQLException {
    Instant started = Instant.now();
    metricsUrl = env.metricsUrl();
    serverSide.clear();
    long t0 = System.nanoTime();
    DataSet data = new DataSet(profile.sizes(), seed);
    var sizes = profile.sizes();
    boolean textSearchOnly = !only.isEmpty() && Scenarios.EMBEDDER_SCENARIOS.containsAll(only);
    String dataSet = textSearchOnly ? String.format(Locale.ROOT,
        "%,d customers, %,d memories of templated customer facts (vectors by the server's model)",
        sizes.customers(), sizes.memories()) : String.format(Locale.ROOT,
        "%,d customers, %,d conversations, %,d messages, %,d memories (%d-dim embeddings in %d clusters)",
        sizes.customers(), sizes.conversations(), sizes.messages(), sizes.memories(), sizes.dimension(),
        sizes.clusters());
    log.println("loadtest: profile " + profile.name() + "; " + dataSet);

    Set<String> missing = Probe.unimplemented(env.channel(), METHODS);
    if (!missing.isEmpty()) {
      log.println("loadtest: not implemented by the server yet (their scenarios are skipped): " + missing);
    }
    boolean conversations = implemented(missing, ConversationServiceGrpc.getGetOrCreateOpenConversationMethod(),
        ConversationServiceGrpc.getAppendMessagesMethod());
    boolean memories = implemented(missing, MemoryServiceGrpc.getUpsertMemoryMethod(),
        MemoryServiceGrpc.getListMemoriesMethod());
    // Only the data the selected scenarios read (--only) is set up.
    Scenarios scenarios = new Scenarios(profile, targets, data);
    List<Scenarios.Definition> definitions = scenarios.all();
    Set<String> needed = new java.util.HashSet<>();
    definitions.stream().filter(d -> only.isEmpty() ? !Scenarios.ON_DEMAND.contains(d.name()) : only.contains(d.name()))
        .forEach(d -> needed.addAll(d.needs()));
    Setup.Result setup = new Setup(env.channel(), data, profile.setupConcurrency(), CALL_TIMEOUT, log,
        env.ownsDatabase() && env.dbUrl() != null ? new VectorIndexes(env.dbUrl(), log) : null)
        .run(conversations && needed.contains("conversations"), memories && needed.contains("memories"));
    facts = null;
    factsMissing = null;
    if (needed.contains("facts") && implemented(missing, MemoryServiceGrpc.getCreateMemoriesMethod())) {
      try {
        facts = new FactSetup(env.channel(), data, new Facts(seed), setup.customerIds(), CALL_TIMEOUT, log,
            env.ownsDatabase() && env.dbUrl() != null ? new VectorIndexes(env.dbUrl(), log) : null).run();
        List<Setup.Phase> phases = new ArrayList<>(setup.phases());
        phases.addAll(facts.phases());
        setup = new Setup.Result(setup.customerIds(), setup.conversationIds(), setup.memoryIds(),
            setup.baselineConversationId(), List.copyOf(phases));
      } catch (FactSetup.NoEmbedder e) {
        factsMissing = e.getMessage();
        log.println("set-up: " + factsMissing);
      }
    }
    scenarios = new Scenarios(profile, targets, data, facts);
    definitions = scenarios.all();

    Double vacuum = null;
    Map<String, Baselines.Baseline> floors = Map.of();
    Map<String, Baselines.Baseline> sameStatement = Map.of();
    Map<String, Baselines.Baseline> bareTable = Map.of();
    Baselines baselines = null;
    if (env.dbUrl() != null) {
      if (setup.phases().stream().anyMatch(p -> p.written() > 0)) {
        vacuum = vacuumAnalyze(env.dbUrl(), "");
      }
      refreshUsageRollup(env.dbUrl());
      baselines = new Baselines(env.dbUrl(), env.tenant(), data, setup, profile.baselineIterations(), log);
      floors = baselines.run();
      bareTable = baselines.bareTable();
      sameStatement = new SameStatementFloors(env.dbUrl(), env.tenant(), data, setup, profile, log)
          .withFacts(facts)
          .run(name -> only.isEmpty() || only.contains(name));
      // The floors wrote too (the 100-row floor alone up to 100,000 messages into the baseline
      // conversation): vacuum and checkpoint once more, so autovacuum and the checkpointer do not
      // pick that up during the first scenarios. Not counted in the set-up's time.
      vacuumAnalyze(env.dbUrl(), "after the floors' writes");

    }
    MemoryCopy copy = setup.hasMemories() ? new MemoryCopy(data, setup.memoryIds()) : null;
    if (baselines != null && copy != null) {
      // The bare k-NN's own recall, so the report can set the server's recall and latency beside it.
      Map<String, Baselines.Baseline> scored = new java.util.LinkedHashMap<>(floors);
      baselines.knnRecall(copy).forEach((name, recall) -> scored.computeIfPresent(name, (n, b) -> b.withRecall(recall)));
      floors = scored;
      scored.forEach((name, b) -> {
        if (b.recallAt10() != null) {
          log.printf(Locale.ROOT, "baseline: %-25s recall@10 %.3f%n", name, b.recallAt10());
        }
      });
    }

    List<Outcome> outcomes = new ArrayList<>();
    RunResult floor = null;
    try (Engine engine = new Engine(env.channel(), CALL_TIMEOUT, MAX_IN_FLIGHT, seed)) {
      List<Planned> plan = plan(definitions, setup, missing);
      warmUp(engine, plan);
      floor = transportFloor(engine, scenarios.transportFloor());
      for (Planned p : plan) {
        Scenarios.Definition d = p.definition();
        Scenario scenario = p.scenario();
        Double target = targets.p99Ms(d.name());
        if (scenario == null) {
          outcomes.add(Outcome.skipped(d.name(), target, p.skipped()));
          continue;
        }
        Outcome o = measure(engine, d, scenario, target, floors.get(d.name()), copy, 1);
        if (o.status() == Outcome.Status.FAILED) {
          // Issue 13: a missed target is measured once more, right away; the build fails only when
          // both runs miss, and both are reported, so a pass on the second run is visible.
          log.printf(Locale.ROOT, "scenario: %s missed %s; measuring it once more%n", d.name(), o.missed());
          o = measure(engine, d, scenario, target, floors.get(d.name()), copy, 2).withFirstRun(o);
        }
        outcomes.add(o);
      }
      if (env.withoutAuth() != null) {
        try (Engine off = new Engine(env.withoutAuth(), CALL_TIMEOUT, MAX_IN_FLIGHT, seed + 1)) {
          AuthComparison.run(engine, off, plan.stream().filter(p -> p.scenario() != null)
              .map(Planned::scenario).toList(), log);
        }
      }
      if (withoutEmbedder != null) {
        try (Engine off = new Engine(withoutEmbedder, CALL_TIMEOUT, MAX_IN_FLIGHT, seed + 2)) {
          EmbedderComparison.run(engine, env.metricsUrl(), off, scenarios.createMemoryText(setup), log);
        }
      }
      if (compareUsageRefresh && env.dbUrl() != null) {
        UsageRefreshComparison.run(engine, plan.stream().filter(p -> p.scenario() != null)
            .map(Planned::scenario).toList(), env.dbUrl(), log);
      }
      if (profile.capacity() != null) {
        List<Outcome> searched = new ArrayList<>();
        for (Outcome o : outcomes) {
          searched.add(o.run() == null ? o : o.withCapacity(capacity(engine, env, o, data, setup)));
        }
        outcomes = searched;
      }
    }
    // In the report's order (Targets.SCENARIOS): write_searchable, then watch_latency.
    outcomes.add(only.contains("write_searchable") ? writeSearchable(env)
        : Outcome.skipped("write_searchable", targets.p99Ms("write_searchable"),
            only.isEmpty() ? "on demand: name it in --only" : "not selected (--only)"));
    if (only.isEmpty() || only.contains("watch_latency")) {
      outcomes.add(watchLatency(env));
    }
    return new RunReport(profile.name(), started, env.server(), dataSet, targets.toString(), targets.adjusted(),
        setup.phases(), vacuum, floor == null ? null : floorLine(floor), outcomes, (System.nanoTime() - t0) / 1e9,
        floor == null ? null : floor.summary(), sameStatement, bareTable, serverSide);
  }

  /**
   * watch_latency runs outside the engine (its measure is stream events, not calls): 200 appends/s
   * with 50 streams (smoke: 50/s, 10 streams), over the profile's warm-up and measured durations.
   */
  private Outcome watchLatency(Environment env) {
    boolean smoke = profile.name().equals("smoke");
    try {
      return WatchLatency.run(env.channel(), smoke ? 50 : 200, smoke ? 10 : 50, profile.warmUp(), profile.measure(),
          targets.p99Ms("watch_latency"), log);
    } catch (io.grpc.StatusRuntimeException e) {
      if (e.getStatus().getCode() == io.grpc.Status.Code.UNIMPLEMENTED) {
        return Outcome.skipped("watch_latency", targets.p99Ms("watch_latency"), "UNIMPLEMENTED: WatchConversations");
      }
      throw e;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return Outcome.skipped("watch_latency", targets.p99Ms("watch_latency"), "interrupted");
    }
  }

  /** write_searchable (on demand) runs outside the engine: its measure is a poll seeing the write embedded. */
  private Outcome writeSearchable(Environment env) {
    log.printf(Locale.ROOT, "scenario: write_searchable (%.0f memories/s as text) ...%n",
        profile.rate("write_searchable"));
    try {
      return WriteSearchable.run(env.channel(), profile.rate("write_searchable"), profile.warmUp(), profile.measure(),
          targets.p99Ms("write_searchable"), seed, log);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return Outcome.skipped("write_searchable", targets.p99Ms("write_searchable"), "interrupted");
    }
  }

  /** One measured run of a scenario (attempt 1, or 2 after a miss), judged; recall from this run's answers only. */
  private Outcome measure(Engine engine, Scenarios.Definition d, Scenario scenario, Double target,
      Baselines.Baseline floor, MemoryCopy copy, int attempt) {
    log.printf(Locale.ROOT, "scenario: %s (%s)%s ...%n", d.name(), scenario.injection().describe(),
        attempt > 1 ? ", run " + attempt : "");
    if (d.recall() != null) {
      d.recall().clear(); // the warm-up pass's and an earlier run's answers are not this run's
    }
    if (d.quality() != null) {
      d.quality().clear();
    }
    String[] before = new String[1];
    // Scraped after the scenario's own warm-up, so the server's figures cover the measured calls.
    RunResult run = engine.run(scenario, () -> {
      // The scenario's own warm-up has just ended: only the measured calls' answers are judged.
      if (d.recall() != null) {
        d.recall().clear();
      }
      if (d.quality() != null) {
        d.quality().clear();
      }
      before[0] = ServerLatency.scrape(metricsUrl);
      if (before[0] != null) {
        // A scrape takes the server several ms (6 to 15 ms by curl against an idle server here):
        // let it end before the measured calls start, not in their first milliseconds.
        sleepQuietly(100);
      }
    });
    if (before[0] != null) {
      sleepQuietly(250); // the server counts a call when its stream closes, just after the client got the answer
    }
    serverSide.put(attempt > 1 ? d.name() + " (run " + attempt + ")" : d.name(),
        ServerLatency.between(before[0], ServerLatency.scrape(metricsUrl), scenario.methods()));
    Outcome o = judge(scenario, run, target, floor,
        d.recall() == null || copy == null ? null : d.recall().recallAt(Scenarios.K, copy), d.quality());
    log.printf(Locale.ROOT, "scenario: %s %s: p50 %.3f ms, p99 %.3f ms, %d/%d errors%n", d.name(), o.status(),
        run.summary().p50Ms(), run.summary().p99Ms(), run.summary().errors(), run.summary().requests());
    if (d.quality() != null) {
      log.printf(Locale.ROOT, "scenario: %s quality: %s: %s%n", d.name(), d.quality().describe(),
          d.quality().measured());
    }
    return o;
  }

  /** A scenario of the run: built, or skipped for the reason given. */
  private record Planned(Scenarios.Definition definition, Scenario scenario, String skipped) {}

  /** Decides, once, which scenarios run (built) and why the others are skipped. */
  private List<Planned> plan(List<Scenarios.Definition> definitions, Setup.Result setup, Set<String> missing) {
    List<Planned> plan = new ArrayList<>();
    for (Scenarios.Definition d : definitions) {
      if (!only.isEmpty() && !only.contains(d.name())) {
        plan.add(new Planned(d, null, "not selected (--only)"));
        continue;
      }
      if (Scenarios.ON_DEMAND.contains(d.name()) && !only.contains(d.name())) {
        plan.add(new Planned(d, null, "on demand: name it in --only"));
        continue;
      }
      if (d.needs().contains("facts") && facts == null) {
        plan.add(new Planned(d, null, factsMissing != null ? factsMissing
            : "its data could not be set up: CreateMemories answers UNIMPLEMENTED"));
        continue;
      }
      if (d.needs().contains("conversations") && !setup.hasConversations()
          || d.needs().contains("memories") && !setup.hasMemories()) {
        plan.add(new Planned(d, null, "its data could not be set up: "
            + (setup.hasConversations() ? "MemoryService" : "ConversationService") + " answers UNIMPLEMENTED"));
        continue;
      }
      Scenario scenario = d.build().apply(setup);
      Set<String> absent = new java.util.LinkedHashSet<>(scenario.methods());
      absent.retainAll(missing);
      plan.add(absent.isEmpty() ? new Planned(d, scenario, null)
          : new Planned(d, null, "UNIMPLEMENTED: " + String.join(", ", absent)));
    }
    return plan;
  }

  /**
   * Runs the warm-up of every scenario that will be measured, once, before any is measured: the
   * server and this harness are fresh JVMs, and until the JIT has compiled the paths of every RPC
   * (tens of seconds of compiler threads on 2 cores) the first scenarios would measure the
   * compiler, not the server. The target is a steady-state promise; each scenario still warms up
   * again right before its own measurement.
   */
  private void warmUp(Engine engine, List<Planned> plan) {
    long t0 = System.nanoTime();
    for (Planned p : plan) {
      if (p.scenario() != null && p.scenario().warmUp().isPresent()) {
        engine.run(p.scenario(), p.scenario().warmUp().get());
      }
    }
    // The server's metrics are scraped before and after every measured run. Its first scrape
    // compiles the exposition path: with -Xlog:jit+compilation, 231 compilations in the second
    // after it, at the start of the first measured window (2026-11-30). Scraped here, it is warm.
    for (int i = 0; i < 3; i++) {
      ServerLatency.scrape(metricsUrl);
    }
    log.printf(Locale.ROOT, "warm-up: every selected scenario once, %.1f s%n", (System.nanoTime() - t0) / 1e9);
  }

  /** Times the transport floor; a server without the health service just has none in the report (null). */
  private RunResult transportFloor(Engine engine, Scenario floor) {
    log.printf(Locale.ROOT, "floor: %s (%s) ...%n", floor.name(), floor.injection().describe());
    RunResult run = engine.run(floor);
    if (run.summary().errors() > 0) {
      log.println("floor: Health/Check failed, no transport floor (" + run.summary().errors() + " errors)");
      return null;
    }
    log.println("floor: " + floorLine(run));
    return run;
  }

  private static String floorLine(RunResult run) {
    Summary s = run.summary();
    return String.format(Locale.ROOT,
        "gRPC Health/Check (no database) at %s: p50 %.3f ms, p95 %.3f ms, p99 %.3f ms, max %.3f ms;"
            + " every scenario's latency includes this", run.injection(), s.p50Ms(), s.p95Ms(), s.p99Ms(), s.maxMs());
  }

  private static boolean implemented(Set<String> missing, MethodDescriptor<?, ?>... methods) {
    for (MethodDescriptor<?, ?> m : methods) {
      if (missing.contains(m.getFullMethodName())) {
        return false;
      }
    }
    return true;
  }

  private Outcome judge(Scenario scenario, RunResult run, Double target, Baselines.Baseline floor, Double recall,
      TopHitQuality quality) {
    if (run.unimplemented().isPresent()) {
      return new Outcome(scenario.name(), Outcome.Status.SKIPPED, "UNIMPLEMENTED: " + run.unimplemented().get(),
          target, null, List.of(), null, floor, null);
    }
    List<Outcome.Verdict> verdicts = new ArrayList<>();
    boolean ok = true;
    for (Assertion a : scenario.assertions()) {
      boolean holds = a.holds(run.summary());
      ok &= holds;
      verdicts.add(new Outcome.Verdict(a.describe(), a.measured(run.summary()), holds));
    }
    if (recall != null) {
      boolean holds = recall >= MIN_RECALL_AT_10;
      ok &= holds;
      verdicts.add(new Outcome.Verdict(String.format(Locale.ROOT, "recall@10 >= %.2f", MIN_RECALL_AT_10),
          String.format(Locale.ROOT, "recall@10 = %.3f", recall), holds));
    }
    if (quality != null && quality.share() != null) {
      boolean holds = quality.share() >= quality.floor();
      ok &= holds;
      verdicts.add(new Outcome.Verdict(quality.describe(), quality.measured(), holds));
    }
    String note = run.dropped() > 0 ? run.dropped() + " sessions dropped: more than " + MAX_IN_FLIGHT + " in flight" : "";
    return new Outcome(scenario.name(), ok ? Outcome.Status.PASSED : Outcome.Status.FAILED, note, target, run,
        verdicts, recall, floor, null);
  }

  /**
   * The scenario's capacity over gRPC (start at half the profile's rate), and, where the load test
   * times the server's own statement for it, that statement's capacity over JDBC found the same
   * way on the same database: their ratio is how much of what PostgreSQL can take the server
   * passes on (issue 13: the goal is at least 0.5 for AppendMessage).
   */
  private Outcome.Capacity capacity(Engine engine, Environment env, Outcome o, DataSet data, Setup.Result setup) {
    Profile.Capacity cap = profile.capacity();
    Scenario base = new Scenarios(profile, targets, data, facts).all().stream().filter(d -> d.name().equals(o.name()))
        .findFirst().orElseThrow().build().apply(setup);
    double start = profile.rate(o.name()) / 2;
    Outcome.Capacity server = CapacitySearch.run(o.name(), cap, start, rate -> {
      Scenario s = base.withInjection(Injection.constantRate(rate, cap.warmUp()), Injection.constantRate(rate, cap.step()));
      RunResult run = engine.run(s);
      Summary sum = run.summary();
      String why = run.unimplemented().isPresent() ? "UNIMPLEMENTED"
          : CapacitySearch.broke(sum.p99Ms(), o.targetP99Ms(), sum.requests(), sum.errors(),
              String.valueOf(sum.errorsByCode()), profile.maxErrorRate(), rate * cap.step().toNanos() / 1e9);
      return new Outcome.CapacityStep(rate, sum, why == null, why == null ? "" : why);
    }, log);
    if (env.dbUrl() == null || !SameStatementFloors.timesStatementOf(o.name())) {
      return server;
    }
    Outcome.Capacity jdbc = new SameStatementFloors(env.dbUrl(), env.tenant(), data, setup, profile, log)
        .withFacts(facts).capacity(o.name(), o.targetP99Ms(), start);
    return server.withSameStatement(jdbc);
  }

  /**
   * After a bulk load the planner's statistics are stale, the visibility map empty and the
   * buffers dirty; an operator runs VACUUM ANALYZE after loading, and the harness does that and a
   * CHECKPOINT (timed, reported with the set-up), so the first scenario does not pay for the load.
   */
  private double vacuumAnalyze(String dbUrl, String when) throws SQLException {
    long t0 = System.nanoTime();
    try (Connection c = DriverManager.getConnection(dbUrl); Statement s = c.createStatement()) {
      s.execute("VACUUM (ANALYZE) customers, conversations, messages, memories");
      try {
        // Flush the load's dirty pages now, not during the first measured scenario.
        s.execute("CHECKPOINT");
      } catch (SQLException e) {
        log.println("set-up: CHECKPOINT not allowed for this user (" + e.getMessage().strip() + "); skipped");
      }
    }
    double sec = (System.nanoTime() - t0) / 1e9;
    log.printf(Locale.ROOT, "set-up: VACUUM ANALYZE + CHECKPOINT%s %.1f s%n", when.isEmpty() ? "" : " " + when, sec);
    return sec;
  }

  /**
   * GetUsageMetrics reads a rollup the server refreshes every few minutes; after the load, the
   * harness refreshes it once (timed), so usage_metrics reads the whole data set's figures rather
   * than whatever the last scheduled refresh saw. What a refresh costs is in the log.
   */
  private void refreshUsageRollup(String dbUrl) {
    long t0 = System.nanoTime();
    try (Connection c = DriverManager.getConnection(dbUrl); Statement s = c.createStatement()) {
      s.execute("SET jit = off"); // as the server's refresh (UsageStore.refresh)
      s.execute("REFRESH MATERIALIZED VIEW CONCURRENTLY usage_hourly");
      s.execute("REFRESH MATERIALIZED VIEW CONCURRENTLY usage_daily");
      s.execute("UPDATE usage_rollup_state SET refreshed_at = now()");
    } catch (SQLException e) {
      log.println("set-up: usage rollup not refreshed (" + e.getMessage().strip() + ")");
      return;
    }
    log.printf(Locale.ROOT, "set-up: usage rollup refresh %.1f s%n", (System.nanoTime() - t0) / 1e9);
  }

  private static void sleepQuietly(long ms) {
    try {
      Thread.sleep(ms);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  /**
   * Writes report.json and report.html into {@code dir}, and the server's histogram lines each
   * scenario's server-side figures come from into {@code dir/server-metrics/}; prints the console
   * tables.
   */
  public static void writeReports(RunReport r, Path dir, PrintStream console) throws IOException {
    Files.createDirectories(dir);
    for (var e : r.serverLatency().entrySet()) {
      if (e.getValue().isEmpty()) {
        continue;
      }
      Path metrics = Files.createDirectories(dir.resolve("server-metrics"));
      StringBuilder before = new StringBuilder();
      StringBuilder after = new StringBuilder();
      e.getValue().forEach(l -> {
        before.append(l.before());
        after.append(l.after());
      });
      Files.writeString(metrics.resolve(e.getKey() + ".before.prom"), before, StandardCharsets.UTF_8);
      Files.writeString(metrics.resolve(e.getKey() + ".after.prom"), after, StandardCharsets.UTF_8);
    }
    Files.writeString(dir.resolve("report.json"), JsonReport.render(r), StandardCharsets.UTF_8);
    Files.writeString(dir.resolve("report.html"), Html.render(r), StandardCharsets.UTF_8);
    ConsoleReport.print(r, console);
    console.println("reports: " + dir.resolve("report.json") + ", " + dir.resolve("report.html"));
  }
}

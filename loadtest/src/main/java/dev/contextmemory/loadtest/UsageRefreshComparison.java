package dev.contextmemory.loadtest;

import dev.contextmemory.loadtest.dsl.Engine;
import dev.contextmemory.loadtest.dsl.Scenario;
import java.io.PrintStream;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Issue 14: GetUsageMetrics must not make AppendMessage measurably slower (p50 within 3 % in the
 * same run). Its rollup adds nothing to an append; what it adds to the database is the scheduled
 * refresh. So append_message runs alternately quiet, while the harness refreshes the rollup back
 * to back as the server does (JIT off, UsageStore.refresh), and while it refreshes with the
 * session's default JIT (what the server did before), and the mean p50 of each side is printed
 * with its difference from quiet. Back to back is the worst case: the server refreshes once every
 * CONTEXT_MEMORY_USAGE_REFRESH_SECONDS (300 s by default). Printed, not gated, like --compare-auth:
 * two runs of the same server on a shared 2-core machine differ by more than 3 %.
 */
final class UsageRefreshComparison {
  static final String SCENARIO = "append_message";
  private static final int ROUNDS = 2;

  private UsageRefreshComparison() {}

  static void run(Engine engine, List<Scenario> scenarios, String dbUrl, PrintStream log) {
    for (Scenario s : scenarios) {
      if (!s.name().equals(SCENARIO)) {
        continue;
      }
      double[] quiet = new double[ROUNDS];
      double[] busy = new double[ROUNDS];
      double[] busyJit = new double[ROUNDS];
      int[] refreshes = new int[2];
      for (int i = 0; i < ROUNDS; i++) {
        quiet[i] = engine.run(s).summary().p50Ms();
        busy[i] = whileRefreshing(engine, s, dbUrl, false, refreshes, log);
        busyJit[i] = whileRefreshing(engine, s, dbUrl, true, refreshes, log);
      }
      double q = (quiet[0] + quiet[1]) / 2;
      double b = (busy[0] + busy[1]) / 2;
      double j = (busyJit[0] + busyJit[1]) / 2;
      log.printf(Locale.ROOT, "usage refresh: %s p50 quiet %.3f ms, during back-to-back rollup refreshes %.3f ms"
          + " (%+.1f %%; %d refreshes), with the default JIT (before) %.3f ms (%+.1f %%; %d refreshes);"
          + " runs quiet [%.3f, %.3f], busy [%.3f, %.3f], busy with JIT [%.3f, %.3f]%n", s.name(), q, b,
          100 * (b - q) / q, refreshes[0], j, 100 * (j - q) / q, refreshes[1], quiet[0], quiet[1], busy[0], busy[1],
          busyJit[0], busyJit[1]);
    }
  }

  private static double whileRefreshing(Engine engine, Scenario s, String dbUrl, boolean jit, int[] refreshes,
      PrintStream log) {
    AtomicBoolean stop = new AtomicBoolean();
    AtomicInteger done = new AtomicInteger();
    Thread refresher = new Thread(() -> refreshUntil(dbUrl, jit, stop, done, log), "usage-refresh-load");
    refresher.start();
    try {
      return engine.run(s).summary().p50Ms();
    } finally {
      stop.set(true);
      try {
        refresher.join();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
      refreshes[jit ? 1 : 0] += done.get();
    }
  }

  private static void refreshUntil(String dbUrl, boolean jit, AtomicBoolean stop, AtomicInteger done,
      PrintStream log) {
    try (Connection c = DriverManager.getConnection(dbUrl); Statement st = c.createStatement()) {
      if (!jit) {
        st.execute("SET jit = off"); // what the server's refresh does (UsageStore.refresh)
      }
      while (!stop.get()) {
        st.execute("REFRESH MATERIALIZED VIEW CONCURRENTLY usage_hourly");
        st.execute("REFRESH MATERIALIZED VIEW CONCURRENTLY usage_daily");
        done.incrementAndGet();
      }
    } catch (SQLException e) {
      log.println("usage refresh: the comparison's refreshes failed: " + e.getMessage().strip());
    }
  }
}

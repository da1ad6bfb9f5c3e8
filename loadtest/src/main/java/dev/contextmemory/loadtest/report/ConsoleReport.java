package dev.contextmemory.loadtest.report;

import dev.contextmemory.loadtest.data.Setup;
import dev.contextmemory.loadtest.dsl.Summary;
import java.io.PrintStream;
import java.util.Locale;
import java.util.stream.Collectors;

/** The Gatling-like tables printed at the end of a run. Latencies in milliseconds. */
public final class ConsoleReport {
  private static final String ROW = "%-36s %-16s %8s %6s %8s %8s %8s %8s %8s %9s %8s %8s %7s  %s%n";
  private static final int WIDTH = 159;

  private ConsoleReport() {}

  public static void print(RunReport r, PrintStream out) {
    String rule = "=".repeat(WIDTH);
    out.println(rule);
    out.printf(Locale.ROOT, "context-memory load test   profile %s   started %s   %.0f s in all%n", r.profile(),
        r.startedAt(), r.totalSeconds());
    out.println("server:  " + r.server());
    out.println("data:    " + r.dataSet());
    out.println("set-up:  " + r.setup().stream()
        .map(p -> String.format(Locale.ROOT, "%s %,d (%,d written) %.1f s", p.name(), p.items(), p.written(), p.seconds()))
        .collect(Collectors.joining(", "))
        + String.format(Locale.ROOT, "; total %.1f s", r.setup().stream().mapToDouble(Setup.Phase::seconds).sum())
        + (r.vacuumSeconds() == null ? "" : String.format(Locale.ROOT, "; VACUUM ANALYZE + CHECKPOINT %.1f s", r.vacuumSeconds())));
    out.println("targets: p99 ms " + r.targets() + (r.targetsAdjusted() ? "   (ADJUSTED on the command line)" : ""));
    if (r.transportFloor() != null) {
      out.println("floor:   " + r.transportFloor());
    }
    out.println(rule);
    out.printf(Locale.ROOT, ROW, "scenario", "load", "requests", "errors", "min", "p50", "p75", "p95", "p99",
        "p99-floor", "max", "req/s", "target", "result");
    out.println("-".repeat(WIDTH));
    for (Outcome o : r.outcomes()) {
      Summary s = o.summary();
      String load = o.run() == null ? "" : o.run().injection();
      if (s == null) {
        out.printf(Locale.ROOT, ROW, o.name(), load, "-", "-", "-", "-", "-", "-", "-", "-", "-", "-",
            ms(o.targetP99Ms()), "SKIP  " + o.note());
        continue;
      }
      if (o.firstRun() != null && o.firstRun().summary() != null) {
        row(out, r, o.name() + " (run 1)", load, o.firstRun().summary(), ms(o.targetP99Ms()),
            "MISS  " + o.firstRun().missed() + "; measured once more");
      }
      String result = switch (o.status()) {
        case PASSED -> o.firstRun() == null ? "PASS" : "PASS  on the second run (the first missed)";
        case FAILED -> (o.firstRun() == null ? "FAIL  " : "FAIL  both runs missed; ") + o.missed();
        case SKIPPED -> "SKIP  " + o.note();
      };
      row(out, r, o.firstRun() == null ? o.name() : o.name() + " (run 2)", load, s, ms(o.targetP99Ms()), result);
      if (o.run().steps().size() > 1) {
        for (Summary step : o.run().steps()) {
          row(out, r, "  - " + step.name(), "", step, "", "");
        }
      }
    }
    out.println(rule);
    printFloors(r, out);
    printCapacity(r, out);
    long passed = r.outcomes().stream().filter(o -> o.status() == Outcome.Status.PASSED).count();
    long failed = r.outcomes().stream().filter(o -> o.status() == Outcome.Status.FAILED).count();
    long skipped = r.outcomes().stream().filter(o -> o.status() == Outcome.Status.SKIPPED).count();
    out.printf(Locale.ROOT, "RESULT: %s   %d passed, %d failed, %d skipped%n", failed == 0 ? "PASSED" : "FAILED",
        passed, failed, skipped);
  }

  private static void row(PrintStream out, RunReport r, String name, String load, Summary s, String target,
      String result) {
    out.printf(Locale.ROOT, ROW, name, load, String.format(Locale.ROOT, "%,d", s.requests()),
        Long.toString(s.errors()), ms(s.minMs()), ms(s.p50Ms()), ms(s.p75Ms()), ms(s.p95Ms()), ms(s.p99Ms()),
        signed(r.p99OverFloorMs(s.p99Ms())), ms(s.maxMs()), String.format(Locale.ROOT, "%.1f", s.throughput()), target, result);
    if (s.errors() > 0 && !result.isEmpty()) {
      out.println("      errors: " + s.errorsByCode() + (s.errorSamples().isEmpty() ? "" : " e.g. " + s.errorSamples().get(0)));
    }
  }

  private static void printFloors(RunReport r, PrintStream out) {
    boolean any = r.outcomes().stream().anyMatch(o -> o.baseline() != null || o.recallAt10() != null)
        || !r.sameStatement().isEmpty();
    if (!any) {
      out.println("database floor: not measured (no --db-url for the server's database)");
      return;
    }
    String f = "%-36s %10s %10s %10s %10s %10s %10s %9s %8s %6s  %s%n";
    out.printf(Locale.ROOT, f, "server vs database floor", "server p50", "stmt p50", "phys p50", "server p99",
        "stmt p99", "phys p99", "recall@10", "own p50", "<=0.25", "SQL timed (same statement; physical)");
    out.println("-".repeat(WIDTH));
    for (Outcome o : r.outcomes()) {
      var same = r.sameStatement().get(o.name());
      if (o.baseline() == null && same == null && o.recallAt10() == null) {
        continue;
      }
      Summary s = o.summary();
      var b = o.baseline();
      Double own = own(r, o.name(), s, b);
      out.printf(Locale.ROOT, f, o.name(),
          s == null ? "-" : ms(s.p50Ms()), same == null ? "-" : ms(same.p50Ms()), b == null ? "-" : ms(b.p50Ms()),
          s == null ? "-" : ms(s.p99Ms()), same == null ? "-" : ms(same.p99Ms()), b == null ? "-" : ms(b.p99Ms()),
          o.recallAt10() == null ? "-" : String.format(Locale.ROOT, "%.3f", o.recallAt10()),
          signed(own), own == null ? "-" : own <= OWN_P50_GOAL_MS ? "yes" : "no",
          (same == null ? "" : same.sql() + "; ") + (b == null ? "" : b.sql()));
    }
    out.println("stmt = the server's own statements for the RPC over a pool at the scenario's rate (same-statement"
        + " floor); phys = the bare SQL, one call at a time (physical floor)");
    out.println("own p50 = server p50 - transport floor p50 - SQL floor p50 (same-statement where measured, else"
        + " physical): what the server adds to a call; issue 13's goal is <= 0.25 ms");
    for (String line : bareTableLines(r)) {
      out.println(line);
    }
    for (Outcome o : r.outcomes()) {
      var b = o.baseline();
      if (b != null && b.recallAt10() != null && o.summary() != null) {
        Double overTransport = r.floor() == null ? null
            : (o.summary().p50Ms() - r.floor().p50Ms()) / b.p50Ms();
        out.printf(Locale.ROOT, "%s vs the bare k-NN: server p50 %s ms / bare p50 %s ms = %.2fx (%s without the"
                + " transport floor); recall@10 server %s, bare %.3f%s%n", o.name(), ms(o.summary().p50Ms()),
            ms(b.p50Ms()), o.summary().p50Ms() / b.p50Ms(),
            overTransport == null ? "-" : String.format(Locale.ROOT, "%.2fx", overTransport),
            o.recallAt10() == null ? "-" : String.format(Locale.ROOT, "%.3f", o.recallAt10()), b.recallAt10(),
            o.name().equals("search_memories_tenant") ? " (issue 13's goal: <= 2x at recall >= 0.98)" : "");
      }
    }
    out.println("=".repeat(WIDTH));
  }

  /**
   * One line per bare-table floor: its p50/p99 and the server's and the physical floor's p50 as
   * multiples of it (issue 13's batch goal: AppendMessages(100) p50 <= 3x the plain INSERT).
   */
  static java.util.List<String> bareTableLines(RunReport r) {
    java.util.List<String> lines = new java.util.ArrayList<>();
    for (Outcome o : r.outcomes()) {
      var bare = r.bareTable().get(o.name());
      if (bare == null) {
        continue;
      }
      Summary s = o.summary();
      lines.add(String.format(Locale.ROOT,
          "bare table: %s p50 %s ms, p99 %s ms (%d runs: %s); server p50 = %s, physical floor p50 = %s of it",
          o.name(), ms(bare.p50Ms()), ms(bare.p99Ms()), bare.iterations(), bare.sql(),
          ratio(s == null ? null : s.p50Ms(), bare.p50Ms()),
          ratio(o.baseline() == null ? null : o.baseline().p50Ms(), bare.p50Ms())));
    }
    return lines;
  }

  /** Issue 13's goal for the server's own share of a call's p50. */
  static final double OWN_P50_GOAL_MS = 0.25;

  /**
   * Server p50 minus the transport floor's and the SQL floor's p50 (the same-statement floor where
   * measured, else the physical one); null when one is missing.
   */
  static Double own(RunReport r, String scenario, Summary s, dev.contextmemory.loadtest.scenarios.Baselines.Baseline b) {
    var same = r.sameStatement().get(scenario);
    var sql = same != null ? same : b;
    if (s == null || sql == null || r.floor() == null) {
      return null;
    }
    return s.p50Ms() - r.floor().p50Ms() - sql.p50Ms();
  }

  static String signed(Double v) {
    return v == null ? "-" : String.format(Locale.ROOT, "%+.3f", v);
  }

  private static void printCapacity(RunReport r, PrintStream out) {
    if (r.outcomes().stream().noneMatch(o -> o.capacity() != null)) {
      return;
    }
    out.println("capacity search (arrival rate stepped up until p99 >= target or errors appear):");
    for (Outcome o : r.outcomes()) {
      if (o.capacity() == null) {
        continue;
      }
      var c = o.capacity();
      printCapacity(out, o.name(), c);
      if (c.sameStatement() != null) {
        printCapacity(out, "  same statement over JDBC", c.sameStatement());
        out.printf(Locale.ROOT, "  %-28s server / same statement: %s%n", o.name(),
            c.ratioToSameStatement() == null ? "-" : String.format(Locale.ROOT, "%.2f", c.ratioToSameStatement()));
      }
    }
    out.println("=".repeat(WIDTH));
  }

  private static void printCapacity(PrintStream out, String label, Outcome.Capacity c) {
    out.printf(Locale.ROOT, "  %-28s capacity %s   (%s)%n", label,
        c.lastGoodRate() == null ? "below the first step" : rate(c.lastGoodRate()) + "/s", c.stoppedBecause());
    for (var step : c.steps()) {
      out.printf(Locale.ROOT, "      %8s/s  p50 %8s  p99 %8s  max %8s  errors %d/%d  %s%n", rate(step.rate()),
          ms(step.summary().p50Ms()), ms(step.summary().p99Ms()), ms(step.summary().maxMs()), step.summary().errors(),
          step.summary().requests(), step.held() ? "held" : "BROKE: " + step.why());
    }
  }

  static String ms(Double v) {
    if (v == null) {
      return "-";
    }
    return v >= 100 ? String.format(Locale.ROOT, "%.1f", v) : String.format(Locale.ROOT, "%.3f", v);
  }

  static String ratio(Double server, Double floor) {
    if (server == null || floor == null || floor <= 0) {
      return "-";
    }
    return String.format(Locale.ROOT, "%.1fx", server / floor);
  }

  static String rate(double r) {
    return r == Math.rint(r) ? String.format(Locale.ROOT, "%,d", (long) r) : String.format(Locale.ROOT, "%.1f", r);
  }
}

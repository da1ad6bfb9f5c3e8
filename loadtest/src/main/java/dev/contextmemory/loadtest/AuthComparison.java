package dev.contextmemory.loadtest;

import dev.contextmemory.loadtest.dsl.Engine;
import dev.contextmemory.loadtest.dsl.Scenario;
import java.io.PrintStream;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/**
 * Security issue: authentication must not show in the hot path. The same scenario runs against the
 * run's own server (API keys required, the key checked from its cache on every call) and against a
 * second server on the same database without authentication, alternating on, off, on, off so that
 * drift of the machine hits both alike; the mean p50 of each side is printed with their difference.
 * The second server has not run the scenarios before, so it first gets the warm-up and one whole
 * measured run, discarded, as the first server had (without them its JIT would be measured: its
 * p50 came out 25 % slower than the server that checks keys).
 * Printed, not gated: on a shared 2-core machine two 10 s runs of the same server differ by more
 * than the 5 % the comparison asks about, so a gate would judge noise.
 */
final class AuthComparison {
  static final Set<String> SCENARIOS = Set.of("append_message", "list_messages_20");
  private static final int ROUNDS = 2;

  private AuthComparison() {}

  static void run(Engine withAuth, Engine withoutAuth, List<Scenario> scenarios, PrintStream log) {
    for (Scenario s : scenarios) {
      if (!SCENARIOS.contains(s.name())) {
        continue;
      }
      s.warmUp().ifPresent(w -> withoutAuth.run(s, w));
      withoutAuth.run(s); // discarded: the second server's JIT, as the first server's measured run had
      double[] on = new double[ROUNDS];
      double[] off = new double[ROUNDS];
      for (int i = 0; i < ROUNDS; i++) {
        on[i] = withAuth.run(s).summary().p50Ms();
        off[i] = withoutAuth.run(s).summary().p50Ms();
      }
      double meanOn = mean(on);
      double meanOff = mean(off);
      log.printf(Locale.ROOT, "auth: %-18s p50 with API keys %.3f ms, without %.3f ms (%+.1f %%); runs on %s, off %s%n",
          s.name(), meanOn, meanOff, 100 * (meanOn - meanOff) / meanOff, fmt(on), fmt(off));
    }
  }

  private static double mean(double[] v) {
    double sum = 0;
    for (double x : v) {
      sum += x;
    }
    return sum / v.length;
  }

  private static String fmt(double[] v) {
    StringBuilder b = new StringBuilder("[");
    for (int i = 0; i < v.length; i++) {
      b.append(i == 0 ? "" : ", ").append(String.format(Locale.ROOT, "%.3f", v[i]));
    }
    return b.append("]").toString();
  }
}

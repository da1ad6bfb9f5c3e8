package dev.contextmemory.loadtest;

import dev.contextmemory.loadtest.report.Outcome;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Steps the arrival rate up, from a start rate by the capacity factor, until a rate breaks; the
 * last rate that held is the capacity. A step that breaks is run once more before it counts,
 * since a 10 s step at a low rate holds few calls and its p99 is one or two of them. Each search
 * starts after a short pause, so the previous one's backlog does not count against it.
 *
 * <p>One procedure for both sides of issue 13's capacity ratio: the server over gRPC and the
 * same statement over JDBC, so the two capacities are found the same way.
 */
public final class CapacitySearch {
  /** Runs one step at an arrival rate and says whether it held (and why not). */
  public interface Step {
    Outcome.CapacityStep at(double rate);
  }

  private CapacitySearch() {}

  public static Outcome.Capacity run(String label, Profile.Capacity cap, double startRate, Step step, PrintStream log) {
    double rate = Math.max(1, Math.ceil(startRate));
    Double lastGood = null;
    sleepQuietly(cap.warmUp().toMillis());
    List<Outcome.CapacityStep> steps = new ArrayList<>();
    String stopped = "held up to the last step tried (" + cap.maxSteps() + " steps)";
    for (int i = 0; i < cap.maxSteps(); i++) {
      log.printf(Locale.ROOT, "capacity: %s at %s/s ...%n", label, fmtRate(rate));
      Outcome.CapacityStep s = step.at(rate);
      steps.add(s);
      if (!s.held()) {
        log.printf(Locale.ROOT, "capacity: %s broke at %s/s (%s); once more to confirm%n", label, fmtRate(rate), s.why());
        s = step.at(rate);
        steps.add(s);
      }
      if (!s.held()) {
        stopped = "stopped at " + fmtRate(rate) + "/s, twice: " + s.why();
        break;
      }
      lastGood = rate;
      rate = Math.ceil(rate * cap.factor());
    }
    log.printf(Locale.ROOT, "capacity: %s %s/s (%s)%n", label, lastGood == null ? "-" : fmtRate(lastGood), stopped);
    return new Outcome.Capacity(lastGood, stopped, steps, null);
  }

  /**
   * Why a step broke, or null if it held: p99 at or over the target, errors over the allowed rate,
   * or fewer than 90% of the offered calls completed (the side under test no longer keeps up).
   */
  public static String broke(double p99Ms, Double targetP99Ms, long requests, long errors, String errorsSeen,
      double maxErrorRate, double offered) {
    if (targetP99Ms != null && p99Ms >= targetP99Ms) {
      return String.format(Locale.ROOT, "p99 %.3f ms >= target %.3f ms", p99Ms, targetP99Ms);
    }
    if (requests > 0 && (double) errors / requests > maxErrorRate) {
      return String.format(Locale.ROOT, "errors %d/%d %s", errors, requests, errorsSeen);
    }
    if (requests - errors < 0.9 * offered) {
      return String.format(Locale.ROOT, "completed %d calls, under 90%% of the %.0f offered", requests - errors, offered);
    }
    return null;
  }

  private static void sleepQuietly(long millis) {
    try {
      Thread.sleep(millis);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  static String fmtRate(double r) {
    return r == Math.rint(r) ? Long.toString((long) r) : String.format(Locale.ROOT, "%.1f", r);
  }
}

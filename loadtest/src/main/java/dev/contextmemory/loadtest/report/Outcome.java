package dev.contextmemory.loadtest.report;

import dev.contextmemory.loadtest.dsl.RunResult;
import dev.contextmemory.loadtest.dsl.Summary;
import dev.contextmemory.loadtest.scenarios.Baselines;
import java.util.List;

/**
 * The verdict on one scenario.
 *
 * @param run what the measured run recorded; null when the scenario was skipped before it ran
 * @param note why it was skipped or failed, or other remarks; empty when there is nothing to say
 * @param recallAt10 mean recall@10 of the sampled answers (memory searches only), else null
 * @param baseline the database's floor for the same work, else null
 * @param capacity the capacity search (profile full), else null
 * @param firstRun when the first measured run missed and the scenario was measured once more right
 *     away (issue 13's rule: the build fails only when both runs miss), that first run's verdict;
 *     this outcome is then the second run's. Null when the first run passed.
 */
public record Outcome(
    String name,
    Status status,
    String note,
    Double targetP99Ms,
    RunResult run,
    List<Verdict> verdicts,
    Double recallAt10,
    Baselines.Baseline baseline,
    Capacity capacity,
    Outcome firstRun) {

  public Outcome(String name, Status status, String note, Double targetP99Ms, RunResult run, List<Verdict> verdicts,
      Double recallAt10, Baselines.Baseline baseline, Capacity capacity) {
    this(name, status, note, targetP99Ms, run, verdicts, recallAt10, baseline, capacity, null);
  }

  public enum Status {
    PASSED, FAILED, SKIPPED
  }

  /** One assertion: the condition, what was measured, whether it held. */
  public record Verdict(String condition, String measured, boolean holds) {}

  /**
   * The capacity search: the last arrival rate that held, and every step tried; for the server,
   * also the same statement's capacity over JDBC found the same way (null where none is timed).
   */
  public record Capacity(Double lastGoodRate, String stoppedBecause, List<CapacityStep> steps, Capacity sameStatement) {
    public Capacity withSameStatement(Capacity jdbc) {
      return new Capacity(lastGoodRate, stoppedBecause, steps, jdbc);
    }

    /** Server capacity / the same statement's JDBC capacity, or null when either is unknown. */
    public Double ratioToSameStatement() {
      if (sameStatement == null || lastGoodRate == null || sameStatement.lastGoodRate() == null) {
        return null;
      }
      return lastGoodRate / sameStatement.lastGoodRate();
    }
  }

  /** One step of the capacity search. */
  public record CapacityStep(double rate, Summary summary, boolean held, String why) {}

  public static Outcome skipped(String name, Double targetP99Ms, String why) {
    return new Outcome(name, Status.SKIPPED, why, targetP99Ms, null, List.of(), null, null, null);
  }

  public Outcome withCapacity(Capacity c) {
    return new Outcome(name, status, note, targetP99Ms, run, verdicts, recallAt10, baseline, c, firstRun);
  }

  /** This (second) run's verdict, with the first run that missed before it. */
  public Outcome withFirstRun(Outcome first) {
    return new Outcome(name, status, note, targetP99Ms, run, verdicts, recallAt10, baseline, capacity, first);
  }

  /** What the first run missed, one line: "p99 = 11.0 ms (want p99 < 10.0 ms)"; empty if it held. */
  public String missed() {
    return verdicts.stream().filter(v -> !v.holds()).map(v -> v.measured() + " (want " + v.condition() + ")")
        .collect(java.util.stream.Collectors.joining("; "));
  }

  /** The measured summary of the whole scenario; null when skipped before it ran. */
  public Summary summary() {
    return run == null ? null : run.summary();
  }
}

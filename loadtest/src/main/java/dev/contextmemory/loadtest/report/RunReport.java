package dev.contextmemory.loadtest.report;

import dev.contextmemory.loadtest.data.Setup;
import java.time.Instant;
import java.util.List;

/**
 * Everything one run found, for the renderers.
 *
 * @param server where the server ran ("started here: ..." or the --target address)
 * @param targetsAdjusted the targets were scaled or overridden on the command line
 * @param vacuumSeconds time of the VACUUM ANALYZE after the set-up, or null when not run
 * @param transportFloor the transport floor's line for the report, or null when not measured
 * @param floor the transport floor's summary (Health/Check through the same channel), or null
 * @param sameStatement the same-statement SQL floors (issue 13: the server's own statements over a
 *     pool at the scenario's rate), by scenario; empty when not measured
 * @param bareTable the bare-table floors (issue 13: the same rows into an unindexed copy of the
 *     table, timed interleaved with the physical floor), by scenario; empty when not measured
 * @param serverLatency per scenario, the server's own latency histograms of its RPCs over the
 *     measured run (empty when the server's metrics endpoint is unknown)
 */
public record RunReport(
    String profile,
    Instant startedAt,
    String server,
    String dataSet,
    String targets,
    boolean targetsAdjusted,
    List<Setup.Phase> setup,
    Double vacuumSeconds,
    String transportFloor,
    List<Outcome> outcomes,
    double totalSeconds,
    dev.contextmemory.loadtest.dsl.Summary floor,
    java.util.Map<String, dev.contextmemory.loadtest.scenarios.Baselines.Baseline> sameStatement,
    java.util.Map<String, dev.contextmemory.loadtest.scenarios.Baselines.Baseline> bareTable,
    java.util.Map<String, List<ServerLatency>> serverLatency) {

  /** A scenario's p99 minus the transport floor's p99: what the call adds to a no-op call's tail; null without a floor. */
  public Double p99OverFloorMs(Double p99Ms) {
    return floor == null || p99Ms == null ? null : p99Ms - floor.p99Ms();
  }

  public boolean passed() {
    return outcomes.stream().noneMatch(o -> o.status() == Outcome.Status.FAILED);
  }
}

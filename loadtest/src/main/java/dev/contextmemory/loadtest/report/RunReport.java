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
    java.util.Map<String, List<ServerLatency>> serverLatency) {

  public boolean passed() {
    return outcomes.stream().noneMatch(o -> o.status() == Outcome.Status.FAILED);
  }
}

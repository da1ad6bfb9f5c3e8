package dev.contextmemory.loadtest.dsl;

import java.util.List;
import java.util.Map;
import org.HdrHistogram.Histogram;

/**
 * What one scenario (or step) did in one run. Latencies in milliseconds, over successful calls;
 * {@code requests} counts successes and failures; {@code throughput} is requests per second of
 * the run's wall time (injection plus the drain of the last calls).
 */
public record Summary(
    String name,
    long requests,
    long errors,
    double minMs,
    double p50Ms,
    double p75Ms,
    double p95Ms,
    double p99Ms,
    double p999Ms,
    double maxMs,
    double meanMs,
    double throughput,
    double durationSeconds,
    Map<String, Long> errorsByCode,
    List<String> errorSamples,
    List<Stats.Point> timeline,
    Histogram histogram) {

  /** Failed calls as a fraction of all calls; 0 when there were none. */
  public double errorRate() {
    return requests == 0 ? 0 : (double) errors / requests;
  }

  /** The latency at a percentile in (0, 100], in milliseconds; 0 without successful calls. */
  public double percentileMs(double percentile) {
    return histogram.getTotalCount() == 0 ? 0 : Stats.ms(histogram.getValueAtPercentile(percentile));
  }
}

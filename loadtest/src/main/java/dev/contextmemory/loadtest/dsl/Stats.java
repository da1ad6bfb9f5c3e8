package dev.contextmemory.loadtest.dsl;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;
import org.HdrHistogram.Histogram;
import org.HdrHistogram.Recorder;

/**
 * Latencies and errors of one scenario (or one step) during one run. Writers (the gRPC callback
 * threads) record into an HdrHistogram {@link Recorder}, which is wait-free; once a second the
 * engine's ticker swaps out the interval histogram, adds it to the total and appends a point to
 * the timeline, which gives the report its latency-over-time curve.
 *
 * <p>Latencies are kept in microseconds (1 µs to the histogram's auto-resized maximum, three
 * significant digits) and only for successful calls; failures are counted by status code.
 */
public final class Stats {
  private final String name;
  private final long startNanos;
  private final Recorder recorder = new Recorder(3);
  private final Histogram total = new Histogram(3);
  private final LongAdder failures = new LongAdder();
  private final AtomicLong intervalFailures = new AtomicLong();
  private final Map<String, LongAdder> failuresByCode = new ConcurrentHashMap<>();
  private final List<String> failureSamples = new ArrayList<>();
  private final List<Point> timeline = new ArrayList<>();
  private Histogram interval;
  private long lastSampleNanos;

  public Stats(String name, long startNanos) {
    this.name = name;
    this.startNanos = startNanos;
    this.lastSampleNanos = startNanos;
  }

  public String name() {
    return name;
  }

  /** Records a successful call that took {@code nanos}. */
  public void success(long nanos) {
    recorder.recordValue(Math.max(1, nanos / 1_000));
  }

  /** Records a failed call; {@code code} is its gRPC status code name (or a harness reason). */
  public void failure(String code, String detail) {
    failures.increment();
    intervalFailures.incrementAndGet();
    failuresByCode.computeIfAbsent(code, c -> new LongAdder()).increment();
    synchronized (failureSamples) {
      if (failureSamples.size() < 5) {
        failureSamples.add(code + ": " + detail);
      }
    }
  }

  /** Moves what was recorded since the last call into the total and the timeline. */
  public synchronized void sample(long nowNanos) {
    interval = recorder.getIntervalHistogram(interval);
    total.add(interval);
    long failed = intervalFailures.getAndSet(0);
    double seconds = (nowNanos - lastSampleNanos) / 1e9;
    lastSampleNanos = nowNanos;
    long n = interval.getTotalCount();
    if (n > 0 || failed > 0) {
      timeline.add(new Point((nowNanos - startNanos) / 1e9, n, failed, seconds > 0 ? (n + failed) / seconds : 0,
          n > 0 ? ms(interval.getValueAtPercentile(50)) : 0,
          n > 0 ? ms(interval.getValueAtPercentile(99)) : 0,
          n > 0 ? ms(interval.getMaxValue()) : 0));
    }
  }

  /** Totals over the run; call after the last {@link #sample}. */
  public synchronized Summary summary(double durationSeconds) {
    long ok = total.getTotalCount();
    long failed = failures.sum();
    Map<String, Long> codes = new TreeMap<>();
    failuresByCode.forEach((k, v) -> codes.put(k, v.sum()));
    List<String> samples;
    synchronized (failureSamples) {
      samples = List.copyOf(failureSamples);
    }
    boolean any = ok > 0;
    return new Summary(name, ok + failed, failed,
        any ? ms(total.getMinValue()) : 0,
        any ? ms(total.getValueAtPercentile(50)) : 0,
        any ? ms(total.getValueAtPercentile(75)) : 0,
        any ? ms(total.getValueAtPercentile(95)) : 0,
        any ? ms(total.getValueAtPercentile(99)) : 0,
        any ? ms(total.getValueAtPercentile(99.9)) : 0,
        any ? ms(total.getMaxValue()) : 0,
        any ? total.getMean() / 1000.0 : 0,
        durationSeconds > 0 ? (ok + failed) / durationSeconds : 0,
        durationSeconds, codes, samples, List.copyOf(timeline), total.copy());
  }

  static double ms(long micros) {
    return micros / 1000.0;
  }

  /** One second of the run: when, how many calls, their rate and latencies (ms). */
  public record Point(double atSeconds, long ok, long failed, double ratePerSecond, double p50Ms, double p99Ms,
      double maxMs) {}
}

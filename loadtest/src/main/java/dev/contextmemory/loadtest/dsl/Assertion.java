package dev.contextmemory.loadtest.dsl;

import java.util.Locale;

/** A condition on a scenario's {@link Summary}, e.g. "p99 under 10 ms" or "no more than 0.1% errors". */
public sealed interface Assertion {

  boolean holds(Summary s);

  /** The condition, e.g. "p99 < 10.0 ms". */
  String describe();

  /** What was measured against it, e.g. "p99 = 3.2 ms". */
  String measured(Summary s);

  /** The latency at {@code percentile} (100 = the maximum) stays strictly under {@code boundMs}. */
  record LatencyBelow(double percentile, double boundMs) implements Assertion {
    public LatencyBelow {
      if (!(percentile > 0 && percentile <= 100)) {
        throw new IllegalArgumentException("percentile must be in (0, 100]: " + percentile);
      }
    }

    @Override
    public boolean holds(Summary s) {
      return value(s) < boundMs;
    }

    private double value(Summary s) {
      return percentile == 100 ? s.maxMs() : s.percentileMs(percentile);
    }

    @Override
    public String describe() {
      return label() + " < " + fmt(boundMs) + " ms";
    }

    @Override
    public String measured(Summary s) {
      return label() + " = " + fmt(value(s)) + " ms";
    }

    private String label() {
      return percentile == 100 ? "max" : "p" + (percentile == Math.rint(percentile)
          ? Long.toString((long) percentile) : Double.toString(percentile));
    }

    /** The same condition with the bound multiplied by {@code factor}. */
    public LatencyBelow scaled(double factor) {
      return new LatencyBelow(percentile, boundMs * factor);
    }
  }

  /** Failed calls are at most {@code fraction} of all calls (0 means none may fail). */
  record ErrorRateAtMost(double fraction) implements Assertion {
    @Override
    public boolean holds(Summary s) {
      return s.errorRate() <= fraction;
    }

    @Override
    public String describe() {
      return "errors <= " + fmt(fraction * 100) + "%";
    }

    @Override
    public String measured(Summary s) {
      return "errors = " + fmt(s.errorRate() * 100) + "% (" + s.errors() + "/" + s.requests() + ")";
    }
  }

  static LatencyBelow p50(double ms) {
    return new LatencyBelow(50, ms);
  }

  static LatencyBelow p95(double ms) {
    return new LatencyBelow(95, ms);
  }

  static LatencyBelow p99(double ms) {
    return new LatencyBelow(99, ms);
  }

  static LatencyBelow max(double ms) {
    return new LatencyBelow(100, ms);
  }

  static ErrorRateAtMost errorRate(double fraction) {
    return new ErrorRateAtMost(fraction);
  }

  private static String fmt(double v) {
    return String.format(Locale.ROOT, v >= 100 || v == Math.rint(v) ? "%.1f" : "%.3g", v);
  }
}

package dev.contextmemory.loadtest.dsl;

import java.time.Duration;
import java.util.List;
import java.util.Objects;

/**
 * How sessions of a scenario arrive.
 *
 * <p>{@link Open}: sessions start at a given arrival rate whatever the server does, as real users
 * do; a slow server therefore builds a queue, and the engine measures each session from the time
 * it was due to start. {@link Closed}: a fixed number of users, each starting its next session when
 * the previous one ended; the server's speed sets the rate, and latency is what one user sees.
 */
public sealed interface Injection {

  /** How long the injection lasts. */
  Duration duration();

  /** A short label for reports, e.g. "200/s for 15s". */
  String describe();

  /** Arrival rates as consecutive segments; each ramps linearly from one rate to another. */
  record Open(List<Segment> segments) implements Injection {
    public Open {
      segments = List.copyOf(segments);
      if (segments.isEmpty()) {
        throw new IllegalArgumentException("an open injection needs at least one segment");
      }
    }

    @Override
    public Duration duration() {
      return segments.stream().map(Segment::duration).reduce(Duration.ZERO, Duration::plus);
    }

    @Override
    public String describe() {
      return String.join(", ", segments.stream().map(Segment::describe).toList());
    }

    /** The highest rate of any segment, in sessions per second. */
    public double peakRate() {
      return segments.stream().mapToDouble(s -> Math.max(s.fromRate(), s.toRate())).max().orElse(0);
    }
  }

  /** A linear ramp of the arrival rate (sessions per second) over a duration; equal rates: constant. */
  record Segment(double fromRate, double toRate, Duration duration) {
    public Segment {
      Objects.requireNonNull(duration, "duration");
      if (!(fromRate >= 0) || !(toRate >= 0) || fromRate + toRate == 0) {
        throw new IllegalArgumentException("rates must be >= 0 and not both 0: " + fromRate + " -> " + toRate);
      }
      if (duration.isNegative() || duration.isZero()) {
        throw new IllegalArgumentException("duration must be positive: " + duration);
      }
    }

    String describe() {
      String secs = duration.toMillis() % 1000 == 0 ? duration.toSeconds() + "s" : duration.toMillis() + "ms";
      return fromRate == toRate
          ? Report.rate(fromRate) + "/s for " + secs
          : Report.rate(fromRate) + "->" + Report.rate(toRate) + "/s over " + secs;
    }
  }

  /** A fixed number of concurrent users looping over the scenario. */
  record Closed(int users, Duration duration) implements Injection {
    public Closed {
      if (users < 1) {
        throw new IllegalArgumentException("users must be >= 1: " + users);
      }
      Objects.requireNonNull(duration, "duration");
    }

    @Override
    public String describe() {
      return users + " users for " + duration.toSeconds() + "s";
    }
  }

  static Open constantRate(double perSecond, Duration duration) {
    return new Open(List.of(new Segment(perSecond, perSecond, duration)));
  }

  static Open ramp(double fromPerSecond, double toPerSecond, Duration duration) {
    return new Open(List.of(new Segment(fromPerSecond, toPerSecond, duration)));
  }

  static Closed users(int users, Duration duration) {
    return new Closed(users, duration);
  }

  /** Number formatting shared by the labels. */
  final class Report {
    private Report() {}

    static String rate(double r) {
      return r == Math.rint(r) ? Long.toString((long) r) : String.format(java.util.Locale.ROOT, "%.1f", r);
    }
  }
}

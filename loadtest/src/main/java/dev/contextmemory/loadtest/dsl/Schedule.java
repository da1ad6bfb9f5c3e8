package dev.contextmemory.loadtest.dsl;

import java.util.List;

/**
 * The intended start times of an open injection: session k is due when the integral of the
 * arrival rate reaches k. Within a segment ramping linearly from rate a to rate b over D seconds,
 * n(t) = a·t + (b − a)·t² / (2D), solved for t. Pure arithmetic, so it is tested without clocks.
 */
public final class Schedule {
  private final List<Injection.Segment> segments;
  private int segment;
  private double segmentStart; // seconds since the injection started
  private double countAtSegmentStart;
  private long next; // index of the next session

  public Schedule(Injection.Open open) {
    this.segments = open.segments();
  }

  /**
   * The intended start of the next session in nanoseconds after the injection's start, or -1
   * when the injection is over.
   */
  public long nextOffsetNanos() {
    while (segment < segments.size()) {
      Injection.Segment s = segments.get(segment);
      double d = s.duration().toNanos() / 1e9;
      double a = s.fromRate();
      double b = s.toRate();
      double m = next - countAtSegmentStart; // sessions into this segment
      double t = timeOf(m, a, b, d);
      if (t < d) {
        next++;
        return Math.round((segmentStart + t) * 1e9);
      }
      countAtSegmentStart += a * d + (b - a) * d / 2; // sessions the whole segment holds
      segmentStart += d;
      segment++;
    }
    return -1;
  }

  /** Seconds into a segment at which its m-th session (from 0) is due. */
  static double timeOf(double m, double a, double b, double d) {
    if (m <= 0) {
      return 0;
    }
    double k = (b - a) / d; // rate change per second
    double disc = a * a + 2 * k * m;
    if (disc < 0) {
      return Double.POSITIVE_INFINITY; // a falling ramp that never reaches m sessions
    }
    // The root (−a + √disc) / k, written without the cancellation that form suffers when k → 0.
    return 2 * m / (a + Math.sqrt(disc));
  }
}

package dev.contextmemory.loadtest.dsl;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class ScheduleTest {

  private static List<Long> offsets(Injection.Open open) {
    Schedule s = new Schedule(open);
    List<Long> out = new ArrayList<>();
    long o;
    while ((o = s.nextOffsetNanos()) >= 0) {
      out.add(o);
    }
    return out;
  }

  @Test
  void constantRateSpacesSessionsEvenly() {
    List<Long> o = offsets(Injection.constantRate(100, Duration.ofSeconds(1)));
    assertEquals(100, o.size());
    for (int i = 0; i < o.size(); i++) {
      assertEquals(i * 10_000_000L, o.get(i), "session " + i);
    }
  }

  @Test
  void rampStartsSlowAndEndsFast() {
    // 0 -> 100/s over 2 s holds 100 sessions; session k is due at t = sqrt(2·k·D/100) = sqrt(k/25) s.
    List<Long> o = offsets(Injection.ramp(0, 100, Duration.ofSeconds(2)));
    assertEquals(100, o.size());
    for (int k = 0; k < o.size(); k++) {
      assertEquals(Math.sqrt(k / 25.0), o.get(k) / 1e9, 1e-6, "session " + k);
    }
    long firstGap = o.get(1) - o.get(0);
    long lastGap = o.get(99) - o.get(98);
    assertTrue(firstGap > 10 * lastGap, "the gaps shrink as the rate grows: " + firstGap + " vs " + lastGap);
  }

  @Test
  void fallingRampAndSegmentsJoinWithoutGapsOrOverlaps() {
    Injection.Open open = new Injection.Open(List.of(
        new Injection.Segment(10, 10, Duration.ofSeconds(1)),
        new Injection.Segment(50, 10, Duration.ofSeconds(1)),
        new Injection.Segment(20, 20, Duration.ofMillis(500))));
    List<Long> o = offsets(open);
    // 10 + (50 + 10) / 2 + 10 sessions
    assertEquals(10 + 30 + 10, o.size());
    for (int i = 1; i < o.size(); i++) {
      assertTrue(o.get(i) > o.get(i - 1), "strictly increasing at " + i);
    }
    assertEquals(1_000_000_000L, o.get(10), "the second segment starts at 1 s");
    assertTrue(o.get(o.size() - 1) < 2_500_000_000L);
    assertEquals(2_000_000_000L, o.get(40), 1, "the third segment starts at 2 s");
  }

  @Test
  void fractionalRatesCarryOverSegmentBoundaries() {
    // 1.5/s for 1 s holds 1.5 sessions: sessions at 0 and 0.667 s; the next is due 1/3 s into the
    // following 1.5/s second, at 1.333 s, not at 1 s.
    Injection.Open open = new Injection.Open(List.of(
        new Injection.Segment(1.5, 1.5, Duration.ofSeconds(1)),
        new Injection.Segment(1.5, 1.5, Duration.ofSeconds(1))));
    List<Long> o = offsets(open);
    assertEquals(3, o.size());
    assertEquals(1.3333, o.get(2) / 1e9, 1e-3);
  }
}

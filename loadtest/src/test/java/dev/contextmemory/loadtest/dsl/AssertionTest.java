package dev.contextmemory.loadtest.dsl;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;
import org.HdrHistogram.Histogram;
import org.junit.jupiter.api.Test;

class AssertionTest {

  /** 100 calls of 1..100 ms (in µs), plus {@code errors} failures. */
  private static Summary summary(long errors) {
    Histogram h = new Histogram(3);
    for (int i = 1; i <= 100; i++) {
      h.recordValue(i * 1000L);
    }
    return new Summary("s", 100 + errors, errors, 1, h.getValueAtPercentile(50) / 1000.0, 0,
        h.getValueAtPercentile(95) / 1000.0, h.getValueAtPercentile(99) / 1000.0, 0, h.getMaxValue() / 1000.0, 0, 0, 1,
        Map.of(), List.of(), List.of(), h);
  }

  @Test
  void latencyBoundsAreStrict() {
    Summary s = summary(0);
    assertTrue(Assertion.p99(99.5).holds(s));
    assertFalse(Assertion.p99(99).holds(s), "p99 = 99 ms is not under 99 ms");
    assertTrue(Assertion.p50(50.1).holds(s));
    assertFalse(Assertion.max(100).holds(s));
    assertTrue(Assertion.max(100.1).holds(s));
    assertEquals("p99 < 10.0 ms", Assertion.p99(10).describe());
    assertEquals("p99 = 99.0 ms", Assertion.p99(10).measured(s));
    assertEquals("max < 0.00100 ms", Assertion.max(0.001).describe());
  }

  @Test
  void errorRateCountsFailuresAmongAllCalls() {
    assertTrue(Assertion.errorRate(0).holds(summary(0)));
    assertFalse(Assertion.errorRate(0).holds(summary(1)));
    assertTrue(Assertion.errorRate(0.01).holds(summary(1)), "1 of 101");
    assertFalse(Assertion.errorRate(0.01).holds(summary(2)), "2 of 102");
  }

  @Test
  void theTargetIsTheFirstAssertionAndCanBeReplaced() {
    Scenario s = Scenario.named("x")
        .exec(Step.call(dev.contextmemory.v1.ConversationServiceGrpc.getListMessagesMethod(),
            x -> dev.contextmemory.v1.ListMessagesRequest.getDefaultInstance()))
        .inject(Injection.constantRate(1, java.time.Duration.ofSeconds(1)))
        .targetP99Ms(10)
        .assertThat(Assertion.errorRate(0.001))
        .build();
    assertEquals(List.of(Assertion.p99(10), Assertion.errorRate(0.001)), s.assertions());
    assertEquals(List.of(Assertion.p99(0.01), Assertion.errorRate(0.001)), s.withTargetP99Ms(0.01).assertions());
  }
}

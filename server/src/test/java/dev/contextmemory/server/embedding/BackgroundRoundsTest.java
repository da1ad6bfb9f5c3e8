package dev.contextmemory.server.embedding;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.time.Duration;
import org.junit.jupiter.api.Test;

class BackgroundRoundsTest {

  @Test
  void aSpellOfFailuresBacksOffFromThePollIntervalToThirtySeconds() {
    Duration poll = Duration.ofMillis(500);
    assertEquals(500, BackgroundRounds.backoffMillis(poll, 1));
    assertEquals(1_000, BackgroundRounds.backoffMillis(poll, 2));
    assertEquals(16_000, BackgroundRounds.backoffMillis(poll, 6));
    assertEquals(30_000, BackgroundRounds.backoffMillis(poll, 7));
    assertEquals(30_000, BackgroundRounds.backoffMillis(poll, 1_000));
  }

  @Test
  void aPollIntervalLongerThanTheCapIsKept() {
    assertEquals(60_000, BackgroundRounds.backoffMillis(Duration.ofMinutes(1), 5));
  }
}

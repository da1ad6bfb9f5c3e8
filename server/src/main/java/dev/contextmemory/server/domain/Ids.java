package dev.contextmemory.server.domain;

import com.fasterxml.uuid.Generators;
import com.fasterxml.uuid.impl.TimeBasedEpochGenerator;
import java.util.UUID;

/** Row ids: UUID version 7, time-ordered, so new rows land at the right edge of their btrees. */
public final class Ids {
  private static final TimeBasedEpochGenerator V7 = Generators.timeBasedEpochGenerator();

  private Ids() {}

  public static UUID newId() {
    return V7.generate();
  }

  /** Parses a canonical UUID string; null if it is not one. */
  public static UUID parseOrNull(String s) {
    if (s == null || s.length() != 36) {
      return null;
    }
    try {
      return UUID.fromString(s);
    } catch (IllegalArgumentException e) {
      return null;
    }
  }
}

package dev.contextmemory.loadtest.dsl;

import java.util.List;

/**
 * Supplies a session's input. It is a pure function of the session (its index and random source),
 * so feeders are thread-safe without locks and a run is reproducible from its seed.
 */
@FunctionalInterface
public interface Feeder<T> {
  T next(Session session);

  /** The items in order, wrapping around (Gatling's {@code circular}). */
  static <T> Feeder<T> circular(List<T> items) {
    requireItems(items);
    return s -> items.get((int) Math.floorMod(s.index(), (long) items.size()));
  }

  /** A uniformly random item per session (Gatling's {@code random}). */
  static <T> Feeder<T> random(List<T> items) {
    requireItems(items);
    return s -> items.get(s.random().nextInt(items.size()));
  }

  private static void requireItems(List<?> items) {
    if (items.isEmpty()) {
      throw new IllegalArgumentException("a feeder needs at least one item");
    }
  }
}

package dev.contextmemory.loadtest.dsl;

/** Stafford's mix13 finaliser (as in SplittableRandom): a cheap, well-spread hash of a long. */
public final class Mix {
  private Mix() {}

  public static long mix64(long z) {
    z = (z ^ (z >>> 30)) * 0xbf58476d1ce4e5b9L;
    z = (z ^ (z >>> 27)) * 0x94d049bb133111ebL;
    return z ^ (z >>> 31);
  }

  /** A value in [0, bound) derived from {@code key}; the same key always gives the same value. */
  public static int pick(long key, int bound) {
    return (int) Math.floorMod(mix64(key), (long) bound);
  }
}

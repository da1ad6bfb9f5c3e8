package dev.contextmemory.loadtest.data;

import java.util.UUID;
import java.util.concurrent.ThreadLocalRandom;

/**
 * UUID version 7 (RFC 9562: 48-bit Unix milliseconds, then random bits), the server's id format,
 * so the baselines' inserts hit the primary key index the way the server's do (time-ordered keys
 * append at the right edge of the B-tree).
 */
public final class Uuid7 {
  private Uuid7() {}

  public static UUID next() {
    long ms = System.currentTimeMillis();
    ThreadLocalRandom r = ThreadLocalRandom.current();
    long msb = (ms << 16) | 0x7000L | (r.nextLong() & 0x0FFFL);
    long lsb = (r.nextLong() & 0x3FFFFFFFFFFFFFFFL) | 0x8000000000000000L;
    return new UUID(msb, lsb);
  }
}

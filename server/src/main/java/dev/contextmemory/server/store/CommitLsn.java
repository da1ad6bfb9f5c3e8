package dev.contextmemory.server.store;

import java.util.function.LongConsumer;
import org.jdbi.v3.core.config.JdbiConfig;

/**
 * Where the stores report the WAL position of each commit, for read-your-writes on standbys
 * (docs/scaling.md). A Jdbi setting rather than a store constructor argument, so every store gets it
 * from the one Jdbi. Without a sink (no standbys configured), writes commit exactly as before.
 */
public final class CommitLsn implements JdbiConfig<CommitLsn> {
  private LongConsumer sink;

  public CommitLsn() {}

  private CommitLsn(CommitLsn other) {
    this.sink = other.sink;
  }

  /** Receives the WAL insert position read right after each commit (at or past its commit record). */
  public CommitLsn setSink(LongConsumer sink) {
    this.sink = sink;
    return this;
  }

  LongConsumer sink() {
    return sink;
  }

  @Override
  public CommitLsn createCopy() {
    return new CommitLsn(this);
  }

  /** PostgreSQL's text form of an LSN ("16/B374D848") as one unsigned 64-bit number. */
  public static long parse(String lsn) {
    int slash = lsn.indexOf('/');
    if (slash < 0) {
      throw new IllegalArgumentException("not an LSN");
    }
    return (Long.parseLong(lsn.substring(0, slash), 16) << 32) | Long.parseLong(lsn.substring(slash + 1), 16);
  }
}

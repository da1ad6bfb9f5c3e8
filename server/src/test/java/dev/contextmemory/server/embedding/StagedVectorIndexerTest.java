package dev.contextmemory.server.embedding;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** Bulk writes first, but never for longer than MAX_DEFER. */
class StagedVectorIndexerTest {
  private static final long MS = TimeUnit.MILLISECONDS.toNanos(1);

  @Test
  void indexingWaitsWhileBulkWritesStageRows() {
    assertTrue(StagedVectorIndexer.defer(10 * MS, 0));
    assertTrue(StagedVectorIndexer.defer(249 * MS, 29.9));
  }

  @Test
  void indexingRunsOnceWritesPauseOrTheOldestRowHasWaitedLongEnough() {
    assertFalse(StagedVectorIndexer.defer(250 * MS, 0));
    assertFalse(StagedVectorIndexer.defer(10 * MS, 30));
    assertFalse(StagedVectorIndexer.defer(10 * MS, 600));
  }
}

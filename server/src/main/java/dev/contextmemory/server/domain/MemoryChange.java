package dev.contextmemory.server.domain;

import java.time.Instant;
import java.util.List;
import java.util.UUID;

/**
 * One recorded change to a memory. {@code change} is the stored name (created, updated,
 * superseded, confirmed, rejected, expired, deleted); {@code previous} is the version the change
 * ended, with when it was valid, or null when the content did not change.
 */
public record MemoryChange(long seq, UUID memoryId, UUID customerId, String change, List<String> changedFields,
    String actor, Instant changedAt, Memory previous, Instant validFrom, Instant validTo) {

  /** A page, oldest first, and the seq after which the next page starts (null at the end). */
  public record Page(List<MemoryChange> changes, Long next) {}
}

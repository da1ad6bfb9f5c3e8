package dev.contextmemory.server.domain;

import java.util.UUID;

/** CreateMemories, UpsertMemories and ImportMemories: their items and per-item outcomes. */
public final class MemoryBatch {
  private MemoryBatch() {}

  /** One validated item; {@code requestId} is null without one (always null in an upsert). */
  public record Item(UUID customerId, Memory.Draft draft, String requestId) {}

  /** Why an item was not written: the reason its single-item call would answer, and the field. */
  public record Failure(String reason, String field, String description) {}

  /**
   * One item's outcome: the stored memory and whether this call created it, or the failure.
   * {@code created} is false for an upsert that updated and for a create replayed by request id.
   */
  public record Result(Memory memory, boolean created, Failure failure) {
    public static Result failed(Failure f) {
      return new Result(null, false, f);
    }
  }
}

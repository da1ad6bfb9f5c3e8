package dev.contextmemory.server.grpc;

import dev.contextmemory.server.domain.FieldViolation;
import dev.contextmemory.server.domain.InvalidArgumentException;
import dev.contextmemory.server.domain.Memory;
import dev.contextmemory.server.domain.MemoryBatch;
import dev.contextmemory.server.domain.MemoryChange;
import dev.contextmemory.server.domain.MemoryField;
import dev.contextmemory.server.store.MemoryBatchStore;
import dev.contextmemory.v1.CreateMemoriesRequest;
import dev.contextmemory.v1.CreateMemoriesResponse;
import dev.contextmemory.v1.CreateMemoryRequest;
import dev.contextmemory.v1.MemoryChangeType;
import dev.contextmemory.v1.MemoryWriteError;
import dev.contextmemory.v1.MemoryWriteResult;
import dev.contextmemory.v1.UpsertMemoriesRequest;
import dev.contextmemory.v1.UpsertMemoriesResponse;
import dev.contextmemory.v1.UpsertMemoryRequest;
import java.time.Instant;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.UUID;

/**
 * CreateMemories and UpsertMemories (validate each item, write the valid ones in one store call,
 * answer a result per item) and the mapping of their results and of memory history. An invalid item
 * becomes its own INVALID_FIELD result, never the call's status: only an empty or oversized batch
 * fails the call.
 */
final class MemoryBatchRpcs {
  static final int MAX_BATCH = 1_000;

  private final MemoryBatchStore store;
  private final int embeddingDimension;

  MemoryBatchRpcs(MemoryBatchStore store, int embeddingDimension) {
    this.store = store;
    this.embeddingDimension = embeddingDimension;
  }

  CreateMemoriesResponse create(CreateMemoriesRequest req) {
    requireSize(req.getRequestsCount());
    Instant now = Instant.now();
    List<MemoryBatch.Item> items = new ArrayList<>();
    Set<String> requestIds = new HashSet<>();
    Set<String> keys = new HashSet<>();
    MemoryBatch.Result[] results = new MemoryBatch.Result[req.getRequestsCount()];
    List<Integer> positions = new ArrayList<>();
    for (int i = 0; i < req.getRequestsCount(); i++) {
      CreateMemoryRequest r = req.getRequests(i);
      Validator v = new Validator();
      MemoryBatch.Item item = item(v, r.getCustomerId(), r.getMemory(), false, now, v.requestId("request_id",
          r.getRequestId()));
      if (v.ok() && item.requestId() != null && !requestIds.add(item.customerId() + "|" + item.requestId())) {
        v.add("request_id", "is an earlier item's request_id for the same customer");
      }
      if (v.ok() && item.draft().key() != null && !keys.add(item.customerId() + "|" + item.draft().key())) {
        v.add("memory.key", "is an earlier item's key for the same customer");
      }
      place(v, item, i, items, positions, results);
    }
    List<MemoryBatch.Result> written = items.isEmpty() ? List.of()
        : store.create(Tenants.current(), Tenants.caller().actor(), items);
    CreateMemoriesResponse.Builder b = CreateMemoriesResponse.newBuilder();
    merge(results, positions, written).forEach(r -> b.addResults(result(r)));
    return b.build();
  }

  UpsertMemoriesResponse upsert(UpsertMemoriesRequest req) {
    requireSize(req.getRequestsCount());
    Instant now = Instant.now();
    List<MemoryBatch.Item> items = new ArrayList<>();
    Set<String> keys = new HashSet<>();
    MemoryBatch.Result[] results = new MemoryBatch.Result[req.getRequestsCount()];
    List<Integer> positions = new ArrayList<>();
    for (int i = 0; i < req.getRequestsCount(); i++) {
      UpsertMemoryRequest r = req.getRequests(i);
      Validator v = new Validator();
      MemoryBatch.Item item = item(v, r.getCustomerId(), r.getMemory(), true, now, null);
      if (v.ok() && !keys.add(item.customerId() + "|" + item.draft().key())) {
        v.add("memory.key", "is an earlier item's key for the same customer");
      }
      place(v, item, i, items, positions, results);
    }
    List<MemoryBatch.Result> written = items.isEmpty() ? List.of()
        : store.upsert(Tenants.current(), Tenants.caller().actor(), items);
    UpsertMemoriesResponse.Builder b = UpsertMemoriesResponse.newBuilder();
    merge(results, positions, written).forEach(r -> b.addResults(result(r)));
    return b.build();
  }

  /** One item's fields, checked like the single-item call's; null when they fail. */
  MemoryBatch.Item item(Validator v, String customerId, dev.contextmemory.v1.Memory m, boolean upsert, Instant now,
      String requestId) {
    UUID customer = v.id("customer_id", customerId);
    Memory.Draft d = MemoryRequests.draft(v, embeddingDimension, m, EnumSet.allOf(MemoryField.class), upsert, now);
    return v.ok() ? new MemoryBatch.Item(customer, d, requestId) : null;
  }

  /** The first violation of a failed item, as its failure (the result has room for one field). */
  static MemoryBatch.Failure invalid(Validator v) {
    try {
      v.throwIfInvalid();
    } catch (InvalidArgumentException e) {
      FieldViolation f = e.violations().get(0);
      int more = e.violations().size() - 1;
      return new MemoryBatch.Failure("INVALID_FIELD", f.field(),
          f.description() + (more > 0 ? " (and " + more + " more violation(s))" : ""));
    }
    throw new IllegalStateException("the item is valid");
  }

  static MemoryWriteResult result(MemoryBatch.Result r) {
    MemoryWriteResult.Builder b = MemoryWriteResult.newBuilder().setCreated(r.created());
    if (r.failure() != null) {
      b.setError(error(r.failure()));
    } else {
      b.setMemory(MemoryMapping.memory(r.memory()));
    }
    return b.build();
  }

  static MemoryWriteError error(MemoryBatch.Failure f) {
    return MemoryWriteError.newBuilder().setReason(f.reason()).setField(f.field()).setDescription(f.description())
        .build();
  }

  static dev.contextmemory.v1.MemoryChange change(MemoryChange c) {
    var b = dev.contextmemory.v1.MemoryChange.newBuilder()
        .setMemoryId(c.memoryId().toString())
        .setCustomerId(c.customerId().toString())
        .setType(switch (c.change()) {
          case "created" -> MemoryChangeType.MEMORY_CHANGE_TYPE_CREATED;
          case "updated" -> MemoryChangeType.MEMORY_CHANGE_TYPE_UPDATED;
          case "superseded" -> MemoryChangeType.MEMORY_CHANGE_TYPE_SUPERSEDED;
          case "confirmed" -> MemoryChangeType.MEMORY_CHANGE_TYPE_CONFIRMED;
          case "rejected" -> MemoryChangeType.MEMORY_CHANGE_TYPE_REJECTED;
          case "expired" -> MemoryChangeType.MEMORY_CHANGE_TYPE_EXPIRED;
          case "deleted" -> MemoryChangeType.MEMORY_CHANGE_TYPE_DELETED;
          default -> throw new IllegalStateException("unknown stored change " + c.change());
        })
        .addAllChangedFields(c.changedFields())
        .setActor(c.actor())
        .setChangeTime(ProtoMapping.timestamp(c.changedAt()));
    if (c.previous() != null) {
      b.setPrevious(MemoryMapping.memory(c.previous()))
          .setValidFromTime(ProtoMapping.timestamp(c.validFrom()))
          .setValidToTime(ProtoMapping.timestamp(c.validTo()));
    }
    return b.build();
  }

  private static void requireSize(int n) {
    if (n == 0) {
      throw InvalidArgumentException.of("requests", "must hold at least one item");
    }
    if (n > MAX_BATCH) {
      throw InvalidArgumentException.of("requests", "must hold at most " + MAX_BATCH + " items, got " + n);
    }
  }

  private static void place(Validator v, MemoryBatch.Item item, int i, List<MemoryBatch.Item> items,
      List<Integer> positions, MemoryBatch.Result[] results) {
    if (v.ok()) {
      items.add(item);
      positions.add(i);
    } else {
      results[i] = MemoryBatch.Result.failed(invalid(v));
    }
  }

  private static List<MemoryBatch.Result> merge(MemoryBatch.Result[] results, List<Integer> positions,
      List<MemoryBatch.Result> written) {
    for (int j = 0; j < positions.size(); j++) {
      results[positions.get(j)] = written.get(j);
    }
    return List.of(results);
  }
}

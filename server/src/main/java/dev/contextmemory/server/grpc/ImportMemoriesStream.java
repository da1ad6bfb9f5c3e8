package dev.contextmemory.server.grpc;

import dev.contextmemory.server.domain.MemoryBatch;
import dev.contextmemory.server.store.MemoryBatchStore;
import dev.contextmemory.v1.ImportMemoriesError;
import dev.contextmemory.v1.ImportMemoriesRequest;
import dev.contextmemory.v1.ImportMemoriesResponse;
import io.grpc.stub.StreamObserver;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * One ImportMemories stream, bounded like {@link ImportMessagesStream}: items are validated as they
 * arrive and buffered; every {@link #IMPORT_CHUNK} items, or sooner once they hold
 * {@link #IMPORT_CHUNK_BYTES}, are written by one {@link MemoryBatchStore#create} transaction.
 * onNext blocks while a chunk is written, and grpc-java only asks the client for more once it
 * returns: that is the backpressure that keeps memory flat. A stored request id answers its memory
 * with {@code created = false}, which is what the response counts as skipped.
 */
final class ImportMemoriesStream implements StreamObserver<ImportMemoriesRequest> {
  static final int IMPORT_CHUNK = MemoryBatchRpcs.MAX_BATCH;
  /** With 8 KiB contents, 16 KiB metadata and a 3 KiB vector, 1,000 items could hold 28 MiB. */
  static final long IMPORT_CHUNK_BYTES = 8L * 1024 * 1024;
  static final int MAX_IMPORT_ERRORS_REPORTED = 1_000;

  private final String tenant;
  private final String actor;
  private final StreamObserver<ImportMemoriesResponse> out;
  private final MemoryBatchStore store;
  private final MemoryBatchRpcs items;
  private final List<MemoryBatch.Item> chunk = new ArrayList<>(IMPORT_CHUNK);
  private final List<Long> chunkIndexes = new ArrayList<>(IMPORT_CHUNK);
  /** The (customer, request id) pairs of the buffered chunk: a repeat within one chunk is a skip. */
  private final Set<String> chunkRequestIds = new HashSet<>();
  private final ImportMemoriesResponse.Builder result = ImportMemoriesResponse.newBuilder();
  private long received;
  private long bufferedBytes;

  ImportMemoriesStream(String tenant, String actor, StreamObserver<ImportMemoriesResponse> out, MemoryBatchStore store,
      MemoryBatchRpcs items) {
    this.tenant = tenant;
    this.actor = actor;
    this.out = out;
    this.store = store;
    this.items = items;
  }

  @Override
  public void onNext(ImportMemoriesRequest req) {
    long index = received++;
    Validator v = new Validator();
    String requestId = v.requestId("request_id", req.getRequestId());
    if (req.getRequestId().isEmpty()) {
      v.add("request_id", "is required: it is what makes a re-run of the import skip this item");
    }
    MemoryBatch.Item item = items.item(v, req.getCustomerId(), req.getMemory(), false, Instant.now(), requestId);
    if (!v.ok()) {
      fail(index, MemoryBatchRpcs.invalid(v));
      return;
    }
    if (!chunkRequestIds.add(item.customerId() + "|" + item.requestId())) {
      result.setMemoriesSkipped(result.getMemoriesSkipped() + 1);
      return;
    }
    chunk.add(item);
    chunkIndexes.add(index);
    bufferedBytes += req.getSerializedSize();
    if (chunk.size() == IMPORT_CHUNK || bufferedBytes >= IMPORT_CHUNK_BYTES) {
      flush();
    }
  }

  @Override
  public void onError(Throwable t) {
    // The client cancelled or the stream broke: committed chunks stay, the buffered rest is dropped.
    chunk.clear();
    chunkIndexes.clear();
    chunkRequestIds.clear();
    bufferedBytes = 0;
  }

  @Override
  public void onCompleted() {
    flush();
    out.onNext(result.setItemsReceived(received).build());
    out.onCompleted();
  }

  private void flush() {
    if (chunk.isEmpty()) {
      return;
    }
    List<MemoryBatch.Result> written = store.create(tenant, actor, List.copyOf(chunk));
    for (int j = 0; j < written.size(); j++) {
      MemoryBatch.Result r = written.get(j);
      if (r.failure() != null) {
        fail(chunkIndexes.get(j), r.failure());
      } else if (r.created()) {
        result.setMemoriesCreated(result.getMemoriesCreated() + 1);
      } else {
        result.setMemoriesSkipped(result.getMemoriesSkipped() + 1);
      }
    }
    chunk.clear();
    chunkIndexes.clear();
    chunkRequestIds.clear();
    bufferedBytes = 0;
  }

  private void fail(long index, MemoryBatch.Failure f) {
    result.setItemsFailed(result.getItemsFailed() + 1);
    if (result.getErrorsCount() < MAX_IMPORT_ERRORS_REPORTED) {
      result.addErrors(ImportMemoriesError.newBuilder().setIndex(index).setError(MemoryBatchRpcs.error(f)));
    }
  }
}

package dev.contextmemory.server.grpc;

import dev.contextmemory.server.domain.ContactKey;
import dev.contextmemory.server.domain.ContactNormalizer;
import dev.contextmemory.server.domain.CustomerField;
import dev.contextmemory.server.domain.FieldViolation;
import dev.contextmemory.server.domain.ImportItem;
import dev.contextmemory.server.domain.InvalidArgumentException;
import dev.contextmemory.server.domain.Message;
import dev.contextmemory.server.store.MessageImportStore;
import dev.contextmemory.v1.ImportMessagesError;
import dev.contextmemory.v1.ImportMessagesRequest;
import dev.contextmemory.v1.ImportMessagesResponse;
import io.grpc.stub.StreamObserver;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;

/**
 * One import stream. Items are validated as they arrive and buffered; every {@link #IMPORT_CHUNK}
 * items, or sooner once they hold {@link #IMPORT_CHUNK_BYTES}, are written in one transaction. onNext runs on the request executor and blocks while a
 * chunk is written, and grpc-java only asks the client for more once it returns: that is the
 * backpressure that keeps memory flat.
 */
final class ImportMessagesStream implements StreamObserver<ImportMessagesRequest> {
  /** Items are written in chunks of this many, so memory stays flat however long the stream. */
  static final int IMPORT_CHUNK = 1_000;
  /**
   * Items of up to the maximum message size each would make a 1,000-item chunk gigabytes; the byte
   * bound keeps a stream's buffer under this plus one message, whatever the items' sizes.
   */
  static final long IMPORT_CHUNK_BYTES = 8L * 1024 * 1024;
  static final int MAX_IMPORT_ERRORS_REPORTED = 1_000;

  private final String tenant;
  private final StreamObserver<ImportMessagesResponse> out;
  private final MessageImportStore messages;
  private final ContactNormalizer contacts;
  private final List<ImportItem> chunk = new ArrayList<>(IMPORT_CHUNK);
  private final ImportMessagesResponse.Builder result = ImportMessagesResponse.newBuilder();
  private long received;
  private long bufferedBytes;

  ImportMessagesStream(String tenant, StreamObserver<ImportMessagesResponse> out, MessageImportStore messages,
      ContactNormalizer contacts) {
    this.tenant = tenant;
    this.out = out;
    this.messages = messages;
    this.contacts = contacts;
  }

  @Override
  public void onNext(ImportMessagesRequest item) {
    long index = received++;
    Validator v = new Validator();
    ImportItem parsed = importItem(v, index, item);
    if (!v.ok() || parsed == null) {
      FieldViolation first = firstViolation(v);
      fail(new ImportItem.Failure(index, first.field(), "INVALID_FIELD", first.description()));
      return;
    }
    chunk.add(parsed);
    bufferedBytes += item.getSerializedSize();
    if (chunk.size() == IMPORT_CHUNK || bufferedBytes >= IMPORT_CHUNK_BYTES) {
      flush();
    }
  }

  @Override
  public void onError(Throwable t) {
    // The client cancelled or the stream broke: committed chunks stay, the buffered rest is dropped.
    chunk.clear();
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
    ImportItem.Outcome o = messages.importChunk(tenant, List.copyOf(chunk));
    chunk.clear();
    bufferedBytes = 0;
    result.setConversationsCreated(result.getConversationsCreated() + o.conversationsCreated())
        .setMessagesCreated(result.getMessagesCreated() + o.messagesCreated())
        .setMessagesSkipped(result.getMessagesSkipped() + o.messagesSkipped());
    o.failures().stream().sorted((a, b) -> Long.compare(a.index(), b.index())).forEach(this::fail);
  }

  private void fail(ImportItem.Failure f) {
    result.setItemsFailed(result.getItemsFailed() + 1);
    if (result.getErrorsCount() < MAX_IMPORT_ERRORS_REPORTED) {
      result.addErrors(ImportMessagesError.newBuilder()
          .setIndex(f.index()).setField(f.field()).setReason(f.reason()).setDescription(f.description()));
    }
  }

  private ImportItem importItem(Validator v, long index, ImportMessagesRequest item) {
    UUID customerId = null;
    ContactKey key = null;
    switch (item.getCustomerCase()) {
      case CUSTOMER_ID -> customerId = v.id("customer_id", item.getCustomerId());
      case CONTACT_KEY -> key = contactKey(v, item.getContactKey());
      case CUSTOMER_NOT_SET -> v.add("customer", "is required: set customer_id or contact_key");
    }
    String channel = ConversationRequests.channel(v, "channel", item.getChannel());
    String threadKey = ConversationRequests.threadKey(v, "thread_key", item.getThreadKey());
    if (!item.hasMessage()) {
      v.add("message", "is required");
    }
    Message.Draft draft = ConversationRequests.message(v, "message", item.getMessage(), true, Instant.now());
    String metadata = v.metadata("conversation_metadata", item.getConversationMetadata());
    return v.ok() ? new ImportItem(index, customerId, key, channel, threadKey, draft, metadata) : null;
  }

  private ContactKey contactKey(Validator v, dev.contextmemory.v1.ContactKey k) {
    return switch (k.getKeyCase()) {
      case PHONE -> {
        String p = v.check(() -> contacts.phone(k.getPhone(), "contact_key.phone"));
        yield p == null ? null : new ContactKey(CustomerField.PHONE, p);
      }
      case EMAIL -> {
        String e = v.check(() -> contacts.email(k.getEmail(), "contact_key.email"));
        yield e == null ? null : new ContactKey(CustomerField.EMAIL, e);
      }
      case EXTERNAL_REF -> {
        String r = v.requiredText("contact_key.external_ref", k.getExternalRef(), CustomerGrpcService.MAX_EXTERNAL_REF_LENGTH);
        yield r == null ? null : new ContactKey(CustomerField.EXTERNAL_REF, r);
      }
      case KEY_NOT_SET -> {
        v.add("contact_key", "is required: set one of phone, email or external_ref");
        yield null;
      }
    };
  }

  private static FieldViolation firstViolation(Validator v) {
    try {
      v.throwIfInvalid();
    } catch (InvalidArgumentException e) {
      return e.violations().get(0);
    }
    return new FieldViolation("", "invalid item");
  }
}

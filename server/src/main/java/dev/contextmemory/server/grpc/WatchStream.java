package dev.contextmemory.server.grpc;

import com.google.rpc.Code;
import com.google.rpc.ErrorInfo;
import com.google.rpc.RetryInfo;
import dev.contextmemory.server.domain.ConversationEvent;
import dev.contextmemory.server.watch.WatchHub;
import dev.contextmemory.v1.ConversationEventKind;
import dev.contextmemory.v1.HandoffChange;
import dev.contextmemory.v1.WatchConversationsResponse;
import io.grpc.protobuf.StatusProto;
import io.grpc.stub.ServerCallStreamObserver;
import java.util.ArrayDeque;
import java.util.Map;

/**
 * One WatchConversations stream: a bounded buffer between the hub and gRPC's flow control. Events
 * are sent only while the call is ready ({@code isReady}, then {@code onReadyHandler} resumes);
 * the rest wait in the buffer. A full buffer ends the stream with RESOURCE_EXHAUSTED and the cursor
 * of the last event sent, so a slow client costs at most {@code capacity} events of memory and
 * never slows the writers or the other streams. Every method runs under this object's lock, which
 * also serializes the calls into the observer.
 */
final class WatchStream implements WatchHub.Sink {
  static final String RESUME_CURSOR = "resume_cursor";
  private static final String CURSOR_SCOPE = "watch";

  private final ServerCallStreamObserver<WatchConversationsResponse> call;
  private final PageTokens tokens;
  private final String tenant;
  private final int capacity;
  private final ArrayDeque<Queued> queue = new ArrayDeque<>();
  private WatchHub.Subscription subscription;
  /** Position of the last response sent (the resume point while the buffer holds events). */
  private long sent;
  /** Every event through here was offered (the resume point once the buffer is empty). */
  private long scanned;
  private boolean quietSinceCheckpoint = true;
  private boolean ended;
  /** Whether the stream has a position (a resume cursor, or the hub's start): else no resume_cursor. */
  private boolean positioned;

  private record Queued(long position, WatchConversationsResponse response) {}

  private WatchStream(ServerCallStreamObserver<WatchConversationsResponse> call, PageTokens tokens, String tenant,
      int capacity, long start) {
    this.call = call;
    this.tokens = tokens;
    this.tenant = tenant;
    this.capacity = capacity;
    this.sent = start;
    this.scanned = start;
  }

  /** Opens the stream: subscribes (which may throw, answering the call) and wires flow control. */
  static void open(WatchHub hub, ServerCallStreamObserver<WatchConversationsResponse> call, PageTokens tokens,
      String tenant, ConversationEvent.Filter filter, Long after, int capacity) {
    WatchStream stream = new WatchStream(call, tokens, tenant, capacity, after == null ? 0 : after);
    stream.positioned = after != null;
    // Handlers must be set before the handler method returns; they run on the call's executor.
    call.setOnReadyHandler(stream::drain);
    call.setOnCancelHandler(stream::cancelled);
    WatchHub.Subscription sub;
    try {
      sub = hub.subscribe(tenant, filter, after, stream);
    } catch (WatchHub.Stopping stopping) {
      // Not INTERNAL: the client is to reconnect (to another replica), from its cursor if it had one.
      stream.shutdown();
      return;
    }
    synchronized (stream) {
      stream.subscription = sub;
      stream.positioned = true;
      if (after == null) {
        stream.sent = Math.max(stream.sent, sub.startPosition());
        stream.scanned = Math.max(stream.scanned, sub.startPosition());
      }
      if (stream.ended) {
        sub.close();
      }
    }
  }

  /** Decodes a resume cursor; null for an empty one. */
  static Long decodeCursor(PageTokens tokens, String tenant, String cursor) {
    return tokens.decode(tenant, cursor, CURSOR_SCOPE, "resume_cursor", 1, p -> Long.parseLong(p[0]));
  }

  private String cursor(long position) {
    return tokens.encode(tenant, CURSOR_SCOPE, Long.toString(position));
  }

  @Override
  public synchronized boolean deliver(ConversationEvent e) {
    if (ended) {
      return false;
    }
    if (queue.size() >= capacity) {
      end(Code.RESOURCE_EXHAUSTED, "WATCH_CONSUMER_TOO_SLOW", "the client read this stream more slowly than events"
          + " arrived and its buffer of " + capacity + " events filled; reopen it with resume_cursor", true);
      return false;
    }
    queue.add(new Queued(e.position(), response(e)));
    drain();
    return true;
  }

  @Override
  public synchronized int room() {
    return ended ? 0 : capacity - queue.size();
  }

  @Override
  public synchronized void scannedThrough(long position) {
    scanned = Math.max(scanned, position);
  }

  @Override
  public synchronized void checkpoint() {
    if (!ended && queue.isEmpty() && quietSinceCheckpoint && call.isReady()) {
      call.onNext(WatchConversationsResponse.newBuilder().setCursor(cursor(Math.max(sent, scanned)))
          .setKind(ConversationEventKind.CONVERSATION_EVENT_KIND_CHECKPOINT).build());
      sent = Math.max(sent, scanned);
    }
    quietSinceCheckpoint = true;
  }

  @Override
  public synchronized void shutdown() {
    end(Code.UNAVAILABLE, "SERVER_SHUTTING_DOWN", "the server is shutting down; reopen the stream (on any replica)"
        + " with resume_cursor", true);
  }

  @Override
  public synchronized void fail(RuntimeException e) {
    if (!ended) {
      ended = true;
      queue.clear();
      call.onError(ErrorMapper.toException(e));
    }
  }

  private synchronized void drain() {
    while (!ended && !queue.isEmpty() && call.isReady()) {
      Queued q = queue.poll();
      call.onNext(q.response());
      sent = q.position();
      quietSinceCheckpoint = false;
    }
    if (!ended && subscription != null && queue.size() <= capacity / 2) {
      subscription.resume();
    }
  }

  private synchronized void cancelled() {
    ended = true;
    queue.clear();
    if (subscription != null) {
      subscription.close();
    }
  }

  /** Ends the stream with {@code code} and the cursor to resume from in ErrorInfo. */
  private void end(Code code, String reason, String message, boolean retry) {
    if (ended) {
      return;
    }
    ended = true;
    // With events still buffered the client has seen up to the last one sent; with none, every
    // event through the scanned position has been offered, so it may resume from there.
    long resume = queue.isEmpty() ? Math.max(sent, scanned) : sent;
    queue.clear();
    // A stream refused before it had a position (opened without a cursor during shutdown) has none
    // to resume from: the client starts again from now.
    com.google.rpc.Status.Builder status = com.google.rpc.Status.newBuilder().setCode(code.getNumber())
        .setMessage(message)
        .addDetails(com.google.protobuf.Any.pack(ErrorInfo.newBuilder().setReason(reason).setDomain(ErrorMapper.DOMAIN)
            .putAllMetadata(positioned ? Map.of(RESUME_CURSOR, cursor(resume)) : Map.of()).build()));
    if (retry) {
      status.addDetails(com.google.protobuf.Any.pack(RetryInfo.newBuilder()
          .setRetryDelay(com.google.protobuf.Duration.newBuilder().setNanos(100_000_000)).build()));
    }
    call.onError(StatusProto.toStatusRuntimeException(status.build()));
    if (subscription != null) {
      subscription.close();
    }
  }

  private WatchConversationsResponse response(ConversationEvent e) {
    WatchConversationsResponse.Builder b = WatchConversationsResponse.newBuilder()
        .setCursor(cursor(e.position()))
        .setKind(kind(e.kind()))
        .setConversationId(e.conversationId().toString())
        .setCustomerId(e.customerId().toString())
        .setChannel(ConversationMapping.channel(e.channel()))
        .setEventTime(ProtoMapping.timestamp(e.occurredAt()));
    if (e.message() != null) {
      b.setMessage(ConversationMapping.message(e.message()));
    }
    if (e.conversation() != null) {
      b.setConversation(ConversationMapping.conversation(e.conversation()));
    }
    if (e.kind() == ConversationEvent.Kind.HANDOFF_CHANGED && e.payloadJson() != null) {
      com.google.protobuf.Struct details = ProtoMapping.struct(e.payloadJson());
      com.google.protobuf.Value none = com.google.protobuf.Value.getDefaultInstance();
      b.setHandoff(HandoffChange.newBuilder()
          .setState(HandoffMapping.state(details.getFieldsOrDefault("state", none).getStringValue()))
          .setHandoffId(details.getFieldsOrDefault("handoff_id", none).getStringValue())
          .setAssigneeId(details.getFieldsOrDefault("assignee_id", none).getStringValue())
          .setDetails(details));
    }
    return b.build();
  }

  private static ConversationEventKind kind(ConversationEvent.Kind k) {
    return switch (k) {
      case MESSAGE_APPENDED -> ConversationEventKind.CONVERSATION_EVENT_KIND_MESSAGE_APPENDED;
      case CONVERSATION_OPENED -> ConversationEventKind.CONVERSATION_EVENT_KIND_CONVERSATION_OPENED;
      case CONVERSATION_CLOSED -> ConversationEventKind.CONVERSATION_EVENT_KIND_CONVERSATION_CLOSED;
      case CONVERSATION_UPDATED -> ConversationEventKind.CONVERSATION_EVENT_KIND_CONVERSATION_UPDATED;
      case CONVERSATION_DELETED -> ConversationEventKind.CONVERSATION_EVENT_KIND_CONVERSATION_DELETED;
      case HANDOFF_CHANGED -> ConversationEventKind.CONVERSATION_EVENT_KIND_HANDOFF_CHANGED;
    };
  }
}

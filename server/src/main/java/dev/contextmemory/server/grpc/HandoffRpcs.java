package dev.contextmemory.server.grpc;

import dev.contextmemory.server.domain.Handoff;
import dev.contextmemory.server.store.HandoffStore;
import dev.contextmemory.v1.*;
import io.grpc.stub.StreamObserver;
import java.util.UUID;

/**
 * The handoff RPCs of ConversationService (ConversationGrpcService delegates to them): validate the
 * request, call one {@link HandoffStore} transition, map the result. The caller's tenant and actor
 * (its API key prefix, recorded with every transition) come from {@link Tenants}.
 */
final class HandoffRpcs {
  static final int MAX_REASON_LENGTH = 1_024;
  static final int MAX_NOTE_LENGTH = 4_096;
  static final int MAX_ASSIGNEE_LENGTH = 256;
  static final int MAX_PRIORITY = 100;

  private final HandoffStore handoffs;
  private final PageTokens tokens;

  HandoffRpcs(HandoffStore handoffs, PageTokens tokens) {
    this.handoffs = handoffs;
    this.tokens = tokens;
  }

  void request(RequestHandoffRequest req, StreamObserver<RequestHandoffResponse> out) {
    Validator v = new Validator();
    UUID id = v.id("conversation_id", req.getConversationId());
    String reason = v.text("reason", req.getReason(), MAX_REASON_LENGTH);
    if (req.getPriority() < 0 || req.getPriority() > MAX_PRIORITY) {
      v.add("priority", "must be within 0.." + MAX_PRIORITY + ", got " + req.getPriority());
    }
    String requestId = v.requestId("request_id", req.getRequestId());
    v.throwIfInvalid();
    Handoff.Result r = handoffs.request(Tenants.current(), id, requestId, reason, req.getPriority(),
        Tenants.caller().actor());
    reply(out, RequestHandoffResponse.newBuilder().setHandoff(HandoffMapping.handoff(r.handoff()))
        .setReplayed(r.replayed()).build());
  }

  void accept(AcceptHandoffRequest req, StreamObserver<AcceptHandoffResponse> out) {
    Validator v = new Validator();
    UUID id = v.id("handoff_id", req.getHandoffId());
    String assignee = v.requiredText("assignee_id", req.getAssigneeId(), MAX_ASSIGNEE_LENGTH);
    v.throwIfInvalid();
    Handoff.Result r = handoffs.accept(Tenants.current(), id, assignee, Tenants.caller().actor());
    reply(out, AcceptHandoffResponse.newBuilder().setHandoff(HandoffMapping.handoff(r.handoff()))
        .setReplayed(r.replayed()).build());
  }

  void complete(CompleteHandoffRequest req, StreamObserver<CompleteHandoffResponse> out) {
    Validator v = new Validator();
    UUID id = v.id("handoff_id", req.getHandoffId());
    String assignee = v.requiredText("assignee_id", req.getAssigneeId(), MAX_ASSIGNEE_LENGTH);
    String resolution = v.text("resolution", req.getResolution(), MAX_NOTE_LENGTH);
    v.throwIfInvalid();
    Handoff.Completed c = handoffs.complete(Tenants.current(), id, assignee, resolution, req.getCloseConversation(),
        Tenants.caller().actor());
    reply(out, CompleteHandoffResponse.newBuilder().setHandoff(HandoffMapping.handoff(c.handoff()))
        .setConversation(ConversationMapping.conversation(c.conversation())).setReplayed(c.replayed()).build());
  }

  void cancel(CancelHandoffRequest req, StreamObserver<CancelHandoffResponse> out) {
    Validator v = new Validator();
    UUID id = v.id("handoff_id", req.getHandoffId());
    String note = v.text("note", req.getNote(), MAX_NOTE_LENGTH);
    v.throwIfInvalid();
    Handoff.Result r = handoffs.cancel(Tenants.current(), id, note, Tenants.caller().actor());
    reply(out, CancelHandoffResponse.newBuilder().setHandoff(HandoffMapping.handoff(r.handoff()))
        .setReplayed(r.replayed()).build());
  }

  void queue(ListHandoffQueueRequest req, StreamObserver<ListHandoffQueueResponse> out) {
    Validator v = new Validator();
    int pageSize = v.pageSize("page_size", req.getPageSize());
    String channel = null;
    if (req.getChannel() == Channel.UNRECOGNIZED) {
      v.add("channel", "unknown channel " + req.getChannelValue());
    } else if (req.getChannel() != Channel.CHANNEL_UNSPECIFIED) {
      channel = ConversationMapping.channel(req.getChannel());
    }
    String filterKey = "handoff-queue|" + channel;
    Handoff.QueueCursor after = v.ok() ? v.check(() -> tokens.decode(Tenants.current(), req.getPageToken(), filterKey,
        "page_token", 3, p -> new Handoff.QueueCursor(Integer.parseInt(p[0]), PageTokens.instant(p[1]),
            PageTokens.uuid(p[2])))) : null;
    v.throwIfInvalid();
    Handoff.QueuePage page = handoffs.queue(Tenants.current(), channel, after, pageSize);
    ListHandoffQueueResponse.Builder b = ListHandoffQueueResponse.newBuilder();
    page.handoffs().forEach(q -> b.addHandoffs(HandoffMapping.queued(q)));
    if (page.next() != null) {
      b.setNextPageToken(tokens.encode(Tenants.current(), filterKey, Integer.toString(page.next().priority()),
          PageTokens.micros(page.next().requestedAt()), page.next().id().toString()));
    }
    reply(out, b.build());
  }

  void history(ListHandoffsRequest req, StreamObserver<ListHandoffsResponse> out) {
    Validator v = new Validator();
    UUID id = v.id("conversation_id", req.getConversationId());
    int pageSize = v.pageSize("page_size", req.getPageSize());
    String filterKey = "handoffs|" + id;
    Handoff.Cursor after = v.ok() ? v.check(() -> tokens.decode(Tenants.current(), req.getPageToken(), filterKey,
        "page_token", 2, p -> new Handoff.Cursor(PageTokens.instant(p[0]), PageTokens.uuid(p[1])))) : null;
    v.throwIfInvalid();
    Handoff.Page page = handoffs.history(Tenants.current(), id, after, pageSize);
    ListHandoffsResponse.Builder b = ListHandoffsResponse.newBuilder();
    page.handoffs().forEach(x -> b.addHandoffs(HandoffMapping.handoff(x)));
    if (page.next() != null) {
      b.setNextPageToken(tokens.encode(Tenants.current(), filterKey, PageTokens.micros(page.next().requestedAt()),
          page.next().id().toString()));
    }
    reply(out, b.build());
  }

  private static <T> void reply(StreamObserver<T> out, T response) {
    out.onNext(response);
    out.onCompleted();
  }
}

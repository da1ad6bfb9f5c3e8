package dev.contextmemory.server.grpc;

import com.google.protobuf.Duration;
import dev.contextmemory.server.domain.Handoff;
import dev.contextmemory.v1.ConversationHandoffState;
import dev.contextmemory.v1.HandoffState;
import dev.contextmemory.v1.QueuedHandoff;

/** Handoffs between their stored form and proto. */
final class HandoffMapping {
  private HandoffMapping() {}

  static ConversationHandoffState conversationState(String stored) {
    return switch (stored) {
      case "requested" -> ConversationHandoffState.CONVERSATION_HANDOFF_STATE_REQUESTED;
      case "accepted" -> ConversationHandoffState.CONVERSATION_HANDOFF_STATE_ACCEPTED;
      default -> ConversationHandoffState.CONVERSATION_HANDOFF_STATE_AI;
    };
  }

  static HandoffState state(String stored) {
    return switch (stored) {
      case "requested" -> HandoffState.HANDOFF_STATE_REQUESTED;
      case "accepted" -> HandoffState.HANDOFF_STATE_ACCEPTED;
      case "completed" -> HandoffState.HANDOFF_STATE_COMPLETED;
      case "cancelled" -> HandoffState.HANDOFF_STATE_CANCELLED;
      default -> throw new IllegalStateException("unknown stored handoff state " + stored);
    };
  }

  static dev.contextmemory.v1.Handoff handoff(Handoff h) {
    var b = dev.contextmemory.v1.Handoff.newBuilder()
        .setId(h.id().toString())
        .setConversationId(h.conversationId().toString())
        .setCustomerId(h.customerId().toString())
        .setChannel(ConversationMapping.channel(h.channel()))
        .setState(state(h.state()))
        .setReason(h.reason())
        .setPriority(h.priority())
        .setRequestTime(ProtoMapping.timestamp(h.requestedAt()))
        .setRequestedBy(h.requestedBy())
        .setResolution(h.resolution())
        .setClosedConversation(h.closedConversation());
    if (h.requestId() != null) {
      b.setRequestId(h.requestId());
    }
    if (h.acceptedAt() != null) {
      b.setAssigneeId(h.assigneeId()).setAcceptTime(ProtoMapping.timestamp(h.acceptedAt()))
          .setAcceptedBy(h.acceptedBy());
    }
    if (h.completedAt() != null) {
      b.setCompleteTime(ProtoMapping.timestamp(h.completedAt())).setCompletedBy(h.completedBy());
    }
    if (h.cancelledAt() != null) {
      b.setCancelTime(ProtoMapping.timestamp(h.cancelledAt())).setCancelledBy(h.cancelledBy());
    }
    return b.build();
  }

  static QueuedHandoff queued(Handoff.Queued q) {
    return QueuedHandoff.newBuilder().setHandoff(handoff(q.handoff())).setWaitDuration(duration(q.waited())).build();
  }

  static Duration duration(java.time.Duration d) {
    return Duration.newBuilder().setSeconds(d.getSeconds()).setNanos(d.getNano()).build();
  }
}

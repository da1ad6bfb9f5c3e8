package dev.contextmemory.server.store;

import dev.contextmemory.server.domain.Conversation;
import dev.contextmemory.server.domain.ConversationEvent;
import dev.contextmemory.server.domain.FailedPreconditionException;
import dev.contextmemory.server.domain.Handoff;
import dev.contextmemory.server.domain.Ids;
import dev.contextmemory.server.domain.NotFoundException;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;
import org.jdbi.v3.core.Handle;
import org.jdbi.v3.core.Jdbi;
import org.jdbi.v3.core.mapper.RowMapper;
import org.jdbi.v3.core.statement.Query;

/**
 * Handoffs of conversations to human agents. Each transition is one method and one transaction
 * that locks what it changes, checks the state it starts from, writes the handoff row and the
 * conversation's {@code handoff_state} together and returns the new state: a place where a later
 * change can record an event in the same transaction.
 *
 * <p>Locks: RequestHandoff locks the conversation row (so one conversation gets one active handoff
 * and a retried request_id finds the first call's row); Accept, Complete and Cancel lock the
 * handoff row first and then update the conversation row. Two accepts of one handoff thus
 * serialize on its row: the second re-reads it after the first commits (READ COMMITTED re-checks a
 * locked row's newest version) and finds it ACCEPTED.
 */
public final class HandoffStore extends Store {
  static final String COLUMNS = "h.id, h.conversation_id, h.customer_id, h.channel, h.state, h.reason, h.priority,"
      + " h.request_id, h.requested_at, h.requested_by, h.assignee_id, h.accepted_at, h.accepted_by, h.completed_at,"
      + " h.completed_by, h.resolution, h.closed_conversation, h.cancelled_at, h.cancelled_by";

  static final RowMapper<Handoff> HANDOFF = (rs, ctx) -> new Handoff(
      rs.getObject("id", UUID.class),
      rs.getObject("conversation_id", UUID.class),
      rs.getObject("customer_id", UUID.class),
      rs.getString("channel"),
      rs.getString("state"),
      rs.getString("reason"),
      rs.getInt("priority"),
      rs.getString("request_id"),
      Rows.instant(rs, "requested_at"),
      rs.getString("requested_by"),
      rs.getString("assignee_id"),
      Rows.instant(rs, "accepted_at"),
      rs.getString("accepted_by"),
      Rows.instant(rs, "completed_at"),
      rs.getString("completed_by"),
      rs.getString("resolution"),
      rs.getBoolean("closed_conversation"),
      Rows.instant(rs, "cancelled_at"),
      rs.getString("cancelled_by"));

  /** A handoff with its row locked, and whether its conversation is closed. */
  private record Locked(Handoff handoff, boolean conversationClosed) {}

  private final ConversationEvents events;

  public HandoffStore(Jdbi jdbi, ConversationEvents events) {
    super(jdbi);
    this.events = events;
  }

  /**
   * Records the transition for WatchConversations (HANDOFF_CHANGED) inside the transition's
   * transaction, after the conversation's row is locked (request: FOR UPDATE; the others: the
   * UPDATE of its handoff_state). The payload names ids and the state only, no free text.
   */
  private static void recordChange(Handle h, String tenant, Handoff x) {
    StringBuilder json = new StringBuilder("{\"state\":\"").append(x.state())
        .append("\",\"handoff_id\":\"").append(x.id()).append('"')
        .append(",\"priority\":").append(x.priority());
    if (x.assigneeId() != null) {
      json.append(",\"assignee_id\":").append(jsonString(x.assigneeId()));
    }
    ConversationEvents.record(h, tenant, x.conversationId(), ConversationEvent.Kind.HANDOFF_CHANGED,
        json.append('}').toString());
  }

  private static String jsonString(String v) {
    StringBuilder b = new StringBuilder("\"");
    for (char ch : v.toCharArray()) {
      switch (ch) {
        case '"' -> b.append("\\\"");
        case '\\' -> b.append("\\\\");
        default -> {
          if (ch < 0x20) {
            b.append(String.format("\\u%04x", (int) ch));
          } else {
            b.append(ch);
          }
        }
      }
    }
    return b.append('"').toString();
  }

  /** Wakes the watch sequencer once a transition that recorded an event has committed. */
  private <T> T notifying(T result, boolean changed) {
    if (changed) {
      events.committed();
    }
    return result;
  }

  public Handoff.Result request(String tenant, UUID conversationId, String requestId, String reason, int priority,
      String actor) {
    Handoff.Result r = write(h -> {
      record Conv(UUID customerId, String channel, boolean closed) {}
      Conv c = h.createQuery("SELECT customer_id, channel, closed_at IS NOT NULL AS closed FROM conversations"
              + " WHERE tenant_id = :tenant AND id = :id AND deleted_at IS NULL FOR UPDATE")
          .bind("tenant", tenant).bind("id", conversationId)
          .map((rs, ctx) -> new Conv(rs.getObject("customer_id", UUID.class), rs.getString("channel"),
              rs.getBoolean("closed")))
          .findOne().orElseThrow(() -> conversationNotFound(conversationId));
      if (requestId != null) {
        Optional<Handoff> earlier = h.createQuery("SELECT " + COLUMNS
                + " FROM handoffs h WHERE h.tenant_id = :tenant AND h.request_id = :request_id")
            .bind("tenant", tenant).bind("request_id", requestId).map(HANDOFF).findOne();
        if (earlier.isPresent()) {
          if (!earlier.get().conversationId().equals(conversationId)) {
            throw UniqueViolations.conflict("handoffs_request_key"); // as if the unique index had caught it
          }
          return new Handoff.Result(earlier.get(), true);
        }
      }
      if (c.closed()) {
        throw new FailedPreconditionException("CONVERSATION_CLOSED",
            "the conversation is closed; a closed conversation cannot be handed to a human",
            Map.of("conversation_id", conversationId.toString()));
      }
      Optional<Handoff> active = h.createQuery("SELECT " + COLUMNS + " FROM handoffs h WHERE h.tenant_id = :tenant"
              + " AND h.conversation_id = :conversation AND h.state IN ('requested', 'accepted')")
          .bind("tenant", tenant).bind("conversation", conversationId).map(HANDOFF).findOne();
      if (active.isPresent()) {
        Handoff a = active.get();
        Map<String, String> meta = new LinkedHashMap<>();
        meta.put("handoff_id", a.id().toString());
        if (a.state().equals("accepted")) {
          meta.put("assignee_id", a.assigneeId());
          throw new FailedPreconditionException("HANDOFF_ALREADY_ACCEPTED",
              "a human agent already handles this conversation (handoff " + a.id() + ")", meta);
        }
        throw new FailedPreconditionException("HANDOFF_ALREADY_REQUESTED",
            "a handoff of this conversation is already waiting in the queue (handoff " + a.id() + ")", meta);
      }
      Handoff created = h.createQuery("INSERT INTO handoffs AS h (tenant_id, id, conversation_id, customer_id, channel,"
              + " reason, priority, request_id, requested_by) VALUES (:tenant, :id, :conversation, :customer, :channel,"
              + " :reason, :priority, :request_id, :actor) RETURNING " + COLUMNS)
          .bind("tenant", tenant).bind("id", Ids.newId()).bind("conversation", conversationId)
          .bind("customer", c.customerId()).bind("channel", c.channel()).bind("reason", reason == null ? "" : reason)
          .bind("priority", priority).bind("request_id", requestId).bind("actor", actor)
          .map(HANDOFF).one();
      setConversationState(h, tenant, conversationId, "requested");
      recordChange(h, tenant, created);
      return new Handoff.Result(created, false);
    });
    return notifying(r, !r.replayed());
  }

  public Handoff.Result accept(String tenant, UUID handoffId, String assigneeId, String actor) {
    Handoff.Result r = write(h -> {
      Locked l = lock(h, tenant, handoffId);
      Handoff x = l.handoff();
      switch (x.state()) {
        case "accepted" -> {
          if (x.assigneeId().equals(assigneeId)) {
            return new Handoff.Result(x, true);
          }
          throw new FailedPreconditionException("HANDOFF_ALREADY_ACCEPTED",
              "another human agent accepted this handoff first", Map.of("handoff_id", x.id().toString(),
                  "assignee_id", x.assigneeId(), "accept_time", x.acceptedAt().toString()));
        }
        case "completed" -> throw finished(x, "HANDOFF_COMPLETED", "the handoff is already completed");
        case "cancelled" -> throw finished(x, "HANDOFF_CANCELLED", "the handoff was cancelled");
        default -> { }
      }
      if (l.conversationClosed()) {
        throw new FailedPreconditionException("CONVERSATION_CLOSED",
            "the handoff's conversation was closed; cancel the handoff instead",
            Map.of("handoff_id", x.id().toString(), "conversation_id", x.conversationId().toString()));
      }
      Handoff accepted = h.createQuery("UPDATE handoffs AS h SET state = 'accepted', assignee_id = :assignee,"
              + " accepted_at = now(), accepted_by = :actor WHERE h.tenant_id = :tenant AND h.id = :id RETURNING "
              + COLUMNS)
          .bind("tenant", tenant).bind("id", handoffId).bind("assignee", assigneeId).bind("actor", actor)
          .map(HANDOFF).one();
      setConversationState(h, tenant, x.conversationId(), "accepted");
      recordChange(h, tenant, accepted);
      return new Handoff.Result(accepted, false);
    });
    return notifying(r, !r.replayed());
  }

  public Handoff.Completed complete(String tenant, UUID handoffId, String assigneeId, String resolution,
      boolean closeConversation, String actor) {
    Handoff.Completed r = write(h -> {
      Locked l = lock(h, tenant, handoffId);
      Handoff x = l.handoff();
      boolean wasClosed = l.conversationClosed();
      switch (x.state()) {
        case "completed" -> {
          return new Handoff.Completed(x, conversation(h, tenant, x.conversationId()), true);
        }
        case "cancelled" -> throw finished(x, "HANDOFF_CANCELLED", "the handoff was cancelled");
        case "requested" -> throw finished(x, "HANDOFF_NOT_ACCEPTED",
            "no human agent has accepted the handoff yet; accept it first, or cancel it");
        default -> { }
      }
      if (!x.assigneeId().equals(assigneeId)) {
        throw new FailedPreconditionException("HANDOFF_ASSIGNED_TO_OTHER",
            "the handoff was accepted by another assignee; only they can complete it",
            Map.of("handoff_id", x.id().toString(), "assignee_id", x.assigneeId()));
      }
      Handoff done = h.createQuery("UPDATE handoffs AS h SET state = 'completed', completed_at = now(),"
              + " completed_by = :actor, resolution = :resolution, closed_conversation = :close"
              + " WHERE h.tenant_id = :tenant AND h.id = :id RETURNING " + COLUMNS)
          .bind("tenant", tenant).bind("id", handoffId).bind("actor", actor)
          .bind("resolution", resolution == null ? "" : resolution).bind("close", closeConversation)
          .map(HANDOFF).one();
      Conversation c = h.createQuery("UPDATE conversations SET handoff_state = 'ai',"
              + " closed_at = CASE WHEN :close THEN coalesce(closed_at, now()) ELSE closed_at END"
              + " WHERE tenant_id = :tenant AND id = :id RETURNING " + ConversationStore.COLUMNS)
          .bind("tenant", tenant).bind("id", x.conversationId()).bind("close", closeConversation)
          .map(ConversationStore.CONVERSATION).one();
      recordChange(h, tenant, done);
      if (closeConversation && !wasClosed) {
        ConversationEvents.record(h, tenant, x.conversationId(), ConversationEvent.Kind.CONVERSATION_CLOSED, null);
      }
      return new Handoff.Completed(done, c, false);
    });
    return notifying(r, !r.replayed());
  }

  public Handoff.Result cancel(String tenant, UUID handoffId, String note, String actor) {
    Handoff.Result r = write(h -> {
      Handoff x = lock(h, tenant, handoffId).handoff();
      switch (x.state()) {
        case "cancelled" -> {
          return new Handoff.Result(x, true);
        }
        case "completed" -> throw finished(x, "HANDOFF_COMPLETED", "the handoff is already completed");
        default -> { }
      }
      Handoff cancelled = h.createQuery("UPDATE handoffs AS h SET state = 'cancelled', cancelled_at = now(),"
              + " cancelled_by = :actor, resolution = :note WHERE h.tenant_id = :tenant AND h.id = :id RETURNING "
              + COLUMNS)
          .bind("tenant", tenant).bind("id", handoffId).bind("actor", actor).bind("note", note == null ? "" : note)
          .map(HANDOFF).one();
      setConversationState(h, tenant, x.conversationId(), "ai");
      recordChange(h, tenant, cancelled);
      return new Handoff.Result(cancelled, false);
    });
    return notifying(r, !r.replayed());
  }

  /**
   * The waiting handoffs of open, not deleted conversations, highest priority first, then oldest:
   * one statement reading {@code handoffs_queue_idx} in order from the cursor.
   */
  public Handoff.QueuePage queue(String tenant, String channel, Handoff.QueueCursor after, int limit) {
    StringBuilder sql = new StringBuilder("SELECT " + COLUMNS + ", now() AS now_at FROM handoffs h"
        + " JOIN conversations c ON c.tenant_id = h.tenant_id AND c.id = h.conversation_id"
        + " WHERE h.tenant_id = :tenant AND h.state = 'requested' AND c.closed_at IS NULL AND c.deleted_at IS NULL");
    if (channel != null) {
      sql.append(" AND h.channel = :channel");
    }
    if (after != null) {
      sql.append(" AND (h.priority < :after_priority OR (h.priority = :after_priority"
          + " AND (h.requested_at, h.id) > (CAST(:after_time AS timestamptz), :after_id)))");
    }
    sql.append(" ORDER BY h.priority DESC, h.requested_at, h.id LIMIT :limit");
    List<Handoff.Queued> rows = read(h -> {
      Query q = h.createQuery(sql.toString()).bind("tenant", tenant).bind("limit", limit + 1);
      if (channel != null) {
        q.bind("channel", channel);
      }
      if (after != null) {
        q.bind("after_priority", after.priority()).bind("after_time", Rows.timestamptz(after.requestedAt()))
            .bind("after_id", after.id());
      }
      return q.map((rs, ctx) -> {
        Handoff x = HANDOFF.map(rs, ctx);
        Duration waited = Duration.between(x.requestedAt(), Rows.instant(rs, "now_at"));
        return new Handoff.Queued(x, waited.isNegative() ? Duration.ZERO : waited);
      }).list();
    });
    if (rows.size() <= limit) {
      return new Handoff.QueuePage(rows, null);
    }
    List<Handoff.Queued> page = List.copyOf(rows.subList(0, limit));
    Handoff last = page.get(limit - 1).handoff();
    return new Handoff.QueuePage(page, new Handoff.QueueCursor(last.priority(), last.requestedAt(), last.id()));
  }

  /** A conversation's handoffs, newest request first; NOT_FOUND for a missing or deleted conversation. */
  public Handoff.Page history(String tenant, UUID conversationId, Handoff.Cursor after, int limit) {
    List<Handoff> rows = read(h -> {
      boolean exists = h.createQuery("SELECT true FROM conversations"
              + " WHERE tenant_id = :tenant AND id = :id AND deleted_at IS NULL")
          .bind("tenant", tenant).bind("id", conversationId).mapTo(Boolean.class).findOne().isPresent();
      if (!exists) {
        throw conversationNotFound(conversationId);
      }
      Query q = h.createQuery("SELECT " + COLUMNS + " FROM handoffs h"
              + " WHERE h.tenant_id = :tenant AND h.conversation_id = :conversation"
              + (after == null ? "" : " AND (h.requested_at, h.id) < (CAST(:after_time AS timestamptz), :after_id)")
              + " ORDER BY h.requested_at DESC, h.id DESC LIMIT :limit")
          .bind("tenant", tenant).bind("conversation", conversationId).bind("limit", limit + 1);
      if (after != null) {
        q.bind("after_time", Rows.timestamptz(after.requestedAt())).bind("after_id", after.id());
      }
      return q.map(HANDOFF).list();
    });
    if (rows.size() <= limit) {
      return new Handoff.Page(rows, null);
    }
    List<Handoff> page = List.copyOf(rows.subList(0, limit));
    Handoff last = page.get(limit - 1);
    return new Handoff.Page(page, new Handoff.Cursor(last.requestedAt(), last.id()));
  }

  /**
   * Closing or deleting a conversation ends its active handoff. Step one, before the conversation's
   * row is locked: lock the active handoff's row, so these writes take their locks in the order
   * Accept, Complete and Cancel do (handoff, then conversation) and cannot deadlock with them.
   */
  static void lockActive(Handle h, String tenant, UUID conversationId) {
    h.createQuery("SELECT h.id FROM handoffs h WHERE h.tenant_id = :tenant AND h.conversation_id = :conversation"
            + " AND h.state IN ('requested', 'accepted') FOR UPDATE")
        .bind("tenant", tenant).bind("conversation", conversationId).mapTo(UUID.class).list();
  }

  /**
   * Step two, once the conversation's row is locked (so a RequestHandoff that held it has committed
   * and is seen): cancels the conversation's active handoff with {@code note} and {@code actor},
   * puts its {@code handoff_state} back to AI and records the HANDOFF_CHANGED event, in the
   * caller's transaction. Returns the handoffs cancelled (none or one). The caller wakes the
   * sequencer after its commit.
   */
  static List<Handoff> cancelActive(Handle h, String tenant, UUID conversationId, String note, String actor) {
    List<Handoff> cancelled = h.createQuery("UPDATE handoffs AS h SET state = 'cancelled', cancelled_at = now(),"
            + " cancelled_by = :actor, resolution = :note WHERE h.tenant_id = :tenant"
            + " AND h.conversation_id = :conversation AND h.state IN ('requested', 'accepted') RETURNING " + COLUMNS)
        .bind("tenant", tenant).bind("conversation", conversationId).bind("actor", actor).bind("note", note)
        .map(HANDOFF).list();
    if (!cancelled.isEmpty()) {
      setConversationState(h, tenant, conversationId, "ai");
      for (Handoff x : cancelled) {
        recordChange(h, tenant, x);
      }
    }
    return cancelled;
  }

  /** Locks the handoff's row; NOT_FOUND when it is missing or its conversation is deleted. */
  private static Locked lock(Handle h, String tenant, UUID handoffId) {
    return h.createQuery("SELECT " + COLUMNS + ", c.closed_at IS NOT NULL AS conversation_closed FROM handoffs h"
            + " JOIN conversations c ON c.tenant_id = h.tenant_id AND c.id = h.conversation_id"
            + " WHERE h.tenant_id = :tenant AND h.id = :id AND c.deleted_at IS NULL FOR UPDATE OF h")
        .bind("tenant", tenant).bind("id", handoffId)
        .map((rs, ctx) -> new Locked(HANDOFF.map(rs, ctx), rs.getBoolean("conversation_closed")))
        .findOne().orElseThrow(() -> new NotFoundException("handoff", handoffId.toString()));
  }

  private static void setConversationState(Handle h, String tenant, UUID conversationId, String state) {
    h.createUpdate("UPDATE conversations SET handoff_state = :state WHERE tenant_id = :tenant AND id = :id")
        .bind("tenant", tenant).bind("id", conversationId).bind("state", state).execute();
  }

  private static Conversation conversation(Handle h, String tenant, UUID id) {
    return h.createQuery("SELECT " + ConversationStore.COLUMNS + " FROM conversations WHERE tenant_id = :tenant AND id = :id")
        .bind("tenant", tenant).bind("id", id).map(ConversationStore.CONVERSATION).one();
  }

  private static FailedPreconditionException finished(Handoff x, String reason, String message) {
    return new FailedPreconditionException(reason, message, Map.of("handoff_id", x.id().toString()));
  }

  private static NotFoundException conversationNotFound(UUID id) {
    return new NotFoundException("conversation", id.toString());
  }
}

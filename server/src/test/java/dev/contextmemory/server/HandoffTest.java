package dev.contextmemory.server;

import static dev.contextmemory.server.testing.GrpcErrors.assertError;
import static dev.contextmemory.server.testing.GrpcErrors.assertFieldError;
import static dev.contextmemory.server.testing.GrpcErrors.assertInvalid;
import static dev.contextmemory.server.testing.GrpcErrors.detail;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.util.Durations;
import com.google.protobuf.util.Timestamps;
import com.google.rpc.ErrorInfo;
import dev.contextmemory.server.testing.TestServer;
import dev.contextmemory.server.testing.Watcher;
import dev.contextmemory.v1.*;
import io.grpc.Status.Code;
import io.grpc.StatusRuntimeException;
import io.grpc.protobuf.StatusProto;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The handoff lifecycle of ConversationService over gRPC against real PostgreSQL: every transition,
 * every refused transition with its reason, idempotent retries, the queue's order and paging, the
 * history, and many human agents racing to accept one handoff.
 */
class HandoffTest {
  private static TestServer server;
  private static CustomerServiceGrpc.CustomerServiceBlockingStub customers;
  private static ConversationServiceGrpc.ConversationServiceBlockingStub conversations;
  private static ExecutorService pool;

  @BeforeAll
  static void start() {
    server = TestServer.shared();
    customers = CustomerServiceGrpc.newBlockingStub(server.channel());
    conversations = ConversationServiceGrpc.newBlockingStub(server.channel());
    pool = Executors.newFixedThreadPool(8);
  }

  @AfterAll
  static void stop() {
    pool.shutdownNow();
  }

  private static Conversation newConversation(Channel channel) {
    String customerId = customers.createCustomer(CreateCustomerRequest.newBuilder().setCustomer(Customer.newBuilder()
        .setDisplayName("Hana").setPhone("+1555" + (2000000 + ThreadLocalRandom.current().nextInt(7999999))))
        .build()).getCustomer().getId();
    return conversations.getOrCreateOpenConversation(GetOrCreateOpenConversationRequest.newBuilder()
        .setCustomerId(customerId).setChannel(channel).setThreadKey("t-" + UUID.randomUUID()).build())
        .getConversation();
  }

  private static Handoff request(String conversationId, int priority) {
    return conversations.requestHandoff(RequestHandoffRequest.newBuilder().setConversationId(conversationId)
        .setReason("customer asks for a person").setPriority(priority).build()).getHandoff();
  }

  private static AcceptHandoffResponse accept(String handoffId, String assignee) {
    return conversations.acceptHandoff(AcceptHandoffRequest.newBuilder().setHandoffId(handoffId)
        .setAssigneeId(assignee).build());
  }

  private static CompleteHandoffResponse complete(String handoffId, String assignee, boolean close) {
    return conversations.completeHandoff(CompleteHandoffRequest.newBuilder().setHandoffId(handoffId)
        .setAssigneeId(assignee).setResolution("refund issued").setCloseConversation(close).build());
  }

  private static CancelHandoffResponse cancel(String handoffId) {
    return conversations.cancelHandoff(CancelHandoffRequest.newBuilder().setHandoffId(handoffId)
        .setNote("customer left").build());
  }

  private static ConversationHandoffState stateOf(String conversationId) {
    return conversations.getConversation(GetConversationRequest.newBuilder().setConversationId(conversationId)
        .build()).getConversation().getHandoffState();
  }

  private static ErrorInfo errorInfo(com.google.rpc.Status s) {
    return detail(s, ErrorInfo.class).orElseThrow();
  }

  @Test
  void requestAcceptReplyCompleteBackToTheAi() {
    Conversation c = newConversation(Channel.CHANNEL_SMS);
    assertEquals(ConversationHandoffState.CONVERSATION_HANDOFF_STATE_AI, c.getHandoffState());

    Handoff requested = request(c.getId(), 7);
    assertEquals(HandoffState.HANDOFF_STATE_REQUESTED, requested.getState());
    assertEquals(c.getId(), requested.getConversationId());
    assertEquals(c.getCustomerId(), requested.getCustomerId());
    assertEquals(Channel.CHANNEL_SMS, requested.getChannel());
    assertEquals(7, requested.getPriority());
    assertEquals("customer asks for a person", requested.getReason());
    assertEquals("local", requested.getRequestedBy()); // the shared test server runs without keys
    assertTrue(requested.hasRequestTime());
    assertFalse(requested.hasAcceptTime());
    assertEquals(ConversationHandoffState.CONVERSATION_HANDOFF_STATE_REQUESTED, stateOf(c.getId()));

    QueuedHandoff queued = queueEntry(requested.getId());
    assertEquals(requested, queued.getHandoff());
    assertTrue(Durations.toNanos(queued.getWaitDuration()) >= 0);

    AcceptHandoffResponse accepted = accept(requested.getId(), "agent-ada");
    assertFalse(accepted.getReplayed());
    assertEquals(HandoffState.HANDOFF_STATE_ACCEPTED, accepted.getHandoff().getState());
    assertEquals("agent-ada", accepted.getHandoff().getAssigneeId());
    assertEquals("local", accepted.getHandoff().getAcceptedBy());
    assertTrue(Timestamps.compare(accepted.getHandoff().getAcceptTime(), requested.getRequestTime()) >= 0);
    assertEquals(ConversationHandoffState.CONVERSATION_HANDOFF_STATE_ACCEPTED, stateOf(c.getId()));
    assertEquals(null, queueEntry(requested.getId()), "an accepted handoff leaves the queue");

    // Appending does not depend on the handoff state; the human's reply has its own role.
    Message reply = conversations.appendMessage(AppendMessageRequest.newBuilder().setConversationId(c.getId())
        .setMessage(Message.newBuilder().setRole(MessageRole.MESSAGE_ROLE_HUMAN_AGENT).setContent("Hi, Ada here."))
        .build()).getMessage();
    assertEquals(MessageRole.MESSAGE_ROLE_HUMAN_AGENT, reply.getRole());
    assertEquals(1, conversations.listMessages(ListMessagesRequest.newBuilder().setConversationId(c.getId())
        .addRoles(MessageRole.MESSAGE_ROLE_HUMAN_AGENT).build()).getMessagesCount());

    CompleteHandoffResponse done = complete(requested.getId(), "agent-ada", false);
    assertFalse(done.getReplayed());
    assertEquals(HandoffState.HANDOFF_STATE_COMPLETED, done.getHandoff().getState());
    assertEquals("refund issued", done.getHandoff().getResolution());
    assertEquals("local", done.getHandoff().getCompletedBy());
    assertFalse(done.getHandoff().getClosedConversation());
    assertEquals(ConversationHandoffState.CONVERSATION_HANDOFF_STATE_AI, done.getConversation().getHandoffState());
    assertEquals(ConversationStatus.CONVERSATION_STATUS_OPEN, done.getConversation().getStatus());
    assertEquals(ConversationHandoffState.CONVERSATION_HANDOFF_STATE_AI, stateOf(c.getId()));

    // A second handoff of the same conversation, then its history: both, newest first, every stamp.
    Handoff second = request(c.getId(), 0);
    cancel(second.getId());
    ListHandoffsResponse history = conversations.listHandoffs(ListHandoffsRequest.newBuilder()
        .setConversationId(c.getId()).build());
    assertEquals(List.of(second.getId(), requested.getId()),
        history.getHandoffsList().stream().map(Handoff::getId).toList());
    assertEquals(HandoffState.HANDOFF_STATE_CANCELLED, history.getHandoffs(0).getState());
    assertEquals("customer left", history.getHandoffs(0).getResolution());
    assertEquals("local", history.getHandoffs(0).getCancelledBy());
    assertTrue(history.getHandoffs(0).hasCancelTime());
    assertEquals(done.getHandoff(), history.getHandoffs(1));
    // Paged one at a time, the same two.
    ListHandoffsResponse first = conversations.listHandoffs(ListHandoffsRequest.newBuilder()
        .setConversationId(c.getId()).setPageSize(1).build());
    ListHandoffsResponse next = conversations.listHandoffs(ListHandoffsRequest.newBuilder()
        .setConversationId(c.getId()).setPageSize(1).setPageToken(first.getNextPageToken()).build());
    assertEquals(second.getId(), first.getHandoffs(0).getId());
    assertEquals(requested.getId(), next.getHandoffs(0).getId());
    assertEquals("", next.getNextPageToken());
  }

  @Test
  void completingWithCloseClosesTheConversation() {
    Conversation c = newConversation(Channel.CHANNEL_WEB);
    Handoff h = request(c.getId(), 0);
    accept(h.getId(), "agent-bo");
    CompleteHandoffResponse done = complete(h.getId(), "agent-bo", true);
    assertTrue(done.getHandoff().getClosedConversation());
    assertEquals(ConversationStatus.CONVERSATION_STATUS_CLOSED, done.getConversation().getStatus());
    assertTrue(done.getConversation().hasCloseTime());
    assertEquals(ConversationHandoffState.CONVERSATION_HANDOFF_STATE_AI, done.getConversation().getHandoffState());
    // Retried: the stored result, nothing written again.
    CompleteHandoffResponse again = complete(h.getId(), "agent-bo", true);
    assertTrue(again.getReplayed());
    assertEquals(done.getHandoff(), again.getHandoff());
    assertEquals(done.getConversation().getCloseTime(), again.getConversation().getCloseTime());
    // A closed conversation cannot be handed off again.
    assertError(Code.FAILED_PRECONDITION, "CONVERSATION_CLOSED", () -> request(c.getId(), 0));
  }

  @Test
  void everyRefusedTransitionSaysWhy() {
    Conversation c = newConversation(Channel.CHANNEL_SMS);
    Handoff h = request(c.getId(), 0);
    assertError(Code.FAILED_PRECONDITION, "HANDOFF_ALREADY_REQUESTED", () -> request(c.getId(), 0));
    assertError(Code.FAILED_PRECONDITION, "HANDOFF_NOT_ACCEPTED", () -> complete(h.getId(), "agent-a", false));

    accept(h.getId(), "agent-a");
    com.google.rpc.Status held = assertError(Code.FAILED_PRECONDITION, "HANDOFF_ALREADY_ACCEPTED",
        () -> accept(h.getId(), "agent-b"));
    assertEquals("agent-a", errorInfo(held).getMetadataOrThrow("assignee_id"));
    com.google.rpc.Status requestWhileHeld = assertError(Code.FAILED_PRECONDITION, "HANDOFF_ALREADY_ACCEPTED",
        () -> request(c.getId(), 0));
    assertEquals(h.getId(), errorInfo(requestWhileHeld).getMetadataOrThrow("handoff_id"));
    com.google.rpc.Status other = assertError(Code.FAILED_PRECONDITION, "HANDOFF_ASSIGNED_TO_OTHER",
        () -> complete(h.getId(), "agent-b", false));
    assertEquals("agent-a", errorInfo(other).getMetadataOrThrow("assignee_id"));

    // Retries are harmless: the same assignee's accept replays.
    AcceptHandoffResponse again = accept(h.getId(), "agent-a");
    assertTrue(again.getReplayed());
    assertEquals("agent-a", again.getHandoff().getAssigneeId());

    complete(h.getId(), "agent-a", false);
    assertError(Code.FAILED_PRECONDITION, "HANDOFF_COMPLETED", () -> accept(h.getId(), "agent-a"));
    assertError(Code.FAILED_PRECONDITION, "HANDOFF_COMPLETED", () -> cancel(h.getId()));

    // An accepted handoff may be cancelled; a cancelled one can be neither accepted nor completed.
    Handoff h2 = request(c.getId(), 0);
    accept(h2.getId(), "agent-a");
    CancelHandoffResponse cancelled = cancel(h2.getId());
    assertFalse(cancelled.getReplayed());
    assertEquals("agent-a", cancelled.getHandoff().getAssigneeId()); // who held it stays in the history
    assertEquals(ConversationHandoffState.CONVERSATION_HANDOFF_STATE_AI, stateOf(c.getId()));
    assertTrue(cancel(h2.getId()).getReplayed());
    assertError(Code.FAILED_PRECONDITION, "HANDOFF_CANCELLED", () -> accept(h2.getId(), "agent-a"));
    assertError(Code.FAILED_PRECONDITION, "HANDOFF_CANCELLED", () -> complete(h2.getId(), "agent-a", false));

    // Closing the conversation cancelled its waiting handoff: it left the queue and cannot be accepted.
    Conversation d = newConversation(Channel.CHANNEL_SMS);
    Handoff h3 = request(d.getId(), 0);
    conversations.closeConversation(CloseConversationRequest.newBuilder().setConversationId(d.getId()).build());
    assertEquals(null, queueEntry(h3.getId()));
    assertError(Code.FAILED_PRECONDITION, "HANDOFF_CANCELLED", () -> accept(h3.getId(), "agent-a"));
    assertTrue(cancel(h3.getId()).getReplayed());

    // Deleted conversations and unknown ids: NOT_FOUND.
    Conversation e = newConversation(Channel.CHANNEL_SMS);
    Handoff h4 = request(e.getId(), 0);
    conversations.deleteConversation(DeleteConversationRequest.newBuilder().setConversationId(e.getId()).build());
    assertError(Code.NOT_FOUND, "HANDOFF_NOT_FOUND", () -> accept(h4.getId(), "agent-a"));
    assertError(Code.NOT_FOUND, "CONVERSATION_NOT_FOUND", () -> request(e.getId(), 0));
    assertError(Code.NOT_FOUND, "CONVERSATION_NOT_FOUND", () -> conversations.listHandoffs(
        ListHandoffsRequest.newBuilder().setConversationId(e.getId()).build()));
    String unknown = UUID.randomUUID().toString();
    assertError(Code.NOT_FOUND, "HANDOFF_NOT_FOUND", () -> accept(unknown, "agent-a"));
    assertError(Code.NOT_FOUND, "HANDOFF_NOT_FOUND", () -> complete(unknown, "agent-a", false));
    assertError(Code.NOT_FOUND, "HANDOFF_NOT_FOUND", () -> cancel(unknown));
    assertError(Code.NOT_FOUND, "CONVERSATION_NOT_FOUND", () -> request(unknown, 0));
  }

  /** Opens a stream and waits until the server has registered it (its start position is then fixed). */
  private static Watcher watch(WatchConversationsRequest request) throws Exception {
    int before = server.server().watch().streams();
    Watcher w = new Watcher(server.channel(), request, true, 0);
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (server.server().watch().streams() <= before && !w.end.isDone() && System.nanoTime() < deadline) {
      Thread.sleep(10);
    }
    return w;
  }

  private static ListHandoffsResponse historyOf(String conversationId) {
    return conversations.listHandoffs(ListHandoffsRequest.newBuilder().setConversationId(conversationId).build());
  }

  @Test
  void closingTheConversationCancelsItsActiveHandoffInTheSameTransaction() throws Exception {
    Conversation c = newConversation(Channel.CHANNEL_WEB);
    Handoff h = request(c.getId(), 30);
    accept(h.getId(), "agent-a");
    try (Watcher w = watch(WatchConversationsRequest.newBuilder().setConversationId(c.getId()).build())) {
      CloseConversationResponse closed = conversations.closeConversation(
          CloseConversationRequest.newBuilder().setConversationId(c.getId()).build());
      assertEquals(ConversationStatus.CONVERSATION_STATUS_CLOSED, closed.getConversation().getStatus());
      assertEquals(ConversationHandoffState.CONVERSATION_HANDOFF_STATE_AI, closed.getConversation().getHandoffState());
      assertEquals(ConversationHandoffState.CONVERSATION_HANDOFF_STATE_AI, stateOf(c.getId()));

      // Watchers see the close, then the handoff's end.
      List<WatchConversationsResponse> seen = w.next(2, 10);
      assertEquals(ConversationEventKind.CONVERSATION_EVENT_KIND_CONVERSATION_CLOSED, seen.get(0).getKind());
      assertEquals(ConversationEventKind.CONVERSATION_EVENT_KIND_HANDOFF_CHANGED, seen.get(1).getKind());
      assertEquals(HandoffState.HANDOFF_STATE_CANCELLED, seen.get(1).getHandoff().getState());
      assertEquals(h.getId(), seen.get(1).getHandoff().getHandoffId());
      assertEquals("agent-a", seen.get(1).getHandoff().getAssigneeId());

      // The history says who ended it and why; the assignee who held it stays recorded.
      Handoff after = historyOf(c.getId()).getHandoffs(0);
      assertEquals(h.getId(), after.getId());
      assertEquals(HandoffState.HANDOFF_STATE_CANCELLED, after.getState());
      assertEquals("conversation closed", after.getResolution());
      assertEquals("local", after.getCancelledBy());
      assertTrue(after.hasCancelTime());
      assertEquals("agent-a", after.getAssigneeId());
      assertError(Code.FAILED_PRECONDITION, "HANDOFF_CANCELLED", () -> complete(h.getId(), "agent-a", false));

      // A repeated close changes nothing: the same conversation, the same cancelled handoff.
      CloseConversationResponse again = conversations.closeConversation(
          CloseConversationRequest.newBuilder().setConversationId(c.getId()).build());
      assertEquals(closed.getConversation().getCloseTime(), again.getConversation().getCloseTime());
      assertEquals(after, historyOf(c.getId()).getHandoffs(0));
      // ...and records no event: the next one this stream sees is the next write's.
      Conversation next = conversations.updateConversation(UpdateConversationRequest.newBuilder().setConversation(
          Conversation.newBuilder().setId(c.getId()).setSummary("closed by the customer")).setUpdateMask(
          com.google.protobuf.FieldMask.newBuilder().addPaths("summary")).build()).getConversation();
      assertEquals("closed by the customer", next.getSummary());
      assertEquals(ConversationEventKind.CONVERSATION_EVENT_KIND_CONVERSATION_UPDATED, w.next(10).getKind());
    }

    // Closing a conversation whose handoff was completed leaves that handoff as it is.
    Conversation d = newConversation(Channel.CHANNEL_WEB);
    Handoff done = request(d.getId(), 0);
    accept(done.getId(), "agent-b");
    complete(done.getId(), "agent-b", false);
    conversations.closeConversation(CloseConversationRequest.newBuilder().setConversationId(d.getId()).build());
    Handoff kept = historyOf(d.getId()).getHandoffs(0);
    assertEquals(HandoffState.HANDOFF_STATE_COMPLETED, kept.getState());
    assertEquals("refund issued", kept.getResolution());
    assertEquals("", kept.getCancelledBy());
  }

  @Test
  void deletingTheConversationCancelsItsWaitingHandoff() throws Exception {
    Conversation c = newConversation(Channel.CHANNEL_VOICE);
    Handoff h = request(c.getId(), 90);
    assertNotEquals(null, queueEntry(h.getId()));
    try (Watcher queue = watch(WatchConversationsRequest.newBuilder().setCustomerId(c.getCustomerId())
            .setHandoffQueue(true).build());
        Watcher all = watch(WatchConversationsRequest.newBuilder().setConversationId(c.getId()).build())) {
      conversations.deleteConversation(DeleteConversationRequest.newBuilder().setConversationId(c.getId()).build());
      assertEquals(null, queueEntry(h.getId()));

      // The queue's watchers learn that the request is gone; every watcher sees it before the delete.
      WatchConversationsResponse ended = queue.next(10);
      assertEquals(ConversationEventKind.CONVERSATION_EVENT_KIND_HANDOFF_CHANGED, ended.getKind());
      assertEquals(HandoffState.HANDOFF_STATE_CANCELLED, ended.getHandoff().getState());
      assertEquals(h.getId(), ended.getHandoff().getHandoffId());
      assertEquals(List.of(ConversationEventKind.CONVERSATION_EVENT_KIND_HANDOFF_CHANGED,
          ConversationEventKind.CONVERSATION_EVENT_KIND_CONVERSATION_DELETED),
          all.next(2, 10).stream().map(WatchConversationsResponse::getKind).toList());
    }
    // The handoff went with its conversation: NOT_FOUND like the conversation itself.
    assertError(Code.NOT_FOUND, "HANDOFF_NOT_FOUND", () -> accept(h.getId(), "agent-a"));
    assertError(Code.NOT_FOUND, "HANDOFF_NOT_FOUND", () -> cancel(h.getId()));
  }

  @Test
  void badRequestsNameTheField() {
    Conversation c = newConversation(Channel.CHANNEL_SMS);
    assertInvalid("conversation_id", () -> conversations.requestHandoff(RequestHandoffRequest.getDefaultInstance()));
    assertInvalid("priority", () -> conversations.requestHandoff(RequestHandoffRequest.newBuilder()
        .setConversationId(c.getId()).setPriority(101).build()));
    assertInvalid("priority", () -> conversations.requestHandoff(RequestHandoffRequest.newBuilder()
        .setConversationId(c.getId()).setPriority(-1).build()));
    assertInvalid("reason", () -> conversations.requestHandoff(RequestHandoffRequest.newBuilder()
        .setConversationId(c.getId()).setReason("x".repeat(1025)).build()));
    assertInvalid("request_id", () -> conversations.requestHandoff(RequestHandoffRequest.newBuilder()
        .setConversationId(c.getId()).setRequestId("k".repeat(129)).build()));
    assertInvalid("handoff_id", () -> accept("not-a-uuid", "agent-a"));
    assertInvalid("assignee_id", () -> accept(UUID.randomUUID().toString(), " "));
    assertInvalid("assignee_id", () -> accept(UUID.randomUUID().toString(), "a".repeat(257)));
    assertInvalid("assignee_id", () -> conversations.completeHandoff(CompleteHandoffRequest.newBuilder()
        .setHandoffId(UUID.randomUUID().toString()).build()));
    assertInvalid("resolution", () -> conversations.completeHandoff(CompleteHandoffRequest.newBuilder()
        .setHandoffId(UUID.randomUUID().toString()).setAssigneeId("a").setResolution("x".repeat(4097)).build()));
    assertInvalid("note", () -> conversations.cancelHandoff(CancelHandoffRequest.newBuilder()
        .setHandoffId(UUID.randomUUID().toString()).setNote("x".repeat(4097)).build()));
    assertInvalid("page_size", () -> conversations.listHandoffQueue(ListHandoffQueueRequest.newBuilder()
        .setPageSize(-1).build()));
    assertInvalid("channel", () -> conversations.listHandoffQueue(ListHandoffQueueRequest.newBuilder()
        .setChannelValue(99).build()));
    assertInvalid("page_token", () -> conversations.listHandoffQueue(ListHandoffQueueRequest.newBuilder()
        .setPageToken("forged").build()));
    assertInvalid("page_token", () -> conversations.listHandoffs(ListHandoffsRequest.newBuilder()
        .setConversationId(c.getId()).setPageToken("forged").build()));
    assertInvalid("conversation_id", () -> conversations.listHandoffs(ListHandoffsRequest.getDefaultInstance()));
    // Nothing of that reached the conversation.
    assertEquals(ConversationHandoffState.CONVERSATION_HANDOFF_STATE_AI, stateOf(c.getId()));
  }

  @Test
  void aRetriedRequestWithItsRequestIdReplays() {
    Conversation c = newConversation(Channel.CHANNEL_SMS);
    String key = UUID.randomUUID().toString();
    RequestHandoffRequest req = RequestHandoffRequest.newBuilder().setConversationId(c.getId()).setRequestId(key)
        .setPriority(3).build();
    RequestHandoffResponse first = conversations.requestHandoff(req);
    assertFalse(first.getReplayed());
    assertEquals(key, first.getHandoff().getRequestId());
    RequestHandoffResponse second = conversations.requestHandoff(req);
    assertTrue(second.getReplayed());
    assertEquals(first.getHandoff(), second.getHandoff());
    // Also once it has moved on: the retry returns it as it is now.
    accept(first.getHandoff().getId(), "agent-c");
    RequestHandoffResponse third = conversations.requestHandoff(req);
    assertTrue(third.getReplayed());
    assertEquals(HandoffState.HANDOFF_STATE_ACCEPTED, third.getHandoff().getState());
    // The key belongs to that handoff: another conversation cannot reuse it.
    Conversation other = newConversation(Channel.CHANNEL_SMS);
    assertFieldError(Code.ALREADY_EXISTS, "REQUEST_ID_ALREADY_USED", "request_id",
        () -> conversations.requestHandoff(req.toBuilder().setConversationId(other.getId()).build()));
    assertEquals(1, conversations.listHandoffs(ListHandoffsRequest.newBuilder().setConversationId(c.getId()).build())
        .getHandoffsCount());
  }

  @Test
  void theQueueServesHighestPriorityThenOldestAndPages() {
    // Other tests share the tenant, so only this test's handoffs are compared, in the queue's order.
    List<String> expected = new ArrayList<>();
    List<Handoff> low = new ArrayList<>();
    List<Handoff> high = new ArrayList<>();
    for (int i = 0; i < 3; i++) {
      low.add(request(newConversation(Channel.CHANNEL_EMAIL).getId(), 1));
      high.add(request(newConversation(Channel.CHANNEL_EMAIL).getId(), 90));
    }
    Handoff voice = request(newConversation(Channel.CHANNEL_VOICE).getId(), 100);
    high.forEach(h -> expected.add(h.getId()));
    low.forEach(h -> expected.add(h.getId()));
    Set<String> mine = new HashSet<>(expected);

    // Filtered by channel, in pages of 2: every one of mine exactly once, in order; the voice one never.
    List<String> seen = new ArrayList<>();
    String token = "";
    int pages = 0;
    do {
      ListHandoffQueueResponse page = conversations.listHandoffQueue(ListHandoffQueueRequest.newBuilder()
          .setChannel(Channel.CHANNEL_EMAIL).setPageSize(2).setPageToken(token).build());
      for (QueuedHandoff q : page.getHandoffsList()) {
        assertEquals(Channel.CHANNEL_EMAIL, q.getHandoff().getChannel());
        assertEquals(HandoffState.HANDOFF_STATE_REQUESTED, q.getHandoff().getState());
        if (mine.contains(q.getHandoff().getId())) {
          seen.add(q.getHandoff().getId());
        }
      }
      token = page.getNextPageToken();
      assertTrue(++pages < 10_000);
    } while (!token.isEmpty());
    assertEquals(expected, seen);
    assertNotEquals(null, queueEntry(voice.getId()));

    // The oldest waits longest.
    Set<String> accepted = Set.of(high.get(0).getId());
    accept(high.get(0).getId(), "agent-q");
    List<QueuedHandoff> all = queueAll(Channel.CHANNEL_EMAIL);
    assertFalse(all.stream().anyMatch(q -> accepted.contains(q.getHandoff().getId())));
    QueuedHandoff older = all.stream().filter(q -> q.getHandoff().getId().equals(low.get(0).getId())).findFirst()
        .orElseThrow();
    QueuedHandoff newer = all.stream().filter(q -> q.getHandoff().getId().equals(low.get(2).getId())).findFirst()
        .orElseThrow();
    assertTrue(Durations.compare(older.getWaitDuration(), newer.getWaitDuration()) >= 0);
  }

  /**
   * Many human agents accept the same handoff at once, round after round: exactly one wins each
   * round, and every other gets FAILED_PRECONDITION HANDOFF_ALREADY_ACCEPTED naming the winner.
   */
  @Test
  void concurrentAcceptsHaveExactlyOneWinner() throws Exception {
    int rounds = 25;
    int agents = 8;
    for (int round = 0; round < rounds; round++) {
      Handoff h = request(newConversation(Channel.CHANNEL_MESSENGER).getId(), 5);
      CountDownLatch go = new CountDownLatch(1);
      List<Future<Object>> outcomes = new ArrayList<>();
      for (int a = 0; a < agents; a++) {
        String assignee = "agent-" + round + "-" + a;
        outcomes.add(pool.submit(() -> {
          go.await();
          try {
            return accept(h.getId(), assignee);
          } catch (StatusRuntimeException e) {
            return e;
          }
        }));
      }
      go.countDown();
      List<AcceptHandoffResponse> winners = new ArrayList<>();
      List<StatusRuntimeException> losers = new ArrayList<>();
      for (Future<Object> f : outcomes) {
        Object o = f.get(60, TimeUnit.SECONDS);
        if (o instanceof AcceptHandoffResponse r) {
          winners.add(r);
        } else {
          losers.add((StatusRuntimeException) o);
        }
      }
      assertEquals(1, winners.size(), "round " + round);
      assertFalse(winners.get(0).getReplayed());
      String winner = winners.get(0).getHandoff().getAssigneeId();
      for (StatusRuntimeException e : losers) {
        assertEquals(Code.FAILED_PRECONDITION, e.getStatus().getCode(), e::toString);
        ErrorInfo info = errorInfo(StatusProto.fromThrowable(e));
        assertEquals("HANDOFF_ALREADY_ACCEPTED", info.getReason());
        assertEquals(winner, info.getMetadataOrThrow("assignee_id"));
      }
      List<Handoff> history = conversations.listHandoffs(ListHandoffsRequest.newBuilder()
          .setConversationId(h.getConversationId()).build()).getHandoffsList();
      assertEquals(1, history.size());
      assertEquals(winner, history.get(0).getAssigneeId());
    }
  }

  private static List<QueuedHandoff> queueAll(Channel channel) {
    List<QueuedHandoff> all = new ArrayList<>();
    String token = "";
    do {
      ListHandoffQueueResponse page = conversations.listHandoffQueue(ListHandoffQueueRequest.newBuilder()
          .setChannel(channel).setPageSize(1000).setPageToken(token).build());
      all.addAll(page.getHandoffsList());
      token = page.getNextPageToken();
    } while (!token.isEmpty());
    return all;
  }

  /** The queue entry of one handoff (searched over every channel), or null when it is not queued. */
  private static QueuedHandoff queueEntry(String handoffId) {
    return queueAll(Channel.CHANNEL_UNSPECIFIED).stream().filter(q -> q.getHandoff().getId().equals(handoffId))
        .findFirst().orElse(null);
  }
}

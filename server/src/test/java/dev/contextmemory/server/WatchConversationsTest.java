package dev.contextmemory.server;

import static dev.contextmemory.server.testing.GrpcErrors.assertInvalid;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.rpc.ErrorInfo;
import dev.contextmemory.server.testing.GrpcErrors;
import dev.contextmemory.server.testing.TestServer;
import dev.contextmemory.server.testing.Watcher;
import dev.contextmemory.v1.*;
import io.grpc.Status.Code;
import io.grpc.StatusRuntimeException;
import io.grpc.protobuf.StatusProto;
import io.grpc.stub.StreamObserver;
import java.sql.DriverManager;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * WatchConversations over gRPC against real PostgreSQL: every event kind from every write path,
 * the filters, resuming, the cursor's errors, a slow consumer, the stream cap, checkpoints and the
 * end on shutdown. Its own server: a 10-event buffer, 3 streams per tenant, a checkpoint every
 * second, and 3 calls in flight per tenant (streams must not hold those).
 */
class WatchConversationsTest {
  private static TestServer server;
  private static CustomerServiceGrpc.CustomerServiceBlockingStub customers;
  private static ConversationServiceGrpc.ConversationServiceBlockingStub conversations;

  @BeforeAll
  static void start() {
    server = TestServer.start(Map.of("WATCH_BUFFER_EVENTS", "10", "WATCH_MAX_STREAMS_PER_TENANT", "3",
        "WATCH_CHECKPOINT_SECONDS", "1", "TENANT_MAX_CONCURRENT_CALLS", "3"));
    customers = CustomerServiceGrpc.newBlockingStub(server.channel());
    conversations = ConversationServiceGrpc.newBlockingStub(server.channel());
  }

  @AfterAll
  static void stop() {
    server.close();
  }

  private static String newCustomer() {
    return customers.createCustomer(CreateCustomerRequest.newBuilder().setCustomer(Customer.newBuilder()
        .setDisplayName("Ada").setPhone("+1555" + (2000000 + ThreadLocalRandom.current().nextInt(7999999))))
        .build()).getCustomer().getId();
  }

  private static Conversation open(String customer, Channel channel) {
    return conversations.getOrCreateOpenConversation(GetOrCreateOpenConversationRequest.newBuilder()
        .setCustomerId(customer).setChannel(channel).setThreadKey("t-" + UUID.randomUUID()).build()).getConversation();
  }

  private static void append(String conversation, String text) {
    conversations.appendMessage(AppendMessageRequest.newBuilder().setConversationId(conversation)
        .setMessage(Message.newBuilder().setRole(MessageRole.MESSAGE_ROLE_USER).setContent(text)).build());
  }

  private static WatchConversationsRequest byCustomer(String customer) {
    return WatchConversationsRequest.newBuilder().setCustomerId(customer).build();
  }

  /**
   * Opens a stream and waits until it is registered: the tenant here may have only 3 calls in
   * flight, and a stream holds one until its handler has subscribed.
   */
  private static Watcher watch(WatchConversationsRequest request, boolean autoRead, int initial) throws Exception {
    int before = server.server().watch().streams();
    Watcher w = new Watcher(server.channel(), request, autoRead, initial);
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (server.server().watch().streams() <= before && !w.end.isDone() && System.nanoTime() < deadline) {
      Thread.sleep(10);
    }
    Thread.sleep(50);
    return w;
  }

  private static ConversationEventKind kind(String suffix) {
    return ConversationEventKind.valueOf("CONVERSATION_EVENT_KIND_" + suffix);
  }

  @Test
  void everyWritePathProducesItsEventInCommitOrder() throws Exception {
    String customer = newCustomer();
    try (Watcher w = watch(byCustomer(customer), true, 0)) {
      Thread.sleep(100); // a stream without a cursor starts at the next commit after it is open
      Conversation c = open(customer, Channel.CHANNEL_SMS);
      append(c.getId(), "hello");
      conversations.appendMessages(AppendMessagesRequest.newBuilder().setConversationId(c.getId())
          .addMessages(Message.newBuilder().setRole(MessageRole.MESSAGE_ROLE_ASSISTANT).setContent("a"))
          .addMessages(Message.newBuilder().setRole(MessageRole.MESSAGE_ROLE_USER).setContent("b")).build());
      conversations.updateConversation(UpdateConversationRequest.newBuilder().setConversation(
          Conversation.newBuilder().setId(c.getId()).setSummary("s")).setUpdateMask(
          com.google.protobuf.FieldMask.newBuilder().addPaths("summary")).build());
      conversations.closeConversation(CloseConversationRequest.newBuilder().setConversationId(c.getId()).build());
      conversations.closeConversation(CloseConversationRequest.newBuilder().setConversationId(c.getId()).build());
      conversations.deleteConversation(DeleteConversationRequest.newBuilder().setConversationId(c.getId()).build());

      List<WatchConversationsResponse> got = w.next(7, 10);
      assertEquals(List.of(kind("CONVERSATION_OPENED"), kind("MESSAGE_APPENDED"), kind("MESSAGE_APPENDED"),
          kind("MESSAGE_APPENDED"), kind("CONVERSATION_UPDATED"), kind("CONVERSATION_CLOSED"),
          kind("CONVERSATION_DELETED")), got.stream().map(WatchConversationsResponse::getKind).toList());
      assertEquals(List.of(1L, 2L, 3L), got.subList(1, 4).stream().map(r -> r.getMessage().getSequence()).toList());
      assertEquals("hello", got.get(1).getMessage().getContent());
      assertEquals(c.getId(), got.get(0).getConversation().getId());
      assertEquals(Channel.CHANNEL_SMS, got.get(6).getChannel());
      assertEquals(customer, got.get(6).getCustomerId());
      assertEquals(7, new HashSet<>(got.stream().map(WatchConversationsResponse::getCursor).toList()).size());

      // ImportMessages: the thread's conversation is opened, then its messages follow.
      CompletableFuture<ImportMessagesResponse> done = new CompletableFuture<>();
      StreamObserver<ImportMessagesRequest> in = ConversationServiceGrpc.newStub(server.channel())
          .importMessages(observer(done));
      for (int i = 0; i < 3; i++) {
        in.onNext(ImportMessagesRequest.newBuilder().setCustomerId(customer).setChannel(Channel.CHANNEL_EMAIL)
            .setThreadKey("imported").setMessage(Message.newBuilder().setRole(MessageRole.MESSAGE_ROLE_USER)
                .setContent("m" + i).setIdempotencyKey("imp-" + i).setCreateTime(com.google.protobuf.util.Timestamps.fromMillis(
                    System.currentTimeMillis() - 60_000 + i))).build());
      }
      in.onCompleted();
      ImportMessagesResponse result = done.get(10, TimeUnit.SECONDS);
      assertEquals(3, result.getMessagesCreated(), result::toString);
      List<WatchConversationsResponse> imported = w.next(4, 10);
      assertEquals(kind("CONVERSATION_OPENED"), imported.get(0).getKind());
      assertEquals(List.of("m0", "m1", "m2"), imported.subList(1, 4).stream().map(r -> r.getMessage().getContent()).toList());

      // Erasing the customer reports its live conversation deleted.
      customers.deleteCustomer(DeleteCustomerRequest.newBuilder().setCustomerId(customer).setErase(true).build());
      WatchConversationsResponse erased = w.next(10);
      assertEquals(kind("CONVERSATION_DELETED"), erased.getKind());
      assertEquals(imported.get(0).getConversationId(), erased.getConversationId());
    }
  }

  private static <T> StreamObserver<T> observer(CompletableFuture<T> f) {
    return new StreamObserver<>() {
      @Override
      public void onNext(T value) {
        f.complete(value);
      }

      @Override
      public void onError(Throwable t) {
        f.completeExceptionally(t);
      }

      @Override
      public void onCompleted() {}
    };
  }

  @Test
  void filtersNarrowTheStream() throws Exception {
    String customer = newCustomer();
    Conversation sms = open(customer, Channel.CHANNEL_SMS);
    Conversation web = open(customer, Channel.CHANNEL_WEB);
    // Each stream is registered (its start fixed) before the next opens and before the appends:
    // a stream without a cursor sees only commits after that, and a fixed sleep missed "s1" on a
    // busy machine.
    try (Watcher byConversation = watch(
            WatchConversationsRequest.newBuilder().setConversationId(web.getId()).build(), true, 0);
        Watcher byChannel = watch(
            WatchConversationsRequest.newBuilder().setCustomerId(customer).setChannel(Channel.CHANNEL_SMS).build(),
            true, 0);
        Watcher queue = watch(
            WatchConversationsRequest.newBuilder().setCustomerId(customer).setHandoffQueue(true).build(), true, 0)) {
      append(sms.getId(), "s1");
      append(web.getId(), "w1");
      append(sms.getId(), "s2");
      assertEquals("w1", byConversation.next(10).getMessage().getContent());
      assertEquals(List.of("s1", "s2"), byChannel.next(2, 10).stream().map(r -> r.getMessage().getContent()).toList());
      // Nothing else arrives: the next response on each is a checkpoint (every second here).
      assertEquals(ConversationEventKind.CONVERSATION_EVENT_KIND_CHECKPOINT, nextResponse(byConversation).getKind());
      assertEquals(ConversationEventKind.CONVERSATION_EVENT_KIND_CHECKPOINT, nextResponse(byChannel).getKind());
      assertEquals(ConversationEventKind.CONVERSATION_EVENT_KIND_CHECKPOINT, nextResponse(queue).getKind());
    }
  }

  /**
   * The handoff RPCs record HANDOFF_CHANGED in their own transactions: a stream on the handoff
   * queue sees REQUESTED, ACCEPTED and COMPLETED in order, with the handoff's id and assignee, and
   * nothing for a replayed accept; completing with close_conversation also closes the
   * conversation, which an unfiltered stream of the customer sees after the handoff event.
   */
  @Test
  void handoffQueueStreamSeesEachTransition() throws Exception {
    String customer = newCustomer();
    Conversation c = open(customer, Channel.CHANNEL_WEB);
    try (Watcher queue = watch(WatchConversationsRequest.newBuilder().setCustomerId(customer).setHandoffQueue(true)
            .build(), true, 0);
        Watcher all = watch(byCustomer(customer), true, 0)) {
      append(c.getId(), "I want a person");
      Handoff h = conversations.requestHandoff(RequestHandoffRequest.newBuilder().setConversationId(c.getId())
          .setReason("asks for a person").setPriority(7).build()).getHandoff();
      conversations.acceptHandoff(AcceptHandoffRequest.newBuilder().setHandoffId(h.getId())
          .setAssigneeId("agent-ada").build());
      assertTrue(conversations.acceptHandoff(AcceptHandoffRequest.newBuilder().setHandoffId(h.getId())
          .setAssigneeId("agent-ada").build()).getReplayed());
      conversations.completeHandoff(CompleteHandoffRequest.newBuilder().setHandoffId(h.getId())
          .setAssigneeId("agent-ada").setResolution("done").setCloseConversation(true).build());
      List<WatchConversationsResponse> seen = queue.next(3, 10);
      assertEquals(List.of(HandoffState.HANDOFF_STATE_REQUESTED, HandoffState.HANDOFF_STATE_ACCEPTED,
          HandoffState.HANDOFF_STATE_COMPLETED), seen.stream().map(r -> r.getHandoff().getState()).toList());
      for (WatchConversationsResponse r : seen) {
        assertEquals(ConversationEventKind.CONVERSATION_EVENT_KIND_HANDOFF_CHANGED, r.getKind(), r::toString);
        assertEquals(c.getId(), r.getConversationId());
        assertEquals(h.getId(), r.getHandoff().getHandoffId());
      }
      assertEquals("", seen.get(0).getHandoff().getAssigneeId());
      assertEquals("agent-ada", seen.get(1).getHandoff().getAssigneeId());
      assertEquals("agent-ada", seen.get(2).getHandoff().getAssigneeId());
      // Only handoff events on the queue filter; the replayed accept recorded nothing.
      assertEquals(ConversationEventKind.CONVERSATION_EVENT_KIND_CHECKPOINT, nextResponse(queue).getKind());
      assertEquals(List.of(ConversationEventKind.CONVERSATION_EVENT_KIND_MESSAGE_APPENDED,
          ConversationEventKind.CONVERSATION_EVENT_KIND_HANDOFF_CHANGED,
          ConversationEventKind.CONVERSATION_EVENT_KIND_HANDOFF_CHANGED,
          ConversationEventKind.CONVERSATION_EVENT_KIND_HANDOFF_CHANGED,
          ConversationEventKind.CONVERSATION_EVENT_KIND_CONVERSATION_CLOSED),
          all.next(5, 10).stream().map(WatchConversationsResponse::getKind).toList());
    }
  }

  private static WatchConversationsResponse nextResponse(Watcher w) throws InterruptedException {
    WatchConversationsResponse r = w.received.poll(10, TimeUnit.SECONDS);
    assertNotNull(r, "no response within 10 s");
    return r;
  }

  @Test
  void resumingFromACursorDeliversExactlyTheLaterEvents() throws Exception {
    String customer = newCustomer();
    Conversation c = open(customer, Channel.CHANNEL_SMS);
    List<WatchConversationsResponse> first;
    try (Watcher w = watch(byCustomer(customer), true, 0)) {
      Thread.sleep(100);
      for (int i = 1; i <= 5; i++) {
        append(c.getId(), "m" + i);
      }
      first = w.next(5, 10);
    }
    // Meanwhile, more messages; then resume after the second.
    for (int i = 6; i <= 8; i++) {
      append(c.getId(), "m" + i);
    }
    try (Watcher w = watch(byCustomer(customer).toBuilder()
        .setResumeCursor(first.get(1).getCursor()).build(), true, 0)) {
      assertEquals(List.of("m3", "m4", "m5", "m6", "m7", "m8"),
          w.next(6, 10).stream().map(r -> r.getMessage().getContent()).toList());
      // A checkpoint's cursor resumes too: after it, only what comes next.
      WatchConversationsResponse checkpoint = nextResponse(w);
      assertEquals(ConversationEventKind.CONVERSATION_EVENT_KIND_CHECKPOINT, checkpoint.getKind());
      w.close();
      append(c.getId(), "m9");
      try (Watcher again = watch(byCustomer(customer).toBuilder()
          .setResumeCursor(checkpoint.getCursor()).build(), true, 0)) {
        assertEquals("m9", again.next(10).getMessage().getContent());
      }
    }
  }

  @Test
  void badRequestsAndForeignCursorsAreInvalidArguments() {
    var blocking = ConversationServiceGrpc.newBlockingStub(server.channel());
    assertInvalid("conversation_id", () -> blocking.watchConversations(
        WatchConversationsRequest.newBuilder().setConversationId("nope").build()).hasNext());
    assertInvalid("customer_id", () -> blocking.watchConversations(
        WatchConversationsRequest.newBuilder().setCustomerId("nope").build()).hasNext());
    assertInvalid("channel", () -> blocking.watchConversations(
        WatchConversationsRequest.newBuilder().setChannelValue(99).build()).hasNext());
    assertInvalid("resume_cursor", () -> blocking.watchConversations(
        WatchConversationsRequest.newBuilder().setResumeCursor("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").build()).hasNext());
  }

  @Test
  void aCursorOlderThanTheRetentionIsCursorExpired() throws Exception {
    String customer = newCustomer();
    Conversation c = open(customer, Channel.CHANNEL_SMS);
    String cursor;
    try (Watcher w = watch(byCustomer(customer), true, 0)) {
      Thread.sleep(100);
      append(c.getId(), "old");
      cursor = w.next(10).getCursor();
    }
    append(c.getId(), "older than the retention");
    // Age every event past the 24 h retention, then purge.
    try (var db = DriverManager.getConnection(server.dbUrl());
        var st = db.createStatement()) {
      st.execute("UPDATE conversation_events SET created_at = created_at - interval '2 days'");
    }
    server.server().watch().wakeSequencer();
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (server.server().eventPurger().purge() == 0 && System.nanoTime() < deadline) {
      Thread.sleep(50); // the last event may still be waiting for its position
    }
    var blocking = ConversationServiceGrpc.newBlockingStub(server.channel());
    String expired = cursor;
    GrpcErrors.assertError(Code.FAILED_PRECONDITION, "CURSOR_EXPIRED", () -> blocking.watchConversations(
        byCustomer(customer).toBuilder().setResumeCursor(expired).build()).hasNext());
  }

  @Test
  void aSlowConsumerEndsWithResourceExhaustedAndResumesWithoutLoss() throws Exception {
    String customer = newCustomer();
    Conversation c = open(customer, Channel.CHANNEL_SMS);
    List<String> seen = new ArrayList<>();
    String resume;
    try (Watcher slow = watch(byCustomer(customer), false, 1)) {
      Thread.sleep(100);
      for (int i = 1; i <= 40; i++) {
        append(c.getId(), "m" + i); // writers never wait for the slow reader
      }
      StatusRuntimeException e = slow.ended(10);
      assertEquals(Code.RESOURCE_EXHAUSTED, e.getStatus().getCode());
      ErrorInfo info = GrpcErrors.detail(StatusProto.fromThrowable(e), ErrorInfo.class).orElseThrow();
      assertEquals("WATCH_CONSUMER_TOO_SLOW", info.getReason());
      resume = info.getMetadataOrThrow("resume_cursor");
      slow.received.stream().filter(r -> r.getKind() == kind("MESSAGE_APPENDED"))
          .forEach(r -> seen.add(r.getMessage().getContent()));
    }
    assertFalse(seen.size() >= 40, "the slow stream should have ended before it got everything");
    try (Watcher w = watch(byCustomer(customer).toBuilder().setResumeCursor(resume).build(),
        true, 0)) {
      w.next(40 - seen.size(), 10).forEach(r -> seen.add(r.getMessage().getContent()));
    }
    List<String> expected = new ArrayList<>();
    for (int i = 1; i <= 40; i++) {
      expected.add("m" + i);
    }
    assertEquals(expected, seen);
  }

  @Test
  void streamsCountAgainstTheirOwnCapNotTheCallsInFlight() throws Exception {
    String customer = newCustomer();
    List<Watcher> open = new ArrayList<>();
    try {
      for (int i = 0; i < 3; i++) {
        open.add(watch(byCustomer(customer), true, 0));
      }
      // Three streams are open and the tenant may have 3 calls in flight: unary calls still run.
      Conversation c = open(customer, Channel.CHANNEL_SMS);
      append(c.getId(), "x");
      for (Watcher w : open) {
        assertEquals(kind("CONVERSATION_OPENED"), w.next(10).getKind());
      }
      var blocking = ConversationServiceGrpc.newBlockingStub(server.channel());
      GrpcErrors.assertError(Code.RESOURCE_EXHAUSTED, "TOO_MANY_WATCH_STREAMS",
          () -> blocking.watchConversations(byCustomer(customer)).hasNext());
      open.remove(0).close();
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
      while (server.server().watch().streams() > 2 && System.nanoTime() < deadline) {
        Thread.sleep(20);
      }
      open.add(watch(byCustomer(customer), true, 0));
      append(c.getId(), "y");
      assertEquals(kind("MESSAGE_APPENDED"), open.get(2).next(10).getKind());
    } finally {
      open.forEach(Watcher::close);
    }
  }

  /**
   * While no stream is open the hub reads nothing (it used to read the head after every append);
   * the first stream afterwards starts at the committed head, and so does the poller, which would
   * otherwise read every event written meanwhile.
   */
  @Test
  void theFirstStreamAfterAnIdleSpellStartsAtTheCommittedHead() throws Exception {
    try (TestServer own = TestServer.start(Map.of());
        java.sql.Connection db = DriverManager.getConnection(own.dbUrl())) {
      var ownConversations = ConversationServiceGrpc.newBlockingStub(own.channel());
      String customer = CustomerServiceGrpc.newBlockingStub(own.channel()).createCustomer(CreateCustomerRequest
          .newBuilder().setCustomer(Customer.newBuilder().setDisplayName("Cy")).build()).getCustomer().getId();
      String conversation = ownConversations.getOrCreateOpenConversation(GetOrCreateOpenConversationRequest
          .newBuilder().setCustomerId(customer).setChannel(Channel.CHANNEL_SMS).setThreadKey("t").build())
          .getConversation().getId();
      for (int i = 0; i < 5; i++) {
        ownConversations.appendMessage(AppendMessageRequest.newBuilder().setConversationId(conversation)
            .setMessage(Message.newBuilder().setRole(MessageRole.MESSAGE_ROLE_USER).setContent("before " + i)).build());
      }
      Watcher w = new Watcher(own.channel(), byCustomer(customer), true, 0);
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
      while (own.server().watch().streams() == 0 && !w.end.isDone() && System.nanoTime() < deadline) {
        Thread.sleep(10);
      }
      long committed;
      try (var rs = db.createStatement().executeQuery("SELECT max(position) FROM conversation_events")) {
        rs.next();
        committed = rs.getLong(1);
      }
      assertTrue(committed > 0 && own.server().watch().head() >= committed,
          "the poller's head " + own.server().watch().head() + " is at the committed head " + committed);
      ownConversations.appendMessage(AppendMessageRequest.newBuilder().setConversationId(conversation)
          .setMessage(Message.newBuilder().setRole(MessageRole.MESSAGE_ROLE_USER).setContent("after")).build());
      assertEquals("after", w.next(10).getMessage().getContent());
      w.close();
    }
  }

  @Test
  void shutdownEndsStreamsWithUnavailableAndAResumeCursor() throws Exception {
    try (TestServer own = TestServer.start(Map.of())) {
      var ownCustomers = CustomerServiceGrpc.newBlockingStub(own.channel());
      String customer = ownCustomers.createCustomer(CreateCustomerRequest.newBuilder().setCustomer(
          Customer.newBuilder().setDisplayName("Bo").setPhone("+15551230000")).build()).getCustomer().getId();
      Watcher w = new Watcher(own.channel(), byCustomer(customer), true, 0);
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
      while (own.server().watch().streams() == 0 && !w.end.isDone() && System.nanoTime() < deadline) {
        Thread.sleep(10); // registered: its start is fixed, so the conversation below is after it
      }
      String conversation = ConversationServiceGrpc.newBlockingStub(own.channel()).getOrCreateOpenConversation(
          GetOrCreateOpenConversationRequest.newBuilder().setCustomerId(customer).setChannel(Channel.CHANNEL_SMS)
              .setThreadKey("t").build()).getConversation().getId();
      assertEquals(conversation, w.next(10).getConversationId());
      own.server().close();
      StatusRuntimeException e = w.ended(10);
      assertEquals(Code.UNAVAILABLE, e.getStatus().getCode());
      ErrorInfo info = GrpcErrors.detail(StatusProto.fromThrowable(e), ErrorInfo.class).orElseThrow();
      assertEquals("SERVER_SHUTTING_DOWN", info.getReason());
      assertTrue(!info.getMetadataOrThrow("resume_cursor").isEmpty());
    }
  }
}

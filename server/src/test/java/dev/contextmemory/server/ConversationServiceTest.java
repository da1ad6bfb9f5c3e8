package dev.contextmemory.server;

import static dev.contextmemory.server.testing.GrpcErrors.assertError;
import static dev.contextmemory.server.testing.GrpcErrors.assertFieldError;
import static dev.contextmemory.server.testing.GrpcErrors.assertInvalid;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.FieldMask;
import com.google.protobuf.Struct;
import com.google.protobuf.Timestamp;
import com.google.protobuf.Value;
import com.google.protobuf.util.Timestamps;
import dev.contextmemory.server.testing.TestServer;
import dev.contextmemory.v1.*;
import io.grpc.Status.Code;
import io.grpc.stub.StreamObserver;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** ConversationService over gRPC against real PostgreSQL: every RPC and its error paths. */
class ConversationServiceTest {
  private static TestServer server;
  private static CustomerServiceGrpc.CustomerServiceBlockingStub customers;
  private static ConversationServiceGrpc.ConversationServiceBlockingStub conversations;
  private static ConversationServiceGrpc.ConversationServiceStub async;

  @BeforeAll
  static void start() {
    server = TestServer.shared();
    customers = CustomerServiceGrpc.newBlockingStub(server.channel());
    conversations = ConversationServiceGrpc.newBlockingStub(server.channel());
    async = ConversationServiceGrpc.newStub(server.channel());
  }

  // -----------------------------------------------------------------------------------------------
  // Helpers

  private static String newPhone() {
    return "+1555" + (2000000 + ThreadLocalRandom.current().nextInt(7999999));
  }

  private static Customer newCustomer() {
    return customers.createCustomer(CreateCustomerRequest.newBuilder()
        .setCustomer(Customer.newBuilder().setDisplayName("Grace").setPhone(newPhone())).build()).getCustomer();
  }

  private static Conversation open(String customerId, Channel channel, String threadKey) {
    return conversations.getOrCreateOpenConversation(GetOrCreateOpenConversationRequest.newBuilder()
        .setCustomerId(customerId).setChannel(channel).setThreadKey(threadKey).build()).getConversation();
  }

  private static Conversation newConversation() {
    return open(newCustomer().getId(), Channel.CHANNEL_SMS, "thread-" + UUID.randomUUID());
  }

  private static Message text(MessageRole role, String content) {
    return Message.newBuilder().setRole(role).setContent(content).build();
  }

  private static Message user(String content) {
    return text(MessageRole.MESSAGE_ROLE_USER, content);
  }

  private static AppendMessageResponse append(String conversationId, Message m) {
    return conversations.appendMessage(AppendMessageRequest.newBuilder()
        .setConversationId(conversationId).setMessage(m).build());
  }

  private static AppendMessagesResponse appendAll(String conversationId, List<Message> ms) {
    return conversations.appendMessages(AppendMessagesRequest.newBuilder()
        .setConversationId(conversationId).addAllMessages(ms).build());
  }

  private static Struct struct(String key, String value) {
    return Struct.newBuilder().putFields(key, Value.newBuilder().setStringValue(value).build()).build();
  }

  private static List<Float> embedding(int hot) {
    List<Float> v = new ArrayList<>();
    for (int i = 0; i < 768; i++) {
      v.add(i == hot ? 1f : 0.001f * (i % 7));
    }
    return v;
  }

  private static long count(String sql, Object... args) throws SQLException {
    try (Connection c = DriverManager.getConnection(server.dbUrl());
        PreparedStatement ps = c.prepareStatement(sql)) {
      for (int i = 0; i < args.length; i++) {
        ps.setObject(i + 1, args[i]);
      }
      try (ResultSet rs = ps.executeQuery()) {
        rs.next();
        return rs.getLong(1);
      }
    }
  }

  private static Conversation get(String id) {
    return conversations.getConversation(GetConversationRequest.newBuilder().setConversationId(id).build())
        .getConversation();
  }

  // -----------------------------------------------------------------------------------------------
  // GetOrCreateOpenConversation

  @Test
  void getOrCreateCreatesOnceThenReturnsTheOpenConversation() {
    Customer c = newCustomer();
    var first = conversations.getOrCreateOpenConversation(GetOrCreateOpenConversationRequest.newBuilder()
        .setCustomerId(c.getId()).setChannel(Channel.CHANNEL_MESSENGER).setThreadKey("psid-1")
        .setMetadata(struct("shop_id", "42")).build());
    assertTrue(first.getCreated());
    Conversation conv = first.getConversation();
    assertEquals(c.getId(), conv.getCustomerId());
    assertEquals(Channel.CHANNEL_MESSENGER, conv.getChannel());
    assertEquals("psid-1", conv.getThreadKey());
    assertEquals(ConversationStatus.CONVERSATION_STATUS_OPEN, conv.getStatus());
    assertEquals(0, conv.getMessageCount());
    assertFalse(conv.hasLastMessageTime());
    assertEquals("42", conv.getMetadata().getFieldsOrThrow("shop_id").getStringValue());

    var second = conversations.getOrCreateOpenConversation(GetOrCreateOpenConversationRequest.newBuilder()
        .setCustomerId(c.getId()).setChannel(Channel.CHANNEL_MESSENGER).setThreadKey("psid-1")
        .setMetadata(struct("shop_id", "99")).build());
    assertFalse(second.getCreated());
    assertEquals(conv.getId(), second.getConversation().getId());
    assertEquals("42", second.getConversation().getMetadata().getFieldsOrThrow("shop_id").getStringValue(),
        "metadata is only used on create");

    // Another channel, or a thread key differing only in case, is another conversation.
    assertNotEquals(conv.getId(), open(c.getId(), Channel.CHANNEL_SMS, "psid-1").getId());
    assertNotEquals(conv.getId(), open(c.getId(), Channel.CHANNEL_MESSENGER, "PSID-1").getId());
  }

  @Test
  void concurrentGetOrCreateConvergesOnOneConversation() throws Exception {
    Customer c = newCustomer();
    int callers = 16;
    ExecutorService pool = Executors.newFixedThreadPool(callers); // not the 1-thread common pool
    try {
      CountDownLatch go = new CountDownLatch(1);
      List<Future<GetOrCreateOpenConversationResponse>> results = new ArrayList<>();
      for (int i = 0; i < callers; i++) {
        results.add(pool.submit(() -> {
          go.await();
          return conversations.getOrCreateOpenConversation(GetOrCreateOpenConversationRequest.newBuilder()
              .setCustomerId(c.getId()).setChannel(Channel.CHANNEL_WEB).setThreadKey("session-race").build());
        }));
      }
      go.countDown();
      Set<String> ids = new HashSet<>();
      int created = 0;
      for (var f : results) {
        var r = f.get(30, TimeUnit.SECONDS);
        ids.add(r.getConversation().getId());
        created += r.getCreated() ? 1 : 0;
      }
      assertEquals(1, ids.size(), "every caller gets the same conversation");
      assertEquals(1, created, "exactly one caller created it");
      assertEquals(1, count("SELECT count(*) FROM conversations WHERE customer_id = ?", UUID.fromString(c.getId())));
    } finally {
      pool.shutdownNow();
    }
  }

  @Test
  void getOrCreateRejectsBadInput() {
    String customerId = newCustomer().getId();
    assertInvalid("customer_id", () -> conversations.getOrCreateOpenConversation(
        GetOrCreateOpenConversationRequest.newBuilder().setCustomerId("nope")
            .setChannel(Channel.CHANNEL_SMS).setThreadKey("t").build()));
    assertInvalid("channel", () -> conversations.getOrCreateOpenConversation(
        GetOrCreateOpenConversationRequest.newBuilder().setCustomerId(customerId).setThreadKey("t").build()));
    assertInvalid("channel", () -> conversations.getOrCreateOpenConversation(
        GetOrCreateOpenConversationRequest.newBuilder().setCustomerId(customerId).setChannelValue(99)
            .setThreadKey("t").build()));
    assertInvalid("thread_key", () -> conversations.getOrCreateOpenConversation(
        GetOrCreateOpenConversationRequest.newBuilder().setCustomerId(customerId)
            .setChannel(Channel.CHANNEL_SMS).build()));
    assertInvalid("thread_key", () -> conversations.getOrCreateOpenConversation(
        GetOrCreateOpenConversationRequest.newBuilder().setCustomerId(customerId)
            .setChannel(Channel.CHANNEL_SMS).setThreadKey("x".repeat(257)).build()));
    assertError(Code.NOT_FOUND, "CUSTOMER_NOT_FOUND", () -> conversations.getOrCreateOpenConversation(
        GetOrCreateOpenConversationRequest.newBuilder().setCustomerId(UUID.randomUUID().toString())
            .setChannel(Channel.CHANNEL_SMS).setThreadKey("t").build()));
  }

  // -----------------------------------------------------------------------------------------------
  // Get, Close, Update, Delete

  @Test
  void closeMakesTheNextGetOrCreateOpenANewConversation() {
    Customer c = newCustomer();
    Conversation first = open(c.getId(), Channel.CHANNEL_SMS, "+15550001111");
    Conversation closed = conversations.closeConversation(
        CloseConversationRequest.newBuilder().setConversationId(first.getId()).build()).getConversation();
    assertEquals(ConversationStatus.CONVERSATION_STATUS_CLOSED, closed.getStatus());
    assertTrue(closed.hasCloseTime());

    Conversation again = conversations.closeConversation(
        CloseConversationRequest.newBuilder().setConversationId(first.getId()).build()).getConversation();
    assertEquals(closed.getCloseTime(), again.getCloseTime(), "closing twice keeps the first close time");

    assertError(Code.FAILED_PRECONDITION, "CONVERSATION_CLOSED", () -> append(first.getId(), user("hi")));
    assertError(Code.FAILED_PRECONDITION, "CONVERSATION_CLOSED", () -> appendAll(first.getId(), List.of(user("hi"))));

    Conversation second = open(c.getId(), Channel.CHANNEL_SMS, "+15550001111");
    assertNotEquals(first.getId(), second.getId());
    assertEquals(ConversationStatus.CONVERSATION_STATUS_OPEN, second.getStatus());
  }

  @Test
  void updateWritesTheMaskedFieldsAndGetReturnsTheEmbeddingOnRequest() {
    Conversation conv = newConversation();
    Conversation updated = conversations.updateConversation(UpdateConversationRequest.newBuilder()
        .setConversation(Conversation.newBuilder().setId(conv.getId()).setSummary("Quoted $179 for a piano move")
            .addAllSummaryEmbedding(embedding(3)).setMetadata(struct("stage", "quoted")))
        .setUpdateMask(FieldMask.newBuilder().addPaths("summary").addPaths("summary_embedding"))
        .build()).getConversation();
    assertEquals("Quoted $179 for a piano move", updated.getSummary());
    assertTrue(updated.getHasSummaryEmbedding());
    assertEquals(0, updated.getSummaryEmbeddingCount(), "embeddings only on Get with include_summary_embedding");
    assertEquals(0, updated.getMetadata().getFieldsCount(), "metadata was not in the mask");

    Conversation withEmbedding = conversations.getConversation(GetConversationRequest.newBuilder()
        .setConversationId(conv.getId()).setIncludeSummaryEmbedding(true).build()).getConversation();
    assertEquals(embedding(3), withEmbedding.getSummaryEmbeddingList());

    // Empty mask: the non-empty fields. "*" with an empty embedding clears it.
    Conversation meta = conversations.updateConversation(UpdateConversationRequest.newBuilder()
        .setConversation(Conversation.newBuilder().setId(conv.getId()).setMetadata(struct("stage", "booked")))
        .build()).getConversation();
    assertEquals("booked", meta.getMetadata().getFieldsOrThrow("stage").getStringValue());
    assertEquals("Quoted $179 for a piano move", meta.getSummary());
    Conversation cleared = conversations.updateConversation(UpdateConversationRequest.newBuilder()
        .setConversation(Conversation.newBuilder().setId(conv.getId()))
        .setUpdateMask(FieldMask.newBuilder().addPaths("*")).build()).getConversation();
    assertEquals("", cleared.getSummary());
    assertFalse(cleared.getHasSummaryEmbedding());
    assertEquals(0, cleared.getMetadata().getFieldsCount());
  }

  @Test
  void updateRejectsBadEmbeddingsAndMaskPaths() {
    String id = newConversation().getId();
    assertInvalid("conversation.summary_embedding", () -> conversations.updateConversation(
        UpdateConversationRequest.newBuilder().setConversation(Conversation.newBuilder().setId(id)
            .addAllSummaryEmbedding(List.of(1f, 2f, 3f))).build()));
    List<Float> nan = new ArrayList<>(embedding(1));
    nan.set(5, Float.NaN);
    assertInvalid("conversation.summary_embedding", () -> conversations.updateConversation(
        UpdateConversationRequest.newBuilder().setConversation(Conversation.newBuilder().setId(id)
            .addAllSummaryEmbedding(nan)).build()));
    List<Float> zeros = new ArrayList<>();
    for (int i = 0; i < 768; i++) {
      zeros.add(0f);
    }
    assertInvalid("conversation.summary_embedding", () -> conversations.updateConversation(
        UpdateConversationRequest.newBuilder().setConversation(Conversation.newBuilder().setId(id)
            .addAllSummaryEmbedding(zeros)).build()));
    assertInvalid("update_mask.paths[0]", () -> conversations.updateConversation(
        UpdateConversationRequest.newBuilder().setConversation(Conversation.newBuilder().setId(id))
            .setUpdateMask(FieldMask.newBuilder().addPaths("thread_key")).build()));
    assertInvalid("conversation.id", () -> conversations.updateConversation(
        UpdateConversationRequest.newBuilder().setConversation(Conversation.newBuilder().setSummary("x")).build()));
    assertError(Code.NOT_FOUND, "CONVERSATION_NOT_FOUND", () -> conversations.updateConversation(
        UpdateConversationRequest.newBuilder().setConversation(Conversation.newBuilder()
            .setId(UUID.randomUUID().toString()).setSummary("x")).build()));
  }

  @Test
  void deletedConversationIsHiddenEverywhereAndFreesItsThread() {
    Customer c = newCustomer();
    Conversation conv = open(c.getId(), Channel.CHANNEL_EMAIL, "ada@example.com");
    append(conv.getId(), user("zanzibar piano delivery"));
    conversations.deleteConversation(DeleteConversationRequest.newBuilder().setConversationId(conv.getId()).build());

    assertError(Code.NOT_FOUND, "CONVERSATION_NOT_FOUND", () -> get(conv.getId()));
    assertError(Code.NOT_FOUND, "CONVERSATION_NOT_FOUND", () -> conversations.listMessages(
        ListMessagesRequest.newBuilder().setConversationId(conv.getId()).build()));
    assertError(Code.NOT_FOUND, "CONVERSATION_NOT_FOUND", () -> conversations.closeConversation(
        CloseConversationRequest.newBuilder().setConversationId(conv.getId()).build()));
    assertError(Code.NOT_FOUND, "CONVERSATION_NOT_FOUND", () -> conversations.deleteConversation(
        DeleteConversationRequest.newBuilder().setConversationId(conv.getId()).build()));
    assertError(Code.FAILED_PRECONDITION, "CONVERSATION_DELETED", () -> append(conv.getId(), user("hello?")));
    assertError(Code.FAILED_PRECONDITION, "CONVERSATION_DELETED", () -> appendAll(conv.getId(), List.of(user("x"))));
    assertEquals(0, conversations.listConversations(ListConversationsRequest.newBuilder()
        .setCustomerId(c.getId()).build()).getConversationsCount());
    assertEquals(0, conversations.searchMessages(SearchMessagesRequest.newBuilder()
        .setQuery("zanzibar").setCustomerId(c.getId()).build()).getHitsCount());
    assertEquals(0, conversations.getConversationStats(GetConversationStatsRequest.newBuilder()
        .setCustomerId(c.getId()).build()).getMessagesTotal());

    Conversation fresh = open(c.getId(), Channel.CHANNEL_EMAIL, "ada@example.com");
    assertNotEquals(conv.getId(), fresh.getId());

    // Deleting the customer (without erase) is blocked by the live conversation only.
    conversations.deleteConversation(DeleteConversationRequest.newBuilder().setConversationId(fresh.getId()).build());
    customers.deleteCustomer(DeleteCustomerRequest.newBuilder().setCustomerId(c.getId()).build());
    assertError(Code.NOT_FOUND, "CUSTOMER_NOT_FOUND",
        () -> customers.getCustomer(GetCustomerRequest.newBuilder().setCustomerId(c.getId()).build()));
  }

  @Test
  void getCloseDeleteRejectBadIds() {
    assertInvalid("conversation_id", () -> get("123"));
    assertError(Code.NOT_FOUND, "CONVERSATION_NOT_FOUND", () -> get(UUID.randomUUID().toString()));
    assertInvalid("conversation_id", () -> conversations.closeConversation(
        CloseConversationRequest.newBuilder().build()));
    assertInvalid("conversation_id", () -> conversations.deleteConversation(
        DeleteConversationRequest.newBuilder().setConversationId("x").build()));
  }

  // -----------------------------------------------------------------------------------------------
  // ListConversations

  @Test
  void listConversationsNewestMessageFirstWithFiltersAndPages() {
    Customer c = newCustomer();
    Conversation a = conversations.getOrCreateOpenConversation(GetOrCreateOpenConversationRequest.newBuilder()
        .setCustomerId(c.getId()).setChannel(Channel.CHANNEL_SMS).setThreadKey("a")
        .setMetadata(struct("shop_id", "42")).build()).getConversation();
    Conversation b = open(c.getId(), Channel.CHANNEL_WEB, "b");
    Conversation quiet = open(c.getId(), Channel.CHANNEL_WEB, "quiet");
    Conversation d = open(c.getId(), Channel.CHANNEL_SMS, "d");
    append(a.getId(), user("first"));
    append(b.getId(), user("second"));
    append(d.getId(), user("third"));
    conversations.closeConversation(CloseConversationRequest.newBuilder().setConversationId(d.getId()).build());

    List<String> all = new ArrayList<>();
    String token = "";
    do {
      var page = conversations.listConversations(ListConversationsRequest.newBuilder()
          .setCustomerId(c.getId()).setPageSize(1).setPageToken(token).build());
      page.getConversationsList().forEach(x -> all.add(x.getId()));
      token = page.getNextPageToken();
    } while (!token.isEmpty());
    assertEquals(List.of(d.getId(), b.getId(), a.getId(), quiet.getId()), all,
        "latest message first, conversations without messages last");

    assertEquals(List.of(d.getId()), ids(ListConversationsRequest.newBuilder().setCustomerId(c.getId())
        .setStatus(ConversationStatus.CONVERSATION_STATUS_CLOSED)));
    assertEquals(List.of(b.getId(), quiet.getId()), ids(ListConversationsRequest.newBuilder().setCustomerId(c.getId())
        .setChannel(Channel.CHANNEL_WEB).setStatus(ConversationStatus.CONVERSATION_STATUS_OPEN)));
    assertEquals(List.of(a.getId()), ids(ListConversationsRequest.newBuilder().setCustomerId(c.getId())
        .setMetadataFilter(struct("shop_id", "42"))));
    assertEquals(List.of(), ids(ListConversationsRequest.newBuilder().setCustomerId(c.getId())
        .setMetadataFilter(Struct.newBuilder().putFields("shop_id", Value.newBuilder().setNumberValue(42).build()))));

    var first = conversations.listConversations(ListConversationsRequest.newBuilder()
        .setCustomerId(c.getId()).setPageSize(1).build());
    assertInvalid("page_token", () -> conversations.listConversations(ListConversationsRequest.newBuilder()
        .setCustomerId(c.getId()).setChannel(Channel.CHANNEL_SMS).setPageToken(first.getNextPageToken()).build()));
    assertInvalid("page_token", () -> conversations.listConversations(ListConversationsRequest.newBuilder()
        .setCustomerId(c.getId()).setPageToken("garbage!").build()));
    assertInvalid("page_size", () -> conversations.listConversations(ListConversationsRequest.newBuilder()
        .setCustomerId(c.getId()).setPageSize(-1).build()));
    assertError(Code.NOT_FOUND, "CUSTOMER_NOT_FOUND", () -> conversations.listConversations(
        ListConversationsRequest.newBuilder().setCustomerId(UUID.randomUUID().toString()).build()));
  }

  @Test
  void listConversationsWithoutCustomerListsTheTenantsAcrossCustomers() {
    String shop = "shop-" + UUID.randomUUID(); // no other test's conversation carries it
    Customer c1 = newCustomer();
    Customer c2 = newCustomer();
    Conversation a = conversations.getOrCreateOpenConversation(GetOrCreateOpenConversationRequest.newBuilder()
        .setCustomerId(c1.getId()).setChannel(Channel.CHANNEL_SMS).setThreadKey("t-a")
        .setMetadata(struct("shop_id", shop)).build()).getConversation();
    Conversation b = conversations.getOrCreateOpenConversation(GetOrCreateOpenConversationRequest.newBuilder()
        .setCustomerId(c2.getId()).setChannel(Channel.CHANNEL_WEB).setThreadKey("t-b")
        .setMetadata(struct("shop_id", shop)).build()).getConversation();
    Conversation other = open(c2.getId(), Channel.CHANNEL_SMS, "t-other");
    append(b.getId(), user("older"));
    append(a.getId(), user("newer"));
    append(other.getId(), user("not this shop"));

    List<String> all = new ArrayList<>();
    String token = "";
    do {
      var page = conversations.listConversations(ListConversationsRequest.newBuilder()
          .setMetadataFilter(struct("shop_id", shop)).setPageSize(1).setPageToken(token).build());
      page.getConversationsList().forEach(x -> all.add(x.getId()));
      token = page.getNextPageToken();
    } while (!token.isEmpty());
    assertEquals(List.of(a.getId(), b.getId()), all, "both customers' conversations of the shop, latest message first");

    conversations.closeConversation(CloseConversationRequest.newBuilder().setConversationId(a.getId()).build());
    assertEquals(List.of(b.getId()), ids(ListConversationsRequest.newBuilder().setMetadataFilter(struct("shop_id", shop))
        .setStatus(ConversationStatus.CONVERSATION_STATUS_OPEN)));
    List<String> openSms = ids(ListConversationsRequest.newBuilder().setPageSize(1000)
        .setChannel(Channel.CHANNEL_SMS).setStatus(ConversationStatus.CONVERSATION_STATUS_OPEN));
    assertTrue(openSms.contains(other.getId()), "tenant-wide open SMS conversations include the other customer's");
    assertFalse(openSms.contains(a.getId()), "a closed conversation is not open");
    assertFalse(openSms.contains(b.getId()), "a web conversation is not SMS");
    assertEquals(List.of(), ids(ListConversationsRequest.newBuilder().setMetadataFilter(struct("shop_id", "none-" + shop))),
        "tenant-wide, no match is an empty page, not CUSTOMER_NOT_FOUND");
    // A page token is bound to its scope: the tenant-wide token does not page one customer's list.
    var first = conversations.listConversations(ListConversationsRequest.newBuilder()
        .setMetadataFilter(struct("shop_id", shop)).setPageSize(1).build());
    assertInvalid("page_token", () -> conversations.listConversations(ListConversationsRequest.newBuilder()
        .setCustomerId(c1.getId()).setMetadataFilter(struct("shop_id", shop)).setPageToken(first.getNextPageToken())
        .build()));
  }

  private static List<String> ids(ListConversationsRequest.Builder req) {
    return conversations.listConversations(req.build()).getConversationsList().stream().map(Conversation::getId).toList();
  }

  // -----------------------------------------------------------------------------------------------
  // AppendMessage

  @Test
  void appendStoresWhatAgentsExchangeIntactAndMovesTheConversation() {
    Conversation conv = newConversation();
    Timestamp sent = Timestamps.fromMillis(System.currentTimeMillis() - 60_000);
    String args = "{ \"items\" :3, \"when\":\"tomorrow\" ,}"; // malformed JSON survives byte for byte
    Message assistant = Message.newBuilder()
        .setRole(MessageRole.MESSAGE_ROLE_ASSISTANT)
        .setContent("Let me get you a quote.")
        .addToolCalls(ToolCall.newBuilder().setId("call_abc123").setName("get_quote").setArguments(args))
        .addToolCalls(ToolCall.newBuilder().setId("call_def456").setName("no_args"))
        .setMetadata(struct("model", "gpt-x"))
        .setCreateTime(sent)
        .build();
    Message storedAssistant = append(conv.getId(), assistant).getMessage();
    assertEquals(1, storedAssistant.getSequence());
    assertEquals(assistant.getToolCallsList(), storedAssistant.getToolCallsList());
    assertEquals(sent, storedAssistant.getCreateTime());
    assertEquals("gpt-x", storedAssistant.getMetadata().getFieldsOrThrow("model").getStringValue());

    Message tool = Message.newBuilder().setRole(MessageRole.MESSAGE_ROLE_TOOL).setToolCallId("call_abc123")
        .setContent("{\"price\": 179}").build();
    Message userWithPhoto = Message.newBuilder().setRole(MessageRole.MESSAGE_ROLE_USER)
        .addAttachments(Attachment.newBuilder().setUri("https://cdn.example.com/p/basement.jpg?sig=a%2Fb")
            .setMediaType("image/jpeg").setSizeBytes(482113).setName("basement.jpg"))
        .addAttachments(Attachment.newBuilder().setUri("s3://bucket/key"))
        .build();
    Message storedTool = append(conv.getId(), tool).getMessage();
    Message storedUser = append(conv.getId(), userWithPhoto).getMessage();
    assertEquals("call_abc123", storedTool.getToolCallId());
    assertEquals(2, storedTool.getSequence());
    assertEquals(userWithPhoto.getAttachmentsList(), storedUser.getAttachmentsList());
    assertEquals("", storedUser.getContent());
    assertEquals(3, storedUser.getSequence());

    List<Message> listed = conversations.listMessages(ListMessagesRequest.newBuilder()
        .setConversationId(conv.getId()).setOrder(MessageOrder.MESSAGE_ORDER_OLDEST_FIRST).build()).getMessagesList();
    assertEquals(List.of(storedAssistant, storedTool, storedUser), listed, "read back exactly as stored");

    Conversation after = get(conv.getId());
    assertEquals(3, after.getMessageCount());
    assertEquals(storedUser.getCreateTime(), after.getLastMessageTime(),
        "last message time is the latest create_time (the back-dated one doesn't win)");
  }

  @Test
  void appendWithAnIdempotencyKeyStoresOnce() throws Exception {
    Conversation conv = newConversation();
    Message m = user("book it").toBuilder().setIdempotencyKey("wamid.HBgL123").build();
    AppendMessageResponse first = append(conv.getId(), m);
    assertFalse(first.getReplayed());
    AppendMessageResponse retry = append(conv.getId(), m.toBuilder().setContent("different body").build());
    assertTrue(retry.getReplayed());
    assertEquals(first.getMessage(), retry.getMessage(), "the first stored message wins");

    // Racing retries: exactly one row, every caller gets it.
    int callers = 16;
    ExecutorService pool = Executors.newFixedThreadPool(callers);
    try {
      CountDownLatch go = new CountDownLatch(1);
      List<Future<AppendMessageResponse>> results = new ArrayList<>();
      for (int i = 0; i < callers; i++) {
        results.add(pool.submit(() -> {
          go.await();
          return append(conv.getId(), user("race").toBuilder().setIdempotencyKey("race-key").build());
        }));
      }
      go.countDown();
      Set<String> ids = new HashSet<>();
      int stored = 0;
      for (var f : results) {
        var r = f.get(30, TimeUnit.SECONDS);
        ids.add(r.getMessage().getId());
        stored += r.getReplayed() ? 0 : 1;
      }
      assertEquals(1, ids.size());
      assertEquals(1, stored);
    } finally {
      pool.shutdownNow();
    }
    assertEquals(2, count("SELECT count(*) FROM messages WHERE conversation_id = ?", UUID.fromString(conv.getId())));
    assertEquals(2, get(conv.getId()).getMessageCount());

    // A replay still answers after the conversation is closed.
    conversations.closeConversation(CloseConversationRequest.newBuilder().setConversationId(conv.getId()).build());
    assertTrue(append(conv.getId(), m).getReplayed());
  }

  @Test
  void appendRejectsEachBadFieldByName() {
    String id = newConversation().getId();
    assertInvalid("message.role", () -> append(id, Message.newBuilder().setContent("x").build()));
    assertInvalid("message.role", () -> append(id, Message.newBuilder().setRoleValue(42).setContent("x").build()));
    assertInvalid("message.content", () -> append(id, user("")));
    assertInvalid("message.content", () -> append(id, user("x".repeat(32_769))));
    assertInvalid("message.content", () -> append(id, user("nul\0byte")));
    assertInvalid("message.tool_calls", () -> append(id, user("x").toBuilder()
        .addToolCalls(ToolCall.newBuilder().setId("c").setName("n")).build()));
    assertInvalid("message.tool_calls[0].name", () -> append(id, text(MessageRole.MESSAGE_ROLE_ASSISTANT, "x")
        .toBuilder().addToolCalls(ToolCall.newBuilder().setId("c")).build()));
    assertInvalid("message.tool_call_id", () -> append(id, text(MessageRole.MESSAGE_ROLE_TOOL, "result")));
    assertInvalid("message.tool_call_id", () -> append(id, user("x").toBuilder().setToolCallId("c").build()));
    assertInvalid("message.attachments[0].uri", () -> append(id, user("x").toBuilder()
        .addAttachments(Attachment.newBuilder().setUri("not a uri")).build()));
    assertInvalid("message.attachments[0].size_bytes", () -> append(id, user("x").toBuilder()
        .addAttachments(Attachment.newBuilder().setUri("https://x.test/a").setSizeBytes(-1)).build()));
    assertInvalid("message.create_time", () -> append(id, user("x").toBuilder()
        .setCreateTime(Timestamps.fromMillis(System.currentTimeMillis() + 3_600_000)).build()));
    assertInvalid("message.idempotency_key", () -> append(id, user("x").toBuilder()
        .setIdempotencyKey("k".repeat(129)).build()));
    assertInvalid("message", () -> conversations.appendMessage(
        AppendMessageRequest.newBuilder().setConversationId(id).build()));
    assertInvalid("conversation_id", () -> append("nope", user("x")));
    assertError(Code.NOT_FOUND, "CONVERSATION_NOT_FOUND", () -> append(UUID.randomUUID().toString(), user("x")));
    assertEquals(0, get(id).getMessageCount(), "nothing was stored by the rejected calls");
  }

  // -----------------------------------------------------------------------------------------------
  // AppendMessages

  @Test
  void batchKeepsOrderReportsReplaysAndCountsOnce() {
    Conversation conv = newConversation();
    append(conv.getId(), user("before").toBuilder().setIdempotencyKey("k-1").build());
    List<Message> batch = new ArrayList<>();
    for (int i = 0; i < 100; i++) {
      batch.add(user("item " + i).toBuilder().setIdempotencyKey("k-" + i).build());
    }
    AppendMessagesResponse r = appendAll(conv.getId(), batch);
    assertEquals(100, r.getResultsCount());
    assertEquals(99, r.getCreatedCount());
    assertFalse(r.getResults(0).getReplayed());
    assertTrue(r.getResults(1).getReplayed(), "k-1 was stored before the batch");
    assertEquals(1, r.getResults(1).getSequence());
    assertEquals(2, r.getResults(0).getSequence(), "new items get consecutive sequences in request order");
    for (int i = 2; i < 100; i++) {
      assertEquals(i + 1, r.getResults(i).getSequence());
    }
    assertEquals(100, get(conv.getId()).getMessageCount());

    AppendMessagesResponse again = appendAll(conv.getId(), batch);
    assertEquals(0, again.getCreatedCount());
    for (int i = 0; i < 100; i++) {
      assertTrue(again.getResults(i).getReplayed());
      assertEquals(r.getResults(i).getMessageId(), again.getResults(i).getMessageId());
    }
    assertEquals(100, get(conv.getId()).getMessageCount());

    List<Message> newest = conversations.listMessages(ListMessagesRequest.newBuilder()
        .setConversationId(conv.getId()).setPageSize(3).build()).getMessagesList();
    assertEquals(List.of("item 99", "item 98", "item 97"), newest.stream().map(Message::getContent).toList());
  }

  @Test
  void batchIsAllOrNothing() {
    Conversation conv = newConversation();
    List<Message> batch = new ArrayList<>();
    for (int i = 0; i < 10; i++) {
      batch.add(user("ok " + i));
    }
    batch.set(3, user(""));
    assertFieldError(Code.INVALID_ARGUMENT, "INVALID_ARGUMENT", "messages[3].content",
        () -> appendAll(conv.getId(), batch));
    List<Message> dup = List.of(user("a").toBuilder().setIdempotencyKey("same").build(),
        user("b").toBuilder().setIdempotencyKey("same").build());
    assertInvalid("messages[1].idempotency_key", () -> appendAll(conv.getId(), dup));
    assertInvalid("messages", () -> appendAll(conv.getId(), List.of()));
    List<Message> tooMany = new ArrayList<>();
    for (int i = 0; i < 1001; i++) {
      tooMany.add(user("m"));
    }
    assertInvalid("messages", () -> appendAll(conv.getId(), tooMany));
    assertError(Code.NOT_FOUND, "CONVERSATION_NOT_FOUND", () -> appendAll(UUID.randomUUID().toString(), List.of(user("x"))));
    assertEquals(0, get(conv.getId()).getMessageCount(), "nothing was written");

    List<Message> full = new ArrayList<>();
    for (int i = 0; i < 1000; i++) {
      full.add(user("bulk " + i));
    }
    assertEquals(1000, appendAll(conv.getId(), full).getCreatedCount());
    assertEquals(1000, get(conv.getId()).getMessageCount());
  }

  // -----------------------------------------------------------------------------------------------
  // ImportMessages

  private static ImportMessagesResponse importAll(List<ImportMessagesRequest> items) throws Exception {
    CompletableFuture<ImportMessagesResponse> done = new CompletableFuture<>();
    StreamObserver<ImportMessagesRequest> in = async.importMessages(new StreamObserver<>() {
      @Override
      public void onNext(ImportMessagesResponse r) {
        done.complete(r);
      }

      @Override
      public void onError(Throwable t) {
        done.completeExceptionally(t);
      }

      @Override
      public void onCompleted() {}
    });
    items.forEach(in::onNext);
    in.onCompleted();
    return done.get(120, TimeUnit.SECONDS);
  }

  @Test
  void importBackfillsInChunksAndASecondRunCreatesNothing() throws Exception {
    Customer byId = newCustomer();
    Customer byPhone = newCustomer();
    Instant t0 = Instant.parse("2025-03-01T10:00:00Z");
    List<ImportMessagesRequest> items = new ArrayList<>();
    for (int i = 0; i < 2500; i++) { // crosses two chunk boundaries
      boolean first = i % 2 == 0;
      ImportMessagesRequest.Builder b = ImportMessagesRequest.newBuilder()
          .setChannel(Channel.CHANNEL_SMS)
          .setThreadKey(first ? "thread-a" : "thread-b")
          .setMessage(Message.newBuilder().setRole(i % 3 == 0 ? MessageRole.MESSAGE_ROLE_USER
                  : MessageRole.MESSAGE_ROLE_ASSISTANT)
              .setContent("audit line " + i).setIdempotencyKey("audit-" + i)
              .setCreateTime(Timestamps.fromMillis(t0.toEpochMilli() + i * 1000L)));
      if (first) {
        b.setCustomerId(byId.getId());
      } else {
        b.setContactKey(ContactKey.newBuilder().setPhone(byPhone.getPhone()));
      }
      items.add(b.build());
    }
    items.set(7, items.get(7).toBuilder().setMessage(items.get(7).getMessage().toBuilder().clearIdempotencyKey()).build());
    items.set(1201, items.get(1201).toBuilder().setContactKey(ContactKey.newBuilder().setPhone(newPhone())).build());
    items.add(items.get(10)); // a repeat within the stream

    ImportMessagesResponse r = importAll(items);
    assertEquals(2501, r.getItemsReceived());
    assertEquals(2, r.getConversationsCreated());
    assertEquals(2498, r.getMessagesCreated());
    assertEquals(1, r.getMessagesSkipped());
    assertEquals(2, r.getItemsFailed());
    assertEquals(7, r.getErrors(0).getIndex());
    assertEquals("message.idempotency_key", r.getErrors(0).getField());
    assertEquals("INVALID_FIELD", r.getErrors(0).getReason());
    assertEquals(1201, r.getErrors(1).getIndex());
    assertEquals("CUSTOMER_NOT_FOUND", r.getErrors(1).getReason());
    assertEquals("contact_key.phone", r.getErrors(1).getField());

    ImportMessagesResponse again = importAll(items);
    assertEquals(0, again.getConversationsCreated());
    assertEquals(0, again.getMessagesCreated());
    assertEquals(2499, again.getMessagesSkipped());
    assertEquals(2, again.getItemsFailed());

    Conversation a = open(byId.getId(), Channel.CHANNEL_SMS, "thread-a");
    assertEquals(1250, a.getMessageCount());
    assertEquals(Timestamps.fromMillis(t0.toEpochMilli()), a.getStartTime(), "start is the earliest imported time");
    List<Message> oldest = conversations.listMessages(ListMessagesRequest.newBuilder().setConversationId(a.getId())
        .setOrder(MessageOrder.MESSAGE_ORDER_OLDEST_FIRST).setPageSize(3).build()).getMessagesList();
    assertEquals(List.of("audit line 0", "audit line 2", "audit line 4"),
        oldest.stream().map(Message::getContent).toList());
    assertEquals(List.of(1L, 2L, 3L), oldest.stream().map(Message::getSequence).toList());
    assertEquals(1248, open(byPhone.getId(), Channel.CHANNEL_SMS, "thread-b").getMessageCount());
  }

  @Test
  void importCommitsEveryChunkWhileTheStreamIsStillOpen() throws Exception {
    Customer c = newCustomer();
    CompletableFuture<ImportMessagesResponse> done = new CompletableFuture<>();
    StreamObserver<ImportMessagesRequest> in = async.importMessages(new StreamObserver<>() {
      @Override
      public void onNext(ImportMessagesResponse r) {
        done.complete(r);
      }

      @Override
      public void onError(Throwable t) {
        done.completeExceptionally(t);
      }

      @Override
      public void onCompleted() {}
    });
    UUID customerId = UUID.fromString(c.getId());
    String countSql = "SELECT count(*) FROM messages m JOIN conversations v ON v.id = m.conversation_id"
        + " WHERE v.customer_id = ?";
    for (int i = 0; i < 2500; i++) {
      in.onNext(ImportMessagesRequest.newBuilder().setCustomerId(c.getId()).setChannel(Channel.CHANNEL_VOICE)
          .setThreadKey("call-log").setMessage(user("line " + i).toBuilder().setIdempotencyKey("l" + i)
              .setCreateTime(Timestamps.fromMillis(1_600_000_000_000L + i * 1000L)))
          .build());
    }
    // The server holds at most one chunk: two full chunks are committed before the stream ends.
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    while (count(countSql, customerId) < 2000 && System.nanoTime() < deadline) {
      Thread.sleep(20);
    }
    assertEquals(2000, count(countSql, customerId), "two chunks committed, the third still buffered");
    assertFalse(done.isDone());
    in.onCompleted();
    assertEquals(2500, done.get(30, TimeUnit.SECONDS).getMessagesCreated());
    assertEquals(2500, count(countSql, customerId));
  }

  // -----------------------------------------------------------------------------------------------
  // ListMessages

  @Test
  void listMessagesPagesByRoleAndTime() {
    Conversation conv = newConversation();
    Instant t0 = Instant.now().minusSeconds(3600);
    List<Message> batch = new ArrayList<>();
    for (int i = 0; i < 45; i++) {
      batch.add(text(i % 2 == 0 ? MessageRole.MESSAGE_ROLE_USER : MessageRole.MESSAGE_ROLE_ASSISTANT, "m" + i)
          .toBuilder().setCreateTime(Timestamps.fromMillis(t0.toEpochMilli() + i * 60_000L)).build());
    }
    appendAll(conv.getId(), batch);

    List<Long> seen = new ArrayList<>();
    String token = "";
    do {
      var page = conversations.listMessages(ListMessagesRequest.newBuilder()
          .setConversationId(conv.getId()).setPageSize(20).setPageToken(token).build());
      page.getMessagesList().forEach(m -> seen.add(m.getSequence()));
      token = page.getNextPageToken();
    } while (!token.isEmpty());
    List<Long> expected = new ArrayList<>();
    for (long s = 45; s >= 1; s--) {
      expected.add(s);
    }
    assertEquals(expected, seen, "newest first, every message once");

    var users = conversations.listMessages(ListMessagesRequest.newBuilder().setConversationId(conv.getId())
        .addRoles(MessageRole.MESSAGE_ROLE_USER).setOrder(MessageOrder.MESSAGE_ORDER_OLDEST_FIRST).build());
    assertEquals(23, users.getMessagesCount());
    assertTrue(users.getMessagesList().stream().allMatch(m -> m.getRole() == MessageRole.MESSAGE_ROLE_USER));

    var window = conversations.listMessages(ListMessagesRequest.newBuilder().setConversationId(conv.getId())
        .setCreateTimeRange(TimeRange.newBuilder()
            .setStartTime(Timestamps.fromMillis(t0.toEpochMilli() + 10 * 60_000L))
            .setEndTime(Timestamps.fromMillis(t0.toEpochMilli() + 15 * 60_000L)))
        .setOrder(MessageOrder.MESSAGE_ORDER_OLDEST_FIRST).build());
    assertEquals(List.of("m10", "m11", "m12", "m13", "m14"),
        window.getMessagesList().stream().map(Message::getContent).toList());

    var page1 = conversations.listMessages(ListMessagesRequest.newBuilder()
        .setConversationId(conv.getId()).setPageSize(5).build());
    assertInvalid("page_token", () -> conversations.listMessages(ListMessagesRequest.newBuilder()
        .setConversationId(conv.getId()).setOrder(MessageOrder.MESSAGE_ORDER_OLDEST_FIRST)
        .setPageToken(page1.getNextPageToken()).build()));
    assertInvalid("roles[0]", () -> conversations.listMessages(ListMessagesRequest.newBuilder()
        .setConversationId(conv.getId()).addRoles(MessageRole.MESSAGE_ROLE_UNSPECIFIED).build()));
    assertInvalid("create_time_range", () -> conversations.listMessages(ListMessagesRequest.newBuilder()
        .setConversationId(conv.getId()).setCreateTimeRange(TimeRange.newBuilder()
            .setStartTime(Timestamps.fromMillis(2000)).setEndTime(Timestamps.fromMillis(1000))).build()));
    assertInvalid("page_size", () -> conversations.listMessages(ListMessagesRequest.newBuilder()
        .setConversationId(conv.getId()).setPageSize(-5).build()));
    assertError(Code.NOT_FOUND, "CONVERSATION_NOT_FOUND", () -> conversations.listMessages(
        ListMessagesRequest.newBuilder().setConversationId(UUID.randomUUID().toString()).build()));
    assertEquals(0, conversations.listMessages(ListMessagesRequest.newBuilder()
        .setConversationId(newConversation().getId()).build()).getMessagesCount(), "empty, not NOT_FOUND");
  }

  // -----------------------------------------------------------------------------------------------
  // SearchMessages

  @Test
  void searchRanksHighlightsScopesAndPages() {
    Customer c = newCustomer();
    Conversation one = open(c.getId(), Channel.CHANNEL_SMS, "one");
    Conversation two = open(c.getId(), Channel.CHANNEL_WEB, "two");
    String tag = "qz" + UUID.randomUUID().toString().replace("-", "").substring(0, 10); // a word only this test uses
    appendAll(one.getId(), List.of(
        user("Can I get a quote for junk removal " + tag + " from my basement?"),
        text(MessageRole.MESSAGE_ROLE_ASSISTANT, "Sure, junk removal " + tag + " " + tag + " costs $179."),
        user("Also moving a piano " + tag)));
    appendAll(two.getId(), List.of(user("piano tuning " + tag + " please"), user("nothing relevant here")));

    var hits = conversations.searchMessages(SearchMessagesRequest.newBuilder()
        .setQuery(tag + " junk").setCustomerId(c.getId()).build()).getHitsList();
    assertEquals(2, hits.size());
    assertTrue(hits.get(0).getScore() >= hits.get(1).getScore());
    assertTrue(hits.get(0).getScore() > 0 && hits.get(0).getScore() < 1);
    assertEquals(c.getId(), hits.get(0).getCustomerId());
    assertTrue(hits.get(0).getSnippet().contains("«junk»"), hits.get(0).getSnippet());
    assertTrue(hits.get(0).getSnippet().contains("«" + tag + "»"), hits.get(0).getSnippet());

    assertEquals(4, search(SearchMessagesRequest.newBuilder().setQuery(tag)).size(), "tenant-wide");
    assertEquals(3, search(SearchMessagesRequest.newBuilder().setQuery(tag).setConversationId(one.getId())).size());
    assertEquals(2, search(SearchMessagesRequest.newBuilder().setQuery("piano " + tag)).size());
    assertEquals(1, search(SearchMessagesRequest.newBuilder().setQuery("\"junk removal\" " + tag + " -costs")).size(),
        "phrase and exclusion");
    assertEquals(3, search(SearchMessagesRequest.newBuilder().setQuery("piano OR junk " + tag)
        .setConversationId(one.getId())).size());
    assertEquals(1, search(SearchMessagesRequest.newBuilder().setQuery(tag)
        .addRoles(MessageRole.MESSAGE_ROLE_ASSISTANT)).size());
    assertEquals(0, search(SearchMessagesRequest.newBuilder().setQuery("the")).size(), "only stop words: no hits");

    List<String> paged = new ArrayList<>();
    String token = "";
    do {
      var page = conversations.searchMessages(SearchMessagesRequest.newBuilder()
          .setQuery(tag).setPageSize(1).setPageToken(token).build());
      page.getHitsList().forEach(h -> paged.add(h.getMessage().getId()));
      token = page.getNextPageToken();
    } while (!token.isEmpty());
    assertEquals(search(SearchMessagesRequest.newBuilder().setQuery(tag)).stream()
        .map(h -> h.getMessage().getId()).toList(), paged, "pages follow the ranking without gaps or repeats");

    assertInvalid("query", () -> search(SearchMessagesRequest.newBuilder().setQuery("   ")));
    assertInvalid("query", () -> search(SearchMessagesRequest.newBuilder().setQuery("x".repeat(1025))));
    assertInvalid("page_size", () -> search(SearchMessagesRequest.newBuilder().setQuery("x").setPageSize(-1)));
    assertInvalid("customer_id", () -> search(SearchMessagesRequest.newBuilder().setQuery("x").setCustomerId("1")));
    assertError(Code.NOT_FOUND, "CONVERSATION_NOT_FOUND", () -> search(SearchMessagesRequest.newBuilder()
        .setQuery("x").setConversationId(UUID.randomUUID().toString())));
    assertError(Code.NOT_FOUND, "CUSTOMER_NOT_FOUND", () -> search(SearchMessagesRequest.newBuilder()
        .setQuery("x").setCustomerId(UUID.randomUUID().toString())));
  }

  @Test
  void searchSurvivesHostileInput() {
    Conversation conv = newConversation();
    append(conv.getId(), user("Привет, нужна доставка пианино"));
    append(conv.getId(), user("ピアノの配送をお願いします"));
    List<String> hostile = List.of("\"", "\"\"\"", "\\", "\\\\'", "'; DROP TABLE messages; --", "&|!():*",
        "!!!", "a & | b", ":*", "(((", "-", "- -", "OR", "or or", "\"unterminated phrase", "<->", "foo:*ABCD",
        "x".repeat(1024), "😀 emoji", "null", "%_", "$1", "\u202Eright-to-left", "пианино", "ピアノ");
    for (String q : hostile) {
      var r = conversations.searchMessages(SearchMessagesRequest.newBuilder().setQuery(q)
          .setConversationId(conv.getId()).build());
      assertTrue(r.getHitsCount() <= 2, q);
    }
    assertEquals(1, search(SearchMessagesRequest.newBuilder().setQuery("пианино").setConversationId(conv.getId())).size());
    String tenKb = "word ".repeat(2048);
    assertInvalid("query", () -> search(SearchMessagesRequest.newBuilder().setQuery(tenKb)));
    assertInvalid("query", () -> search(SearchMessagesRequest.newBuilder().setQuery("")));
  }

  private static List<MessageSearchHit> search(SearchMessagesRequest.Builder req) {
    return conversations.searchMessages(req.build()).getHitsList();
  }

  // -----------------------------------------------------------------------------------------------
  // GetConversationStats

  @Test
  void statsCountConversationsAndMessagesOfTheWindow() {
    Customer c = newCustomer();
    Conversation a = open(c.getId(), Channel.CHANNEL_SMS, "a");
    Conversation b = open(c.getId(), Channel.CHANNEL_WEB, "b");
    open(c.getId(), Channel.CHANNEL_WEB, "c");
    appendAll(a.getId(), List.of(user("1"), user("2"), text(MessageRole.MESSAGE_ROLE_ASSISTANT, "3"),
        text(MessageRole.MESSAGE_ROLE_SYSTEM, "4"),
        text(MessageRole.MESSAGE_ROLE_TOOL, "5").toBuilder().setToolCallId("c1").build(),
        user("old").toBuilder().setCreateTime(Timestamps.fromMillis(System.currentTimeMillis() - 40L * 86_400_000))
            .build()));
    conversations.closeConversation(CloseConversationRequest.newBuilder().setConversationId(b.getId()).build());
    conversations.updateConversation(UpdateConversationRequest.newBuilder()
        .setConversation(Conversation.newBuilder().setId(a.getId()).addAllSummaryEmbedding(embedding(9))).build());

    var s = conversations.getConversationStats(GetConversationStatsRequest.newBuilder()
        .setCustomerId(c.getId()).build());
    assertEquals(3, s.getConversationsTotal());
    assertEquals(2, s.getConversationsOpen());
    assertEquals(1, s.getConversationsClosed());
    assertEquals(1, s.getConversationsWithSummaryEmbedding());
    assertEquals(5, s.getMessagesTotal(), "the 40-day-old message is outside the 30-day window");
    assertEquals(MessageRoleCounts.newBuilder().setUser(2).setAssistant(1).setSystem(1).setTool(1).build(),
        s.getMessagesByRole());
    assertEquals(3.0 / 30, s.getAverageConversationsPerDay(), 1e-9);
    assertEquals(30L * 86_400, s.getWindowEndTime().getSeconds() - s.getWindowStartTime().getSeconds(), 1);

    assertEquals(6, conversations.getConversationStats(GetConversationStatsRequest.newBuilder()
        .setCustomerId(c.getId()).setDays(60).build()).getMessagesTotal());
    assertTrue(conversations.getConversationStats(GetConversationStatsRequest.getDefaultInstance())
        .getMessagesTotal() >= 5, "tenant-wide includes this customer");
    assertInvalid("days", () -> conversations.getConversationStats(
        GetConversationStatsRequest.newBuilder().setDays(-1).build()));
    assertInvalid("days", () -> conversations.getConversationStats(
        GetConversationStatsRequest.newBuilder().setDays(3651).build()));
    assertInvalid("customer_id", () -> conversations.getConversationStats(
        GetConversationStatsRequest.newBuilder().setCustomerId("x").build()));
    assertError(Code.NOT_FOUND, "CUSTOMER_NOT_FOUND", () -> conversations.getConversationStats(
        GetConversationStatsRequest.newBuilder().setCustomerId(UUID.randomUUID().toString()).build()));
  }
}

package dev.contextmemory.server;

import static dev.contextmemory.server.testing.GrpcErrors.assertError;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.FieldMask;
import com.google.protobuf.util.Timestamps;
import dev.contextmemory.server.auth.Scope;
import dev.contextmemory.server.testing.GrpcErrors;
import dev.contextmemory.server.testing.TestKeys;
import dev.contextmemory.server.testing.TestServer;
import dev.contextmemory.server.testing.Watcher;
import dev.contextmemory.v1.*;
import io.grpc.MethodDescriptor;
import io.grpc.ServiceDescriptor;
import io.grpc.Status.Code;
import io.grpc.stub.StreamObserver;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Every RPC of every service acts for the caller's tenant only. Tenant B owns a customer with an
 * address, a conversation with messages and a summary embedding, a memory and a key; tenant A's
 * key is then applied to each of B's ids in every RPC: lookups and changes answer NOT_FOUND exactly
 * as for an id that does not exist, and lists, searches, stats and FetchContext return none of B's
 * rows. The list of RPCs comes from the service descriptors, so a new RPC without a case here fails
 * {@link #everyRpcHasACase()}. Finally B's data is checked unchanged.
 */
class TenantIsolationTest {
  private static final int DIMENSION = 768;
  private static final String WORD = "zanzibarquokka";

  private static TestServer server;
  private static Stubs a;
  private static Stubs b;
  private static String aKey;
  private static String bKey;

  // Tenant B's rows.
  private static Customer bCustomer;
  private static Address bAddress;
  private static Conversation bConversation;
  private static Memory bMemory;
  private static Handoff bHandoff;
  private static String bKeyPrefix;
  private static List<Float> bVector;

  record Stubs(CustomerServiceGrpc.CustomerServiceBlockingStub customers,
               ConversationServiceGrpc.ConversationServiceBlockingStub conversations,
               ConversationServiceGrpc.ConversationServiceStub conversationsAsync,
               MemoryServiceGrpc.MemoryServiceBlockingStub memories,
               MemoryServiceGrpc.MemoryServiceStub memoriesAsync,
               AdminServiceGrpc.AdminServiceBlockingStub admin) {
    static Stubs of(TestServer s, String key) {
      return new Stubs(
          TestKeys.withKey(CustomerServiceGrpc.newBlockingStub(s.channel()), key),
          TestKeys.withKey(ConversationServiceGrpc.newBlockingStub(s.channel()), key),
          TestKeys.withKey(ConversationServiceGrpc.newStub(s.channel()), key),
          TestKeys.withKey(MemoryServiceGrpc.newBlockingStub(s.channel()), key),
          TestKeys.withKey(MemoryServiceGrpc.newStub(s.channel()), key),
          TestKeys.withKey(AdminServiceGrpc.newBlockingStub(s.channel()), key));
    }
  }

  @BeforeAll
  static void start() {
    server = TestServer.start(Map.of("AUTH", "api-key"));
    Scope[] all = Scope.values();
    aKey = TestKeys.create(server, "tenant-a", all);
    bKey = TestKeys.create(server, "tenant-b", all);
    bKeyPrefix = bKey.substring(3, 13);
    a = Stubs.of(server, aKey);
    b = Stubs.of(server, bKey);

    bVector = vector(7);
    bCustomer = b.customers().createCustomer(CreateCustomerRequest.newBuilder().setCustomer(Customer.newBuilder()
        .setDisplayName("Bea").setPhone("+15550107777").setEmail("bea@example.com").setExternalRef("b-1")).build())
        .getCustomer();
    bAddress = b.customers().addAddress(AddAddressRequest.newBuilder().setCustomerId(bCustomer.getId())
        .setAddress(Address.newBuilder().setLine1("1 B Street").setCity("Bville").setCountryCode("US")).build())
        .getAddress();
    bConversation = b.conversations().getOrCreateOpenConversation(GetOrCreateOpenConversationRequest.newBuilder()
        .setCustomerId(bCustomer.getId()).setChannel(Channel.CHANNEL_SMS).setThreadKey("b-thread").build())
        .getConversation();
    b.conversations().appendMessage(AppendMessageRequest.newBuilder().setConversationId(bConversation.getId())
        .setMessage(Message.newBuilder().setRole(MessageRole.MESSAGE_ROLE_USER).setContent("my " + WORD + " is lost"))
        .build());
    b.conversations().updateConversation(UpdateConversationRequest.newBuilder()
        .setConversation(Conversation.newBuilder().setId(bConversation.getId()).setSummary("about the " + WORD)
            .addAllSummaryEmbedding(bVector))
        .setUpdateMask(FieldMask.newBuilder().addPaths("summary").addPaths("summary_embedding")).build());
    bHandoff = b.conversations().requestHandoff(RequestHandoffRequest.newBuilder()
        .setConversationId(bConversation.getId()).setReason("needs a person").build()).getHandoff();
    bMemory = b.memories().createMemory(CreateMemoryRequest.newBuilder().setCustomerId(bCustomer.getId())
        .setMemory(Memory.newBuilder().setKind(MemoryKind.MEMORY_KIND_FACT).setContent("owns a " + WORD)
            .addAllEmbedding(bVector)).build()).getMemory();
  }

  @AfterAll
  static void stop() {
    server.close();
  }

  /** One case per RPC, by full method name. */
  private static Map<String, Runnable> cases() {
    Map<String, Runnable> c = new TreeMap<>();
    String customerId = bCustomer.getId();
    String conversationId = bConversation.getId();
    String memoryId = bMemory.getId();

    // CustomerService
    put(c, CustomerServiceGrpc.getCreateCustomerMethod(), () -> {
      // B's phone is free in A's tenant: A gets a customer of its own, B's is untouched.
      Customer mine = a.customers().createCustomer(CreateCustomerRequest.newBuilder()
          .setCustomer(Customer.newBuilder().setDisplayName("A's").setPhone(bCustomer.getPhone())).build()).getCustomer();
      assertNotEquals(customerId, mine.getId());
    });
    put(c, CustomerServiceGrpc.getGetCustomerMethod(), () -> notFound("CUSTOMER_NOT_FOUND",
        () -> a.customers().getCustomer(GetCustomerRequest.newBuilder().setCustomerId(customerId).build())));
    put(c, CustomerServiceGrpc.getLookupCustomerMethod(), () -> notFound("CUSTOMER_NOT_FOUND",
        () -> a.customers().lookupCustomer(LookupCustomerRequest.newBuilder()
            .setContactKey(ContactKey.newBuilder().setExternalRef("b-1")).build())));
    put(c, CustomerServiceGrpc.getUpsertCustomerMethod(), () -> {
      UpsertCustomerResponse r = a.customers().upsertCustomer(UpsertCustomerRequest.newBuilder()
          .setContactKey(ContactKey.newBuilder().setEmail(bCustomer.getEmail()))
          .setCustomer(Customer.newBuilder().setDisplayName("A's Bea")).build());
      assertNotEquals(customerId, r.getCustomer().getId());
    });
    put(c, CustomerServiceGrpc.getUpdateCustomerMethod(), () -> notFound("CUSTOMER_NOT_FOUND",
        () -> a.customers().updateCustomer(UpdateCustomerRequest.newBuilder()
            .setCustomer(Customer.newBuilder().setId(customerId).setDisplayName("hijacked"))
            .setUpdateMask(FieldMask.newBuilder().addPaths("display_name")).build())));
    put(c, CustomerServiceGrpc.getListCustomersMethod(), () -> {
      for (Customer x : a.customers().listCustomers(ListCustomersRequest.newBuilder().setPageSize(1000).build())
          .getCustomersList()) {
        assertNotEquals(customerId, x.getId());
      }
    });
    put(c, CustomerServiceGrpc.getDeleteCustomerMethod(), () -> notFound("CUSTOMER_NOT_FOUND",
        () -> a.customers().deleteCustomer(DeleteCustomerRequest.newBuilder().setCustomerId(customerId).setErase(true)
            .build())));
    put(c, CustomerServiceGrpc.getAddAddressMethod(), () -> notFound("CUSTOMER_NOT_FOUND",
        () -> a.customers().addAddress(AddAddressRequest.newBuilder().setCustomerId(customerId)
            .setAddress(Address.newBuilder().setLine1("x").setCity("y").setCountryCode("US")).build())));
    put(c, CustomerServiceGrpc.getListAddressesMethod(), () -> notFound("CUSTOMER_NOT_FOUND",
        () -> a.customers().listAddresses(ListAddressesRequest.newBuilder().setCustomerId(customerId).build())));
    put(c, CustomerServiceGrpc.getUpdateAddressMethod(), () -> notFound("ADDRESS_NOT_FOUND",
        () -> a.customers().updateAddress(UpdateAddressRequest.newBuilder()
            .setAddress(Address.newBuilder().setId(bAddress.getId()).setCity("elsewhere"))
            .setUpdateMask(FieldMask.newBuilder().addPaths("city")).build())));
    put(c, CustomerServiceGrpc.getRemoveAddressMethod(), () -> notFound("ADDRESS_NOT_FOUND",
        () -> a.customers().removeAddress(RemoveAddressRequest.newBuilder().setAddressId(bAddress.getId()).build())));

    // ConversationService
    put(c, ConversationServiceGrpc.getGetOrCreateOpenConversationMethod(), () -> notFound("CUSTOMER_NOT_FOUND",
        () -> a.conversations().getOrCreateOpenConversation(GetOrCreateOpenConversationRequest.newBuilder()
            .setCustomerId(customerId).setChannel(Channel.CHANNEL_SMS).setThreadKey("b-thread").build())));
    put(c, ConversationServiceGrpc.getGetConversationMethod(), () -> notFound("CONVERSATION_NOT_FOUND",
        () -> a.conversations().getConversation(GetConversationRequest.newBuilder().setConversationId(conversationId)
            .build())));
    put(c, ConversationServiceGrpc.getListConversationsMethod(), () -> notFound("CUSTOMER_NOT_FOUND",
        () -> a.conversations().listConversations(ListConversationsRequest.newBuilder().setCustomerId(customerId)
            .build())));
    put(c, ConversationServiceGrpc.getCloseConversationMethod(), () -> notFound("CONVERSATION_NOT_FOUND",
        () -> a.conversations().closeConversation(CloseConversationRequest.newBuilder()
            .setConversationId(conversationId).build())));
    put(c, ConversationServiceGrpc.getUpdateConversationMethod(), () -> notFound("CONVERSATION_NOT_FOUND",
        () -> a.conversations().updateConversation(UpdateConversationRequest.newBuilder()
            .setConversation(Conversation.newBuilder().setId(conversationId).setSummary("hijacked"))
            .setUpdateMask(FieldMask.newBuilder().addPaths("summary")).build())));
    put(c, ConversationServiceGrpc.getDeleteConversationMethod(), () -> notFound("CONVERSATION_NOT_FOUND",
        () -> a.conversations().deleteConversation(DeleteConversationRequest.newBuilder()
            .setConversationId(conversationId).build())));
    put(c, ConversationServiceGrpc.getAppendMessageMethod(), () -> notFound("CONVERSATION_NOT_FOUND",
        () -> a.conversations().appendMessage(AppendMessageRequest.newBuilder().setConversationId(conversationId)
            .setMessage(Message.newBuilder().setRole(MessageRole.MESSAGE_ROLE_USER).setContent("injected")).build())));
    put(c, ConversationServiceGrpc.getAppendMessagesMethod(), () -> notFound("CONVERSATION_NOT_FOUND",
        () -> a.conversations().appendMessages(AppendMessagesRequest.newBuilder().setConversationId(conversationId)
            .addMessages(Message.newBuilder().setRole(MessageRole.MESSAGE_ROLE_USER).setContent("injected")).build())));
    put(c, ConversationServiceGrpc.getImportMessagesMethod(), () -> {
      ImportMessagesResponse r = importOne(customerId);
      assertEquals(0, r.getMessagesCreated(), r::toString);
      assertEquals(0, r.getConversationsCreated(), r::toString);
      assertEquals(1, r.getItemsFailed(), r::toString);
    });
    put(c, ConversationServiceGrpc.getListMessagesMethod(), () -> notFound("CONVERSATION_NOT_FOUND",
        () -> a.conversations().listMessages(ListMessagesRequest.newBuilder().setConversationId(conversationId)
            .build())));
    put(c, ConversationServiceGrpc.getSearchMessagesMethod(), () -> {
      assertEquals(0, a.conversations().searchMessages(SearchMessagesRequest.newBuilder().setQuery(WORD).build())
          .getHitsCount());
      notFound("CONVERSATION_NOT_FOUND", () -> a.conversations().searchMessages(SearchMessagesRequest.newBuilder()
          .setQuery(WORD).setConversationId(conversationId).build()));
    });
    put(c, ConversationServiceGrpc.getGetConversationStatsMethod(), () -> {
      GetConversationStatsResponse s = a.conversations().getConversationStats(GetConversationStatsRequest.newBuilder()
          .build());
      assertEquals(0, s.getMessagesTotal(), s::toString);
      assertEquals(0, s.getHandoffsRequested(), s::toString);
      assertEquals(0, s.getConversationsTotal(), s::toString);
      notFound("CUSTOMER_NOT_FOUND", () -> a.conversations().getConversationStats(
          GetConversationStatsRequest.newBuilder().setCustomerId(customerId).build()));
    });
    put(c, ConversationServiceGrpc.getWatchConversationsMethod(), TenantIsolationTest::watchSeesOwnTenantOnly);
    put(c, ConversationServiceGrpc.getRequestHandoffMethod(), () -> notFound("CONVERSATION_NOT_FOUND",
        () -> a.conversations().requestHandoff(RequestHandoffRequest.newBuilder().setConversationId(conversationId)
            .build())));
    put(c, ConversationServiceGrpc.getAcceptHandoffMethod(), () -> notFound("HANDOFF_NOT_FOUND",
        () -> a.conversations().acceptHandoff(AcceptHandoffRequest.newBuilder().setHandoffId(bHandoff.getId())
            .setAssigneeId("intruder").build())));
    put(c, ConversationServiceGrpc.getCompleteHandoffMethod(), () -> notFound("HANDOFF_NOT_FOUND",
        () -> a.conversations().completeHandoff(CompleteHandoffRequest.newBuilder().setHandoffId(bHandoff.getId())
            .setAssigneeId("intruder").setCloseConversation(true).build())));
    put(c, ConversationServiceGrpc.getCancelHandoffMethod(), () -> notFound("HANDOFF_NOT_FOUND",
        () -> a.conversations().cancelHandoff(CancelHandoffRequest.newBuilder().setHandoffId(bHandoff.getId())
            .build())));
    put(c, ConversationServiceGrpc.getListHandoffQueueMethod(), () -> assertEquals(0, a.conversations()
        .listHandoffQueue(ListHandoffQueueRequest.newBuilder().setPageSize(1000).build()).getHandoffsCount()));
    put(c, ConversationServiceGrpc.getGetUsageMetricsMethod(), () -> {
      server.server().usageRollup().refresh();
      GetUsageMetricsResponse u = a.conversations().getUsageMetrics(GetUsageMetricsRequest.newBuilder()
          .setTimeRange(TimeRange.newBuilder()
              .setStartTime(com.google.protobuf.util.Timestamps.fromSeconds(Instant.now().getEpochSecond() - 86_400))
              .setEndTime(com.google.protobuf.util.Timestamps.fromSeconds(Instant.now().getEpochSecond() + 86_400)))
          .setBucketWidth(UsageBucketWidth.USAGE_BUCKET_WIDTH_DAY).setGroupByChannel(true).build());
      for (UsageBucket x : u.getBucketsList()) {
        assertEquals(0, x.getConversationsStarted(), x::toString);
        assertEquals(0, x.getMessagesByRole().getUser(), x::toString);
        assertEquals(0, x.getMemoriesCreated(), x::toString);
        assertEquals(0, x.getHandoffsRequested(), x::toString);
      }
    });
    put(c, ConversationServiceGrpc.getListHandoffsMethod(), () -> notFound("CONVERSATION_NOT_FOUND",
        () -> a.conversations().listHandoffs(ListHandoffsRequest.newBuilder().setConversationId(conversationId)
            .build())));

    // MemoryService
    put(c, MemoryServiceGrpc.getCreateMemoryMethod(), () -> notFound("CUSTOMER_NOT_FOUND",
        () -> a.memories().createMemory(CreateMemoryRequest.newBuilder().setCustomerId(customerId)
            .setMemory(Memory.newBuilder().setKind(MemoryKind.MEMORY_KIND_FACT).setContent("x")).build())));
    put(c, MemoryServiceGrpc.getUpsertMemoryMethod(), () -> notFound("CUSTOMER_NOT_FOUND",
        () -> a.memories().upsertMemory(UpsertMemoryRequest.newBuilder().setCustomerId(customerId)
            .setMemory(Memory.newBuilder().setKind(MemoryKind.MEMORY_KIND_FACT).setKey("k").setContent("x")).build())));
    put(c, MemoryServiceGrpc.getGetMemoryMethod(), () -> notFound("MEMORY_NOT_FOUND",
        () -> a.memories().getMemory(GetMemoryRequest.newBuilder().setMemoryId(memoryId).build())));
    put(c, MemoryServiceGrpc.getListMemoriesMethod(), () -> notFound("CUSTOMER_NOT_FOUND",
        () -> a.memories().listMemories(ListMemoriesRequest.newBuilder().setCustomerId(customerId).build())));
    put(c, MemoryServiceGrpc.getUpdateMemoryMethod(), () -> notFound("MEMORY_NOT_FOUND",
        () -> a.memories().updateMemory(UpdateMemoryRequest.newBuilder()
            .setMemory(Memory.newBuilder().setId(memoryId).setContent("hijacked"))
            .setUpdateMask(FieldMask.newBuilder().addPaths("content")).build())));
    put(c, MemoryServiceGrpc.getDeleteMemoryMethod(), () -> notFound("MEMORY_NOT_FOUND",
        () -> a.memories().deleteMemory(DeleteMemoryRequest.newBuilder().setMemoryId(memoryId).build())));
    put(c, MemoryServiceGrpc.getSearchMemoriesMethod(), () -> {
      for (MemorySearchMode mode : List.of(MemorySearchMode.MEMORY_SEARCH_MODE_VECTOR,
          MemorySearchMode.MEMORY_SEARCH_MODE_TEXT, MemorySearchMode.MEMORY_SEARCH_MODE_HYBRID)) {
        SearchMemoriesRequest.Builder r = SearchMemoriesRequest.newBuilder().setMode(mode).setTopK(10);
        if (mode != MemorySearchMode.MEMORY_SEARCH_MODE_TEXT) {
          r.addAllQueryEmbedding(bVector);
        }
        if (mode != MemorySearchMode.MEMORY_SEARCH_MODE_VECTOR) {
          r.setQueryText(WORD);
        }
        assertEquals(0, a.memories().searchMemories(r.build()).getHitsCount(), mode::toString);
        // In the past too: B's versions are not A's.
        assertEquals(0, a.memories().searchMemories(r.setAsOfTime(Timestamps.fromMillis(System.currentTimeMillis() - 1))
            .build()).getHitsCount(), mode::toString);
        notFound("CUSTOMER_NOT_FOUND", () -> a.memories().searchMemories(r.setCustomerId(customerId).build()));
      }
    });
    put(c, MemoryServiceGrpc.getSearchConversationsMethod(), () -> {
      assertEquals(0, a.memories().searchConversations(SearchConversationsRequest.newBuilder()
          .addAllQueryEmbedding(bVector).setTopK(10).build()).getHitsCount());
      notFound("CUSTOMER_NOT_FOUND", () -> a.memories().searchConversations(SearchConversationsRequest.newBuilder()
          .addAllQueryEmbedding(bVector).setCustomerId(customerId).setTopK(10).build()));
    });
    put(c, MemoryServiceGrpc.getFetchContextMethod(), () -> notFound("CUSTOMER_NOT_FOUND",
        () -> a.memories().fetchContext(FetchContextRequest.newBuilder().setCustomerId(customerId)
            .setQueryText(WORD).addAllQueryEmbedding(bVector).build())));
    put(c, MemoryServiceGrpc.getCreateMemoriesMethod(), () -> {
      CreateMemoriesResponse r = a.memories().createMemories(CreateMemoriesRequest.newBuilder()
          .addRequests(CreateMemoryRequest.newBuilder().setCustomerId(customerId)
              .setMemory(Memory.newBuilder().setKind(MemoryKind.MEMORY_KIND_FACT).setContent("x"))).build());
      assertEquals("CUSTOMER_NOT_FOUND", r.getResults(0).getError().getReason(), r::toString);
    });
    put(c, MemoryServiceGrpc.getUpsertMemoriesMethod(), () -> {
      UpsertMemoriesResponse r = a.memories().upsertMemories(UpsertMemoriesRequest.newBuilder()
          .addRequests(UpsertMemoryRequest.newBuilder().setCustomerId(customerId)
              .setMemory(Memory.newBuilder().setKind(MemoryKind.MEMORY_KIND_FACT).setKey("k").setContent("x"))).build());
      assertEquals("CUSTOMER_NOT_FOUND", r.getResults(0).getError().getReason(), r::toString);
    });
    put(c, MemoryServiceGrpc.getImportMemoriesMethod(), () -> {
      ImportMemoriesResponse r = importMemory(customerId);
      assertEquals(0, r.getMemoriesCreated(), r::toString);
      assertEquals(1, r.getItemsFailed(), r::toString);
      assertEquals("CUSTOMER_NOT_FOUND", r.getErrors(0).getError().getReason(), r::toString);
    });
    put(c, MemoryServiceGrpc.getListMemoryHistoryMethod(), () -> {
      notFound("MEMORY_NOT_FOUND", () -> a.memories().listMemoryHistory(ListMemoryHistoryRequest.newBuilder()
          .setMemoryId(memoryId).build()));
      notFound("CUSTOMER_NOT_FOUND", () -> a.memories().listMemoryHistory(ListMemoryHistoryRequest.newBuilder()
          .setCustomerId(customerId).build()));
    });
    put(c, MemoryServiceGrpc.getConfirmMemoriesMethod(), () -> {
      ConfirmMemoriesResponse r = a.memories().confirmMemories(ConfirmMemoriesRequest.newBuilder()
          .addConfirmations(MemoryConfirmation.newBuilder().setMemoryId(memoryId)
              .setOutcome(ConfirmationOutcome.CONFIRMATION_OUTCOME_REJECTED).setDeleteOnReject(true))
          .build());
      assertEquals(ConfirmationEffect.CONFIRMATION_EFFECT_NOT_FOUND, r.getResults(0).getEffect());
    });

    // AdminService
    put(c, AdminServiceGrpc.getCreateApiKeyMethod(), () -> {
      String created = a.admin().createApiKey(CreateApiKeyRequest.newBuilder().setName("a's second")
          .addScopes(ApiKeyScope.API_KEY_SCOPE_READ).build()).getKey();
      // The new key acts for A: B's customer is as unknown to it as to A's first key.
      notFound("CUSTOMER_NOT_FOUND", () -> TestKeys.withKey(CustomerServiceGrpc.newBlockingStub(server.channel()),
          created).getCustomer(GetCustomerRequest.newBuilder().setCustomerId(customerId).build()));
    });
    put(c, AdminServiceGrpc.getListApiKeysMethod(), () -> {
      List<ApiKey> keys = a.admin().listApiKeys(ListApiKeysRequest.newBuilder().setPageSize(1000).build())
          .getApiKeysList();
      assertFalse(keys.isEmpty());
      for (ApiKey k : keys) {
        assertNotEquals(bKeyPrefix, k.getPrefix());
      }
    });
    put(c, AdminServiceGrpc.getRevokeApiKeyMethod(), () -> notFound("API_KEY_NOT_FOUND",
        () -> a.admin().revokeApiKey(RevokeApiKeyRequest.newBuilder().setPrefix(bKeyPrefix).build())));
    return c;
  }

  @Test
  void everyRpcHasACase() {
    Set<String> rpcs = new TreeSet<>();
    for (ServiceDescriptor sd : List.of(CustomerServiceGrpc.getServiceDescriptor(),
        ConversationServiceGrpc.getServiceDescriptor(), MemoryServiceGrpc.getServiceDescriptor(),
        AdminServiceGrpc.getServiceDescriptor())) {
      sd.getMethods().forEach(m -> rpcs.add(m.getFullMethodName()));
    }
    assertEquals(rpcs, cases().keySet(), "every RPC needs its tenant-isolation case here");
  }

  @Test
  void tenantAReachesNoneOfTenantBsRows() {
    List<String> failures = new ArrayList<>();
    cases().forEach((method, check) -> {
      try {
        check.run();
      } catch (AssertionError | RuntimeException e) {
        failures.add(method + ": " + e);
      }
    });
    assertTrue(failures.isEmpty(), () -> String.join("\n", failures));

    // B's data is as it was.
    assertEquals("Bea", b.customers().getCustomer(GetCustomerRequest.newBuilder().setCustomerId(bCustomer.getId())
        .build()).getCustomer().getDisplayName());
    assertEquals(1, b.customers().listAddresses(ListAddressesRequest.newBuilder().setCustomerId(bCustomer.getId())
        .build()).getAddressesCount());
    Conversation conv = b.conversations().getConversation(GetConversationRequest.newBuilder()
        .setConversationId(bConversation.getId()).build()).getConversation();
    assertEquals(ConversationStatus.CONVERSATION_STATUS_OPEN, conv.getStatus());
    assertEquals(1, conv.getMessageCount());
    assertEquals("about the " + WORD, conv.getSummary());
    assertEquals(ConversationHandoffState.CONVERSATION_HANDOFF_STATE_REQUESTED, conv.getHandoffState());
    List<QueuedHandoff> queue = b.conversations().listHandoffQueue(ListHandoffQueueRequest.getDefaultInstance())
        .getHandoffsList();
    assertEquals(1, queue.size());
    assertEquals(bHandoff, queue.get(0).getHandoff());
    Memory mem = b.memories().getMemory(GetMemoryRequest.newBuilder().setMemoryId(bMemory.getId()).build()).getMemory();
    assertEquals("owns a " + WORD, mem.getContent());
    assertEquals(0, mem.getConfirmCount());
    assertEquals(1, b.memories().searchMemories(SearchMemoriesRequest.newBuilder()
        .setMode(MemorySearchMode.MEMORY_SEARCH_MODE_TEXT).setQueryText(WORD).setTopK(10).build()).getHitsCount());
    assertTrue(b.admin().listApiKeys(ListApiKeysRequest.getDefaultInstance()).getApiKeysList().stream()
        .anyMatch(k -> k.getPrefix().equals(bKeyPrefix) && !k.hasRevokeTime()));
  }

  private static void put(Map<String, Runnable> cases, MethodDescriptor<?, ?> method, Runnable check) {
    cases.put(method.getFullMethodName(), check);
  }

  private static void notFound(String reason, org.junit.jupiter.api.function.Executable call) {
    assertError(Code.NOT_FOUND, reason, call);
  }

  /**
   * A's unfiltered stream and A's stream filtered to B's conversation see none of B's events (A's
   * own append is the first thing either delivers); B's cursor is no cursor for A.
   */
  private static void watchSeesOwnTenantOnly() {
    // B's own conversation for this case, so B's other rows stay as the final check expects.
    String bWatched = b.conversations().getOrCreateOpenConversation(GetOrCreateOpenConversationRequest.newBuilder()
        .setCustomerId(bCustomer.getId()).setChannel(Channel.CHANNEL_SMS).setThreadKey("b-watch").build())
        .getConversation().getId();
    int before = server.server().watch().streams();
    try (Watcher all = new Watcher(a.conversationsAsync(), WatchConversationsRequest.getDefaultInstance(), true, 0);
        Watcher bs = new Watcher(a.conversationsAsync(),
            WatchConversationsRequest.newBuilder().setConversationId(bWatched).build(), true, 0);
        Watcher own = new Watcher(b.conversationsAsync(), WatchConversationsRequest.getDefaultInstance(), true, 0)) {
      // Registered: each stream's start is fixed, so the writes below are after it.
      Watcher.awaitStreams(server.server().watch(), before + 3, all, bs, own);
      b.conversations().appendMessage(AppendMessageRequest.newBuilder().setConversationId(bWatched)
          .setMessage(Message.newBuilder().setRole(MessageRole.MESSAGE_ROLE_USER).setContent("b again")).build());
      String bCursor = own.next(10).getCursor();
      String aCustomer = a.customers().createCustomer(CreateCustomerRequest.newBuilder().setCustomer(
          Customer.newBuilder().setDisplayName("Al").setExternalRef("watch-" + UUID.randomUUID())).build())
          .getCustomer().getId();
      a.conversations().getOrCreateOpenConversation(GetOrCreateOpenConversationRequest.newBuilder()
          .setCustomerId(aCustomer).setChannel(Channel.CHANNEL_WEB).setThreadKey("a-watch").build());
      WatchConversationsResponse first = all.next(10);
      assertEquals(ConversationEventKind.CONVERSATION_EVENT_KIND_CONVERSATION_OPENED, first.getKind(), first::toString);
      assertEquals(aCustomer, first.getCustomerId());
      assertTrue(bs.received.stream().noneMatch(r -> r.getKind()
          != ConversationEventKind.CONVERSATION_EVENT_KIND_CHECKPOINT), () -> "A saw " + bs.received);
      GrpcErrors.assertInvalid("resume_cursor", () -> TestKeys.withKey(
          ConversationServiceGrpc.newBlockingStub(server.channel()), aKey).watchConversations(
          WatchConversationsRequest.newBuilder().setResumeCursor(bCursor).build()).hasNext());
    } catch (InterruptedException e) {
      throw new AssertionError(e);
    }
  }

  private static ImportMemoriesResponse importMemory(String customerId) {
    CompletableFuture<ImportMemoriesResponse> done = new CompletableFuture<>();
    StreamObserver<ImportMemoriesRequest> in = a.memoriesAsync().importMemories(new StreamObserver<>() {
      @Override
      public void onNext(ImportMemoriesResponse value) {
        done.complete(value);
      }

      @Override
      public void onError(Throwable t) {
        done.completeExceptionally(t);
      }

      @Override
      public void onCompleted() {}
    });
    in.onNext(ImportMemoriesRequest.newBuilder().setCustomerId(customerId).setRequestId("import-1")
        .setMemory(Memory.newBuilder().setKind(MemoryKind.MEMORY_KIND_FACT).setContent("injected")).build());
    in.onCompleted();
    try {
      return done.get(30, TimeUnit.SECONDS);
    } catch (Exception e) {
      throw new AssertionError("ImportMemories failed", e);
    }
  }

  private static ImportMessagesResponse importOne(String customerId) {
    CompletableFuture<ImportMessagesResponse> done = new CompletableFuture<>();
    StreamObserver<ImportMessagesRequest> in = a.conversationsAsync().importMessages(new StreamObserver<>() {
      @Override
      public void onNext(ImportMessagesResponse value) {
        done.complete(value);
      }

      @Override
      public void onError(Throwable t) {
        done.completeExceptionally(t);
      }

      @Override
      public void onCompleted() {}
    });
    in.onNext(ImportMessagesRequest.newBuilder().setCustomerId(customerId).setChannel(Channel.CHANNEL_SMS)
        .setThreadKey("b-thread").setMessage(Message.newBuilder().setRole(MessageRole.MESSAGE_ROLE_USER)
            .setContent("injected").setIdempotencyKey(UUID.randomUUID().toString())).build());
    in.onCompleted();
    try {
      return done.get(30, TimeUnit.SECONDS);
    } catch (Exception e) {
      throw new AssertionError("ImportMessages failed", e);
    }
  }

  private static List<Float> vector(int seed) {
    java.util.Random r = new java.util.Random(seed);
    List<Float> v = new ArrayList<>(DIMENSION);
    for (int i = 0; i < DIMENSION; i++) {
      v.add((float) r.nextGaussian());
    }
    return v;
  }
}

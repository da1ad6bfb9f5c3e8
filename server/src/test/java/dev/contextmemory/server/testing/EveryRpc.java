package dev.contextmemory.server.testing;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.FieldMask;
import dev.contextmemory.v1.*;
import io.grpc.Channel;
import io.grpc.MethodDescriptor;
import io.grpc.ServiceDescriptor;
import io.grpc.stub.StreamObserver;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/**
 * A workload that calls every RPC of every API service once, each successfully and with its answer
 * checked, against a server reached over {@code channel} with an API key of every scope: the
 * smoke test of a deployment (behind PgBouncer, on a second replica). {@link #run} returns the
 * methods it called, which a test compares with {@link #allMethods()}, so a new RPC without a call
 * here fails it.
 */
public final class EveryRpc {
  private final CustomerServiceGrpc.CustomerServiceBlockingStub customers;
  private final ConversationServiceGrpc.ConversationServiceBlockingStub conversations;
  private final ConversationServiceGrpc.ConversationServiceStub conversationsAsync;
  private final MemoryServiceGrpc.MemoryServiceBlockingStub memories;
  private final MemoryServiceGrpc.MemoryServiceStub memoriesAsync;
  private final AdminServiceGrpc.AdminServiceBlockingStub admin;
  private final int dimension;
  private final Set<String> called = new TreeSet<>();

  public EveryRpc(Channel channel, String apiKey, int dimension) {
    this.customers = TestKeys.withKey(CustomerServiceGrpc.newBlockingStub(channel), apiKey);
    this.conversations = TestKeys.withKey(ConversationServiceGrpc.newBlockingStub(channel), apiKey);
    this.conversationsAsync = TestKeys.withKey(ConversationServiceGrpc.newStub(channel), apiKey);
    this.memories = TestKeys.withKey(MemoryServiceGrpc.newBlockingStub(channel), apiKey);
    this.memoriesAsync = TestKeys.withKey(MemoryServiceGrpc.newStub(channel), apiKey);
    this.admin = TestKeys.withKey(AdminServiceGrpc.newBlockingStub(channel), apiKey);
    this.dimension = dimension;
  }

  /** Every method of the four API services. */
  public static Set<String> allMethods() {
    Set<String> all = new TreeSet<>();
    for (ServiceDescriptor d : List.of(CustomerServiceGrpc.getServiceDescriptor(),
        ConversationServiceGrpc.getServiceDescriptor(), MemoryServiceGrpc.getServiceDescriptor(),
        AdminServiceGrpc.getServiceDescriptor())) {
      d.getMethods().forEach(m -> all.add(m.getFullMethodName()));
    }
    return all;
  }

  /** One round of every RPC, on rows of its own (unique names), so rounds may run side by side. */
  public Set<String> run() {
    // Letters only: full-text search must see the tag as one word.
    String tag = UUID.randomUUID().toString().replaceAll("[^a-f]", "").replaceAll("(.)", "$1q").substring(0, 8);
    List<Float> vector = vector(tag.hashCode());

    Customer c = call(CustomerServiceGrpc.getCreateCustomerMethod(), () -> customers().createCustomer(
        CreateCustomerRequest.newBuilder().setCustomer(Customer.newBuilder().setDisplayName("Every " + tag)
            .setEmail(tag + "@example.com")).build()).getCustomer());
    assertEquals(c, call(CustomerServiceGrpc.getGetCustomerMethod(), () -> customers().getCustomer(
        GetCustomerRequest.newBuilder().setCustomerId(c.getId()).build()).getCustomer()));
    assertEquals(c.getId(), call(CustomerServiceGrpc.getLookupCustomerMethod(), () -> customers().lookupCustomer(
        LookupCustomerRequest.newBuilder().setContactKey(ContactKey.newBuilder().setEmail(tag + "@example.com"))
            .build()).getCustomer().getId()));
    assertTrue(call(CustomerServiceGrpc.getUpsertCustomerMethod(), () -> customers().upsertCustomer(
        UpsertCustomerRequest.newBuilder().setContactKey(ContactKey.newBuilder().setExternalRef("ext-" + tag))
            .setCustomer(Customer.newBuilder().setDisplayName("Upserted " + tag)).build()).getCreated()));
    assertEquals("Renamed " + tag, call(CustomerServiceGrpc.getUpdateCustomerMethod(), () -> customers().updateCustomer(
        UpdateCustomerRequest.newBuilder().setCustomer(Customer.newBuilder().setId(c.getId())
            .setDisplayName("Renamed " + tag)).setUpdateMask(FieldMask.newBuilder().addPaths("display_name"))
            .build()).getCustomer().getDisplayName()));
    assertEquals(1, call(CustomerServiceGrpc.getListCustomersMethod(), () -> customers().listCustomers(
        ListCustomersRequest.newBuilder().setDisplayNamePrefix("Renamed " + tag).build()).getCustomersCount()));
    Address a = call(CustomerServiceGrpc.getAddAddressMethod(), () -> customers().addAddress(AddAddressRequest
        .newBuilder().setCustomerId(c.getId()).setAddress(Address.newBuilder().setLine1("1 Main St").setCity("Town")
            .setCountryCode("US")).build()).getAddress());
    assertEquals(1, call(CustomerServiceGrpc.getListAddressesMethod(), () -> customers().listAddresses(
        ListAddressesRequest.newBuilder().setCustomerId(c.getId()).build()).getAddressesCount()));
    assertEquals("City", call(CustomerServiceGrpc.getUpdateAddressMethod(), () -> customers().updateAddress(
        UpdateAddressRequest.newBuilder().setAddress(Address.newBuilder().setId(a.getId()).setCity("City"))
            .setUpdateMask(FieldMask.newBuilder().addPaths("city")).build()).getAddress().getCity()));
    call(CustomerServiceGrpc.getRemoveAddressMethod(), () -> customers().removeAddress(
        RemoveAddressRequest.newBuilder().setAddressId(a.getId()).build()));

    Conversation conv = call(ConversationServiceGrpc.getGetOrCreateOpenConversationMethod(),
        () -> conversations().getOrCreateOpenConversation(GetOrCreateOpenConversationRequest.newBuilder()
            .setCustomerId(c.getId()).setChannel(dev.contextmemory.v1.Channel.CHANNEL_SMS).setThreadKey("t-" + tag)
            .build()).getConversation());
    call(ConversationServiceGrpc.getAppendMessageMethod(), () -> conversations().appendMessage(AppendMessageRequest
        .newBuilder().setConversationId(conv.getId()).setMessage(Message.newBuilder()
            .setRole(MessageRole.MESSAGE_ROLE_USER).setContent("where is parcel " + tag)).build()));
    assertEquals(2, call(ConversationServiceGrpc.getAppendMessagesMethod(), () -> conversations().appendMessages(
        AppendMessagesRequest.newBuilder().setConversationId(conv.getId())
            .addMessages(Message.newBuilder().setRole(MessageRole.MESSAGE_ROLE_ASSISTANT).setContent("on its way"))
            .addMessages(Message.newBuilder().setRole(MessageRole.MESSAGE_ROLE_USER).setContent("thanks"))
            .build()).getCreatedCount()));
    ImportMessagesResponse imported = call(ConversationServiceGrpc.getImportMessagesMethod(),
        () -> importOne(c.getId(), tag));
    assertEquals(1L, imported.getMessagesCreated(), imported::toString);
    assertEquals(3, call(ConversationServiceGrpc.getListMessagesMethod(), () -> conversations().listMessages(
        ListMessagesRequest.newBuilder().setConversationId(conv.getId()).build()).getMessagesCount()));
    assertEquals(1, call(ConversationServiceGrpc.getSearchMessagesMethod(), () -> conversations().searchMessages(
        SearchMessagesRequest.newBuilder().setQuery(tag).setCustomerId(c.getId()).build()).getHitsCount()));
    assertEquals(conv.getId(), call(ConversationServiceGrpc.getUpdateConversationMethod(),
        () -> conversations().updateConversation(UpdateConversationRequest.newBuilder().setConversation(Conversation
                .newBuilder().setId(conv.getId()).setSummary("parcel " + tag).addAllSummaryEmbedding(vector))
            .setUpdateMask(FieldMask.newBuilder().addPaths("summary").addPaths("summary_embedding")).build())
            .getConversation().getId()));
    assertEquals(conv.getId(), call(ConversationServiceGrpc.getGetConversationMethod(),
        () -> conversations().getConversation(GetConversationRequest.newBuilder().setConversationId(conv.getId())
            .build()).getConversation().getId()));
    assertEquals(2, call(ConversationServiceGrpc.getListConversationsMethod(), () -> conversations().listConversations(
        ListConversationsRequest.newBuilder().setCustomerId(c.getId()).build()).getConversationsCount()),
        "the thread and the imported one");
    assertEquals(4L, call(ConversationServiceGrpc.getGetConversationStatsMethod(),
        () -> conversations().getConversationStats(GetConversationStatsRequest.newBuilder().setCustomerId(c.getId())
            .build()).getMessagesTotal()));
    assertFalse(call(MemoryServiceGrpc.getSearchConversationsMethod(), () -> memories().searchConversations(
        SearchConversationsRequest.newBuilder().addAllQueryEmbedding(vector).setCustomerId(c.getId()).setTopK(5)
            .build()).getHitsList()).isEmpty());
    Handoff requested = call(ConversationServiceGrpc.getRequestHandoffMethod(), () -> conversations().requestHandoff(
        RequestHandoffRequest.newBuilder().setConversationId(conv.getId()).setReason("wants a human " + tag)
            .setPriority(2).build()).getHandoff());
    assertTrue(inQueue(requested.getId()), "the requested handoff is in the queue");
    assertEquals(HandoffState.HANDOFF_STATE_ACCEPTED, call(ConversationServiceGrpc.getAcceptHandoffMethod(),
        () -> conversations().acceptHandoff(AcceptHandoffRequest.newBuilder().setHandoffId(requested.getId())
            .setAssigneeId("agent-" + tag).build()).getHandoff().getState()));
    assertEquals(HandoffState.HANDOFF_STATE_COMPLETED, call(ConversationServiceGrpc.getCompleteHandoffMethod(),
        () -> conversations().completeHandoff(CompleteHandoffRequest.newBuilder().setHandoffId(requested.getId())
            .setAssigneeId("agent-" + tag).setResolution("answered").build()).getHandoff().getState()));
    Handoff again = conversations().requestHandoff(RequestHandoffRequest.newBuilder().setConversationId(conv.getId())
        .setReason("again " + tag).build()).getHandoff();
    assertEquals(HandoffState.HANDOFF_STATE_CANCELLED, call(ConversationServiceGrpc.getCancelHandoffMethod(),
        () -> conversations().cancelHandoff(CancelHandoffRequest.newBuilder().setHandoffId(again.getId()).build())
            .getHandoff().getState()));
    assertEquals(2, call(ConversationServiceGrpc.getListHandoffsMethod(), () -> conversations().listHandoffs(
        ListHandoffsRequest.newBuilder().setConversationId(conv.getId()).build()).getHandoffsCount()));
    long now = System.currentTimeMillis();
    call(ConversationServiceGrpc.getGetUsageMetricsMethod(), () -> conversations().getUsageMetrics(
        GetUsageMetricsRequest.newBuilder().setTimeRange(TimeRange.newBuilder()
                .setStartTime(com.google.protobuf.util.Timestamps.fromMillis(now - 3 * 86_400_000L))
                .setEndTime(com.google.protobuf.util.Timestamps.fromMillis(now + 86_400_000L)))
            .setBucketWidth(UsageBucketWidth.USAGE_BUCKET_WIDTH_DAY).build()));
    WatchConversationsResponse watched = call(ConversationServiceGrpc.getWatchConversationsMethod(),
        () -> watchOne(conv.getId(), tag));
    assertEquals(conv.getId(), watched.getConversationId(), watched::toString);
    call(ConversationServiceGrpc.getCloseConversationMethod(), () -> conversations().closeConversation(
        CloseConversationRequest.newBuilder().setConversationId(conv.getId()).build()));
    call(ConversationServiceGrpc.getDeleteConversationMethod(), () -> conversations().deleteConversation(
        DeleteConversationRequest.newBuilder().setConversationId(conv.getId()).build()));

    Memory m = call(MemoryServiceGrpc.getCreateMemoryMethod(), () -> memories().createMemory(CreateMemoryRequest
        .newBuilder().setCustomerId(c.getId()).setMemory(Memory.newBuilder().setKind(MemoryKind.MEMORY_KIND_FACT)
            .setContent("prefers parcel lockers " + tag).addAllEmbedding(vector)).build()).getMemory());
    assertTrue(call(MemoryServiceGrpc.getUpsertMemoryMethod(), () -> memories().upsertMemory(UpsertMemoryRequest
        .newBuilder().setCustomerId(c.getId()).setMemory(Memory.newBuilder().setKind(MemoryKind.MEMORY_KIND_PREFERENCE)
            .setKey("lang").setContent("speaks French")).build()).getCreated()));
    assertEquals(m.getId(), call(MemoryServiceGrpc.getGetMemoryMethod(), () -> memories().getMemory(
        GetMemoryRequest.newBuilder().setMemoryId(m.getId()).build()).getMemory().getId()));
    assertEquals(2, call(MemoryServiceGrpc.getListMemoriesMethod(), () -> memories().listMemories(
        ListMemoriesRequest.newBuilder().setCustomerId(c.getId()).build()).getMemoriesCount()));
    assertEquals(m.getId(), call(MemoryServiceGrpc.getSearchMemoriesMethod(), () -> memories().searchMemories(
        SearchMemoriesRequest.newBuilder().setCustomerId(c.getId()).setMode(MemorySearchMode.MEMORY_SEARCH_MODE_HYBRID)
            .setQueryText("lockers").addAllQueryEmbedding(vector).setTopK(5).build()).getHits(0).getMemory().getId()));
    assertFalse(call(MemoryServiceGrpc.getFetchContextMethod(), () -> memories().fetchContext(FetchContextRequest
        .newBuilder().setCustomerId(c.getId()).setQueryText("lockers").addAllQueryEmbedding(vector).build())
        .getMemoriesList()).isEmpty());
    assertEquals("lockers only", call(MemoryServiceGrpc.getUpdateMemoryMethod(), () -> memories().updateMemory(
        UpdateMemoryRequest.newBuilder().setMemory(Memory.newBuilder().setId(m.getId()).setContent("lockers only"))
            .setUpdateMask(FieldMask.newBuilder().addPaths("content")).build()).getMemory().getContent()));
    assertEquals(ConfirmationEffect.CONFIRMATION_EFFECT_CONFIRMED, call(MemoryServiceGrpc.getConfirmMemoriesMethod(),
        () -> memories().confirmMemories(ConfirmMemoriesRequest.newBuilder().addConfirmations(MemoryConfirmation
            .newBuilder().setMemoryId(m.getId()).setOutcome(ConfirmationOutcome.CONFIRMATION_OUTCOME_CONFIRMED))
            .build()).getResults(0).getEffect()));
    assertTrue(call(MemoryServiceGrpc.getCreateMemoriesMethod(), () -> memories().createMemories(
        CreateMemoriesRequest.newBuilder().addRequests(CreateMemoryRequest.newBuilder().setCustomerId(c.getId())
            .setMemory(Memory.newBuilder().setKind(MemoryKind.MEMORY_KIND_FACT).setContent("batch " + tag)))
            .build()).getResults(0).getCreated()));
    assertTrue(call(MemoryServiceGrpc.getUpsertMemoriesMethod(), () -> memories().upsertMemories(
        UpsertMemoriesRequest.newBuilder().addRequests(UpsertMemoryRequest.newBuilder().setCustomerId(c.getId())
            .setMemory(Memory.newBuilder().setKind(MemoryKind.MEMORY_KIND_FACT).setKey("batch-key")
                .setContent("batch upsert " + tag))).build()).getResults(0).getCreated()));
    ImportMemoriesResponse importedMemories = call(MemoryServiceGrpc.getImportMemoriesMethod(),
        () -> importMemory(c.getId(), tag));
    assertEquals(1L, importedMemories.getMemoriesCreated(), importedMemories::toString);
    assertFalse(call(MemoryServiceGrpc.getListMemoryHistoryMethod(), () -> memories().listMemoryHistory(
        ListMemoryHistoryRequest.newBuilder().setMemoryId(m.getId()).build()).getChangesList()).isEmpty());
    call(MemoryServiceGrpc.getDeleteMemoryMethod(), () -> memories().deleteMemory(
        DeleteMemoryRequest.newBuilder().setMemoryId(m.getId()).build()));
    call(CustomerServiceGrpc.getDeleteCustomerMethod(), () -> customers().deleteCustomer(
        DeleteCustomerRequest.newBuilder().setCustomerId(c.getId()).setErase(true).build()));

    String key = call(AdminServiceGrpc.getCreateApiKeyMethod(), () -> admin().createApiKey(CreateApiKeyRequest
        .newBuilder().setName("every-" + tag).addScopes(ApiKeyScope.API_KEY_SCOPE_READ).build()).getKey());
    String prefix = key.substring(3, 13);
    assertTrue(call(AdminServiceGrpc.getListApiKeysMethod(), () -> admin().listApiKeys(ListApiKeysRequest.newBuilder()
        .setPageSize(1000).build()).getApiKeysList()).stream().anyMatch(k -> k.getPrefix().equals(prefix)));
    call(AdminServiceGrpc.getRevokeApiKeyMethod(), () -> admin().revokeApiKey(RevokeApiKeyRequest.newBuilder()
        .setPrefix(prefix).build()));
    return Set.copyOf(called);
  }

  // A deadline per call: a stub's withDeadlineAfter is absolute, and the whole workload may take
  // longer than one call may on a loaded machine.
  private CustomerServiceGrpc.CustomerServiceBlockingStub customers() {
    return customers.withDeadlineAfter(30, TimeUnit.SECONDS);
  }

  private ConversationServiceGrpc.ConversationServiceBlockingStub conversations() {
    return conversations.withDeadlineAfter(30, TimeUnit.SECONDS);
  }

  private ConversationServiceGrpc.ConversationServiceStub conversationsAsync() {
    return conversationsAsync.withDeadlineAfter(30, TimeUnit.SECONDS);
  }

  private MemoryServiceGrpc.MemoryServiceStub memoriesAsync() {
    return memoriesAsync.withDeadlineAfter(30, TimeUnit.SECONDS);
  }

  private MemoryServiceGrpc.MemoryServiceBlockingStub memories() {
    return memories.withDeadlineAfter(30, TimeUnit.SECONDS);
  }

  private AdminServiceGrpc.AdminServiceBlockingStub admin() {
    return admin.withDeadlineAfter(30, TimeUnit.SECONDS);
  }

  private <T> T call(MethodDescriptor<?, ?> method, java.util.function.Supplier<T> call) {
    T result = call.get();
    called.add(method.getFullMethodName());
    return result;
  }

  private ImportMessagesResponse importOne(String customerId, String tag) {
    CompletableFuture<ImportMessagesResponse> done = new CompletableFuture<>();
    StreamObserver<ImportMessagesRequest> in = conversationsAsync().importMessages(new StreamObserver<>() {
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
    in.onNext(ImportMessagesRequest.newBuilder().setCustomerId(customerId).setChannel(dev.contextmemory.v1.Channel.CHANNEL_WEB)
        .setThreadKey("imported-" + tag).setMessage(Message.newBuilder().setRole(MessageRole.MESSAGE_ROLE_USER)
            .setContent("an old message").setCreateTime(com.google.protobuf.util.Timestamps.fromMillis(
                System.currentTimeMillis() - 86_400_000L)).setIdempotencyKey(UUID.randomUUID().toString())).build());
    in.onCompleted();
    try {
      return done.get(30, TimeUnit.SECONDS);
    } catch (Exception e) {
      throw new AssertionError("ImportMessages failed", e);
    }
  }

  /**
   * WatchConversations: opens a stream on the conversation, appends, receives the append's event
   * and cancels the stream. A stream without a cursor starts at the next commit after it has
   * subscribed, which the client cannot observe, so it appends again (up to 20 times) until one of
   * its appends arrives.
   */
  private WatchConversationsResponse watchOne(String conversationId, String tag) {
    java.util.concurrent.LinkedBlockingQueue<WatchConversationsResponse> events =
        new java.util.concurrent.LinkedBlockingQueue<>();
    CompletableFuture<Throwable> end = new CompletableFuture<>();
    java.util.concurrent.atomic.AtomicReference<io.grpc.stub.ClientCallStreamObserver<?>> stream =
        new java.util.concurrent.atomic.AtomicReference<>();
    conversationsAsync().watchConversations(WatchConversationsRequest.newBuilder().setConversationId(conversationId)
        .build(), new io.grpc.stub.ClientResponseObserver<WatchConversationsRequest, WatchConversationsResponse>() {
          @Override
          public void beforeStart(io.grpc.stub.ClientCallStreamObserver<WatchConversationsRequest> call) {
            stream.set(call);
          }

          @Override
          public void onNext(WatchConversationsResponse value) {
            events.add(value);
          }

          @Override
          public void onError(Throwable t) {
            end.complete(t);
          }

          @Override
          public void onCompleted() {
            end.complete(null);
          }
        });
    try {
      for (int i = 0; i < 20; i++) {
        String content = "watched " + i + " " + tag;
        conversations().appendMessage(AppendMessageRequest.newBuilder().setConversationId(conversationId)
            .setMessage(Message.newBuilder().setRole(MessageRole.MESSAGE_ROLE_USER).setContent(content)).build());
        long until = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(1500);
        WatchConversationsResponse r;
        while ((r = events.poll(until - System.nanoTime(), TimeUnit.NANOSECONDS)) != null) {
          if (r.getKind() == ConversationEventKind.CONVERSATION_EVENT_KIND_MESSAGE_APPENDED) {
            assertTrue(r.getMessage().getContent().startsWith("watched ") && r.getMessage().getContent().endsWith(tag),
                r::toString);
            return r;
          }
        }
        if (end.isDone()) {
          throw new AssertionError("WatchConversations ended before an event", end.getNow(null));
        }
      }
      throw new AssertionError("WatchConversations delivered none of 20 appends");
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new AssertionError(e);
    } finally {
      stream.get().cancel("EveryRpc has its event", null);
    }
  }

  private boolean inQueue(String handoffId) {
    String token = "";
    do {
      String pageToken = token;
      ListHandoffQueueResponse page = call(ConversationServiceGrpc.getListHandoffQueueMethod(),
          () -> conversations().listHandoffQueue(ListHandoffQueueRequest.newBuilder().setPageSize(100)
              .setPageToken(pageToken).build()));
      if (page.getHandoffsList().stream().anyMatch(q -> q.getHandoff().getId().equals(handoffId))) {
        return true;
      }
      token = page.getNextPageToken();
    } while (!token.isEmpty());
    return false;
  }

  private ImportMemoriesResponse importMemory(String customerId, String tag) {
    CompletableFuture<ImportMemoriesResponse> done = new CompletableFuture<>();
    StreamObserver<ImportMemoriesRequest> in = memoriesAsync().importMemories(new StreamObserver<>() {
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
    in.onNext(ImportMemoriesRequest.newBuilder().setCustomerId(customerId).setRequestId(UUID.randomUUID().toString())
        .setMemory(Memory.newBuilder().setKind(MemoryKind.MEMORY_KIND_FACT).setContent("imported " + tag)).build());
    in.onCompleted();
    try {
      return done.get(30, TimeUnit.SECONDS);
    } catch (Exception e) {
      throw new AssertionError("ImportMemories failed", e);
    }
  }

  private List<Float> vector(int seed) {
    java.util.Random r = new java.util.Random(seed);
    List<Float> v = new ArrayList<>(dimension);
    for (int i = 0; i < dimension; i++) {
      v.add((float) r.nextGaussian());
    }
    return v;
  }
}

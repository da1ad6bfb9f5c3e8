package dev.contextmemory.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.contextmemory.client.ServerProbe.Fault;
import dev.contextmemory.client.ServerProbe.Seen;
import dev.contextmemory.server.testing.TestDatabase;
import dev.contextmemory.v1.AddAddressRequest;
import dev.contextmemory.v1.Address;
import dev.contextmemory.v1.AppendMessageRequest;
import dev.contextmemory.v1.AppendMessagesRequest;
import dev.contextmemory.v1.ContactKey;
import dev.contextmemory.v1.ConversationServiceGrpc;
import dev.contextmemory.v1.CreateCustomerRequest;
import dev.contextmemory.v1.CreateMemoriesRequest;
import dev.contextmemory.v1.CreateMemoriesResponse;
import dev.contextmemory.v1.CreateMemoryRequest;
import dev.contextmemory.v1.Customer;
import dev.contextmemory.v1.CustomerServiceGrpc;
import dev.contextmemory.v1.GetCustomerRequest;
import dev.contextmemory.v1.ListCustomersRequest;
import dev.contextmemory.v1.ListMemoriesRequest;
import dev.contextmemory.v1.Memory;
import dev.contextmemory.v1.MemoryKind;
import dev.contextmemory.v1.MemoryServiceGrpc;
import dev.contextmemory.v1.MemoryWriteResult;
import dev.contextmemory.v1.Message;
import dev.contextmemory.v1.MessageRole;
import dev.contextmemory.v1.UpdateCustomerRequest;
import dev.contextmemory.v1.UpsertCustomerRequest;
import io.grpc.Status.Code;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** ContextMemoryClient against the real server over a real socket and real PostgreSQL. */
class ContextMemoryClientTest {
  private static final String GET_CUSTOMER = CustomerServiceGrpc.getGetCustomerMethod().getFullMethodName();
  private static final String CREATE_CUSTOMER = CustomerServiceGrpc.getCreateCustomerMethod().getFullMethodName();
  private static final String UPDATE_CUSTOMER = CustomerServiceGrpc.getUpdateCustomerMethod().getFullMethodName();
  private static final String LIST_CUSTOMERS = CustomerServiceGrpc.getListCustomersMethod().getFullMethodName();

  private static String dbUrl;
  private static ServerProbe probe;
  private static LiveServer server;
  private static ContextMemoryClient client;

  @BeforeAll
  static void start() {
    dbUrl = TestDatabase.create();
    probe = new ServerProbe();
    server = LiveServer.start(dbUrl, 0, List.of(probe));
    client = ContextMemoryClient.newBuilder(server.target()).build();
  }

  @AfterAll
  static void stop() {
    client.close();
    server.close();
  }

  private static String unique(String prefix) {
    return prefix + "-" + UUID.randomUUID().toString().substring(0, 8);
  }

  private static Customer createCustomer(String name) {
    return client.customers().createCustomer(CreateCustomerRequest.newBuilder()
        .setCustomer(Customer.newBuilder().setDisplayName(name)).build()).getCustomer();
  }

  private static GetCustomerRequest get(String id) {
    return GetCustomerRequest.newBuilder().setCustomerId(id).build();
  }

  /** The calls of {@code method} the server saw whose request is {@code request}. */
  private static List<Seen> seen(String method, Object request) {
    return probe.calls(method).stream().filter(s -> request.equals(s.request())).toList();
  }

  @Test
  void theGeneratedStubsWorkThroughTheClient() {
    String email = unique("ada") + "@example.com";
    var upserted = client.customers().upsertCustomer(UpsertCustomerRequest.newBuilder()
        .setContactKey(ContactKey.newBuilder().setEmail(email))
        .setCustomer(Customer.newBuilder().setDisplayName("Ada")).build());
    assertTrue(upserted.getCreated());
    assertEquals(upserted.getCustomer(), client.customers().getCustomer(get(upserted.getCustomer().getId())).getCustomer());
    // Any other stub flavour on channel() shares the client's behaviour.
    var future = CustomerServiceGrpc.newFutureStub(client.channel()).getCustomer(get(upserted.getCustomer().getId()));
    assertEquals("Ada", assertDoesNotFail(future).getCustomer().getDisplayName());
  }

  private static <T> T assertDoesNotFail(com.google.common.util.concurrent.ListenableFuture<T> f) {
    try {
      return f.get(30, TimeUnit.SECONDS);
    } catch (Exception e) {
      throw new AssertionError(e);
    }
  }

  @Test
  void aCallWithoutDeadlineGetsTheDefaultAndAnExplicitOneIsKept() {
    GetCustomerRequest plain = get(UUID.randomUUID().toString());
    assertThrows(StatusRuntimeException.class, () -> client.customers().getCustomer(plain));
    Seen s = seen(GET_CUSTOMER, plain).getFirst();
    assertNotNull(s.deadline(), "the server saw no deadline");
    assertTrue(s.deadline().timeRemaining(TimeUnit.SECONDS) <= 10, () -> "deadline " + s.deadline());

    GetCustomerRequest explicit = get(UUID.randomUUID().toString());
    assertThrows(StatusRuntimeException.class,
        () -> client.customers().withDeadlineAfter(1, TimeUnit.HOURS).getCustomer(explicit));
    assertTrue(seen(GET_CUSTOMER, explicit).getFirst().deadline().timeRemaining(TimeUnit.MINUTES) > 30);

    try (var noDefault = ContextMemoryClient.newBuilder(server.target()).defaultDeadline(null).build()) {
      GetCustomerRequest none = get(UUID.randomUUID().toString());
      assertThrows(StatusRuntimeException.class, () -> noDefault.customers().getCustomer(none));
      assertNull(seen(GET_CUSTOMER, none).getFirst().deadline());
    }
  }

  @Test
  void createsAndAppendsWithoutKeyGetOneAndKeysGivenAreKept() {
    String name = unique("keyless");
    Customer c = createCustomer(name);
    CreateCustomerRequest sent = (CreateCustomerRequest) probe.calls(CREATE_CUSTOMER).stream()
        .map(Seen::request).filter(r -> ((CreateCustomerRequest) r).getCustomer().getDisplayName().equals(name))
        .findFirst().orElseThrow();
    UUID.fromString(sent.getRequestId()); // a UUID, filled in by the client

    CreateCustomerRequest keyed = CreateCustomerRequest.newBuilder()
        .setCustomer(Customer.newBuilder().setDisplayName(unique("keyed"))).setRequestId("mine-1-" + name).build();
    client.customers().createCustomer(keyed);
    assertEquals(1, seen(CREATE_CUSTOMER, keyed).size(), "a caller's request_id must reach the server unchanged");

    client.customers().addAddress(AddAddressRequest.newBuilder().setCustomerId(c.getId())
        .setAddress(Address.newBuilder().setLine1("1 Main St")).build());
    var addressRequest = (AddAddressRequest) probe.calls(CustomerServiceGrpc.getAddAddressMethod().getFullMethodName())
        .stream().map(Seen::request).filter(r -> ((AddAddressRequest) r).getCustomerId().equals(c.getId()))
        .findFirst().orElseThrow();
    UUID.fromString(addressRequest.getRequestId());

    // Appends: the keys are checked on what reaches the server, whatever the service answers.
    String conversationId = UUID.randomUUID().toString();
    Message keyless = Message.newBuilder().setRole(MessageRole.MESSAGE_ROLE_USER).setContent("hi").build();
    callIgnoringStatus(() -> client.conversations().appendMessage(AppendMessageRequest.newBuilder()
        .setConversationId(conversationId).setMessage(keyless).build()));
    callIgnoringStatus(() -> client.conversations().appendMessages(AppendMessagesRequest.newBuilder()
        .setConversationId(conversationId)
        .addMessages(keyless)
        .addMessages(keyless.toBuilder().setIdempotencyKey("source-42"))
        .addMessages(keyless).build()));
    var single = (AppendMessageRequest) probe.calls(ConversationServiceGrpc.getAppendMessageMethod().getFullMethodName())
        .stream().map(Seen::request).filter(r -> ((AppendMessageRequest) r).getConversationId().equals(conversationId))
        .findFirst().orElseThrow();
    UUID.fromString(single.getMessage().getIdempotencyKey());
    assertEquals("hi", single.getMessage().getContent());
    var batch = (AppendMessagesRequest) probe.calls(ConversationServiceGrpc.getAppendMessagesMethod().getFullMethodName())
        .stream().map(Seen::request).filter(r -> ((AppendMessagesRequest) r).getConversationId().equals(conversationId))
        .findFirst().orElseThrow();
    List<String> keys = batch.getMessagesList().stream().map(Message::getIdempotencyKey).toList();
    assertEquals("source-42", keys.get(1));
    UUID.fromString(keys.get(0));
    UUID.fromString(keys.get(2));
    assertFalse(keys.get(0).equals(keys.get(2)), "two messages of a batch got the same key");
  }

  /** Calls that may fail while a service is not implemented yet: only the request matters. */
  private static void callIgnoringStatus(Runnable call) {
    try {
      call.run();
    } catch (StatusRuntimeException e) {
      assertFalse(e.getStatus().getCode() == Code.INVALID_ARGUMENT, () -> "rejected: " + e.getStatus());
    }
  }

  @Test
  void aReadIsRetriedOnUnavailable() {
    Customer c = createCustomer(unique("retried-read"));
    probe.failNext(GET_CUSTOMER, Fault.BEFORE_SERVICE);
    int before = probe.calls(GET_CUSTOMER).size();
    assertEquals(c, client.customers().getCustomer(get(c.getId())).getCustomer());
    assertEquals(before + 2, probe.calls(GET_CUSTOMER).size(), "one failed attempt and one retry");
  }

  @Test
  void aCreateWhoseResponseWasLostIsRetriedAndStoresOneCustomer() {
    String name = unique("lost-response");
    probe.failNext(CREATE_CUSTOMER, Fault.AFTER_COMMIT);
    Customer c = createCustomer(name);

    List<CreateCustomerRequest> attempts = probe.calls(CREATE_CUSTOMER).stream().map(s -> (CreateCustomerRequest) s.request())
        .filter(r -> r.getCustomer().getDisplayName().equals(name)).toList();
    assertEquals(2, attempts.size(), "the first attempt committed, its response was lost, the retry replayed it");
    assertEquals(attempts.get(0).getRequestId(), attempts.get(1).getRequestId());
    List<Customer> stored = client.listAllCustomers(ListCustomersRequest.newBuilder().setDisplayNamePrefix(name).build())
        .toList();
    assertEquals(List.of(c), stored);
  }

  @Test
  void aMemoryBatchWhoseResponseWasLostIsRetriedAndStoresEachMemoryOnce() {
    String create = MemoryServiceGrpc.getCreateMemoriesMethod().getFullMethodName();
    Customer c = createCustomer(unique("batch"));
    CreateMemoriesRequest.Builder req = CreateMemoriesRequest.newBuilder();
    for (int i = 0; i < 3; i++) {
      req.addRequests(CreateMemoryRequest.newBuilder().setCustomerId(c.getId()).setRequestId(i == 1 ? "mine-1" : "")
          .setMemory(Memory.newBuilder().setKind(MemoryKind.MEMORY_KIND_FACT).setContent("fact " + i)));
    }
    probe.failNext(create, Fault.AFTER_COMMIT);
    CreateMemoriesResponse r = client.memories().createMemories(req.build());

    List<CreateMemoriesRequest> attempts = probe.calls(create).stream().map(s -> (CreateMemoriesRequest) s.request())
        .filter(x -> x.getRequests(0).getCustomerId().equals(c.getId())).toList();
    assertEquals(2, attempts.size(), "the first attempt committed, its response was lost, the retry replayed it");
    assertEquals(attempts.get(0), attempts.get(1), "every attempt carries the same request ids");
    List<String> ids = attempts.get(0).getRequestsList().stream().map(CreateMemoryRequest::getRequestId).toList();
    UUID.fromString(ids.get(0));
    assertEquals("mine-1", ids.get(1));
    UUID.fromString(ids.get(2));
    assertFalse(ids.get(0).equals(ids.get(2)), "two items of a batch got the same request id");
    assertTrue(r.getResultsList().stream().noneMatch(MemoryWriteResult::getCreated), "the retry replayed all three");
    assertEquals(3, client.memories().listMemories(ListMemoriesRequest.newBuilder().setCustomerId(c.getId()).build())
        .getMemoriesCount());
  }

  @Test
  void anUpdateIsNotRetried() {
    Customer c = createCustomer(unique("not-retried"));
    probe.failNext(UPDATE_CUSTOMER, Fault.BEFORE_SERVICE);
    int before = probe.calls(UPDATE_CUSTOMER).size();
    StatusRuntimeException e = assertThrows(StatusRuntimeException.class, () -> client.customers().updateCustomer(
        UpdateCustomerRequest.newBuilder().setCustomer(c.toBuilder().setDisplayName("New")).build()));
    assertEquals(Code.UNAVAILABLE, e.getStatus().getCode());
    assertEquals(before + 1, probe.calls(UPDATE_CUSTOMER).size());
  }

  /** Nothing was done (ABORTED, RESOURCE_EXHAUSTED) or a server past its grace (CANCELLED): a read is retried. */
  @Test
  void aReadIsRetriedOnEveryTransientCode() {
    Customer c = createCustomer(unique("retried-read-codes"));
    for (Code code : List.of(Code.ABORTED, Code.RESOURCE_EXHAUSTED, Code.CANCELLED)) {
      // A client of its own: the shared one's retry throttle has paid for the other tests' faults.
      try (var fresh = ContextMemoryClient.newBuilder(server.target()).build()) {
        probe.failNext(GET_CUSTOMER, Fault.BEFORE_SERVICE, code);
        int before = probe.calls(GET_CUSTOMER).size();
        assertEquals(c, fresh.customers().getCustomer(get(c.getId())).getCustomer(), code.toString());
        assertEquals(before + 2, probe.calls(GET_CUSTOMER).size(), code + ": one failed attempt and one retry");
      }
    }
  }

  /** An update is retried when the status says nothing was done, and only then. */
  @Test
  void anUpdateIsRetriedOnlyWhenNothingWasDone() {
    Customer c = createCustomer(unique("update-codes"));
    for (Code code : List.of(Code.ABORTED, Code.RESOURCE_EXHAUSTED)) {
      try (var fresh = ContextMemoryClient.newBuilder(server.target()).build()) {
        probe.failNext(UPDATE_CUSTOMER, Fault.BEFORE_SERVICE, code);
        int before = probe.calls(UPDATE_CUSTOMER).size();
        fresh.customers().updateCustomer(UpdateCustomerRequest.newBuilder()
            .setCustomer(c.toBuilder().setDisplayName("New " + code)).build());
        assertEquals(before + 2, probe.calls(UPDATE_CUSTOMER).size(), code + ": one failed attempt and one retry");
      }
    }
    try (var fresh = ContextMemoryClient.newBuilder(server.target()).build()) {
      probe.failNext(UPDATE_CUSTOMER, Fault.BEFORE_SERVICE, Code.CANCELLED);
      int before = probe.calls(UPDATE_CUSTOMER).size();
      StatusRuntimeException e = assertThrows(StatusRuntimeException.class, () -> fresh.customers().updateCustomer(
          UpdateCustomerRequest.newBuilder().setCustomer(c.toBuilder().setDisplayName("Newer")).build()));
      assertEquals(Code.CANCELLED, e.getStatus().getCode(), "outcome unknown: not retried");
      assertEquals(before + 1, probe.calls(UPDATE_CUSTOMER).size());
    }
  }

  @Test
  void retriesCanBeTurnedOff() {
    Customer c = createCustomer(unique("no-retries"));
    try (var once = ContextMemoryClient.newBuilder(server.target())
        .retryPolicy(1, Duration.ofMillis(100), Duration.ofSeconds(1)).build()) {
      probe.failNext(GET_CUSTOMER, Fault.BEFORE_SERVICE);
      StatusRuntimeException e = assertThrows(StatusRuntimeException.class, () -> once.customers().getCustomer(get(c.getId())));
      assertEquals(Code.UNAVAILABLE, e.getStatus().getCode());
      assertEquals(c, once.customers().getCustomer(get(c.getId())).getCustomer());
    }
  }

  @Test
  void listAllFollowsEveryPage() {
    String prefix = unique("paged");
    List<Customer> created = new ArrayList<>();
    for (int i = 0; i < 7; i++) {
      created.add(createCustomer(prefix + "-" + i));
    }
    ListCustomersRequest request = ListCustomersRequest.newBuilder().setDisplayNamePrefix(prefix).setPageSize(3).build();
    int before = probe.calls(LIST_CUSTOMERS).size();
    List<Customer> listed = client.listAllCustomers(request).toList();
    assertEquals(created.reversed(), listed, "every customer once, newest first");
    assertEquals(before + 3, probe.calls(LIST_CUSTOMERS).size(), "pages of 3, 3 and 1");
    // Lazy: taking two reads only the first page.
    int mid = probe.calls(LIST_CUSTOMERS).size();
    assertEquals(created.reversed().subList(0, 2), client.listAllCustomers(request).limit(2).toList());
    assertEquals(mid + 1, probe.calls(LIST_CUSTOMERS).size());
  }

  @Test
  void errorDetailsAreReadable() {
    StatusRuntimeException notFound = assertThrows(StatusRuntimeException.class,
        () -> client.customers().getCustomer(get(UUID.randomUUID().toString())));
    assertEquals("CUSTOMER_NOT_FOUND", ApiErrors.reason(notFound));
    assertEquals(ApiErrors.DOMAIN, ApiErrors.errorInfo(notFound).orElseThrow().getDomain());

    StatusRuntimeException invalid = assertThrows(StatusRuntimeException.class,
        () -> client.customers().createCustomer(CreateCustomerRequest.newBuilder()
            .setCustomer(Customer.newBuilder().setDisplayName("X").setPhone("12")).build()));
    assertEquals(Code.INVALID_ARGUMENT, invalid.getStatus().getCode());
    assertEquals(List.of("customer.phone"),
        ApiErrors.fieldViolations(invalid).stream().map(v -> v.getField()).toList());
  }

  @Test
  void severalTargetsAreAllUsed() {
    ServerProbe second = new ServerProbe();
    try (LiveServer other = LiveServer.start(dbUrl, 0, List.of(second));
        var both = ContextMemoryClient.newBuilder(server.target() + ", localhost:" + other.port()).build()) {
      Customer c = createCustomer(unique("balanced"));
      GetCustomerRequest req = get(c.getId());
      // round_robin sends calls to every READY server; the second may connect a little later.
      for (int i = 0; i < 200 && (seen(GET_CUSTOMER, req).isEmpty() || second.calls(GET_CUSTOMER).isEmpty()); i++) {
        assertEquals(c, both.customers().getCustomer(req).getCustomer());
      }
      assertFalse(seen(GET_CUSTOMER, req).isEmpty(), "the first server got no call");
      assertFalse(second.calls(GET_CUSTOMER).isEmpty(), "the second server got no call");
    }
  }

  @Test
  void aCallWaitsForAServerThatIsStartingUp() throws Exception {
    int port = LiveServer.freePort();
    String target = "127.0.0.1:" + port;
    try (var failFast = ContextMemoryClient.newBuilder(target).waitForReady(false).build()) {
      StatusRuntimeException e = assertThrows(StatusRuntimeException.class,
          () -> failFast.customers().getCustomer(get(UUID.randomUUID().toString())));
      assertEquals(Code.UNAVAILABLE, e.getStatus().getCode());
    }
    Customer c = createCustomer(unique("waited-for"));
    try (var waiting = ContextMemoryClient.newBuilder(target).build()) {
      CompletableFuture<Customer> call = CompletableFuture.supplyAsync(() ->
          waiting.customers().withDeadlineAfter(2, TimeUnit.MINUTES).getCustomer(get(c.getId())).getCustomer());
      try (LiveServer late = LiveServer.start(dbUrl, port, List.of())) {
        assertEquals(port, late.port());
        assertEquals(c, call.get(2, TimeUnit.MINUTES));
      }
    }
  }

  @Test
  void tlsWithABearerTokenAskedPerCall(@TempDir Path dir) throws Exception {
    SelfSignedTls tls = SelfSignedTls.create(dir);
    ServerProbe tlsProbe = new ServerProbe();
    AtomicInteger tokens = new AtomicInteger();
    try (LiveServer secure = LiveServer.start(dbUrl,
            NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0), tls.serverCredentials()),
            List.of(tlsProbe));
        var c = ContextMemoryClient.newBuilder("localhost:" + secure.port())
            .useTransportSecurity(tls.certificatePem())
            .bearerToken(() -> "token-" + tokens.incrementAndGet())
            .build()) {
      Customer created = c.customers().createCustomer(CreateCustomerRequest.newBuilder()
          .setCustomer(Customer.newBuilder().setDisplayName(unique("tls"))).build()).getCustomer();
      assertEquals(created, c.customers().getCustomer(get(created.getId())).getCustomer());
      assertEquals(List.of("Bearer token-1", "Bearer token-2"),
          tlsProbe.seen.stream().map(Seen::authorization).toList());
    }
  }

  @Test
  void aBearerTokenIsNotSentOverPlaintextUnlessAllowed() {
    GetCustomerRequest refused = get(UUID.randomUUID().toString());
    try (var c = ContextMemoryClient.newBuilder(server.target()).bearerToken(() -> "secret").build()) {
      StatusRuntimeException e = assertThrows(StatusRuntimeException.class, () -> c.customers().getCustomer(refused));
      assertEquals(Code.UNAUTHENTICATED, e.getStatus().getCode());
    }
    assertEquals(List.of(), seen(GET_CUSTOMER, refused), "the call must not reach the server");

    GetCustomerRequest allowed = get(UUID.randomUUID().toString());
    try (var c = ContextMemoryClient.newBuilder(server.target()).bearerToken(() -> "secret")
        .allowCredentialsOverPlaintext().build()) {
      assertThrows(StatusRuntimeException.class, () -> c.customers().getCustomer(allowed)); // NOT_FOUND
    }
    assertEquals("Bearer secret", seen(GET_CUSTOMER, allowed).getFirst().authorization());
  }

  @Test
  void aBadTargetFailsAtBuildTime() {
    assertThrows(IllegalArgumentException.class, () -> ContextMemoryClient.newBuilder("a:1,b"));
    assertThrows(IllegalArgumentException.class, () -> ContextMemoryClient.newBuilder(" "));
  }
}

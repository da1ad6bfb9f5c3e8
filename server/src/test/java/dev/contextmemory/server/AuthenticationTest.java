package dev.contextmemory.server;

import static dev.contextmemory.server.testing.GrpcErrors.assertError;
import static dev.contextmemory.server.testing.GrpcErrors.assertInvalid;
import static dev.contextmemory.server.testing.GrpcErrors.detail;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.Duration;
import com.google.rpc.ErrorInfo;
import dev.contextmemory.server.auth.Scope;
import dev.contextmemory.server.store.AuditLog;
import dev.contextmemory.server.testing.TestKeys;
import dev.contextmemory.server.testing.TestServer;
import dev.contextmemory.v1.*;
import io.grpc.Metadata;
import io.grpc.Status.Code;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.reflection.v1.ServerReflectionGrpc;
import io.grpc.reflection.v1.ServerReflectionRequest;
import io.grpc.reflection.v1.ServerReflectionResponse;
import io.grpc.stub.MetadataUtils;
import io.grpc.stub.StreamObserver;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.time.Instant;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** API keys over gRPC: UNAUTHENTICATED and PERMISSION_DENIED answers, expiry, revocation, AdminService, audit. */
class AuthenticationTest {
  private static final long CACHE_TTL_MS = 300;
  private static TestServer server;

  @BeforeAll
  static void start() {
    server = TestServer.start(Map.of("AUTH", "api-key", "AUTH_CACHE_TTL_MS", Long.toString(CACHE_TTL_MS),
        "AUTH_LAST_USED_FLUSH_MS", "100"));
  }

  @AfterAll
  static void stop() {
    server.close();
  }

  private static CustomerServiceGrpc.CustomerServiceBlockingStub customers(String key) {
    return TestKeys.withKey(CustomerServiceGrpc.newBlockingStub(server.channel()), key);
  }

  private static CustomerServiceGrpc.CustomerServiceBlockingStub customersWithHeader(String header) {
    Metadata md = new Metadata();
    md.put(Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER), header);
    return CustomerServiceGrpc.newBlockingStub(server.channel())
        .withInterceptors(MetadataUtils.newAttachHeadersInterceptor(md));
  }

  private static ListCustomersRequest list() {
    return ListCustomersRequest.getDefaultInstance();
  }

  @Test
  void noKeyMalformedKeyOrUnknownKeyIsUnauthenticated() {
    assertError(Code.UNAUTHENTICATED, "API_KEY_MISSING",
        () -> CustomerServiceGrpc.newBlockingStub(server.channel()).listCustomers(list()));
    assertError(Code.UNAUTHENTICATED, "API_KEY_MALFORMED", () -> customersWithHeader("Basic dXNlcjpwYXNz").listCustomers(list()));
    assertError(Code.UNAUTHENTICATED, "API_KEY_MALFORMED", () -> customers("not-a-key").listCustomers(list()));
    String real = TestKeys.create(server, "t-auth", Scope.READ);
    String wrongSecret = real.substring(0, 14) + "a".repeat(32);
    String unknownPrefix = "cm_" + "b".repeat(10) + real.substring(13);
    var wrong = assertError(Code.UNAUTHENTICATED, "API_KEY_INVALID", () -> customers(wrongSecret).listCustomers(list()));
    var unknown = assertError(Code.UNAUTHENTICATED, "API_KEY_INVALID", () -> customers(unknownPrefix).listCustomers(list()));
    // Nothing tells a wrong secret from a key that does not exist.
    assertEquals(wrong.getMessage(), unknown.getMessage());
    // The scheme is case-insensitive (RFC 7235); the real key works.
    customersWithHeader("bearer " + real).listCustomers(list());
    customers(real).listCustomers(list());
  }

  @Test
  void expiredKeyIsUnauthenticated() throws Exception {
    // The key works until its expiry (and is cached by then), then stops. On a loaded machine its
    // first call can come after the expiry: that attempt shows nothing, and one with a longer life
    // follows. A refusal before the expiry fails the test.
    for (long lifeMillis = 700; ; lifeMillis *= 2) {
      Instant expiry = Instant.now().plusMillis(lifeMillis);
      String key = TestKeys.create(server, "t-exp", expiry, Scope.READ);
      try {
        customers(key).listCustomers(list());
      } catch (StatusRuntimeException e) {
        assertTrue(Instant.now().isAfter(expiry) && lifeMillis < 30_000, () -> "refused before its expiry: " + e);
        continue;
      }
      Thread.sleep(Math.max(0, expiry.toEpochMilli() - System.currentTimeMillis()) + 200);
      assertError(Code.UNAUTHENTICATED, "API_KEY_INVALID", () -> customers(key).listCustomers(list()));
      return;
    }
  }

  @Test
  void keyRevokedElsewhereStopsWorkingWithinTheCacheTtl() throws Exception {
    String key = TestKeys.create(server, "t-rev", Scope.READ);
    customers(key).listCustomers(list()); // cached now
    // Revoked at the database, as `keys revoke` or another server instance does: this server's
    // cache is not told, so the key stops working once its cache entry has expired.
    TestKeys.store(server).revoke(null, key.substring(3, 13), AuditLog.CLI_ACTOR);
    Thread.sleep(CACHE_TTL_MS + 200);
    assertError(Code.UNAUTHENTICATED, "API_KEY_INVALID", () -> customers(key).listCustomers(list()));
  }

  @Test
  void keyRevokedThroughAdminServiceStopsAtOnceOnThisServer() {
    String admin = TestKeys.create(server, "t-admin-rev", Scope.ADMIN, Scope.READ);
    String victim = TestKeys.create(server, "t-admin-rev", Scope.READ);
    customers(victim).listCustomers(list());
    ApiKey revoked = TestKeys.withKey(AdminServiceGrpc.newBlockingStub(server.channel()), admin)
        .revokeApiKey(RevokeApiKeyRequest.newBuilder().setPrefix(victim.substring(3, 13)).build()).getApiKey();
    assertTrue(revoked.hasRevokeTime());
    assertError(Code.UNAUTHENTICATED, "API_KEY_INVALID", () -> customers(victim).listCustomers(list()));
  }

  @Test
  void missingScopeIsPermissionDeniedNamingTheScope() {
    String reader = TestKeys.create(server, "t-scope", Scope.READ);
    String writer = TestKeys.create(server, "t-scope", Scope.READ, Scope.WRITE);
    var denied = assertError(Code.PERMISSION_DENIED, "SCOPE_MISSING", () -> customers(reader).createCustomer(
        CreateCustomerRequest.newBuilder().setCustomer(Customer.newBuilder().setDisplayName("x")).build()));
    assertEquals("write", detail(denied, ErrorInfo.class).orElseThrow().getMetadataOrThrow("required_scope"));

    Customer c = customers(writer).createCustomer(CreateCustomerRequest.newBuilder()
        .setCustomer(Customer.newBuilder().setDisplayName("Erin")).build()).getCustomer();
    var noErase = assertError(Code.PERMISSION_DENIED, "SCOPE_MISSING", () -> customers(writer).deleteCustomer(
        DeleteCustomerRequest.newBuilder().setCustomerId(c.getId()).setErase(true).build()));
    assertEquals("erase", detail(noErase, ErrorInfo.class).orElseThrow().getMetadataOrThrow("required_scope"));

    // ConfirmMemories needs erase only when it deletes.
    MemoryServiceGrpc.MemoryServiceBlockingStub memories =
        TestKeys.withKey(MemoryServiceGrpc.newBlockingStub(server.channel()), writer);
    Memory m = memories.createMemory(CreateMemoryRequest.newBuilder().setCustomerId(c.getId())
        .setMemory(Memory.newBuilder().setKind(MemoryKind.MEMORY_KIND_FACT).setContent("likes tea")).build()).getMemory();
    MemoryConfirmation.Builder reject = MemoryConfirmation.newBuilder().setMemoryId(m.getId())
        .setOutcome(ConfirmationOutcome.CONFIRMATION_OUTCOME_REJECTED);
    assertError(Code.PERMISSION_DENIED, "SCOPE_MISSING", () -> memories.confirmMemories(ConfirmMemoriesRequest.newBuilder()
        .addConfirmations(reject.clone().setDeleteOnReject(true)).build()));
    assertEquals(ConfirmationEffect.CONFIRMATION_EFFECT_DEMOTED, memories.confirmMemories(ConfirmMemoriesRequest
        .newBuilder().addConfirmations(reject).build()).getResults(0).getEffect());

    String eraser = TestKeys.create(server, "t-scope", Scope.ERASE);
    DeleteCustomerResponse erased = customers(eraser).deleteCustomer(DeleteCustomerRequest.newBuilder()
        .setCustomerId(c.getId()).setErase(true).build());
    assertEquals(1, erased.getMemoriesDeleted());
  }

  @Test
  void healthNeedsNoKeyAndReflectionNeedsOne() throws Exception {
    HealthCheckResponse h = HealthGrpc.newBlockingStub(server.channel()).check(HealthCheckRequest.getDefaultInstance());
    assertEquals(HealthCheckResponse.ServingStatus.SERVING, h.getStatus());

    java.util.concurrent.ExecutionException noKey =
        assertThrows(java.util.concurrent.ExecutionException.class, () -> reflect(null));
    assertEquals(Code.UNAUTHENTICATED, ((StatusRuntimeException) noKey.getCause()).getStatus().getCode());
    String key = TestKeys.create(server, "t-refl", Scope.READ);
    assertTrue(reflect(key).getListServicesResponse().getServiceList().stream()
        .anyMatch(s -> s.getName().equals("contextmemory.v1.AdminService")));
  }

  /** Lists the services through reflection. */
  private static ServerReflectionResponse reflect(String key) throws Exception {
    var stub = ServerReflectionGrpc.newStub(server.channel());
    if (key != null) {
      stub = TestKeys.withKey(stub, key);
    }
    CompletableFuture<ServerReflectionResponse> answer = new CompletableFuture<>();
    StreamObserver<ServerReflectionRequest> req = stub.serverReflectionInfo(new StreamObserver<>() {
      @Override
      public void onNext(ServerReflectionResponse r) {
        answer.complete(r);
      }

      @Override
      public void onError(Throwable t) {
        answer.completeExceptionally(t);
      }

      @Override
      public void onCompleted() {}
    });
    req.onNext(ServerReflectionRequest.newBuilder().setListServices("").build());
    req.onCompleted();
    return answer.get(10, TimeUnit.SECONDS);
  }

  @Test
  void adminServiceManagesTheCallersOwnKeysAndAuditsThem() throws Exception {
    String admin = TestKeys.create(server, "t-adm", Scope.ADMIN);
    var stub = TestKeys.withKey(AdminServiceGrpc.newBlockingStub(server.channel()), admin);

    assertInvalid("name", () -> stub.createApiKey(CreateApiKeyRequest.newBuilder()
        .addScopes(ApiKeyScope.API_KEY_SCOPE_READ).build()));
    assertInvalid("scopes", () -> stub.createApiKey(CreateApiKeyRequest.newBuilder().setName("n").build()));
    assertInvalid("scopes[1]", () -> stub.createApiKey(CreateApiKeyRequest.newBuilder().setName("n")
        .addScopes(ApiKeyScope.API_KEY_SCOPE_READ).addScopes(ApiKeyScope.API_KEY_SCOPE_UNSPECIFIED).build()));
    assertInvalid("ttl", () -> stub.createApiKey(CreateApiKeyRequest.newBuilder().setName("n")
        .addScopes(ApiKeyScope.API_KEY_SCOPE_READ).setTtl(Duration.newBuilder().setSeconds(-5)).build()));
    assertInvalid("prefix", () -> stub.revokeApiKey(RevokeApiKeyRequest.newBuilder().setPrefix("NOPE").build()));

    CreateApiKeyResponse created = stub.createApiKey(CreateApiKeyRequest.newBuilder().setName("agent")
        .addScopes(ApiKeyScope.API_KEY_SCOPE_READ).addScopes(ApiKeyScope.API_KEY_SCOPE_WRITE)
        .setTtl(Duration.newBuilder().setSeconds(86_400)).build());
    assertTrue(created.getKey().matches("cm_[a-z2-7]{10}_[a-z2-7]{32}"), created.getKey());
    assertEquals(created.getKey().substring(3, 13), created.getApiKey().getPrefix());
    assertTrue(created.getApiKey().hasExpireTime());
    customers(created.getKey()).listCustomers(list()); // works at once

    // A read+write key cannot manage keys.
    assertError(Code.PERMISSION_DENIED, "SCOPE_MISSING", () -> TestKeys.withKey(
        AdminServiceGrpc.newBlockingStub(server.channel()), created.getKey()).listApiKeys(ListApiKeysRequest.getDefaultInstance()));

    // Listing pages through the tenant's keys, never a secret; last use shows up within a flush.
    ApiKey listed = null;
    for (int i = 0; i < 50 && (listed == null || !listed.hasLastUseTime()); i++) {
      Thread.sleep(100);
      listed = stub.listApiKeys(ListApiKeysRequest.getDefaultInstance()).getApiKeysList().stream()
          .filter(k -> k.getPrefix().equals(created.getApiKey().getPrefix())).findFirst().orElseThrow();
    }
    assertTrue(listed.hasLastUseTime(), "last use recorded");
    assertFalse(listed.toString().contains(created.getKey().substring(14)), "no secret in a listing");
    ListApiKeysResponse first = stub.listApiKeys(ListApiKeysRequest.newBuilder().setPageSize(1).build());
    assertEquals(1, first.getApiKeysCount());
    assertFalse(first.getNextPageToken().isEmpty());
    ListApiKeysResponse second = stub.listApiKeys(ListApiKeysRequest.newBuilder().setPageSize(1)
        .setPageToken(first.getNextPageToken()).build());
    assertFalse(second.getApiKeys(0).getPrefix().equals(first.getApiKeys(0).getPrefix()));

    ApiKey revoked = stub.revokeApiKey(RevokeApiKeyRequest.newBuilder().setPrefix(created.getApiKey().getPrefix()).build())
        .getApiKey();
    ApiKey again = stub.revokeApiKey(RevokeApiKeyRequest.newBuilder().setPrefix(created.getApiKey().getPrefix()).build())
        .getApiKey();
    assertEquals(revoked.getRevokeTime(), again.getRevokeTime(), "revoking twice keeps the first time");

    String adminPrefix = admin.substring(3, 13);
    try (Connection c = DriverManager.getConnection(server.dbUrl());
         ResultSet rs = c.createStatement().executeQuery("""
             SELECT action, actor FROM audit_events WHERE tenant_id = 't-adm' AND target_id = '%s'
             ORDER BY occurred_at""".formatted(created.getApiKey().getPrefix()))) {
      assertTrue(rs.next());
      assertEquals("api_key.create", rs.getString(1));
      assertEquals(adminPrefix, rs.getString(2));
      assertTrue(rs.next());
      assertEquals("api_key.revoke", rs.getString(1));
      assertFalse(rs.next(), "a second revocation is not a second event");
    }
  }

  @Test
  void erasuresAndHardDeletesAreAuditedAndOutliveTheErasure() throws Exception {
    String key = TestKeys.create(server, "t-audit", Scope.READ, Scope.WRITE, Scope.ERASE);
    var cs = customers(key);
    var ms = TestKeys.withKey(MemoryServiceGrpc.newBlockingStub(server.channel()), key);
    var conv = TestKeys.withKey(ConversationServiceGrpc.newBlockingStub(server.channel()), key);
    Customer c = cs.createCustomer(CreateCustomerRequest.newBuilder()
        .setCustomer(Customer.newBuilder().setDisplayName("Gone").setPhone("+15550109999")).build()).getCustomer();
    Address addr = cs.addAddress(AddAddressRequest.newBuilder().setCustomerId(c.getId())
        .setAddress(Address.newBuilder().setLine1("1 Main").setCity("X").setCountryCode("US")).build()).getAddress();
    cs.removeAddress(RemoveAddressRequest.newBuilder().setAddressId(addr.getId()).build());
    Memory m1 = ms.createMemory(CreateMemoryRequest.newBuilder().setCustomerId(c.getId())
        .setMemory(Memory.newBuilder().setKind(MemoryKind.MEMORY_KIND_FACT).setContent("one")).build()).getMemory();
    ms.deleteMemory(DeleteMemoryRequest.newBuilder().setMemoryId(m1.getId()).build());
    ms.createMemory(CreateMemoryRequest.newBuilder().setCustomerId(c.getId())
        .setMemory(Memory.newBuilder().setKind(MemoryKind.MEMORY_KIND_FACT).setContent("two")).build());
    Conversation cv = conv.getOrCreateOpenConversation(GetOrCreateOpenConversationRequest.newBuilder()
        .setCustomerId(c.getId()).setChannel(Channel.CHANNEL_SMS).setThreadKey("t").build()).getConversation();
    for (int i = 0; i < 3; i++) {
      conv.appendMessage(AppendMessageRequest.newBuilder().setConversationId(cv.getId())
          .setMessage(Message.newBuilder().setRole(MessageRole.MESSAGE_ROLE_USER).setContent("m" + i)).build());
    }
    cs.deleteCustomer(DeleteCustomerRequest.newBuilder().setCustomerId(c.getId()).setErase(true).build());

    String prefix = key.substring(3, 13);
    try (Connection db = DriverManager.getConnection(server.dbUrl());
         ResultSet rs = db.createStatement().executeQuery("""
             SELECT action, target_id, counts::text FROM audit_events
              WHERE tenant_id = 't-audit' AND actor = '%s' ORDER BY occurred_at, action""".formatted(prefix))) {
      assertTrue(rs.next());
      assertEquals("address.remove", rs.getString(1));
      assertEquals(addr.getId(), rs.getString(2));
      assertTrue(rs.next());
      assertEquals("memory.delete", rs.getString(1));
      assertEquals(m1.getId(), rs.getString(2));
      assertTrue(rs.next());
      assertEquals("customer.erase", rs.getString(1));
      assertEquals(c.getId(), rs.getString(2));
      String counts = rs.getString(3);
      assertTrue(counts.contains("\"messages\": 3") && counts.contains("\"memories\": 1")
          && counts.contains("\"conversations\": 1"), counts);
      assertFalse(rs.next());
    }
  }

  @Test
  void anAuthenticationFailureDoesNotReachTheService() {
    // A read key's refused write must not have written anything.
    String reader = TestKeys.create(server, "t-nowrite", Scope.READ);
    assertThrows(StatusRuntimeException.class, () -> customers(reader).createCustomer(CreateCustomerRequest.newBuilder()
        .setCustomer(Customer.newBuilder().setDisplayName("never")).build()));
    assertEquals(0, customers(reader).listCustomers(list()).getCustomersCount());
  }
}

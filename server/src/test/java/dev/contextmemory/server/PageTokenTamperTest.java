package dev.contextmemory.server;

import static dev.contextmemory.server.testing.GrpcErrors.assertInvalid;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import dev.contextmemory.server.auth.Scope;
import dev.contextmemory.server.testing.TestKeys;
import dev.contextmemory.server.testing.TestServer;
import dev.contextmemory.v1.*;
import java.util.Base64;
import java.util.Map;
import java.util.concurrent.ThreadLocalRandom;
import org.junit.jupiter.api.Test;

/** Issue 12 item 8: a page token the server did not issue, edited or foreign, is INVALID_ARGUMENT. */
class PageTokenTamperTest {
  private final CustomerServiceGrpc.CustomerServiceBlockingStub customers =
      CustomerServiceGrpc.newBlockingStub(TestServer.shared().channel());
  private final ConversationServiceGrpc.ConversationServiceBlockingStub conversations =
      ConversationServiceGrpc.newBlockingStub(TestServer.shared().channel());

  @Test
  void everyEditOfAListMessagesTokenIsRejected() {
    String customer = customers.createCustomer(CreateCustomerRequest.newBuilder().setCustomer(Customer.newBuilder()
        .setPhone("+1555" + (2000000 + ThreadLocalRandom.current().nextInt(7999999)))).build()).getCustomer().getId();
    String conversation = conversations.getOrCreateOpenConversation(GetOrCreateOpenConversationRequest.newBuilder()
        .setCustomerId(customer).setChannel(Channel.CHANNEL_WEB).setThreadKey("pages").build()).getConversation().getId();
    AppendMessagesRequest.Builder batch = AppendMessagesRequest.newBuilder().setConversationId(conversation);
    for (int i = 0; i < 12; i++) {
      batch.addMessages(Message.newBuilder().setRole(MessageRole.MESSAGE_ROLE_USER).setContent("m" + i));
    }
    conversations.appendMessages(batch.build());
    ListMessagesRequest first = ListMessagesRequest.newBuilder().setConversationId(conversation).setPageSize(5).build();
    String token = conversations.listMessages(first).getNextPageToken();
    assertFalse(token.isEmpty());
    assertEquals(5, conversations.listMessages(first.toBuilder().setPageToken(token).build()).getMessagesCount());

    byte[] raw = Base64.getUrlDecoder().decode(token);
    for (int i = 0; i < raw.length; i++) {
      for (byte replacement : new byte[] {'0', '1', '9', '-', '|'}) {
        if (raw[i] == replacement) {
          continue;
        }
        byte[] edited = raw.clone();
        edited[i] = replacement;
        String forged = Base64.getUrlEncoder().withoutPadding().encodeToString(edited);
        assertInvalid("page_token", () -> conversations.listMessages(first.toBuilder().setPageToken(forged).build()));
      }
    }
    // The same token with other filters, and a token of another list, are not this request's.
    assertInvalid("page_token", () -> conversations.listMessages(first.toBuilder().setPageToken(token)
        .setOrder(MessageOrder.MESSAGE_ORDER_OLDEST_FIRST).build()));
    customers.createCustomer(CreateCustomerRequest.newBuilder().setCustomer(Customer.newBuilder()
        .setDisplayName("second")).build());
    String customersToken = customers.listCustomers(ListCustomersRequest.newBuilder().setPageSize(1).build())
        .getNextPageToken();
    assertInvalid("page_token", () -> conversations.listMessages(first.toBuilder().setPageToken(customersToken).build()));
  }

  /** The MAC covers the tenant: tenant B cannot page with a token tenant A was given. */
  @Test
  void aTokenOfOneTenantIsInvalidForAnother() {
    try (TestServer server = TestServer.start(Map.of("AUTH", "api-key"))) {
      var a = TestKeys.withKey(CustomerServiceGrpc.newBlockingStub(server.channel()),
          TestKeys.create(server, "tenant-a", Scope.READ, Scope.WRITE));
      var b = TestKeys.withKey(CustomerServiceGrpc.newBlockingStub(server.channel()),
          TestKeys.create(server, "tenant-b", Scope.READ, Scope.WRITE));
      for (var stub : java.util.List.of(a, b)) {
        for (int i = 0; i < 3; i++) {
          stub.createCustomer(CreateCustomerRequest.newBuilder().setCustomer(Customer.newBuilder()
              .setDisplayName("c" + i)).build());
        }
      }
      ListCustomersRequest first = ListCustomersRequest.newBuilder().setPageSize(1).build();
      String tokenOfA = a.listCustomers(first).getNextPageToken();
      assertFalse(tokenOfA.isEmpty());
      assertEquals(1, a.listCustomers(first.toBuilder().setPageToken(tokenOfA).build()).getCustomersCount());
      assertInvalid("page_token", () -> b.listCustomers(first.toBuilder().setPageToken(tokenOfA).build()));
    }
  }
}

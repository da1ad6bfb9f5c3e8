package dev.contextmemory.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.contextmemory.client.ServerProbe.Fault;
import dev.contextmemory.server.testing.TestDatabase;
import dev.contextmemory.v1.AppendMessageRequest;
import dev.contextmemory.v1.AppendMessageResponse;
import dev.contextmemory.v1.Channel;
import dev.contextmemory.v1.ContactKey;
import dev.contextmemory.v1.Conversation;
import dev.contextmemory.v1.ConversationServiceGrpc;
import dev.contextmemory.v1.CreateCustomerRequest;
import dev.contextmemory.v1.Customer;
import dev.contextmemory.v1.CustomerServiceGrpc;
import dev.contextmemory.v1.GetConversationRequest;
import dev.contextmemory.v1.GetOrCreateOpenConversationRequest;
import dev.contextmemory.v1.ListCustomersRequest;
import dev.contextmemory.v1.ListMessagesRequest;
import dev.contextmemory.v1.Message;
import dev.contextmemory.v1.MessageRole;
import dev.contextmemory.v1.UpsertCustomerRequest;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The server commits a write and dies before its answer reaches the client; it comes back on the
 * same port. The client's call must survive that (gRPC retries it once the server is back) and the
 * write must exist exactly once: the retry carries the same idempotency key, and the restarted
 * server answers it with the stored row.
 *
 * <p>The crash is staged at the network: the client talks to the server through a {@link TcpLink}
 * on a fixed port, which the server cuts (connections reset, new ones refused) from inside the
 * call, right after its transaction committed. Then the server stops, a new one starts on the same
 * fixed port against the same database, and the link comes back.
 */
class RetryAcrossRestartTest {
  private static final String APPEND = ConversationServiceGrpc.getAppendMessageMethod().getFullMethodName();
  private static final String CREATE = CustomerServiceGrpc.getCreateCustomerMethod().getFullMethodName();

  private String dbUrl;
  private int serverPort;
  private final ServerProbe before = new ServerProbe();
  private final ServerProbe after = new ServerProbe();
  private LiveServer first;
  private LiveServer second;
  private TcpLink link;
  private ContextMemoryClient client;

  @BeforeEach
  void start() {
    dbUrl = TestDatabase.create();
    serverPort = LiveServer.freePort();
    first = LiveServer.start(dbUrl, serverPort, List.of(before));
    link = new TcpLink(LiveServer.freePort(), serverPort);
    client = ContextMemoryClient.newBuilder(link.target()).build();
  }

  @AfterEach
  void stop() {
    client.close();
    link.close();
    first.close();
    if (second != null) {
      second.close();
    }
  }

  /**
   * Arms the crash for the next call of {@code method}, runs {@code call} while the server is cut
   * off, stopped and restarted, and returns the call's result.
   */
  private <T> T callThroughCrashAndRestart(String method, Function<ContextMemoryClient, T> call) throws Exception {
    CountDownLatch committed = new CountDownLatch(1);
    before.failNext(method, Fault.AFTER_COMMIT);
    before.onFault(() -> {
      link.cut(); // the client's connection dies mid-call: it sees UNAVAILABLE
      committed.countDown();
    });
    CompletableFuture<T> result = CompletableFuture.supplyAsync(() -> call.apply(client));
    assertTrue(committed.await(1, TimeUnit.MINUTES), "the first attempt never reached the server");
    first.close();
    second = LiveServer.start(dbUrl, serverPort, List.of(after));
    assertEquals(serverPort, second.port());
    link.restore();
    return result.get(2, TimeUnit.MINUTES);
  }

  @Test
  void anAppendCutOffAfterItsCommitIsRetriedAfterTheRestartAndStoredOnce() throws Exception {
    Customer customer = client.customers().upsertCustomer(UpsertCustomerRequest.newBuilder()
        .setContactKey(ContactKey.newBuilder().setExternalRef("restart-" + UUID.randomUUID())).build()).getCustomer();
    Conversation conversation = client.conversations().getOrCreateOpenConversation(
        GetOrCreateOpenConversationRequest.newBuilder().setCustomerId(customer.getId())
            .setChannel(Channel.CHANNEL_WEB).setThreadKey("session-1").build()).getConversation();
    // No idempotency key: the client adds one.
    AppendMessageRequest request = AppendMessageRequest.newBuilder().setConversationId(conversation.getId())
        .setMessage(Message.newBuilder().setRole(MessageRole.MESSAGE_ROLE_USER).setContent("Are you open on Sunday?"))
        .build();

    AppendMessageResponse response = callThroughCrashAndRestart(APPEND, c ->
        c.conversations().withDeadlineAfter(2, TimeUnit.MINUTES).appendMessage(request));

    String key = ((AppendMessageRequest) before.calls(APPEND).getFirst().request()).getMessage().getIdempotencyKey();
    assertEquals(1, before.calls(APPEND).size(), "one attempt before the crash");
    assertEquals(List.of(key), after.calls(APPEND).stream()
        .map(s -> ((AppendMessageRequest) s.request()).getMessage().getIdempotencyKey()).toList(),
        "one retry after the restart, with the same key");
    assertTrue(response.getReplayed(), "the retry must be answered with the message the first attempt stored");
    assertEquals(key, response.getMessage().getIdempotencyKey());

    List<Message> stored = client.listAllMessages(
        ListMessagesRequest.newBuilder().setConversationId(conversation.getId()).build()).toList();
    assertEquals(List.of(response.getMessage()), stored, "exactly one message stored");
    assertEquals(1, client.conversations().getConversation(GetConversationRequest.newBuilder()
        .setConversationId(conversation.getId()).build()).getConversation().getMessageCount());
  }

  @Test
  void aCreateCutOffAfterItsCommitIsRetriedAfterTheRestartAndStoredOnce() throws Exception {
    String name = "restart-" + UUID.randomUUID();
    Customer created = callThroughCrashAndRestart(CREATE, c -> c.customers().withDeadlineAfter(2, TimeUnit.MINUTES)
        .createCustomer(CreateCustomerRequest.newBuilder().setCustomer(Customer.newBuilder().setDisplayName(name))
            .build()).getCustomer());

    String requestId = ((CreateCustomerRequest) before.calls(CREATE).getFirst().request()).getRequestId();
    assertEquals(List.of(requestId), after.calls(CREATE).stream()
        .map(s -> ((CreateCustomerRequest) s.request()).getRequestId()).toList());
    assertEquals(List.of(created), client.listAllCustomers(
        ListCustomersRequest.newBuilder().setDisplayNamePrefix(name).build()).toList());
  }
}

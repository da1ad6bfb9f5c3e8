package dev.contextmemory.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.contextmemory.server.testing.TestServer;
import dev.contextmemory.server.testing.Watcher;
import dev.contextmemory.v1.*;
import java.sql.DriverManager;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * Two server instances on one database: a write on one reaches a stream on the other (NOTIFY from
 * the writer's sequencer pass, then a read), also after the watching server's LISTEN connection
 * was killed (it reconnects and re-reads from its position), and a cursor from one resumes on the
 * other (both share the page-token secret, as replicas must).
 */
class WatchReplicasTest {
  private static final Map<String, String> SHARED = Map.of("PAGE_TOKEN_SECRET", "replicas-share-this-secret");

  @Test
  void writesOnOneReplicaReachStreamsOnTheOther() throws Exception {
    try (TestServer a = TestServer.start(SHARED);
        TestServer b = TestServer.startOn(a.dbUrl(), SHARED)) {
      var customersB = CustomerServiceGrpc.newBlockingStub(b.channel());
      var conversationsB = ConversationServiceGrpc.newBlockingStub(b.channel());
      String customer = customersB.createCustomer(CreateCustomerRequest.newBuilder().setCustomer(
          Customer.newBuilder().setDisplayName("Rep").setExternalRef("replica")).build()).getCustomer().getId();
      WatchConversationsRequest request = WatchConversationsRequest.newBuilder().setCustomerId(customer).build();
      String cursor;
      try (Watcher onA = new Watcher(a.channel(), request, true, 0)) {
        Watcher.awaitStreams(a.server().watch(), 1, onA); // the conversation below is opened after its start
        String conversation = conversationsB.getOrCreateOpenConversation(GetOrCreateOpenConversationRequest
            .newBuilder().setCustomerId(customer).setChannel(Channel.CHANNEL_SMS).setThreadKey("t").build())
            .getConversation().getId();
        for (int i = 1; i <= 3; i++) {
          append(conversationsB, conversation, "m" + i);
        }
        List<WatchConversationsResponse> got = onA.next(4, 10);
        assertEquals(ConversationEventKind.CONVERSATION_EVENT_KIND_CONVERSATION_OPENED, got.get(0).getKind());
        assertEquals(List.of("m1", "m2", "m3"), got.subList(1, 4).stream().map(r -> r.getMessage().getContent()).toList());
        cursor = got.get(3).getCursor();

        // Kill A's LISTEN connection: B's next writes still reach A's stream, and A reconnects.
        long reconnects = a.server().watch().listenerReconnects();
        int pid = a.server().watch().listenerBackendPid();
        assertTrue(pid > 0);
        try (var db = DriverManager.getConnection(a.dbUrl()); var st = db.createStatement()) {
          st.execute("SELECT pg_terminate_backend(" + pid + ")");
        }
        append(conversationsB, conversation, "m4");
        assertEquals("m4", onA.next(10).getMessage().getContent());
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (a.server().watch().listenerBackendPid() <= 0 || a.server().watch().listenerBackendPid() == pid) {
          assertTrue(System.nanoTime() < deadline, "the listener did not reconnect");
          Thread.sleep(20);
        }
        assertTrue(a.server().watch().listenerReconnects() > reconnects);
        append(conversationsB, conversation, "m5");
        assertEquals("m5", onA.next(10).getMessage().getContent());
      }
      // A's cursor resumes on B.
      try (Watcher onB = new Watcher(b.channel(), request.toBuilder().setResumeCursor(cursor).build(), true, 0)) {
        assertEquals(List.of("m4", "m5"), onB.next(2, 10).stream().map(r -> r.getMessage().getContent()).toList());
      }
    }
  }

  private static void append(ConversationServiceGrpc.ConversationServiceBlockingStub stub, String conversation,
      String text) {
    stub.appendMessage(AppendMessageRequest.newBuilder().setConversationId(conversation)
        .setMessage(Message.newBuilder().setRole(MessageRole.MESSAGE_ROLE_USER).setContent(text)).build());
  }
}

package dev.contextmemory.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.contextmemory.server.testing.ThrowawayCluster;
import dev.contextmemory.v1.AppendMessageRequest;
import dev.contextmemory.v1.Channel;
import dev.contextmemory.v1.CreateCustomerRequest;
import dev.contextmemory.v1.Customer;
import dev.contextmemory.v1.GetOrCreateOpenConversationRequest;
import dev.contextmemory.v1.ListMessagesRequest;
import dev.contextmemory.v1.Message;
import dev.contextmemory.v1.MessageRole;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.Statement;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import org.junit.jupiter.api.Test;

/**
 * The client carries its session's consistency token by itself: against a server that reads from
 * a real standby whose replay is paused (and a staleness bound so loose that a read without a
 * token would be served there), the client that wrote reads its write, and a client without its
 * token does not, until it is handed the token.
 */
class ReadYourWritesTest {
  @Test
  void theWritingClientReadsItsWriteAndOthersOnlyWithItsToken() throws Exception {
    try (ThrowawayCluster primary = ThrowawayCluster.start(); ThrowawayCluster standby = primary.standby();
        LiveServer server = LiveServer.start(primary.url(),
            io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder.forAddress(
                new java.net.InetSocketAddress("127.0.0.1", 0)), List.of(),
            Map.of("DB_READ_URL", standby.url(), "DB_READ_MAX_STALENESS_MS", "60000", "DB_READ_TOKEN_WAIT_MS", "100"));
        ContextMemoryClient writer = ContextMemoryClient.newBuilder(server.target()).build();
        ContextMemoryClient other = ContextMemoryClient.newBuilder(server.target()).build()) {
      Customer c = writer.customers().createCustomer(CreateCustomerRequest.newBuilder()
          .setCustomer(Customer.newBuilder().setDisplayName("Ada")).build()).getCustomer();
      String conversation = writer.conversations().getOrCreateOpenConversation(
          GetOrCreateOpenConversationRequest.newBuilder().setCustomerId(c.getId()).setChannel(Channel.CHANNEL_WEB)
              .setThreadKey("t-" + UUID.randomUUID()).build()).getConversation().getId();
      // The standby has the conversation before replay stops: the others' reads find it, empty.
      awaitReplayed(standby, conversation);
      try (Connection s = DriverManager.getConnection(standby.url()); Statement st = s.createStatement()) {
        st.execute("SELECT pg_wal_replay_pause()");
      }
      String first = writer.consistencyToken();
      assertNotNull(first);
      String id = writer.conversations().appendMessage(AppendMessageRequest.newBuilder()
          .setConversationId(conversation)
          .setMessage(Message.newBuilder().setRole(MessageRole.MESSAGE_ROLE_USER).setContent("hello")).build())
          .getMessage().getId();
      assertTrue(writer.consistencyToken().compareTo(first) > 0, "the append's token is newer");

      assertEquals(List.of(id), ids(writer, conversation), "the writer reads its write (from the primary)");
      assertFalse(ids(other, conversation).contains(id), "a client without the token reads the paused standby");
      try (ContextMemoryClient handedOver = ContextMemoryClient.newBuilder(server.target())
          .consistencyToken(writer.consistencyToken()).build()) {
        assertEquals(List.of(id), ids(handedOver, conversation), "a client given the token reads the write");
      }
    }
  }

  private static List<String> ids(ContextMemoryClient client, String conversation) {
    return client.conversations().listMessages(ListMessagesRequest.newBuilder().setConversationId(conversation)
        .build()).getMessagesList().stream().map(Message::getId).toList();
  }

  private static void awaitReplayed(ThrowawayCluster standby, String conversation) throws Exception {
    try (Connection s = DriverManager.getConnection(standby.url());
        var q = s.prepareStatement("SELECT count(*) FROM conversations WHERE id = ?::uuid")) {
      q.setString(1, conversation);
      for (int i = 0; i < 400; i++) {
        try (var rs = q.executeQuery()) {
          rs.next();
          if (rs.getInt(1) == 1) {
            return;
          }
        }
        Thread.sleep(25);
      }
    }
    throw new AssertionError("the standby did not replay the conversation within 10 s");
  }
}

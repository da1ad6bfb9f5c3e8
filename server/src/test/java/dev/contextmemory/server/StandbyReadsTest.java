package dev.contextmemory.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.contextmemory.server.testing.TestServer;
import dev.contextmemory.server.testing.ThrowawayCluster;
import dev.contextmemory.v1.AppendMessageRequest;
import dev.contextmemory.v1.ConversationServiceGrpc;
import dev.contextmemory.v1.CreateCustomerRequest;
import dev.contextmemory.v1.Customer;
import dev.contextmemory.v1.CustomerServiceGrpc;
import dev.contextmemory.v1.GetOrCreateOpenConversationRequest;
import dev.contextmemory.v1.ListMessagesRequest;
import dev.contextmemory.v1.Message;
import dev.contextmemory.v1.MessageRole;
import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ClientCall;
import io.grpc.ClientInterceptor;
import io.grpc.ClientInterceptors;
import io.grpc.ForwardingClientCall.SimpleForwardingClientCall;
import io.grpc.ForwardingClientCallListener.SimpleForwardingClientCallListener;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.Statement;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Reads on a real streaming-replication standby (a throwaway primary and its pg_basebackup copy):
 * a caller sees its own write at once, through the standby once it has replayed the write or
 * through the primary when replay is paused; reads without a token leave a standby that has
 * fallen behind the staleness bound.
 */
class StandbyReadsTest {
  private static final Metadata.Key<String> TOKEN =
      Metadata.Key.of("x-cm-consistency-token", Metadata.ASCII_STRING_MARSHALLER);

  private static ThrowawayCluster primary;
  private static ThrowawayCluster standby;
  private static TestServer server;

  @BeforeAll
  static void start() throws Exception {
    primary = ThrowawayCluster.start();
    standby = primary.standby();
    server = TestServer.startOn(primary.url(), Map.of("DB_READ_URL", standby.url(),
        "DB_READ_MAX_STALENESS_MS", "300", "DB_READ_TOKEN_WAIT_MS", "300"));
  }

  @AfterAll
  static void stop() {
    if (server != null) {
      server.close();
    }
    if (standby != null) {
      standby.close();
    }
    if (primary != null) {
      primary.close();
    }
  }

  /** What the Java client does: remembers the token of the last write and sends it on every call. */
  private static final class Session implements ClientInterceptor {
    final AtomicReference<String> token = new AtomicReference<>();

    @Override
    public <Q, R> ClientCall<Q, R> interceptCall(MethodDescriptor<Q, R> method, CallOptions options, Channel next) {
      return new SimpleForwardingClientCall<>(next.newCall(method, options)) {
        @Override
        public void start(Listener<R> listener, Metadata headers) {
          String t = token.get();
          if (t != null) {
            headers.put(TOKEN, t);
          }
          super.start(new SimpleForwardingClientCallListener<>(listener) {
            @Override
            public void onClose(Status status, Metadata trailers) {
              String issued = trailers.get(TOKEN);
              if (issued != null) {
                token.set(issued);
              }
              super.onClose(status, trailers);
            }
          }, headers);
        }
      };
    }
  }

  private record Api(Session session, CustomerServiceGrpc.CustomerServiceBlockingStub customers,
      ConversationServiceGrpc.ConversationServiceBlockingStub conversations) {
    static Api open() {
      Session s = new Session();
      Channel ch = ClientInterceptors.intercept(server.channel(), s);
      return new Api(s, CustomerServiceGrpc.newBlockingStub(ch), ConversationServiceGrpc.newBlockingStub(ch));
    }

    String conversation() {
      Customer c = customers.createCustomer(CreateCustomerRequest.newBuilder()
          .setCustomer(Customer.newBuilder().setDisplayName("Ada")).build()).getCustomer();
      return conversations.getOrCreateOpenConversation(GetOrCreateOpenConversationRequest.newBuilder()
          .setCustomerId(c.getId()).setChannel(dev.contextmemory.v1.Channel.CHANNEL_WEB)
          .setThreadKey("t-" + UUID.randomUUID()).build()).getConversation().getId();
    }

    String append(String conversation, String text) {
      return conversations.appendMessage(AppendMessageRequest.newBuilder().setConversationId(conversation)
          .setMessage(Message.newBuilder().setRole(MessageRole.MESSAGE_ROLE_USER).setContent(text)).build())
          .getMessage().getId();
    }

    List<String> messageIds(String conversation) {
      return conversations.listMessages(ListMessagesRequest.newBuilder().setConversationId(conversation)
          .setPageSize(100).build()).getMessagesList().stream().map(Message::getId).toList();
    }
  }

  private static double reads(String target, String reason) {
    Counter c = registry().find("contextmemory.db.reads").tags("target", target, "reason", reason).counter();
    return c == null ? 0 : c.count();
  }

  private static MeterRegistry registry() {
    return server.server().observability().registry();
  }

  private static void replay(boolean run) throws Exception {
    try (Connection c = DriverManager.getConnection(standby.url()); Statement st = c.createStatement()) {
      st.execute(run ? "SELECT pg_wal_replay_resume()" : "SELECT pg_wal_replay_pause()");
    }
  }

  @Test
  void everyWriteIsReadBackAtOnceAndTheStandbyServesReplayedOnes() {
    Api api = Api.open();
    String conversation = api.conversation();
    assertNotNull(api.session.token.get(), "a write's trailer carries a consistency token");
    double standbyBefore = reads("standby", "token_replayed");
    double total = standbyBefore + reads("primary", "token_wait");
    for (int i = 0; i < 20; i++) {
      String id = api.append(conversation, "message " + i);
      List<String> seen = api.messageIds(conversation);
      assertTrue(seen.contains(id), "read " + i + " sees the write just made");
      assertEquals(i + 1, seen.size());
    }
    assertEquals(total + 20, reads("standby", "token_replayed") + reads("primary", "token_wait"),
        "every read with a token went to a standby that replayed it, or to the primary");
    assertTrue(reads("standby", "token_replayed") > standbyBefore, "replayed reads were served by the standby");
  }

  @Test
  void withReplayPausedAReadWithATokenGoesToThePrimary() throws Exception {
    Api api = Api.open();
    String conversation = api.conversation();
    replay(false);
    try {
      double waited = reads("primary", "token_wait");
      String id = api.append(conversation, "written while the standby is paused");
      assertTrue(api.messageIds(conversation).contains(id), "not stale: the primary answered");
      assertEquals(waited + 1, reads("primary", "token_wait"));
    } finally {
      replay(true);
    }
  }

  @Test
  void withoutATokenAStandbyBeyondTheStalenessBoundIsSkipped() throws Exception {
    Api writer = Api.open();
    String conversation = writer.conversation();
    replay(false);
    try {
      String id = writer.append(conversation, "the standby will not see this until it resumes");
      awaitStaleness(s -> s > 0.3, "the paused standby's staleness passes the 300 ms bound");
      Api fresh = Api.open(); // no token
      double stale = reads("primary", "stale");
      assertTrue(fresh.messageIds(conversation).contains(id), "not stale: the primary answered");
      assertEquals(stale + 1, reads("primary", "stale"));
    } finally {
      replay(true);
    }
    awaitStaleness(s -> s < 0.3, "the resumed standby catches up");
    double served = reads("standby", "fresh");
    Api.open().messageIds(conversation);
    assertEquals(served + 1, reads("standby", "fresh"), "a caught-up standby serves reads without a token");
  }

  private static void awaitStaleness(java.util.function.DoublePredicate ok, String what) throws InterruptedException {
    Gauge g = registry().find("contextmemory.db.standby.staleness").tags("standby", "standby-1").gauge();
    assertNotNull(g);
    for (int i = 0; i < 400 && !ok.test(g.value()); i++) {
      Thread.sleep(25);
    }
    assertTrue(ok.test(g.value()), what + " (staleness " + g.value() + " s)");
  }
}

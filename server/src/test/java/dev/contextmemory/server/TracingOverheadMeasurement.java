package dev.contextmemory.server;

import dev.contextmemory.server.config.Settings;
import dev.contextmemory.server.testing.OtlpReceiver;
import dev.contextmemory.server.testing.TestDatabase;
import dev.contextmemory.v1.AppendMessageRequest;
import dev.contextmemory.v1.Channel;
import dev.contextmemory.v1.ConversationServiceGrpc;
import dev.contextmemory.v1.CreateCustomerRequest;
import dev.contextmemory.v1.Customer;
import dev.contextmemory.v1.CustomerServiceGrpc;
import dev.contextmemory.v1.GetOrCreateOpenConversationRequest;
import dev.contextmemory.v1.Message;
import dev.contextmemory.v1.MessageRole;
import io.grpc.ManagedChannel;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;

/**
 * Not a test: the tracing-overhead measurement of docs/observability.md, run on demand with
 * {@code scripts/test -pl server -am -Dtest=TracingOverheadMeasurement -Dmeasure.tracing=true
 * -Dsurefire.failIfNoSpecifiedTests=false}. Three real servers on Netty, each with its own
 * database: tracing off, on without export (OTEL_TRACES_EXPORTER=none), and on with export to a
 * local OTLP/HTTP receiver. One client appends messages to all three in turn, one call at a time,
 * rotating which goes first, so the three see the same machine load at the same moments; a
 * shared, busy machine moves all three alike. It asserts nothing about time (the load test owns
 * latency); it writes target/observability/tracing-overhead.txt.
 */
@EnabledIfSystemProperty(named = "measure.tracing", matches = "true")
class TracingOverheadMeasurement {
  private static final int WARM_UP = 2_000;
  private static final int MEASURED = 5_000;

  @Test
  void appendMessageWithTracingOffOnAndExporting() throws Exception {
    String[] modes = {"off", "on, export off", "on, export to a local receiver"};
    try (OtlpReceiver receiver = new OtlpReceiver()) {
      List<Map<String, String>> envs = List.of(Map.of(), Map.of("OTEL_TRACES_EXPORTER", "none"),
          Map.of("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint()));
      List<ContextMemoryServer> servers = new ArrayList<>();
      List<ManagedChannel> channels = new ArrayList<>();
      List<ConversationServiceGrpc.ConversationServiceBlockingStub> stubs = new ArrayList<>();
      List<String> conversations = new ArrayList<>();
      try {
        for (Map<String, String> extra : envs) {
          Map<String, String> env = new HashMap<>(extra);
          env.put("CONTEXT_MEMORY_DB_URL", TestDatabase.create());
          env.put("CONTEXT_MEMORY_HOST", "127.0.0.1");
          env.put("CONTEXT_MEMORY_AUTH", "none");
          env.put("CONTEXT_MEMORY_DB_POOL_SIZE", "4");
          // No access-log lines in any of the three (DEBUG is below the root level): only tracing differs.
          env.put("CONTEXT_MEMORY_ACCESS_LOG_LEVEL", "DEBUG");
          ContextMemoryServer server = ContextMemoryServer.start(Settings.from(env),
              NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0)));
          servers.add(server);
          ManagedChannel ch = NettyChannelBuilder.forAddress("127.0.0.1", server.port()).usePlaintext().build();
          channels.add(ch);
          String customer = CustomerServiceGrpc.newBlockingStub(ch).createCustomer(CreateCustomerRequest.newBuilder()
              .setCustomer(Customer.newBuilder().setDisplayName("Overhead")).build()).getCustomer().getId();
          var stub = ConversationServiceGrpc.newBlockingStub(ch);
          stubs.add(stub);
          conversations.add(stub.getOrCreateOpenConversation(GetOrCreateOpenConversationRequest.newBuilder()
              .setCustomerId(customer).setChannel(Channel.CHANNEL_SMS).setThreadKey("t").build())
              .getConversation().getId());
        }
        long[][] nanos = new long[3][MEASURED];
        for (int i = -WARM_UP; i < MEASURED; i++) {
          for (int k = 0; k < 3; k++) {
            int m = Math.floorMod(i + k, 3); // rotate who goes first
            AppendMessageRequest request = AppendMessageRequest.newBuilder().setConversationId(conversations.get(m))
                .setMessage(Message.newBuilder().setRole(MessageRole.MESSAGE_ROLE_USER).setContent("turn " + i)).build();
            long t0 = System.nanoTime();
            stubs.get(m).withDeadlineAfter(10, TimeUnit.SECONDS).appendMessage(request);
            if (i >= 0) {
              nanos[m][i] = System.nanoTime() - t0;
            }
          }
        }
        StringBuilder out = new StringBuilder(String.format(Locale.ROOT,
            "AppendMessage, %,d calls per mode after %,d warm-up, interleaved, one at a time; load average %s%n",
            MEASURED, WARM_UP, Files.readString(Path.of("/proc/loadavg")).strip()));
        for (int m = 0; m < 3; m++) {
          long[] v = nanos[m];
          Arrays.sort(v);
          out.append(String.format(Locale.ROOT, "%-32s p50 %.3f ms  p90 %.3f ms  p99 %.3f ms%n", modes[m],
              v[v.length / 2] / 1e6, v[(int) (v.length * 0.90)] / 1e6, v[(int) (v.length * 0.99)] / 1e6));
        }
        out.append(String.format(Locale.ROOT, "spans received by the local receiver: %,d%n", receiver.spans().size()));
        Path file = Path.of("target", "observability", "tracing-overhead.txt");
        Files.createDirectories(file.getParent());
        Files.writeString(file, out);
        System.out.print(out);
      } finally {
        channels.forEach(ManagedChannel::shutdownNow);
        servers.forEach(ContextMemoryServer::close);
      }
    }
  }
}

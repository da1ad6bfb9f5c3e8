package dev.contextmemory.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import com.google.protobuf.ByteString;
import com.google.rpc.ErrorInfo;
import dev.contextmemory.server.testing.CapturedLog;
import dev.contextmemory.server.testing.OtlpReceiver;
import dev.contextmemory.server.testing.TestServer;
import dev.contextmemory.v1.AppendMessageRequest;
import dev.contextmemory.v1.Channel;
import dev.contextmemory.v1.ContactKey;
import dev.contextmemory.v1.ConversationServiceGrpc;
import dev.contextmemory.v1.CreateCustomerRequest;
import dev.contextmemory.v1.Customer;
import dev.contextmemory.v1.CustomerServiceGrpc;
import dev.contextmemory.v1.FetchContextRequest;
import dev.contextmemory.v1.GetCustomerRequest;
import dev.contextmemory.v1.GetOrCreateOpenConversationRequest;
import dev.contextmemory.v1.LookupCustomerRequest;
import dev.contextmemory.v1.MemoryServiceGrpc;
import dev.contextmemory.v1.Message;
import dev.contextmemory.v1.MessageRole;
import io.grpc.ClientInterceptors;
import io.grpc.Metadata;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.MetadataUtils;
import io.opentelemetry.proto.common.v1.KeyValue;
import io.opentelemetry.proto.trace.v1.Span;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ThreadLocalRandom;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Traces exported over OTLP/HTTP to a real receiver, and the JSON log lines the same calls write:
 * an agent turn (AppendMessage, then FetchContext) under the caller's W3C traceparent, with SQL
 * child spans; access-log lines with the call's method, status, tenant and trace; and nothing of
 * the caller's personal data or secrets in either.
 */
class TracingAndLogsTest {
  private static final String PHONE = "+1 555 0100 99 12345 77";
  private static final String EMAIL = "ada.private@example.org";
  private static final String SECRET = "cmk_live_9f8e7d6c5b4a39281706f5e4d3c2b1a0";
  private static final String CONTENT = "my card ends 4242 and my PIN is 8512";

  private static OtlpReceiver receiver;
  private static CapturedLog log;
  private static TestServer server;

  @BeforeAll
  static void start() {
    receiver = new OtlpReceiver();
    log = CapturedLog.attach();
    server = TestServer.start(Map.of(
        "OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint(),
        "OTEL_BSP_SCHEDULE_DELAY", "50",
        "ACCESS_LOG_LEVEL", "INFO",
        "ACCESS_LOG_SAMPLE_PERCENT", "100"));
  }

  @AfterAll
  static void stop() {
    server.close();
    log.close();
    receiver.close();
  }

  @Test
  void anAgentTurnIsOneTraceWithSqlSpansUnderTheCallersParent() throws Exception {
    String traceId = hex(16);
    String parentId = hex(8);
    io.grpc.Channel traced = withHeader(server.channel(), "traceparent", "00-" + traceId + "-" + parentId + "-01");
    var customers = CustomerServiceGrpc.newBlockingStub(traced);
    var conversations = ConversationServiceGrpc.newBlockingStub(traced);
    var memories = MemoryServiceGrpc.newBlockingStub(traced);
    String customerId = customers.createCustomer(CreateCustomerRequest.newBuilder().setCustomer(
        Customer.newBuilder().setDisplayName("Traced").setEmail("traced." + hex(4) + "@example.org")).build())
        .getCustomer().getId();
    String conversationId = conversations.getOrCreateOpenConversation(GetOrCreateOpenConversationRequest.newBuilder()
        .setCustomerId(customerId).setChannel(Channel.CHANNEL_SMS).setThreadKey("turn").build())
        .getConversation().getId();
    conversations.appendMessage(AppendMessageRequest.newBuilder().setConversationId(conversationId).setMessage(
        Message.newBuilder().setRole(MessageRole.MESSAGE_ROLE_USER).setContent(CONTENT)).build());
    memories.fetchContext(FetchContextRequest.newBuilder().setCustomerId(customerId)
        .setConversationId(conversationId).setQueryText("card").build());

    ByteString trace = ByteString.copyFrom(HexFormat.of().parseHex(traceId));
    Span append = receiver.await(s -> s.getTraceId().equals(trace)
        && s.getName().equals("contextmemory.v1.ConversationService/AppendMessage"), Duration.ofSeconds(20));
    Span fetch = receiver.await(s -> s.getTraceId().equals(trace)
        && s.getName().equals("contextmemory.v1.MemoryService/FetchContext"), Duration.ofSeconds(20));
    for (Span rpc : List.of(append, fetch)) {
      assertEquals(Span.SpanKind.SPAN_KIND_SERVER, rpc.getKind());
      assertEquals(ByteString.copyFrom(HexFormat.of().parseHex(parentId)), rpc.getParentSpanId(), "the caller's span");
      assertEquals("default", attribute(rpc, "contextmemory.tenant").orElseThrow().getStringValue());
      assertEquals(0, attribute(rpc, "rpc.grpc.status_code").orElseThrow().getIntValue());
    }
    List<Span> appendSql = awaitChildren(append, 1);
    assertTrue(appendSql.stream().allMatch(s -> s.getName().startsWith("MessageStore.")), names(appendSql));
    assertTrue(appendSql.stream().anyMatch(s -> attribute(s, "db.response.returned_rows")
        .map(v -> v.getIntValue() == 1).orElse(false)), "the append returns its one row: " + appendSql);
    List<Span> fetchSql = awaitChildren(fetch, 1);
    assertTrue(fetchSql.stream().allMatch(s -> s.getName().matches("(Memory(Search)?Store|FetchContextQuery)\\..+")), names(fetchSql));
    for (Span sql : concat(appendSql, fetchSql)) {
      assertEquals(Span.SpanKind.SPAN_KIND_CLIENT, sql.getKind());
      assertEquals("postgresql", attribute(sql, "db.system.name").orElseThrow().getStringValue());
      assertTrue(attribute(sql, "db.query.text").isPresent(), sql::toString);
    }
    String everything = receiver.spans().toString();
    assertFalse(everything.contains(CONTENT), "a bound value (the message text) is in a span");
    writeTrace(traceId, trace);
  }

  @Test
  void failedCallsAreLoggedAsJsonWithoutTheCallersPersonalDataOrSecrets() throws Exception {
    String traceId = hex(16);
    io.grpc.Channel ch = withHeader(withHeader(server.channel(), "authorization", "Bearer " + SECRET),
        "traceparent", "00-" + traceId + "-" + hex(8) + "-01");
    var customers = CustomerServiceGrpc.newBlockingStub(ch);
    var conversations = ConversationServiceGrpc.newBlockingStub(ch);
    assertThrows(StatusRuntimeException.class, () -> customers.createCustomer(CreateCustomerRequest.newBuilder()
        .setCustomer(Customer.newBuilder().setDisplayName("X").setPhone(PHONE).setEmail(EMAIL)).build()));
    assertThrows(StatusRuntimeException.class, () -> customers.lookupCustomer(LookupCustomerRequest.newBuilder()
        .setContactKey(ContactKey.newBuilder().setEmail(EMAIL)).build()));
    assertThrows(StatusRuntimeException.class, () -> customers.lookupCustomer(LookupCustomerRequest.newBuilder()
        .setContactKey(ContactKey.newBuilder().setPhone(PHONE)).build()));
    assertThrows(StatusRuntimeException.class, () -> customers.getCustomer(GetCustomerRequest.newBuilder()
        .setCustomerId(SECRET).build()));
    assertThrows(StatusRuntimeException.class, () -> conversations.appendMessage(AppendMessageRequest.newBuilder()
        .setConversationId(java.util.UUID.randomUUID().toString()).setMessage(Message.newBuilder()
            .setRole(MessageRole.MESSAGE_ROLE_USER).setContent(CONTENT + " " + EMAIL)).build()));

    String lookup = log.await(l -> l.contains(traceId) && l.contains("LookupCustomer") && l.contains("NOT_FOUND"),
        Duration.ofSeconds(10));
    JsonObject line = JsonParser.parseString(lookup).getAsJsonObject();
    assertEquals("dev.contextmemory.access", line.get("logger").getAsString());
    assertEquals("INFO", line.get("level").getAsString());
    assertEquals("contextmemory.v1.CustomerService/LookupCustomer", line.get("rpc_method").getAsString());
    assertEquals("NOT_FOUND", line.get("grpc_code").getAsString());
    assertEquals("CUSTOMER_NOT_FOUND", line.get("error_reason").getAsString());
    assertEquals("default", line.get("tenant").getAsString());
    assertEquals(traceId, line.get("trace_id").getAsString());
    assertNotNull(line.get("span_id"));
    assertTrue(line.get("duration_ms").getAsDouble() >= 0);
    assertNotNull(line.get("time"));
    assertNotNull(line.get("message"));
    log.await(l -> l.contains(traceId) && l.contains("AppendMessage") && l.contains("CONVERSATION_NOT_FOUND"),
        Duration.ofSeconds(10));
    log.await(l -> l.contains(traceId) && l.contains("GetCustomer") && l.contains("INVALID_ARGUMENT"),
        Duration.ofSeconds(10));

    for (String l : log.lines()) {
      JsonObject o = JsonParser.parseString(l).getAsJsonObject(); // one JSON object per line
      assertTrue(o.has("time") && o.has("level") && o.has("logger") && o.has("message"), l);
    }
    String all = log.text();
    for (String secret : List.of(PHONE, "5550100", EMAIL, SECRET, CONTENT)) {
      assertFalse(all.contains(secret), () -> "the log contains '" + secret + "':\n" + all);
    }
    Path out = Path.of("target", "observability", "log-lines.jsonl");
    Files.createDirectories(out.getParent());
    Files.writeString(out, log.lines().stream().filter(l -> l.contains(traceId)).collect(Collectors.joining("\n")));
  }

  @Test
  void anInternalErrorsIdIsInTheAccessLogAndTheErrorLine() throws Exception {
    String id = InternalErrors.call(server);
    String access = log.await(l -> l.contains("\"error_id\":\"" + id + "\"") && l.contains("dev.contextmemory.access"),
        Duration.ofSeconds(10));
    assertTrue(access.contains("\"grpc_code\":\"INTERNAL\""), access);
    log.await(l -> l.contains("internal error " + id) && l.contains("\"level\":\"ERROR\""), Duration.ofSeconds(10));
  }

  private static List<Span> awaitChildren(Span parent, int atLeast) throws InterruptedException {
    long end = System.nanoTime() + Duration.ofSeconds(10).toNanos();
    while (true) {
      List<Span> children = receiver.spans().stream()
          .filter(s -> s.getParentSpanId().equals(parent.getSpanId())).toList();
      if (children.size() >= atLeast || System.nanoTime() > end) {
        assertTrue(children.size() >= atLeast, "SQL spans under " + parent.getName() + ": " + names(children));
        return children;
      }
      Thread.sleep(20);
    }
  }

  private static Optional<io.opentelemetry.proto.common.v1.AnyValue> attribute(Span s, String key) {
    return s.getAttributesList().stream().filter(kv -> kv.getKey().equals(key)).map(KeyValue::getValue).findFirst();
  }

  private static String names(List<Span> spans) {
    return spans.stream().map(Span::getName).toList().toString();
  }

  private static List<Span> concat(List<Span> a, List<Span> b) {
    return java.util.stream.Stream.concat(a.stream(), b.stream()).toList();
  }

  private static io.grpc.Channel withHeader(io.grpc.Channel channel, String name, String value) {
    Metadata md = new Metadata();
    md.put(Metadata.Key.of(name, Metadata.ASCII_STRING_MARSHALLER), value);
    return ClientInterceptors.intercept(channel, MetadataUtils.newAttachHeadersInterceptor(md));
  }

  private static String hex(int bytes) {
    byte[] b = new byte[bytes];
    ThreadLocalRandom.current().nextBytes(b);
    b[0] |= 1; // never all zeros (an invalid id)
    return HexFormat.of().formatHex(b);
  }

  /** The exported trace as an indented tree, for the closing note: target/observability/trace-agent-turn.txt. */
  private static void writeTrace(String traceId, ByteString trace) throws Exception {
    List<Span> spans = receiver.spans().stream().filter(s -> s.getTraceId().equals(trace))
        .sorted(java.util.Comparator.comparingLong(Span::getStartTimeUnixNano)).toList();
    StringBuilder out = new StringBuilder("trace " + traceId + "\n");
    for (Span s : spans) {
      int depth = 0;
      for (ByteString p = s.getParentSpanId(); !p.isEmpty(); ) {
        ByteString parent = p;
        Optional<Span> up = spans.stream().filter(x -> x.getSpanId().equals(parent)).findFirst();
        depth++;
        p = up.map(Span::getParentSpanId).orElse(ByteString.EMPTY);
      }
      out.append("  ".repeat(depth)).append(s.getName())
          .append(String.format(" %.2f ms", (s.getEndTimeUnixNano() - s.getStartTimeUnixNano()) / 1e6));
      for (KeyValue kv : s.getAttributesList()) {
        if (!kv.getKey().equals("db.query.text")) {
          out.append(' ').append(kv.getKey()).append('=').append(value(kv.getValue()));
        }
      }
      out.append('\n');
    }
    Path file = Path.of("target", "observability", "trace-agent-turn.txt");
    Files.createDirectories(file.getParent());
    Files.writeString(file, out);
  }

  private static String value(io.opentelemetry.proto.common.v1.AnyValue v) {
    return switch (v.getValueCase()) {
      case STRING_VALUE -> v.getStringValue();
      case INT_VALUE -> Long.toString(v.getIntValue());
      case BOOL_VALUE -> Boolean.toString(v.getBoolValue());
      case DOUBLE_VALUE -> Double.toString(v.getDoubleValue());
      default -> v.toString().strip();
    };
  }

  static final class InternalErrors {
    private InternalErrors() {}

    /**
     * A real unexpected failure: the addresses table is renamed behind the server's back, so
     * ListAddresses fails with SQLSTATE 42P01, which no mapping covers. Returns the error id the
     * caller got.
     */
    static String call(TestServer server) throws Exception {
      try (java.sql.Connection c = java.sql.DriverManager.getConnection(server.dbUrl());
          java.sql.Statement st = c.createStatement()) {
        String customerId = CustomerServiceGrpc.newBlockingStub(server.channel()).createCustomer(
            CreateCustomerRequest.newBuilder().setCustomer(Customer.newBuilder().setDisplayName("Addressless")).build())
            .getCustomer().getId();
        st.execute("ALTER TABLE customer_addresses RENAME TO customer_addresses_away");
        try {
          StatusRuntimeException e = assertThrows(StatusRuntimeException.class, () -> CustomerServiceGrpc
              .newBlockingStub(server.channel()).listAddresses(dev.contextmemory.v1.ListAddressesRequest.newBuilder()
                  .setCustomerId(customerId).build()));
          assertEquals(io.grpc.Status.Code.INTERNAL, e.getStatus().getCode(), e::toString);
          com.google.rpc.Status details = io.grpc.protobuf.StatusProto.fromThrowable(e);
          for (com.google.protobuf.Any any : details.getDetailsList()) {
            if (any.is(ErrorInfo.class)) {
              return any.unpack(ErrorInfo.class).getMetadataOrThrow("error_id");
            }
          }
          throw new AssertionError("no ErrorInfo in " + details);
        } finally {
          st.execute("ALTER TABLE customer_addresses_away RENAME TO customer_addresses");
        }
      }
    }
  }
}

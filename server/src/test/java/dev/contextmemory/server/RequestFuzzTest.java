package dev.contextmemory.server;

import dev.contextmemory.server.testing.RawBytes;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.DictionaryEntries;
import com.code_intelligence.jazzer.junit.FuzzTest;
import com.zaxxer.hikari.HikariPoolMXBean;
import dev.contextmemory.server.testing.Rows;
import dev.contextmemory.server.testing.TestServer;
import dev.contextmemory.v1.ConversationServiceGrpc;
import dev.contextmemory.v1.CustomerServiceGrpc;
import dev.contextmemory.v1.MemoryServiceGrpc;
import io.grpc.CallOptions;
import io.grpc.MethodDescriptor;
import io.grpc.ServiceDescriptor;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.ClientCalls;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;

/**
 * Coverage-guided fuzzing (Jazzer) of every unary RPC's request bytes through the real server: the
 * in-process transport, the real interceptors, services and stores, real PostgreSQL. The first
 * input bytes pick the method, the rest are its request message as sent on the wire.
 *
 * <p>Invariants: no call answers UNKNOWN or INTERNAL (a bad request is the caller's mistake, never
 * a server failure), nothing logs a WARNING or worse through java.util.logging (where grpc-java
 * reports exceptions that escaped a call), and afterwards every pooled connection is idle again.
 *
 * <p>The build skips it (tag "jazzer"); {@code scripts/fuzz} fuzzes for 40 s (scripts/test runs it)
 * or, with {@code --long}, 30 minutes, starting from the stored inputs in RequestFuzzTestInputs.
 */
class RequestFuzzTest {
  /** Raw bytes both ways: the request goes to the server exactly as fuzzed. */
  private static final MethodDescriptor.Marshaller<byte[]> BYTES = RawBytes.MARSHALLER;
  private static final List<MethodDescriptor<byte[], byte[]>> METHODS = unaryMethods();
  private static final AtomicLong executed = new AtomicLong();
  private static final Map<Status.Code, AtomicLong> codes = new ConcurrentHashMap<>();
  private static final List<String> problems = new ArrayList<>();
  private static final Handler WATCH = new Handler() {
    @Override
    public void publish(LogRecord r) {
      if (r.getLevel().intValue() >= Level.WARNING.intValue()) {
        synchronized (problems) {
          problems.add(r.getLoggerName() + ": " + r.getMessage()
              + (r.getThrown() == null ? "" : " " + r.getThrown()));
        }
      }
    }

    @Override
    public void flush() {}

    @Override
    public void close() {}
  };
  private static TestServer server;
  private static com.code_intelligence.jazzer.api.SilentCloseable databaseConnections;

  /** Rows with fixed ids, so inputs holding the dictionary's ids reach the stores' real paths. */
  private static final String CUSTOMER = "01900000-0000-7000-8000-000000000001";
  private static final String CONVERSATION = "01900000-0000-7000-8000-000000000002";
  private static final String MEMORY = "01900000-0000-7000-8000-000000000003";
  private static final String ADDRESS = "01900000-0000-7000-8000-000000000004";

  @BeforeAll
  static void start() {
    server = TestServer.start(Map.of("DB_POOL_SIZE", "2"));
    try (Rows rows = new Rows(server.dbUrl())) {
      rows.update("INSERT INTO customers (tenant_id, id, display_name, phone, email) VALUES (?, ?::uuid, 'Fuzz',"
          + " '+15551234567', 'fuzz@example.com')", Rows.TENANT, CUSTOMER);
      rows.update("INSERT INTO conversations (tenant_id, id, customer_id, channel, thread_key) VALUES"
          + " (?, ?::uuid, ?::uuid, 'web', 'fuzz')", Rows.TENANT, CONVERSATION, CUSTOMER);
      rows.message(java.util.UUID.fromString(CONVERSATION), "user", "refund my order", null, null);
      rows.update("INSERT INTO memories (tenant_id, id, customer_id, conversation_id, kind, memory_key, content)"
          + " VALUES (?, ?::uuid, ?::uuid, ?::uuid, 'fact', 'k', 'likes tea')", Rows.TENANT, MEMORY, CUSTOMER,
          CONVERSATION);
      rows.update("INSERT INTO customer_addresses (tenant_id, id, customer_id, line1) VALUES (?, ?::uuid, ?::uuid,"
          + " '1 Main St')", Rows.TENANT, ADDRESS, CUSTOMER);
    }
    Logger.getLogger("").addHandler(WATCH);
  }

  /**
   * The server connects to its own database while fuzzing (the health probe opens a connection
   * every interval, the pool refills, a cancel opens one): allow exactly that destination, so
   * Jazzer's SSRF detector still reports a connection anywhere else. Set from the first fuzzed
   * call, once Jazzer's sanitizers are loaded.
   */
  private static synchronized void allowTheDatabase() {
    if (databaseConnections == null) {
      int port = java.net.URI.create(server.dbUrl().substring("jdbc:".length())).getPort();
      databaseConnections = com.code_intelligence.jazzer.api.BugDetectors.allowNetworkConnections(
          (host, p) -> p == port && (host.equals("localhost") || host.equals("127.0.0.1")));
    }
  }

  @AfterAll
  static void stop() {
    if (databaseConnections != null) {
      databaseConnections.close();
    }
    Logger.getLogger("").removeHandler(WATCH);
    try {
      System.out.println("RequestFuzzTest: " + executed.get() + " requests executed; status codes " + codes);
      HikariPoolMXBean pool = server.server().pool().getHikariPoolMXBean();
      // Awaited: the staged-vector indexer borrows a connection for a moment every poll interval.
      ServerLifecycleTest.awaitTrue("no connection borrowed after the run", () -> pool.getActiveConnections() == 0);
      assertEquals(2, pool.getTotalConnections(), "the pool lost connections");
      synchronized (problems) {
        assertTrue(problems.isEmpty(), () -> "logged during the run: " + problems);
      }
    } finally {
      server.close();
    }
  }

  /** The bounded run of scripts/test and every build's regression run over the stored inputs. */
  @FuzzTest(maxDuration = "40s")
  @DictionaryEntries({CUSTOMER, CONVERSATION, MEMORY, ADDRESS, "+15551234567", "fuzz@example.com", "fuzz", "k",
      "refund", "metadata", "display_name", "summary"})
  void everyUnaryRpc(FuzzedDataProvider data) {
    call(data);
  }

  /** The long run: {@code scripts/fuzz --long} (documented in docs/operations.md). */
  @FuzzTest(maxDuration = "30m")
  @DictionaryEntries({CUSTOMER, CONVERSATION, MEMORY, ADDRESS, "+15551234567", "fuzz@example.com", "fuzz", "k",
      "refund", "metadata", "display_name", "summary"})
  void everyUnaryRpcLong(FuzzedDataProvider data) {
    call(data);
  }

  private static void call(FuzzedDataProvider data) {
    allowTheDatabase();
    MethodDescriptor<byte[], byte[]> method = METHODS.get(data.consumeInt(0, METHODS.size() - 1));
    byte[] request = data.consumeRemainingAsBytes();
    executed.incrementAndGet();
    Status.Code code;
    try {
      ClientCalls.blockingUnaryCall(server.channel(), method,
          CallOptions.DEFAULT.withDeadlineAfter(20, TimeUnit.SECONDS), request);
      code = Status.Code.OK;
    } catch (StatusRuntimeException e) {
      code = e.getStatus().getCode();
      if (code == Status.Code.UNKNOWN || code == Status.Code.INTERNAL) {
        fail(method.getFullMethodName() + " answered " + e.getStatus() + " to a fuzzed request");
      }
    }
    codes.computeIfAbsent(code, c -> new AtomicLong()).incrementAndGet();
  }

  private static List<MethodDescriptor<byte[], byte[]>> unaryMethods() {
    List<MethodDescriptor<byte[], byte[]>> out = new ArrayList<>();
    for (ServiceDescriptor s : List.of(CustomerServiceGrpc.getServiceDescriptor(),
        ConversationServiceGrpc.getServiceDescriptor(), MemoryServiceGrpc.getServiceDescriptor())) {
      for (MethodDescriptor<?, ?> m : s.getMethods()) {
        if (m.getType() == MethodDescriptor.MethodType.UNARY) {
          out.add(MethodDescriptor.<byte[], byte[]>newBuilder().setType(MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(m.getFullMethodName()).setRequestMarshaller(BYTES).setResponseMarshaller(BYTES)
              .build());
        }
      }
    }
    out.sort((a, b) -> a.getFullMethodName().compareTo(b.getFullMethodName())); // stable input -> method
    return List.copyOf(out);
  }
}

package dev.contextmemory.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.contextmemory.server.testing.TestDatabase;
import dev.contextmemory.v1.ContactKey;
import dev.contextmemory.v1.CreateCustomerRequest;
import dev.contextmemory.v1.Customer;
import dev.contextmemory.v1.CustomerServiceGrpc;
import dev.contextmemory.v1.LookupCustomerRequest;
import com.google.protobuf.Struct;
import com.google.protobuf.Value;
import io.grpc.ManagedChannel;
import io.grpc.Status.Code;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import java.io.IOException;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * The real program in its own JVM, over TCP: configured from the environment, served by Netty,
 * found through reflection, and stopped by SIGTERM with a graceful shutdown.
 */
class MainProcessTest {

  @Test
  void servesOverTcpAndShutsDownGracefullyOnSigterm() throws Exception {
    String dbUrl = TestDatabase.create();
    int port = freePort();
    Path log = Files.createTempFile("context-memory-main", ".log");
    Process p = java(List.of(), dbUrl, port, log);
    ManagedChannel channel = NettyChannelBuilder.forAddress("127.0.0.1", port).usePlaintext().build();
    try {
      var health = HealthGrpc.newBlockingStub(channel);
      ServerLifecycleTest.awaitTrue("the server reports SERVING", () -> {
        try {
          return ServerLifecycleTest.status(health.withDeadlineAfter(1, TimeUnit.SECONDS), "") == ServingStatus.SERVING;
        } catch (RuntimeException notYet) {
          return false;
        }
      });
      assertTrue(ServerLifecycleTest.listServices(channel).containsAll(List.of(
          "contextmemory.v1.CustomerService", "contextmemory.v1.ConversationService", "contextmemory.v1.MemoryService")));

      var customers = CustomerServiceGrpc.newBlockingStub(channel).withDeadlineAfter(10, TimeUnit.SECONDS);
      Customer c = customers.createCustomer(CreateCustomerRequest.newBuilder()
          .setCustomer(Customer.newBuilder().setDisplayName("Over TCP").setEmail("tcp@example.com")).build()).getCustomer();
      assertEquals(c, customers.lookupCustomer(LookupCustomerRequest.newBuilder()
          .setContactKey(ContactKey.newBuilder().setEmail("TCP@example.com")).build()).getCustomer());

      // The inbound size limit (set to 64 KiB for this process) is enforced by the Netty transport.
      StatusRuntimeException tooBig = assertThrows(StatusRuntimeException.class, () -> customers.createCustomer(
          CreateCustomerRequest.newBuilder().setCustomer(Customer.newBuilder().setMetadata(Struct.newBuilder()
              .putFields("blob", Value.newBuilder().setStringValue("x".repeat(70_000)).build()))).build()));
      assertEquals(Code.RESOURCE_EXHAUSTED, tooBig.getStatus().getCode(), tooBig::toString);

      p.destroy(); // SIGTERM
      assertTrue(p.waitFor(30, TimeUnit.SECONDS), "exits after SIGTERM");
      assertEquals(143, p.exitValue(), "terminated by SIGTERM after the shutdown hook ran");
      String out = Files.readString(log);
      assertTrue(out.contains("shutting down") && out.contains("stopped"), out);
    } finally {
      channel.shutdownNow();
      p.destroyForcibly();
    }
  }

  @Test
  void migrateCommandAppliesTheSchemaAndExits() throws Exception {
    String dbUrl = TestDatabase.create();
    Path log = Files.createTempFile("context-memory-migrate", ".log");
    Process first = java(List.of("migrate"), dbUrl, 0, log);
    assertTrue(first.waitFor(60, TimeUnit.SECONDS));
    assertEquals(0, first.exitValue(), Files.readString(log));
    assertTrue(Files.readString(log).contains("migration(s) applied"), Files.readString(log));

    Process second = java(List.of("migrate"), dbUrl, 0, log);
    assertTrue(second.waitFor(60, TimeUnit.SECONDS));
    assertEquals(0, second.exitValue());
    assertTrue(Files.readString(log).contains("0 migration(s) applied"), Files.readString(log));
  }

  @Test
  void badConfigurationStopsBeforeServing() throws Exception {
    Path log = Files.createTempFile("context-memory-badconf", ".log");
    ProcessBuilder pb = command(List.of());
    pb.environment().put("CONTEXT_MEMORY_DB_URL", "jdbc:postgresql://127.0.0.1:1/none");
    pb.environment().put("CONTEXT_MEMORY_PORT", "not-a-port");
    Process p = pb.redirectErrorStream(true).redirectOutput(log.toFile()).start();
    assertTrue(p.waitFor(60, TimeUnit.SECONDS));
    assertEquals(2, p.exitValue());
    assertTrue(Files.readString(log).contains("CONTEXT_MEMORY_PORT must be an integer"), Files.readString(log));
  }

  /**
   * Before: 1 ms passed validation, then pgjdbc's own start-up queries hit the statement timeout and
   * the process died with a stack trace (status 1).
   */
  @Test
  void aStatementTimeoutNoConnectionCouldWorkUnderIsRejectedWithStatus2() throws Exception {
    Path log = Files.createTempFile("context-memory-badtimeout", ".log");
    ProcessBuilder pb = command(List.of());
    pb.environment().put("CONTEXT_MEMORY_DB_URL", TestDatabase.baseUrl());
    pb.environment().put("CONTEXT_MEMORY_HOST", "127.0.0.1");
    pb.environment().put("CONTEXT_MEMORY_AUTH", "none");
    pb.environment().put("CONTEXT_MEMORY_DB_STATEMENT_TIMEOUT_MS", "1");
    Process p = pb.redirectErrorStream(true).redirectOutput(log.toFile()).start();
    assertTrue(p.waitFor(60, TimeUnit.SECONDS));
    String out = Files.readString(log);
    assertEquals(2, p.exitValue(), out);
    assertTrue(out.contains("CONTEXT_MEMORY_DB_STATEMENT_TIMEOUT_MS must be 0 (none) or at least 100"), out);
    assertTrue(!out.contains("\tat "), "no stack trace: " + out);
  }

  static Process java(List<String> args, String dbUrl, int port, Path log) throws IOException {
    ProcessBuilder pb = command(args);
    pb.environment().put("CONTEXT_MEMORY_DB_URL", dbUrl);
    pb.environment().put("CONTEXT_MEMORY_HOST", "127.0.0.1");
    pb.environment().put("CONTEXT_MEMORY_AUTH", "none");
    pb.environment().put("CONTEXT_MEMORY_PORT", Integer.toString(port));
    pb.environment().put("CONTEXT_MEMORY_DB_POOL_SIZE", "2");
    pb.environment().put("CONTEXT_MEMORY_MAX_INBOUND_MESSAGE_BYTES", Integer.toString(64 * 1024));
    return pb.redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile())).start();
  }

  static ProcessBuilder command(List<String> args) {
    String javaBin = Path.of(System.getProperty("java.home"), "bin", "java").toString();
    String classpath = System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
    List<String> cmd = new java.util.ArrayList<>(List.of(javaBin, "-cp", classpath, Main.class.getName()));
    cmd.addAll(args);
    ProcessBuilder pb = new ProcessBuilder(cmd);
    pb.environment().keySet().removeIf(k -> k.startsWith("CONTEXT_MEMORY_"));
    return pb;
  }

  static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket(0)) {
      return s.getLocalPort();
    }
  }
}

package dev.contextmemory.server;

import static dev.contextmemory.server.MainProcessTest.command;
import static dev.contextmemory.server.MainProcessTest.freePort;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.contextmemory.server.testing.TestDatabase;
import dev.contextmemory.server.testing.TestKeys;
import dev.contextmemory.v1.AppendMessageRequest;
import dev.contextmemory.v1.CreateCustomerRequest;
import dev.contextmemory.v1.Customer;
import dev.contextmemory.v1.CustomerServiceGrpc;
import dev.contextmemory.v1.ConversationServiceGrpc;
import dev.contextmemory.v1.Message;
import dev.contextmemory.v1.MessageRole;
import io.grpc.ManagedChannel;
import io.grpc.Status.Code;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** The program's safe defaults, the operator's key commands, and what its log never holds. */
class SecurityProcessTest {

  /** Runs the program to its end; returns [exit status, stdout, stderr]. */
  private static Object[] run(Map<String, String> env, String... args) throws Exception {
    ProcessBuilder pb = command(List.of(args));
    pb.environment().putAll(env);
    Path out = Files.createTempFile("cm-out", ".txt");
    Path err = Files.createTempFile("cm-err", ".txt");
    Process p = pb.redirectOutput(out.toFile()).redirectError(err.toFile()).start();
    assertTrue(p.waitFor(120, TimeUnit.SECONDS), "the command ended");
    return new Object[] {p.exitValue(), Files.readString(out), Files.readString(err)};
  }

  @Test
  void withoutAuthenticationTheServerRefusesANonLoopbackAddress() throws Exception {
    Object[] r = run(Map.of("CONTEXT_MEMORY_DB_URL", "jdbc:postgresql://127.0.0.1:1/none",
        "CONTEXT_MEMORY_AUTH", "none", "CONTEXT_MEMORY_HOST", "0.0.0.0"));
    assertEquals(2, r[0], () -> r[2].toString());
    String err = (String) r[2];
    for (String variable : List.of("CONTEXT_MEMORY_AUTH", "CONTEXT_MEMORY_HOST", "CONTEXT_MEMORY_ALLOW_INSECURE")) {
      assertTrue(err.contains(variable), () -> "names " + variable + ": " + err);
    }
  }

  @Test
  void aMalformedDatabaseUrlIsNotEchoedWithItsPassword() throws Exception {
    Object[] r = run(Map.of("CONTEXT_MEMORY_DB_URL", "postgres://admin:hunter2secret@db.internal/cm"));
    assertEquals(2, r[0]);
    assertTrue(r[2].toString().contains("CONTEXT_MEMORY_DB_URL"), r[2]::toString);
    assertFalse(r[2].toString().contains("hunter2secret"), r[2]::toString);
  }

  @Test
  void keysCommandsCreateListAndRevoke() throws Exception {
    Map<String, String> env = Map.of("CONTEXT_MEMORY_DB_URL", TestDatabase.create());
    Object[] created = run(env, "keys", "create", "--tenant", "acme", "--name", "support agent", "--scopes",
        "read,write", "--expires", "90d");
    assertEquals(0, created[0], () -> created[2].toString());
    String key = created[1].toString().strip();
    assertTrue(key.matches("cm_[a-z2-7]{10}_[a-z2-7]{32}"), key);
    String prefix = key.substring(3, 13);
    String secret = key.substring(14);
    assertFalse(created[2].toString().contains(secret), "the secret is printed once, on stdout only");

    Object[] listed = run(env, "keys", "list", "--tenant", "acme");
    assertEquals(0, listed[0]);
    assertTrue(listed[1].toString().contains(prefix) && listed[1].toString().contains("read,write"), listed[1]::toString);
    assertFalse(listed[1].toString().contains(secret));

    assertEquals(0, run(env, "keys", "revoke", prefix)[0]);
    String afterRevoke = run(env, "keys", "list")[1].toString();
    String line = afterRevoke.lines().filter(l -> l.startsWith(prefix)).findFirst().orElseThrow();
    assertEquals(8, line.trim().split("\\s{2,}").length, line); // revoked column filled
    assertEquals(1, run(env, "keys", "revoke", "zzzzzzzzzz")[0]);

    Object[] bad = run(env, "keys", "create", "--tenant", "acme", "--name", "x", "--scopes", "read,everything");
    assertEquals(2, bad[0]);
    assertTrue(bad[2].toString().contains("unknown scope 'everything'"), bad[2]::toString);
  }

  /**
   * A run of failing calls that carry a phone, an email and API keys, and one that fails inside
   * PostgreSQL with the row's values in the error DETAIL (a trigger stands in for any constraint
   * whose DETAIL quotes the row): none of those values may reach the log, although the INTERNAL
   * failure is logged with its error id.
   */
  @Test
  void theLogHoldsNoKeysPhonesEmailsOrMessageText() throws Exception {
    String dbUrl = TestDatabase.create();
    Map<String, String> env = Map.of("CONTEXT_MEMORY_DB_URL", dbUrl);
    String key = run(env, "keys", "create", "--tenant", "t", "--name", "n", "--scopes", "read,write")[1]
        .toString().strip();
    try (Connection c = DriverManager.getConnection(dbUrl)) {
      c.createStatement().execute("""
          CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS $$
          BEGIN
            IF NEW.display_name = 'boom' THEN
              RAISE EXCEPTION USING ERRCODE = '23502', MESSAGE = 'null value in column violates not-null constraint',
                DETAIL = 'Failing row contains (' || NEW.phone || ', ' || NEW.email || ').';
            END IF;
            RETURN NEW;
          END $$;
          CREATE TRIGGER boom BEFORE INSERT ON customers FOR EACH ROW EXECUTE FUNCTION boom();""");
    }
    int port = freePort();
    Path log = Files.createTempFile("cm-hygiene", ".log");
    ProcessBuilder pb = command(List.of());
    pb.environment().putAll(Map.of("CONTEXT_MEMORY_DB_URL", dbUrl, "CONTEXT_MEMORY_HOST", "127.0.0.1",
        "CONTEXT_MEMORY_PORT", Integer.toString(port), "CONTEXT_MEMORY_AUTH", "api-key"));
    Process p = pb.redirectErrorStream(true).redirectOutput(log.toFile()).start();
    ManagedChannel channel = NettyChannelBuilder.forAddress("127.0.0.1", port).usePlaintext().build();
    String phone = "+15550104321";
    String email = "private.person@example.org";
    String otherPhone = "+15550108765";
    String otherEmail = "someone.else@example.org";
    String text = "my card number is 4111 1111 1111 1111";
    String forged = "cm_" + key.substring(3, 13) + "_" + "q".repeat(32);
    String unknown = "cm_abcdefghij_" + "r".repeat(32);
    try {
      awaitServing(channel, p, log);
      List<Code> codes = new ArrayList<>();
      for (String k : List.of(forged, unknown, "Bearer-ish " + phone)) {
        codes.add(code(() -> TestKeys.withKey(CustomerServiceGrpc.newBlockingStub(channel), k)
            .createCustomer(CreateCustomerRequest.newBuilder().setCustomer(Customer.newBuilder()
                .setPhone(phone).setEmail(email)).build())));
      }
      var customers = TestKeys.withKey(CustomerServiceGrpc.newBlockingStub(channel), key);
      CreateCustomerRequest create = CreateCustomerRequest.newBuilder().setCustomer(Customer.newBuilder()
          .setDisplayName("Private").setPhone(phone).setEmail(email)).build();
      customers.createCustomer(create);
      codes.add(code(() -> customers.createCustomer(create))); // ALREADY_EXISTS on the phone
      codes.add(code(() -> customers.createCustomer(CreateCustomerRequest.newBuilder().setCustomer(Customer
          .newBuilder().setDisplayName("boom").setPhone(otherPhone).setEmail(otherEmail)).build()))); // INTERNAL
      codes.add(code(() -> customers.createCustomer(CreateCustomerRequest.newBuilder().setCustomer(Customer
          .newBuilder().setPhone("12" + text)).build()))); // INVALID_ARGUMENT
      codes.add(code(() -> TestKeys.withKey(ConversationServiceGrpc.newBlockingStub(channel), key)
          .appendMessage(AppendMessageRequest.newBuilder().setConversationId(UUID.randomUUID().toString())
              .setMessage(Message.newBuilder().setRole(MessageRole.MESSAGE_ROLE_USER).setContent(text)).build())));
      assertEquals(List.of(Code.UNAUTHENTICATED, Code.UNAUTHENTICATED, Code.UNAUTHENTICATED, Code.ALREADY_EXISTS,
          Code.INTERNAL, Code.INVALID_ARGUMENT, Code.NOT_FOUND), codes);
    } finally {
      channel.shutdownNow();
      p.destroy();
      p.waitFor(30, TimeUnit.SECONDS);
      p.destroyForcibly();
    }
    String out = Files.readString(log);
    assertTrue(out.contains("internal error"), "the INTERNAL failure was logged:\n" + out);
    for (String secret : List.of(key, key.substring(14), forged.substring(14), unknown.substring(14), phone,
        phone.substring(2), email, otherPhone, otherPhone.substring(2), otherEmail, text)) {
      assertFalse(out.contains(secret), () -> "the log holds '" + secret + "':\n" + out);
    }
  }

  /** Start-up of a JVM with migrations can take a while on a loaded 2-core machine: up to 90 s. */
  private static void awaitServing(ManagedChannel channel, Process p, Path log) throws Exception {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(90);
    while (System.nanoTime() < deadline) {
      assertTrue(p.isAlive(), () -> "the server exited:\n" + read(log));
      try {
        if (ServerLifecycleTest.status(HealthGrpc.newBlockingStub(channel).withDeadlineAfter(1, TimeUnit.SECONDS), "")
            == ServingStatus.SERVING) {
          return;
        }
      } catch (RuntimeException notYet) {
        // not listening yet
      }
      Thread.sleep(100);
    }
    throw new AssertionError("the server did not report SERVING:\n" + read(log));
  }

  private static String read(Path log) {
    try {
      return Files.readString(log);
    } catch (java.io.IOException e) {
      return e.toString();
    }
  }

  private static Code code(Runnable call) {
    StatusRuntimeException e = assertThrows(StatusRuntimeException.class, call::run);
    return e.getStatus().getCode();
  }
}

package dev.contextmemory.server;

import static dev.contextmemory.server.testing.GrpcErrors.assertError;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.rpc.ErrorInfo;
import com.google.rpc.RetryInfo;
import dev.contextmemory.server.testing.GrpcErrors;
import dev.contextmemory.server.testing.TestDatabase;
import dev.contextmemory.server.testing.TestServer;
import dev.contextmemory.v1.CreateCustomerRequest;
import dev.contextmemory.v1.Customer;
import dev.contextmemory.v1.CustomerServiceGrpc;
import dev.contextmemory.v1.GetCustomerRequest;
import io.grpc.Status.Code;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.health.v1.HealthGrpc;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.Statement;
import java.util.Locale;
import java.util.Map;
import java.util.UUID;
import org.junit.jupiter.api.Test;

/**
 * A database that takes no writes, or a role that misses a grant, reads as what it is rather than
 * as a bug of ours (issue 12, item 4). Before: every write answered INTERNAL "quote error id" and
 * health stayed SERVING.
 */
class MisconfiguredDatabaseTest {

  private static void admin(String url, String sql) throws Exception {
    try (Connection c = DriverManager.getConnection(url); Statement st = c.createStatement()) {
      st.execute(sql);
    }
  }

  private static CreateCustomerRequest newCustomer(String name) {
    return CreateCustomerRequest.newBuilder().setCustomer(Customer.newBuilder().setDisplayName(name)
        .setEmail(name.toLowerCase(Locale.ROOT) + "@example.com")).build();
  }

  private static ServingStatus health(TestServer s) {
    return ServerLifecycleTest.status(HealthGrpc.newBlockingStub(s.channel()), "");
  }

  @Test
  void aReadOnlyDatabaseAnswersWritesUnavailableAndHealthNotServing() throws Exception {
    try (TestServer s = TestServer.start(Map.of())) {
      var customers = CustomerServiceGrpc.newBlockingStub(s.channel());
      Customer existing = customers.createCustomer(newCustomer("Before")).getCustomer();
      String db = TestDatabase.databaseName(s.dbUrl());
      admin(TestDatabase.baseUrl(), "ALTER DATABASE " + db + " SET default_transaction_read_only = on");
      try {
        // New sessions pick the setting up (as after a failover every session is new).
        s.server().pool().getHikariPoolMXBean().softEvictConnections();
        var status = assertError(Code.UNAVAILABLE, "DATABASE_READ_ONLY", () -> customers.createCustomer(newCustomer("During")));
        assertTrue(GrpcErrors.detail(status, RetryInfo.class).isPresent(), "retryable: " + status);
        ServerLifecycleTest.awaitTrue("health NOT_SERVING on a read-only database",
            () -> health(s) == ServingStatus.NOT_SERVING);
        assertEquals(existing, customers.getCustomer(GetCustomerRequest.newBuilder().setCustomerId(existing.getId())
            .build()).getCustomer(), "reads still work");
      } finally {
        admin(TestDatabase.baseUrl(), "ALTER DATABASE " + db + " RESET default_transaction_read_only");
      }
      ServerLifecycleTest.awaitTrue("health SERVING again", () -> health(s) == ServingStatus.SERVING);
      // Connections the pool opened while the database was read-only keep that default; evict
      // until none is left (the pool refills one connection at a time).
      ServerLifecycleTest.awaitTrue("writes work again", () -> {
        s.server().pool().getHikariPoolMXBean().softEvictConnections();
        try {
          customers.createCustomer(newCustomer("After"));
          return true;
        } catch (io.grpc.StatusRuntimeException stillReadOnly) {
          assertEquals(Code.UNAVAILABLE, stillReadOnly.getStatus().getCode());
          return false;
        }
      });
    }
  }

  @Test
  void aMissingGrantIsInternalWithTheCauseLoggedAndNoPersonalData() throws Exception {
    String role = "cm_app_" + UUID.randomUUID().toString().replace("-", "").substring(0, 12);
    try (TestServer owner = TestServer.start(Map.of())) {
      admin(owner.dbUrl(), "CREATE ROLE " + role + " LOGIN");
      admin(owner.dbUrl(), "GRANT USAGE ON SCHEMA public TO " + role
          + "; GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO " + role
          + "; REVOKE INSERT ON customers FROM " + role);
      try (TestServer s = TestServer.startOn(owner.dbUrl().replace("user=postgres", "user=" + role),
          Map.of("MIGRATE_ON_START", "false"))) {
        var customers = CustomerServiceGrpc.newBlockingStub(s.channel());
        PrintStream stderr = System.err;
        ByteArrayOutputStream captured = new ByteArrayOutputStream();
        System.setErr(new PrintStream(captured, true, StandardCharsets.UTF_8));
        com.google.rpc.Status status;
        try {
          status = assertError(Code.INTERNAL, "DATABASE_PERMISSION_DENIED",
              () -> customers.createCustomer(newCustomer("Zelda-Secretname")));
        } finally {
          System.setErr(stderr);
        }
        String log = captured.toString(StandardCharsets.UTF_8);
        stderr.print(log);
        String errorId = GrpcErrors.detail(status, ErrorInfo.class).orElseThrow().getMetadataOrThrow("error_id");
        assertTrue(log.contains(errorId) && log.contains("42501") && log.contains("permission denied for table customers"),
            "the log names the cause: " + log);
        assertFalse(log.toLowerCase(Locale.ROOT).contains("secretname"), "no personal data in the log: " + log);
        assertEquals(ServingStatus.SERVING, health(s), "reads work: the database answers");
      } finally {
        admin(owner.dbUrl(), "DROP OWNED BY " + role + "; DROP ROLE " + role);
      }
    }
  }
}

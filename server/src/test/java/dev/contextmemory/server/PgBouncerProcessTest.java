package dev.contextmemory.server;

import static dev.contextmemory.server.testing.GrpcErrors.assertError;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.FieldMask;
import com.zaxxer.hikari.HikariDataSource;
import dev.contextmemory.server.auth.Scope;
import dev.contextmemory.server.config.Database;
import dev.contextmemory.server.config.Settings;
import dev.contextmemory.server.store.ApiKeyStore;
import dev.contextmemory.server.store.AuditLog;
import dev.contextmemory.server.testing.EveryRpc;
import dev.contextmemory.server.testing.PgBouncer;
import dev.contextmemory.server.testing.ServerProcess;
import dev.contextmemory.server.testing.TestDatabase;
import dev.contextmemory.server.testing.TestKeys;
import dev.contextmemory.v1.CreateCustomerRequest;
import dev.contextmemory.v1.Customer;
import dev.contextmemory.v1.CustomerServiceGrpc;
import dev.contextmemory.v1.UpdateCustomerRequest;
import io.grpc.Status.Code;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import org.jdbi.v3.core.Jdbi;
import org.junit.jupiter.api.Test;

/**
 * The server behind a real PgBouncer (Debian's 1.18, stock but for {@code extra_float_digits}), in
 * both pool modes: it starts, every RPC works, the statement timeout still cancels a statement that
 * runs too long, and a server killed with SIGKILL starts again on the same pooler. In transaction
 * mode the timeouts are role settings the server checks, and it migrates through the direct URL;
 * without the role settings its start-up check refuses them, naming the statements that fix it.
 */
class PgBouncerProcessTest {
  private static final int DIMENSION = 8;
  private static final int STATEMENT_TIMEOUT_MS = 3000;

  @Test
  void transactionMode() throws Exception {
    String direct = TestDatabase.create();
    String db = TestDatabase.databaseName(direct);
    String bareDirect = TestDatabase.create();
    String bare = TestDatabase.databaseName(bareDirect);
    try (PgBouncer pooler = PgBouncer.start(Map.of(db, "transaction", bare, "transaction"))) {
      // No role settings: the pooled sessions have no timeouts, and the server's start-up check
      // refuses them, naming the fix. (In this JVM, to spare a process start: Main turns the
      // IllegalArgumentException into exit status 2, as MainProcessTest shows for other settings.)
      Map<String, String> bareEnv = new HashMap<>();
      env(pooler.url(bare), bareDirect, "transaction").forEach((k, v) -> bareEnv.put("CONTEXT_MEMORY_" + k, v));
      Settings settings = Settings.from(bareEnv);
      try (HikariDataSource pool = Database.pool(settings)) {
        String refused = assertThrows(IllegalArgumentException.class,
            () -> Database.checkSessionTimeouts(Database.jdbi(pool), settings)).getMessage();
        assertTrue(refused.contains("ALTER ROLE \"postgres\" IN DATABASE \"" + bare + "\" SET statement_timeout = "
            + STATEMENT_TIMEOUT_MS + ";"), refused);
        assertTrue(refused.contains("statement_timeout is 0 ms, configured " + STATEMENT_TIMEOUT_MS + " ms"), refused);
        assertTrue(refused.contains("RECONNECT"), refused);
      }

      try (Connection c = DriverManager.getConnection(direct); Statement st = c.createStatement()) {
        for (String setting : new String[] {"statement_timeout = " + STATEMENT_TIMEOUT_MS, "lock_timeout = 0",
            "idle_in_transaction_session_timeout = 15000"}) {
          st.execute("ALTER ROLE postgres IN DATABASE \"" + db + "\" SET " + setting);
        }
      }
      exercise(pooler, env(pooler.url(db), direct, "transaction"), direct);
    }
  }

  @Test
  void sessionMode() throws Exception {
    String direct = TestDatabase.create();
    String db = TestDatabase.databaseName(direct);
    try (PgBouncer pooler = PgBouncer.start(Map.of(db, "session"))) {
      // Migrations, too, go through the pooler: a session-mode connection is a whole session.
      exercise(pooler, env(pooler.url(db), null, "session"), direct);
    }
  }

  /** Start, every RPC, a statement cancelled by the timeout, SIGKILL, start again, every RPC. */
  private static void exercise(PgBouncer pooler, Map<String, String> env, String direct) throws Exception {
    ServerProcess first = ServerProcess.start(env);
    try {
      first.awaitServing();
      String key = new ApiKeyStore(Jdbi.create(direct)).create("default", "pgbouncer test",
          EnumSet.allOf(Scope.class), null, AuditLog.CLI_ACTOR).key();
      assertEquals(EveryRpc.allMethods(), new EveryRpc(first.channel(), key, DIMENSION).run(), pooler.log());
      if ("transaction".equals(env.get("DB_POOLER"))) {
        everyPooledSessionHasTheTimeouts(env.get("DB_URL"), direct);
      }

      // A writer blocked behind a row lock (lock_timeout is off here) is ended by statement_timeout,
      // not by the call's own 30 s deadline: the timeout arrived in the pooled session.
      var customers = TestKeys.withKey(CustomerServiceGrpc.newBlockingStub(first.channel()), key);
      Customer c = customers.withDeadlineAfter(30, TimeUnit.SECONDS).createCustomer(CreateCustomerRequest.newBuilder()
          .setCustomer(Customer.newBuilder().setDisplayName("Locked")).build()).getCustomer();
      try (Connection locker = DriverManager.getConnection(direct)) {
        locker.setAutoCommit(false);
        try (PreparedStatement st = locker.prepareStatement("SELECT 1 FROM customers WHERE id = ? FOR UPDATE")) {
          st.setObject(1, UUID.fromString(c.getId()));
          st.executeQuery().close();
        }
        assertError(Code.DEADLINE_EXCEEDED, "STATEMENT_TIMEOUT", () -> customers.withDeadlineAfter(30,
            TimeUnit.SECONDS).updateCustomer(
            UpdateCustomerRequest.newBuilder().setCustomer(Customer.newBuilder().setId(c.getId())
                .setDisplayName("Blocked")).setUpdateMask(FieldMask.newBuilder().addPaths("display_name")).build()));
        locker.rollback();
      }

      // A crash leaves the pooler's server connections to other clients; the restarted server
      // must not trip over anything the first one left on them.
      first.kill();
      try (ServerProcess second = ServerProcess.start(env, first.port())) {
        second.awaitServing();
        assertEquals(EveryRpc.allMethods(), new EveryRpc(second.channel(), key, DIMENSION).run(), second.log());
        assertTrue(!second.log().contains("\"level\":\"ERROR\""), second.log());
      }
    } finally {
      first.close();
    }
  }

  /**
   * Nothing the server ran left a session setting on a server connection of the transaction-mode
   * pool: once the vector index build is done, as many transactions as the pool has server
   * connections are held open at once through the pooler (each pins its own), and every one of
   * them has the role's statement and lock timeouts. The index build's {@code SET statement_timeout
   * = 0}, run through the pooler, stayed on one of them before it connected through the session URL.
   */
  private static void everyPooledSessionHasTheTimeouts(String pooled, String direct) throws Exception {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
    try (Connection d = DriverManager.getConnection(direct); Statement st = d.createStatement()) {
      while (true) {
        // The build's session lock is VectorIndexes.LOCK, "cm_vidx": classid 0x636d5f, objid 0x76696478.
        try (var rs = st.executeQuery("SELECT (SELECT count(*) FROM pg_index i"
            + " JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam"
            + " WHERE i.indrelid = 'memories'::regclass AND a.amname = 'hnsw' AND i.indisvalid),"
            + " (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
            + " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            + " AND classid = 6516063 AND objid = 1986618488)")) {
          rs.next();
          if (rs.getLong(1) > 0 && rs.getLong(2) == 0) {
            break; // built, and the build's session lock released
          }
        }
        assertTrue(System.nanoTime() < deadline, "the vector index build did not finish");
        Thread.sleep(100);
      }
    }
    List<Connection> held = new ArrayList<>();
    try {
      for (int i = 0; i < 20; i++) { // PgBouncer's default_pool_size
        Connection c = DriverManager.getConnection(pooled + "&prepareThreshold=0");
        held.add(c);
        c.setAutoCommit(false);
        try (Statement st = c.createStatement(); var rs = st.executeQuery(
            "SELECT current_setting('statement_timeout'), current_setting('lock_timeout'), pg_backend_pid()")) {
          rs.next();
          assertEquals(STATEMENT_TIMEOUT_MS / 1000 + "s", rs.getString(1), "server connection " + rs.getInt(3));
          assertEquals("0", rs.getString(2), "server connection " + rs.getInt(3));
        }
      }
    } finally {
      for (Connection c : held) {
        c.close();
      }
    }
  }

  private static Map<String, String> env(String url, String migrationUrl, String pooler) {
    Map<String, String> env = new HashMap<>(Map.of(
        "DB_URL", url,
        "DB_POOLER", pooler,
        "AUTH", "api-key",
        "EMBEDDING_DIMENSION", Integer.toString(DIMENSION),
        "DB_STATEMENT_TIMEOUT_MS", Integer.toString(STATEMENT_TIMEOUT_MS),
        "DB_LOCK_TIMEOUT_MS", "0",
        "MEMORY_SWEEP_INTERVAL_MS", "500"));
    if (migrationUrl != null) {
      env.put("MIGRATION_DB_URL", migrationUrl);
    }
    return env;
  }
}

package dev.contextmemory.server.store;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.zaxxer.hikari.HikariDataSource;
import dev.contextmemory.server.config.Database;
import dev.contextmemory.server.config.Settings;
import dev.contextmemory.server.testing.TestDatabase;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.Statement;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.jdbi.v3.core.Jdbi;
import org.junit.jupiter.api.Test;

/**
 * A vector index build that outlasts the pool's socket timeout (the statement timeout + 5 s) and
 * its lock timeout ends normally: at 1 M memories the build took 13 minutes, and the socket timeout used to close its
 * connection after 20 s while PostgreSQL built on (the server logged a failure). Here the build
 * waits behind a writer's open transaction (CREATE INDEX CONCURRENTLY waits for writers) past a
 * 6 s socket timeout.
 */
class VectorIndexBuildTest {
  @Test
  void aBuildLongerThanTheSocketTimeoutCompletes() throws Exception {
    String url = TestDatabase.create();
    Settings s = Settings.from(Map.of("CONTEXT_MEMORY_DB_URL", url, "CONTEXT_MEMORY_HOST", "127.0.0.1",
        "CONTEXT_MEMORY_AUTH", "none", "CONTEXT_MEMORY_DB_STATEMENT_TIMEOUT_MS", "1000",
        "CONTEXT_MEMORY_DB_LOCK_TIMEOUT_MS", "500"));
    Database.migrate(s);
    long socketTimeoutSeconds = Database.socketTimeoutSeconds(s);
    assertEquals(6, socketTimeoutSeconds);
    VectorSpace space = new VectorSpace("build-test", 3);
    try (HikariDataSource pool = Database.pool(s); Connection writer = DriverManager.getConnection(url)) {
      Jdbi jdbi = Database.jdbi(pool);
      writer.setAutoCommit(false);
      try (Statement st = writer.createStatement()) {
        st.execute("LOCK TABLE memories IN ROW EXCLUSIVE MODE"); // a writer, as an INSERT holds
      }
      CompletableFuture<Void> build = CompletableFuture.runAsync(() -> VectorIndexes.ensure(jdbi, space));
      Thread.sleep(TimeUnit.SECONDS.toMillis(socketTimeoutSeconds + 1));
      writer.commit();
      build.get(60, TimeUnit.SECONDS); // threw "An I/O error occurred" before the fix
      boolean valid = jdbi.withHandle(h -> h.createQuery(
          "SELECT indisvalid FROM pg_index WHERE indexrelid = CAST(:name AS regclass)")
          .bind("name", space.indexName("memories")).mapTo(Boolean.class).one());
      assertTrue(valid, "the index was built and is valid");
      // The pooled connection got its timeouts back: a statement still cannot hang forever.
      jdbi.useHandle(h -> {
        assertEquals(socketTimeoutSeconds * 1000, h.getConnection().getNetworkTimeout());
        assertEquals("1s", h.createQuery("SHOW statement_timeout").mapTo(String.class).one());
        assertEquals("500ms", h.createQuery("SHOW lock_timeout").mapTo(String.class).one());
      });
    }
  }
}

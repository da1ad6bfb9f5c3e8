package dev.contextmemory.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.contextmemory.server.config.Database;
import dev.contextmemory.server.config.Settings;
import dev.contextmemory.server.testing.TestDatabase;
import io.grpc.inprocess.InProcessServerBuilder;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import org.flywaydb.core.api.output.MigrateResult;
import org.jdbi.v3.core.Jdbi;
import org.junit.jupiter.api.Test;

/** The Flyway migrations against empty databases. */
class MigrationTest {
  private static Settings settings(String url, int dimension) {
    return Settings.from(Map.of(
        "CONTEXT_MEMORY_DB_URL", url,
        "CONTEXT_MEMORY_DB_POOL_SIZE", "2",
        "CONTEXT_MEMORY_EMBEDDING_DIMENSION", Integer.toString(dimension)));
  }

  @Test
  void migrationsApplyToAnEmptyDatabaseAndASecondRunIsANoOp() {
    String url = TestDatabase.create();
    Settings s = settings(url, 768);
    try (var pool = Database.pool(s)) {
      MigrateResult first = Database.migrate(s);
      assertTrue(first.success);
      assertTrue(first.migrationsExecuted >= 1, "applied " + first.migrationsExecuted);

      MigrateResult second = Database.migrate(s);
      assertTrue(second.success);
      assertEquals(0, second.migrationsExecuted, "a second run applies nothing");
      assertEquals(first.targetSchemaVersion, second.initialSchemaVersion);

      Jdbi jdbi = Database.jdbi(pool);
      Set<String> tables = Set.copyOf(jdbi.withHandle(h -> h.createQuery(
          "SELECT tablename FROM pg_tables WHERE schemaname = 'public'").mapTo(String.class).list()));
      assertTrue(tables.containsAll(List.of("customers", "customer_addresses", "conversations", "messages", "memories")),
          tables::toString);
      assertEquals(768, embeddingTypmod(jdbi, "memories", "embedding"));
      assertEquals(768, embeddingTypmod(jdbi, "conversations", "summary_embedding"));
      // The partial unique index that keeps one open conversation per thread.
      assertEquals(1, (int) jdbi.withHandle(h -> h.createQuery(
          "SELECT count(*) FROM pg_indexes WHERE indexname = 'conversations_one_open' AND indexdef LIKE '%WHERE%'")
          .mapTo(Integer.class).one()));
    }
  }

  @Test
  void theEmbeddingDimensionIsADeploymentSetting() {
    String url = TestDatabase.create();
    Settings s384 = settings(url, 384);
    try (var pool = Database.pool(s384)) {
      Database.migrate(s384);
      assertEquals(384, embeddingTypmod(Database.jdbi(pool), "memories", "embedding"));
    }
    // A server configured for another dimension than the database holds refuses to start.
    IllegalStateException e = assertThrows(IllegalStateException.class, () -> ContextMemoryServer.start(
        settings(url, 768), InProcessServerBuilder.forName(UUID.randomUUID().toString())));
    assertTrue(e.getMessage().contains("384"), e.getMessage());
  }

  private static int embeddingTypmod(Jdbi jdbi, String table, String column) {
    return jdbi.withHandle(h -> h.createQuery(
            "SELECT atttypmod FROM pg_attribute WHERE attrelid = CAST(:t AS regclass) AND attname = :c")
        .bind("t", table).bind("c", column).mapTo(Integer.class).one());
  }
}

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
import org.flywaydb.core.Flyway;
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
      // Version 9 lifts the dimension version 1 fixed: each row's model says what it is.
      assertEquals(-1, embeddingTypmod(jdbi, "memories", "embedding"));
      assertEquals(-1, embeddingTypmod(jdbi, "conversations", "summary_embedding"));
      // The partial unique index that keeps one open conversation per thread.
      assertEquals(1, (int) jdbi.withHandle(h -> h.createQuery(
          "SELECT count(*) FROM pg_indexes WHERE indexname = 'conversations_one_open' AND indexdef LIKE '%WHERE%'")
          .mapTo(Integer.class).one()));
    }
  }

  @Test
  void beforeVersion9TheDimensionWasFixedAndAServerOfAnotherRefusedToStart() {
    String url = TestDatabase.create();
    Flyway.configure().dataSource(url, null, null).locations("classpath:db/migration")
        .placeholders(Map.of("embedding_dimension", "384")).target("5").load().migrate();
    // A server configured for another dimension than an old schema holds (and told not to
    // migrate) refuses to start.
    IllegalStateException e = assertThrows(IllegalStateException.class, () -> ContextMemoryServer.start(
        Settings.from(Map.of("CONTEXT_MEMORY_DB_URL", url, "CONTEXT_MEMORY_DB_POOL_SIZE", "2",
            "CONTEXT_MEMORY_MIGRATE_ON_START", "false", "CONTEXT_MEMORY_EMBEDDING_DIMENSION", "768")),
        InProcessServerBuilder.forName(UUID.randomUUID().toString())));
    assertTrue(e.getMessage().contains("384"), e.getMessage());
  }

  /**
   * Version 9 labels the vectors clients stored before it with the model 'client' (READY), marks
   * memories without one NONE, and lifts the fixed dimension: rows of another model and dimension
   * can then live beside them while a model change re-embeds.
   */
  @Test
  void version9LabelsClientVectorsAndLiftsTheFixedDimension() {
    String url = TestDatabase.create();
    Settings s = settings(url, 3);
    Flyway.configure().dataSource(url, null, null).locations("classpath:db/migration")
        .placeholders(Map.of("embedding_dimension", "3")).target("5").load().migrate();
    try (var pool = Database.pool(s)) {
      Jdbi jdbi = Database.jdbi(pool);
      jdbi.useHandle(h -> h.execute("""
          INSERT INTO customers (tenant_id, id) VALUES ('t', '00000000-0000-7000-8000-000000000001');
          INSERT INTO conversations (tenant_id, id, customer_id, channel, thread_key, summary_embedding)
          VALUES ('t', '00000000-0000-7000-8000-000000000002', '00000000-0000-7000-8000-000000000001', 'web', 'a',
                  '[0.6,0.8,0]');
          INSERT INTO memories (tenant_id, id, customer_id, kind, content, embedding) VALUES
            ('t', '00000000-0000-7000-8000-000000000003', '00000000-0000-7000-8000-000000000001', 'fact', 'with',
             '[0.6,0.8,0]'),
            ('t', '00000000-0000-7000-8000-000000000004', '00000000-0000-7000-8000-000000000001', 'fact', 'without',
             NULL)"""));
      Database.migrate(s);
      assertEquals(List.of("with client ready", "without - none"), jdbi.withHandle(h -> h.createQuery(
          "SELECT content || ' ' || coalesce(embedding_model, '-') || ' ' || embedding_state FROM memories"
              + " ORDER BY content").mapTo(String.class).list()));
      assertEquals("client", jdbi.withHandle(h -> h.createQuery(
          "SELECT summary_embedding_model FROM conversations").mapTo(String.class).one()));
      assertEquals(-1, embeddingTypmod(jdbi, "memories", "embedding"));
      jdbi.useHandle(h -> h.execute("UPDATE memories SET embedding = '[1,0,0,0,0]', embedding_model = 'five'"
          + " WHERE content = 'without'"));
      // A vector needs its model, and READY needs a vector.
      assertThrows(Exception.class, () -> jdbi.useHandle(h -> h.execute(
          "UPDATE memories SET embedding_model = NULL WHERE content = 'with'")));
      assertThrows(Exception.class, () -> jdbi.useHandle(h -> h.execute(
          "UPDATE memories SET embedding = NULL, embedding_model = NULL WHERE content = 'with'")));
    }
  }

  /**
   * V3 removes embeddings whose norm made every cosine similarity NaN (accepted before, each value
   * being finite), and a memory's link to a soft-deleted conversation; its CHECK keeps new ones out.
   */
  @Test
  void version3NeutralisesPoisonedEmbeddingsAndLinksToDeletedConversations() {
    String url = TestDatabase.create();
    Settings s = settings(url, 3);
    Flyway.configure().dataSource(url, null, null).locations("classpath:db/migration")
        .placeholders(Map.of("embedding_dimension", "3")).target("1").load().migrate();
    try (var pool = Database.pool(s)) {
      Jdbi jdbi = Database.jdbi(pool);
      jdbi.useHandle(h -> h.execute("""
          INSERT INTO customers (tenant_id, id) VALUES ('t', '00000000-0000-7000-8000-000000000001');
          INSERT INTO conversations (tenant_id, id, customer_id, channel, thread_key, summary_embedding, deleted_at)
          VALUES ('t', '00000000-0000-7000-8000-000000000002', '00000000-0000-7000-8000-000000000001', 'web', 'a',
                  '[3e38,-3e38,3e38]', now());
          INSERT INTO memories (tenant_id, id, customer_id, conversation_id, kind, content, embedding) VALUES
            ('t', '00000000-0000-7000-8000-000000000003', '00000000-0000-7000-8000-000000000001',
             '00000000-0000-7000-8000-000000000002', 'fact', 'huge', '[-3e38,3e38,1]'),
            ('t', '00000000-0000-7000-8000-000000000004', '00000000-0000-7000-8000-000000000001', NULL,
             'fact', 'tiny', '[1e-30,1e-30,0]'),
            ('t', '00000000-0000-7000-8000-000000000005', '00000000-0000-7000-8000-000000000001', NULL,
             'fact', 'fine', '[0.6,0.8,0]')"""));
      Database.migrate(s);
      List<String> kept = jdbi.withHandle(h -> h.createQuery(
          "SELECT content FROM memories WHERE embedding IS NOT NULL ORDER BY content").mapTo(String.class).list());
      assertEquals(List.of("fine"), kept);
      assertEquals(3, (int) jdbi.withHandle(h -> h.createQuery("SELECT count(*) FROM memories").mapTo(Integer.class)
          .one()), "the memories stay, only the poisoned vectors go");
      assertEquals(0, (int) jdbi.withHandle(h -> h.createQuery(
          "SELECT count(*) FROM memories WHERE conversation_id IS NOT NULL").mapTo(Integer.class).one()));
      assertEquals(0, (int) jdbi.withHandle(h -> h.createQuery(
          "SELECT count(*) FROM conversations WHERE summary_embedding IS NOT NULL").mapTo(Integer.class).one()));
      assertThrows(Exception.class, () -> jdbi.useHandle(h -> h.execute(
          "UPDATE memories SET embedding = '[3e38,3e38,3e38]' WHERE content = 'fine'")));
    }
  }

  private static int embeddingTypmod(Jdbi jdbi, String table, String column) {
    return jdbi.withHandle(h -> h.createQuery(
            "SELECT atttypmod FROM pg_attribute WHERE attrelid = CAST(:t AS regclass) AND attname = :c")
        .bind("t", table).bind("c", column).mapTo(Integer.class).one());
  }
}

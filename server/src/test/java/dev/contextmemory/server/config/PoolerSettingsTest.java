package dev.contextmemory.server.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** CONTEXT_MEMORY_DB_POOLER and the session URL that work needing a whole session connects to. */
class PoolerSettingsTest {
  private static final String POOLED = "jdbc:postgresql://pgbouncer:6432/cm";
  private static final String DIRECT = "jdbc:postgresql://primary:5432/cm";

  private static Settings read(Map<String, String> vars) {
    Map<String, String> env = new HashMap<>();
    env.put("CONTEXT_MEMORY_DB_URL", POOLED);
    vars.forEach((k, v) -> env.put(Settings.PREFIX + k, v));
    return Settings.from(env);
  }

  @Test
  void aTransactionPoolerNeedsASessionUrlEvenWhenThisServerDoesNotMigrate() {
    for (String migrate : new String[] {"true", "false"}) {
      String refused = assertThrows(IllegalArgumentException.class,
          () -> read(Map.of("DB_POOLER", "transaction", "MIGRATE_ON_START", migrate))).getMessage();
      assertTrue(refused.contains("MIGRATION_DB_URL"), refused);
      assertTrue(refused.contains("vector index build"), refused);
    }
    Settings s = read(Map.of("DB_POOLER", "transaction", "MIGRATE_ON_START", "false", "MIGRATION_DB_URL", DIRECT));
    assertEquals(POOLED, s.dbUrl());
    assertEquals(DIRECT, s.sessionDbUrl());
  }

  @Test
  void aSessionPoolerOrNoneUsesTheRequestUrlForSessions() {
    assertEquals(POOLED, read(Map.of("DB_POOLER", "session")).sessionDbUrl());
    assertEquals(POOLED, read(Map.of()).sessionDbUrl());
  }
}

package dev.contextmemory.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.contextmemory.server.config.Database;
import dev.contextmemory.server.config.Settings;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The timeout settings that must agree with each other are checked before anything starts. */
class TimeoutSettingsTest {

  private static Settings settings(Map<String, String> vars) {
    Map<String, String> env = new HashMap<>();
    env.put("CONTEXT_MEMORY_DB_URL", "jdbc:postgresql://127.0.0.1:1/none");
    vars.forEach((k, v) -> env.put(Settings.PREFIX + k, v));
    return Settings.from(env);
  }

  private static String rejected(Map<String, String> vars) {
    return assertThrows(IllegalArgumentException.class, () -> settings(vars)).getMessage();
  }

  @Test
  void defaultsAgree() {
    Settings s = settings(Map.of());
    assertEquals(Duration.ofSeconds(2), s.lockTimeout());
    assertEquals(Duration.ofSeconds(60), s.maxCallDeadline());
    assertEquals(Duration.ofSeconds(1), s.healthCheckTimeout());
    assertEquals(s.requestThreads(), s.requestQueue(), "as many may wait as run");
    assertEquals(Duration.ofSeconds(1), s.requestQueueWait());
    assertEquals(15 + 5, Database.socketTimeoutSeconds(s), "statement timeout + 5 s");
  }

  @Test
  void aStatementTimeoutBelowWhatAConnectionNeedsIsRejected() {
    assertTrue(rejected(Map.of("DB_STATEMENT_TIMEOUT_MS", "1")).contains("CONTEXT_MEMORY_DB_STATEMENT_TIMEOUT_MS"));
    assertTrue(rejected(Map.of("DB_STATEMENT_TIMEOUT_MS", "99")).contains("at least 100"));
    assertEquals(Duration.ZERO, settings(Map.of("DB_STATEMENT_TIMEOUT_MS", "0", "DB_LOCK_TIMEOUT_MS", "500"))
        .statementTimeout(), "0 turns the statement timeout off");
  }

  @Test
  void theLockTimeoutMustBeBelowTheStatementTimeout() {
    String m = rejected(Map.of("DB_STATEMENT_TIMEOUT_MS", "1000", "DB_LOCK_TIMEOUT_MS", "1000"));
    assertTrue(m.contains("CONTEXT_MEMORY_DB_LOCK_TIMEOUT_MS") && m.contains("CONTEXT_MEMORY_DB_STATEMENT_TIMEOUT_MS"), m);
    settings(Map.of("DB_STATEMENT_TIMEOUT_MS", "1000", "DB_LOCK_TIMEOUT_MS", "0"));
  }

  @Test
  void withoutAStatementTimeoutTheSocketTimeoutFollowsTheMaximumDeadline() {
    Settings s = settings(Map.of("DB_STATEMENT_TIMEOUT_MS", "0", "MAX_CALL_DEADLINE_MS", "30000"));
    assertEquals(30 + 5, Database.socketTimeoutSeconds(s));
  }

  @Test
  void anEmptyRequestQueueIsRejected() {
    assertTrue(rejected(Map.of("REQUEST_QUEUE", "0")).contains("CONTEXT_MEMORY_REQUEST_QUEUE must be within 1..100000"));
  }
}

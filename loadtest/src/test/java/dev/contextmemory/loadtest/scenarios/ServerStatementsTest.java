package dev.contextmemory.loadtest.scenarios;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.lang.reflect.Field;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The same-statement floor is only honest while its copy of the server's SQL is the server's SQL:
 * this compares the copies with the stores' own constants (read by reflection from the server
 * jar the harness's tests depend on), so a change in a store fails here until the copy follows.
 */
class ServerStatementsTest {
  private static Object constant(String className, String field) throws Exception {
    Field f = Class.forName("dev.contextmemory.server.store." + className).getDeclaredField(field);
    f.setAccessible(true);
    return f.get(null);
  }

  @Test
  void theCopiesAreTheServersStatements() throws Exception {
    assertEquals(constant("MessageStore", "APPEND_ONE"), ServerStatements.APPEND_ONE);
    assertEquals(constant("MessageStore", "COLUMNS"), ServerStatements.MESSAGE_COLUMNS);
    assertEquals(constant("MemoryStore", "COLUMNS"), ServerStatements.MEMORY_COLUMNS);
    assertEquals(constant("Store", "EXACT_SCAN_MIN_ROWS"), ServerStatements.EXACT_SCAN_MIN_ROWS);
    assertEquals(constant("Store", "EXACT_SCAN_MAX_ROWS"), ServerStatements.EXACT_SCAN_MAX_ROWS);
    assertEquals(constant("ConversationStore", "COLUMNS"), Baselines.CONVERSATION_COLUMNS);
  }

  @Test
  void namedParametersBecomePositionalLikeJdbiAndCastsAreLeftAlone() {
    var n = new ServerStatements.Named("SELECT a::text FROM t WHERE x = :tenant AND y = CAST(:q AS vector)"
        + " AND z = :tenant");
    assertEquals("SELECT a::text FROM t WHERE x = ? AND y = CAST(? AS vector) AND z = ?", n.sql());
    assertEquals(List.of("tenant", "q", "tenant"), n.names());
  }
}

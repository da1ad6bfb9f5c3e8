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
    assertEquals(constant("VectorScope", "EXACT_SCAN_MIN_ROWS"), ServerStatements.EXACT_SCAN_MIN_ROWS);
    assertEquals(constant("VectorScope", "EXACT_SCAN_MAX_ROWS"), ServerStatements.EXACT_SCAN_MAX_ROWS);
    assertEquals(constant("ConversationStore", "COLUMNS"), Baselines.CONVERSATION_COLUMNS);
    assertEquals(constant("MemorySearchStore", "SETTINGS"), ServerStatements.SEARCH_SETTINGS);
  }

  private static Object call(String className, String method, Class<?>[] types, Object... args) throws Exception {
    var m = Class.forName("dev.contextmemory.server.store." + className).getDeclaredMethod(method, types);
    m.setAccessible(true);
    return m.invoke(null, args);
  }

  /** SearchMemories' statements are built per request: the copies must equal what the store builds for the scenario's. */
  @Test
  void theSearchCopiesAreWhatTheStoreBuilds() throws Exception {
    Class<?> spaceType = Class.forName("dev.contextmemory.server.store.VectorSpace");
    Object client = spaceType.getDeclaredConstructor(String.class, int.class).newInstance("client", 768);
    Object local = spaceType.getDeclaredConstructor(String.class, int.class).newInstance("all-minilm-l6-v2", 384);
    Class<?>[] vectorTypes = {spaceType, boolean.class, List.class, String.class, java.time.Instant.class, int.class};
    assertEquals(call("MemorySearchStore", "head", new Class<?>[] {boolean.class, boolean.class}, true, true),
        ServerStatements.SEARCH_HEAD);
    assertEquals(call("MemorySearchStore", "vectorStatement", vectorTypes, client, true, List.of(), null, null,
        Scenarios.K), ServerStatements.vectorSearchForCustomer(Scenarios.K));
    assertEquals(call("MemorySearchStore", "head", new Class<?>[] {boolean.class, boolean.class}, true, false),
        ServerStatements.SEARCH_HEAD_TENANT);
    assertEquals(call("MemorySearchStore", "vectorStatement", vectorTypes, client, false, List.of(), null, null,
        Scenarios.K), ServerStatements.vectorSearchForTenant(Scenarios.K));
    for (int k : new int[] {1, 10, 40, 100, 300}) {
      assertEquals(call("MemorySearchStore", "candidates", new Class<?>[] {boolean.class, int.class}, false, k),
          ServerStatements.tenantCandidates(k));
    }
    int cut = ServerStatements.hybridCut(Scenarios.K);
    assertEquals(call("MemorySearchStore", "vectorStatement", vectorTypes, local, true, List.of(), null, null, cut),
        ServerStatements.vectorSearchForCustomer(cut, "all-minilm-l6-v2", 384));
    assertEquals(call("MemorySearchStore", "textStatement",
            new Class<?>[] {boolean.class, List.class, String.class, java.time.Instant.class, int.class},
            true, List.of(), null, null, cut), ServerStatements.textSearchForCustomer(cut));
    for (int candidates : new int[] {10, 400, 2000}) {
      assertEquals(call("MemorySearchStore", "efSearch", new Class<?>[] {int.class}, candidates),
          ServerStatements.efSearch(candidates));
    }
    for (int k : new int[] {1, 10, 40, 100}) {
      assertEquals(call("VectorScope", "indexCandidates", new Class<?>[] {int.class}, k), ServerStatements.indexCandidates(k));
    }
  }

  @Test
  void namedParametersBecomePositionalLikeJdbiAndCastsAreLeftAlone() {
    var n = new ServerStatements.Named("SELECT a::text FROM t WHERE x = :tenant AND y = CAST(:q AS vector)"
        + " AND z = :tenant");
    assertEquals("SELECT a::text FROM t WHERE x = ? AND y = CAST(? AS vector) AND z = ?", n.sql());
    assertEquals(List.of("tenant", "q", "tenant"), n.names());
  }
}

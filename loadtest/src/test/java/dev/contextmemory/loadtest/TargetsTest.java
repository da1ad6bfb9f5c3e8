package dev.contextmemory.loadtest;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

class TargetsTest {

  @Test
  void thePromisedTargets() {
    Targets t = Targets.promised();
    assertEquals(10, t.p99Ms("append_message"));
    assertEquals(100, t.p99Ms("append_messages_100"));
    assertEquals(5, t.p99Ms("list_messages_20"));
    assertEquals(20, t.p99Ms("search_messages"));
    assertEquals(50, t.p99Ms("search_memories_customer"));
    assertEquals(50, t.p99Ms("search_memories_tenant"));
    assertEquals(20, t.p99Ms("fetch_context"));
    assertEquals(5, t.p99Ms("list_conversations_customer"));
    assertEquals(5, t.p99Ms("list_conversations_open"));
    assertEquals(10, t.p99Ms("list_conversations_metadata"));
    assertEquals(20, t.p99Ms("usage_metrics"));
    assertFalse(t.adjusted());
  }

  @Test
  void theCiGateDoublesTheStrictReadTargetsAndKeepsTheProductPromises() {
    Targets ci = Targets.of("ci");
    assertEquals(10, ci.p99Ms("append_message"));
    assertEquals(100, ci.p99Ms("append_messages_100"));
    assertEquals(50, ci.p99Ms("search_memories_customer"));
    assertEquals(50, ci.p99Ms("search_memories_tenant"));
    assertEquals(10, ci.p99Ms("list_messages_20"));
    assertEquals(20, ci.p99Ms("search_messages"));
    assertEquals(20, ci.p99Ms("fetch_context"));
    assertEquals(60, ci.p99Ms("agent_turn"));
    assertEquals(10, ci.p99Ms("list_conversations_customer"));
    assertEquals(10, ci.p99Ms("list_conversations_open"));
    assertEquals(20, ci.p99Ms("list_conversations_metadata"));
    assertEquals(20, ci.p99Ms("usage_metrics"));
    assertFalse(ci.adjusted());
    assertFalse(Targets.adjusted("ci", 1, List.of()).adjusted());
    assertTrue(Targets.adjusted("ci", 1, List.of("list_messages_20=5")).adjusted());
  }

  @Test
  void scaleThenOverride() {
    Targets t = Targets.adjusted("full", 0.001, List.of("append_message=0.5", "agent_turn = 7"));
    assertEquals(0.5, t.p99Ms("append_message"));
    assertEquals(7, t.p99Ms("agent_turn"));
    assertEquals(0.1, t.p99Ms("append_messages_100"), 1e-12);
    assertTrue(t.adjusted());
  }

  @Test
  void badAdjustmentsAreRejectedWithTheReason() {
    assertTrue(assertThrows(IllegalArgumentException.class, () -> Targets.adjusted("full", 0, List.of()))
        .getMessage().contains("--target-scale"));
    assertTrue(assertThrows(IllegalArgumentException.class, () -> Targets.adjusted("full", 1, List.of("nope=1")))
        .getMessage().contains("append_message"));
    assertThrows(IllegalArgumentException.class, () -> Targets.adjusted("full", 1, List.of("append_message")));
    assertThrows(IllegalArgumentException.class, () -> Targets.adjusted("full", 1, List.of("append_message=abc")));
    assertThrows(IllegalArgumentException.class, () -> Targets.adjusted("full", 1, List.of("append_message=-1")));
  }

  @Test
  void optionsParseBothSpellingsAndRequireADatabaseWithoutATarget() {
    Options o = Options.parse(new String[] {"--profile=full", "--db-url", "jdbc:postgresql://h:1/d",
        "--override-target", "append_message=1", "--target-scale=0.5", "--only", "append_message,agent_turn"});
    assertEquals("full", o.profile());
    assertEquals(0.5, o.targetScale());
    assertEquals(List.of("append_message=1"), o.overrides());
    assertEquals(2, o.only().size());
    assertThrows(Options.UsageException.class, () -> Options.parse(new String[] {"--profile", "ci"}));
    assertThrows(Options.UsageException.class, () -> Options.parse(new String[] {"--target", "nohostport"}));
    assertThrows(Options.UsageException.class, () -> Options.parse(new String[] {"--target", "h:1", "--only", "x"}));
    Options t = Options.parse(new String[] {"--target", "localhost:50051"});
    assertEquals("localhost:50051", t.target());
    assertEquals("a:1,b:2", Options.parse(new String[] {"--target", "a:1,b:2"}).target());
    assertThrows(Options.UsageException.class, () -> Options.parse(new String[] {"--target", "a:1,"}));
    assertThrows(Options.UsageException.class, () -> Options.parse(new String[] {"--target", "a:1,b"}));
  }

  @Test
  void theTextSearchScenariosRunAloneOnAServerWithTheLocalModel() {
    assertEquals(50, Targets.promised().p99Ms("search_memories_text"));
    assertEquals(50, Targets.of("ci").p99Ms("search_memories_text"));
    assertEquals(1000, Targets.of("ci").p99Ms("write_searchable"));
    String db = "jdbc:postgresql://h:1/d";
    assertTrue(Main.embedderRun(Options.parse(new String[] {"--db-url", db, "--only", "search_memories_text"}).only()));
    assertFalse(Main.embedderRun(Options.parse(new String[] {"--db-url", db, "--only", "append_message"}).only()));
    assertFalse(Main.embedderRun(Options.parse(new String[] {"--db-url", db}).only()));
    // One model per deployment: the 768-dim client-vector scenarios cannot share the run.
    Options mixed = Options.parse(new String[] {"--db-url", db, "--only", "write_searchable,append_message"});
    assertThrows(Options.UsageException.class, () -> Main.embedderRun(mixed.only()));
    assertTrue(Options.parse(new String[] {"--db-url", db, "--only", "write_searchable", "--compare-embedder"})
        .compareEmbedder());
    assertThrows(Options.UsageException.class, () -> Options.parse(new String[] {"--db-url", db, "--compare-embedder"}));
    assertThrows(Options.UsageException.class, () -> Options.parse(new String[] {"--target", "h:1", "--only",
        "write_searchable", "--compare-embedder"}));
  }
}

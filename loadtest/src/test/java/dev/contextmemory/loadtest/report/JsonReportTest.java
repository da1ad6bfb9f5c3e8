package dev.contextmemory.loadtest.report;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.contextmemory.loadtest.dsl.RunResult;
import dev.contextmemory.loadtest.dsl.Summary;
import dev.contextmemory.loadtest.scenarios.Baselines;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.HdrHistogram.Histogram;
import org.junit.jupiter.api.Test;

class JsonReportTest {
  /** The keys of a scenario, in the order the issue gives them. */
  private static final List<String> KEYS = List.of("name", "requests", "errors", "p50_ms", "p95_ms", "p99_ms",
      "max_ms", "throughput_rps", "target_p99_ms", "passed", "recall_at_10", "baseline_p50_ms", "baseline_p99_ms",
      "p99_over_floor_ms", "same_statement_p50_ms", "same_statement_p99_ms", "own_p50_ms", "capacity_rps",
      "same_statement_capacity_rps", "baseline_recall_at_10", "bare_table_p50_ms", "bare_table_p99_ms",
      "first_run");

  static RunReport report() {
    Histogram h = new Histogram(3);
    h.recordValue(1500);
    Summary s = new Summary("append_message", 120, 1, 0.5, 1.5, 2, 3.25, 4.125, 5, 9.5, 1.6, 10.0, 12, Map.of("INTERNAL", 1L),
        List.of("INTERNAL: boom"), List.of(), h);
    RunResult run = new RunResult("append_message", "10/s for 12s", s, List.of(s), Optional.empty(), 0);
    Outcome passed = new Outcome("append_message", Outcome.Status.PASSED, "", 10.0, run,
        List.of(new Outcome.Verdict("p99 < 10.0 ms", "p99 = 4.13 ms", true)), null,
        new Baselines.Baseline("one-row INSERT", 100, 0.25, 0.75), null)
        .withCapacity(new Outcome.Capacity(575.0, "stopped at 863/s", List.of(), null)
            .withSameStatement(new Outcome.Capacity(1150.0, "stopped at 1726/s", List.of(), null)));
    Outcome firstMiss = new Outcome("search_memories_tenant", Outcome.Status.FAILED, "", 50.0, run,
        List.of(new Outcome.Verdict("p99 < 50.0 ms", "p99 = 61.0 ms", false)), 0.9, null, null);
    Outcome search = new Outcome("search_memories_tenant", Outcome.Status.FAILED, "", 50.0, run, List.of(), 0.93125, null,
        null).withFirstRun(firstMiss);
    Outcome skipped = Outcome.skipped("agent_turn", 60.0, "UNIMPLEMENTED: x");
    return new RunReport("ci", Instant.parse("2026-11-23T10:00:00.123456Z"), "here", "data", "t", false, List.of(), null,
        null, List.of(passed, search, skipped), 100, floor(), Map.of("append_message",
        new Baselines.Baseline("the CTE", 100, 0.5, 1.5)), Map.of("append_message",
        new Baselines.Baseline("unindexed copy", 100, 0.125, 0.375)), Map.of());
  }

  /** A transport floor with p50 1.0 ms and p99 3.0 ms. */
  static Summary floor() {
    Histogram h = new Histogram(3);
    h.recordValue(1000);
    return new Summary("transport_floor", 100, 0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 10, 1.2, 100, 1, Map.of(), List.of(),
        List.of(), h);
  }

  @Test
  void theShapeIsExactlyTheIssues() {
    String json = JsonReport.render(report());
    JsonObject root = JsonParser.parseString(json).getAsJsonObject();
    assertEquals(List.of("profile", "started_at", "scenarios"), new ArrayList<>(root.keySet()));
    assertEquals("ci", root.get("profile").getAsString());
    assertEquals("2026-11-23T10:00:00.123Z", root.get("started_at").getAsString());
    var scenarios = root.getAsJsonArray("scenarios");
    assertEquals(3, scenarios.size());
    for (JsonElement e : scenarios) {
      assertEquals(KEYS, new ArrayList<>(e.getAsJsonObject().keySet()));
    }
    JsonObject a = scenarios.get(0).getAsJsonObject();
    assertEquals(120, a.get("requests").getAsLong());
    assertEquals(1, a.get("errors").getAsLong());
    assertEquals(1.5, a.get("p50_ms").getAsDouble());
    assertEquals(3.25, a.get("p95_ms").getAsDouble());
    assertEquals(4.125, a.get("p99_ms").getAsDouble());
    assertEquals(9.5, a.get("max_ms").getAsDouble());
    assertEquals(10.0, a.get("throughput_rps").getAsDouble());
    assertEquals(10.0, a.get("target_p99_ms").getAsDouble());
    assertTrue(a.get("passed").getAsBoolean());
    assertTrue(a.get("recall_at_10").isJsonNull());
    assertEquals(0.25, a.get("baseline_p50_ms").getAsDouble());
    assertEquals(0.75, a.get("baseline_p99_ms").getAsDouble());
    assertTrue(json.contains("\"target_p99_ms\": 10.0,"), "floats keep their decimal point: " + json);

    assertEquals(1.125, a.get("p99_over_floor_ms").getAsDouble(), 1e-9, "p99 4.125 - floor p99 3.0");
    assertEquals(0.5, a.get("same_statement_p50_ms").getAsDouble());
    assertEquals(1.5, a.get("same_statement_p99_ms").getAsDouble());
    assertEquals(0.0, a.get("own_p50_ms").getAsDouble(), 1e-9,
        "p50 1.5 - floor p50 1.0 - same-statement SQL p50 0.5 (not the physical 0.25)");
    assertEquals(0.125, a.get("bare_table_p50_ms").getAsDouble());
    assertEquals(0.375, a.get("bare_table_p99_ms").getAsDouble());
    assertTrue(a.get("first_run").isJsonNull(), "passed on its first run");
    assertEquals(575.0, a.get("capacity_rps").getAsDouble());
    assertEquals(1150.0, a.get("same_statement_capacity_rps").getAsDouble());

    JsonObject s = scenarios.get(1).getAsJsonObject();
    assertEquals(false, s.get("passed").getAsBoolean());
    JsonObject first = s.getAsJsonObject("first_run");
    assertEquals(false, first.get("passed").getAsBoolean());
    assertEquals("p99 = 61.0 ms (want p99 < 50.0 ms)", first.get("missed").getAsString());
    assertEquals(0.9, first.get("recall_at_10").getAsDouble());
    assertEquals(0.931, s.get("recall_at_10").getAsDouble());
    assertTrue(s.get("baseline_p50_ms").isJsonNull());
    assertTrue(s.get("bare_table_p50_ms").isJsonNull(), "no bare-table floor for this scenario");
    assertTrue(s.get("capacity_rps").isJsonNull(), "no capacity search (profile ci)");

    JsonObject k = scenarios.get(2).getAsJsonObject();
    assertTrue(k.get("passed").isJsonNull(), "skipped: neither passed nor failed");
    assertEquals(0, k.get("requests").getAsLong());
    assertEquals(0.0, k.get("p99_ms").getAsDouble());
    assertEquals(60.0, k.get("target_p99_ms").getAsDouble());
  }

  @Test
  void htmlIsSelfContained() {
    String html = Html.render(report());
    assertTrue(html.startsWith("<!DOCTYPE html>"));
    assertTrue(html.contains("<svg"), "inline charts");
    assertTrue(!html.contains("<script") && !html.contains("src=") && !html.contains("href=\"http"),
        "no scripts, no external resources");
    assertTrue(html.contains("Latency by percentile") && html.contains("Latency over time"));
    assertTrue(html.contains("agent_turn") && html.contains("SKIPPED"));
    assertTrue(html.contains("bare table: append_message p50 0.125 ms"), "the bare-table floor under the summary");
    assertTrue(html.contains("server / same statement: 0.50"), "the capacity ratio");
  }

  @Test
  void jsonStringsAreEscaped() {
    assertEquals("\"a\\\"b\\\\c\\nd\\u0001\"", JsonReport.str("a\"b\\c\nd\u0001"));
    assertEquals("1.0", JsonReport.num(1.0));
    assertEquals("0.001", JsonReport.num(0.0012));
    assertEquals("null", JsonReport.num(Double.NaN));
  }
}

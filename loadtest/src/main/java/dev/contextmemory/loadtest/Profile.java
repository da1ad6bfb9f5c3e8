package dev.contextmemory.loadtest;

import dev.contextmemory.loadtest.data.DataSet;
import java.time.Duration;
import java.util.Map;

/**
 * Sizes, rates and durations of a run.
 *
 * <ul>
 *   <li>{@code ci}: about 20,000 memories and 200,000 messages; each scenario 2 s of warm-up and
 *       10 s measured at a fixed arrival rate (a missed target is measured once more). The whole
 *       run, set-up included, takes 5 to 6 minutes on a quiet 2-core machine; scripts/test runs it
 *       by default and fails when a scenario misses its ci target twice in a row.
 *   <li>{@code full}: 100,000 memories and 1,000,000 messages; each scenario measured for 20 s,
 *       then a capacity search that starts at half the scenario's rate and steps it up by half
 *       each 10 s step until the p99 breaks the target or errors appear (twice in a row), and
 *       reports the last rate that held.
 *   <li>{@code smoke}: a tiny data set and one-second runs, for the harness's own tests.
 * </ul>
 *
 * @param rates arrival rate of each scenario in sessions per second (agent_turn: turns per second)
 * @param agentTurnMemoryShare the share of agent turns that end with UpsertMemory: agents learn
 *     something worth keeping in a minority of turns
 * @param maxErrorRate the error-rate assertion of every scenario
 * @param recallSamples search answers per memory-search scenario whose recall@10 is checked
 * @param baselineIterations measured iterations of each JDBC baseline (each also stops after 3 s)
 * @param capacity the capacity search, or null for none
 */
public record Profile(
    String name,
    DataSet.Sizes sizes,
    int setupConcurrency,
    Duration warmUp,
    Duration measure,
    Map<String, Double> rates,
    double agentTurnMemoryShare,
    double maxErrorRate,
    int recallSamples,
    int baselineIterations,
    Capacity capacity) {

  /**
   * Capacity search: start at half the scenario's profile rate, multiply by {@code factor}
   * each step of {@code step} (after {@code warmUp}), at most {@code maxSteps} steps.
   */
  public record Capacity(double factor, Duration warmUp, Duration step, int maxSteps) {}

  private static final int DIMENSION = 768;

  public static Profile named(String name) {
    return switch (name) {
      case "ci" -> new Profile("ci",
          new DataSet.Sizes(1_000, 2, 100, 20_000, 64, DIMENSION),
          8, Duration.ofSeconds(2), Duration.ofSeconds(10),
          rates(Map.of("append_message", 100.0, "append_messages_100", 10.0, "list_messages_20", 200.0,
              "search_messages", 50.0, "search_memories_customer", 50.0, "search_memories_tenant", 30.0,
              "fetch_context", 50.0, "agent_turn", 10.0, "usage_metrics", 20.0), 100.0),
          0.25, 0.001, 200, 1_000, null);
      case "full" -> new Profile("full",
          new DataSet.Sizes(5_000, 2, 100, 100_000, 256, DIMENSION),
          8, Duration.ofSeconds(5), Duration.ofSeconds(20),
          rates(Map.of("append_message", 100.0, "append_messages_100", 10.0, "list_messages_20", 200.0,
              "search_messages", 50.0, "search_memories_customer", 50.0, "search_memories_tenant", 30.0,
              "fetch_context", 50.0, "agent_turn", 10.0, "usage_metrics", 20.0), 100.0),
          0.25, 0.001, 100, 2_000,
          new Capacity(1.5, Duration.ofSeconds(2), Duration.ofSeconds(10), 14));
      case "smoke" -> new Profile("smoke",
          new DataSet.Sizes(20, 2, 30, 400, 8, DIMENSION),
          4, Duration.ofMillis(300), Duration.ofSeconds(1),
          rates(Map.of("append_message", 20.0, "append_messages_100", 5.0, "list_messages_20", 20.0,
              "search_messages", 20.0, "search_memories_customer", 20.0, "search_memories_tenant", 20.0,
              "fetch_context", 20.0, "agent_turn", 10.0, "usage_metrics", 10.0), 20.0),
          0.5, 0.001, 20, 20,
          new Capacity(2, Duration.ofMillis(200), Duration.ofMillis(500), 2));
      default -> throw new IllegalArgumentException("unknown profile '" + name + "' (ci, full, smoke)");
    };
  }

  /**
   * The rates of the first eight scenarios plus the three conversation lookups (ListConversations of
   * one customer, its open ones, a metadata query) at {@code lookups} per second each, and the
   * on-demand memory writes.
   */
  private static Map<String, Double> rates(Map<String, Double> first, double lookups) {
    Map<String, Double> all = new java.util.HashMap<>(first);
    all.put("list_conversations_customer", lookups);
    all.put("list_conversations_open", lookups);
    all.put("list_conversations_metadata", lookups);
    // On demand: a single create at an agent's pace, and one 1,000-memory batch every 2 s.
    all.put("create_memory", 50.0);
    all.put("create_memories_batch", 0.5);
    // On demand, with the server's local model: a text search embeds its question on the server's
    // 2 cores (about 10 ms of CPU each), so it runs at 20/s; memories written as text at 50/s.
    all.put("search_memories_text", 20.0);
    all.put("write_searchable", 50.0);
    return Map.copyOf(all);
  }

  public double rate(String scenario) {
    Double r = rates.get(scenario);
    if (r == null) {
      throw new IllegalArgumentException("profile " + name + " has no rate for " + scenario);
    }
    return r;
  }
}

package dev.contextmemory.loadtest.report;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

/** The server-side quantiles come from the difference of two scrapes, interpolated like histogram_quantile. */
class ServerLatencyTest {
  private static final String M = "contextmemory.v1.ConversationService/AppendMessage";

  private static String scrape(long le1ms, long le2ms, long le5ms, long inf) {
    String series = "contextmemory_rpc_server_duration_seconds_bucket{code=\"OK\",method=\"" + M + "\",le=\"";
    return "# TYPE contextmemory_rpc_server_duration_seconds histogram\n"
        + series + "0.001\"} " + le1ms + "\n"
        + series + "0.002\"} " + le2ms + "\n"
        + series + "0.005\"} " + le5ms + "\n"
        + series + "+Inf\"} " + inf + "\n"
        // Another code and another method must not count.
        + "contextmemory_rpc_server_duration_seconds_bucket{code=\"NOT_FOUND\",method=\"" + M + "\",le=\"+Inf\"} 99\n"
        + "contextmemory_rpc_server_duration_seconds_bucket{code=\"OK\",method=\"x/Y\",le=\"+Inf\"} 77\n";
  }

  @Test
  void quantilesOfTheRunAloneInterpolatedWithinBuckets() {
    // Before: 10 calls under 1 ms. The run adds 100: 0 under 1 ms, 80 in (1, 2], 18 in (2, 5], 2 beyond.
    List<ServerLatency> l = ServerLatency.between(scrape(10, 10, 10, 10), scrape(10, 90, 108, 110), List.of(M));
    assertEquals(1, l.size());
    assertEquals(100, l.getFirst().calls());
    // Rank 50 of 100 falls in (1, 2] ms, 50 of its 80: 1 + 50/80.
    assertEquals(1.625, l.getFirst().p50Ms(), 1e-9);
    // Rank 99 is beyond the last finite bound: all that is known is "over 5 ms".
    assertEquals(5.0, l.getFirst().p99Ms(), 1e-9);
    assertTrue(l.getFirst().after().contains("le=\"+Inf\"} 110"));
    assertTrue(!l.getFirst().after().contains("NOT_FOUND") && !l.getFirst().after().contains("x/Y"));
  }

  @Test
  void withoutCallsOrWithoutAScrapeThereIsNothingToShow() {
    assertTrue(Double.isNaN(ServerLatency.between(scrape(1, 1, 1, 1), scrape(1, 1, 1, 1), List.of(M)).getFirst().p50Ms()));
    assertTrue(ServerLatency.between(null, scrape(1, 1, 1, 1), List.of(M)).isEmpty());
  }
}

package dev.contextmemory.loadtest.report;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * The server's own latency for one RPC over one measured run: the difference of its histogram
 * {@code contextmemory_rpc_server_duration_seconds} (calls that answered OK) between a scrape of
 * the server's metrics endpoint just before the run and one just after. Beside the harness's
 * figures, the gap is what the server's clock does not see: the network, the client and HTTP/2.
 * Quantiles are interpolated within the histogram's buckets, as Prometheus's histogram_quantile
 * does, so they are as fine as the buckets (0.25 ms steps below 1 ms, then 1.5, 2, 3, 4, 5, 7.5,
 * 10 ms, ...).
 *
 * @param before the method's bucket lines in the scrape before the run (Prometheus text format)
 * @param after the same lines after the run
 */
public record ServerLatency(String method, long calls, double p50Ms, double p99Ms, String before, String after) {
  static final String BUCKET = "contextmemory_rpc_server_duration_seconds_bucket{";
  private static final HttpClient HTTP = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();

  /** One scrape of {@code url}, or null when the endpoint does not answer (the run goes on without). */
  public static String scrape(URI url) {
    if (url == null) {
      return null;
    }
    try {
      HttpResponse<String> r = HTTP.send(HttpRequest.newBuilder(url).timeout(Duration.ofSeconds(5)).build(),
          HttpResponse.BodyHandlers.ofString());
      return r.statusCode() == 200 ? r.body() : null;
    } catch (IOException e) {
      return null;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return null;
    }
  }

  /** Each method's latency between the two scrapes; empty when either scrape is missing. */
  public static List<ServerLatency> between(String before, String after, Collection<String> methods) {
    List<ServerLatency> out = new ArrayList<>();
    if (before == null || after == null) {
      return out;
    }
    for (String m : methods) {
      TreeMap<Double, Double> b = buckets(before, m);
      TreeMap<Double, Double> a = buckets(after, m);
      TreeMap<Double, Double> delta = new TreeMap<>();
      a.forEach((le, n) -> delta.put(le, n - b.getOrDefault(le, 0.0)));
      double calls = delta.getOrDefault(Double.POSITIVE_INFINITY, 0.0);
      out.add(new ServerLatency(m, (long) calls, quantile(0.5, delta) * 1000, quantile(0.99, delta) * 1000,
          excerpt(before, m), excerpt(after, m)));
    }
    return out;
  }

  /** Cumulative bucket counts of {@code method}'s OK calls, by upper bound in seconds. */
  static TreeMap<Double, Double> buckets(String scrape, String method) {
    TreeMap<Double, Double> buckets = new TreeMap<>();
    for (String line : scrape.split("\n")) {
      if (!line.startsWith(BUCKET) || !line.contains("method=\"" + method + "\"") || !line.contains("code=\"OK\"")) {
        continue;
      }
      int le = line.indexOf("le=\"") + 4;
      String bound = line.substring(le, line.indexOf('"', le));
      double upper = bound.equals("+Inf") ? Double.POSITIVE_INFINITY : Double.parseDouble(bound);
      buckets.put(upper, Double.parseDouble(line.substring(line.lastIndexOf(' ') + 1)));
    }
    return buckets;
  }

  /** Prometheus's histogram_quantile: linear within the bucket the rank falls in; NaN without calls. */
  static double quantile(double q, TreeMap<Double, Double> cumulative) {
    double total = cumulative.getOrDefault(Double.POSITIVE_INFINITY, 0.0);
    if (total <= 0) {
      return Double.NaN;
    }
    double rank = q * total;
    double lower = 0;
    double below = 0;
    for (Map.Entry<Double, Double> e : cumulative.entrySet()) {
      if (e.getValue() >= rank) {
        if (e.getKey().isInfinite()) {
          return lower; // beyond the last finite bound: its bound is all we know
        }
        double inBucket = e.getValue() - below;
        return inBucket <= 0 ? e.getKey() : lower + (e.getKey() - lower) * (rank - below) / inBucket;
      }
      lower = e.getKey();
      below = e.getValue();
    }
    return lower;
  }

  private static String excerpt(String scrape, String method) {
    StringBuilder sb = new StringBuilder();
    for (String line : scrape.split("\n")) {
      if (line.startsWith("contextmemory_rpc_server_duration_seconds") && line.contains("method=\"" + method + "\"")
          && line.contains("code=\"OK\"")) {
        sb.append(line).append('\n');
      }
    }
    return sb.toString();
  }
}

package dev.contextmemory.server.testing;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.Arrays;

/** One scrape of a metrics endpoint in the Prometheus text format, and look-ups of its samples. */
public record Scrape(String text) {
  private static final HttpClient HTTP = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();

  public static Scrape of(int port) {
    try {
      HttpResponse<String> r = HTTP.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/metrics"))
          .timeout(Duration.ofSeconds(10)).build(), HttpResponse.BodyHandlers.ofString());
      if (r.statusCode() != 200) {
        throw new AssertionError("scrape answered " + r.statusCode() + ": " + r.body());
      }
      return new Scrape(r.body());
    } catch (IOException e) {
      throw new java.io.UncheckedIOException(e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
  }

  /**
   * The value of the sample {@code name} whose labels include every {@code label="value"} pair
   * given (as "label", "value", ...), or 0 if there is none: a counter that never moved.
   */
  public double value(String name, String... labels) {
    Double v = find(name, labels);
    return v == null ? 0 : v;
  }

  /** The sum of every sample {@code name} whose labels include the pairs given (heap over its pools, say). */
  public double sum(String name, String... labels) {
    double total = 0;
    for (String line : text.split("\n")) {
      if (!line.startsWith("#") && (line.startsWith(name + "{") || line.startsWith(name + " "))
          && matches(line.substring(0, line.lastIndexOf(' ')), labels)) {
        total += Double.parseDouble(line.substring(line.lastIndexOf(' ') + 1));
      }
    }
    return total;
  }

  private static boolean matches(String series, String... labels) {
    for (int i = 0; i < labels.length; i += 2) {
      if (!series.contains(labels[i] + "=\"" + labels[i + 1] + "\"")) {
        return false;
      }
    }
    return true;
  }

  /** Whether a sample {@code name} with these labels is exposed at all. */
  public boolean has(String name, String... labels) {
    return find(name, labels) != null;
  }

  private Double find(String name, String... labels) {
    for (String line : text.split("\n")) {
      if (line.startsWith("#") || !(line.startsWith(name + "{") || line.startsWith(name + " "))) {
        continue;
      }
      int space = line.lastIndexOf(' ');
      String series = line.substring(0, space);
      boolean all = true;
      for (int i = 0; i < labels.length; i += 2) {
        all &= series.contains(labels[i] + "=\"" + labels[i + 1] + "\"");
      }
      if (all) {
        return Double.parseDouble(line.substring(space + 1));
      }
    }
    return null;
  }

  /** The lines whose series name starts with one of the prefixes, for a readable excerpt. */
  public String excerpt(String... prefixes) {
    return String.join("\n", Arrays.stream(text.split("\n"))
        .filter(l -> !l.startsWith("#") && Arrays.stream(prefixes).anyMatch(l::startsWith)).toList());
  }
}

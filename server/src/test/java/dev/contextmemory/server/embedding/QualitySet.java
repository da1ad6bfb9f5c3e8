package dev.contextmemory.server.embedding;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * The labelled recall set in src/test/resources/quality: 208 short facts about 8 customers (26
 * topics each) and 128 queries, each phrased differently from the one fact it should find among
 * its customer's 26 ("where do they live" finds "Lives at 12 Elm Street, Springfield.").
 */
public final class QualitySet {
  public record Fact(String id, String customer, String content) {}

  public record Query(String customer, String text, String factId) {}

  private QualitySet() {}

  public static List<Fact> facts() {
    return read("facts.tsv").stream().map(c -> new Fact(c[0], c[1], c[2])).toList();
  }

  public static List<Query> queries() {
    return read("queries.tsv").stream().map(c -> new Query(c[0], c[1], c[2])).toList();
  }

  private static List<String[]> read(String name) {
    try (var in = QualitySet.class.getResourceAsStream("/quality/" + name);
        var r = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8))) {
      List<String[]> rows = new ArrayList<>();
      r.readLine(); // header
      for (String line = r.readLine(); line != null; line = r.readLine()) {
        if (!line.isBlank()) {
          rows.add(line.split("\t", -1));
        }
      }
      return rows;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}

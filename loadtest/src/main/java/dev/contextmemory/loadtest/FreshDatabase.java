package dev.contextmemory.loadtest;

import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.Locale;
import java.util.UUID;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A new, empty database on a PostgreSQL cluster for one run (so every run measures the same data
 * set, not what earlier runs left behind), dropped afterwards unless kept.
 */
final class FreshDatabase implements AutoCloseable {
  private static final Pattern JDBC = Pattern.compile("^(jdbc:postgresql://[^/]+/)([^?]*)(\\?.*)?$");

  private final String clusterUrl;
  private final String name;
  private final String url;
  private final boolean keep;

  private FreshDatabase(String clusterUrl, String name, String url, boolean keep) {
    this.clusterUrl = clusterUrl;
    this.name = name;
    this.url = url;
    this.keep = keep;
  }

  static FreshDatabase create(String clusterUrl, boolean keep) throws SQLException {
    Matcher m = JDBC.matcher(clusterUrl);
    if (!m.matches()) {
      throw new IllegalArgumentException("--db-url is not a jdbc:postgresql://host:port/db URL: " + clusterUrl);
    }
    String name = "cm_loadtest_" + UUID.randomUUID().toString().replace("-", "").substring(0, 12)
        .toLowerCase(Locale.ROOT);
    try (Connection c = DriverManager.getConnection(clusterUrl); Statement s = c.createStatement()) {
      s.execute("CREATE DATABASE " + name);
    }
    return new FreshDatabase(clusterUrl, name, m.group(1) + name + (m.group(3) == null ? "" : m.group(3)), keep);
  }

  String url() {
    return url;
  }

  String name() {
    return name;
  }

  @Override
  public void close() {
    if (keep) {
      return;
    }
    try (Connection c = DriverManager.getConnection(clusterUrl); Statement s = c.createStatement()) {
      s.execute("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)");
    } catch (SQLException e) {
      System.err.println("loadtest: could not drop database " + name + ": " + e.getMessage());
    }
  }
}

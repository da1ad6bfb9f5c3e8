package dev.contextmemory.server.testing;

import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.Locale;
import java.util.UUID;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Real PostgreSQL for tests: every call makes a fresh, empty database on the server that
 * CONTEXT_MEMORY_TEST_DB_URL (set by scripts/test from scripts/dev-db) points at, and drops it when
 * the JVM exits, so concurrent runs from two checkouts never see each other's rows.
 */
public final class TestDatabase {
  private static final Pattern JDBC = Pattern.compile("^(jdbc:postgresql://[^/]+/)([^?]*)(\\?.*)?$");

  private TestDatabase() {}

  /** The configured server's URL (its own database is only used to issue CREATE DATABASE). */
  public static String baseUrl() {
    String url = System.getenv("CONTEXT_MEMORY_TEST_DB_URL");
    if (url == null || url.isBlank()) {
      url = System.getenv("CONTEXT_MEMORY_DB_URL");
    }
    if (url == null || url.isBlank()) {
      throw new IllegalStateException("CONTEXT_MEMORY_TEST_DB_URL is not set: run the tests through scripts/test,"
          + " or point it at a PostgreSQL with pgvector (e.g. the URL scripts/dev-db start prints)");
    }
    return url;
  }

  /** Creates an empty database and returns its JDBC URL. */
  public static String create() {
    String name = "cm_test_" + UUID.randomUUID().toString().replace("-", "").substring(0, 16).toLowerCase(Locale.ROOT);
    String base = baseUrl();
    try (Connection c = DriverManager.getConnection(base); Statement s = c.createStatement()) {
      s.execute("CREATE DATABASE " + name);
    } catch (SQLException e) {
      throw new IllegalStateException("cannot create test database on " + base + ": " + e.getMessage(), e);
    }
    Runtime.getRuntime().addShutdownHook(new Thread(() -> drop(name)));
    return withDatabase(base, name);
  }

  /** Drops a database made by {@link #create()}, closing whatever is still connected to it. */
  public static void drop(String nameOrUrl) {
    String name = nameOrUrl.startsWith("jdbc:") ? databaseName(nameOrUrl) : nameOrUrl;
    try (Connection c = DriverManager.getConnection(baseUrl()); Statement s = c.createStatement()) {
      s.execute("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)");
    } catch (SQLException e) {
      System.err.println("could not drop test database " + name + ": " + e.getMessage());
    }
  }

  static String withDatabase(String url, String db) {
    Matcher m = JDBC.matcher(url);
    if (!m.matches()) {
      throw new IllegalArgumentException("not a jdbc:postgresql://host:port/db URL: " + url);
    }
    return m.group(1) + db + (m.group(3) == null ? "" : m.group(3));
  }

  public static String databaseName(String url) {
    Matcher m = JDBC.matcher(url);
    if (!m.matches()) {
      throw new IllegalArgumentException("not a jdbc:postgresql://host:port/db URL: " + url);
    }
    return m.group(2);
  }
}

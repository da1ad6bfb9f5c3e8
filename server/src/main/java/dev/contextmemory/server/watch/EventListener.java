package dev.contextmemory.server.watch;

import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.Properties;
import org.postgresql.PGConnection;
import org.postgresql.PGNotification;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * LISTENs on one channel over a connection of its own, outside the request pool (a listening
 * connection is held for the server's life and must not take a request's connection). Each
 * notification, and each (re)connection, calls {@code onWake}: after a reconnect the reader re-reads
 * from its own position, so a notification lost while the connection was down loses nothing. When
 * the connection drops it reconnects with exponential backoff (100 ms doubling to 5 s).
 */
final class EventListener implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(EventListener.class);
  private static final Duration MIN_BACKOFF = Duration.ofMillis(100);
  private static final Duration MAX_BACKOFF = Duration.ofSeconds(5);
  /** How long one wait for notifications blocks; also how soon close() is noticed. */
  private static final int POLL_MS = 500;

  private final String url;
  private final Properties props;
  private final String channel;
  private final Runnable onWake;
  private final Thread thread;
  private volatile boolean closed;
  private volatile Connection connection;
  private volatile long reconnects;

  EventListener(String url, String user, String password, String applicationName, String channel, Runnable onWake) {
    this.url = url;
    this.props = new Properties();
    if (user != null && !user.isEmpty()) {
      props.setProperty("user", user);
    }
    if (password != null && !password.isEmpty()) {
      props.setProperty("password", password);
    }
    props.setProperty("ApplicationName", applicationName + "-listen");
    props.setProperty("tcpKeepAlive", "true");
    props.setProperty("connectTimeout", "5");
    props.setProperty("socketTimeout", "0");
    this.channel = channel;
    this.onWake = onWake;
    this.thread = new Thread(this::run, "watch-listen");
    thread.setDaemon(true);
    thread.start();
  }

  private void run() {
    Duration backoff = MIN_BACKOFF;
    while (!closed) {
      try (Connection c = DriverManager.getConnection(url, props)) {
        connection = c;
        try (Statement st = c.createStatement()) {
          st.execute("LISTEN " + channel);
        }
        backoff = MIN_BACKOFF;
        onWake.run(); // anything committed while we were not listening
        PGConnection pg = c.unwrap(PGConnection.class);
        while (!closed) {
          PGNotification[] got = pg.getNotifications(POLL_MS);
          if (got != null && got.length > 0) {
            onWake.run();
          }
          if (c.isClosed()) {
            throw new SQLException("listen connection closed");
          }
        }
      } catch (SQLException | RuntimeException e) {
        if (closed) {
          return;
        }
        reconnects++;
        log.warn("watch listener lost its database connection ({}); reconnecting in {} ms", e.getMessage(),
            backoff.toMillis());
        onWake.run(); // the poller's own interval covers the gap; wake it once now anyway
        try {
          Thread.sleep(backoff.toMillis());
        } catch (InterruptedException ie) {
          return;
        }
        backoff = backoff.multipliedBy(2).compareTo(MAX_BACKOFF) > 0 ? MAX_BACKOFF : backoff.multipliedBy(2);
      } finally {
        connection = null;
      }
    }
  }

  /** Times the connection was lost since start (metrics and tests). */
  long reconnects() {
    return reconnects;
  }

  /** The backend pid of the listening connection, or -1 while disconnected (tests terminate it). */
  int backendPid() {
    Connection c = connection;
    try {
      return c == null ? -1 : c.unwrap(PGConnection.class).getBackendPID();
    } catch (SQLException e) {
      return -1;
    }
  }

  @Override
  public void close() {
    closed = true;
    thread.interrupt();
    try {
      thread.join(2000);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}

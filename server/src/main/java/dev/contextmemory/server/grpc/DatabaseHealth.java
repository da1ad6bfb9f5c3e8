package dev.contextmemory.server.grpc;

import dev.contextmemory.server.config.Settings;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.protobuf.services.HealthStatusManager;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.Statement;
import java.time.Duration;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Reports through the standard gRPC health service whether this server can do its job, from the
 * last probe of the database, so a Health/Check never waits on the database or on API calls.
 *
 * <p>Each probe opens a fresh connection of its own (not one of the pool's, which may all be busy
 * with a held lock while the database answers fine) and asks whether the database accepts
 * writes. SERVING needs an answer within the probe timeout and a writable database; a database
 * that does not answer in time (down, frozen, partitioned) or is read-only (a standby, or
 * {@code default_transaction_read_only}) turns every registered service and the server as a
 * whole ({@code ""}) NOT_SERVING. So a hung database is noticed within interval + timeout. While
 * the database is down, it is probed every {@value #DOWN_RECHECK_MS} ms, so calls flow again
 * soon after it returns; {@link #databaseDown()} lets calls fail at once meanwhile.
 */
public final class DatabaseHealth implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(DatabaseHealth.class);
  /** How often a database that is down is probed again. */
  static final long DOWN_RECHECK_MS = 200;

  /** What the last probe found. */
  public enum State { UNKNOWN, SERVING, READ_ONLY, DOWN }

  private final HealthStatusManager health = new HealthStatusManager();
  private final Settings settings;
  private final List<String> services;
  private final Duration timeout;
  private final ScheduledExecutorService timer = daemon("db-health");
  // One probe at a time: a probe stuck on a frozen host is not joined by more of them.
  private final ExecutorService prober = Executors.newSingleThreadExecutor(r -> thread(r, "db-health-probe"));
  private Future<State> running;
  private volatile State state = State.UNKNOWN;
  private final java.util.concurrent.atomic.AtomicLong transitions = new java.util.concurrent.atomic.AtomicLong();
  private volatile Runnable onRecovery = () -> {};
  private volatile boolean closed;

  public DatabaseHealth(Settings settings, List<String> services) {
    this.settings = settings;
    this.services = List.copyOf(services);
    this.timeout = settings.healthCheckTimeout();
    publish(ServingStatus.NOT_SERVING);
  }

  public HealthStatusManager manager() {
    return health;
  }

  /** Runs when a probe finds the database answering again after it was down. */
  public void onRecovery(Runnable action) {
    this.onRecovery = action;
  }

  /** Whether the last probe found the database not answering: calls may fail at once. */
  public boolean databaseDown() {
    return state == State.DOWN;
  }

  /** Whether health reports SERVING now (metrics). */
  public boolean serving() {
    return state == State.SERVING;
  }

  /** How often the probed state changed (SERVING, READ_ONLY, DOWN) since start-up (metrics). */
  public long transitions() {
    return transitions.get();
  }

  public State state() {
    return state;
  }

  /** Probes now, then every interval (every {@value #DOWN_RECHECK_MS} ms while down). */
  public void start() {
    check();
    schedule();
  }

  private void schedule() {
    if (closed) {
      return;
    }
    long delay = state == State.DOWN ? Math.min(DOWN_RECHECK_MS, settings.healthCheckInterval().toMillis())
        : settings.healthCheckInterval().toMillis();
    try {
      timer.schedule(() -> {
        check();
        schedule();
      }, delay, TimeUnit.MILLISECONDS);
    } catch (java.util.concurrent.RejectedExecutionException shutDown) {
      // closed meanwhile
    }
  }

  synchronized void check() {
    if (closed) {
      return;
    }
    State found;
    try {
      if (running == null || running.isDone()) {
        running = prober.submit(this::probe);
      }
      found = running.get(timeout.toMillis(), TimeUnit.MILLISECONDS);
    } catch (TimeoutException e) {
      found = State.DOWN; // no answer in time: the probe keeps waiting, bounded by its socket timeout
    } catch (ExecutionException e) {
      found = State.DOWN;
      if (state != State.DOWN) {
        log.warn("database probe failed: {}", e.getCause().toString());
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return;
    } catch (java.util.concurrent.RejectedExecutionException e) {
      return; // closed meanwhile
    }
    State before = state;
    if (found == before || closed) {
      return;
    }
    state = found;
    transitions.incrementAndGet();
    log.info("database {}: health {}", switch (found) {
      case SERVING -> "answers";
      case READ_ONLY -> "is read-only (a standby, or default_transaction_read_only)";
      default -> "does not answer (the probe failed or took over " + timeout.toMillis() + " ms)";
    }, found == State.SERVING ? "SERVING" : "NOT_SERVING");
    publish(found == State.SERVING ? ServingStatus.SERVING : ServingStatus.NOT_SERVING);
    if (before == State.DOWN && found != State.DOWN) {
      try {
        onRecovery.run();
      } catch (RuntimeException e) {
        log.warn("recovery action failed: {}", e.toString());
      }
    }
  }

  /** One round trip on a fresh connection: does the database answer, and does it take writes? */
  private State probe() throws Exception {
    try (Connection c = DriverManager.getConnection(settings.dbUrl(), connectionProperties());
        Statement st = c.createStatement();
        ResultSet rs = st.executeQuery(
            "SELECT pg_is_in_recovery() OR current_setting('transaction_read_only')::boolean")) {
      rs.next();
      return rs.getBoolean(1) ? State.READ_ONLY : State.SERVING;
    }
  }

  private Properties connectionProperties() {
    Properties p = new Properties();
    if (!settings.dbUser().isEmpty()) {
      p.setProperty("user", settings.dbUser());
    }
    if (!settings.dbPassword().isEmpty()) {
      p.setProperty("password", settings.dbPassword());
    }
    p.setProperty("ApplicationName", settings.applicationName() + " health");
    // A probe abandoned after the timeout still ends soon: these bound a hung host's connect and
    // read (pgjdbc counts them in whole seconds).
    String seconds = Long.toString(timeout.toSeconds() + 2);
    p.setProperty("connectTimeout", seconds);
    p.setProperty("loginTimeout", seconds);
    p.setProperty("socketTimeout", seconds);
    return p;
  }

  private synchronized void publish(ServingStatus status) {
    health.setStatus("", status);
    for (String s : services) {
      health.setStatus(s, status);
    }
  }

  /** Stops probing and reports NOT_SERVING for good (start of shutdown). */
  @Override
  public void close() {
    closed = true;
    timer.shutdownNow();
    prober.shutdownNow();
    health.enterTerminalState();
  }

  private static ScheduledExecutorService daemon(String name) {
    return Executors.newSingleThreadScheduledExecutor(r -> thread(r, name));
  }

  private static Thread thread(Runnable r, String name) {
    Thread t = new Thread(r, name);
    t.setDaemon(true);
    return t;
  }
}

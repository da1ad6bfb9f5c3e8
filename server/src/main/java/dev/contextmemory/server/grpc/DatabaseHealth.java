package dev.contextmemory.server.grpc;

import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.protobuf.services.HealthStatusManager;
import java.sql.Connection;
import java.sql.SQLTransientConnectionException;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import javax.sql.DataSource;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Reports SERVING through the standard gRPC health service only while the database answers:
 * checks it every interval and flips every registered service (and the server as a whole, "")
 * between SERVING and NOT_SERVING. A pool that is merely busy still counts as answering.
 */
public final class DatabaseHealth implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(DatabaseHealth.class);

  private final HealthStatusManager health = new HealthStatusManager();
  private final DataSource ds;
  private final List<String> services;
  private final ScheduledExecutorService timer = Executors.newSingleThreadScheduledExecutor(r -> {
    Thread t = new Thread(r, "db-health");
    t.setDaemon(true);
    return t;
  });
  private volatile boolean serving;
  private final java.util.concurrent.atomic.AtomicLong transitions = new java.util.concurrent.atomic.AtomicLong();
  private volatile boolean closed;

  public DatabaseHealth(DataSource ds, List<String> services) {
    this.ds = ds;
    this.services = List.copyOf(services);
    set(ServingStatus.NOT_SERVING);
  }

  public HealthStatusManager manager() {
    return health;
  }

  /** Checks now, then every {@code interval}. */
  public void start(Duration interval) {
    check();
    timer.scheduleWithFixedDelay(this::check, interval.toMillis(), interval.toMillis(), TimeUnit.MILLISECONDS);
  }

  void check() {
    if (closed) {
      return;
    }
    boolean up;
    try (Connection c = ds.getConnection()) {
      up = c.isValid(2);
    } catch (SQLTransientConnectionException e) {
      up = e.getCause() == null; // every connection busy: the database answers, we are just loaded
    } catch (Exception e) {
      up = false;
    }
    if (up != serving && !closed) {
      log.info("database {}: health {}", up ? "answers" : "does not answer", up ? "SERVING" : "NOT_SERVING");
      transitions.incrementAndGet();
      set(up ? ServingStatus.SERVING : ServingStatus.NOT_SERVING);
    }
  }

  /** Whether health reports SERVING now (metrics). */
  public boolean serving() {
    return serving;
  }

  /** How often health flipped between SERVING and NOT_SERVING since start-up (metrics). */
  public long transitions() {
    return transitions.get();
  }

  private synchronized void set(ServingStatus status) {
    serving = status == ServingStatus.SERVING;
    health.setStatus("", status);
    for (String s : services) {
      health.setStatus(s, status);
    }
  }

  /** Stops checking and reports NOT_SERVING for good (start of shutdown). */
  @Override
  public void close() {
    closed = true;
    timer.shutdownNow();
    health.enterTerminalState();
  }
}

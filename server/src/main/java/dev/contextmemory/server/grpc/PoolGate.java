package dev.contextmemory.server.grpc;

import com.zaxxer.hikari.HikariDataSource;
import com.zaxxer.hikari.pool.HikariPool;
import io.grpc.Context;
import io.grpc.Deadline;
import java.io.PrintWriter;
import java.sql.Connection;
import java.sql.SQLException;
import java.sql.SQLFeatureNotSupportedException;
import java.sql.SQLTransientConnectionException;
import java.time.Duration;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.function.Supplier;
import javax.sql.DataSource;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The data source every store borrows through: it hands out the pool's connections on behalf of the
 * gRPC call in the current {@link Context}, and
 * <ul>
 *   <li>never for a call that has already ended or whose deadline has passed (SQLSTATE 57014,
 *       answered DEADLINE_EXCEEDED or CANCELLED without touching the pool);
 *   <li>never waits longer than the call's remaining deadline (less a margin, so the answer,
 *       RESOURCE_EXHAUSTED, reaches the caller before its deadline does), nor longer than the
 *       configured connection timeout;
 *   <li>never while {@link DatabaseHealth} knows the database is down: such calls answer
 *       UNAVAILABLE at once instead of each waiting out the connection timeout.
 * </ul>
 * When the database returns after an outage, {@link #refresh()} replaces a pool that lost
 * connections with a fresh one: HikariCP refills a pool with a back-off that grows to 5 s during an
 * outage, so the old pool could take that long to serve again; a fresh pool connects at once. The
 * old pool is closed once its last borrowed connection is back.
 */
public final class PoolGate implements DataSource, AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(PoolGate.class);
  /**
   * Margin kept between the end of a connection wait and the call's deadline: a quarter of what is
   * left, within [100 ms, 500 ms], so that mapping and sending the answer still fit on a loaded
   * host (100 ms flat let a 3 s call time out under a full test run on 2 busy cores).
   */
  private static final long MIN_MARGIN_MS = 100;
  private static final long MAX_MARGIN_MS = 500;

  private final Supplier<HikariDataSource> factory;
  private final long maxWaitMs;
  private final BooleanSupplier databaseDown;
  private final Duration retireWithin;
  private final ExecutorService retirements = Executors.newSingleThreadExecutor(r -> {
    Thread t = new Thread(r, "pool-retire");
    t.setDaemon(true);
    return t;
  });
  private volatile HikariDataSource pool;

  /**
   * @param factory makes a pool (called now, and again on {@link #refresh()})
   * @param maxWait the longest any borrower waits for a connection
   * @param databaseDown whether the database is known to be down
   * @param retireWithin how long a replaced pool's borrowed connections may stay out
   */
  public PoolGate(Supplier<HikariDataSource> factory, Duration maxWait, BooleanSupplier databaseDown,
      Duration retireWithin) {
    this.factory = factory;
    this.maxWaitMs = maxWait.toMillis();
    this.databaseDown = databaseDown;
    this.retireWithin = retireWithin;
    this.pool = factory.get();
  }

  /** The pool in use now. */
  public HikariDataSource pool() {
    return pool;
  }

  @Override
  public Connection getConnection() throws SQLException {
    long wait = maxWaitMs;
    Context call = Context.current();
    if (call.isCancelled()) {
      throw new SQLException("the gRPC call ended before it got a database connection", "57014");
    }
    Deadline deadline = call.getDeadline();
    if (deadline != null) {
      long left = deadline.timeRemaining(TimeUnit.MILLISECONDS);
      if (left <= 0) {
        throw new SQLException("the gRPC call's deadline passed before it got a database connection", "57014");
      }
      long margin = Math.max(MIN_MARGIN_MS, Math.min(MAX_MARGIN_MS, left / 4));
      wait = Math.min(wait, Math.max(1, left - margin));
    }
    if (databaseDown.getAsBoolean()) {
      // With a cause, like HikariCP's own "could not connect": the error mapper says UNAVAILABLE.
      throw new SQLTransientConnectionException("the database did not answer the last health probe", "08001",
          new SQLException("database down (health probe)", "08001"));
    }
    HikariDataSource p = pool;
    if (p.getHikariPoolMXBean() instanceof HikariPool hikari) {
      return hikari.getConnection(wait);
    }
    return p.getConnection(); // closed meanwhile: HikariDataSource says so
  }

  /**
   * Called when the database answers again after an outage: swaps in a fresh pool if this one has
   * lost connections, and retires the old one.
   */
  public synchronized void refresh() {
    HikariDataSource old = pool;
    var stats = old.getHikariPoolMXBean();
    if (stats != null && stats.getTotalConnections() >= old.getMaximumPoolSize()) {
      return; // nothing was lost (a probe timed out under load, say)
    }
    HikariDataSource fresh;
    try {
      fresh = factory.get();
    } catch (RuntimeException e) {
      // Gone again already: the old pool refills by itself, and the next recovery tries again.
      log.warn("database back, but a fresh pool could not connect: {}", e.toString());
      return;
    }
    pool = fresh;
    log.info("database back: replaced the connection pool ({} of {} connections left)",
        stats == null ? 0 : stats.getTotalConnections(), old.getMaximumPoolSize());
    retirements.execute(() -> retire(old));
  }

  private void retire(HikariDataSource old) {
    long until = System.nanoTime() + retireWithin.toNanos();
    try {
      while (old.getHikariPoolMXBean() != null && old.getHikariPoolMXBean().getActiveConnections() > 0
          && System.nanoTime() < until) {
        Thread.sleep(50);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    old.close();
  }

  @Override
  public void close() {
    retirements.shutdown();
    try {
      retirements.awaitTermination(retireWithin.toMillis() + 1000, TimeUnit.MILLISECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    pool.close();
  }

  @Override
  public Connection getConnection(String username, String password) throws SQLException {
    throw new SQLFeatureNotSupportedException("the pool's credentials are fixed");
  }

  @Override
  public PrintWriter getLogWriter() throws SQLException {
    return pool.getLogWriter();
  }

  @Override
  public void setLogWriter(PrintWriter out) throws SQLException {
    pool.setLogWriter(out);
  }

  @Override
  public void setLoginTimeout(int seconds) throws SQLException {
    pool.setLoginTimeout(seconds);
  }

  @Override
  public int getLoginTimeout() throws SQLException {
    return pool.getLoginTimeout();
  }

  @Override
  public java.util.logging.Logger getParentLogger() throws SQLFeatureNotSupportedException {
    throw new SQLFeatureNotSupportedException();
  }

  @Override
  public <T> T unwrap(Class<T> iface) throws SQLException {
    if (iface.isInstance(this)) {
      return iface.cast(this);
    }
    return pool.unwrap(iface);
  }

  @Override
  public boolean isWrapperFor(Class<?> iface) throws SQLException {
    return iface.isInstance(this) || pool.isWrapperFor(iface);
  }
}

package dev.contextmemory.server.grpc;

import dev.contextmemory.server.store.PlainStatements;
import io.grpc.Context;
import java.sql.PreparedStatement;
import java.sql.SQLException;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import org.jdbi.v3.core.statement.StatementContext;
import org.jdbi.v3.core.statement.StatementCustomizer;

/**
 * Ties every SQL statement to the gRPC call it runs for: when the call's deadline passes or the
 * client cancels, the running statement is cancelled in PostgreSQL, so a caller that gave up stops
 * costing a connection and a backend. A statement about to start for an already-dead call fails
 * at once with SQLSTATE 57014 (query_canceled), which the error mapper reports as
 * DEADLINE_EXCEEDED or CANCELLED. Outside a call (start-up, background jobs) it does nothing.
 */
public final class CancelStatementOnCallEnd implements StatementCustomizer, PlainStatements.Listener, AutoCloseable {
  /**
   * pgjdbc's cancel is a no-op while the statement is not yet in its query (bound, about to be
   * sent): a call that ends in that instant would leave its statement running to the lock or
   * statement timeout. So the cancel is repeated after these delays (ms) until the statement has
   * finished; a few tries cover the gap between watching a statement and sending it.
   */
  private static final long[] RETRY_MILLIS = {20, 100, 500, 2_000};

  // pgjdbc's cancel opens a fresh connection to send the cancel request; keep that off gRPC's
  // deadline timer thread.
  private final ScheduledExecutorService cancels = Executors.newSingleThreadScheduledExecutor(r -> {
    Thread t = new Thread(r, "sql-cancel");
    t.setDaemon(true);
    return t;
  });
  private final AtomicLong cancelled = new AtomicLong();
  private final AtomicLong refused = new AtomicLong();

  @Override
  public void beforeExecution(PreparedStatement stmt, StatementContext ctx) throws SQLException {
    Runnable unwatch = watch(stmt);
    if (unwatch != null) {
      ctx.addCleanable(unwatch::run);
    }
  }

  /** The same for the stores' plain JDBC statements. */
  @Override
  public PlainStatements.Finish started(PreparedStatement stmt, String sql) throws SQLException {
    Runnable unwatch = watch(stmt);
    return unwatch == null ? null : (rows, failure) -> unwatch.run();
  }

  /** Refuses the statement of an ended call, or cancels it when its call ends; returns the undo. */
  private Runnable watch(PreparedStatement stmt) throws SQLException {
    Context call = Context.current();
    if (call == Context.ROOT) {
      return null;
    }
    if (call.isCancelled()) {
      refused.incrementAndGet();
      throw new SQLException("the gRPC call ended before the statement started", "57014");
    }
    AtomicBoolean finished = new AtomicBoolean();
    Context.CancellationListener listener = c -> {
      cancelled.incrementAndGet();
      cancel(stmt, finished, 0);
    };
    call.addListener(listener, cancels);
    return () -> {
      finished.set(true);
      call.removeListener(listener);
    };
  }

  private void cancel(PreparedStatement stmt, AtomicBoolean finished, int attempt) {
    if (finished.get()) {
      return;
    }
    try {
      stmt.cancel(); // a no-op once the statement has finished, and before it is sent
    } catch (SQLException ignored) {
      // The statement or connection is already gone: nothing left to cancel.
    }
    if (attempt < RETRY_MILLIS.length) {
      try {
        cancels.schedule(() -> cancel(stmt, finished, attempt + 1), RETRY_MILLIS[attempt], TimeUnit.MILLISECONDS);
      } catch (java.util.concurrent.RejectedExecutionException closing) {
        // The server is closing; the pool's close ends the statement.
      }
    }
  }

  /** Statements cancelled in PostgreSQL because their call ended while they ran (metrics). */
  public long cancelledTotal() {
    return cancelled.get();
  }

  /** Statements refused because their call had ended before they started (metrics). */
  public long refusedTotal() {
    return refused.get();
  }

  @Override
  public void close() {
    cancels.shutdownNow();
  }
}

package dev.contextmemory.server.store;

import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;

/**
 * The one lock of the background sweep: whichever server of those sharing a database gets it runs
 * the whole round (every batch of the expiry sweep and of the retention purge), and the others skip
 * theirs, so rounds of different servers never interleave.
 *
 * <p>It is a transaction-level advisory lock held by a transaction kept open, on a connection of
 * its own, for the round, while the batches commit one by one on pool connections. Not a
 * session-level lock: through a transaction-mode pooler (PgBouncer {@code pool_mode=transaction})
 * a session lock stays on whichever server connection took it and is never released by us, while an
 * open transaction pins one server connection until it ends. The transaction writes nothing and
 * holds no snapshot between statements, so it holds back neither vacuum nor anyone's row locks.
 */
public final class SweepLock {
  /** The advisory lock key: one sweeper per database, whichever server gets it. */
  public static final long KEY = 0x636d5f7377656570L; // "cm_sweep"
  /**
   * How long the holder may sit idle between two batches before PostgreSQL ends it (and with it the
   * lock): a frozen server gives up the sweep within this; a batch that outlasts it ends the round.
   */
  static final int HOLDER_IDLE_TIMEOUT_MS = 300_000;

  /** Opens the holder's connection (outside the request pool, which may have one connection only). */
  @FunctionalInterface
  public interface Connector {
    Connection open() throws SQLException;
  }

  private final Connector connector;

  public SweepLock(Connector connector) {
    this.connector = connector;
  }

  /** The lock for one round, or null when another server holds it. */
  public Held tryAcquire() throws SQLException {
    Connection c = connector.open();
    try {
      c.setAutoCommit(false);
      try (Statement st = c.createStatement();
          ResultSet rs = st.executeQuery("SELECT set_config('idle_in_transaction_session_timeout', '"
              + HOLDER_IDLE_TIMEOUT_MS + "', true), pg_try_advisory_xact_lock(" + KEY + ")")) {
        rs.next();
        if (rs.getBoolean(2)) {
          return new Held(c);
        }
      }
      c.rollback();
      c.close();
      return null;
    } catch (SQLException | RuntimeException e) {
      c.close();
      throw e;
    }
  }

  /** A held round lock; closing it ends the transaction and so releases the lock. */
  public static final class Held implements AutoCloseable {
    private final Connection connection;

    private Held(Connection connection) {
      this.connection = connection;
    }

    /**
     * Whether the lock is still held: false when the holder's session ended (the database
     * restarted, or the idle timeout ended it), in which case the round must stop.
     */
    public boolean stillHeld() {
      try (Statement st = connection.createStatement(); ResultSet rs = st.executeQuery("SELECT 1")) {
        return rs.next();
      } catch (SQLException e) {
        return false;
      }
    }

    @Override
    public void close() {
      try (connection) {
        connection.rollback();
      } catch (SQLException e) {
        // The session is gone already, and the lock with it.
      }
    }
  }
}

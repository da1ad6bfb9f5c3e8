package dev.contextmemory.server.store;

import java.sql.PreparedStatement;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.List;
import javax.sql.DataSource;
import org.jdbi.v3.core.config.JdbiConfig;

/**
 * What the hot reads need to run as plain JDBC beside Jdbi ({@link Store#query}): the pool (or the
 * standby router in front of it) and the per-statement listeners that Jdbi would otherwise call,
 * cancellation at the call's end and the SQL spans. A Jdbi setting, like {@link CommitLsn}, so
 * every store finds it on the one Jdbi.
 *
 * <p>Why plain JDBC there: under the ci load, Jdbi's own per-call work (a copied config registry
 * per handle and per statement, named-parameter parsing and cache look-ups, an argument-factory
 * search per bound value, result-iterator set-up) took more CPU than pgjdbc and the network below
 * it, about half of ListConversations' and ListMessages' time in the server (issue 13's profile).
 */
public final class PlainStatements implements JdbiConfig<PlainStatements> {
  /** Told about each plain statement just before it runs. */
  public interface Listener {
    /**
     * Returns what to tell when the statement has finished (null: nothing); throws to refuse it
     * (a call that already ended: SQLSTATE 57014).
     */
    Finish started(PreparedStatement st, String sql) throws SQLException;
  }

  /** The end of one statement: the rows it returned and, if it failed, why. */
  public interface Finish {
    void finished(long rows, SQLException failure);
  }

  private DataSource dataSource;
  private List<Listener> listeners = List.of();

  public PlainStatements() {}

  private PlainStatements(PlainStatements other) {
    this.dataSource = other.dataSource;
    this.listeners = other.listeners;
  }

  /** Where the plain statements get their connections: the data source the Jdbi was created on. */
  public PlainStatements setDataSource(DataSource dataSource) {
    this.dataSource = dataSource;
    return this;
  }

  public PlainStatements addListener(Listener listener) {
    List<Listener> l = new ArrayList<>(listeners);
    l.add(listener);
    listeners = List.copyOf(l);
    return this;
  }

  DataSource dataSource() {
    return dataSource;
  }

  List<Listener> listeners() {
    return listeners;
  }

  @Override
  public PlainStatements createCopy() {
    return new PlainStatements(this);
  }
}

package dev.contextmemory.server.store;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.sql.Types;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.LongConsumer;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.sql.DataSource;
import org.jdbi.v3.core.Handle;
import org.jdbi.v3.core.HandleCallback;
import org.jdbi.v3.core.Jdbi;
import org.jdbi.v3.core.JdbiException;
import org.jdbi.v3.core.mapper.RowMapper;
import org.jdbi.v3.core.statement.Query;
import org.jdbi.v3.core.statement.UnableToExecuteStatementException;

/**
 * Base of the per-aggregate stores: every database round trip goes through {@link #read} or
 * {@link #write}, so a unique violation is translated in exactly one place and a failed transaction
 * always rolls back and returns its connection to the pool.
 */
abstract class Store {
  protected final Jdbi jdbi;

  protected Store(Jdbi jdbi) {
    this.jdbi = jdbi;
  }

  /** One connection, autocommit: for single-statement reads. */
  protected <T> T read(HandleCallback<T, RuntimeException> callback) {
    try {
      return jdbi.withHandle(callback);
    } catch (JdbiException e) {
      throw UniqueViolations.translate(e);
    }
  }

  /**
   * One transaction: committed when the callback returns, rolled back when it throws. With a
   * {@link CommitLsn} sink (standbys configured), the COMMIT and a read of the WAL insert position
   * go to PostgreSQL as one pipelined round trip, the one the commit takes anyway; pgjdbc then sees
   * the session idle, and Jdbi's own commit sends nothing.
   */
  protected <T> T write(HandleCallback<T, RuntimeException> callback) {
    try {
      return jdbi.inTransaction(h -> {
        T result = callback.withHandle(h);
        LongConsumer sink = h.getConfig(CommitLsn.class).sink();
        if (sink != null) {
          commitReporting(h, sink);
        }
        return result;
      });
    } catch (JdbiException e) {
      throw UniqueViolations.translate(e);
    }
  }

  /**
   * A named-parameter statement turned into pgjdbc's positional form once: {@code :name} becomes
   * {@code ?} (a {@code ::cast} stays), and the names are kept in order, a repeated name once per
   * use. The SQL constants stay written as everywhere else (and as the load test's copies); the
   * listeners (the SQL spans) get that named form, as they do for Jdbi's statements, so a trace
   * shows the same text whichever path ran it and DistributionReadinessTest sees the {@code :tenant}.
   */
  protected record Plain(String sql, List<String> names, String named) {
    private static final Pattern NAMED = Pattern.compile("(?<!:):([a-z_][a-z0-9_]*)");
    /** Dynamic statements (list filters) have a few dozen variants at most; the cap only bounds it. */
    private static final int MAX_CACHED = 512;
    private static final Map<String, Plain> CACHE = new ConcurrentHashMap<>();

    public static Plain of(String named) {
      Plain p = CACHE.get(named);
      if (p != null) {
        return p;
      }
      List<String> names = new ArrayList<>();
      Matcher m = NAMED.matcher(named);
      StringBuilder sb = new StringBuilder(named.length());
      while (m.find()) {
        names.add(m.group(1));
        m.appendReplacement(sb, "?");
      }
      m.appendTail(sb);
      p = new Plain(sb.toString(), List.copyOf(names), named);
      if (CACHE.size() < MAX_CACHED) {
        CACHE.putIfAbsent(named, p);
      }
      return p;
    }
  }

  /** A plain statement's parameter values by name, bound with the setters Jdbi would pick. */
  protected static final class Args {
    private final Map<String, Object> values = new HashMap<>();

    public Args set(String name, Object value) {
      values.put(name, value);
      return this;
    }

    void bind(PreparedStatement st, List<String> names) throws SQLException {
      for (int i = 0; i < names.size(); i++) {
        String name = names.get(i);
        if (!values.containsKey(name)) {
          throw new IllegalArgumentException("no value for :" + name);
        }
        Object v = values.get(name);
        int at = i + 1;
        switch (v) {
          case null -> st.setNull(at, Types.VARCHAR);
          case String x -> st.setString(at, x);
          case Integer x -> st.setInt(at, x);
          case Long x -> st.setLong(at, x);
          case Boolean x -> st.setBoolean(at, x);
          case Double x -> st.setDouble(at, x);
          case UUID x -> st.setObject(at, x);
          case java.time.OffsetDateTime x -> st.setObject(at, x);
          case com.pgvector.PGvector x -> {
            Rows.binaryVectors(st.getConnection());
            st.setObject(at, x);
          }
          case org.postgresql.util.PGobject x -> st.setObject(at, x);
          case String[] x -> st.setArray(at, st.getConnection().createArrayOf("text", x));
          default -> throw new IllegalArgumentException("no binding for " + v.getClass().getName());
        }
      }
    }

    /** The same values on a Jdbi statement (a null as a typed null, as a String-typed bind makes it). */
    <Q extends org.jdbi.v3.core.statement.SqlStatement<Q>> Q bindTo(Q q) {
      values.forEach((name, v) -> {
        if (v == null) {
          q.bindByType(name, null, String.class);
        } else {
          q.bind(name, v);
        }
      });
      return q;
    }
  }

  /** Maps the current row of a plain statement's result. */
  @FunctionalInterface
  protected interface Row<T> {
    T map(ResultSet rs) throws SQLException;
  }

  /**
   * One autocommit statement as plain JDBC, for the hottest calls (see {@link PlainStatements} for
   * why): a pooled connection, the prepared statement (pgjdbc's per-connection cache makes it a
   * server-side prepared one), the listeners (cancellation at the call's end, spans), the rows.
   * Errors arrive as from {@link #read}: a Jdbi exception around the SQLException, unique
   * violations translated.
   */
  protected <T> List<T> query(Plain sql, Args args, Row<T> row) {
    return pipeline(sql, args, results -> results.next(row));
  }

  /** Reads, in order, the results of the statements of one {@link #pipeline}. */
  protected interface Results {
    /** The next statement's rows; each statement's result must be read before the next one's. */
    <T> List<T> next(Row<T> row) throws SQLException;
  }

  /** What a {@link #pipeline} makes of its results. */
  @FunctionalInterface
  protected interface Reader<T> {
    T read(Results results) throws SQLException;
  }

  /**
   * Several statements separated by {@code ;} as plain JDBC in one round trip: pgjdbc sends each
   * statement's Parse/Bind/Execute and one Sync at the end, so PostgreSQL runs them as one
   * implicit transaction, in order. A {@code set_config(..., true)} in the first statement
   * therefore holds for the later ones (planned after it runs) and ends with the round trip, as a
   * SET LOCAL in a transaction would, without BEGIN and COMMIT round trips of their own. Listeners
   * and errors as in {@link #query}.
   */
  protected <T> T pipeline(Plain sql, Args args, Reader<T> reader) {
    PlainStatements plain = jdbi.getConfig(PlainStatements.class);
    DataSource ds = plain.dataSource();
    if (ds == null) {
      // A Jdbi not made by Database.jdbi (tests of a single store): the same statement on a handle's connection.
      return read(h -> {
        try {
          return run(h.getConnection(), plain, sql, args, reader);
        } catch (SQLException e) {
          throw new UnableToExecuteStatementException(e, null);
        }
      });
    }
    try (Connection c = ds.getConnection()) {
      return run(c, plain, sql, args, reader);
    } catch (SQLException e) {
      throw UniqueViolations.translate(new UnableToExecuteStatementException(e, null));
    }
  }

  /**
   * {@link #writeOne} for a named statement: without a {@link CommitLsn} sink (no standbys) it is
   * an autocommit statement, so it runs as plain JDBC ({@link #query}); with one, through Jdbi
   * with the COMMIT and the WAL position in the same round trip, as before.
   */
  protected <T> Optional<T> writeOne(String namedSql, Args args, Row<T> row) {
    if (jdbi.getConfig(CommitLsn.class).sink() != null) {
      return writeOne((h, tail) -> args.bindTo(h.createQuery(namedSql + tail)), (rs, ctx) -> row.map(rs));
    }
    List<T> rows = query(Plain.of(namedSql), args, row);
    if (rows.size() > 1) {
      throw new IllegalStateException("expected at most one row");
    }
    return rows.isEmpty() ? Optional.empty() : Optional.of(rows.get(0));
  }

  private static <T> T run(Connection c, PlainStatements plain, Plain sql, Args args, Reader<T> reader)
      throws SQLException {
    try (PreparedStatement st = c.prepareStatement(sql.sql())) {
      args.bind(st, sql.names());
      List<PlainStatements.Finish> finishes = new ArrayList<>(2);
      try {
        for (PlainStatements.Listener l : plain.listeners()) {
          PlainStatements.Finish f = l.started(st, sql.named());
          if (f != null) {
            finishes.add(f);
          }
        }
        long[] rowCount = {0};
        boolean[] first = {true};
        st.execute();
        T out = reader.read(new Results() {
          @Override
          public <R> List<R> next(Row<R> row) throws SQLException {
            if (!first[0] && !st.getMoreResults()) {
              throw new SQLException("the statement returned fewer results than were read");
            }
            first[0] = false;
            List<R> rows = new ArrayList<>();
            try (ResultSet rs = st.getResultSet()) {
              if (rs == null) {
                throw new SQLException("a statement of the pipeline returned no rows result");
              }
              while (rs.next()) {
                rows.add(row.map(rs));
              }
            }
            rowCount[0] += rows.size();
            return rows;
          }
        });
        finishes.forEach(f -> f.finished(rowCount[0], null));
        return out;
      } catch (SQLException e) {
        finishes.forEach(f -> f.finished(0, e));
        throw e;
      }
    }
  }

  /** After COMMIT: the insert position is at or past the commit record, which a standby must replay. */
  private static final String COMMIT_AND_LSN = "COMMIT; SELECT pg_current_wal_insert_lsn()::text";

  private static void commitReporting(Handle h, LongConsumer sink) {
    try {
      // PostgreSQL answers COMMIT in a failed transaction with a rollback, not an error (and so
      // does pgjdbc's commit()): no token may name a write that never happened. No store
      // continues after a failed statement today; this keeps it that way.
      if (h.getConnection().unwrap(org.postgresql.core.BaseConnection.class).getTransactionState()
          == org.postgresql.core.TransactionState.FAILED) {
        throw new SQLException("the transaction failed earlier and was rolled back", "25P02");
      }
    } catch (SQLException e) {
      throw new UnableToExecuteStatementException(e, null);
    }
    try (Statement st = h.getConnection().createStatement()) {
      st.execute(COMMIT_AND_LSN);
      sink.accept(lsnAfterCommit(st));
    } catch (SQLException e) {
      throw new UnableToExecuteStatementException(e, null);
    }
  }

  /** Skips the COMMIT's result and reads the LSN that follows it. */
  private static long lsnAfterCommit(Statement st) throws SQLException {
    while (!st.getMoreResults()) {
      if (st.getUpdateCount() == -1) {
        throw new SQLException("no WAL position after COMMIT");
      }
    }
    try (ResultSet rs = st.getResultSet()) {
      rs.next();
      return CommitLsn.parse(rs.getString(1));
    }
  }

  /**
   * One statement that writes and returns at most one row: autocommit, one round trip. With a
   * {@link CommitLsn} sink it runs in a transaction with COMMIT and the WAL position appended to the
   * same statement text, which pgjdbc sends as one pipeline: still one round trip.
   */
  protected <T> Optional<T> writeOne(java.util.function.BiFunction<Handle, String, Query> statement,
      RowMapper<T> mapper) {
    LongConsumer sink = jdbi.getConfig(CommitLsn.class).sink();
    if (sink == null) {
      return read(h -> statement.apply(h, "").map(mapper).findOne());
    }
    try {
      return jdbi.inTransaction(h -> statement.apply(h, ";\n" + COMMIT_AND_LSN).execute((supplier, ctx) -> {
        PreparedStatement st = supplier.get();
        Optional<T> row;
        try (ResultSet rs = st.getResultSet()) {
          row = rs.next() ? Optional.of(mapper.map(rs, ctx)) : Optional.empty();
          if (rs.next()) {
            throw new IllegalStateException("expected at most one row");
          }
        }
        st.getMoreResults(); // the COMMIT
        sink.accept(lsnAfterCommit(st));
        return row;
      }));
    } catch (JdbiException e) {
      throw UniqueViolations.translate(e);
    }
  }
}

package dev.contextmemory.server.store;

import java.sql.Connection;
import java.sql.SQLException;
import org.jdbi.v3.core.ConnectionException;
import org.jdbi.v3.core.Handle;
import org.jdbi.v3.core.Jdbi;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Creates the active model's HNSW indexes (memories.embedding, conversations.summary_embedding)
 * with CREATE INDEX CONCURRENTLY, so writes go on while a new model's index builds after a model
 * change. Until it is valid, searches of that model scan exactly (correct, slower on big tenants).
 * One server builds at a time (an advisory lock); an index a failed build left INVALID is dropped
 * and built again. Indexes of models no longer active are left for the operator to drop
 * (docs/operations.md "Changing the embedding model").
 */
public final class VectorIndexes {
  private static final Logger log = LoggerFactory.getLogger(VectorIndexes.class);
  private static final long LOCK = 0x636d5f76696478L; // "cm_vidx"

  private VectorIndexes() {}

  /** Builds whatever index of {@code space} is missing; blocks while building. */
  public static void ensure(Jdbi jdbi, VectorSpace space) {
    jdbi.useHandle(h -> ensure(h, space));
  }

  /**
   * The same on a given handle. The server passes one of a connection of its own, not the request
   * pool's: a build holds its connection for minutes on a big table, and it waits (a Lock wait on
   * virtualxid) for every transaction older than it for as long as they stay open.
   */
  public static void ensure(Handle h, VectorSpace space) {
    // A session lock: CREATE INDEX CONCURRENTLY cannot run inside a transaction.
    h.execute("SELECT pg_advisory_lock(?)", LOCK);
    // Not bounded by the pool's statement timeout: a big table's build takes minutes. The old
    // value is put back, not RESET: behind a session-mode pooler the pool set it with set_config
    // when the connection opened, and RESET would leave this pooled connection with none.
    String previous = h.createQuery("SELECT current_setting('statement_timeout')").mapTo(String.class).one();
    // Nor by the lock timeout: CREATE INDEX CONCURRENTLY waits, in phases, for every transaction
    // that writes the table or holds an older snapshot, and blocks no one while it waits.
    String previousLock = h.createQuery("SELECT current_setting('lock_timeout')").mapTo(String.class).one();
    // Nor by the pool's socket timeout (the statement timeout + 5 s): at 1 M memories the build
    // took 13 minutes, and the socket timeout closed the connection after 20 s while PostgreSQL
    // built on, so the server logged a failure and held no lock for a build still running.
    // HikariCP puts the connection's network timeout back when it returns to the pool.
    Connection c = h.getConnection();
    int socketTimeout = networkTimeout(c);
    try {
      setNetworkTimeout(c, 0);
      h.execute("SET statement_timeout = 0");
      h.execute("SET lock_timeout = 0");
      // A backend waiting for older transactions notices that its client is gone only when this
      // is set: without it, the build of a server killed meanwhile would wait on, then build.
      h.execute("SET client_connection_check_interval = 1000");
      ensure(h, space, "memories", "embedding");
      ensure(h, space, "conversations", "summary_embedding");
    } finally {
      h.execute("SELECT set_config('statement_timeout', ?, false)", previous);
      h.execute("SELECT set_config('lock_timeout', ?, false)", previousLock);
      h.execute("RESET client_connection_check_interval");
      h.execute("SELECT pg_advisory_unlock(?)", LOCK);
      setNetworkTimeout(c, socketTimeout);
    }
  }

  private static int networkTimeout(Connection c) {
    try {
      return c.getNetworkTimeout();
    } catch (SQLException e) {
      throw new ConnectionException(e);
    }
  }

  private static void setNetworkTimeout(Connection c, int millis) {
    try {
      c.setNetworkTimeout(Runnable::run, millis);
    } catch (SQLException e) {
      throw new ConnectionException(e);
    }
  }

  private static void ensure(Handle h, VectorSpace space, String table, String column) {
    String name = space.indexName(table);
    Boolean valid = h.createQuery("SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
            + " WHERE c.relname = :name")
        .bind("name", name).mapTo(Boolean.class).findOne().orElse(null);
    if (Boolean.TRUE.equals(valid)) {
      dropDefaultBuild(h, space, table);
      return;
    }
    if (valid != null) {
      h.execute("DROP INDEX CONCURRENTLY IF EXISTS " + name);
    }
    long started = System.nanoTime();
    h.execute("CREATE INDEX CONCURRENTLY IF NOT EXISTS " + name + " ON " + table + " USING hnsw ("
        + space.vector("x", column).replace("x.", "") + " vector_cosine_ops) WITH (" + VectorSpace.HNSW_BUILD
        + ") WHERE " + space.rows("x", column).replace("x.", ""));
    log.info("built vector index {} for model {} ({} dimensions) in {} ms", name, space.model(), space.dimension(),
        (System.nanoTime() - started) / 1_000_000);
    dropDefaultBuild(h, space, table);
  }

  /**
   * A deployment from before VectorSpace.HNSW_BUILD has this model's index built with pgvector's
   * defaults under another name; once the new one is valid, the old one only costs every insert.
   */
  private static void dropDefaultBuild(Handle h, VectorSpace space, String table) {
    String old = space.defaultBuildIndexName(table);
    boolean exists = h.createQuery("SELECT count(*) > 0 FROM pg_class WHERE relname = :name AND relkind = 'i'")
        .bind("name", old).mapTo(Boolean.class).one();
    if (exists) {
      h.execute("DROP INDEX CONCURRENTLY IF EXISTS " + old);
      log.info("dropped vector index {} (model {}, built with pgvector's defaults), replaced by {}", old, space.model(),
          space.indexName(table));
    }
  }
}

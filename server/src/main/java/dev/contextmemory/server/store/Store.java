package dev.contextmemory.server.store;

import org.jdbi.v3.core.HandleCallback;
import org.jdbi.v3.core.Jdbi;
import org.jdbi.v3.core.JdbiException;

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

  /** One transaction: committed when the callback returns, rolled back when it throws. */
  protected <T> T write(HandleCallback<T, RuntimeException> callback) {
    try {
      return jdbi.inTransaction(callback);
    } catch (JdbiException e) {
      throw UniqueViolations.translate(e);
    }
  }

  /** Escapes LIKE wildcards so a user's prefix matches literally (escape char is backslash). */
  protected static String likePrefix(String prefix) {
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%";
  }
}

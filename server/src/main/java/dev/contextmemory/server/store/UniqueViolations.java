package dev.contextmemory.server.store;

import dev.contextmemory.server.domain.AlreadyExistsException;
import java.sql.SQLException;
import java.util.Map;
import org.postgresql.util.PSQLException;
import org.postgresql.util.ServerErrorMessage;

/**
 * Translates PostgreSQL unique violations (SQLSTATE 23505) into {@link AlreadyExistsException}s
 * naming the request field whose value is taken. Constraints not listed here are ours to avoid
 * (ON CONFLICT arbiters), so they pass through untranslated and surface as server errors.
 */
final class UniqueViolations {
  static final String UNIQUE_VIOLATION = "23505";

  private record Conflict(String reason, String field, String message) {}

  private static final Map<String, Conflict> BY_CONSTRAINT = Map.of(
      "customers_phone_key",
      new Conflict("PHONE_ALREADY_IN_USE", "customer.phone", "another customer already has this phone number"),
      "customers_email_key",
      new Conflict("EMAIL_ALREADY_IN_USE", "customer.email", "another customer already has this email address"),
      "customers_external_ref_key",
      new Conflict("EXTERNAL_REF_ALREADY_IN_USE", "customer.external_ref",
          "another customer already has this external reference"),
      "memories_customer_key",
      new Conflict("MEMORY_KEY_ALREADY_EXISTS", "memory.key",
          "the customer already has a memory with this key; use UpsertMemory to replace it"),
      "handoffs_request_key",
      new Conflict("REQUEST_ID_ALREADY_USED", "request_id",
          "this request_id already created a handoff of another conversation; use a fresh key per request"));

  private UniqueViolations() {}

  static RuntimeException translate(RuntimeException e) {
    String constraint = violatedUniqueConstraint(e);
    Conflict c = constraint == null ? null : BY_CONSTRAINT.get(constraint);
    return c == null ? e : new AlreadyExistsException(c.reason(), c.field(), c.message());
  }

  /** The answer for a value the store found taken before the unique index {@code constraint} could say so. */
  static AlreadyExistsException conflict(String constraint) {
    Conflict c = BY_CONSTRAINT.get(constraint);
    return new AlreadyExistsException(c.reason(), c.field(), c.message());
  }

  /** The name of the unique constraint {@code e} violated, or null if it is no unique violation. */
  static String violatedUniqueConstraint(Throwable e) {
    for (Throwable t = e; t != null; t = t.getCause()) {
      if (t instanceof SQLException sql && UNIQUE_VIOLATION.equals(sql.getSQLState())) {
        ServerErrorMessage m = sql instanceof PSQLException p ? p.getServerErrorMessage() : null;
        return m == null ? "" : m.getConstraint();
      }
    }
    return null;
  }
}

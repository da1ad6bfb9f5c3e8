package dev.contextmemory.server.store;

import com.google.gson.Gson;
import dev.contextmemory.server.domain.Ids;
import java.util.Map;
import org.jdbi.v3.core.Handle;

/**
 * Writes audit_events rows inside the transaction of the action they record, so an erasure and its
 * audit row commit together or not at all. Rows hold ids and counts, never personal data, and no
 * delete of this schema touches them (erasing a customer keeps the record that it was erased).
 */
public final class AuditLog {
  /** The actor of calls made with authentication off. */
  public static final String LOCAL_ACTOR = "local";
  /** The actor of `scripts/run keys` (an operator at the database). */
  public static final String CLI_ACTOR = "cli";

  private static final Gson GSON = new Gson();

  private AuditLog() {}

  /**
   * Deletes for good and audits in one statement: {@code deleteReturningId} is a DELETE with
   * {@code RETURNING <table alias>.id AS id}; the statement answers the number of rows deleted.
   * Binds :tenant, :actor and :audit_id itself; the caller binds the DELETE's own parameters.
   */
  static org.jdbi.v3.core.statement.Update deleteAudited(Handle h, String tenant, String actor, String action,
      String targetType, String deleteReturningId) {
    return h.createUpdate("WITH d AS (" + deleteReturningId + """
            )
            INSERT INTO audit_events (tenant_id, id, actor, action, target_type, target_id)
            SELECT :tenant, :audit_id, :actor, :audit_action, :audit_type, d.id::text FROM d""")
        .bind("tenant", tenant)
        .bind("audit_id", Ids.newId())
        .bind("actor", actor)
        .bind("audit_action", action)
        .bind("audit_type", targetType);
  }

  static void record(Handle h, String tenant, String actor, String action, String targetType, Object targetId,
      Map<String, Long> counts) {
    h.createUpdate("""
            INSERT INTO audit_events (tenant_id, id, actor, action, target_type, target_id, counts)
            VALUES (:tenant, :id, :actor, :action, :type, :target, CAST(:counts AS jsonb))""")
        .bind("tenant", tenant)
        .bind("id", Ids.newId())
        .bind("actor", actor)
        .bind("action", action)
        .bind("type", targetType)
        .bind("target", String.valueOf(targetId))
        .bind("counts", GSON.toJson(counts))
        .execute();
  }
}

package dev.contextmemory.server.store;

import static dev.contextmemory.server.store.MemoryStore.LIVE;
import static dev.contextmemory.server.store.MemoryStore.MEMORY;

import dev.contextmemory.server.domain.Memory;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import org.jdbi.v3.core.Jdbi;

/** ConfirmMemories: the agents' verdicts on memories they used (split from {@link MemoryStore}). */
public final class MemoryConfirmationStore extends Store {
  private static final String RETURNING = MemoryStore.COLUMNS.replace("m.", "");

  public MemoryConfirmationStore(Jdbi jdbi) {
    super(jdbi);
  }

  /**
   * Applies the verdicts in one transaction, in request order. A rejection halves importance (so
   * repeated rejections sink a memory fast but never below 0) or deletes the memory.
   */
  public List<Memory.ConfirmationResult> confirm(String tenant, String actor, List<Memory.Confirmation> items) {
    return write(h -> {
      List<Memory.ConfirmationResult> out = new ArrayList<>(items.size());
      for (Memory.Confirmation c : items) {
        if (!c.confirmed() && c.deleteOnReject()) {
          int n = MemoryHistoryStore.tag(AuditLog.deleteAudited(h, tenant, actor, "memory.delete", "memory",
                  "DELETE FROM memories m USING " + MemoryHistoryStore.TAG + " WHERE m.tenant_id = :tenant AND m.id = :id AND "
                      + LIVE + " RETURNING m.id AS id"), actor, "reject")
              .bind("id", c.memoryId()).execute();
          out.add(new Memory.ConfirmationResult(c.memoryId(), n == 1 ? Memory.Effect.DELETED : Memory.Effect.NOT_FOUND,
              null));
          continue;
        }
        String set = c.confirmed()
            ? "confirm_count = m.confirm_count + 1, last_confirmed_at = now(), expires_at = CASE"
                + " WHEN m.expires_at IS NOT NULL AND CAST(:extend_seconds AS bigint) IS NOT NULL"
                + " THEN greatest(m.expires_at, now() + make_interval(secs => CAST(:extend_seconds AS bigint)))"
                + " ELSE m.expires_at END"
            : "importance = m.importance / 2";
        Optional<Memory> m = MemoryHistoryStore.tag(h.createQuery("UPDATE memories AS m SET " + set + " FROM "
                + MemoryHistoryStore.TAG + " WHERE m.tenant_id = :tenant AND m.id = :id AND " + LIVE + " RETURNING " + RETURNING),
                actor, c.confirmed() ? "confirm" : "reject")
            .bind("tenant", tenant).bind("id", c.memoryId())
            .bind("extend_seconds", c.extendExpiry() == null ? null : c.extendExpiry().toSeconds())
            .map(MEMORY).findOne();
        out.add(new Memory.ConfirmationResult(c.memoryId(), m.isEmpty() ? Memory.Effect.NOT_FOUND
            : c.confirmed() ? Memory.Effect.CONFIRMED : Memory.Effect.DEMOTED, m.orElse(null)));
      }
      return out;
    });
  }
}

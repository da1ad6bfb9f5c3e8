package dev.contextmemory.server.store;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import org.jdbi.v3.core.Jdbi;

/**
 * The embedding queue: memories in state 'pending' (docs/search.md "The embedding queue"). It works
 * across tenants by design, like the expiry sweeper: the worker embeds every tenant's rows, and each
 * row is written back by its own (tenant_id, id).
 *
 * <p>Safe with several servers: a claim takes due rows FOR UPDATE SKIP LOCKED and, in the same
 * short transaction, pushes their due time past a lease, so no other worker takes them while this
 * one embeds (with no transaction open). A worker that dies mid-batch leaves the rows to be claimed
 * again when the lease ends. A result is written only if the row is still pending with the same
 * queued_at: a write that changed the content in between requeued it, and the stale vector is
 * dropped.
 */
public final class EmbeddingQueueStore extends Store {
  /** A claimed row: what to embed, and the version its result must match. */
  public record Claimed(String tenant, UUID id, String content, String queuedAt, int attempts) {}

  /** The queue right now: pending rows, and the age of the oldest (0 when empty). */
  public record Depth(long pending, double lagSeconds) {}

  private final VectorSpace space;

  public EmbeddingQueueStore(Jdbi jdbi, VectorSpace space) {
    super(jdbi);
    this.space = space;
  }

  /** Claims up to {@code batch} due rows for {@code lease}. */
  public List<Claimed> claim(int batch, Duration lease) {
    return write(h -> h.createQuery("""
            UPDATE memories m SET embedding_due_at = now() + make_interval(secs => :lease),
                                  embedding_attempts = m.embedding_attempts + 1
              FROM (SELECT tenant_id, id FROM memories
                     WHERE embedding_state = 'pending' AND embedding_due_at <= now()
                     ORDER BY embedding_due_at LIMIT :batch FOR UPDATE SKIP LOCKED) c
             WHERE m.tenant_id = c.tenant_id AND m.id = c.id
            RETURNING m.tenant_id, m.id, m.content, m.embedding_queued_at::text AS queued_at, m.embedding_attempts""")
        .bind("lease", (double) lease.toMillis() / 1000).bind("batch", batch)
        .map((rs, ctx) -> new Claimed(rs.getString("tenant_id"), rs.getObject("id", UUID.class),
            rs.getString("content"), rs.getString("queued_at"), rs.getInt("embedding_attempts")))
        .list());
  }

  /** Stores the vectors of claimed rows in one statement; returns how many rows took theirs. */
  public int complete(List<Claimed> rows, List<float[]> vectors) {
    List<String> tenants = new ArrayList<>();
    List<UUID> ids = new ArrayList<>();
    List<String> queued = new ArrayList<>();
    List<String> texts = new ArrayList<>();
    for (int i = 0; i < rows.size(); i++) {
      tenants.add(rows.get(i).tenant());
      ids.add(rows.get(i).id());
      queued.add(rows.get(i).queuedAt());
      texts.add(Rows.vectorText(vectors.get(i)));
    }
    return write(h -> h.createUpdate("""
            UPDATE memories m SET embedding = CAST(u.embedding AS vector), embedding_model = :model,
                                  embedding_state = 'ready', embedding_attempts = 0,
                                  embedding_queued_at = NULL, embedding_due_at = NULL
              FROM unnest(:tenants, :ids, :queued, :embeddings) AS u(tenant_id, id, queued_at, embedding)
             WHERE m.tenant_id = u.tenant_id AND m.id = u.id AND m.embedding_state = 'pending'
               AND m.embedding_queued_at = CAST(u.queued_at AS timestamptz)""")
        .bind("model", space.model())
        .bindArray("tenants", String.class, tenants).bindArray("ids", UUID.class, ids)
        .bindArray("queued", String.class, queued).bindArray("embeddings", String.class, texts)
        .execute());
  }

  /**
   * Puts claimed rows back after a failed attempt: due again after {@code backoff}, or FAILED once
   * a row has had {@code maxAttempts} attempts. Returns how many were marked FAILED.
   */
  public int fail(List<Claimed> rows, Duration backoff, int maxAttempts) {
    List<String> tenants = rows.stream().map(Claimed::tenant).toList();
    List<UUID> ids = rows.stream().map(Claimed::id).toList();
    List<String> queued = rows.stream().map(Claimed::queuedAt).toList();
    return write(h -> h.createQuery("""
            UPDATE memories m SET
                   embedding_state = CASE WHEN m.embedding_attempts >= :max THEN 'failed' ELSE 'pending' END,
                   embedding_due_at = now() + make_interval(secs => :backoff)
              FROM unnest(:tenants, :ids, :queued) AS u(tenant_id, id, queued_at)
             WHERE m.tenant_id = u.tenant_id AND m.id = u.id AND m.embedding_state = 'pending'
               AND m.embedding_queued_at = CAST(u.queued_at AS timestamptz)
            RETURNING m.embedding_state""")
        .bind("max", maxAttempts).bind("backoff", (double) backoff.toMillis() / 1000)
        .bindArray("tenants", String.class, tenants).bindArray("ids", UUID.class, ids)
        .bindArray("queued", String.class, queued)
        .mapTo(String.class).list().stream().filter("failed"::equals).count()).intValue();
  }

  /**
   * After a model change: queues up to {@code batch} rows whose embedding is of another model (or
   * that have none, written while the deployment had no embedder). Their old embedding stays until
   * the new one replaces it, but no search of the active model reads it. Returns the rows queued; 0
   * when none is left. FAILED rows are not requeued (a write of their content does that).
   */
  public int requeueOtherModels(int batch) {
    return write(h -> h.createUpdate("""
            UPDATE memories m SET embedding_state = 'pending', embedding_attempts = 0,
                                  embedding_queued_at = now(), embedding_due_at = now()
             WHERE m.ctid IN (SELECT ctid FROM memories
                               WHERE embedding_state IN ('none', 'ready') AND embedding_model IS DISTINCT FROM :model
                               LIMIT :batch FOR UPDATE SKIP LOCKED)""")
        .bind("model", space.model()).bind("batch", batch).execute());
  }

  /** The queue's depth and lag, through the queue's partial index. */
  public Depth depth() {
    return read(h -> h.createQuery("""
            SELECT count(*) AS pending,
                   coalesce(extract(epoch FROM now() - min(embedding_queued_at)), 0)::float8 AS lag
              FROM memories WHERE embedding_state = 'pending'""")
        .map((rs, ctx) -> new Depth(rs.getLong("pending"), rs.getDouble("lag"))).one());
  }
}

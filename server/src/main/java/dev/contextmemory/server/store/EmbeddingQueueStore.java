package dev.contextmemory.server.store;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import org.jdbi.v3.core.Jdbi;

/**
 * One embedding queue: the rows of a {@link Target} in state 'pending' (docs/search.md "The
 * embedding queue"): memories' content, or conversations' summaries (version 13). It works across
 * tenants by design, like the expiry sweeper: the worker embeds every tenant's rows, and each row is
 * written back by its own (tenant_id, id).
 *
 * <p>Safe with several servers: a claim takes due rows FOR UPDATE SKIP LOCKED and, in the same
 * short transaction, pushes their due time past a lease, so no other worker takes them while this
 * one embeds (with no transaction open). A worker that dies mid-batch leaves the rows to be claimed
 * again when the lease ends. A result is written only if the row is still pending with the same
 * queued_at: a write that changed the content in between requeued it, and the stale vector is
 * dropped.
 */
public final class EmbeddingQueueStore extends Store {
  /**
   * What a queue embeds: the table, the text column, and the vector column whose name prefixes its
   * bookkeeping columns ({@code <vector>_model}, {@code _state}, {@code _attempts}, {@code
   * _queued_at}, {@code _due_at}, {@code _failed_model}; versions 9 and 13).
   */
  public enum Target {
    MEMORIES("memories", "content", "embedding", "memories"),
    CONVERSATION_SUMMARIES("conversations", "summary", "summary_embedding", "conversation summaries");

    final String table;
    final String text;
    final String vector;
    /** For logs and metric tags. */
    public final String label;

    Target(String table, String text, String vector, String label) {
      this.table = table;
      this.text = text;
      this.vector = vector;
      this.label = label;
    }

    /** Replaces {@code {t}}, {@code {text}} and {@code {v}} (the column prefix) in {@code sql}. */
    String sql(String sql) {
      return sql.replace("{t}", table).replace("{text}", text).replace("{v}", vector);
    }
  }

  /** A claimed row: what to embed, and the version its result must match. */
  public record Claimed(String tenant, UUID id, String content, String queuedAt, int attempts) {}

  /** The queue right now: pending rows, and the age of the oldest (0 when empty). */
  public record Depth(long pending, double lagSeconds) {}

  private final VectorSpace space;
  private final Target target;

  public EmbeddingQueueStore(Jdbi jdbi, VectorSpace space, Target target) {
    super(jdbi);
    this.space = space;
    this.target = target;
  }

  public Target target() {
    return target;
  }

  /** Claims up to {@code batch} due rows for {@code lease}. */
  public List<Claimed> claim(int batch, Duration lease) {
    return write(h -> h.createQuery(target.sql("""
            UPDATE {t} m SET {v}_due_at = now() + make_interval(secs => :lease),
                             {v}_attempts = m.{v}_attempts + 1
              FROM (SELECT tenant_id, id FROM {t}
                     WHERE {v}_state = 'pending' AND {v}_due_at <= now()
                     ORDER BY {v}_due_at LIMIT :batch FOR UPDATE SKIP LOCKED) c
             WHERE m.tenant_id = c.tenant_id AND m.id = c.id
            RETURNING m.tenant_id, m.id, m.{text} AS text, m.{v}_queued_at::text AS queued_at, m.{v}_attempts AS attempts"""))
        .bind("lease", (double) lease.toMillis() / 1000).bind("batch", batch)
        .map((rs, ctx) -> new Claimed(rs.getString("tenant_id"), rs.getObject("id", UUID.class),
            rs.getString("text"), rs.getString("queued_at"), rs.getInt("attempts")))
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
    return write(h -> h.createUpdate(target.sql("""
            UPDATE {t} m SET {v} = CAST(u.embedding AS vector), {v}_model = :model,
                             {v}_state = 'ready', {v}_attempts = 0, {v}_failed_model = NULL,
                             {v}_queued_at = NULL, {v}_due_at = NULL
              FROM unnest(:tenants, :ids, :queued, :embeddings) AS u(tenant_id, id, queued_at, embedding)
             WHERE m.tenant_id = u.tenant_id AND m.id = u.id AND m.{v}_state = 'pending'
               AND m.{v}_queued_at = CAST(u.queued_at AS timestamptz)"""))
        .bind("model", space.model())
        .bindArray("tenants", String.class, tenants).bindArray("ids", UUID.class, ids)
        .bindArray("queued", String.class, queued).bindArray("embeddings", String.class, texts)
        .execute());
  }

  /**
   * Puts claimed rows back after a failed attempt: due again after {@code backoff}, or FAILED once
   * a row has had {@code maxAttempts} attempts, under the active model (which a model change
   * looks at). Returns how many were marked FAILED.
   */
  public int fail(List<Claimed> rows, Duration backoff, int maxAttempts) {
    List<String> tenants = rows.stream().map(Claimed::tenant).toList();
    List<UUID> ids = rows.stream().map(Claimed::id).toList();
    List<String> queued = rows.stream().map(Claimed::queuedAt).toList();
    return write(h -> h.createQuery(target.sql("""
            UPDATE {t} m SET
                   {v}_state = CASE WHEN m.{v}_attempts >= :max THEN 'failed' ELSE 'pending' END,
                   {v}_failed_model = CASE WHEN m.{v}_attempts >= :max THEN :model END,
                   {v}_due_at = now() + make_interval(secs => :backoff)
              FROM unnest(:tenants, :ids, :queued) AS u(tenant_id, id, queued_at)
             WHERE m.tenant_id = u.tenant_id AND m.id = u.id AND m.{v}_state = 'pending'
               AND m.{v}_queued_at = CAST(u.queued_at AS timestamptz)
            RETURNING m.{v}_state"""))
        .bind("max", maxAttempts).bind("model", space.model()).bind("backoff", (double) backoff.toMillis() / 1000)
        .bindArray("tenants", String.class, tenants).bindArray("ids", UUID.class, ids)
        .bindArray("queued", String.class, queued)
        .mapTo(String.class).list().stream().filter("failed"::equals).count()).intValue();
  }

  /**
   * After a model change: queues up to {@code batch} rows whose embedding is of another model (or
   * that have none, written while the deployment had no embedder), and rows that FAILED under
   * another model (or before version 13 recorded the model: once), which get a fresh set of
   * attempts with the new one. Their old embedding stays until the new one replaces it, but no
   * search of the active model reads it. Rows FAILED under the active model stay FAILED (a write of
   * their text queues them again). Empty summaries have nothing to embed. Returns the rows queued; 0
   * when none is left.
   */
  public int requeueOtherModels(int batch) {
    return write(h -> h.createUpdate(target.sql("""
            UPDATE {t} m SET {v}_state = 'pending', {v}_attempts = 0, {v}_failed_model = NULL,
                             {v}_queued_at = now(), {v}_due_at = now()
             WHERE m.ctid IN (SELECT ctid FROM {t}
                               WHERE ((({v}_state IN ('none', 'ready') AND {v}_model IS DISTINCT FROM :model)
                                       OR ({v}_state = 'failed' AND {v}_failed_model IS DISTINCT FROM :model))
                                      AND {text} <> '')
                               LIMIT :batch FOR UPDATE SKIP LOCKED)"""))
        .bind("model", space.model()).bind("batch", batch).execute());
  }

  /** The queue's depth and lag, through the queue's partial index. */
  public Depth depth() {
    return read(h -> h.createQuery(target.sql("""
            SELECT count(*) AS pending,
                   coalesce(extract(epoch FROM now() - min({v}_queued_at)), 0)::float8 AS lag
              FROM {t} WHERE {v}_state = 'pending'"""))
        .map((rs, ctx) -> new Depth(rs.getLong("pending"), rs.getDouble("lag"))).one());
  }
}

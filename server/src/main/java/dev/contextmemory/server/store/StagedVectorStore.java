package dev.contextmemory.server.store;

import org.jdbi.v3.core.Jdbi;

/**
 * Vectors that bulk writes staged outside the HNSW index (version 13, docs/search.md "Bulk writes
 * and the vector index"). Across tenants by design, like the embedding queue: the indexer moves
 * every tenant's staged rows, each by its own (tenant_id, id).
 */
public final class StagedVectorStore extends Store {
  public StagedVectorStore(Jdbi jdbi) {
    super(jdbi);
  }

  /**
   * Moves up to {@code batch} staged vectors, oldest first, into {@code embedding} (and so into
   * their model's HNSW index: the insert is this statement's cost) in one short transaction; rows
   * another server is moving are skipped. The untagged UPDATE changes only the vector, so the
   * history triggers do not record it. Returns the rows moved.
   */
  public int index(int batch) {
    return write(h -> h.createUpdate("""
            UPDATE memories m SET embedding = m.embedding_staged, embedding_model = m.embedding_staged_model,
                                  embedding_state = 'ready', embedding_staged = NULL, embedding_staged_model = NULL
              FROM (SELECT tenant_id, id FROM memories WHERE embedding_state = 'staged'
                     ORDER BY created_at LIMIT :batch FOR UPDATE SKIP LOCKED) s
             WHERE m.tenant_id = s.tenant_id AND m.id = s.id""")
        .bind("batch", batch).execute());
  }

  /** Staged rows in the database, and the age in seconds of the oldest (0 when none). */
  public double[] depth() {
    return read(h -> h.createQuery("""
            SELECT count(*)::float8, coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8
              FROM memories WHERE embedding_state = 'staged'""")
        .map((rs, ctx) -> new double[] {rs.getDouble(1), rs.getDouble(2)}).one());
  }
}

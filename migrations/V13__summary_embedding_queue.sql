-- context-memory schema, version 13: conversation summaries join the embedding queue, a
-- model change gives rows that FAILED under the old model another chance, and vectors sent in
-- bulk are staged outside the HNSW index.
--
-- * A summary written without a vector on a deployment with an embedder is stored at once and
--   queued, exactly like a memory (version 9): summary_embedding_state 'pending', claimed by the
--   same worker with FOR UPDATE SKIP LOCKED through the partial index below, 'ready' once the
--   worker's vector is stored, 'failed' once it gave up. The columns mirror memories'
--   embedding_* columns, with the summary_embedding_ prefix of the vector they describe.
-- * *_failed_model records the model a row failed under. After a model change the worker
--   re-queues FAILED rows whose failure was under another model (or under an unknown one: rows
--   that failed before this version, once). Without it a failed row would either stay failed
--   for good or be re-queued at every start.

-- * Staged vectors: CreateMemories, UpsertMemories and ImportMemories store a client vector in
--   embedding_staged (state 'staged', embedding NULL), outside every partial HNSW index, so a
--   1,000-row batch costs no HNSW inserts (about 2 s of CPU per 1,000 rows on this project's
--   2-core machine, where the rest of the batch takes tens of milliseconds). A background
--   indexer moves staged vectors into embedding in small batches (embedding/StagedVectorIndexer);
--   until then the memory is found by text, as a PENDING one is.

ALTER TABLE memories
  ADD COLUMN embedding_failed_model text,
  ADD COLUMN embedding_staged       vector,
  ADD COLUMN embedding_staged_model text;

ALTER TABLE memories
  DROP CONSTRAINT memories_embedding_state,
  ADD CONSTRAINT memories_embedding_state CHECK (
    embedding_state IN ('none', 'pending', 'ready', 'failed', 'staged')),
  ADD CONSTRAINT memories_embedding_staged CHECK (
    embedding_state <> 'staged' OR (embedding_staged IS NOT NULL AND embedding_staged_model IS NOT NULL));

-- The indexer's claim, across tenants like the queue's.
CREATE INDEX memories_embedding_staged_idx ON memories (created_at) WHERE embedding_state = 'staged';

ALTER TABLE conversations
  -- none: no summary embedding and none coming; pending: queued (an older embedding may
  -- still be in place); ready: summary_embedding_model's embedding is stored; failed: the
  -- worker gave up (summary_embedding_attempts).
  ADD COLUMN summary_embedding_state        text        NOT NULL DEFAULT 'none',
  ADD COLUMN summary_embedding_attempts     integer     NOT NULL DEFAULT 0,
  -- When the summary was (re)queued: the queue's lag, and the version the worker's result
  -- must still match (a summary written in between requeues it; the stale vector is dropped).
  ADD COLUMN summary_embedding_queued_at    timestamptz,
  -- When the worker may next take the row: now on queueing, later after a failure (backoff)
  -- or while a worker holds it (lease).
  ADD COLUMN summary_embedding_due_at       timestamptz,
  ADD COLUMN summary_embedding_failed_model text;

UPDATE conversations SET summary_embedding_state = 'ready' WHERE summary_embedding IS NOT NULL;

ALTER TABLE conversations
  ADD CONSTRAINT conversations_summary_embedding_state CHECK (
    summary_embedding_state IN ('none', 'pending', 'ready', 'failed')),
  ADD CONSTRAINT conversations_summary_embedding_ready CHECK (
    summary_embedding_state <> 'ready' OR summary_embedding IS NOT NULL),
  ADD CONSTRAINT conversations_summary_embedding_queued CHECK (
    summary_embedding_state <> 'pending'
    OR (summary_embedding_queued_at IS NOT NULL AND summary_embedding_due_at IS NOT NULL));

-- The worker's claim and the queue-depth gauge, across tenants like memories' queue index.
CREATE INDEX conversations_summary_embedding_queue_idx ON conversations (summary_embedding_due_at)
  WHERE summary_embedding_state = 'pending';

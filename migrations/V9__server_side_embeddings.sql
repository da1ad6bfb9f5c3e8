-- context-memory schema, version 9: server-side embeddings, the embedding queue, and
-- vectors whose dimension is no longer frozen by version 1.
--
-- * Every stored embedding records the model that made it (embedding_model). Vector
--   search reads only rows of the deployment's active model; the others are re-embedded
--   in the background (EMBEDDER local or openai-compatible) or ignored by vector search
--   (none). Embeddings stored before this version came from callers: they are labelled
--   'client', the model name of EMBEDDER=none by default, so such a deployment sees no
--   change.
-- * The vector columns lose their fixed dimension (typmod), so rows of a 384- and a
--   768-dimensional model can live side by side while a model change re-embeds. An HNSW
--   index needs a fixed dimension: the server creates one partial expression index per
--   active model, CONCURRENTLY, at start-up
--     ON memories USING hnsw ((embedding::vector(N)) vector_cosine_ops)
--     WHERE embedding_model = '<model>'
--   (store/VectorIndexes), and searches use exactly that expression and predicate.
-- * The queue is the memories table itself: embedding_state 'pending' rows, claimed by
--   the worker with FOR UPDATE SKIP LOCKED through the partial index below.

DROP INDEX memories_embedding_idx;
ALTER TABLE memories ALTER COLUMN embedding TYPE vector;
DROP INDEX conversations_summary_embedding_idx;
ALTER TABLE conversations ALTER COLUMN summary_embedding TYPE vector;

ALTER TABLE memories
  ADD COLUMN embedding_model     text,
  -- none: no embedding and none coming (EMBEDDER=none); pending: queued for the worker
  -- (possibly with an older model's embedding still in place); ready: embedding_model's
  -- embedding is stored; failed: the worker gave up (embedding_attempts).
  ADD COLUMN embedding_state     text        NOT NULL DEFAULT 'none',
  ADD COLUMN embedding_attempts  integer     NOT NULL DEFAULT 0,
  -- When the row was (re)queued: the queue's lag, and the version the worker's result
  -- must still match (a write in between requeues the row and the stale result is dropped).
  ADD COLUMN embedding_queued_at timestamptz,
  -- When the worker may next take the row: now on queueing, later after a failure
  -- (backoff) or while a worker holds it (lease).
  ADD COLUMN embedding_due_at    timestamptz;

UPDATE memories SET embedding_model = 'client', embedding_state = 'ready' WHERE embedding IS NOT NULL;

ALTER TABLE memories
  ADD CONSTRAINT memories_embedding_state CHECK (embedding_state IN ('none', 'pending', 'ready', 'failed')),
  ADD CONSTRAINT memories_embedding_model_set CHECK ((embedding IS NULL) = (embedding_model IS NULL)),
  ADD CONSTRAINT memories_embedding_ready CHECK (embedding_state <> 'ready' OR embedding IS NOT NULL),
  ADD CONSTRAINT memories_embedding_queued CHECK (
    embedding_state <> 'pending' OR (embedding_queued_at IS NOT NULL AND embedding_due_at IS NOT NULL));

ALTER TABLE conversations ADD COLUMN summary_embedding_model text;
UPDATE conversations SET summary_embedding_model = 'client' WHERE summary_embedding IS NOT NULL;
ALTER TABLE conversations ADD CONSTRAINT conversations_summary_embedding_model_set CHECK (
  (summary_embedding IS NULL) = (summary_embedding_model IS NULL));

-- The worker's claim (due rows, oldest due first) and the queue-depth gauge; across
-- tenants by design, like the expiry sweeper's index.
CREATE INDEX memories_embedding_queue_idx ON memories (embedding_due_at) WHERE embedding_state = 'pending';

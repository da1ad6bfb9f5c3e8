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

-- The usage views of version 7.1 read both vector columns (how many rows have one), and a
-- column a view reads cannot change its type: they are dropped here and created again,
-- unchanged, at the end (they are refreshed from the tables, so nothing is lost).
DROP MATERIALIZED VIEW usage_daily;
DROP MATERIALIZED VIEW usage_hourly;

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

-- The usage views of version 7.1, as they were.
CREATE MATERIALIZED VIEW usage_hourly AS
SELECT tenant_id, bucket, channel,
       sum(conversations_started)::bigint        AS conversations_started,
       sum(conversations_with_embedding)::bigint AS conversations_with_embedding,
       sum(conversations_closed)::bigint         AS conversations_closed,
       sum(messages_user)::bigint                AS messages_user,
       sum(messages_assistant)::bigint           AS messages_assistant,
       sum(messages_system)::bigint              AS messages_system,
       sum(messages_tool)::bigint                AS messages_tool,
       sum(messages_human_agent)::bigint         AS messages_human_agent,
       sum(memories_created)::bigint             AS memories_created,
       sum(memories_with_embedding)::bigint      AS memories_with_embedding
  FROM (
    SELECT tenant_id, date_trunc('hour', started_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS bucket, channel,
           count(*) AS conversations_started,
           count(*) FILTER (WHERE summary_embedding IS NOT NULL) AS conversations_with_embedding,
           0 AS conversations_closed, 0 AS messages_user, 0 AS messages_assistant, 0 AS messages_system,
           0 AS messages_tool, 0 AS messages_human_agent, 0 AS memories_created, 0 AS memories_with_embedding
      FROM conversations WHERE deleted_at IS NULL
     GROUP BY 1, 2, 3
    UNION ALL
    SELECT tenant_id, date_trunc('hour', closed_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', channel,
           0, 0, count(*), 0, 0, 0, 0, 0, 0, 0
      FROM conversations WHERE deleted_at IS NULL AND closed_at IS NOT NULL
     GROUP BY 1, 2, 3
    UNION ALL
    SELECT m.tenant_id, date_trunc('hour', m.created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', c.channel,
           0, 0, 0,
           count(*) FILTER (WHERE m.role = 'user'),
           count(*) FILTER (WHERE m.role = 'assistant'),
           count(*) FILTER (WHERE m.role = 'system'),
           count(*) FILTER (WHERE m.role = 'tool'),
           count(*) FILTER (WHERE m.role = 'human_agent'),
           0, 0
      FROM messages m
      JOIN conversations c ON c.tenant_id = m.tenant_id AND c.id = m.conversation_id AND c.deleted_at IS NULL
     GROUP BY 1, 2, 3
    UNION ALL
    SELECT x.tenant_id, date_trunc('hour', x.created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC',
           coalesce(c.channel, ''),
           0, 0, 0, 0, 0, 0, 0, 0,
           count(*), count(*) FILTER (WHERE x.embedding IS NOT NULL)
      FROM memories x
      LEFT JOIN conversations c ON c.tenant_id = x.tenant_id AND c.id = x.conversation_id
     GROUP BY 1, 2, 3
  ) parts
 GROUP BY tenant_id, bucket, channel
WITH DATA;
CREATE UNIQUE INDEX usage_hourly_key ON usage_hourly (tenant_id, bucket, channel);

-- Daily buckets from the hourly ones: 90 days read at most 90 x 7 rows.
CREATE MATERIALIZED VIEW usage_daily AS
SELECT tenant_id, date_trunc('day', bucket AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS bucket, channel,
       sum(conversations_started)::bigint        AS conversations_started,
       sum(conversations_with_embedding)::bigint AS conversations_with_embedding,
       sum(conversations_closed)::bigint         AS conversations_closed,
       sum(messages_user)::bigint                AS messages_user,
       sum(messages_assistant)::bigint           AS messages_assistant,
       sum(messages_system)::bigint              AS messages_system,
       sum(messages_tool)::bigint                AS messages_tool,
       sum(messages_human_agent)::bigint         AS messages_human_agent,
       sum(memories_created)::bigint             AS memories_created,
       sum(memories_with_embedding)::bigint      AS memories_with_embedding
  FROM usage_hourly
 GROUP BY 1, 2, 3
WITH DATA;
CREATE UNIQUE INDEX usage_daily_key ON usage_daily (tenant_id, bucket, channel);

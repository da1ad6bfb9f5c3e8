-- context-memory schema, version 7.1: the rollup behind GetUsageMetrics.
--
-- GetUsageMetrics must answer 90 daily buckets in milliseconds over millions of messages, and
-- must not slow AppendMessage. So the counts of conversations, messages and memories are
-- pre-aggregated into materialized views that the server refreshes on a schedule (REFRESH ...
-- CONCURRENTLY, so reads never wait; under an advisory lock, so one replica of several does it);
-- appends stay exactly as they were. docs/architecture.md, "Usage metrics", has the measurements
-- behind this choice. Handoffs are few, so GetUsageMetrics reads them live (with their wait
-- percentiles, which no rollup can add up).
--
-- Buckets are UTC hours and days whatever the session's TimeZone. channel '' holds memories not
-- tied to a conversation (REFRESH CONCURRENTLY matches rows on the unique index, and NULLs never
-- match). Deleted conversations and their messages are not counted, as in GetConversationStats.
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

-- When the views were last refreshed (one row; not per tenant, as the views are not): what
-- GetUsageMetrics reports as refresh_time.
CREATE TABLE usage_rollup_state (
  singleton    boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
  refreshed_at timestamptz
);
INSERT INTO usage_rollup_state (singleton, refreshed_at) VALUES (true, now());

-- GetUsageMetrics reads handoffs live by each transition's time.
CREATE INDEX handoffs_accepted_idx ON handoffs (tenant_id, accepted_at) WHERE accepted_at IS NOT NULL;
CREATE INDEX handoffs_completed_idx ON handoffs (tenant_id, completed_at) WHERE completed_at IS NOT NULL;

-- The hot statements on the bulk tenant of scripts/bulk-load (docs/scaling.md "10x data"):
--   psql -f plans-10x.sql <bulk database>
-- Generic plans, as the server's prepared statements settle on; a conversation and customer drawn
-- from the middle of the data; run twice, the second (warm) run is the one reported.
\set ON_ERROR_STOP on
SET plan_cache_mode = force_generic_plan;
SELECT id AS conv, customer_id AS cust FROM conversations WHERE tenant_id = 'bulk'
 ORDER BY id OFFSET 54321 LIMIT 1 \gset
\echo ListMessages, the newest 21 of one conversation
PREPARE list_last(text, uuid) AS
SELECT c.id AS found, m.* FROM conversations c
LEFT JOIN LATERAL (SELECT * FROM messages m WHERE m.tenant_id = $1 AND m.conversation_id = $2
                    ORDER BY m.sequence DESC LIMIT 21) m ON true
WHERE c.tenant_id = $1 AND c.id = $2 AND c.deleted_at IS NULL ORDER BY m.sequence DESC;
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, SUMMARY ON) EXECUTE list_last('bulk', :'conv');
\echo AppendMessage-like: lock the conversation row, insert one message (rolled back)
BEGIN;
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, SUMMARY ON)
WITH bump AS (UPDATE conversations SET last_sequence = last_sequence + 1, message_count = message_count + 1,
                                      last_message_at = now()
               WHERE tenant_id = 'bulk' AND id = :'conv' RETURNING last_sequence)
INSERT INTO messages (tenant_id, id, conversation_id, sequence, role, content, idempotency_key)
SELECT 'bulk', gen_random_uuid(), :'conv', last_sequence, 'user', 'can you come tomorrow for the piano', 'k-new'
  FROM bump;
ROLLBACK;
\echo SearchMessages in one conversation ('piano')
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, SUMMARY ON)
SELECT id, ts_rank_cd(content_tsv, q) AS score FROM messages, websearch_to_tsquery('english', 'piano') q
 WHERE tenant_id = 'bulk' AND conversation_id = :'conv' AND content_tsv @@ q
 ORDER BY score DESC, created_at DESC, id DESC LIMIT 21;
\echo SearchMessages across the tenant, a rare word ('kayak')
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, SUMMARY ON)
SELECT id, ts_rank_cd(content_tsv, q) AS score FROM messages, websearch_to_tsquery('english', 'kayak') q
 WHERE tenant_id = 'bulk' AND content_tsv @@ q
 ORDER BY score DESC, created_at DESC, id DESC LIMIT 21;
\echo SearchMessages across the tenant, a middling word ('piano')
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, SUMMARY ON)
SELECT id, ts_rank_cd(content_tsv, q) AS score FROM messages, websearch_to_tsquery('english', 'piano') q
 WHERE tenant_id = 'bulk' AND content_tsv @@ q
 ORDER BY score DESC, created_at DESC, id DESC LIMIT 21;
\echo GetConversationStats for one customer over 400 days
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, SUMMARY ON)
SELECT count(*) FILTER (WHERE m.role = 'user'), count(*) FILTER (WHERE m.role = 'assistant')
  FROM messages m JOIN conversations c ON c.tenant_id = m.tenant_id AND c.id = m.conversation_id AND c.deleted_at IS NULL
 WHERE m.tenant_id = 'bulk' AND m.created_at >= now() - interval '400 days' AND c.customer_id = :'cust';

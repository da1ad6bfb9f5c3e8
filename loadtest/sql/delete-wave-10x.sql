-- Vacuum behaviour after a delete wave on the bulk tenant (docs/scaling.md "10x data"): the
-- messages of 10 % of the conversations go, as the retention purge of soft-deleted conversations
-- deletes them (messages first), then autovacuum's trigger point is compared with what is dead
-- and a manual VACUUM is timed.
--   psql -f delete-wave-10x.sql <bulk database>
\set ON_ERROR_STOP on
\timing on
CREATE EXTENSION IF NOT EXISTS pgstattuple;
SELECT pg_size_pretty(pg_table_size('messages')) AS heap_before, pg_size_pretty(pg_indexes_size('messages')) AS indexes_before;
SELECT current_setting('autovacuum_vacuum_scale_factor') AS scale_factor,
       current_setting('autovacuum_vacuum_threshold') AS threshold,
       (current_setting('autovacuum_vacuum_threshold')::int
        + current_setting('autovacuum_vacuum_scale_factor')::float * reltuples)::bigint AS dead_rows_to_trigger
  FROM pg_class WHERE relname = 'messages';
\if :{?skip_delete}
\else
\echo delete wave: the messages of every tenth conversation
DELETE FROM messages m USING conversations c
 WHERE c.tenant_id = 'bulk' AND m.tenant_id = 'bulk' AND m.conversation_id = c.id
   AND get_byte(uuid_send(c.id), 15) % 10 = 0;
\endif
SELECT pg_sleep(5);
SELECT n_live_tup, n_dead_tup, last_autovacuum, autovacuum_count FROM pg_stat_user_tables WHERE relname = 'messages';
SELECT round(dead_tuple_percent::numeric, 1) AS dead_pct, round(approx_free_percent::numeric, 1) AS free_pct
  FROM pgstattuple_approx('messages');
\echo manual VACUUM (what autovacuum would do, unthrottled)
VACUUM (VERBOSE) messages;
SELECT round(dead_tuple_percent::numeric, 1) AS dead_pct, round(approx_free_percent::numeric, 1) AS free_pct
  FROM pgstattuple_approx('messages');
SELECT pg_size_pretty(pg_table_size('messages')) AS heap_after, pg_size_pretty(pg_indexes_size('messages')) AS indexes_after;

-- What each index, the foreign key and the tsvector cost a 100-row insert into messages
-- (docs/scaling.md "What a message insert costs"; run by loadtest/sql/insert-cost.sh).
-- On a database filled by bulk-10x.sql (any scale): copies its messages, with time-ordered ids as
-- the server writes them, into one table per variant, each with exactly one extra cost:
--   bare           messages' columns and NOT NULLs only: no index, FK, CHECK or tsvector
--   pk seq idem convcreated tenantcreated   bare + that one index (convcreated: dropped in V14)
--   fk             bare + the foreign key to conversations
--   tsv tsvsimple  bare + the generated tsvector ('english', and 'simple' for comparison)
--   ginon ginoff   tsv + the GIN index (tenant_id, content_tsv), fastupdate on (default) / off
--   realnotsv      every btree index and the FK of messages, no tsvector
--   real           LIKE messages INCLUDING ALL + its FK: the table as the migrations leave it
-- The btree and GIN indexes of the single-cost variants are built after the copy; real's grow row by row.
\set ON_ERROR_STOP on
SET client_min_messages = warning;
SET synchronous_commit = off;
SET maintenance_work_mem = '256MB';
CREATE OR REPLACE FUNCTION ic_uuid7(ts timestamptz) RETURNS uuid LANGUAGE sql VOLATILE AS $$
  SELECT (lpad(to_hex((extract(epoch FROM ts) * 1000)::bigint), 12, '0') || '7' || substr(md5(random()::text), 1, 19))::uuid $$;
DROP TABLE IF EXISTS ic_pool, ic_conv, ic_src, ic_bare, ic_pk, ic_seq, ic_idem, ic_convcreated, ic_tenantcreated, ic_fk,
  ic_tsv, ic_tsvsimple, ic_ginon, ic_ginoff, ic_realnotsv, ic_real;
CREATE TABLE ic_pool AS SELECT (row_number() OVER ())::int AS s, content AS t FROM (SELECT DISTINCT content FROM messages) d;
CREATE UNIQUE INDEX ON ic_pool (s);
CREATE TABLE ic_conv AS SELECT (row_number() OVER (ORDER BY id))::int AS n, tenant_id, id FROM conversations;
CREATE UNIQUE INDEX ON ic_conv (n);
CREATE TABLE ic_src AS
  SELECT tenant_id, ic_uuid7(created_at) AS id, conversation_id, sequence, role, content, metadata, idempotency_key,
         created_at, updated_at
    FROM messages ORDER BY created_at;

CREATE TABLE ic_bare (LIKE messages INCLUDING DEFAULTS);
ALTER TABLE ic_bare DROP COLUMN content_tsv;
CREATE TABLE ic_pk (LIKE ic_bare INCLUDING DEFAULTS);
CREATE TABLE ic_seq (LIKE ic_bare INCLUDING DEFAULTS);
CREATE TABLE ic_idem (LIKE ic_bare INCLUDING DEFAULTS);
CREATE TABLE ic_convcreated (LIKE ic_bare INCLUDING DEFAULTS);
CREATE TABLE ic_tenantcreated (LIKE ic_bare INCLUDING DEFAULTS);
CREATE TABLE ic_fk (LIKE ic_bare INCLUDING DEFAULTS);
CREATE TABLE ic_tsv (LIKE ic_bare INCLUDING DEFAULTS);
ALTER TABLE ic_tsv ADD content_tsv tsvector GENERATED ALWAYS AS (to_tsvector('english'::regconfig, content)) STORED;
CREATE TABLE ic_tsvsimple (LIKE ic_bare INCLUDING DEFAULTS);
ALTER TABLE ic_tsvsimple ADD content_tsv tsvector GENERATED ALWAYS AS (to_tsvector('simple'::regconfig, content)) STORED;
CREATE TABLE ic_ginon (LIKE ic_tsv INCLUDING DEFAULTS INCLUDING GENERATED);
CREATE TABLE ic_ginoff (LIKE ic_tsv INCLUDING DEFAULTS INCLUDING GENERATED);
CREATE TABLE ic_realnotsv (LIKE ic_bare INCLUDING DEFAULTS);
CREATE TABLE ic_real (LIKE messages INCLUDING ALL);
ALTER TABLE ic_real ADD FOREIGN KEY (tenant_id, conversation_id) REFERENCES conversations (tenant_id, id) ON DELETE CASCADE;

SELECT format('INSERT INTO %I (tenant_id, id, conversation_id, sequence, role, content, metadata, idempotency_key,
                              created_at, updated_at)
               SELECT tenant_id, id, conversation_id, sequence, role, content, metadata, idempotency_key, created_at,
                      updated_at FROM ic_src', t)
  FROM unnest(ARRAY['ic_bare', 'ic_pk', 'ic_seq', 'ic_idem', 'ic_convcreated', 'ic_tenantcreated', 'ic_fk', 'ic_tsv',
                    'ic_tsvsimple', 'ic_ginon', 'ic_ginoff', 'ic_realnotsv', 'ic_real']) t \gexec

ALTER TABLE ic_pk ADD PRIMARY KEY (tenant_id, id);
CREATE UNIQUE INDEX ON ic_seq (tenant_id, conversation_id, sequence);
CREATE UNIQUE INDEX ON ic_idem (tenant_id, conversation_id, idempotency_key);
CREATE INDEX ON ic_convcreated (tenant_id, conversation_id, created_at);
CREATE INDEX ON ic_tenantcreated (tenant_id, created_at) INCLUDE (conversation_id, role);
ALTER TABLE ic_fk ADD FOREIGN KEY (tenant_id, conversation_id) REFERENCES conversations (tenant_id, id) ON DELETE CASCADE;
CREATE INDEX ON ic_ginon USING gin (tenant_id, content_tsv) WITH (fastupdate = on);
CREATE INDEX ON ic_ginoff USING gin (tenant_id, content_tsv) WITH (fastupdate = off);
ALTER TABLE ic_realnotsv ADD PRIMARY KEY (tenant_id, id);
CREATE UNIQUE INDEX ON ic_realnotsv (tenant_id, conversation_id, sequence);
CREATE UNIQUE INDEX ON ic_realnotsv (tenant_id, conversation_id, idempotency_key);
CREATE INDEX ON ic_realnotsv (tenant_id, created_at) INCLUDE (conversation_id, role);
ALTER TABLE ic_realnotsv ADD FOREIGN KEY (tenant_id, conversation_id) REFERENCES conversations (tenant_id, id) ON DELETE CASCADE;
VACUUM ANALYZE ic_pool, ic_conv, ic_bare, ic_pk, ic_seq, ic_idem, ic_convcreated, ic_tenantcreated, ic_fk, ic_tsv,
  ic_tsvsimple, ic_ginon, ic_ginoff, ic_realnotsv, ic_real;

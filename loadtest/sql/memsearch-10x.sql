-- SearchMemories' k-NN at 10x (1 M memories of tenant 'bulk', the server's HNSW index in place):
-- the statement the server runs for a tenant-wide search (HNSW, with the settings
-- Store.prepareVectorSearch makes) and for one customer's (about 20 memories: exact), timed inside
-- PostgreSQL (no network, no gRPC: the SQL floor), and recall@10 of the tenant-wide HNSW answer
-- against an exact scan for the first :recall queries. Queries are stored memories' vectors (each
-- finds itself first, so recall is of the other nine as much as of the first).
--   psql -v queries=200 -v recall=10 -f loadtest/sql/memsearch-10x.sql cm_10x
\if :{?queries} \else \set queries 200 \endif
\if :{?recall} \else \set recall 10 \endif
\set tenant bulk
SELECT set_config('cm.recall', :'recall', false) \gset
SET statement_timeout = 0;
CREATE TEMP TABLE q AS
  SELECT row_number() OVER () AS n, id, customer_id, embedding::vector(768) AS v
    FROM (SELECT id, customer_id, embedding FROM memories TABLESAMPLE SYSTEM (0.1)
           WHERE tenant_id = :'tenant' AND embedding_model = 'client' LIMIT 2 * :queries) s;
CREATE TEMP TABLE timing (kind text, n bigint, ms float8, ids uuid[]);

-- Warm-up pass (first reads of the graph), not counted, with the other half of the sample: a
-- query repeated on a warm cache reads only pages it read before (0.4 ms instead of 15 to 50).
BEGIN;
SELECT set_config('hnsw.ef_search', '100', true), set_config('hnsw.iterative_scan', 'relaxed_order', true),
       set_config('enable_seqscan', 'off', true), set_config('enable_sort', 'off', true), set_config('jit', 'off', true) \gset
SELECT count(*) FROM (SELECT * FROM q WHERE n > :queries) q, LATERAL (SELECT id FROM memories m WHERE m.tenant_id = :'tenant' AND m.embedding_model = 'client'
  ORDER BY m.embedding::vector(768) <=> q.v LIMIT 10) x;
COMMIT;

DO $$
DECLARE r record; t0 timestamptz; res uuid[];
BEGIN
  PERFORM set_config('hnsw.ef_search', '100', true), set_config('hnsw.iterative_scan', 'relaxed_order', true),
          set_config('enable_seqscan', 'off', true), set_config('enable_sort', 'off', true), set_config('jit', 'off', true);
  FOR r IN SELECT * FROM q WHERE n <= (SELECT count(*) FROM q) / 2 ORDER BY n LOOP
    t0 := clock_timestamp();
    SELECT array_agg(id) INTO res FROM (SELECT id FROM memories m WHERE m.tenant_id = 'bulk'
      AND m.embedding_model = 'client' ORDER BY m.embedding::vector(768) <=> r.v LIMIT 10) s;
    INSERT INTO timing VALUES ('tenant_hnsw', r.n, extract(epoch FROM clock_timestamp() - t0) * 1000, res);
  END LOOP;
END $$;

DO $$
DECLARE r record; t0 timestamptz; res uuid[];
BEGIN
  FOR r IN SELECT * FROM q WHERE n <= (SELECT count(*) FROM q) / 2 ORDER BY n LOOP
    t0 := clock_timestamp();
    SELECT array_agg(id) INTO res FROM (SELECT id FROM memories m WHERE m.tenant_id = 'bulk' AND m.customer_id = r.customer_id
      AND m.embedding_model = 'client' ORDER BY m.embedding::vector(768) <=> r.v LIMIT 10) s;
    INSERT INTO timing VALUES ('customer_exact', r.n, extract(epoch FROM clock_timestamp() - t0) * 1000, res);
  END LOOP;
END $$;

\echo latency inside PostgreSQL, ms
SELECT kind, count(*), round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 2) AS p50,
       round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 2) AS p99, round(max(ms)::numeric, 2) AS max
  FROM timing GROUP BY kind ORDER BY kind;

-- Ground truth: an exact scan of the whole tenant (no index), for the first :recall queries.
SELECT clock_timestamp() AS exact_started \gset
DO $$
DECLARE r record; res uuid[]; t0 timestamptz;
BEGIN
  PERFORM set_config('enable_indexscan', 'off', true), set_config('enable_bitmapscan', 'off', true);
  FOR r IN SELECT * FROM q WHERE n <= current_setting('cm.recall')::int ORDER BY n LOOP
    t0 := clock_timestamp();
    SELECT array_agg(id) INTO res FROM (SELECT id FROM memories m WHERE m.tenant_id = 'bulk'
      AND m.embedding_model = 'client' ORDER BY m.embedding::vector(768) <=> r.v LIMIT 10) s;
    INSERT INTO timing VALUES ('tenant_exact', r.n, extract(epoch FROM clock_timestamp() - t0) * 1000, res);
  END LOOP;
END $$;
\echo recall@10 of the tenant-wide HNSW search against an exact scan, and the exact scan time
SELECT count(*) AS queries,
       round(avg((SELECT count(*) FROM unnest(h.ids) i WHERE i = ANY (e.ids)) / 10.0)::numeric, 3) AS recall_at_10,
       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY e.ms)::numeric) AS exact_p50_ms
  FROM timing h JOIN timing e ON e.n = h.n AND e.kind = 'tenant_exact' WHERE h.kind = 'tenant_hnsw';

-- The HNSW insert cost behind docs/search.md "Bulk writes and the vector index": 1,000-row INSERTs
-- of clustered vectors without an index, into a partial HNSW index, outside its predicate, and
-- the UPDATE that moves 1,000 staged rows in. Run in a scratch database with pgvector:
--   psql -X -q <url> -c 'CREATE EXTENSION IF NOT EXISTS vector' -v dim=768 -f hnsw-insert-cost.sql | grep Time
\timing on
SET maintenance_work_mem='256MB';
DROP TABLE IF EXISTS bench_v;
CREATE TABLE bench_v (id bigserial primary key, model text, embedding vector);
-- clustered vectors via a helper: centroid + noise
CREATE OR REPLACE FUNCTION bench_vec(dim int, seed int) RETURNS vector LANGUAGE sql AS $$
  SELECT array_agg(((sin(seed % 32 * 7 + i) ) + (random()-0.5)*0.6)::real ORDER BY i)::vector FROM generate_series(1, dim) i $$;
-- preload 20k rows at :dim so the index is non-trivial (like an existing tenant)
INSERT INTO bench_v (model, embedding) SELECT 'm', bench_vec(:dim, g) FROM generate_series(1,20000) g;
CREATE TEMP TABLE src AS SELECT bench_vec(:dim, g) AS e FROM generate_series(1,1000) g;
-- no index
INSERT INTO bench_v (model, embedding) SELECT 'm', e FROM src;
INSERT INTO bench_v (model, embedding) SELECT 'm', e FROM src;
CREATE INDEX bench_v_hnsw ON bench_v USING hnsw ((embedding::vector(:dim)) vector_cosine_ops) WHERE model = 'm';
-- with index, rows in predicate
INSERT INTO bench_v (model, embedding) SELECT 'm', e FROM src;
INSERT INTO bench_v (model, embedding) SELECT 'm', e FROM src;
-- with index, rows outside predicate (staged)
INSERT INTO bench_v (model, embedding) SELECT 'staged', e FROM src;
INSERT INTO bench_v (model, embedding) SELECT 'staged', e FROM src;
-- moving 1000 staged rows into the index
UPDATE bench_v SET model='m' WHERE id IN (SELECT id FROM bench_v WHERE model='staged' LIMIT 1000);
DROP TABLE bench_v;

-- 10x the load test's full profile, generated inside PostgreSQL (docs/scaling.md "10x data").
--   psql -v tenant=bulk-10x -v customers=50000 -v convs=2 -v msgs=100 -v memories=1000000 -f bulk-10x.sql
-- On a database the server has migrated (scripts/bulk-load runs `migrate` first). Messages are
-- written with every index in place, in chunks of 10,000 conversations (one transaction each), as
-- a growing deployment would have written them; memories are written without their HNSW index,
-- which is then built once (timed), as an operator would restore or backfill them.
\set ON_ERROR_STOP on
\timing on
SET synchronous_commit = off;  -- the loader's own commits only; the server keeps its durability

-- Text: a pool of 200,000 sentences over the load test's vocabulary (Texts.WORDS, a power law,
-- one word in three a stop word), each row picking one; the generated tsvector is still computed
-- per row, so the full-text indexes grow as with real text.
CREATE TEMP TABLE pool AS
SELECT s, (SELECT string_agg(w, ' ') FROM (
             SELECT CASE WHEN random() < 0.33 THEN st.a[1 + floor(random() * array_length(st.a, 1))::int]
                         ELSE vo.a[1 + floor(array_length(vo.a, 1) * power(random(), 3))::int] END AS w
               FROM generate_series(1, 6 + (random() * 23)::int + s * 0)) x) || '.' AS t
  FROM generate_series(0, 199999) s,
       (SELECT string_to_array('quote pickup price truck schedule tomorrow junk removal couch sofa mattress garage basement piano fridge appliance estimate crew arrive window morning afternoon evening weekend monday tuesday wednesday thursday friday saturday address street apartment elevator stairs parking driveway gate code invoice payment card cash deposit refund discount coupon review photo picture video load half full minimum volume weight heavy bulky furniture table chair desk dresser cabinet shelf bookcase bed frame boxes bags yard waste branches debris construction drywall carpet tile concrete dirt hot tub shed demolition fence deck playset trampoline grill tires bike treadmill elliptical television computer printer electronics recycling donation charity dump landfill fee surcharge permit hoa landlord tenant moving office warehouse storage unit estate cleanout hoarder attic closet kitchen bathroom bedroom living room porch patio lawn mower snow blower washer dryer dishwasher oven stove microwave freezer air conditioner water heater paint cans chemicals batteries hazardous metal scrap wood glass plastic call text email confirm reschedule cancel late early traffic delay minutes hours timeframe slot available booked urgent asap flexible budget', ' ') AS a) vo,
       (SELECT string_to_array('the a to and of in is for on it we you can be at with this that our your will are if there', ' ') AS a) st;
CREATE UNIQUE INDEX ON pool (s);

\echo customers
INSERT INTO customers (tenant_id, id, display_name, phone, metadata, created_at, updated_at)
SELECT :'tenant', gen_random_uuid(), 'Customer ' || g, '+1555' || lpad(g::text, 7, '0'),
       jsonb_build_object('shop_id', (g % 1000)::text), now() - interval '400 days' + g * interval '1 minute',
       now()
  FROM generate_series(1, :customers) g;

\echo conversations
INSERT INTO conversations (tenant_id, id, customer_id, channel, thread_key, started_at, last_message_at,
                           closed_at, message_count, last_sequence, metadata)
SELECT c.tenant_id, gen_random_uuid(), c.id, (ARRAY['sms','web','messenger','email','voice'])[k],
       'thread-' || k, c.created_at, c.created_at + interval '1 hour',
       CASE WHEN k > 1 THEN c.created_at + interval '2 hours' END, :msgs, :msgs, c.metadata
  FROM customers c CROSS JOIN generate_series(1, :convs) k
 WHERE c.tenant_id = :'tenant';

CREATE TEMP TABLE conv_ids AS
  SELECT row_number() OVER (ORDER BY id) AS n, id, started_at FROM conversations WHERE tenant_id = :'tenant';
CREATE INDEX ON conv_ids (n);
SELECT count(*) AS nconv FROM conv_ids \gset

\echo messages: :nconv conversations x :msgs, in chunks of 10000 conversations
SELECT clock_timestamp() AS msg_started \gset
SELECT format($f$
INSERT INTO messages (tenant_id, id, conversation_id, sequence, role, content, metadata, idempotency_key, created_at)
SELECT %L, gen_random_uuid(), c.id, q, CASE WHEN q %% 2 = 1 THEN 'user' ELSE 'assistant' END,
       (SELECT t FROM pool p WHERE p.s = (c.n * 131 + q * 7919) %% 200000), '{}', 'k-' || q, c.started_at + q * interval '20 seconds'
  FROM conv_ids c CROSS JOIN generate_series(1, %s) q
 WHERE c.n > %s AND c.n <= %s;
$f$, :'tenant', :msgs, lo, lo + 10000) FROM generate_series(0, :nconv - 1, 10000) lo \gexec
SELECT round(extract(epoch FROM clock_timestamp() - :'msg_started'::timestamptz)) AS messages_seconds;

\if :{?mem_from}
\else
  \set mem_from 0
\endif
\echo memories: :memories rows, 768-dimensional unit embeddings around 256 cluster centres
-- The HNSW index is dropped for the load and rebuilt once (timed below).
DROP INDEX IF EXISTS memories_embedding_idx;
CREATE TEMP TABLE centres AS
  SELECT c, (SELECT array_agg(random() - 0.5) FROM generate_series(1, 768) WHERE c >= 0) AS v
    FROM generate_series(0, 255) c;
CREATE TEMP TABLE cust_ids AS
  SELECT row_number() OVER (ORDER BY id) - 1 AS n, id FROM customers WHERE tenant_id = :'tenant';
CREATE INDEX ON cust_ids (n);
SELECT count(*) AS ncust FROM cust_ids \gset
SELECT clock_timestamp() AS mem_started \gset
SELECT format($f$
INSERT INTO memories (tenant_id, id, customer_id, kind, content, embedding, importance, metadata)
SELECT %L, gen_random_uuid(), cu.id, (ARRAY['fact','preference','fact','summary','instruction'])[1 + g %% 5],
       (SELECT t FROM pool p WHERE p.s = (g::bigint * 7919) %% 200000), l2_normalize(e.v::vector), 0.5, jsonb_build_object('topic', (g %% 50)::text)
  FROM generate_series(%s, %s) g
  JOIN cust_ids cu ON cu.n = g %% %s
  JOIN centres x ON x.c = g %% 256
  CROSS JOIN LATERAL (SELECT array_agg(x.v[i] + (random() - 0.5) * 0.3) AS v FROM generate_series(1, 768) i) e;
$f$, :'tenant', lo, least(lo + 49999, :memories - 1), :ncust) FROM generate_series(:mem_from, :memories - 1, 50000) lo \gexec
SELECT round(extract(epoch FROM clock_timestamp() - :'mem_started'::timestamptz)) AS memories_seconds;

\echo HNSW build
SET maintenance_work_mem = '4GB';
SELECT clock_timestamp() AS hnsw_started \gset
CREATE INDEX memories_embedding_idx ON memories USING hnsw (embedding vector_cosine_ops) WHERE embedding IS NOT NULL;
SELECT round(extract(epoch FROM clock_timestamp() - :'hnsw_started'::timestamptz)) AS hnsw_seconds;
VACUUM (ANALYZE) customers, conversations, messages, memories;

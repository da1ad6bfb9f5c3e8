-- context-memory schema, version 10: memory history (MemoryService.ListMemoryHistory)
-- and the versions that SearchMemories and ListMemories rewind to with as_of_time.
--
-- Every change to a memory is recorded by the statement that makes it: statement-level
-- AFTER triggers with transition tables insert one history row per changed memory in
-- one INSERT ... SELECT, so a 1,000-row batch costs one more statement, not 1,000, and
-- no write path (single, batch, import, sweeper, a conversation purge's SET NULL) can
-- forget to record. The statement tags itself with two transaction-local settings
-- (set_config(..., true) in its own FROM list, so no extra round trip):
--   context_memory.actor   who (the API key's prefix); unset means 'system'.
--   context_memory.change  why: 'upsert' (an UPDATE is a supersession), 'confirm',
--                          'reject', 'update', 'erase' (a customer erase records
--                          nothing, it deletes the history), 'untracked' (a system
--                          write that is no change of the fact). An untagged UPDATE
--                          that only changed the vector (an embedding worker) is not
--                          recorded either.

-- When the current version's content became valid; NULL means since created_at (every
-- memory written before this version, and every memory whose content never changed),
-- which spares rewriting the table here.
ALTER TABLE memories ADD COLUMN valid_from timestamptz;

CREATE TABLE memory_history (
  tenant_id         text        NOT NULL,
  -- Orders a memory's (and a customer's) changes; the keyset of ListMemoryHistory.
  seq               bigint      GENERATED ALWAYS AS IDENTITY,
  memory_id         uuid        NOT NULL,
  customer_id       uuid        NOT NULL,
  change            text        NOT NULL,
  -- UPDATED and SUPERSEDED: the API field names whose stored value changed.
  changed_fields    text[]      NOT NULL DEFAULT '{}',
  actor             text        NOT NULL,
  changed_at        timestamptz NOT NULL DEFAULT now(),
  -- The version this change ended, when its content changed or the memory went away;
  -- all NULL otherwise (content IS NULL tells).
  conversation_id   uuid,
  kind              text,
  memory_key        text COLLATE "C",
  content           text,
  content_tsv       tsvector GENERATED ALWAYS AS (to_tsvector('english'::regconfig, content)) STORED,
  metadata          jsonb,
  -- No dimension: a version keeps the vector it had, whatever the deployment's
  -- dimension later becomes (as_of searches compare only vectors of the query's).
  embedding         vector,
  importance        real,
  source            text,
  expires_at        timestamptz,
  confirm_count     integer,
  last_confirmed_at timestamptz,
  created_at        timestamptz,
  valid_from        timestamptz,
  valid_to          timestamptz,
  -- No foreign keys: history outlives its memory, and the customer's erase deletes it
  -- explicitly (and counts it). The customer index is the primary key; the table is
  -- only ever read by customer or by memory.
  CONSTRAINT memory_history_pkey PRIMARY KEY (tenant_id, customer_id, seq),
  CONSTRAINT memory_history_change CHECK (change IN
    ('created', 'updated', 'superseded', 'confirmed', 'rejected', 'expired', 'deleted'))
);
CREATE INDEX memory_history_memory_idx ON memory_history (tenant_id, memory_id, seq);

CREATE FUNCTION cm_memory_history_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO memory_history (tenant_id, memory_id, customer_id, change, actor)
  SELECT n.tenant_id, n.id, n.customer_id, 'created',
         coalesce(nullif(current_setting('context_memory.actor', true), ''), 'system')
    FROM cm_new n;
  RETURN NULL;
END
$$;

CREATE FUNCTION cm_memory_history_update() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  tag text := coalesce(current_setting('context_memory.change', true), '');
BEGIN
  IF tag = 'untracked' THEN
    RETURN NULL;
  END IF;
  INSERT INTO memory_history (tenant_id, memory_id, customer_id, change, changed_fields, actor,
                              conversation_id, kind, memory_key, content, metadata, embedding, importance,
                              source, expires_at, confirm_count, last_confirmed_at, created_at,
                              valid_from, valid_to)
  SELECT o.tenant_id, o.id, o.customer_id,
         CASE tag WHEN 'upsert' THEN 'superseded' WHEN 'confirm' THEN 'confirmed' WHEN 'reject' THEN 'rejected'
                  ELSE 'updated' END,
         CASE WHEN tag IN ('confirm', 'reject') THEN '{}' ELSE f.fields END,
         coalesce(nullif(current_setting('context_memory.actor', true), ''), 'system'),
         CASE WHEN f.versioned THEN o.conversation_id END, CASE WHEN f.versioned THEN o.kind END,
         CASE WHEN f.versioned THEN o.memory_key END, CASE WHEN f.versioned THEN o.content END,
         CASE WHEN f.versioned THEN o.metadata END, CASE WHEN f.versioned THEN o.embedding END,
         CASE WHEN f.versioned THEN o.importance END, CASE WHEN f.versioned THEN o.source END,
         CASE WHEN f.versioned THEN o.expires_at END, CASE WHEN f.versioned THEN o.confirm_count END,
         CASE WHEN f.versioned THEN o.last_confirmed_at END, CASE WHEN f.versioned THEN o.created_at END,
         CASE WHEN f.versioned THEN coalesce(o.valid_from, o.created_at) END,
         CASE WHEN f.versioned THEN now() END
    FROM cm_old o
    JOIN cm_new n ON n.tenant_id = o.tenant_id AND n.id = o.id
   CROSS JOIN LATERAL (
     SELECT o.content IS DISTINCT FROM n.content AS versioned,
            array_remove(ARRAY[
              CASE WHEN o.kind IS DISTINCT FROM n.kind THEN 'kind' END,
              CASE WHEN o.memory_key IS DISTINCT FROM n.memory_key THEN 'key' END,
              CASE WHEN o.content IS DISTINCT FROM n.content THEN 'content' END,
              CASE WHEN o.metadata IS DISTINCT FROM n.metadata THEN 'metadata' END,
              CASE WHEN o.embedding IS DISTINCT FROM n.embedding THEN 'embedding' END,
              CASE WHEN o.importance IS DISTINCT FROM n.importance THEN 'importance' END,
              CASE WHEN o.source IS DISTINCT FROM n.source THEN 'source' END,
              CASE WHEN o.expires_at IS DISTINCT FROM n.expires_at THEN 'expire_time' END,
              CASE WHEN o.conversation_id IS DISTINCT FROM n.conversation_id THEN 'conversation_id' END
            ]::text[], NULL) AS fields) f
   -- A write the caller made is recorded even when it stored the same values; an untagged
   -- one only when it changed something other than the vector: a conversation purge's
   -- SET NULL is a change of the fact, a background worker storing a vector is not.
   WHERE tag <> '' OR cardinality(array_remove(f.fields, 'embedding')) > 0;
  RETURN NULL;
END
$$;

CREATE FUNCTION cm_memory_history_delete() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  tag text := coalesce(current_setting('context_memory.change', true), '');
BEGIN
  IF tag = 'erase' THEN
    RETURN NULL;
  END IF;
  INSERT INTO memory_history (tenant_id, memory_id, customer_id, change, actor,
                              conversation_id, kind, memory_key, content, metadata, embedding, importance,
                              source, expires_at, confirm_count, last_confirmed_at, created_at,
                              valid_from, valid_to)
  SELECT o.tenant_id, o.id, o.customer_id,
         CASE WHEN o.expires_at <= now() THEN 'expired' WHEN tag = 'reject' THEN 'rejected' ELSE 'deleted' END,
         coalesce(nullif(current_setting('context_memory.actor', true), ''), 'system'),
         o.conversation_id, o.kind, o.memory_key, o.content, o.metadata, o.embedding, o.importance,
         o.source, o.expires_at, o.confirm_count, o.last_confirmed_at, o.created_at,
         coalesce(o.valid_from, o.created_at),
         CASE WHEN o.expires_at <= now() THEN o.expires_at ELSE now() END
    FROM cm_old o;
  RETURN NULL;
END
$$;

CREATE TRIGGER memories_history_insert AFTER INSERT ON memories
  REFERENCING NEW TABLE AS cm_new FOR EACH STATEMENT EXECUTE FUNCTION cm_memory_history_insert();
CREATE TRIGGER memories_history_update AFTER UPDATE ON memories
  REFERENCING OLD TABLE AS cm_old NEW TABLE AS cm_new FOR EACH STATEMENT EXECUTE FUNCTION cm_memory_history_update();
CREATE TRIGGER memories_history_delete AFTER DELETE ON memories
  REFERENCING OLD TABLE AS cm_old FOR EACH STATEMENT EXECUTE FUNCTION cm_memory_history_delete();

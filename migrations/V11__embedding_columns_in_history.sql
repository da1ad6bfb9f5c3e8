-- context-memory schema, version 11: the memory history records each version's embedding
-- model (version 9's embedding_model), so an as_of search compares a query only with the
-- versions whose vectors are in the query's model's space, as it does for current rows.
--
-- The trigger functions of version 10 are replaced to copy embedding_model with the vector.
-- embedding_model is no API field and not in changed_fields, so the embedding worker's
-- untagged UPDATE (vector, model and queue columns only) is still not recorded.

ALTER TABLE memory_history ADD COLUMN embedding_model text;
-- Versions recorded before this one kept client vectors (version 9 named their model 'client').
UPDATE memory_history SET embedding_model = 'client' WHERE embedding IS NOT NULL;

CREATE OR REPLACE FUNCTION cm_memory_history_update() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  tag text := coalesce(current_setting('context_memory.change', true), '');
BEGIN
  IF tag = 'untracked' THEN
    RETURN NULL;
  END IF;
  INSERT INTO memory_history (tenant_id, memory_id, customer_id, change, changed_fields, actor,
                              conversation_id, kind, memory_key, content, metadata, embedding, embedding_model, importance,
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
         CASE WHEN f.versioned THEN o.embedding_model END,
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

CREATE OR REPLACE FUNCTION cm_memory_history_delete() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  tag text := coalesce(current_setting('context_memory.change', true), '');
BEGIN
  IF tag = 'erase' THEN
    RETURN NULL;
  END IF;
  INSERT INTO memory_history (tenant_id, memory_id, customer_id, change, actor,
                              conversation_id, kind, memory_key, content, metadata, embedding, embedding_model, importance,
                              source, expires_at, confirm_count, last_confirmed_at, created_at,
                              valid_from, valid_to)
  SELECT o.tenant_id, o.id, o.customer_id,
         CASE WHEN o.expires_at <= now() THEN 'expired' WHEN tag = 'reject' THEN 'rejected' ELSE 'deleted' END,
         coalesce(nullif(current_setting('context_memory.actor', true), ''), 'system'),
         o.conversation_id, o.kind, o.memory_key, o.content, o.metadata, o.embedding, o.embedding_model, o.importance,
         o.source, o.expires_at, o.confirm_count, o.last_confirmed_at, o.created_at,
         coalesce(o.valid_from, o.created_at),
         CASE WHEN o.expires_at <= now() THEN o.expires_at ELSE now() END
    FROM cm_old o;
  RETURN NULL;
END
$$;

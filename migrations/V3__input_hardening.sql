-- context-memory schema, version 3: rows hostile input could have left behind,
-- and the indexes that keep issue 12's bounded reads on an index.

-- ---------------------------------------------------------------------------
-- Embeddings whose norm makes pgvector's cosine distance NaN. pgvector sums the
-- squares in float32: past 3.4e38 the norm is infinite, below float32's
-- smallest normal number it is zero, and either way every similarity with the
-- vector is NaN (which ranked first in search). Before version 3 the server
-- accepted such vectors if each value was finite. The bounds are the server's
-- (Validator.MIN_SQUARED_NORM / MAX_SQUARED_NORM): float32's smallest normal
-- number and half its maximum. An affected embedding is removed (the memory or
-- summary stays, findable by text), and a CHECK keeps new ones out.
UPDATE memories SET embedding = NULL
 WHERE embedding IS NOT NULL
   AND NOT (vector_norm(embedding) ^ 2 BETWEEN 1.1754943508222875e-38 AND 1.7014117331926443e38);
UPDATE conversations SET summary_embedding = NULL
 WHERE summary_embedding IS NOT NULL
   AND NOT (vector_norm(summary_embedding) ^ 2 BETWEEN 1.1754943508222875e-38 AND 1.7014117331926443e38);
ALTER TABLE memories ADD CONSTRAINT memories_embedding_norm CHECK (
  embedding IS NULL OR vector_norm(embedding) ^ 2 BETWEEN 1.1754943508222875e-38 AND 1.7014117331926443e38);
ALTER TABLE conversations ADD CONSTRAINT conversations_summary_embedding_norm CHECK (
  summary_embedding IS NULL
  OR vector_norm(summary_embedding) ^ 2 BETWEEN 1.1754943508222875e-38 AND 1.7014117331926443e38);

-- ---------------------------------------------------------------------------
-- A memory must not name a conversation every read treats as absent. Deleting
-- a conversation now clears the link in the same transaction; this clears the
-- links soft deletes left before.
UPDATE memories m SET conversation_id = NULL
  FROM conversations c
 WHERE c.tenant_id = m.tenant_id AND c.id = m.conversation_id AND c.deleted_at IS NOT NULL;

-- ---------------------------------------------------------------------------
-- Tenant-wide GetConversationStats counts messages by time: without this index
-- it read every message of the tenant. The included columns let it count by
-- role and join to the conversation from the index alone.
CREATE INDEX messages_tenant_created_idx ON messages (tenant_id, created_at) INCLUDE (conversation_id, role);

-- The retention purge finds soft-deleted conversations past the retention in
-- deletion order, across tenants (like the memory-expiry index).
CREATE INDEX conversations_deleted_idx ON conversations (deleted_at) WHERE deleted_at IS NOT NULL;

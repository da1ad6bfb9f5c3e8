-- Tenant-wide ListConversations of the open conversations of one channel (an
-- agent console's "active conversations on SMS"), newest first by last message.
-- Without it that list sorts every conversation of the tenant; with it, it reads
-- one page of this index. Open conversations are a small share of a tenant's
-- rows (one per customer and thread), so the partial index stays small; it is a
-- further entry per append, which moves last_message_at (already not a HOT update,
-- since conversations_customer_recent_idx holds that column).
CREATE INDEX conversations_open_recent_idx
  ON conversations (tenant_id, channel, last_message_at DESC NULLS LAST, id DESC)
  WHERE closed_at IS NULL AND deleted_at IS NULL;

-- WatchConversations' transactional outbox (docs/architecture.md "Watch streams").
--
-- Every write to a conversation inserts one row here in its own transaction, after
-- it holds the conversation's row lock, with position NULL. A row gets its
-- position only after it has committed: a sequencer pass (any replica, one at a
-- time under a transaction-level advisory lock) numbers the committed pending rows
-- in id order from conversation_event_positions and commits. Readers read only
-- positioned rows, in position order, so a reader that has passed position p has
-- seen every row that will ever hold a position <= p: a row committing late simply
-- gets a later position. Per conversation, ids follow commit order because an id
-- is drawn while the conversation's row lock is held (hence CACHE 1: with a cache,
-- two sessions' ids would not follow the order in which they were drawn).
CREATE TABLE conversation_events (
  tenant_id        text        NOT NULL,
  id               bigint      NOT NULL GENERATED ALWAYS AS IDENTITY (CACHE 1),
  -- Global, gap-tolerant, assigned after commit; NULL until then.
  position         bigint,
  conversation_id  uuid        NOT NULL,
  customer_id      uuid        NOT NULL,
  channel          text        NOT NULL,
  -- message_appended, conversation_opened, conversation_closed, conversation_updated,
  -- conversation_deleted, handoff_changed.
  kind             text        NOT NULL,
  -- For message_appended: the message's sequence in its conversation (the message is
  -- read from messages when the event is delivered, so its text is stored once).
  message_sequence bigint,
  -- For handoff_changed: the transition's state and details.
  payload          jsonb,
  created_at       timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT conversation_events_pkey PRIMARY KEY (tenant_id, id),
  CONSTRAINT conversation_events_kind_check CHECK (kind IN ('message_appended', 'conversation_opened',
    'conversation_closed', 'conversation_updated', 'conversation_deleted', 'handoff_changed'))
);

-- The sequencer's work list: committed rows not yet numbered (across tenants).
CREATE INDEX conversation_events_pending_idx ON conversation_events (id) WHERE position IS NULL;
-- The per-server poller reads every tenant's new events in position order, and the
-- retention purge deletes the oldest: both across tenants by design, like the
-- expiry sweeper's index.
CREATE UNIQUE INDEX conversation_events_position_key ON conversation_events (position) WHERE position IS NOT NULL;
-- A resuming subscriber catches up on its own tenant's events.
CREATE INDEX conversation_events_tenant_position_idx ON conversation_events (tenant_id, position)
  WHERE position IS NOT NULL;

CREATE SEQUENCE conversation_event_positions AS bigint CACHE 1;

-- The highest position the retention purge has deleted: a cursor below it may have
-- missed events and must resync (FAILED_PRECONDITION CURSOR_EXPIRED).
CREATE TABLE conversation_event_retention (
  singleton       boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  purged_through  bigint  NOT NULL DEFAULT 0
);
INSERT INTO conversation_event_retention DEFAULT VALUES;

-- Erasing a customer deletes the events that carry free text (handoff details);
-- only those have a payload, so this index stays small and appends never touch it.
CREATE INDEX conversation_events_customer_payload_idx ON conversation_events (tenant_id, customer_id)
  WHERE payload IS NOT NULL;

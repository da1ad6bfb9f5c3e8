-- context-memory schema, version 7: handing a conversation to a human agent and back.
--
-- A conversation's handoff state is orthogonal to open/closed. conversations.handoff_state
-- says who handles it now ('ai', or a human handoff 'requested' / 'accepted'), so a read of the
-- conversation tells an agent runtime whether it may answer without another query; it is written
-- only together with the handoffs row that explains it, in one transaction (HandoffStore).
-- handoffs keeps every handoff with the time and actor of each transition: its history.
ALTER TABLE conversations
  ADD COLUMN handoff_state text NOT NULL DEFAULT 'ai',
  ADD CONSTRAINT conversations_handoff_state CHECK (handoff_state IN ('ai', 'requested', 'accepted'));

CREATE TABLE handoffs (
  tenant_id         text        NOT NULL,
  id                uuid        NOT NULL,
  conversation_id   uuid        NOT NULL,
  -- Copied from the conversation (both never change), so the queue filters and usage metrics
  -- group by channel without a join.
  customer_id       uuid        NOT NULL,
  channel           text        NOT NULL,
  state             text        NOT NULL DEFAULT 'requested',
  reason            text        NOT NULL DEFAULT '',
  -- Higher is more urgent; the queue is served highest first, then oldest first.
  priority          integer     NOT NULL DEFAULT 0,
  -- Idempotency key of the RequestHandoff call that made this row (AIP-155).
  request_id        text COLLATE "C",
  requested_at      timestamptz NOT NULL DEFAULT now(),
  -- Actors are API key prefixes ('local' without authentication), as in audit_events.
  requested_by      text        NOT NULL,
  -- The human agent, an opaque id from the host system.
  assignee_id       text,
  accepted_at       timestamptz,
  accepted_by       text,
  completed_at      timestamptz,
  completed_by      text,
  resolution        text        NOT NULL DEFAULT '',
  -- Whether completing it also closed the conversation.
  closed_conversation boolean   NOT NULL DEFAULT false,
  cancelled_at      timestamptz,
  cancelled_by      text,
  created_at        timestamptz NOT NULL DEFAULT now(),
  updated_at        timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT handoffs_pkey PRIMARY KEY (tenant_id, id),
  CONSTRAINT handoffs_conversation_fkey FOREIGN KEY (tenant_id, conversation_id)
    REFERENCES conversations (tenant_id, id) ON DELETE CASCADE,
  CONSTRAINT handoffs_state CHECK (state IN ('requested', 'accepted', 'completed', 'cancelled')),
  CONSTRAINT handoffs_priority_range CHECK (priority BETWEEN 0 AND 100),
  -- Each state carries exactly the stamps of the transitions that led to it.
  CONSTRAINT handoffs_stamps CHECK (
    (accepted_at IS NOT NULL) = (assignee_id IS NOT NULL AND accepted_by IS NOT NULL)
    AND (completed_at IS NOT NULL) = (completed_by IS NOT NULL)
    AND (cancelled_at IS NOT NULL) = (cancelled_by IS NOT NULL)
    AND CASE state
          WHEN 'requested' THEN accepted_at IS NULL AND completed_at IS NULL AND cancelled_at IS NULL
          WHEN 'accepted'  THEN accepted_at IS NOT NULL AND completed_at IS NULL AND cancelled_at IS NULL
          WHEN 'completed' THEN accepted_at IS NOT NULL AND completed_at IS NOT NULL AND cancelled_at IS NULL
          WHEN 'cancelled' THEN completed_at IS NULL AND cancelled_at IS NOT NULL
        END)
);
-- At most one active (requested or accepted) handoff per conversation: the arbiter behind
-- conversations.handoff_state.
CREATE UNIQUE INDEX handoffs_one_active
  ON handoffs (tenant_id, conversation_id) WHERE state IN ('requested', 'accepted');
CREATE UNIQUE INDEX handoffs_request_key ON handoffs (tenant_id, request_id);
-- ListHandoffQueue: requested, not yet accepted; highest priority, then oldest, read in order.
-- The queue is small (it drains), so the channel filter reads it without an index of its own.
CREATE INDEX handoffs_queue_idx
  ON handoffs (tenant_id, priority DESC, requested_at, id) WHERE state = 'requested';
-- ListHandoffs: a conversation's history, newest first.
CREATE INDEX handoffs_conversation_idx ON handoffs (tenant_id, conversation_id, requested_at DESC, id DESC);
-- Usage metrics and statistics over a time range.
CREATE INDEX handoffs_requested_idx ON handoffs (tenant_id, requested_at);
CREATE TRIGGER handoffs_touch BEFORE UPDATE ON handoffs
  FOR EACH ROW EXECUTE FUNCTION cm_touch_updated_at();

-- A human agent's replies are messages of their own role, so statistics, usage metrics and role
-- filters tell them from the model's. NOT VALID then VALIDATE: the swap takes the short lock only,
-- the scan of existing rows runs under a lock that lets appends continue.
ALTER TABLE messages DROP CONSTRAINT messages_role;
ALTER TABLE messages ADD CONSTRAINT messages_role
  CHECK (role IN ('user', 'assistant', 'system', 'tool', 'human_agent')) NOT VALID;
ALTER TABLE messages VALIDATE CONSTRAINT messages_role;

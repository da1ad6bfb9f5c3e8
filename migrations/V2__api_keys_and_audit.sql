-- context-memory schema, version 2: API keys that name a tenant, and the audit trail.
--
-- api_keys is the one table looked up before the tenant is known: a presented key
-- `cm_<prefix>_<secret>` is found by its public prefix alone, so the prefix is unique
-- across tenants (it is random, 50 bits; the server retries on the rare collision).
-- Only SHA-256 of the secret is stored; the whole key is shown once, at creation.
-- In a distributed (Citus) deployment it is a reference table, like audit_events is a
-- table distributed by tenant_id.

CREATE TABLE api_keys (
  tenant_id     text        NOT NULL,
  id            uuid        NOT NULL,
  name          text        NOT NULL,
  prefix        text COLLATE "C" NOT NULL,
  secret_sha256 bytea       NOT NULL,
  scopes        text[]      NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  expires_at    timestamptz,
  revoked_at    timestamptz,
  -- Written at most once a minute per key, in batches off the request path.
  last_used_at  timestamptz,
  CONSTRAINT api_keys_pkey PRIMARY KEY (tenant_id, id),
  CONSTRAINT api_keys_prefix_format CHECK (prefix ~ '^[a-z2-7]{10}$'),
  CONSTRAINT api_keys_hash_length CHECK (octet_length(secret_sha256) = 32),
  CONSTRAINT api_keys_name_length CHECK (char_length(name) BETWEEN 1 AND 200),
  CONSTRAINT api_keys_scopes_known CHECK (
    cardinality(scopes) > 0 AND scopes <@ ARRAY['read', 'write', 'erase', 'admin']::text[])
);
CREATE UNIQUE INDEX api_keys_prefix_key ON api_keys (prefix);
-- ListApiKeys: a tenant's keys, newest first with a (created_at, id) cursor.
CREATE INDEX api_keys_recent_idx ON api_keys (tenant_id, created_at DESC, id DESC);

-- audit_events: who created or revoked a key, erased a customer or deleted rows for good.
-- No foreign key to anything it names: erasing a customer never deletes its audit rows
-- (target_id is the erased row's id, which names nobody once the row is gone).
CREATE TABLE audit_events (
  tenant_id   text        NOT NULL,
  id          uuid        NOT NULL,
  occurred_at timestamptz NOT NULL DEFAULT now(),
  -- The acting key's public prefix, or 'cli' (scripts/run keys) or 'local' (auth none).
  actor       text        NOT NULL,
  action      text        NOT NULL,
  target_type text        NOT NULL,
  target_id   text        NOT NULL,
  -- What the action removed, e.g. {"messages": 12, "memories": 3}.
  counts      jsonb       NOT NULL DEFAULT '{}',
  CONSTRAINT audit_events_pkey PRIMARY KEY (tenant_id, id),
  CONSTRAINT audit_events_action_known CHECK (action IN (
    'api_key.create', 'api_key.revoke', 'customer.erase', 'customer.delete',
    'memory.delete', 'address.remove')),
  CONSTRAINT audit_events_counts_object CHECK (jsonb_typeof(counts) = 'object')
);
CREATE INDEX audit_events_recent_idx ON audit_events (tenant_id, occurred_at DESC, id DESC);

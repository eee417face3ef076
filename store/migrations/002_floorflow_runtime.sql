-- What the runtime itself needs: the machine registry with hashed (and sealed) secrets,
-- machine presence, flow deployments and HTTP idempotency keys.
CREATE SCHEMA IF NOT EXISTS floorflow;

-- Registered machines and scanners (CONTRACT.md §3). secret_hash verifies MQTT logins;
-- secret_sealed lets the runtime check callback HMACs, which are keyed with the secret.
-- Presence columns answer "which machines are online and since when"; session_seq grows
-- by one per connection, in the spirit of Sparkplug's bdSeq, so a late disconnect of an
-- old session cannot mark a newer session offline.
CREATE TABLE IF NOT EXISTS floorflow.machines (
  machine_id text PRIMARY KEY CHECK (machine_id ~ '^[A-Za-z0-9_-]{1,64}$'),
  kind text NOT NULL CHECK (kind IN ('embosser', 'scanner', 'press', 'engraver')),
  secret_hash text NOT NULL,
  secret_sealed text NOT NULL,
  profile text,
  settings jsonb NOT NULL DEFAULT '{}'::jsonb,
  created_at timestamptz NOT NULL DEFAULT now(),
  secret_rotated_at timestamptz NOT NULL DEFAULT now(),
  online boolean NOT NULL DEFAULT false,
  online_since timestamptz,
  last_seen_at timestamptz,
  session_seq bigint NOT NULL DEFAULT 0,
  last_status jsonb,
  last_status_at timestamptz
);

CREATE TABLE IF NOT EXISTS floorflow.machine_sessions (
  machine_id text NOT NULL REFERENCES floorflow.machines (machine_id) ON DELETE CASCADE,
  session_seq bigint NOT NULL,
  client_id text NOT NULL,
  runtime_id text NOT NULL,
  connected_at timestamptz NOT NULL DEFAULT now(),
  disconnected_at timestamptz,
  end_reason text,
  PRIMARY KEY (machine_id, session_seq)
);

-- One row per deploy: who, when, and the content hash and version of every flow.
CREATE TABLE IF NOT EXISTS floorflow.flow_deployments (
  id bigserial PRIMARY KEY,
  deployed_at timestamptz NOT NULL DEFAULT now(),
  deployed_by text,
  deploy_type text,
  package_version text,
  flows jsonb NOT NULL DEFAULT '[]'::jsonb
);

-- HTTP requests with an Idempotency-Key take effect once (CONTRACT.md §2).
CREATE TABLE IF NOT EXISTS floorflow.idempotency_keys (
  scope text NOT NULL,
  key text NOT NULL,
  status_code integer NOT NULL,
  response jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (scope, key)
);

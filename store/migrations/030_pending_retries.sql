-- Messages a floorflow-retry-backoff node holds until their next attempt is due. Kept in
-- the database so a restart (or a redeploy) fires them when due instead of dropping them.
-- node_id is the Node-RED id of the retry node; msg is the message as JSON without the
-- HTTP req/res objects, which cannot outlive the process anyway.
CREATE TABLE IF NOT EXISTS floorflow.pending_retries (
    id         bigserial PRIMARY KEY,
    node_id    text NOT NULL,
    due_at     timestamptz NOT NULL,
    attempt    integer NOT NULL CHECK (attempt >= 2),
    msg        jsonb NOT NULL,
    last_error jsonb,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS pending_retries_node_due_idx ON floorflow.pending_retries (node_id, due_at, id);

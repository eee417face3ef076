-- Nonces of signed machine callbacks (CONTRACT.md §4), remembered for the signature window:
-- a nonce used again for another request is refused, and an exact repeat of an accepted
-- callback (same nonce, path and body, as a retrying machine sends it) gets the first answer
-- again instead of being applied twice. Rows older than the window are deleted by the runtime.
CREATE TABLE IF NOT EXISTS embossing.callback_nonces (
  machine_id text NOT NULL,
  nonce text NOT NULL,
  request_path text NOT NULL,
  body_sha256 text NOT NULL,
  received_at timestamptz NOT NULL,
  answered_at timestamptz,
  answer_status integer,
  answer jsonb,
  PRIMARY KEY (machine_id, nonce)
);

CREATE INDEX IF NOT EXISTS callback_nonces_received_at ON embossing.callback_nonces (received_at);

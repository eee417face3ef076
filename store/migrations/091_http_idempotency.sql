-- Issue 15: every POST route honours Idempotency-Key (runtime/idempotency.ts). A key is claimed
-- (status_code NULL) before the route runs and gets its answer when the route answers, so a
-- second copy arriving meanwhile waits instead of running the route twice. request_route and
-- request_hash tell a replay (same route and body: the first answer again) from a key reused
-- for another request (422).
ALTER TABLE floorflow.idempotency_keys ALTER COLUMN status_code DROP NOT NULL;
ALTER TABLE floorflow.idempotency_keys ALTER COLUMN response DROP NOT NULL;
ALTER TABLE floorflow.idempotency_keys ADD COLUMN IF NOT EXISTS request_route text;
ALTER TABLE floorflow.idempotency_keys ADD COLUMN IF NOT EXISTS request_hash text;
ALTER TABLE floorflow.idempotency_keys ADD COLUMN IF NOT EXISTS answered_at timestamptz;
-- Keys are kept 24 h; the pruning reads them by age.
CREATE INDEX IF NOT EXISTS idempotency_keys_created_idx ON floorflow.idempotency_keys (created_at);

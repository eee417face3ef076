-- 040: PostgreSQL as the durable queue of seeds 003 and 004 (it replaces their SQS, Temporal
-- and MySQL). A claimed job carries a lease: the runtime that holds it (lease_owner) and a
-- token per claim (lease_token). Every write a worker makes after the claim names the token,
-- so a worker whose job was taken back (stuck monitor, restart) can no longer change it:
-- a job is never run to completion twice.

-- processing: completed_stage is the last stage whose effects are recorded; a retried job
-- resumes after it (docs/processing.md, "kill -9 rule").
ALTER TABLE processing.processing_jobs ADD COLUMN IF NOT EXISTS completed_stage text;
ALTER TABLE processing.processing_jobs ADD COLUMN IF NOT EXISTS lease_owner text;
ALTER TABLE processing.processing_jobs ADD COLUMN IF NOT EXISTS lease_token uuid;
-- The worker's active-slot count per runtime.
CREATE INDEX IF NOT EXISTS processing_jobs_lease_idx ON processing.processing_jobs (lease_owner)
    WHERE status = 'processing';

-- engraving: the machine a job is on, the one that last failed it (a reassignment avoids
-- it), how many machine errors it had, and the QA failures (retry_count in the API).
ALTER TABLE engraving.engraving_jobs ADD COLUMN IF NOT EXISTS last_failed_machine text;
ALTER TABLE engraving.engraving_jobs ADD COLUMN IF NOT EXISTS machine_errors integer NOT NULL DEFAULT 0;
ALTER TABLE engraving.engraving_jobs ADD COLUMN IF NOT EXISTS stock_reserved boolean NOT NULL DEFAULT false;
ALTER TABLE engraving.engraving_jobs ADD COLUMN IF NOT EXISTS escalation_reason text;
ALTER TABLE engraving.engraving_jobs ADD COLUMN IF NOT EXISTS idempotency_key text;
ALTER TABLE engraving.engraving_jobs ADD COLUMN IF NOT EXISTS queued_at timestamptz;
-- A POST with an Idempotency-Key creates one job.
CREATE UNIQUE INDEX IF NOT EXISTS engraving_jobs_idempotency_key ON engraving.engraving_jobs (idempotency_key)
    WHERE idempotency_key IS NOT NULL;
-- One job at a time per engraver: two dispatches cannot both give a machine a job.
CREATE UNIQUE INDEX IF NOT EXISTS engraving_jobs_one_per_machine ON engraving.engraving_jobs (machine_id)
    WHERE status = 'engraving';
-- Blocked jobs waiting for stock of an item, oldest rush first.
CREATE INDEX IF NOT EXISTS engraving_jobs_blocked_idx ON engraving.engraving_jobs (item_id, priority, due_date, id)
    WHERE status = 'blocked';

-- Every status change of an engraving job (the seed's "Status Updates"): audit trail, and
-- what the metrics (completion time, completed today) are computed from.
CREATE TABLE IF NOT EXISTS engraving.job_events (
    id           bigserial PRIMARY KEY,
    job_id       bigint NOT NULL REFERENCES engraving.engraving_jobs (id),
    from_status  text,
    to_status    text NOT NULL,
    reason       text,
    machine_id   text,
    details      jsonb,
    flow_version text,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS job_events_job_idx ON engraving.job_events (job_id, id);

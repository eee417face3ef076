-- 044: engraving jobs that wait on an engraver have a durable deadline (issue 15), a state the
-- floor can act on when it passes (needs_attention, with the reason in plain words), and can be
-- cancelled by an operator from any state that is not final.

ALTER TABLE engraving.engraving_jobs DROP CONSTRAINT IF EXISTS engraving_jobs_status_check;
ALTER TABLE engraving.engraving_jobs ADD CONSTRAINT engraving_jobs_status_check CHECK (status IN (
    'queued', 'designing', 'pending_approval', 'engraving', 'qa', 'complete',
    'blocked', 'revision_requested', 'escalated', 'needs_attention', 'cancelled'));

-- deadline_at: when the engraver holding the job must have acknowledged it (accepted) or, once
-- accepted, reported again (in_progress, completed, failed). It lives in the row, so a restart
-- or another runtime picks it up; the monitor claims expired rows with SKIP LOCKED.
ALTER TABLE engraving.engraving_jobs ADD COLUMN IF NOT EXISTS deadline_at timestamptz;
ALTER TABLE engraving.engraving_jobs ADD COLUMN IF NOT EXISTS accepted_at timestamptz;
ALTER TABLE engraving.engraving_jobs ADD COLUMN IF NOT EXISTS last_heard_at timestamptz;
-- What an operator needs to read to act on a needs_attention job, and why a job was cancelled.
ALTER TABLE engraving.engraving_jobs ADD COLUMN IF NOT EXISTS attention_reason text;
ALTER TABLE engraving.engraving_jobs ADD COLUMN IF NOT EXISTS cancel_reason text;
-- The engraving time estimated when the job was sent (seconds), from the engraver's settings.
ALTER TABLE engraving.engraving_jobs ADD COLUMN IF NOT EXISTS estimated_seconds integer;

CREATE INDEX IF NOT EXISTS engraving_jobs_deadline_idx ON engraving.engraving_jobs (deadline_at)
    WHERE status = 'engraving';

-- A cancelled job's pending design is closed; a revised design supersedes nothing (the rejected
-- one stays as it was decided).
ALTER TABLE engraving.designs DROP CONSTRAINT IF EXISTS designs_status_check;
ALTER TABLE engraving.designs ADD CONSTRAINT designs_status_check CHECK (status IN (
    'pending_approval', 'approved', 'rejected', 'auto_approved', 'cancelled'));

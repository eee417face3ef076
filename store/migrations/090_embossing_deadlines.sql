-- Issue 15: every wait on an embosser has a deadline kept here, not in a runtime's timer, so a
-- restart or a second runtime finds overdue jobs instead of forgetting them. answer_due_at is
-- set when a command is sent and moved on by the machine's accepted / in_progress events;
-- answer_timeout_ms is the wait the job's profile (or the embosser node) gave it, so any
-- runtime extends it alike. A job past its deadline goes to needs_attention: the machine may
-- have acted on the command, so a person decides (Retry or Cancel), never an automatic re-send.
ALTER TABLE embossing.embossing_jobs ADD COLUMN IF NOT EXISTS answer_due_at timestamptz;
ALTER TABLE embossing.embossing_jobs ADD COLUMN IF NOT EXISTS answer_timeout_ms integer;

ALTER TABLE embossing.embossing_jobs DROP CONSTRAINT IF EXISTS embossing_jobs_status_check;
ALTER TABLE embossing.embossing_jobs ADD CONSTRAINT embossing_jobs_status_check CHECK (status IN (
    'queued', 'sent', 'accepted', 'in_progress', 'needs_attention', 'completed', 'failed', 'cancelled'));

-- Jobs already at a machine when this runs wait the shipped default (120 s) from their last change.
UPDATE embossing.embossing_jobs
   SET answer_due_at = COALESCE(updated_at, sent_at, now()) + interval '120 seconds', answer_timeout_ms = 120000
 WHERE status IN ('sent', 'accepted', 'in_progress') AND answer_due_at IS NULL;

-- The sweep that finds overdue jobs reads only jobs at a machine.
CREATE INDEX IF NOT EXISTS embossing_jobs_answer_due_idx ON embossing.embossing_jobs (answer_due_at, id)
    WHERE status IN ('sent', 'accepted', 'in_progress');

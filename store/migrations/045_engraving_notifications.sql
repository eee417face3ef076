-- 045: customer notifications of seed 003 (createDesign's design_ready, INVENTORY_DEPLETED's
-- notice, the swimlane's "Notify Complete") as an outbox: each row is written in the same
-- transaction as the change it announces, so a notification is neither lost nor invented by a
-- crash, and a sender (pluggable; by default it logs what it would send) delivers it later.
CREATE TABLE IF NOT EXISTS engraving.notifications (
    id          bigserial PRIMARY KEY,
    job_id      bigint NOT NULL REFERENCES engraving.engraving_jobs (id),
    customer_id text NOT NULL,
    event       text NOT NULL CHECK (event IN ('design_ready', 'inventory_depleted', 'job_complete', 'job_cancelled')),
    payload     jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at  timestamptz NOT NULL,
    sent_at     timestamptz,
    sent_by     text,
    attempts    integer NOT NULL DEFAULT 0,
    last_error  text
);
-- The relay reads the unsent rows, oldest first.
CREATE INDEX IF NOT EXISTS notifications_unsent_idx ON engraving.notifications (id) WHERE sent_at IS NULL;
CREATE INDEX IF NOT EXISTS notifications_job_idx ON engraving.notifications (job_id, id);

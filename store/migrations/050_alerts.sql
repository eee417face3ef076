-- 050: alerts raised by the floorflow-alerts node (seed 003 "alerts"): one row per alert
-- from when its condition began to when it ended. alert_key names the condition
-- ("queue_depth:embossing", "machine_silent:press-4"); the partial unique index allows one
-- open row per key, so two evaluations racing (two runtimes, a redeploy) cannot open the
-- same alert twice, and the open rows are what a restarted runtime resumes from.
CREATE TABLE IF NOT EXISTS floorflow.alerts (
    id         bigserial PRIMARY KEY,
    alert_key  text NOT NULL,
    rule       text NOT NULL,
    severity   text NOT NULL DEFAULT 'warning' CHECK (severity IN ('warning', 'critical')),
    message    text NOT NULL,
    details    jsonb NOT NULL DEFAULT '{}'::jsonb,
    began_at   timestamptz NOT NULL,
    ended_at   timestamptz,
    CONSTRAINT alerts_ended_after_began CHECK (ended_at IS NULL OR ended_at >= began_at)
);
CREATE UNIQUE INDEX IF NOT EXISTS alerts_one_open_key ON floorflow.alerts (alert_key) WHERE ended_at IS NULL;
CREATE INDEX IF NOT EXISTS alerts_began_idx ON floorflow.alerts (began_at DESC, id DESC);

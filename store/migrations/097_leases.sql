-- 097: leases for running several runtimes on one database (docs/scale-out.md). A lease names one
-- piece of work that must have one owner at a time (an MQTT ingest session, the alert rules, the
-- stuck-job monitor) or one live runtime ("runtime/<id>"). Its holder renews it; once expires_at
-- has passed any runtime may take it. Expiry is read on the database's clock only, so runtimes on
-- machines whose clocks disagree still agree on who holds what.
CREATE TABLE IF NOT EXISTS floorflow.leases (
    name        text PRIMARY KEY,
    holder      text NOT NULL,
    expires_at  timestamptz NOT NULL,
    acquired_at timestamptz NOT NULL,
    renewed_at  timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS leases_holder_idx ON floorflow.leases (holder);

-- 094: every scan that did not change a job is visible (issue 15). Rejected scans are in
-- jobmanager.rejected_scans and skipped ones in the processed-record ledger; a scan left out as
-- the same scan sent twice (same machine, code and operations within the double-send window) was
-- stored nowhere. It is kept here, with the reason, for the job-status floor page.
CREATE TABLE IF NOT EXISTS jobmanager.ignored_scans (
    id          bigserial PRIMARY KEY,
    machine_id  text NOT NULL,
    code_text   text NOT NULL,
    reason      text NOT NULL,
    received_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS ignored_scans_received_idx ON jobmanager.ignored_scans (received_at DESC);

-- The floor page reads the latest skipped scans without walking every applied one.
CREATE INDEX IF NOT EXISTS processed_source_records_scan_skips_idx
    ON jobmanager.processed_source_records (processed_at DESC)
    WHERE source_type = 'scanner' AND outcome <> 'applied';
CREATE INDEX IF NOT EXISTS rejected_scans_received_idx ON jobmanager.rejected_scans (received_at DESC);

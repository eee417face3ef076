-- 010: what job-status processing (seed 001, issue 4) needs beside the seed's tables:
-- the processed-record ledger that makes every source record take effect once, the file
-- index and file print states behind "a job is printed when all its files are", the
-- per-operation claims behind the precedence rules, rejected scans, and NOTIFY wake-ups.

-- One row per source record processed ("print OS".id or scanned_codes.scan_id), written in
-- the transaction of its effects. Claiming a record is INSERT ... ON CONFLICT DO NOTHING
-- RETURNING, so a record read twice (a look-back re-read, a second poller, the live scan path
-- and the scanner poller, a reprocess) is applied by exactly one transaction. Skipped records
-- are kept with their reason, so the marker can pass them and an operator can see why.
CREATE TABLE IF NOT EXISTS jobmanager.processed_source_records (
    source_type  text NOT NULL CHECK (source_type IN ('print_os', 'scanner')),
    source_id    bigint NOT NULL,
    marker       bigint NOT NULL,
    outcome      text NOT NULL CHECK (outcome IN ('applied', 'skipped')),
    reason       text,
    jobs_updated integer NOT NULL DEFAULT 0,
    flow_version text,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source_type, source_id)
);
CREATE INDEX IF NOT EXISTS processed_source_records_marker_idx
    ON jobmanager.processed_source_records (source_type, marker);
CREATE INDEX IF NOT EXISTS processed_source_records_skipped_idx
    ON jobmanager.processed_source_records (source_type, marker) WHERE outcome = 'skipped';

-- Which job each mapped file belongs to. The job id is parsed from the file id in
-- TypeScript (core/scan-code parseFileId, whose pattern is configurable), not in SQL, so
-- new mapping rows arrive here with job_id NULL and the processor parses them in one pass
-- before it needs them; a file id that names no job keeps its parse_error. The job_id index
-- answers "every file of these jobs, across impositions" (seed §3.3) in one statement.
CREATE TABLE IF NOT EXISTS jobmanager.job_files (
    imposition_id text NOT NULL,
    file_id       text NOT NULL,
    job_id        text,
    parse_error   text,
    PRIMARY KEY (imposition_id, file_id)
);
CREATE INDEX IF NOT EXISTS job_files_job_idx ON jobmanager.job_files (job_id) WHERE job_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS job_files_unparsed_idx ON jobmanager.job_files (imposition_id)
    WHERE job_id IS NULL AND parse_error IS NULL;

CREATE OR REPLACE FUNCTION jobmanager.job_files_follow_mapping() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO jobmanager.job_files (imposition_id, file_id)
        SELECT imposition_id, file_id FROM new_rows
        ON CONFLICT DO NOTHING;
    ELSE
        DELETE FROM jobmanager.job_files j USING old_rows o
        WHERE j.imposition_id = o.imposition_id AND j.file_id = o.file_id;
    END IF;
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS job_files_on_insert ON logs.imposition_file_mapping;
CREATE TRIGGER job_files_on_insert AFTER INSERT ON logs.imposition_file_mapping
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION jobmanager.job_files_follow_mapping();
DROP TRIGGER IF EXISTS job_files_on_delete ON logs.imposition_file_mapping;
CREATE TRIGGER job_files_on_delete AFTER DELETE ON logs.imposition_file_mapping
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
    EXECUTE FUNCTION jobmanager.job_files_follow_mapping();

INSERT INTO jobmanager.job_files (imposition_id, file_id)
SELECT imposition_id, file_id FROM logs.imposition_file_mapping
ON CONFLICT DO NOTHING;

-- What the press has done to each file. printed and aborted only ever become true: a file
-- printed once stays printed when a later reprint of its imposition is aborted.
CREATE TABLE IF NOT EXISTS jobmanager.print_file_states (
    file_id    text PRIMARY KEY,
    printed    boolean NOT NULL DEFAULT false,
    aborted    boolean NOT NULL DEFAULT false,
    source_id  bigint,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- The claim behind each flag in jobs.operations: which source set it, from which record,
-- and when it happened, so the precedence rules (seed §5.3) can be applied to the next claim.
CREATE TABLE IF NOT EXISTS jobmanager.job_operation_claims (
    job_id         text NOT NULL REFERENCES jobmanager.jobs (job_id),
    operation_name text NOT NULL,
    value          boolean NOT NULL,
    source_type    text NOT NULL CHECK (source_type IN ('print_os', 'scanner', 'api')),
    source_id      bigint,
    effective_at   timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, operation_name)
);

-- Scans that can never be stored (not JSON, no code, bad operations). They are acknowledged,
-- so the scanner does not resend them forever, and kept here with the reason.
CREATE TABLE IF NOT EXISTS jobmanager.rejected_scans (
    id          bigserial PRIMARY KEY,
    machine_id  text NOT NULL,
    payload     text NOT NULL,
    reason      text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);

-- The scanner double-send rule looks for the same code from the same machine, without a
-- msg_id, received within the last few seconds.
CREATE INDEX IF NOT EXISTS scanned_codes_double_send_idx
    ON jobmanager.scanned_codes (machine_id, code_text, received_at DESC) WHERE msg_id IS NULL;

-- Wake-ups for the pollers: one notification per inserting statement, not per row, so a
-- bulk load of the printer's backlog sends one. Pollers still poll on their interval, so a
-- lost notification only delays.
CREATE OR REPLACE FUNCTION jobmanager.notify_source_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(TG_ARGV[0], '');
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS print_os_notify ON jobmanager."print OS";
CREATE TRIGGER print_os_notify AFTER INSERT ON jobmanager."print OS"
    FOR EACH STATEMENT EXECUTE FUNCTION jobmanager.notify_source_insert('floorflow_print_os');
DROP TRIGGER IF EXISTS scanned_codes_notify ON jobmanager.scanned_codes;
CREATE TRIGGER scanned_codes_notify AFTER INSERT ON jobmanager.scanned_codes
    FOR EACH STATEMENT EXECUTE FUNCTION jobmanager.notify_source_insert('floorflow_scanned_codes');

-- 011: the durable machine inbox (issue 14). Every machine publish that changes state is
-- committed before its PUBACK: scans in jobmanager.scanned_codes (as before), events here, the
-- latest status in floorflow.machines.last_status. Consumers apply inbox rows exactly once
-- through the processed-record ledger, which now also holds machine events, per consumer.

-- One row per event a machine published, in the order the broker received them. machine_kind is
-- the machine's kind when the event arrived, so each consumer reads its own machines' events (an
-- engraver's event never reaches the embossing flow) without a join, and an event of a machine
-- removed since still says what it came from. An event that is not JSON PostgreSQL can hold is
-- kept all the same: payload NULL, the bytes escaped in raw, and the reason.
CREATE TABLE IF NOT EXISTS floorflow.machine_events (
    event_id     bigserial PRIMARY KEY,
    machine_id   text NOT NULL,
    machine_kind text,
    topic        text NOT NULL,
    payload      jsonb,
    raw          text,
    reason       text,
    received_at  timestamptz NOT NULL,
    CHECK (payload IS NOT NULL OR (raw IS NOT NULL AND reason IS NOT NULL))
);
CREATE INDEX IF NOT EXISTS machine_events_kind_idx ON floorflow.machine_events (machine_kind, event_id);

-- The ledger takes machine events (source_type '<consumer>_event', source_id = event_id), and
-- records a record that failed on its own with the reason ('failed'), so one bad record neither
-- blocks its batch nor comes back forever; a reprocess tries failed records again.
ALTER TABLE jobmanager.processed_source_records
    DROP CONSTRAINT IF EXISTS processed_source_records_source_type_check;
ALTER TABLE jobmanager.processed_source_records
    ADD CONSTRAINT processed_source_records_source_type_check
    CHECK (source_type IN ('print_os', 'scanner') OR source_type ~ '^[a-z][a-z_]*_event$');
ALTER TABLE jobmanager.processed_source_records
    DROP CONSTRAINT IF EXISTS processed_source_records_outcome_check;
ALTER TABLE jobmanager.processed_source_records
    ADD CONSTRAINT processed_source_records_outcome_check
    CHECK (outcome IN ('applied', 'skipped', 'failed'));

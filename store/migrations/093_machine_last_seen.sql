-- 093: "last seen" is the last message or connection of any kind (issue 15). Connections and
-- statuses already move floorflow.machines.last_seen_at; scans, rejected scans and events now do
-- too, whatever path stores them (the inbox's flush statement, a single insert), through one
-- statement-level trigger per table. Accurate to a second: a machine sending many messages a
-- second updates its row at most once a second, so the inbox does not write a machine row per scan.
CREATE OR REPLACE FUNCTION floorflow.machines_seen_in_rows() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  seen record;
BEGIN
  -- In machine order: two flushes touching the same machines lock their rows in the same order.
  FOR seen IN SELECT machine_id, max(received_at) AS at FROM new_rows
              WHERE machine_id IS NOT NULL GROUP BY machine_id ORDER BY machine_id LOOP
    UPDATE floorflow.machines SET last_seen_at = seen.at
    WHERE machine_id = seen.machine_id
      AND (last_seen_at IS NULL OR last_seen_at < seen.at - interval '1 second');
  END LOOP;
  RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS scanned_codes_machine_seen ON jobmanager.scanned_codes;
CREATE TRIGGER scanned_codes_machine_seen AFTER INSERT ON jobmanager.scanned_codes
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION floorflow.machines_seen_in_rows();

DROP TRIGGER IF EXISTS rejected_scans_machine_seen ON jobmanager.rejected_scans;
CREATE TRIGGER rejected_scans_machine_seen AFTER INSERT ON jobmanager.rejected_scans
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION floorflow.machines_seen_in_rows();

DROP TRIGGER IF EXISTS machine_events_machine_seen ON floorflow.machine_events;
CREATE TRIGGER machine_events_machine_seen AFTER INSERT ON floorflow.machine_events
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION floorflow.machines_seen_in_rows();

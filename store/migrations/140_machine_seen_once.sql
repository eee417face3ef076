-- 140: "last seen" from a flush's rows (migration 093's trigger) reads first which machines are due
-- (wave 5, "the database's part of a scan"). 093 ran one UPDATE per machine of every inserting
-- statement, and as it writes a machine at most once a second, nearly all of them changed nothing: a
-- flush of 20 scans from 20 scanners started 20 statements for none or one row (~10 µs of the
-- backend's CPU each, a third of the flush's cost). Now one read finds the machines whose
-- last_seen_at is more than a second behind the rows, and only those are updated, still one at a
-- time in machine order (two flushes lock the rows they write in the same order) and with the same
-- condition under the row lock. The read sees the rows as committed when it starts: a machine it
-- finds not due is left alone even if another transaction set its last_seen_at back (a connection
-- stamps the database's now()) in the instant between the read and the updates; its next message
-- sets it, as 093 would have a second later.
CREATE OR REPLACE FUNCTION floorflow.machines_seen_in_rows() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  seen record;
BEGIN
  FOR seen IN SELECT s.machine_id, s.at
              FROM (SELECT machine_id, max(received_at) AS at FROM new_rows
                    WHERE machine_id IS NOT NULL GROUP BY machine_id) s
              JOIN floorflow.machines m ON m.machine_id = s.machine_id
              WHERE m.last_seen_at IS NULL OR m.last_seen_at < s.at - interval '1 second'
              ORDER BY s.machine_id LOOP
    UPDATE floorflow.machines SET last_seen_at = seen.at
    WHERE machine_id = seen.machine_id
      AND (last_seen_at IS NULL OR last_seen_at < seen.at - interval '1 second');
  END LOOP;
  RETURN NULL;
END $$;

-- Seed 002's trackopz.machines ("Machine definitions and status") follows the registered
-- machines, so the Workpanel's machine list and the finished-product records name machines the
-- plant really has. floorflow.machines stays the source (the broker writes presence and status
-- there); this table gets a row per machine and its state. name is the plant's to edit and is
-- never overwritten. A removed machine keeps its row, offline: finished-product records still
-- name it.
CREATE OR REPLACE FUNCTION trackopz.follow_registered_machine() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  reported text;
  state text;
BEGIN
  IF TG_OP = 'DELETE' THEN
    UPDATE trackopz.machines SET status = 'offline', updated_at = now() WHERE id = OLD.machine_id;
    RETURN NULL;
  END IF;
  reported := NEW.last_status ->> 'state';
  state := CASE
    WHEN NOT NEW.online THEN 'offline'
    WHEN reported IN ('online', 'idle', 'busy', 'error', 'offline') THEN reported
    ELSE 'online'
  END;
  INSERT INTO trackopz.machines (id, name, status, last_status_at)
  VALUES (NEW.machine_id, NEW.machine_id, state, NEW.last_status_at)
  ON CONFLICT (id) DO UPDATE
    SET status = EXCLUDED.status, last_status_at = EXCLUDED.last_status_at, updated_at = now();
  RETURN NULL;
END;
$$;

DROP TRIGGER IF EXISTS follow_registered_machine_insert ON floorflow.machines;
CREATE TRIGGER follow_registered_machine_insert
  AFTER INSERT ON floorflow.machines
  FOR EACH ROW EXECUTE FUNCTION trackopz.follow_registered_machine();

-- Only a change of presence or reported state fires: the broker's frequent last_seen_at
-- updates (every message) cost nothing here.
DROP TRIGGER IF EXISTS follow_registered_machine_update ON floorflow.machines;
CREATE TRIGGER follow_registered_machine_update
  AFTER UPDATE OF online, last_status ON floorflow.machines
  FOR EACH ROW
  WHEN (OLD.online IS DISTINCT FROM NEW.online
        OR OLD.last_status ->> 'state' IS DISTINCT FROM NEW.last_status ->> 'state')
  EXECUTE FUNCTION trackopz.follow_registered_machine();

DROP TRIGGER IF EXISTS follow_registered_machine_delete ON floorflow.machines;
CREATE TRIGGER follow_registered_machine_delete
  AFTER DELETE ON floorflow.machines
  FOR EACH ROW EXECUTE FUNCTION trackopz.follow_registered_machine();

-- Machines registered before this migration.
INSERT INTO trackopz.machines (id, name, status, last_status_at)
SELECT machine_id, machine_id,
       CASE
         WHEN NOT online THEN 'offline'
         WHEN last_status ->> 'state' IN ('online', 'idle', 'busy', 'error', 'offline') THEN last_status ->> 'state'
         ELSE 'online'
       END,
       last_status_at
FROM floorflow.machines
ON CONFLICT (id) DO NOTHING;

-- 125: the lifecycle relay (runtime/lifecycle-relay.ts) announces every committed transition on the
-- event bus and MQTT by reading floorflow.lifecycle_events after the last id it announced. This
-- trigger wakes it at once: NOTIFY is delivered only when the inserting transaction commits, so
-- nothing is announced that did not commit. One notification per statement is enough: the relay
-- reads everything after its last id.
CREATE OR REPLACE FUNCTION floorflow.lifecycle_events_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('floorflow_lifecycle', '');
  RETURN NULL;
END;
$$;

DROP TRIGGER IF EXISTS lifecycle_events_notify ON floorflow.lifecycle_events;
CREATE TRIGGER lifecycle_events_notify
  AFTER INSERT ON floorflow.lifecycle_events
  FOR EACH STATEMENT EXECUTE FUNCTION floorflow.lifecycle_events_notify();

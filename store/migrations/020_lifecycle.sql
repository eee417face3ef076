-- 020: lifecycle transitions (issue 5). The generic audit trail for lifecycle models whose
-- domain has no audit table of its own, and the durable event log the SSE stream and other
-- displays resume from.

-- One row per applied transition of a "column" lifecycle model (plates, embossing jobs,
-- processing jobs, engraving jobs, operations). trackopz products keep theirs in
-- trackopz.product_transitions. entity_id is text: keys are bigint in most tables and text in
-- logs.job_operations. from_state is NULL when the entity had no state yet.
CREATE TABLE IF NOT EXISTS floorflow.lifecycle_transitions (
    id           bigserial PRIMARY KEY,
    lifecycle    text NOT NULL,
    entity_id    text NOT NULL,
    from_state   text,
    to_state     text NOT NULL,
    action       text NOT NULL,
    reason       text,
    actor        text,
    source       text,
    flow_version text,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS lifecycle_transitions_entity_idx
    ON floorflow.lifecycle_transitions (lifecycle, entity_id, id DESC);

-- Every applied transition, written in the transaction that applies it, so an event exists
-- exactly when the transition does. Readers resume with "id > last seen" (SSE Last-Event-ID),
-- which is only safe if ids become visible in increasing order: the store takes a
-- transaction-level advisory lock before inserting here, so a lower id never commits after a
-- higher one has been read.
CREATE TABLE IF NOT EXISTS floorflow.lifecycle_events (
    id           bigserial PRIMARY KEY,
    lifecycle    text NOT NULL,
    entity_id    text NOT NULL,
    from_state   text,
    to_state     text NOT NULL,
    action       text NOT NULL,
    reason       text,
    actor        text,
    source       text,
    flow_version text,
    occurred_at  timestamptz NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS lifecycle_events_lifecycle_idx ON floorflow.lifecycle_events (lifecycle, id);

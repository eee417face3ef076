-- 001: the domain schemas. One schema per seed domain, keeping the seeds' table and
-- column names verbatim (hence jobmanager."print OS", quoted because of the space).
-- The runtime's own tables live in the floorflow schema (002), so nothing here may
-- reference them.
--
-- The runner applies this file once inside its own transaction and records it; the file
-- is still safe to re-run by hand (IF NOT EXISTS / ON CONFLICT DO NOTHING everywhere).
--
-- Conventions: times are timestamptz; ids are bigint; JSON is jsonb. Every audit/log
-- table carries flow_version, the deployed flow version that wrote the row, so a wrong
-- row can be traced to the flow that produced it. updated_at has a default only: store
-- code sets it from its injected clock on every UPDATE (no trigger that would overwrite
-- the time tests control).

CREATE SCHEMA IF NOT EXISTS jobmanager;
CREATE SCHEMA IF NOT EXISTS logs;
CREATE SCHEMA IF NOT EXISTS embossing;
CREATE SCHEMA IF NOT EXISTS trackopz;
CREATE SCHEMA IF NOT EXISTS processing;
CREATE SCHEMA IF NOT EXISTS engraving;

-- ===================================================================================
-- jobmanager: job status from the press and the scanners (seed 001)
-- ===================================================================================

-- Seed 001 §1.1. Written by the printer app; name is the imposition id. Processing reads
-- "marker > last_processed_id ORDER BY marker", hence the marker index. marker is NOT
-- NULL because a row without one would never be picked up. It is not UNIQUE: the
-- printer app owns the numbering and we do not reject its writes; a processor batch must
-- therefore never stop in the middle of rows sharing one marker.
CREATE TABLE IF NOT EXISTS jobmanager."print OS" (
    id                bigserial PRIMARY KEY,
    name              text NOT NULL,
    status            text NOT NULL CHECK (status IN ('PRINTED', 'ABORTED')),
    marker            bigint NOT NULL,
    job_name          text,
    item_id           text,
    job_complete_time timestamptz,
    copies            integer,
    payload           jsonb,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS print_os_marker_idx ON jobmanager."print OS" (marker);

-- Seed 001 §1.2. code_text is a runlist id or "<job_id>_<version_tag>"; operations is
-- ["coating"] or {"coating": true} (contract §3). Processing reads "scan_id >
-- last_processed_id", which the primary key serves. machine_id comes from the
-- authenticated MQTT client, never from the payload.
CREATE TABLE IF NOT EXISTS jobmanager.scanned_codes (
    scan_id    bigserial PRIMARY KEY,
    code_text  text NOT NULL,
    scanned_at timestamptz NOT NULL DEFAULT now(),
    machine_id text NOT NULL,
    user_id    text,
    operations jsonb NOT NULL CHECK (jsonb_typeof(operations) IN ('array', 'object')),
    metadata   jsonb
);
-- Not in the seed: a scanner may resend a message it got no acknowledgement for; msg_id
-- lets the store insert with ON CONFLICT (machine_id, msg_id) WHERE msg_id IS NOT NULL
-- DO NOTHING, so a repeated msg_id from the same machine is stored once (contract §3).
ALTER TABLE jobmanager.scanned_codes ADD COLUMN IF NOT EXISTS msg_id text;
ALTER TABLE jobmanager.scanned_codes ADD COLUMN IF NOT EXISTS received_at timestamptz NOT NULL DEFAULT now();
CREATE UNIQUE INDEX IF NOT EXISTS scanned_codes_machine_msg_key
    ON jobmanager.scanned_codes (machine_id, msg_id) WHERE msg_id IS NOT NULL;

-- Seed 001 §1.4 and §4. One cursor per source. last_processed_id is bigint, not the
-- seed's integer: it holds "print OS".marker, which is bigint. It is written in the
-- same transaction as the effects of the records it covers.
CREATE TABLE IF NOT EXISTS jobmanager.processing_markers (
    marker_id         serial PRIMARY KEY,
    marker_type       text NOT NULL UNIQUE,
    last_processed_id bigint NOT NULL DEFAULT 0,
    last_processed_at timestamptz DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
INSERT INTO jobmanager.processing_markers (marker_type, last_processed_id)
VALUES ('print_os', 0), ('scanned_codes', 0)
ON CONFLICT (marker_type) DO NOTHING;

-- Seed 001 §5.1 and contract §2. operations holds {"print": bool, "coating": bool,
-- "kiss_cut": bool, "backscore": bool, "slitter": bool, ...}; the seed adds it to an
-- existing jobs table, hence ADD COLUMN. It must be an object so that
-- operations || '{"coating": true}' and operations->>'print' behave.
CREATE TABLE IF NOT EXISTS jobmanager.jobs (
    job_id      text PRIMARY KEY,
    version_tag text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE jobmanager.jobs ADD COLUMN IF NOT EXISTS operations jsonb NOT NULL DEFAULT '{}'::jsonb
    CHECK (jsonb_typeof(operations) = 'object');

-- Seed 001 §5.2, §7.3, §8.3-8.4: the audit trail behind GET /api/job-status/:jobId
-- (update_id, operation_type, status, source_type, updated_at, notes). source_id is
-- "print OS".id or scanned_codes.scan_id (seed §2.1 step 5). The seed's unique
-- (source_type, source_id) is widened by job and operation because one source record
-- updates many jobs (a runlist scan) and several operations; with it, a replayed source
-- record inserts nothing (ON CONFLICT DO NOTHING). 'api' updates have no source row, so
-- only they may leave source_id empty. 'partial' is a partly printed job (§8.2: print
-- stays false, the note says why). The job foreign key holds because §8.5 skips
-- unknown jobs; it restricts deletes so the audit trail is kept (§9.5).
CREATE TABLE IF NOT EXISTS jobmanager.job_status_updates (
    update_id      bigserial PRIMARY KEY,
    job_id         text NOT NULL REFERENCES jobmanager.jobs (job_id),
    operation_type text NOT NULL,
    status         text NOT NULL CHECK (status IN ('completed', 'partial', 'aborted')),
    source_type    text NOT NULL CHECK (source_type IN ('print_os', 'scanner', 'api')),
    source_id      bigint,
    notes          text,
    flow_version   text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT job_status_updates_source_required CHECK (source_type = 'api' OR source_id IS NOT NULL),
    CONSTRAINT job_status_updates_source_key UNIQUE (source_type, source_id, job_id, operation_type)
);
CREATE INDEX IF NOT EXISTS job_status_updates_job_idx ON jobmanager.job_status_updates (job_id, update_id);

-- ===================================================================================
-- logs: planned operations and the imposition/runlist mappings (seed 001)
-- ===================================================================================

-- Seed 001 §1.3. Planned operations per job, written upstream. No foreign keys to
-- jobmanager.jobs or operation_catalog: rows arrive from the planner before and
-- independently of the jobs, and an unknown operation must not block that import.
CREATE TABLE IF NOT EXISTS logs.job_operations (
    job_operation_id text PRIMARY KEY,
    job_id           text NOT NULL,
    version_tag      text,
    operation_id     text NOT NULL,
    sequence_order   integer,
    required         boolean NOT NULL DEFAULT true,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
-- Seed 001 §1.3 "Action Required": tracking columns, added to the existing table.
-- completed_by also allows 'api' to match job_status_updates.source_type; status stays
-- NULL until an operation is completed or aborted.
ALTER TABLE logs.job_operations ADD COLUMN IF NOT EXISTS completed_at timestamptz;
ALTER TABLE logs.job_operations ADD COLUMN IF NOT EXISTS completed_by text
    CHECK (completed_by IN ('scanner', 'print_os', 'api'));
ALTER TABLE logs.job_operations ADD COLUMN IF NOT EXISTS source_id bigint;
ALTER TABLE logs.job_operations ADD COLUMN IF NOT EXISTS status text
    CHECK (status IN ('completed', 'aborted'));
ALTER TABLE logs.job_operations ADD COLUMN IF NOT EXISTS notes text;
ALTER TABLE logs.job_operations ADD COLUMN IF NOT EXISTS flow_version text;
CREATE INDEX IF NOT EXISTS idx_job_operations_completed ON logs.job_operations (completed_at);
CREATE INDEX IF NOT EXISTS idx_job_operations_source ON logs.job_operations (completed_by, source_id);
-- Seed §2.1 step 5 / §2.2 step 5: "find job_operation for job_id, version_tag, operation_id".
-- Not unique: a plan may repeat an operation (two coating passes).
CREATE INDEX IF NOT EXISTS idx_job_operations_lookup ON logs.job_operations (job_id, version_tag, operation_id);

-- Seed 001 §1.3. Planned operations per imposition; same reasoning as job_operations.
CREATE TABLE IF NOT EXISTS logs.imposition_operations (
    imposition_operation_id text PRIMARY KEY,
    imposition_id           text NOT NULL,
    operation_id            text NOT NULL,
    sequence_order          integer,
    required                boolean NOT NULL DEFAULT true,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE logs.imposition_operations ADD COLUMN IF NOT EXISTS completed_at timestamptz;
ALTER TABLE logs.imposition_operations ADD COLUMN IF NOT EXISTS completed_by text
    CHECK (completed_by IN ('scanner', 'print_os', 'api'));
ALTER TABLE logs.imposition_operations ADD COLUMN IF NOT EXISTS source_id bigint;
ALTER TABLE logs.imposition_operations ADD COLUMN IF NOT EXISTS status text
    CHECK (status IN ('completed', 'aborted'));
ALTER TABLE logs.imposition_operations ADD COLUMN IF NOT EXISTS notes text;
ALTER TABLE logs.imposition_operations ADD COLUMN IF NOT EXISTS flow_version text;
CREATE INDEX IF NOT EXISTS idx_imposition_operations_completed ON logs.imposition_operations (completed_at);
CREATE INDEX IF NOT EXISTS idx_imposition_operations_source ON logs.imposition_operations (completed_by, source_id);
CREATE INDEX IF NOT EXISTS idx_imposition_operations_lookup ON logs.imposition_operations (imposition_id, operation_id);

-- Seed 001 §3.2: imposition -> file ids (file_id = FILE_<version>_Labex_<job_id>_<info>;
-- parsing it is core/'s job, not SQL's). The key serves "WHERE imposition_id = $1" and
-- makes re-importing a mapping a no-op.
CREATE TABLE IF NOT EXISTS logs.imposition_file_mapping (
    imposition_id text NOT NULL,
    file_id       text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT imposition_file_mapping_pkey PRIMARY KEY (imposition_id, file_id)
);

-- Seed 001 §2.2 case A/B: runlist -> impositions. The key serves the runlist scan;
-- the imposition index serves the way back (which runlist holds a job's imposition).
CREATE TABLE IF NOT EXISTS logs.production_planner_paths (
    runlist_id    text NOT NULL,
    imposition_id text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT production_planner_paths_pkey PRIMARY KEY (runlist_id, imposition_id)
);
CREATE INDEX IF NOT EXISTS production_planner_paths_imposition_idx ON logs.production_planner_paths (imposition_id);

-- Seed 001 §2.2 step 5 / contract §2: operation name (as scanned and as the key in
-- jobs.operations) -> operation_id (as in job_operations). The seed gives op003 for
-- coating and op006 for kiss_cut, lists op001 as the first operation id, and prints
-- first, so print is op001. It gives no ids for backscore and slitter: they map to
-- their own names until the plant's ids are known (UPDATE this table), because a
-- guessed opNNN could silently complete a different operation.
CREATE TABLE IF NOT EXISTS logs.operation_catalog (
    operation_id   text PRIMARY KEY,
    operation_name text NOT NULL UNIQUE,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
INSERT INTO logs.operation_catalog (operation_name, operation_id)
VALUES ('print', 'op001'),
       ('coating', 'op003'),
       ('kiss_cut', 'op006'),
       ('backscore', 'backscore'),
       ('slitter', 'slitter')
ON CONFLICT DO NOTHING;

-- ===================================================================================
-- embossing: plates sent to embossing machines (seed 000)
-- ===================================================================================

-- Seed 000 §4 and contract §2. status follows in_production / ready_for_embossing ->
-- queued_for_embossing -> embossing_in_progress -> embossed | in_storage. "Assigned"
-- (§6) is a plate held by a live embossing job (embossing_job_plates below);
-- unavailable_reason covers "otherwise unavailable" (damaged, on hold): NULL means the
-- plate may be selected. plate_number is not unique: a plate pair shares its number.
CREATE TABLE IF NOT EXISTS embossing.plates (
    id                 bigserial PRIMARY KEY,
    plate_number       text NOT NULL,
    batch_code         text,
    status             text NOT NULL DEFAULT 'in_production' CHECK (status IN (
                           'in_production', 'ready_for_embossing', 'queued_for_embossing',
                           'embossing_in_progress', 'embossed', 'in_storage')),
    unavailable_reason text,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS plates_status_idx ON embossing.plates (status);
CREATE INDEX IF NOT EXISTS plates_plate_number_idx ON embossing.plates (plate_number);
CREATE INDEX IF NOT EXISTS plates_batch_code_idx ON embossing.plates (batch_code);

-- Seed 000 §4-§7. The seed's single plate_id becomes embossing_job_plates because a job
-- takes several plates (POST {"plate_ids": [...]}). States: the seed's queued, sent,
-- completed, failed, plus accepted/in_progress from the machine's events (contract §3,
-- and the seed's "In Progress" column) and cancelled (§3 actions). created_by is text:
-- there is no users table; it holds the API caller's name. next_attempt_at drives the
-- worker's exponential backoff (§7); it is NOT NULL so a fresh job is simply due now.
-- machine_id refers to floorflow.machines, which does not exist yet when this runs.
CREATE TABLE IF NOT EXISTS embossing.embossing_jobs (
    id               bigserial PRIMARY KEY,
    machine_id       text NOT NULL,
    status           text NOT NULL DEFAULT 'queued' CHECK (status IN (
                         'queued', 'sent', 'accepted', 'in_progress', 'completed', 'failed', 'cancelled')),
    job_payload      jsonb,
    machine_response jsonb,
    attempts         integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error       text,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    created_by       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    sent_at          timestamptz,
    completed_at     timestamptz
);
-- The worker claims due queued jobs (FOR UPDATE SKIP LOCKED); the partial index stays
-- as small as the queue.
CREATE INDEX IF NOT EXISTS embossing_jobs_due_idx ON embossing.embossing_jobs (next_attempt_at, id)
    WHERE status = 'queued';
CREATE INDEX IF NOT EXISTS embossing_jobs_created_idx ON embossing.embossing_jobs (created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS embossing_jobs_machine_idx ON embossing.embossing_jobs (machine_id, status);

-- Seed 000 §4 (plate_id FK), one row per plate of a job. previous_status lets cancel
-- put the plate back where it was. A plate is held by a job until released_at is set
-- (on completion or cancel; a failed job keeps its plates for the retry). The partial
-- unique index makes two concurrent POSTs for the same plate a conflict instead of a
-- double booking.
CREATE TABLE IF NOT EXISTS embossing.embossing_job_plates (
    job_id          bigint NOT NULL REFERENCES embossing.embossing_jobs (id) ON DELETE CASCADE,
    plate_id        bigint NOT NULL REFERENCES embossing.plates (id),
    previous_status text,
    released_at     timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT embossing_job_plates_pkey PRIMARY KEY (job_id, plate_id)
);
CREATE UNIQUE INDEX IF NOT EXISTS embossing_job_plates_held_key ON embossing.embossing_job_plates (plate_id)
    WHERE released_at IS NULL;

-- Seed 000 §7 "Logging" and contract §2: every message to ('out') and from ('in') a
-- machine, MQTT or HTTP callback, including ones that are rejected. Hence no foreign
-- key on job_id: a machine may name a job that does not exist, and that too must be
-- logged. result says what the runtime did with it (e.g. applied, ignored, rejected).
CREATE TABLE IF NOT EXISTS embossing.machine_messages (
    id           bigserial PRIMARY KEY,
    direction    text NOT NULL CHECK (direction IN ('out', 'in')),
    machine_id   text NOT NULL,
    job_id       bigint,
    channel      text CHECK (channel IN ('mqtt', 'http')),
    topic        text,
    payload      jsonb,
    result       text,
    flow_version text,
    created_at   timestamptz NOT NULL DEFAULT now()
);
-- GET /api/embossing-jobs/:id/logs
CREATE INDEX IF NOT EXISTS machine_messages_job_idx ON embossing.machine_messages (job_id, id);
CREATE INDEX IF NOT EXISTS machine_messages_machine_idx ON embossing.machine_messages (machine_id, created_at DESC);

-- ===================================================================================
-- trackopz: product lifecycle, live ('ON') and past ('OFF') (seed 002)
-- ===================================================================================

-- Seed 002 "Product: product definitions"; the seed names no columns (contract §2).
CREATE TABLE IF NOT EXISTS trackopz.products (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL,
    description text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Seed 002 "Job: tracks product lifecycle with state ('ON'/'OFF')". A product's latest
-- job (created_at, then id) is its state; the index answers that per product and, with
-- DISTINCT ON (product_id), the dispatchable list.
CREATE TABLE IF NOT EXISTS trackopz.jobs (
    id         bigserial PRIMARY KEY,
    product_id bigint NOT NULL REFERENCES trackopz.products (id),
    state      text NOT NULL DEFAULT 'ON' CHECK (state IN ('ON', 'OFF')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS jobs_product_latest_idx ON trackopz.jobs (product_id, created_at DESC, id DESC);

-- Seed 002 "Machine: machine definitions and status", shown by /api/dashboard/status.
-- id is the machine id used on MQTT; status uses the states of the retained status
-- topic (contract §3).
CREATE TABLE IF NOT EXISTS trackopz.machines (
    id             text PRIMARY KEY,
    name           text,
    status         text NOT NULL DEFAULT 'offline' CHECK (status IN ('online', 'idle', 'busy', 'error', 'offline')),
    last_status_at timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- Seed 002 "OperatorProductUpdate: finished product records", an operator's report of
-- finished products.
CREATE TABLE IF NOT EXISTS trackopz.operator_product_updates (
    id           bigserial PRIMARY KEY,
    product_id   bigint NOT NULL REFERENCES trackopz.products (id),
    job_id       bigint REFERENCES trackopz.jobs (id),
    machine_id   text,
    operator_id  text,
    quantity     integer CHECK (quantity >= 0),
    notes        text,
    flow_version text,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS operator_product_updates_product_idx
    ON trackopz.operator_product_updates (product_id, created_at DESC);

-- Seed 002 "complete audit trail of product transitions", read by
-- GET /api/products/move-to-past?productId=. action lists the lifecycle API's actions;
-- reason is free text (e.g. 'dispatched'); source is the entry point (dispatch,
-- workpanel, lifecycle API, legacy move-to-past). from_state is NULL for a product's
-- first job.
CREATE TABLE IF NOT EXISTS trackopz.product_transitions (
    id           bigserial PRIMARY KEY,
    product_id   bigint NOT NULL REFERENCES trackopz.products (id),
    job_id       bigint REFERENCES trackopz.jobs (id),
    from_state   text CHECK (from_state IN ('ON', 'OFF')),
    to_state     text NOT NULL CHECK (to_state IN ('ON', 'OFF')),
    action       text NOT NULL CHECK (action IN ('move_to_past', 'reactivate', 'update_state')),
    reason       text,
    actor        text,
    source       text,
    flow_version text,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS product_transitions_product_idx
    ON trackopz.product_transitions (product_id, created_at DESC, id DESC);

-- ===================================================================================
-- processing: confirmed orders become processing jobs (seed 004)
-- ===================================================================================

-- Seed 004 "orders (existing table)"; contract §2 columns. The seed only shows
-- confirmation, so the order's own states are pending -> confirmed (or cancelled);
-- what happens after lives in processing_jobs. details is the order data the stages
-- read (content selection).
CREATE TABLE IF NOT EXISTS processing.orders (
    id           bigserial PRIMARY KEY,
    order_number text NOT NULL UNIQUE,
    status       text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'confirmed', 'cancelled')),
    details      jsonb NOT NULL DEFAULT '{}'::jsonb,
    confirmed_at timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- Seed 004 "Job lifecycle". States: pending -> processing -> completed | failed, with
-- retry between attempts (backoff 5 s, 15 s, 60 s until next_attempt_at). The seed
-- writes the final success state as both 'done' and 'completed'; 'completed' is the one
-- used here. UNIQUE (order_id): confirming an order twice creates one job. stage is
-- the current stage (validation, content_selection, usb_writing, verification).
CREATE TABLE IF NOT EXISTS processing.processing_jobs (
    id              bigserial PRIMARY KEY,
    order_id        bigint NOT NULL REFERENCES processing.orders (id),
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN (
                        'pending', 'processing', 'retry', 'completed', 'failed')),
    stage           text,
    progress        integer NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
    attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    fail_reason     text,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    started_at      timestamptz,
    completed_at    timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT processing_jobs_order_key UNIQUE (order_id)
);
-- The worker loop claims due jobs (FOR UPDATE SKIP LOCKED).
CREATE INDEX IF NOT EXISTS processing_jobs_due_idx ON processing.processing_jobs (next_attempt_at, id)
    WHERE status IN ('pending', 'retry');
-- Stuck-job detection: status = 'processing' AND updated_at older than 5 minutes.
CREATE INDEX IF NOT EXISTS processing_jobs_stuck_idx ON processing.processing_jobs (updated_at)
    WHERE status = 'processing';
CREATE INDEX IF NOT EXISTS processing_jobs_status_idx ON processing.processing_jobs (status);

-- Seed 004 "processing_job_logs": one row per stage and per error (level error,
-- category system, error_code PROCESSING_FAILED, details with message and stack).
-- level uses Node-RED's log levels.
CREATE TABLE IF NOT EXISTS processing.processing_job_logs (
    id           bigserial PRIMARY KEY,
    job_id       bigint NOT NULL REFERENCES processing.processing_jobs (id),
    level        text NOT NULL CHECK (level IN ('debug', 'info', 'warn', 'error')),
    category     text,
    stage        text,
    message      text NOT NULL,
    error_code   text,
    details      jsonb,
    flow_version text,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS processing_job_logs_job_idx ON processing.processing_job_logs (job_id, id);

-- ===================================================================================
-- engraving: trophy engraving jobs with design approval and QA (seed 003)
-- ===================================================================================

-- Seed 003 validateJob: item.stock.available and item.engraving_area.max_lines become
-- stock_available and max_lines; the rest of the seed's engraving_area object (sizes,
-- fonts) is kept as engraving_area. max_lines is authoritative.
CREATE TABLE IF NOT EXISTS engraving.items (
    id              text PRIMARY KEY,
    name            text NOT NULL,
    stock_available integer NOT NULL DEFAULT 0 CHECK (stock_available >= 0),
    max_lines       integer NOT NULL CHECK (max_lines > 0),
    engraving_area  jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- Seed 003 message schema and workflow. States: queued (waiting for a machine, what
-- /api/engraving/queue lists), designing, pending_approval, engraving, qa, complete,
-- and the exits blocked (no_inventory: block_reason required), revision_requested
-- (design rejected) and escalated (QA failed 3 times). priority is 1 for rush, 5
-- otherwise (sendToMachine).
CREATE TABLE IF NOT EXISTS engraving.engraving_jobs (
    id              bigserial PRIMARY KEY,
    customer_id     text NOT NULL,
    item_id         text NOT NULL REFERENCES engraving.items (id),
    text            jsonb NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(text) = 'array'),
    font            text,
    artwork_url     text,
    requires_design boolean NOT NULL DEFAULT false,
    rush            boolean NOT NULL DEFAULT false,
    priority        smallint NOT NULL DEFAULT 5 CHECK (priority >= 1),
    due_date        timestamptz NOT NULL,
    status          text NOT NULL DEFAULT 'queued' CHECK (status IN (
                        'queued', 'designing', 'pending_approval', 'engraving', 'qa', 'complete',
                        'blocked', 'revision_requested', 'escalated')),
    block_reason    text,
    qa_attempts     integer NOT NULL DEFAULT 0 CHECK (qa_attempts >= 0),
    machine_id      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz,
    completed_at    timestamptz,
    CONSTRAINT engraving_jobs_blocked_has_reason CHECK (status <> 'blocked' OR block_reason IS NOT NULL)
);
-- The engraving queue: rush first, then earliest due, then oldest.
CREATE INDEX IF NOT EXISTS engraving_jobs_queue_idx ON engraving.engraving_jobs (priority, due_date, created_at, id)
    WHERE status = 'queued';
CREATE INDEX IF NOT EXISTS engraving_jobs_status_idx ON engraving.engraving_jobs (status);
CREATE INDEX IF NOT EXISTS engraving_jobs_customer_idx ON engraving.engraving_jobs (customer_id, created_at DESC);

-- Seed 003 createDesign / getApproval / DESIGN_TIMEOUT (auto-approve after 24 h). At
-- most one design per job awaits approval, so approve/reject cannot hit two.
CREATE TABLE IF NOT EXISTS engraving.designs (
    id          bigserial PRIMARY KEY,
    job_id      bigint NOT NULL REFERENCES engraving.engraving_jobs (id),
    preview_url text,
    status      text NOT NULL DEFAULT 'pending_approval' CHECK (status IN (
                    'pending_approval', 'approved', 'rejected', 'auto_approved')),
    feedback    text,
    decided_by  text,
    decided_at  timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS designs_job_idx ON engraving.designs (job_id, created_at DESC);
CREATE UNIQUE INDEX IF NOT EXISTS designs_one_pending_key ON engraving.designs (job_id)
    WHERE status = 'pending_approval';

-- Seed 003 qualityCheck / QA_FAILED (re-engrave under 3 attempts, else escalate).
-- UNIQUE (job_id, attempt): a resent QA result for the same attempt is recorded once.
CREATE TABLE IF NOT EXISTS engraving.qa_results (
    id           bigserial PRIMARY KEY,
    job_id       bigint NOT NULL REFERENCES engraving.engraving_jobs (id),
    attempt      integer NOT NULL CHECK (attempt >= 1),
    passed       boolean NOT NULL,
    inspector    text,
    notes        text,
    flow_version text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT qa_results_attempt_key UNIQUE (job_id, attempt)
);

-- 130: a batch of plain scans applied without working tables (wave 4, "the apply function").
-- Almost every scan on a floor is a job code naming operations of the scanner's own (coating,
-- kiss_cut, ...): its job is known and not on a runlist, its operations are in the catalog and
-- planned for the job, and every claim it makes is the scanner's, which has precedence for them.
-- For such a batch most of migration 012/014's steps decide nothing (no runlists, no unknown jobs
-- or operations, no unplanned rows, one job per scan), yet each wrote and re-read a working table,
-- and the working tables cost the most: they are emptied at every COMMIT, which invalidates the
-- cached plans that read them (a statement over such a table, with a primary key, is planned again
-- at its first execution after each COMMIT), so each batch planned its dozen statements again:
-- about 20 ms of a backend's CPU a batch, whatever its size (570 µs a scan in batches of 50).
--
-- ff_apply_scan_records now first reads, in one statement, whether the whole batch is plain and,
-- if so, its claims (one per scan and operation) into arrays, and then does only what such a batch
-- needs, each step one statement over those arrays: lock the jobs (in job order, as before), write
-- the ledger rows (all applied, one job each; FFR01 when another transaction processed some
-- meanwhile, as before), judge the claims (migration 100's rule for authoritative claims), write
-- logs.job_operations, the claims and jobs.operations, and the status rows, in the same order and
-- with the same values as the general path. A batch with anything else (an invalid code, a
-- runlist, a job on a runlist, an unknown job or operation, a print claim, an unplanned operation,
-- the same scan or operation twice) goes the general path, unchanged (ff_scan_apply_general,
-- migration 012's ff_apply_scan_records under a new name). The plan rows are read before the jobs
-- are locked, as the general path reads the jobs and runlists.
-- tests/integration/job-status-scan-paths.test.ts drives random batches through both paths and
-- compares every table they write. Database CPU a scan (bench/scan-apply.ts, docs/benchmarks.md):
-- 570 -> 148 µs in batches of 50, 288 -> 108 µs in batches of 150, 178 -> 93 µs in batches of 500.

-- Migration 012's ff_apply_scan_records: the general path (working tables, every case).
CREATE OR REPLACE FUNCTION jobmanager.ff_scan_apply_general(
    p_ids bigint[], p_effective timestamptz[], p_kinds text[], p_runlists text[], p_jobs text[], p_tags text[],
    p_ops text[], p_invalid text[], p_now timestamptz, p_flow_version text, p_check_files boolean)
RETURNS TABLE (r_source_id bigint, r_outcome text, r_reason text, r_jobs int, r_touched int)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM jobmanager.ff_prepare_batch();
    INSERT INTO pg_temp.ff_scan_batch
        (pos, source_id, effective_at, target_kind, runlist_id, job_id, version_tag, operations, invalid_reason)
    SELECT u.pos, u.id, u.at, u.kind, u.runlist, u.job, u.tag,
           CASE WHEN u.ops IS NOT NULL THEN ARRAY(SELECT jsonb_array_elements_text(u.ops::jsonb)) END, u.invalid
    FROM unnest(p_ids, p_effective, p_kinds, p_runlists, p_jobs, p_tags, p_ops, p_invalid)
         WITH ORDINALITY AS u(id, at, kind, runlist, job, tag, ops, invalid, pos);
    RETURN QUERY SELECT * FROM jobmanager.ff_apply_scans(p_now, p_flow_version, p_check_files);
END $$;

-- Scans given as values, their codes and operations already read with the configured patterns
-- (p_ops: each scan's operation names as a JSON array, NULL when invalid; p_invalid: why a scan
-- can never apply), in scan order: a plain batch by the short path below, any other by the general.
CREATE OR REPLACE FUNCTION jobmanager.ff_apply_scan_records(
    p_ids bigint[], p_effective timestamptz[], p_kinds text[], p_runlists text[], p_jobs text[], p_tags text[],
    p_ops text[], p_invalid text[], p_now timestamptz, p_flow_version text, p_check_files boolean)
RETURNS TABLE (r_source_id bigint, r_outcome text, r_reason text, r_jobs int, r_touched int)
LANGUAGE plpgsql AS $$
DECLARE
    v_plain boolean;
    v_scans bigint[];        -- the scans not in the ledger yet, in scan order
    -- The claims, one per (scan, operation): position in the batch, scan, its time, job, the
    -- version tag its planned rows are matched by, operation name and catalog id.
    v_pos int[];
    v_id bigint[];
    v_at timestamptz[];
    v_job text[];
    v_tag text[];
    v_op text[];
    v_opid text[];
    -- How each was judged (in the same order).
    v_applies boolean[];
    v_against_type text[];
    v_against_id bigint[];
    v_inserted int;
    v_touched int;
    v_seqscan text := current_setting('enable_seqscan');
    v_plans text := current_setting('plan_cache_mode');
BEGIN
    -- Every read below is a probe by key (the ledger, jobs, plans, runlists, claims), whatever the
    -- statistics say, and each statement is planned once a session, not for each batch: a plan
    -- made for a batch's arrays costs more than the statement (the estimates of a generic plan,
    -- ten rows an array, lead to the same probes). A plan made while a table was small, and kept,
    -- scanned all of it for every scan once it had grown (0.4 ms a scan at 2,000 ledger rows).
    -- The settings are only in force while these statements are planned and run.
    PERFORM set_config('enable_seqscan', 'off', true);
    PERFORM set_config('plan_cache_mode', 'force_generic_plan', true);
    PERFORM jobmanager.ff_files_parsed(p_check_files);
    -- Is every scan not in the ledger plain? A scan is when its code is a job (not a runlist) that
    -- exists and has no file on a runlist, and each of its operations (named once) is in the
    -- catalog, is not print (print OS has precedence there) and has its planned row, matched as the
    -- write below matches.
    -- Scans of one job come in bursts (a job scanned at several stations at once), so each fact is
    -- read once a batch per job, code, operations list and planned row, not once per scan.
    WITH scans AS MATERIALIZED (
        SELECT u.pos::int AS pos, u.id, u.at, u.kind, u.runlist, u.job, u.tag, u.ops, u.invalid
        FROM unnest(p_ids, p_effective, p_kinds, p_runlists, p_jobs, p_tags, p_ops, p_invalid)
             WITH ORDINALITY AS u(id, at, kind, runlist, job, tag, ops, invalid, pos)
        -- Scans another transaction has processed already are left out (the ledger probed per
        -- scan: with ledger statistics never taken, one scan for all the batch's ids takes the
        -- marker index and reads every scanner row).
        WHERE NOT EXISTS (SELECT 1 FROM jobmanager.processed_source_records r
                          WHERE r.source_type = 'scanner' AND r.source_id = u.id OFFSET 0)),
    jobs AS MATERIALIZED (
        -- Each job: its version tag ({tag}, NULL when the job is unknown), and whether a file of it
        -- is on a runlist (then the scan stands for the runlist's jobs).
        SELECT g.job, (SELECT ARRAY[j.version_tag] FROM jobmanager.jobs j WHERE j.job_id = g.job) AS jt,
               EXISTS (SELECT 1 FROM jobmanager.job_files jf
                       WHERE jf.job_id = g.job
                         AND EXISTS (SELECT 1 FROM logs.production_planner_paths p
                                     WHERE p.imposition_id = jf.imposition_id OFFSET 0)) AS on_runlist
        FROM (SELECT DISTINCT s.job FROM scans s WHERE s.job IS NOT NULL) g),
    codes AS MATERIALIZED (
        -- Each code that may be a runlist: a code that fits both the runlist and the job pattern
        -- (as most job codes do, with the default runlist pattern) is the job when no such runlist exists.
        SELECT g.runlist, EXISTS (SELECT 1 FROM logs.production_planner_paths p WHERE p.runlist_id = g.runlist) AS found
        FROM (SELECT DISTINCT s.runlist FROM scans s WHERE s.kind = 'runlist') g),
    opsets AS MATERIALIZED (
        -- Each operations list, read once: its names, and whether one is named twice.
        SELECT g.ops, n.names, cardinality(n.names) = (SELECT count(DISTINCT x) FROM unnest(n.names) AS x) AS once
        FROM (SELECT DISTINCT s.ops FROM scans s WHERE s.invalid IS NULL AND s.ops IS NOT NULL) g
        CROSS JOIN LATERAL (SELECT ARRAY(SELECT jsonb_array_elements_text(g.ops::jsonb)) AS names) n),
    scanned AS (
        SELECT s.pos, s.id, s.at, s.job, s.invalid, j.jt IS NOT NULL AS known, j.on_runlist, o.names, o.once,
               s.kind = 'job' OR (s.kind = 'runlist' AND s.job IS NOT NULL AND NOT c.found) AS job_code,
               CASE WHEN s.tag IS NOT NULL THEN s.tag ELSE j.jt[1] END AS tag
        FROM scans s
        LEFT JOIN jobs j ON j.job = s.job
        LEFT JOIN codes c ON c.runlist = s.runlist
        LEFT JOIN opsets o ON o.ops = s.ops AND s.invalid IS NULL),
    pairs AS MATERIALIZED (
        SELECT s.*, n.name, k.operation_id
        FROM scanned s
        LEFT JOIN LATERAL unnest(s.names) AS n(name) ON true
        LEFT JOIN logs.operation_catalog k ON k.operation_name = n.name),
    planned AS MATERIALIZED (
        -- Each (job, version tag, operation) claimed: whether its planned row is there, matched as
        -- the write below matches it.
        SELECT g.job, ARRAY[g.tag] AS tag_key, g.operation_id,
               EXISTS (SELECT 1 FROM logs.job_operations t
                       WHERE t.job_id = g.job AND t.operation_id = g.operation_id
                         AND (t.version_tag IS NULL OR g.tag IS NULL OR t.version_tag = g.tag)) AS found
        FROM (SELECT DISTINCT p.job, p.tag, p.operation_id FROM pairs p
              WHERE p.job IS NOT NULL AND p.operation_id IS NOT NULL) g),
    claims AS (
        SELECT p.pos, p.id, p.at, p.job, p.tag, p.name, p.operation_id,
               coalesce(p.id IS NOT NULL AND p.at IS NOT NULL AND p.invalid IS NULL AND p.job_code AND p.known
                 AND NOT p.on_runlist AND p.once AND p.name <> 'print' AND p.operation_id IS NOT NULL
                 AND pl.found, false) AS plain
        FROM pairs p
        -- (An array's NULL equals NULL, and it can be hashed: a job without a version tag.)
        LEFT JOIN planned pl ON pl.job = p.job AND pl.operation_id = p.operation_id
                            AND pl.tag_key = ARRAY[p.tag])
    SELECT coalesce(bool_and(c.plain), true)
             AND (SELECT count(*) = count(DISTINCT s.id) FROM scans s),
           (SELECT coalesce(array_agg(s.id ORDER BY s.pos), '{}') FROM scans s),
           array_agg(c.pos), array_agg(c.id), array_agg(c.at), array_agg(c.job), array_agg(c.tag),
           array_agg(c.name), array_agg(c.operation_id)
    INTO v_plain, v_scans, v_pos, v_id, v_at, v_job, v_tag, v_op, v_opid
    FROM claims c;

    IF NOT v_plain THEN
        PERFORM set_config('enable_seqscan', v_seqscan, true);
        PERFORM set_config('plan_cache_mode', v_plans, true);
        RETURN QUERY SELECT * FROM jobmanager.ff_scan_apply_general(p_ids, p_effective, p_kinds, p_runlists,
            p_jobs, p_tags, p_ops, p_invalid, p_now, p_flow_version, p_check_files);
        RETURN;
    END IF;
    IF cardinality(v_scans) = 0 THEN
        PERFORM set_config('enable_seqscan', v_seqscan, true);
        PERFORM set_config('plan_cache_mode', v_plans, true);
        RETURN;
    END IF;

    -- The jobs the batch writes, locked in job order so concurrent writers queue, not deadlock.
    PERFORM count(*) FROM (SELECT 1 FROM jobmanager.jobs j WHERE j.job_id = ANY (v_job)
                           ORDER BY j.job_id FOR UPDATE) AS locked;
    -- The ledger rows before any effect; another transaction that processed some of these scans
    -- meanwhile makes the insert come up short, and nothing of the batch may be written.
    WITH inserted AS (
        INSERT INTO jobmanager.processed_source_records
            (source_type, source_id, marker, outcome, reason, jobs_updated, flow_version, processed_at)
        SELECT 'scanner', u.id, u.id, 'applied', NULL, 1, p_flow_version, p_now
        FROM unnest(v_scans) WITH ORDINALITY AS u(id, n) ORDER BY u.n
        ON CONFLICT (source_type, source_id) DO NOTHING RETURNING 1)
    SELECT count(*) INTO v_inserted FROM inserted;
    IF v_inserted <> cardinality(v_scans) THEN
        RAISE EXCEPTION 'another transaction processed records of this batch meanwhile; the batch is tried again'
            USING ERRCODE = 'FFR01';
    END IF;

    -- Each claim judged as migration 100 judges a batch of authoritative claims: it applies when it
    -- is at least as late as the stored claim (when that one is the scanner's) and as every claim of
    -- its job and operation before it in the batch; it is judged against the last of those that
    -- applied, or the stored claim when none did.
    WITH judged AS (
        SELECT c.*, cur.source_type AS cur_type, cur.source_id AS cur_id,
               CASE WHEN cur.source_type = 'scanner' THEN cur.effective_at END AS cur_auth_at,
               max(c.at) OVER preceding AS before_max
        FROM unnest(v_pos, v_id, v_at, v_job, v_tag, v_op, v_opid) AS c(pos, id, at, job, tag, op, opid)
        -- The stored claim, probed per claim (OFFSET 0 keeps it a probe, not a join).
        LEFT JOIN LATERAL (SELECT s.source_type, s.source_id, s.effective_at FROM jobmanager.job_operation_claims s
                           WHERE s.job_id = c.job AND s.operation_name = c.op OFFSET 0) cur ON true
        WINDOW preceding AS (PARTITION BY c.job, c.op ORDER BY c.pos ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)),
    decided AS (
        SELECT d.*, (d.cur_auth_at IS NULL OR d.at >= d.cur_auth_at)
                    AND (d.before_max IS NULL OR d.at >= d.before_max) AS applies
        FROM judged d),
    placed AS (
        -- The position of the last claim before this one that applied (its scan is that position
        -- of p_ids); the rows arrive sorted for the window above, so this one sorts nothing.
        SELECT d.*, max(d.pos) FILTER (WHERE d.applies) OVER preceding AS last_win
        FROM decided d
        WINDOW preceding AS (PARTITION BY d.job, d.op ORDER BY d.pos ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING))
    SELECT array_agg(p.pos), array_agg(p.id), array_agg(p.at), array_agg(p.job), array_agg(p.tag), array_agg(p.op),
           array_agg(p.opid), array_agg(p.applies),
           array_agg(CASE WHEN p.last_win IS NULL THEN p.cur_type ELSE 'scanner' END),
           array_agg(CASE WHEN p.last_win IS NULL THEN p.cur_id ELSE p_ids[array_lower(p_ids, 1) + p.last_win - 1] END)
    INTO v_pos, v_id, v_at, v_job, v_tag, v_op, v_opid, v_applies, v_against_type, v_against_id
    FROM placed p;

    -- logs.job_operations, the last applied claim per job and operation.
    UPDATE logs.job_operations t
    SET status = 'completed', completed_at = p_now, completed_by = 'scanner', source_id = l.id,
        notes = 'scanned job', flow_version = p_flow_version, updated_at = p_now
    FROM (
      SELECT DISTINCT ON (c.job, c.opid) c.job, c.opid, c.tag, c.id
      FROM unnest(v_pos, v_id, v_job, v_tag, v_opid, v_applies) AS c(pos, id, job, tag, opid, applies)
      WHERE c.applies
      ORDER BY c.job, c.opid, c.pos DESC) l
    WHERE t.job_id = l.job AND t.operation_id = l.opid
      AND (t.version_tag IS NULL OR l.tag IS NULL OR t.version_tag = l.tag);

    -- The claim left standing per job and operation, and the jobs.operations flags they set (a job
    -- whose flags would not change is not written), as ff_write_claims writes them.
    WITH standing AS (
        SELECT DISTINCT ON (c.job, c.op) c.job, c.op, c.id, c.at
        FROM unnest(v_pos, v_id, v_at, v_job, v_op, v_applies) AS c(pos, id, at, job, op, applies)
        WHERE c.applies
        ORDER BY c.job, c.op, c.pos DESC),
    claims AS (
        INSERT INTO jobmanager.job_operation_claims
            (job_id, operation_name, value, source_type, source_id, effective_at, updated_at)
        SELECT s.job, s.op, true, 'scanner', s.id, s.at, p_now FROM standing s
        ORDER BY s.job, s.op
        ON CONFLICT (job_id, operation_name) DO UPDATE
        SET value = excluded.value, source_type = excluded.source_type, source_id = excluded.source_id,
            effective_at = excluded.effective_at, updated_at = excluded.updated_at)
    UPDATE jobmanager.jobs j SET operations = j.operations || p.patch, updated_at = p_now
    FROM (SELECT s.job, jsonb_object_agg(s.op, true) AS patch FROM standing s GROUP BY s.job) p
    WHERE j.job_id = p.job AND NOT j.operations @> p.patch;

    -- A job_status_updates row per claim, applied or not (with the reason when not).
    INSERT INTO jobmanager.job_status_updates
      (job_id, operation_type, status, source_type, source_id, notes, flow_version, created_at, updated_at)
    SELECT c.job, c.op, 'completed', 'scanner', c.id,
           'scanned job' || CASE WHEN c.applies THEN ''
                                 ELSE '; not applied: ' || c.against_type || ' has precedence for ' || c.op END,
           p_flow_version, p_now, p_now
    FROM unnest(v_pos, v_id, v_job, v_op, v_applies, v_against_type) AS c(pos, id, job, op, applies, against_type)
    ORDER BY c.pos, c.job, c.op
    ON CONFLICT ON CONSTRAINT job_status_updates_source_key DO NOTHING;

    SELECT count(DISTINCT j) INTO v_touched FROM unnest(v_job) AS j;
    RETURN QUERY SELECT u.id, 'applied'::text, NULL::text, 1, v_touched FROM unnest(v_scans) AS u(id);
    PERFORM set_config('enable_seqscan', v_seqscan, true);
    PERFORM set_config('plan_cache_mode', v_plans, true);
END $$;

-- 014: a status update whose planned operation row is missing is reported, never silent (issue 17,
-- seed 001 §8.5). The appliers wrote logs.job_operations with an UPDATE that could match no row:
-- jobs.operations changed, the job's planned print (or coating, ...) stayed as it was, and nothing
-- said so. Now a (record, job, operation) whose logs.job_operations row is missing (matched as the
-- write matches it: job, the catalog's operation id, version tag) takes no effect, like an unknown
-- job: the record is skipped with the reason when none of its jobs has the row (the ledger, the
-- gaps route and the node's log say why; a reprocess applies it once the row is imported), and
-- the jobs left out are named in the notes when others have it. A print record whose imposition
-- has no planned print row in logs.imposition_operations says so in its notes.

CREATE OR REPLACE FUNCTION jobmanager.ff_prepare_batch() RETURNS void
LANGUAGE plpgsql SET client_min_messages = warning AS $$
BEGIN
    CREATE TEMP TABLE IF NOT EXISTS ff_print_batch (
        pos int PRIMARY KEY, source_id bigint NOT NULL, marker bigint NOT NULL, imposition_id text NOT NULL,
        printed boolean NOT NULL, effective_at timestamptz NOT NULL,
        outcome text, reason text, notes text, jobs int NOT NULL DEFAULT 0) ON COMMIT DELETE ROWS;
    CREATE TEMP TABLE IF NOT EXISTS ff_print_files (
        pos int NOT NULL, file_id text NOT NULL, job_id text, parse_error text, known boolean NOT NULL,
        version_tag text) ON COMMIT DELETE ROWS;
    CREATE TEMP TABLE IF NOT EXISTS ff_file_change (
        file_id text PRIMARY KEY, printed_at int, aborted_at int) ON COMMIT DELETE ROWS;
    CREATE TEMP TABLE IF NOT EXISTS ff_print_jobs (
        pos int NOT NULL, job_id text NOT NULL, version_tag text, status text NOT NULL, print boolean,
        note text NOT NULL, PRIMARY KEY (pos, job_id)) ON COMMIT DELETE ROWS;
    CREATE TEMP TABLE IF NOT EXISTS ff_scan_batch (
        pos int PRIMARY KEY, source_id bigint NOT NULL, effective_at timestamptz NOT NULL,
        target_kind text NOT NULL, runlist_id text, job_id text, version_tag text, operations text[],
        invalid_reason text, via text, outcome text, reason text, note text, jobs int NOT NULL DEFAULT 0)
        ON COMMIT DELETE ROWS;
    CREATE TEMP TABLE IF NOT EXISTS ff_scan_ops (
        pos int NOT NULL, ord int NOT NULL, name text NOT NULL, operation_id text) ON COMMIT DELETE ROWS;
    CREATE TEMP TABLE IF NOT EXISTS ff_scan_runlists (
        pos int NOT NULL, runlist_id text NOT NULL) ON COMMIT DELETE ROWS;
    CREATE TEMP TABLE IF NOT EXISTS ff_scan_jobs (
        pos int NOT NULL, job_id text NOT NULL, known boolean NOT NULL, version_tag text) ON COMMIT DELETE ROWS;
    CREATE TEMP TABLE IF NOT EXISTS ff_claim_input (
        pos int NOT NULL, job_id text NOT NULL, operation text NOT NULL, value boolean NOT NULL,
        source_type text NOT NULL, source_id bigint, effective_at timestamptz NOT NULL) ON COMMIT DELETE ROWS;
    CREATE TEMP TABLE IF NOT EXISTS ff_claims (
        pos int NOT NULL, job_id text NOT NULL, operation text NOT NULL, value boolean NOT NULL,
        source_type text NOT NULL, source_id bigint, effective_at timestamptz NOT NULL,
        applies boolean NOT NULL, against_type text, against_id bigint) ON COMMIT DELETE ROWS;
    -- (record, known job, operation) whose planned row in logs.job_operations is missing.
    CREATE TEMP TABLE IF NOT EXISTS ff_unplanned (
        pos int NOT NULL, job_id text NOT NULL, operation text NOT NULL, PRIMARY KEY (pos, job_id, operation))
        ON COMMIT DELETE ROWS;
END $$;

-- Applies the "print OS" records loaded in ff_print_batch (seed 001 §2.1, §3.3, §5.3, §8):
-- records in marker order, each judged against the file states its predecessors left, a job
-- printed only when every one of its files, across impositions, is printed.
CREATE OR REPLACE FUNCTION jobmanager.ff_apply_print(p_now timestamptz, p_flow_version text, p_check_files boolean)
RETURNS TABLE (r_source_id bigint, r_outcome text, r_reason text, r_jobs int, r_touched int)
-- A batch's sorts and hashes (claims in record order, files per job) stay in memory.
LANGUAGE plpgsql SET work_mem = '64MB' AS $$
DECLARE
    v_touched int;
    v_nestloop text;
    v_print_id text := coalesce((SELECT operation_id FROM logs.operation_catalog WHERE operation_name = 'print'), 'print');
BEGIN
    PERFORM jobmanager.ff_files_parsed(p_check_files);
    -- Records another transaction has processed already (the ledger probed per record).
    DELETE FROM pg_temp.ff_print_batch b
    WHERE EXISTS (SELECT 1 FROM jobmanager.processed_source_records r
                  WHERE r.source_type = 'print_os' AND r.source_id = b.source_id OFFSET 0);
    -- The files of each record's imposition, with the jobs their ids name (and whether those exist).
    INSERT INTO pg_temp.ff_print_files (pos, file_id, job_id, parse_error, known, version_tag)
    SELECT b.pos, jf.file_id, jf.job_id, jf.parse_error, j.job_id IS NOT NULL, j.version_tag
    FROM pg_temp.ff_print_batch b
    JOIN jobmanager.job_files jf ON jf.imposition_id = b.imposition_id
    LEFT JOIN jobmanager.jobs j ON j.job_id = jf.job_id;

    -- The jobs the batch may write, locked in job order so concurrent writers queue, not deadlock.
    PERFORM count(*) FROM (SELECT 1 FROM jobmanager.jobs j
                           WHERE j.job_id IN (SELECT f.job_id FROM pg_temp.ff_print_files f WHERE f.known)
                           ORDER BY j.job_id FOR UPDATE) AS locked;
    -- The known jobs of each record without a planned print row, matched as the write below matches.
    INSERT INTO pg_temp.ff_unplanned (pos, job_id, operation)
    SELECT DISTINCT f.pos, f.job_id, 'print' FROM pg_temp.ff_print_files f
    WHERE f.known AND NOT EXISTS (
        SELECT 1 FROM logs.job_operations t
        WHERE t.job_id = f.job_id AND t.operation_id = v_print_id
          AND (t.version_tag IS NULL OR f.version_tag IS NULL OR t.version_tag = f.version_tag));
    -- Why a record is skipped, or the notes of an applied one (files and jobs left out).
    UPDATE pg_temp.ff_print_batch b
    SET outcome = CASE WHEN v.verdict IS NULL THEN 'applied' ELSE 'skipped' END,
        reason = v.verdict,
        notes = CASE WHEN v.verdict IS NULL THEN nullif(concat_ws('; ', v.file_notes,
                  CASE WHEN cardinality(v.unknown) > 0
                       THEN 'unknown jobs skipped: ' || array_to_string(v.unknown, ', ') END,
                  CASE WHEN cardinality(v.unplanned) > 0
                       THEN 'jobs without a planned print operation skipped: ' || array_to_string(v.unplanned, ', ') END,
                  CASE WHEN NOT EXISTS (SELECT 1 FROM logs.imposition_operations t
                                        WHERE t.imposition_id = v.imposition_id AND t.operation_id = v_print_id)
                       THEN 'imposition ' || v.imposition_id || ' has no planned print operation ('
                            || v_print_id || ') in logs.imposition_operations' END), '') END,
        jobs = CASE WHEN v.verdict IS NULL THEN v.known - cardinality(v.unplanned) ELSE 0 END
    FROM (
      SELECT b.pos,
        CASE
          WHEN f.pos IS NULL THEN 'unknown imposition ' || to_json(b.imposition_id)::text || ': no files in imposition_file_mapping'
          WHEN f.parsed = 0 THEN 'no parseable file id in imposition ' || b.imposition_id || ': ' || f.file_notes
          WHEN f.known = 0 THEN 'unknown job' || CASE WHEN cardinality(f.unknown) > 1 THEN 's' ELSE '' END || ' '
                                || array_to_string(f.unknown, ', ') || ': not in jobmanager.jobs'
          WHEN cardinality(u.unplanned) >= f.known
            THEN 'no planned print operation (operation_id ' || v_print_id || ') in logs.job_operations for job'
                 || CASE WHEN cardinality(u.unplanned) > 1 THEN 's' ELSE '' END || ' ' || array_to_string(u.unplanned, ', ')
        END AS verdict,
        b.imposition_id, f.file_notes, coalesce(f.unknown, '{}') AS unknown, coalesce(f.known, 0) AS known,
        coalesce(u.unplanned, '{}') AS unplanned
      FROM pg_temp.ff_print_batch b
      LEFT JOIN (
        SELECT u.pos, array_agg(u.job_id ORDER BY u.job_id) AS unplanned
        FROM pg_temp.ff_unplanned u GROUP BY u.pos) u ON u.pos = b.pos
      LEFT JOIN (
        SELECT f.pos, count(f.job_id) AS parsed,
               string_agg('file ' || f.file_id || ' skipped: ' || coalesce(f.parse_error, 'not parsed'), '; '
                          ORDER BY f.file_id) FILTER (WHERE f.job_id IS NULL) AS file_notes,
               coalesce(array_agg(DISTINCT f.job_id ORDER BY f.job_id)
                          FILTER (WHERE f.job_id IS NOT NULL AND NOT f.known), '{}') AS unknown,
               count(DISTINCT f.job_id) FILTER (WHERE f.known)::int AS known
        FROM pg_temp.ff_print_files f
        GROUP BY f.pos) f ON f.pos = b.pos) v
    WHERE b.pos = v.pos;

    -- Where in the batch each file is first printed and first aborted (every record with parsed
    -- files changes them, also one skipped for unknown jobs, as one record at a time would).
    INSERT INTO pg_temp.ff_file_change (file_id, printed_at, aborted_at)
    SELECT f.file_id, min(f.pos) FILTER (WHERE b.printed), min(f.pos) FILTER (WHERE NOT b.printed)
    FROM pg_temp.ff_print_files f JOIN pg_temp.ff_print_batch b ON b.pos = f.pos
    WHERE f.job_id IS NOT NULL GROUP BY f.file_id;

    -- Each (applied record, known job) with the job's print verdict after the record
    -- (core/job-status judgeJobPrint): a file is printed after record r when it was before the
    -- batch or a record up to r printed it; aborted likewise. The jobs a poller's batch touches are
    -- the ones with many files (each is in many impositions): their files and states are read by
    -- hash joins, as a probe per job and per file cost four times as much (0.4 s a batch of 1000 on
    -- 110,000 files). The plan is made once per session, so the setting is only in force for it.
    v_nestloop := current_setting('enable_nestloop');
    PERFORM set_config('enable_nestloop', 'off', true);
    WITH pairs AS MATERIALIZED (
      SELECT f.pos, f.job_id, min(f.version_tag) AS version_tag FROM pg_temp.ff_print_files f
      JOIN pg_temp.ff_print_batch b ON b.pos = f.pos AND b.outcome = 'applied'
      WHERE f.known
        AND NOT EXISTS (SELECT 1 FROM pg_temp.ff_unplanned u WHERE u.pos = f.pos AND u.job_id = f.job_id)
      GROUP BY f.pos, f.job_id),
    touched AS MATERIALIZED (SELECT job_id FROM pairs GROUP BY job_id),
    job_files AS MATERIALIZED (
      SELECT jf.job_id, jf.file_id, bool_or(coalesce(st.printed, false)) AS printed,
             bool_or(coalesce(st.aborted, false)) AS aborted, min(fc.printed_at) AS printed_at,
             min(fc.aborted_at) AS aborted_at
      FROM jobmanager.job_files jf
      JOIN touched t ON t.job_id = jf.job_id
      LEFT JOIN jobmanager.print_file_states st ON st.file_id = jf.file_id
      LEFT JOIN pg_temp.ff_file_change fc ON fc.file_id = jf.file_id
      GROUP BY jf.job_id, jf.file_id),
    counts AS (
      SELECT p.pos, p.job_id, p.version_tag, count(*)::int AS total,
             count(*) FILTER (WHERE f.printed OR f.printed_at <= p.pos)::int AS printed,
             count(*) FILTER (WHERE NOT (f.printed OR coalesce(f.printed_at <= p.pos, false))
                                AND (f.aborted OR f.aborted_at <= p.pos))::int AS aborted
      FROM pairs p JOIN job_files f ON f.job_id = p.job_id
      GROUP BY p.pos, p.job_id, p.version_tag)
    INSERT INTO pg_temp.ff_print_jobs (pos, job_id, version_tag, status, print, note)
    SELECT c.pos, c.job_id, c.version_tag, v.status, v.print, v.note || coalesce('; ' || b.notes, '')
    FROM counts c JOIN pg_temp.ff_print_batch b ON b.pos = c.pos
    CROSS JOIN LATERAL (
      SELECT CASE WHEN c.total > 0 AND c.printed >= c.total THEN 'completed'
                  WHEN c.printed > 0 THEN 'partial' ELSE 'aborted' END AS status,
             CASE WHEN c.total > 0 AND c.printed >= c.total THEN true
                  WHEN c.printed > 0 OR (c.total > 0 AND c.aborted >= c.total) THEN false END AS print,
             CASE WHEN c.total > 0 AND c.printed >= c.total THEN 'all ' || c.total || ' files printed'
                  WHEN c.printed > 0 THEN 'partially printed: ' || c.printed || ' of ' || c.total || ' files'
                                          || CASE WHEN c.aborted > 0 THEN ', ' || c.aborted || ' aborted' ELSE '' END
                  WHEN c.total > 0 AND c.aborted >= c.total THEN 'all ' || c.total || ' files aborted'
                  ELSE c.aborted || ' of ' || c.total || ' files aborted, none printed' END AS note) v;

    PERFORM set_config('enable_nestloop', v_nestloop, true);
    -- The print claims, in record order (a verdict that leaves print as it is claims nothing).
    INSERT INTO pg_temp.ff_claim_input (pos, job_id, operation, value, source_type, source_id, effective_at)
    SELECT j.pos, j.job_id, 'print'::text AS operation, j.print AS value, 'print_os'::text AS source_type,
           b.source_id, b.effective_at
    FROM pg_temp.ff_print_jobs j JOIN pg_temp.ff_print_batch b ON b.pos = j.pos
    WHERE j.print IS NOT NULL;

    PERFORM jobmanager.ff_resolve_claims();
    PERFORM jobmanager.ff_record_batch('print_os', p_now, p_flow_version);
    -- The file states the batch leaves (printed and aborted only ever become true).
    INSERT INTO jobmanager.print_file_states (file_id, printed, aborted, updated_at)
    SELECT file_id, printed_at IS NOT NULL, aborted_at IS NOT NULL, p_now FROM pg_temp.ff_file_change ORDER BY file_id
    ON CONFLICT (file_id) DO UPDATE
    SET printed = print_file_states.printed OR excluded.printed,
        aborted = print_file_states.aborted OR excluded.aborted,
        updated_at = excluded.updated_at
    WHERE (NOT print_file_states.printed AND excluded.printed) OR (NOT print_file_states.aborted AND excluded.aborted);

    -- logs.imposition_operations of print, the last record per imposition (seed §2.1 step 5).
    UPDATE logs.imposition_operations t
    SET status = l.status, completed_at = p_now, completed_by = 'print_os', source_id = l.source_id,
        notes = l.notes, flow_version = p_flow_version, updated_at = p_now
    FROM (
      SELECT DISTINCT ON (b.imposition_id) b.imposition_id, b.source_id, b.notes,
             CASE WHEN b.printed THEN 'completed' ELSE 'aborted' END AS status
      FROM pg_temp.ff_print_batch b WHERE b.outcome = 'applied' ORDER BY b.imposition_id, b.pos DESC) l
    WHERE t.imposition_id = l.imposition_id
      AND t.operation_id = v_print_id;

    -- logs.job_operations of print, the last applied record per job; a partial print, or a verdict
    -- that leaves print as it is, writes its note only (the operation is not completed).
    UPDATE logs.job_operations t
    SET status = COALESCE(l.status, t.status),
        completed_at = CASE WHEN l.status IS NULL THEN t.completed_at ELSE p_now END,
        completed_by = CASE WHEN l.status IS NULL THEN t.completed_by ELSE 'print_os' END,
        source_id = CASE WHEN l.status IS NULL THEN t.source_id ELSE l.source_id END,
        notes = l.note, flow_version = p_flow_version, updated_at = p_now
    FROM (
      SELECT DISTINCT ON (j.job_id) j.job_id, j.version_tag, b.source_id, j.note || CASE WHEN c.applies = false
    THEN '; not applied: ' || c.against_type || ' record ' || coalesce(c.against_id::text, 'null') || ' is newer' ELSE '' END AS note,
             CASE WHEN j.status = 'partial' OR j.print IS NULL THEN NULL ELSE j.status END AS status
      FROM pg_temp.ff_print_jobs j JOIN pg_temp.ff_print_batch b ON b.pos = j.pos
      LEFT JOIN pg_temp.ff_claims c ON c.job_id = j.job_id AND c.operation = 'print' AND c.pos = j.pos
      WHERE coalesce(c.applies, true) ORDER BY j.job_id, j.pos DESC) l
    WHERE t.job_id = l.job_id
      AND t.operation_id = v_print_id
      AND (t.version_tag IS NULL OR l.version_tag IS NULL OR t.version_tag = l.version_tag);

    PERFORM jobmanager.ff_write_claims(p_now);
    -- A job_status_updates row per (record, job), applied or not (seed §5.2, §8.2).
    INSERT INTO jobmanager.job_status_updates
      (job_id, operation_type, status, source_type, source_id, notes, flow_version, created_at, updated_at)
    SELECT j.job_id, 'print', j.status, 'print_os', b.source_id, j.note || CASE WHEN c.applies = false
    THEN '; not applied: ' || c.against_type || ' record ' || coalesce(c.against_id::text, 'null') || ' is newer' ELSE '' END, p_flow_version, p_now, p_now
    FROM pg_temp.ff_print_jobs j JOIN pg_temp.ff_print_batch b ON b.pos = j.pos
    LEFT JOIN pg_temp.ff_claims c ON c.job_id = j.job_id AND c.operation = 'print' AND c.pos = j.pos
    ORDER BY j.pos, j.job_id
    ON CONFLICT ON CONSTRAINT job_status_updates_source_key DO NOTHING;

    SELECT count(DISTINCT job_id) INTO v_touched FROM pg_temp.ff_print_jobs;
    RETURN QUERY SELECT b.source_id, b.outcome, b.reason, b.jobs, v_touched FROM pg_temp.ff_print_batch b;
END $$;

-- Applies the scans loaded in ff_scan_batch (seed 001 §2.2, §3.2, §5): which jobs each code stands
-- for (a runlist: every job of its impositions; a job on a runlist: its runlist's jobs; otherwise
-- the job alone), the operations it completes, the precedence of claims.
CREATE OR REPLACE FUNCTION jobmanager.ff_apply_scans(p_now timestamptz, p_flow_version text, p_check_files boolean)
RETURNS TABLE (r_source_id bigint, r_outcome text, r_reason text, r_jobs int, r_touched int)
-- A batch's sorts and hashes (claims in record order, files per job) stay in memory.
LANGUAGE plpgsql SET work_mem = '64MB' AS $$
DECLARE
    v_touched int;
BEGIN
    PERFORM jobmanager.ff_files_parsed(p_check_files);
    DELETE FROM pg_temp.ff_scan_batch b
    WHERE EXISTS (SELECT 1 FROM jobmanager.processed_source_records r
                  WHERE r.source_type = 'scanner' AND r.source_id = b.source_id OFFSET 0);
    -- The operations of each readable scan, with their ids in logs.operation_catalog.
    INSERT INTO pg_temp.ff_scan_ops (pos, ord, name, operation_id)
    SELECT b.pos, o.ord, o.name, c.operation_id
    FROM pg_temp.ff_scan_batch b
    CROSS JOIN LATERAL unnest(b.operations) WITH ORDINALITY AS o(name, ord)
    LEFT JOIN logs.operation_catalog c ON c.operation_name = o.name
    WHERE b.invalid_reason IS NULL;

    -- Each scan's runlists (seed §2.2 case A: a code that is an existing runlist; case B: the
    -- runlists holding the job's files). A code that fits both a runlist and a job pattern is a
    -- runlist only if that runlist exists.
    INSERT INTO pg_temp.ff_scan_runlists (pos, runlist_id)
    SELECT b.pos, b.runlist_id FROM pg_temp.ff_scan_batch b
    WHERE b.invalid_reason IS NULL AND b.target_kind = 'runlist'
      AND EXISTS (SELECT 1 FROM logs.production_planner_paths p WHERE p.runlist_id = b.runlist_id)
    UNION
    SELECT b.pos, p.runlist_id FROM pg_temp.ff_scan_batch b
    JOIN jobmanager.job_files jf ON jf.job_id = b.job_id
    JOIN logs.production_planner_paths p ON p.imposition_id = jf.imposition_id
    WHERE b.invalid_reason IS NULL AND b.job_id IS NOT NULL
      AND NOT (b.target_kind = 'runlist'
               AND EXISTS (SELECT 1 FROM logs.production_planner_paths x WHERE x.runlist_id = b.runlist_id));

    -- Each scan's jobs: every job of its runlists' impositions, or the job alone when it has none.
    INSERT INTO pg_temp.ff_scan_jobs (pos, job_id, known, version_tag)
    SELECT s.pos, s.job_id, j.job_id IS NOT NULL,
           CASE WHEN s.single AND s.tag IS NOT NULL THEN s.tag ELSE j.version_tag END
    FROM (
      SELECT DISTINCT r.pos, jf.job_id, false AS single, NULL::text AS tag
      FROM pg_temp.ff_scan_runlists r
      JOIN logs.production_planner_paths p ON p.runlist_id = r.runlist_id
      JOIN jobmanager.job_files jf ON jf.imposition_id = p.imposition_id AND jf.job_id IS NOT NULL
      UNION ALL
      SELECT b.pos, b.job_id, true, b.version_tag FROM pg_temp.ff_scan_batch b
      WHERE b.invalid_reason IS NULL AND b.job_id IS NOT NULL
        AND NOT EXISTS (SELECT 1 FROM pg_temp.ff_scan_runlists r WHERE r.pos = b.pos)) s
    LEFT JOIN jobmanager.jobs j ON j.job_id = s.job_id;

    PERFORM count(*) FROM (SELECT 1 FROM jobmanager.jobs j
                           WHERE j.job_id IN (SELECT s.job_id FROM pg_temp.ff_scan_jobs s WHERE s.known)
                           ORDER BY j.job_id FOR UPDATE) AS locked;
    -- The (known job, known operation) of each scan without a planned row, matched as the write below matches.
    INSERT INTO pg_temp.ff_unplanned (pos, job_id, operation)
    SELECT DISTINCT j.pos, j.job_id, o.name FROM pg_temp.ff_scan_jobs j
    JOIN pg_temp.ff_scan_ops o ON o.pos = j.pos AND o.operation_id IS NOT NULL
    WHERE j.known AND NOT EXISTS (
        SELECT 1 FROM logs.job_operations t
        WHERE t.job_id = j.job_id AND t.operation_id = o.operation_id
          AND (t.version_tag IS NULL OR j.version_tag IS NULL OR t.version_tag = j.version_tag));
    -- Each scan's verdict: why it is skipped, or how it reached its jobs and what was left out.
    UPDATE pg_temp.ff_scan_batch b
    SET outcome = CASE WHEN v.reason IS NULL THEN 'applied' ELSE 'skipped' END,
        reason = v.reason, via = v.via, note = v.note,
        jobs = CASE WHEN v.reason IS NULL THEN v.planned ELSE 0 END
    FROM (
      SELECT b.pos,
        CASE
          WHEN b.invalid_reason IS NOT NULL THEN b.invalid_reason
          WHEN coalesce(o.known, 0) = 0
            THEN 'unknown operation' || CASE WHEN o.total > 1 THEN 's' ELSE '' END || ' ' || o.names
          WHEN r.runlists IS NULL AND b.job_id IS NULL
            THEN 'unknown runlist ' || b.runlist_id || ': not in production_planner_paths'
          WHEN coalesce(j.total, 0) = 0 THEN 'runlist ' || array_to_string(r.runlists, ', ') || ' has no jobs'
          WHEN j.known = 0 THEN 'unknown job ' || array_to_string(j.unknown, ', ')
          WHEN coalesce(pl.jobs, 0) = 0
            THEN 'no planned operation in logs.job_operations for ' || u.missing
        END AS reason,
        CASE WHEN r.runlists IS NULL THEN 'job' ELSE 'runlist' END AS via,
        concat_ws('; ',
          CASE WHEN r.runlists IS NULL THEN 'scanned job'
               ELSE 'scanned via runlist ' || array_to_string(r.runlists, ', ') END,
          o.unknown_notes,
          CASE WHEN cardinality(j.unknown) > 0 THEN 'unknown jobs skipped: ' || array_to_string(j.unknown, ', ') END,
          CASE WHEN u.missing IS NOT NULL THEN 'not planned in logs.job_operations, skipped: ' || u.missing END
        ) AS note,
        coalesce(pl.jobs, 0) AS planned
      FROM pg_temp.ff_scan_batch b
      LEFT JOIN (
        SELECT u.pos, string_agg(u.operation || ' of job ' || u.job_id, ', ' ORDER BY u.job_id, u.operation) AS missing
        FROM pg_temp.ff_unplanned u GROUP BY u.pos) u ON u.pos = b.pos
      LEFT JOIN (
        SELECT j.pos, count(DISTINCT j.job_id)::int AS jobs
        FROM pg_temp.ff_scan_jobs j JOIN pg_temp.ff_scan_ops o ON o.pos = j.pos AND o.operation_id IS NOT NULL
        WHERE j.known AND NOT EXISTS (SELECT 1 FROM pg_temp.ff_unplanned u
                                      WHERE u.pos = j.pos AND u.job_id = j.job_id AND u.operation = o.name)
        GROUP BY j.pos) pl ON pl.pos = b.pos
      LEFT JOIN (
        SELECT o.pos, count(o.operation_id) AS known, count(*) AS total, string_agg(o.name, ', ' ORDER BY o.ord) AS names,
               string_agg('unknown operation ' || o.name || ' skipped', '; ' ORDER BY o.ord)
                 FILTER (WHERE o.operation_id IS NULL) AS unknown_notes
        FROM pg_temp.ff_scan_ops o GROUP BY o.pos) o ON o.pos = b.pos
      LEFT JOIN (
        SELECT r.pos, array_agg(r.runlist_id ORDER BY r.runlist_id) AS runlists
        FROM pg_temp.ff_scan_runlists r GROUP BY r.pos) r ON r.pos = b.pos
      LEFT JOIN (
        SELECT j.pos, count(*) AS total, count(*) FILTER (WHERE j.known)::int AS known,
               coalesce(array_agg(j.job_id ORDER BY j.job_id) FILTER (WHERE NOT j.known), '{}') AS unknown
        FROM pg_temp.ff_scan_jobs j GROUP BY j.pos) j ON j.pos = b.pos) v
    WHERE b.pos = v.pos;

    -- A claim per (applied scan, known job, known operation), in scan order.
    INSERT INTO pg_temp.ff_claim_input (pos, job_id, operation, value, source_type, source_id, effective_at)
    SELECT b.pos, j.job_id, o.name AS operation, true AS value, 'scanner'::text AS source_type, b.source_id,
           b.effective_at
    FROM pg_temp.ff_scan_batch b
    JOIN pg_temp.ff_scan_jobs j ON j.pos = b.pos AND j.known
    JOIN pg_temp.ff_scan_ops o ON o.pos = b.pos AND o.operation_id IS NOT NULL
    WHERE b.outcome = 'applied'
      AND NOT EXISTS (SELECT 1 FROM pg_temp.ff_unplanned u
                      WHERE u.pos = b.pos AND u.job_id = j.job_id AND u.operation = o.name);

    PERFORM jobmanager.ff_resolve_claims();
    PERFORM jobmanager.ff_record_batch('scanner', p_now, p_flow_version);
    -- logs.imposition_operations of a runlist scan's impositions, the last scan per imposition and operation.
    UPDATE logs.imposition_operations t
    SET status = 'completed', completed_at = p_now, completed_by = 'scanner', source_id = l.source_id,
        notes = l.note, flow_version = p_flow_version, updated_at = p_now
    FROM (
      SELECT DISTINCT ON (p.imposition_id, o.operation_id) p.imposition_id, o.operation_id, b.source_id, b.note
      FROM pg_temp.ff_scan_batch b
      JOIN pg_temp.ff_scan_runlists r ON r.pos = b.pos
      JOIN logs.production_planner_paths p ON p.runlist_id = r.runlist_id
      JOIN pg_temp.ff_scan_ops o ON o.pos = b.pos AND o.operation_id IS NOT NULL
      WHERE b.outcome = 'applied'
      ORDER BY p.imposition_id, o.operation_id, b.pos DESC) l
    WHERE t.imposition_id = l.imposition_id AND t.operation_id = l.operation_id;

    -- logs.job_operations, the last applied claim per job and operation.
    UPDATE logs.job_operations t
    SET status = 'completed', completed_at = p_now, completed_by = 'scanner', source_id = l.source_id,
        notes = l.note, flow_version = p_flow_version, updated_at = p_now
    FROM (
      SELECT DISTINCT ON (c.job_id, o.operation_id) c.job_id, o.operation_id, j.version_tag, b.source_id, b.note
      FROM pg_temp.ff_claims c
      JOIN pg_temp.ff_scan_batch b ON b.pos = c.pos
      JOIN pg_temp.ff_scan_ops o ON o.pos = c.pos AND o.name = c.operation
      JOIN pg_temp.ff_scan_jobs j ON j.pos = c.pos AND j.job_id = c.job_id
      WHERE c.applies
      ORDER BY c.job_id, o.operation_id, c.pos DESC) l
    WHERE t.job_id = l.job_id AND t.operation_id = l.operation_id
      AND (t.version_tag IS NULL OR l.version_tag IS NULL OR t.version_tag = l.version_tag);

    PERFORM jobmanager.ff_write_claims(p_now);
    -- A job_status_updates row per claim, applied or not (with the reason when not).
    INSERT INTO jobmanager.job_status_updates
      (job_id, operation_type, status, source_type, source_id, notes, flow_version, created_at, updated_at)
    SELECT c.job_id, c.operation, 'completed', 'scanner', c.source_id,
           b.note || CASE WHEN c.applies THEN ''
                          ELSE '; not applied: ' || c.against_type || ' has precedence for ' || c.operation END,
           p_flow_version, p_now, p_now
    FROM pg_temp.ff_claims c JOIN pg_temp.ff_scan_batch b ON b.pos = c.pos
    ORDER BY c.pos, c.job_id, c.operation
    ON CONFLICT ON CONSTRAINT job_status_updates_source_key DO NOTHING;

    SELECT count(DISTINCT c.job_id) INTO v_touched FROM pg_temp.ff_claim_input c;
    RETURN QUERY SELECT b.source_id, b.outcome, b.reason, b.jobs, v_touched FROM pg_temp.ff_scan_batch b;
END $$;

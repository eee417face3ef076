-- 015: a job's print verdict from stored per-job counters (issue 14's backlog aim). Each print
-- record's verdict needs, for each of its jobs, how many of the job's files (across impositions)
-- are printed and aborted after the record. 012 read every file of every touched job for that, in
-- every batch: the jobs a backlog batch touches are the ones in many impositions, so a batch of
-- 1000 records read ~55,000 file states to judge ~5,500 (record, job) pairs. Now each job keeps
-- its counts (files, printed, aborted and not printed) in jobmanager.print_job_counts, and a batch
-- reads only the files it changes: count before the batch + the batch's own changes up to the
-- record. The counts are written in the batch's transaction, under the job's row lock, from the
-- same file-state changes the batch writes, so they move exactly when print_file_states does.
--
-- A job's counts are made from all its files the first time a batch needs them, and forgotten
-- (made again when next needed) whenever the job's files change in jobmanager.job_files (a mapping
-- imported, parsed or removed) or the job is deleted. print_file_states is written by these
-- functions only; a hand edit of it must DELETE FROM jobmanager.print_job_counts.

CREATE TABLE IF NOT EXISTS jobmanager.print_job_counts (
    job_id  text PRIMARY KEY REFERENCES jobmanager.jobs (job_id) ON DELETE CASCADE,
    files   int NOT NULL,  -- distinct file ids of the job in job_files
    printed int NOT NULL,  -- of those, printed
    aborted int NOT NULL   -- of those, aborted and not printed
);

CREATE OR REPLACE FUNCTION jobmanager.print_job_counts_forget() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        DELETE FROM jobmanager.print_job_counts c
        WHERE c.job_id IN (SELECT o.job_id FROM old_rows o WHERE o.job_id IS NOT NULL);
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        DELETE FROM jobmanager.print_job_counts c
        WHERE c.job_id IN (SELECT n.job_id FROM new_rows n WHERE n.job_id IS NOT NULL);
    END IF;
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS print_job_counts_on_insert ON jobmanager.job_files;
CREATE TRIGGER print_job_counts_on_insert AFTER INSERT ON jobmanager.job_files
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION jobmanager.print_job_counts_forget();
DROP TRIGGER IF EXISTS print_job_counts_on_update ON jobmanager.job_files;
CREATE TRIGGER print_job_counts_on_update AFTER UPDATE ON jobmanager.job_files
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION jobmanager.print_job_counts_forget();
DROP TRIGGER IF EXISTS print_job_counts_on_delete ON jobmanager.job_files;
CREATE TRIGGER print_job_counts_on_delete AFTER DELETE ON jobmanager.job_files
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
    EXECUTE FUNCTION jobmanager.print_job_counts_forget();
-- A TRUNCATE of the files forgets every count.
CREATE OR REPLACE FUNCTION jobmanager.print_job_counts_forget_all() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM jobmanager.print_job_counts;
    RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS print_job_counts_on_truncate ON jobmanager.job_files;
CREATE TRIGGER print_job_counts_on_truncate AFTER TRUNCATE ON jobmanager.job_files
    FOR EACH STATEMENT EXECUTE FUNCTION jobmanager.print_job_counts_forget_all();
DROP TRIGGER IF EXISTS print_job_counts_on_truncate ON jobmanager.print_file_states;
CREATE TRIGGER print_job_counts_on_truncate AFTER TRUNCATE ON jobmanager.print_file_states
    FOR EACH STATEMENT EXECUTE FUNCTION jobmanager.print_job_counts_forget_all();

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
    -- The files of known jobs a print batch changes, not printed before it, with their state then.
    CREATE TEMP TABLE IF NOT EXISTS ff_file_delta (
        job_id text NOT NULL, file_id text NOT NULL, printed_at int, aborted_at int, was_aborted boolean NOT NULL,
        PRIMARY KEY (job_id, file_id)) ON COMMIT DELETE ROWS;
END $$;

-- Applies the "print OS" records loaded in ff_print_batch (seed 001 §2.1, §3.3, §5.3, §8):
-- records in marker order, each judged against the file states its predecessors left, a job
-- printed only when every one of its files, across impositions, is printed.
CREATE OR REPLACE FUNCTION jobmanager.ff_apply_print(p_now timestamptz, p_flow_version text, p_check_files boolean)
RETURNS TABLE (r_source_id bigint, r_outcome text, r_reason text, r_jobs int, r_touched int)
-- A batch's sorts and hashes (claims in record order) stay in memory.
LANGUAGE plpgsql SET work_mem = '64MB' AS $$
DECLARE
    v_touched int;
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

    -- The stored counts of the known jobs that have none yet (seen for the first time, or their files
    -- changed since), from all their files as they stood before this batch.
    INSERT INTO jobmanager.print_job_counts (job_id, files, printed, aborted)
    SELECT jf.job_id, count(DISTINCT jf.file_id), count(DISTINCT jf.file_id) FILTER (WHERE st.printed),
           count(DISTINCT jf.file_id) FILTER (WHERE st.aborted AND NOT st.printed)
    FROM (SELECT DISTINCT f.job_id FROM pg_temp.ff_print_files f
          WHERE f.known AND NOT EXISTS (SELECT 1 FROM jobmanager.print_job_counts c WHERE c.job_id = f.job_id)) k
    JOIN jobmanager.job_files jf ON jf.job_id = k.job_id
    LEFT JOIN jobmanager.print_file_states st ON st.file_id = jf.file_id
    GROUP BY jf.job_id
    ON CONFLICT (job_id) DO NOTHING;

    -- The batch's changes to those counts: its files of known jobs that were not printed before it.
    INSERT INTO pg_temp.ff_file_delta (job_id, file_id, printed_at, aborted_at, was_aborted)
    SELECT k.job_id, fc.file_id, fc.printed_at, fc.aborted_at, coalesce(st.aborted, false)
    FROM (SELECT DISTINCT f.job_id, f.file_id FROM pg_temp.ff_print_files f WHERE f.known) k
    JOIN pg_temp.ff_file_change fc ON fc.file_id = k.file_id
    LEFT JOIN jobmanager.print_file_states st ON st.file_id = fc.file_id
    WHERE NOT coalesce(st.printed, false);

    -- Each (applied record, known job) with the job's print verdict after the record
    -- (core/job-status judgeJobPrint): the job's stored counts plus what the batch changed up to the
    -- record (a file printed by a record up to it; aborted by one, and not printed by any, up to it).
    WITH pairs AS MATERIALIZED (
      SELECT f.pos, f.job_id, min(f.version_tag) AS version_tag FROM pg_temp.ff_print_files f
      JOIN pg_temp.ff_print_batch b ON b.pos = f.pos AND b.outcome = 'applied'
      WHERE f.known
        AND NOT EXISTS (SELECT 1 FROM pg_temp.ff_unplanned u WHERE u.pos = f.pos AND u.job_id = f.job_id)
      GROUP BY f.pos, f.job_id),
    counts AS (
      SELECT p.pos, p.job_id, p.version_tag, n.files AS total,
             (n.printed + count(d.file_id) FILTER (WHERE d.printed_at <= p.pos))::int AS printed,
             (n.aborted
              + count(d.file_id) FILTER (WHERE NOT d.was_aborted AND d.aborted_at <= p.pos
                                           AND NOT coalesce(d.printed_at <= p.pos, false))
              - count(d.file_id) FILTER (WHERE d.was_aborted AND d.printed_at <= p.pos))::int AS aborted
      FROM pairs p JOIN jobmanager.print_job_counts n ON n.job_id = p.job_id
      LEFT JOIN pg_temp.ff_file_delta d ON d.job_id = p.job_id
      GROUP BY p.pos, p.job_id, p.version_tag, n.files, n.printed, n.aborted)
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
    -- The counts the batch leaves, from the same changes.
    UPDATE jobmanager.print_job_counts n
    SET printed = n.printed + d.printed, aborted = n.aborted + d.aborted
    FROM (SELECT job_id, count(*) FILTER (WHERE printed_at IS NOT NULL) AS printed,
                 count(*) FILTER (WHERE NOT was_aborted AND aborted_at IS NOT NULL AND printed_at IS NULL)
                 - count(*) FILTER (WHERE was_aborted AND printed_at IS NOT NULL) AS aborted
          FROM pg_temp.ff_file_delta GROUP BY job_id) d
    WHERE n.job_id = d.job_id AND (d.printed <> 0 OR d.aborted <> 0);

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

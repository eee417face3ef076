-- 131: a print batch's status rows and ledger rows inserted without a conflict probe (issue 14's
-- backlog aim: within 1.5x of the hand-written single SQL pass). INSERT ... ON CONFLICT inserts each
-- row speculatively: a probe of the unique key before the heap insert, then a second WAL record to
-- confirm it. The status rows are half of a batch's database CPU, and that probe was ~8 % of a
-- 10,000-record batch of the bench's backlog (55,000 rows); the ledger's 10,000 rows cost 45-52 ms
-- inserted plainly against 64-73 ms with it.
--
-- Status rows. A record's status rows are written only by the applier that writes its ledger row,
-- in the same transaction, after that row: the ledger's key makes two appliers of one record wait
-- for each other and the second raise FFR01 before any effect. So a record not in the ledger has
-- status rows only when something outside the appliers wrote them (an import, a repair); the batch
-- probes for that once per record (10,000 key probes instead of 55,000 speculative inserts) and,
-- when it finds any, leaves those (record, job) rows out by a probe per row, as DO NOTHING did. The
-- rows written, their order and their ids are the same (a row left out no longer uses up an id of
-- the sequence: ids had gaps before, and still have).
--
-- Ledger. A plain insert in a block of its own: a record another transaction processed meanwhile
-- meets its key there (once that transaction commits) and the block raises FFR01, as migration
-- 012's ff_record_batch did by counting the rows its ON CONFLICT DO NOTHING inserted.
--
-- Everything else is migration 126's statement. tests/integration/job-status-print-rows.test.ts
-- covers both paths; bench/support/print-sameness.ts compares every table with 126's applier.

CREATE OR REPLACE FUNCTION jobmanager.ff_apply_print(p_now timestamptz, p_flow_version text, p_check_files boolean)
RETURNS TABLE (r_source_id bigint, r_outcome text, r_reason text, r_jobs int, r_touched int)
-- A batch's sorts and hashes (the stream per job, status rows in record order) stay in memory. No
-- JIT: the planner's estimates for the working tables (never analysed) put the one-pass statement
-- over the JIT threshold, and compiling it cost ~0.4 s a batch of 10,000, more than it saved.
LANGUAGE plpgsql SET work_mem = '64MB' SET jit = off AS $$
DECLARE
    v_touched int;
    v_unplanned boolean;
    v_written boolean;
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
    -- Probed once per job (a job's version tag is its row's), not once per record and file.
    INSERT INTO pg_temp.ff_unplanned (pos, job_id, operation)
    SELECT DISTINCT f.pos, f.job_id, 'print' FROM pg_temp.ff_print_files f
    WHERE f.known AND f.job_id IN (
        SELECT k.job_id FROM (SELECT DISTINCT f.job_id, f.version_tag FROM pg_temp.ff_print_files f WHERE f.known) k
        WHERE NOT EXISTS (
            SELECT 1 FROM logs.job_operations t
            WHERE t.job_id = k.job_id AND t.operation_id = v_print_id
              AND (t.version_tag IS NULL OR k.version_tag IS NULL OR t.version_tag = k.version_tag)));
    v_unplanned := EXISTS (SELECT 1 FROM pg_temp.ff_unplanned);
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
          WHEN f.parsed = 0 THEN 'no parseable file id in imposition ' || b.imposition_id || ': ' || x.file_notes
          WHEN f.known = 0 THEN 'unknown job' || CASE WHEN cardinality(x.unknown) > 1 THEN 's' ELSE '' END || ' '
                                || array_to_string(x.unknown, ', ') || ': not in jobmanager.jobs'
          WHEN cardinality(u.unplanned) >= f.known
            THEN 'no planned print operation (operation_id ' || v_print_id || ') in logs.job_operations for job'
                 || CASE WHEN cardinality(u.unplanned) > 1 THEN 's' ELSE '' END || ' ' || array_to_string(u.unplanned, ', ')
        END AS verdict,
        b.imposition_id, x.file_notes, coalesce(x.unknown, '{}') AS unknown, coalesce(f.known, 0) AS known,
        coalesce(u.unplanned, '{}') AS unplanned
      FROM pg_temp.ff_print_batch b
      LEFT JOIN (
        SELECT u.pos, array_agg(u.job_id ORDER BY u.job_id) AS unplanned
        FROM pg_temp.ff_unplanned u GROUP BY u.pos) u ON u.pos = b.pos
      -- (The notes of files and jobs left out aggregated over those rows only: an ordered
      -- aggregate sets up a sort for every record it groups, even when its filter keeps nothing.)
      LEFT JOIN (
        SELECT f.pos, count(f.job_id) AS parsed, count(DISTINCT f.job_id) FILTER (WHERE f.known)::int AS known
        FROM pg_temp.ff_print_files f
        GROUP BY f.pos) f ON f.pos = b.pos
      LEFT JOIN (
        SELECT f.pos,
               string_agg('file ' || f.file_id || ' skipped: ' || coalesce(f.parse_error, 'not parsed'), '; '
                          ORDER BY f.file_id) FILTER (WHERE f.job_id IS NULL) AS file_notes,
               coalesce(array_agg(DISTINCT f.job_id ORDER BY f.job_id)
                          FILTER (WHERE f.job_id IS NOT NULL AND NOT f.known), '{}') AS unknown
        FROM pg_temp.ff_print_files f
        WHERE f.job_id IS NULL OR NOT f.known
        GROUP BY f.pos) x ON x.pos = b.pos) v
    WHERE b.pos = v.pos;

    -- The ledger rows with each record's final outcome, before any effect. A record another
    -- transaction processed meanwhile meets its key (once that transaction commits): FFR01, and the
    -- caller tries the batch again without it. (Migration 012's ff_record_batch inserted with ON
    -- CONFLICT DO NOTHING and compared counts, a speculative insert per record: a plain insert in a
    -- block of its own costs 45-52 against 64-73 ms for 10,000 records.)
    BEGIN
        INSERT INTO jobmanager.processed_source_records
            (source_type, source_id, marker, outcome, reason, jobs_updated, flow_version, processed_at)
        SELECT 'print_os', b.source_id, b.marker, b.outcome, b.reason, b.jobs, p_flow_version, p_now
        FROM pg_temp.ff_print_batch b ORDER BY b.pos;
    EXCEPTION WHEN unique_violation THEN
        RAISE EXCEPTION 'another transaction processed records of this batch meanwhile; the batch is tried again'
            USING ERRCODE = 'FFR01';
    END;
    -- Whether some applied record of the batch has status rows already (written outside the
    -- appliers: see above), probed once per record.
    v_written := EXISTS (SELECT 1 FROM pg_temp.ff_print_batch b
                         WHERE b.outcome = 'applied'
                           AND EXISTS (SELECT 1 FROM jobmanager.job_status_updates s
                                       WHERE s.source_type = 'print_os' AND s.source_id = b.source_id OFFSET 0));

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

    WITH
    -- Where in the batch each file is first printed and first aborted (every record with parsed
    -- files changes them, also one skipped for unknown jobs, as one record at a time would), with
    -- the file's state before the batch. A file printed before changes only by its first abort, one
    -- printed and aborted before not at all: their other rows are left out before grouping.
    changes AS MATERIALIZED (
      SELECT f.file_id, min(f.pos) FILTER (WHERE b.printed) AS printed_at, min(f.pos) FILTER (WHERE NOT b.printed) AS aborted_at,
             st.printed AS was_printed, st.aborted AS was_aborted
      FROM pg_temp.ff_print_files f
      JOIN pg_temp.ff_print_batch b ON b.pos = f.pos
      LEFT JOIN jobmanager.print_file_states st ON st.file_id = f.file_id
      WHERE f.job_id IS NOT NULL AND NOT (coalesce(st.printed, false) AND (st.aborted OR b.printed))
      GROUP BY f.file_id, st.printed, st.aborted),
    -- The batch's changes to its known jobs' counts: their files that were not printed before it.
    delta AS MATERIALIZED (
      SELECT DISTINCT f.job_id, f.file_id, c.printed_at, c.aborted_at, coalesce(c.was_aborted, false) AS was_aborted
      FROM pg_temp.ff_print_files f
      JOIN changes c ON c.file_id = f.file_id AND NOT coalesce(c.was_printed, false)
      WHERE f.known),
    -- Per job, in record order: its stored counts and claim (position 0), the changes of its files
    -- (a file printed: one more printed, and one fewer aborted when it was counted aborted; a file
    -- aborted and not printed before: one more aborted), and its pairs (applied record, known job
    -- with a planned print row; one row per file of the job in the record's imposition, the first
    -- kept below). Changes at a pair's own position count for it (a file printed by a record up to
    -- it, aborted by one up to it and not printed by any up to it: 015's rule): kind orders them first.
    stream AS (
      SELECT n.job_id, 0 AS pos, 0 AS kind, n.files AS d_files, n.printed AS d_printed, n.aborted AS d_aborted,
             cur.source_type AS cur_type, cur.source_id AS cur_id,
             CASE WHEN cur.source_type = 'print_os' THEN cur.effective_at END AS cur_auth_at,
             NULL::text AS version_tag, NULL::bigint AS source_id, NULL::timestamptz AS effective_at, NULL::text AS notes
      FROM jobmanager.print_job_counts n
      LEFT JOIN jobmanager.job_operation_claims cur ON cur.job_id = n.job_id AND cur.operation_name = 'print'
      WHERE n.job_id IN (SELECT f.job_id FROM pg_temp.ff_print_files f WHERE f.known)
      UNION ALL
      SELECT d.job_id, d.printed_at, 0, 0, 1, CASE WHEN d.was_aborted OR d.aborted_at < d.printed_at THEN -1 ELSE 0 END,
             NULL, NULL, NULL, NULL, NULL, NULL, NULL
      FROM delta d WHERE d.printed_at IS NOT NULL
      UNION ALL
      SELECT d.job_id, d.aborted_at, 0, 0, 0, 1, NULL, NULL, NULL, NULL, NULL, NULL, NULL
      FROM delta d
      WHERE NOT d.was_aborted AND d.aborted_at IS NOT NULL AND (d.printed_at IS NULL OR d.aborted_at < d.printed_at)
      UNION ALL
      SELECT f.job_id, f.pos, 1, 0, 0, 0, NULL, NULL, NULL, f.version_tag, b.source_id, b.effective_at, b.notes
      FROM pg_temp.ff_print_files f
      JOIN pg_temp.ff_print_batch b ON b.pos = f.pos AND b.outcome = 'applied'
      WHERE f.known
        -- (a probe per pair only when some job of the batch has no planned row)
        AND (NOT v_unplanned
             OR NOT EXISTS (SELECT 1 FROM pg_temp.ff_unplanned u WHERE u.pos = f.pos AND u.job_id = f.job_id))),
    counted AS (
      SELECT s.job_id, s.pos, s.version_tag, s.source_id, s.effective_at, s.notes,
             s.kind = 1 AND NOT coalesce(lag(s.kind) OVER upto = 1 AND lag(s.pos) OVER upto = s.pos, false) AS pair,
             sum(s.d_files) OVER upto AS total, sum(s.d_printed) OVER upto AS printed,
             sum(s.d_aborted) OVER upto AS aborted,
             max(s.cur_type COLLATE "C") OVER upto AS cur_type, max(s.cur_id) OVER upto AS cur_id,
             max(s.cur_auth_at) OVER upto AS cur_auth_at
      FROM stream s
      WINDOW upto AS (PARTITION BY s.job_id COLLATE "C" ORDER BY s.pos, s.kind)),
    -- The job's print verdict after the record (core/job-status judgeJobPrint).
    verdicts AS (
      SELECT c.job_id, c.pos, c.version_tag, c.source_id, c.effective_at, c.cur_type, c.cur_id, c.cur_auth_at,
             CASE WHEN c.total > 0 AND c.printed >= c.total THEN 'completed'
                  WHEN c.printed > 0 THEN 'partial' ELSE 'aborted' END AS status,
             CASE WHEN c.total > 0 AND c.printed >= c.total THEN true
                  WHEN c.printed > 0 OR (c.total > 0 AND c.aborted >= c.total) THEN false END AS print,
             CASE WHEN c.total > 0 AND c.printed >= c.total THEN 'all ' || c.total || ' files printed'
                  WHEN c.printed > 0 THEN 'partially printed: ' || c.printed || ' of ' || c.total || ' files'
                                          || CASE WHEN c.aborted > 0 THEN ', ' || c.aborted || ' aborted' ELSE '' END
                  WHEN c.total > 0 AND c.aborted >= c.total THEN 'all ' || c.total || ' files aborted'
                  ELSE c.aborted || ' of ' || c.total || ' files aborted, none printed' END
               || coalesce('; ' || c.notes, '') AS note
      FROM counted c
      WHERE c.pair),
    -- Each claim (a verdict that sets print) applies when it is at least as late as the stored
    -- claim, when print OS made that one, and every claim of the job before it (migration 100); it
    -- is judged against the last claim before it that applied, or the stored one when none did.
    decided AS (
      SELECT w.*,
             CASE WHEN w.print IS NOT NULL
               THEN (w.cur_auth_at IS NULL OR w.effective_at >= w.cur_auth_at)
                    AND (w.before_max IS NULL OR w.effective_at >= w.before_max) END AS applies
      FROM (SELECT v.*, max(v.effective_at) FILTER (WHERE v.print IS NOT NULL) OVER before AS before_max
            FROM verdicts v
            WINDOW before AS (PARTITION BY v.job_id COLLATE "C" ORDER BY v.pos
                              ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)) w),
    placed AS (
      SELECT d.*, max(d.pos) FILTER (WHERE d.applies) OVER before AS win_before
      FROM decided d
      WINDOW before AS (PARTITION BY d.job_id COLLATE "C" ORDER BY d.pos ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)),
    judged AS MATERIALIZED (
      SELECT p.job_id, p.pos, p.version_tag, p.source_id, p.effective_at, p.status, p.print, p.applies,
             p.note || CASE WHEN p.applies = false
               THEN '; not applied: ' || CASE WHEN p.win_before IS NULL THEN p.cur_type ELSE 'print_os' END || ' record '
                    || coalesce(CASE WHEN p.win_before IS NULL THEN p.cur_id
                                     ELSE (SELECT b.source_id FROM pg_temp.ff_print_batch b WHERE b.pos = p.win_before)
                                END::text, 'null') || ' is newer'
               ELSE '' END AS note,
             -- the job's last pair that applied or claims nothing, and its last claim that applied.
             max(p.pos) FILTER (WHERE coalesce(p.applies, true)) OVER job AS last_ok_pos,
             max(p.pos) FILTER (WHERE p.applies) OVER job AS last_win_pos,
             max(p.pos) OVER job AS last_pos
      FROM placed p
      WINDOW job AS (PARTITION BY p.job_id COLLATE "C")),
    -- The file states the batch leaves (printed and aborted only ever become true).
    file_states AS (
      INSERT INTO jobmanager.print_file_states (file_id, printed, aborted, updated_at)
      SELECT c.file_id, c.printed_at IS NOT NULL, c.aborted_at IS NOT NULL, p_now FROM changes c
      -- only the files whose state changes (most of a backlog batch's were printed before it).
      WHERE c.was_printed IS NULL OR (NOT c.was_printed AND c.printed_at IS NOT NULL)
         OR (NOT c.was_aborted AND c.aborted_at IS NOT NULL)
      ORDER BY c.file_id
      ON CONFLICT (file_id) DO UPDATE
      SET printed = print_file_states.printed OR excluded.printed,
          aborted = print_file_states.aborted OR excluded.aborted,
          updated_at = excluded.updated_at
      WHERE (NOT print_file_states.printed AND excluded.printed) OR (NOT print_file_states.aborted AND excluded.aborted)),
    -- The counts the batch leaves, from the same changes.
    counts AS (
      UPDATE jobmanager.print_job_counts n
      SET printed = n.printed + d.printed, aborted = n.aborted + d.aborted
      FROM (SELECT job_id, count(*) FILTER (WHERE printed_at IS NOT NULL) AS printed,
                   count(*) FILTER (WHERE NOT was_aborted AND aborted_at IS NOT NULL AND printed_at IS NULL)
                   - count(*) FILTER (WHERE was_aborted AND printed_at IS NOT NULL) AS aborted
            FROM delta GROUP BY job_id) d
      WHERE n.job_id = d.job_id AND (d.printed <> 0 OR d.aborted <> 0)),
    -- logs.job_operations of print, the last applied record per job; a partial print, or a verdict
    -- that leaves print as it is, writes its note only (the operation is not completed).
    operations AS (
      UPDATE logs.job_operations t
      SET status = COALESCE(l.status, t.status),
          completed_at = CASE WHEN l.status IS NULL THEN t.completed_at ELSE p_now END,
          completed_by = CASE WHEN l.status IS NULL THEN t.completed_by ELSE 'print_os' END,
          source_id = CASE WHEN l.status IS NULL THEN t.source_id ELSE l.source_id END,
          notes = l.note, flow_version = p_flow_version, updated_at = p_now
      FROM (SELECT j.job_id, j.version_tag, j.source_id, j.note,
                   CASE WHEN j.status = 'partial' OR j.print IS NULL THEN NULL ELSE j.status END AS status
            FROM judged j WHERE j.pos = j.last_ok_pos) l
      WHERE t.job_id = l.job_id
        AND t.operation_id = v_print_id
        AND (t.version_tag IS NULL OR l.version_tag IS NULL OR t.version_tag = l.version_tag)),
    -- The claim left standing per job, and the jobs.operations flag it sets (a job whose flag would
    -- not change is not written).
    claims AS (
      INSERT INTO jobmanager.job_operation_claims
          (job_id, operation_name, value, source_type, source_id, effective_at, updated_at)
      SELECT j.job_id, 'print', j.print, 'print_os', j.source_id, j.effective_at, p_now
      FROM judged j WHERE j.pos = j.last_win_pos ORDER BY j.job_id
      ON CONFLICT (job_id, operation_name) DO UPDATE
      SET value = excluded.value, source_type = excluded.source_type, source_id = excluded.source_id,
          effective_at = excluded.effective_at, updated_at = excluded.updated_at),
    flags AS (
      UPDATE jobmanager.jobs t SET operations = t.operations || jsonb_build_object('print', j.print), updated_at = p_now
      FROM judged j
      WHERE j.pos = j.last_win_pos AND t.job_id = j.job_id AND NOT t.operations @> jsonb_build_object('print', j.print)),
    -- A job_status_updates row per (record, job), applied or not (seed §5.2, §8.2).
    status_rows AS (
      INSERT INTO jobmanager.job_status_updates
        (job_id, operation_type, status, source_type, source_id, notes, flow_version, created_at, updated_at)
      SELECT j.job_id, 'print', j.status, 'print_os', j.source_id, j.note, p_flow_version, p_now, p_now
      FROM judged j
      -- (a probe per row only when some record of the batch has rows already: see v_written)
      WHERE NOT v_written
         OR NOT EXISTS (SELECT 1 FROM jobmanager.job_status_updates s
                        WHERE s.source_type = 'print_os' AND s.source_id = j.source_id AND s.job_id = j.job_id
                          AND s.operation_type = 'print')
      ORDER BY j.pos, j.job_id)
    SELECT count(*) FILTER (WHERE j.pos = j.last_pos) INTO v_touched FROM judged j;

    -- logs.imposition_operations of print, the last record per imposition (seed §2.1 step 5).
    UPDATE logs.imposition_operations t
    SET status = l.status, completed_at = p_now, completed_by = 'print_os', source_id = l.source_id,
        notes = l.notes, flow_version = p_flow_version, updated_at = p_now
    FROM (
      SELECT DISTINCT ON (b.imposition_id COLLATE "C") b.imposition_id, b.source_id, b.notes,
             CASE WHEN b.printed THEN 'completed' ELSE 'aborted' END AS status
      FROM pg_temp.ff_print_batch b WHERE b.outcome = 'applied' ORDER BY b.imposition_id COLLATE "C", b.pos DESC) l
    WHERE t.imposition_id = l.imposition_id
      AND t.operation_id = v_print_id;

    RETURN QUERY SELECT b.source_id, b.outcome, b.reason, b.jobs, v_touched FROM pg_temp.ff_print_batch b;
END $$;

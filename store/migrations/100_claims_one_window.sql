-- 100: judging a batch's claims in one window pass when every claim is authoritative (issue 14's
-- backlog aim). A print batch claims only print, from print OS; a scan batch claims mostly the
-- scanner's own operations: every claim of such a batch has the standing that beats the others,
-- and the general judgement (four window passes, each a sort of every claim of the batch) was a
-- tenth of a print backlog's time. With only authoritative claims the rule of ff_resolve_claims
-- reduces to: a claim applies when it is at least as late as the stored claim (when that one is
-- authoritative) and every claim of its job and operation before it; it is judged against the
-- last claim before it that applied, or the stored claim when none did. Two running aggregates
-- over each job and operation in record order give both: one sort instead of four.
-- Batches with other claims take the general path unchanged (tests/integration/job-status-sql
-- holds both to core/claims resolveClaims).

CREATE OR REPLACE FUNCTION jobmanager.ff_resolve_claims() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_temp.ff_claim_input i
                   WHERE i.source_type <> CASE WHEN i.operation = 'print' THEN 'print_os' ELSE 'scanner' END) THEN
        WITH judged AS (
            SELECT i.*, cur.source_type AS cur_type, cur.source_id AS cur_id,
                   CASE WHEN cur.source_type = i.source_type THEN cur.effective_at END AS cur_auth_at,
                   max(i.effective_at) OVER preceding AS before_max
            FROM pg_temp.ff_claim_input i
            LEFT JOIN jobmanager.job_operation_claims cur ON cur.job_id = i.job_id AND cur.operation_name = i.operation
            WINDOW preceding AS (PARTITION BY i.job_id, i.operation ORDER BY i.pos
                                 ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)),
        decided AS (
            SELECT j.*, (j.cur_auth_at IS NULL OR j.effective_at >= j.cur_auth_at)
                        AND (j.before_max IS NULL OR j.effective_at >= j.before_max) AS applies
            FROM judged j),
        placed AS (
            -- The last claim before this one that applied (position, record); the rows arrive
            -- sorted for the window above, so this one sorts nothing.
            SELECT d.*, max(ARRAY[d.pos::bigint, d.source_id]) FILTER (WHERE d.applies) OVER preceding AS last_win
            FROM decided d
            WINDOW preceding AS (PARTITION BY d.job_id, d.operation ORDER BY d.pos
                                 ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING))
        INSERT INTO pg_temp.ff_claims
            (pos, job_id, operation, value, source_type, source_id, effective_at, applies, against_type, against_id)
        SELECT p.pos, p.job_id, p.operation, p.value, p.source_type, p.source_id, p.effective_at, p.applies,
               CASE WHEN p.last_win IS NULL THEN p.cur_type ELSE p.source_type END,
               CASE WHEN p.last_win IS NULL THEN p.cur_id ELSE p.last_win[2] END
        FROM placed p;
        RETURN;
    END IF;

    WITH judged AS (
        SELECT i.*,
               i.source_type = CASE WHEN i.operation = 'print' THEN 'print_os' ELSE 'scanner' END AS auth,
               cur.source_type AS cur_type, cur.source_id AS cur_id, cur.effective_at AS cur_at,
               cur.source_type = CASE WHEN i.operation = 'print' THEN 'print_os' ELSE 'scanner' END AS cur_auth
        FROM pg_temp.ff_claim_input i
        LEFT JOIN jobmanager.job_operation_claims cur ON cur.job_id = i.job_id AND cur.operation_name = i.operation),
    windowed AS (
        SELECT j.*,
               min(j.pos) FILTER (WHERE j.auth) OVER (PARTITION BY j.job_id, j.operation) AS first_auth,
               max(j.effective_at) OVER (PARTITION BY j.job_id, j.operation, j.auth ORDER BY j.pos
                                         ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS before_max
        FROM judged j),
    decided AS (
        SELECT w.*,
               CASE WHEN w.auth
                 THEN w.effective_at >= GREATEST(CASE WHEN w.cur_auth THEN w.cur_at END, w.before_max)
                      OR GREATEST(CASE WHEN w.cur_auth THEN w.cur_at END, w.before_max) IS NULL
                 ELSE NOT coalesce(w.cur_auth, false) AND (w.first_auth IS NULL OR w.first_auth > w.pos)
                      AND (w.effective_at >= GREATEST(w.cur_at, w.before_max)
                           OR GREATEST(w.cur_at, w.before_max) IS NULL)
               END AS applies
        FROM windowed w),
    counted AS (
        -- wins: how many claims applied up to and including this one.
        SELECT d.*, count(*) FILTER (WHERE d.applies) OVER (PARTITION BY d.job_id, d.operation ORDER BY d.pos) AS wins,
               lag(d.pos) OVER winners AS prev_win_pos,
               lag(d.source_type) OVER winners AS prev_win_type,
               lag(d.source_id) OVER winners AS prev_win_id
        FROM decided d
        WINDOW winners AS (PARTITION BY d.job_id, d.operation, d.applies ORDER BY d.pos)),
    placed AS (
        -- A claim that did not apply was judged against the last that did (the first of its group of
        -- equal wins), one that applied against the one before it (the previous among those that
        -- applied); with none before, against the stored claim.
        SELECT c.*,
               first_value(c.source_type) OVER grp AS grp_type, first_value(c.source_id) OVER grp AS grp_id
        FROM counted c
        WINDOW grp AS (PARTITION BY c.job_id, c.operation, c.wins ORDER BY c.pos))
    INSERT INTO pg_temp.ff_claims
        (pos, job_id, operation, value, source_type, source_id, effective_at, applies, against_type, against_id)
    SELECT p.pos, p.job_id, p.operation, p.value, p.source_type, p.source_id, p.effective_at, p.applies,
           CASE WHEN p.applies THEN CASE WHEN p.prev_win_pos IS NULL THEN p.cur_type ELSE p.prev_win_type END
                ELSE CASE WHEN p.wins = 0 THEN p.cur_type ELSE p.grp_type END END,
           CASE WHEN p.applies THEN CASE WHEN p.prev_win_pos IS NULL THEN p.cur_id ELSE p.prev_win_id END
                ELSE CASE WHEN p.wins = 0 THEN p.cur_id ELSE p.grp_id END END
    FROM placed p;
END $$;

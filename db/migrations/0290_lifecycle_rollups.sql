-- 0290_lifecycle_rollups.sql - the portfolio figures of manage_lifecycle_stages without reading
-- every transition (issue 21, session 8): at 100,000 accounts each call, one client's too, ran
-- two portfolio-wide statements of ~35 ms each - the per-stage average stay summed over every
-- row of lifecycle_stay (migration 0155), and the 90-day transition counts over every transition
-- of the window.
--
--   lifecycle_stay_totals (stage): stays, days = sum(stays), sum(days) of lifecycle_stay's rows
--   of that stage (numeric: the sums are exact, so the average is the same number).
--   lifecycle_trans_daily (day, from_stage, to_stage): n = the transitions with that from_stage
--   (never NULL: the tool counts no first transition) and to_stage whose
--   (changed_at AT TIME ZONE 'UTC')::date = day. The tool sums the whole UTC days inside its
--   window from here and counts the two partial days (the window's first day, and today with
--   anything later) from lifecycle_transitions by lifecycle_changed_idx.
--
-- Invariants (db/functions/portfolio/lifecycle_stay.sql):
--   * Exact, not cached: maintained by the statement triggers that maintain lifecycle_stay, in
--     the writing transaction and under its advisory lock (every writer of lifecycle_transitions
--     takes it first, so the upserts of these rows cannot deadlock); TRUNCATE empties them;
--     csmcp.portfolio_check() compares them with a from-scratch computation
--     (csmcp.lifecycle_rollups_check()). Rows whose counts fell to 0 are kept and read as absent.
--   * Bulk loads (csmcp.portfolio_bulk() on: csmcp.seed_demo) skip the triggers and end with
--     csmcp.portfolio_rebuild(), which recomputes these tables with lifecycle_stay.
CREATE TABLE lifecycle_stay_totals (
    stage text PRIMARY KEY,
    stays bigint NOT NULL,
    days numeric NOT NULL
);

CREATE TABLE lifecycle_trans_daily (
    day date NOT NULL,
    from_stage text NOT NULL,
    to_stage text NOT NULL,
    n bigint NOT NULL,
    PRIMARY KEY (day, from_stage, to_stage)
);

INSERT INTO lifecycle_stay_totals (stage, stays, days)
SELECT stage, sum(stays), sum(days) FROM lifecycle_stay GROUP BY 1;

INSERT INTO lifecycle_trans_daily (day, from_stage, to_stage, n)
SELECT (changed_at AT TIME ZONE 'UTC')::date, from_stage, to_stage, count(*)
FROM lifecycle_transitions WHERE from_stage IS NOT NULL GROUP BY 1, 2, 3;
ANALYZE lifecycle_stay_totals;
ANALYZE lifecycle_trans_daily;

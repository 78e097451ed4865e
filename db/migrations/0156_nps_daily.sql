-- 0156_nps_daily.sql - NPS responses per UTC day (issue 21): track_cs_metrics compares an
-- account's NPS with the portfolio's own trailing 12 months (no configured benchmark), and the
-- portfolio NPS of a period was a scan of every response of the period (~32,000 rows per year at
-- 10,000 accounts) - in every one-account call too.
--
--   nps_daily (day): responses, promoters (score >= 9), detractors (score <= 6) of the responses
--   with (responded_at AT TIME ZONE 'UTC')::date = day. A period of whole UTC days [from, to] is
--   the sum of its days' rows: exactly the responses with responded_at in [from, to + 1) UTC.
--
-- Invariants (db/functions/portfolio/nps_daily.sql):
--   * Exact, not cached: maintained by statement-level triggers on nps_responses in the writing
--     transaction (every writer: tools, import, account erasure via ON DELETE CASCADE; TRUNCATE
--     empties it): each statement adds its per-day differences with one upsert (days in order);
--     csmcp.portfolio_check() compares the table with a from-scratch count.
--   * Bulk loads (csmcp.portfolio_bulk() on: csmcp.seed_demo) skip the triggers and end with
--     csmcp.portfolio_rebuild(), which recomputes this table too.
CREATE TABLE nps_daily (
    day date PRIMARY KEY,
    responses bigint NOT NULL,
    promoters bigint NOT NULL,
    detractors bigint NOT NULL
);

INSERT INTO nps_daily (day, responses, promoters, detractors)
SELECT (responded_at AT TIME ZONE 'UTC')::date, count(*), count(*) FILTER (WHERE score >= 9), count(*) FILTER (WHERE score <= 6)
FROM nps_responses GROUP BY 1;
ANALYZE nps_daily;

-- 0159_csat_daily.sql - CSAT and CES responses per UTC day (issue 21): track_cs_metrics' portfolio
-- csat/ces (the period, its trend buckets and the trailing-12-month benchmark of every call
-- without a configured one) was a scan of every response of each period.
--
--   csat_daily (day, survey_type): responses and the sum of their scores with
--   (responded_at AT TIME ZONE 'UTC')::date = day. The mean over whole UTC days [from, to] is
--   sum(score_sum) / sum(responses): exactly avg(score) over the responses of the period.
--
-- Invariants (db/functions/portfolio/csat_daily.sql), as nps_daily (0156): exact, maintained by
-- statement-level triggers on csat_responses in the writing transaction (per-day upsert in key
-- order; TRUNCATE empties it), checked by csmcp.portfolio_check(), skipped in bulk mode and
-- recomputed by csmcp.portfolio_rebuild().
CREATE TABLE csat_daily (
    day date NOT NULL,
    survey_type text NOT NULL,
    responses bigint NOT NULL,
    score_sum bigint NOT NULL,
    PRIMARY KEY (day, survey_type)
);

INSERT INTO csat_daily (day, survey_type, responses, score_sum)
SELECT (responded_at AT TIME ZONE 'UTC')::date, survey_type, count(*), sum(score) FROM csat_responses GROUP BY 1, 2;
ANALYZE csat_daily;

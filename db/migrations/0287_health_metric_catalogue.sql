-- 0287: the catalogue of custom health measures (manage_health_scorecards, issue 24).
-- Besides the five built-in measures (usage, engagement, support, satisfaction, payment) a
-- scorecard may weight any enabled measure of this catalogue. Each is SQL-backed: sql_function
-- names a function csmcp.hm_<name>(client_id text, lookback_days integer) RETURNS numeric (the raw
-- value; NULL = no data, a missing input) defined under db/functions/scorecards/; the raw value is
-- normalised to 0-100 linearly from `worst` (0) to `best` (100), clamped. Operators add a measure
-- by adding such a function and a row here (docs/operations/scorecards.md); scorecards refer to
-- it by `measure`. A stored score keeps the raw and normalised values it used
-- (health_scores.custom_measures), so changing the catalogue never rewrites history.
CREATE TABLE health_metric_catalogue (
    measure      text PRIMARY KEY CHECK (measure ~ '^[a-z][a-z0-9_]{1,40}$'
                                         AND measure NOT IN ('usage', 'engagement', 'support', 'satisfaction', 'payment')),
    description  text NOT NULL CHECK (length(btrim(description)) BETWEEN 3 AND 500),
    unit         text NOT NULL,
    sql_function text NOT NULL CHECK (sql_function ~ '^csmcp\.hm_[a-z0-9_]{1,40}$'),
    worst        numeric NOT NULL,
    best         numeric NOT NULL CHECK (best <> worst),
    enabled      boolean NOT NULL DEFAULT true,
    created_at   timestamptz NOT NULL DEFAULT now()
);
INSERT INTO health_metric_catalogue (measure, description, unit, sql_function, worst, best) VALUES
    ('seat_utilization', 'average daily active users over the lookback as a percentage of the active contract''s licensed seats (no contract or no seats: missing)', 'percent', 'csmcp.hm_seat_utilization', 0, 100),
    ('nps_average', 'average NPS answer (0-10) of the responses in the lookback (none: missing)', 'points 0-10', 'csmcp.hm_nps_average', 0, 10),
    ('open_critical_tickets', 'open P0/P1 support tickets now (any age)', 'tickets', 'csmcp.hm_open_critical_tickets', 5, 0),
    ('days_since_last_activity', 'days since the last day with active users (never: missing)', 'days', 'csmcp.hm_days_since_last_activity', 60, 0),
    ('overdue_invoices', 'unpaid invoices past their due date now', 'invoices', 'csmcp.hm_overdue_invoices', 3, 0),
    ('feature_adoption', 'features the account has used as a percentage of all features in the catalogue (no features: missing)', 'percent', 'csmcp.hm_feature_adoption', 0, 100);
ALTER TABLE health_scores ADD COLUMN custom_measures jsonb;
-- The five built-in weights sum to 1 unless the score also weighed catalogue measures (their
-- weights are in custom_measures; together they sum to 1, checked by scorecard_apply).
ALTER TABLE health_scores DROP CONSTRAINT health_scores_check;
ALTER TABLE health_scores ADD CONSTRAINT health_scores_weights_check CHECK (
    CASE WHEN custom_measures IS NULL
         THEN abs(usage_weight + engagement_weight + support_weight + satisfaction_weight + payment_weight - 1) <= 0.01
         ELSE usage_weight + engagement_weight + support_weight + satisfaction_weight + payment_weight <= 1.01 END);

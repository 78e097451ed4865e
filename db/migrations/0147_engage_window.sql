-- 0147_engage_window.sql - analyze_engagement_patterns' per-account figures of the current day's
-- period, kept as a day table (issue 21): at 100,000 accounts reading three slices of
-- usage_moments and deriving every account's trend per call was ~2 s of the portfolio call.
--
--   engage_window (v_days, t, client_id): the per-account figures of the period (t - v_days, t]
--   exactly as csmcp.engage_window_rows derives them from usage_moments (rows, the halves' active
--   users, sum and sum of squares, running extremes, events per weekday, trend), only accounts
--   with usage rows in the period (the others are 'inactive' with zeros); cand marks the anomaly
--   candidates. engage_window_tot: per day table and trend the sums of its rows (the counts and
--   weekday totals of the call without reading every row); engage_window_anom: the anomalies of
--   the day table's accounts (days 3 standard deviations from the account's mean; reading them
--   per call probed ~1,000 candidates' usage rows, 0.5-0.8 s at 100,000). engage_window_key
--   (v_days, t): the day tables that are complete and maintained.
--
-- Freshness: exact and current. A day table is keyed by its day t = csmcp.today(): the first
-- all-accounts call of a UTC day and period fills it (under the usage writers' lock, READ
-- COMMITTED only, at most 4 periods a day); from then on every usage_daily write recomputes the
-- touched accounts' rows of every day table with t >= its today, in the writing transaction
-- (csmcp.usage_moments_refresh, under the same lock). A new day reads a new table; earlier days'
-- rows are deleted by the next fill. Rebuilding or emptying usage_moments forgets every table.
-- csmcp.engage_window_check() compares the tables with a from-scratch computation (part of
-- csmcp.portfolio_check()).
CREATE TABLE engage_window_key (
    v_days integer NOT NULL,
    t date NOT NULL,
    PRIMARY KEY (v_days, t)
);
CREATE TABLE engage_window (
    v_days integer NOT NULL,
    t date NOT NULL,
    client_id text NOT NULL,
    nr bigint NOT NULL, a1 bigint NOT NULL, a2 bigint NOT NULL, s1 float8 NOT NULL, s2 float8 NOT NULL,
    mx integer, mn integer,
    e1 bigint NOT NULL, e2 bigint NOT NULL, e3 bigint NOT NULL, e4 bigint NOT NULL, e5 bigint NOT NULL, e6 bigint NOT NULL,
    e7 bigint NOT NULL,
    first_avg numeric NOT NULL, second_avg numeric NOT NULL, direction text NOT NULL, cand boolean NOT NULL,
    PRIMARY KEY (v_days, t, client_id)
);
-- per day table and trend: the sums of its rows (accounts, rows, weekday events), kept with them
CREATE TABLE engage_window_tot (
    v_days integer NOT NULL,
    t date NOT NULL,
    direction text NOT NULL,
    k bigint NOT NULL, nr numeric NOT NULL,
    e1 numeric NOT NULL, e2 numeric NOT NULL, e3 numeric NOT NULL, e4 numeric NOT NULL, e5 numeric NOT NULL, e6 numeric NOT NULL,
    e7 numeric NOT NULL,
    PRIMARY KEY (v_days, t, direction)
);
-- per day table the anomalies of its accounts (csmcp.engage_anomalies_of over the candidates)
CREATE TABLE engage_window_anom (
    v_days integer NOT NULL,
    t date NOT NULL,
    client_id text NOT NULL,
    day date NOT NULL,
    dau integer NOT NULL, mu float8 NOT NULL, z float8 NOT NULL,
    PRIMARY KEY (v_days, t, client_id, day)
);
-- the 20 most declining accounts and the anomaly candidates without reading the other rows
CREATE INDEX engage_window_decl_idx ON engage_window (v_days, t, ((second_avg - first_avg) / first_avg), client_id)
    WHERE direction = 'declining';
CREATE INDEX engage_window_cand_idx ON engage_window (v_days, t) WHERE cand;
-- the churned accounts, which the all-accounts views subtract (a few per cent of the accounts)
CREATE INDEX accounts_churned_idx ON accounts (client_id) WHERE status = 'churned';

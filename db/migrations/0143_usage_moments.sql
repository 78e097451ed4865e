-- 0143_usage_moments.sql - running usage moments per account (issue 21) for
-- analyze_engagement_patterns: the trend halves, the mean and standard deviation of daily active
-- users, the weekday totals and whether a day can deviate by 3 standard deviations, for any
-- period ending "today", from three entries per account instead of every usage row of the period.
--
--   usage_moments (client_id, day): over all usage_daily rows of that account with day <= day:
--   cum_rows = count, cum_users = sum(active_users), cum_sq = sum(active_users^2),
--   cum_max / cum_min = max / min(active_users), cum_ev1..cum_ev7 = sum(events) of the rows on
--   ISO weekday 1 (Monday) .. 7. One row per usage_daily row (same key). The sum over (a, b] =
--   the entry at the last row <= b minus the one at the last row <= a (0 without one).
--   cum_max / cum_min bound the period's extremes (a prefix covers the period), so only accounts
--   whose bound reaches 3 standard deviations are probed for anomalies.
--
-- Invariants (db/functions/portfolio/usage_moments.sql): exact, not cached - statement triggers
-- on usage_daily recompute the changed accounts from their earliest changed day, in the writing
-- transaction, under the usage writers' advisory lock; csmcp.usage_moments_check() compares it
-- with a from-scratch window computation (part of csmcp.portfolio_check()); bulk loads skip the
-- triggers and end with csmcp.portfolio_rebuild(), which recomputes it. A separate table from
-- usage_cum (0140) so that a previous release, which re-applies its own usage_cum functions,
-- never writes it.
CREATE TABLE usage_moments (
    client_id text NOT NULL,
    day date NOT NULL,
    cum_rows bigint NOT NULL,
    cum_users bigint NOT NULL,
    cum_sq numeric NOT NULL,
    cum_max integer NOT NULL,
    cum_min integer NOT NULL,
    cum_ev1 bigint NOT NULL, cum_ev2 bigint NOT NULL, cum_ev3 bigint NOT NULL, cum_ev4 bigint NOT NULL,
    cum_ev5 bigint NOT NULL, cum_ev6 bigint NOT NULL, cum_ev7 bigint NOT NULL,
    PRIMARY KEY (client_id, day)
);

INSERT INTO usage_moments
SELECT client_id, day, count(*) OVER w, sum(active_users) OVER w, sum(active_users::int8 * active_users) OVER w,
       max(active_users) OVER w, min(active_users) OVER w,
       sum(CASE WHEN dw = 1 THEN events ELSE 0 END) OVER w,
       sum(CASE WHEN dw = 2 THEN events ELSE 0 END) OVER w,
       sum(CASE WHEN dw = 3 THEN events ELSE 0 END) OVER w,
       sum(CASE WHEN dw = 4 THEN events ELSE 0 END) OVER w,
       sum(CASE WHEN dw = 5 THEN events ELSE 0 END) OVER w,
       sum(CASE WHEN dw = 6 THEN events ELSE 0 END) OVER w,
       sum(CASE WHEN dw = 7 THEN events ELSE 0 END) OVER w
FROM (SELECT client_id, day, active_users, events, ((day - date '2001-01-01') % 7 + 7) % 7 + 1 AS dw FROM usage_daily) u
WINDOW w AS (PARTITION BY client_id ORDER BY day ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW);

-- the three slices the tool reads (today, the middle, the start of the period): index-only,
-- the entries of one day are adjacent (the rows of one day are spread over the whole heap)
CREATE INDEX usage_moments_day_idx ON usage_moments (day, client_id)
    INCLUDE (cum_rows, cum_users, cum_sq, cum_max, cum_min, cum_ev1, cum_ev2, cum_ev3, cum_ev4, cum_ev5, cum_ev6, cum_ev7);
-- each account's first usage row (zeros for a day before it, without a lookup)
CREATE INDEX usage_moments_first_idx ON usage_moments (client_id) INCLUDE (day) WHERE cum_rows = 1;
-- the anomaly probe: an account's rows from its highest / lowest daily active users
CREATE INDEX usage_daily_client_users_idx ON usage_daily (client_id, active_users);
ANALYZE usage_moments;

-- 0142_usage_feature_agg.sql - per-feature usage rollups (issue 21): the portfolio view of
-- track_feature_adoption (and the feature part of analyze_engagement_patterns) read at most
-- 365 rows per feature instead of every usage_feature_daily row of the period (1.7M at 10,000
-- accounts).
--
--   usage_feature_pair (client_id, feature_id): last_day = the latest usage_feature_daily day of
--   that account and feature; one row per pair that has any usage row.
--   usage_feature_agg (feature_id, day): rows / users / events = count, sum(users), sum(events)
--   of the usage_feature_daily rows of that feature and day (all accounts); last_pairs = number
--   of pairs whose last_day is that day. Accounts that used a feature in (a, b] with b >= every
--   last_day = sum(last_pairs) over (a, b]; pairs with a later last_day are checked one by one.
--
-- Invariants (db/functions/portfolio/usage_feature_agg.sql):
--   * Exact, not cached: maintained by statement triggers on usage_feature_daily in the writing
--     transaction, under the advisory lock every usage writer takes (usage_cum's), so writers
--     apply their deltas one after the other; csmcp.usage_feature_agg_check() compares both
--     tables with a from-scratch computation (part of csmcp.portfolio_check()).
--   * Bulk loads (csmcp.portfolio_bulk() on: csmcp.seed_demo) skip the triggers and end with
--     csmcp.portfolio_rebuild(), which recomputes these tables too; TRUNCATE empties them.
CREATE TABLE usage_feature_pair (
    client_id text NOT NULL,
    feature_id text NOT NULL,
    last_day date NOT NULL,
    PRIMARY KEY (client_id, feature_id)
);
CREATE INDEX usage_feature_pair_last_idx ON usage_feature_pair (last_day);

CREATE TABLE usage_feature_agg (
    feature_id text NOT NULL,
    day date NOT NULL,
    rows bigint NOT NULL,
    users bigint NOT NULL,
    events bigint NOT NULL,
    last_pairs bigint NOT NULL,
    PRIMARY KEY (feature_id, day)
);

INSERT INTO usage_feature_pair (client_id, feature_id, last_day)
SELECT client_id, feature_id, max(day) FROM usage_feature_daily GROUP BY 1, 2;
INSERT INTO usage_feature_agg (feature_id, day, rows, users, events, last_pairs)
SELECT u.feature_id, u.day, u.n, u.us, u.ev, coalesce(p.n, 0)
FROM (SELECT feature_id, day, count(*) AS n, sum(users) AS us, sum(events) AS ev FROM usage_feature_daily GROUP BY 1, 2) u
LEFT JOIN (SELECT feature_id, last_day, count(*) AS n FROM usage_feature_pair GROUP BY 1, 2) p
       ON p.feature_id = u.feature_id AND p.last_day = u.day;
ANALYZE usage_feature_pair;
ANALYZE usage_feature_agg;

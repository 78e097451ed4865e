-- 0140_usage_cum.sql - running totals of usage per account (issue 21): a sum of daily active
-- users (or events) of one account over any day range is two index lookups instead of a scan
-- of the range, so portfolio analyses over sliding windows (the usage_decline retention trigger:
-- 60 days x every account) read ~3 rows per account instead of ~60.
--
--   usage_cum (client_id, day): cum_users = sum of usage_daily.active_users of that account over
--   all its days <= day, cum_events likewise; one row per usage_daily row (same key).
--   Sum over (a, b] = cum at the last row <= b minus cum at the last row <= a (0 without one).
--
-- Invariants (db/functions/portfolio/usage_cum.sql):
--   * Exact, not cached: maintained by statement-level triggers on usage_daily in the writing
--     transaction (every writer: tools, import, GDPR erasure, plain SQL; TRUNCATE rebuilds), so a
--     snapshot never sees usage and totals that disagree; csmcp.portfolio_check() compares them
--     with a from-scratch window sum.
--   * A write to day d of an account recomputes that account's rows from d on (usually one row:
--     ingestion writes today) from usage_daily itself, under a per-account advisory lock taken
--     in key order, so concurrent writers of one account serialize and the second one sees the
--     first one's committed rows (READ COMMITTED: a new snapshot per statement).
--   * Bulk loads (csmcp.portfolio_bulk() on: csmcp.seed_demo) skip the triggers and end with
--     csmcp.portfolio_rebuild(), which recomputes this table too.
CREATE TABLE usage_cum (
    client_id text NOT NULL,
    day date NOT NULL,
    cum_users bigint NOT NULL,
    cum_events bigint NOT NULL,
    PRIMARY KEY (client_id, day)
);

INSERT INTO usage_cum (client_id, day, cum_users, cum_events)
SELECT client_id, day, sum(active_users) OVER w, sum(events) OVER w
FROM usage_daily
WINDOW w AS (PARTITION BY client_id ORDER BY day ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW);

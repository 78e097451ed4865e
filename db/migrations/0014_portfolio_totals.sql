-- 0014_portfolio_totals.sql - list_clients' portfolio summary without a pass over every account.
--
-- Before: every list_clients call recomputed its summary over the whole filtered set (a join of
-- all accounts with their contracts, an aggregate, and the 7-day active users of every account
-- from usage_daily): 180-430 ms per call at 10,000 accounts, linear in the number of accounts
-- (docs/scale.md §3.1). Now the summary of the portfolio, per (tier, lifecycle_stage), is kept
-- in two tables maintained by triggers on the base tables, so the summary of list_clients
-- without filters, or filtered by tier and/or lifecycle stage only, is a sum over at most
-- 24 groups (plus 7 days x 24 groups for active users), whatever the number of accounts.
--
--   portfolio_counts (tier, lifecycle_stage): accounts, sum of health_score, sum of the active
--                    contract's contract_value (ARR).
--   portfolio_usage  (day, tier, lifecycle_stage): sum of usage_daily.active_users.
--
-- Invariants:
--   * Both tables hold DELTA rows: the figure of a group is the SUM of its rows. Writers only
--     INSERT (no shared row is updated, so concurrent writers never wait on each other or
--     deadlock on a counter row); csmcp.portfolio_compact() merges the rows of each group,
--     started by a writer every ~256 delta rows.
--   * Exact, not cached: the deltas are written by the same transaction as the change, so any
--     snapshot sees base tables and totals that agree (csmcp.portfolio_check() compares them
--     with a from-scratch computation). Triggers cover every writer: the tools (register_client,
--     update_client_info, calculate_health_score, manage_lifecycle_stages, ingest_usage_events),
--     csmcpctl import, GDPR erasure, plain SQL, TRUNCATE (full rebuild).
--   * A row of usage_daily or contracts is counted in the group of its account's CURRENT
--     (tier, lifecycle_stage): an account that changes group moves its ARR and all its usage
--     days. The usage/contract triggers lock the account row FOR SHARE while they read its
--     group, so a concurrent change of the account's group waits for them (or they for it) and
--     nothing is counted in a stale group. This relies on READ COMMITTED (every tool and
--     csmcpctl run at the default level).
--   * An account deleted with its children (ON DELETE CASCADE) is subtracted whole by a BEFORE
--     DELETE row trigger; the cascaded child deletes then find no account and add nothing.
--   * csmcp.seed_demo sets csmcp.portfolio_bulk = on for its transaction (the triggers then do
--     nothing) and rebuilds the totals at the end: 860K usage rows are cheaper to sum once.
--
-- Rewritten when code moved out of migrations: the functions, views and triggers this file
-- defined now live in db/functions/ (applied by `csmcpctl migrate` after the migrations).
-- A database that applied the original is accepted through db/migrations/REWRITTEN.

CREATE TABLE portfolio_counts (
    id              bigserial PRIMARY KEY,
    tier            text NOT NULL,
    lifecycle_stage text NOT NULL,
    accounts        bigint NOT NULL,
    health_sum      bigint NOT NULL,
    arr             numeric NOT NULL
);
CREATE TABLE portfolio_usage (
    id              bigserial PRIMARY KEY,
    day             date NOT NULL,
    tier            text NOT NULL,
    lifecycle_stage text NOT NULL,
    active_users    bigint NOT NULL
);
CREATE INDEX portfolio_usage_day_idx ON portfolio_usage (day);

-- Page of list_clients in index order (default sort, sort by health score, tier filter) instead
-- of sorting the whole filtered set.
CREATE INDEX IF NOT EXISTS accounts_tier_client_idx ON accounts (tier, client_id);
CREATE INDEX IF NOT EXISTS accounts_tier_health_idx ON accounts (tier, health_score, client_id);
CREATE INDEX IF NOT EXISTS accounts_health_client_idx ON accounts (health_score, client_id);

-- The totals of the data already there are computed when db/functions/portfolio/triggers.sql
-- installs the triggers (same transaction).

-- 0173_account_health_latest.sql - per account, its status and tier and the components of its
-- latest health score (issue 21, session 6): what optimize_customer_lifetime_value's segment and
-- portfolio calls read. They took the latest score of every account by DISTINCT ON over all of
-- health_scores (158,000 rows at 100,000 accounts) joined with accounts (a scan of the wide rows)
-- and joined the open opportunities with accounts for the status and tier. One row per account;
-- the components are NULL while the account has no health score. Kept in the writing transaction
-- by statement triggers on accounts and health_scores (db/functions/expansion/rollups.sql), which
-- fill it when it is still empty. No foreign keys: the triggers of an account's deletion remove
-- its row.
CREATE TABLE account_health_latest (
    client_id text PRIMARY KEY,
    status text NOT NULL,
    tier text NOT NULL,
    usage_score integer,
    engagement_score integer,
    support_score integer,
    satisfaction_score numeric(5,2),
    payment_score integer
);

-- 0174_revenue_balance.sql - per account, the sum, count and latest date of its revenue events
-- (issue 21, session 6). track_revenue_expansion (and the annual churn of
-- optimize_customer_lifetime_value) aggregated every event before the period's end per account
-- on every call (a hash aggregate over all of revenue_events) to find each account's ARR at the
-- period's start. With the balance, an account without events since the period's start reads
-- one row here, and only the events from the period's start on are aggregated (the period's
-- boundaries are handled at read time: start ARR = balance - events since the start). Kept in the
-- writing transaction by statement triggers on revenue_events (db/functions/expansion/rollups.sql),
-- which fill it when it is still empty. No foreign keys: the triggers of an account's deletion
-- (the cascade to its events) remove its row.
CREATE TABLE revenue_balance (
    client_id text PRIMARY KEY,
    balance numeric NOT NULL,     -- sum(arr_delta) of every event of the account
    n_events bigint NOT NULL,     -- > 0: an account without events has no row
    last_on date NOT NULL         -- max(occurred_on)
);
CREATE INDEX revenue_balance_last_idx ON revenue_balance (last_on) INCLUDE (balance);

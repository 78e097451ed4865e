-- 0291_adoption_tier_daily.sql - feature_adoption rows per (account tier, first-use day) (issue 21,
-- session 8, helper tierx): analyze_product_usage benchmarks one account against the mean adopted
-- features of its tier's other accounts up to the period's end, which read every peer's adoption
-- rows (~33,000 index probes, p99 170 ms at 100,000 accounts). With this table the peers' rows are
-- sum(n) over the tier's days <= end minus the account's own rows, and the peers are the tier's
-- accounts (portfolio_counts) minus one.
--
-- Invariants (db/functions/portfolio/usage_tier_adoption.sql): exact, not cached - the sum of n
-- over a (tier, day)'s rows is the number of feature_adoption rows whose account has that tier and
-- whose first_used_on is that day. Delta rows, as portfolio_counts (migration 0014): writers only
-- insert, so a tier change never waits for, or deadlocks on, a counter row held by a usage writer;
-- csmcp.portfolio_compact() merges them. Statement triggers on feature_adoption (insert, update,
-- delete; the account's tier read FOR SHARE, so a concurrent tier change waits for them or they for
-- it) and on accounts (a changed tier moves the account's rows; a row trigger before an account's
-- deletion subtracts its rows, because the cascade that deletes them runs when the account is no
-- longer visible) write the differences in the writing transaction. csmcp.adoption_tier_check()
-- lists differences from a from-scratch count (part of csmcp.portfolio_check()); bulk loads skip
-- the triggers and end with csmcp.portfolio_rebuild(), which recomputes the table.
CREATE TABLE adoption_tier_daily (
    id   bigserial PRIMARY KEY,
    tier text NOT NULL,
    day  date NOT NULL,
    n    bigint NOT NULL
);
-- the call's read: one tier's days up to the period's end, index only
CREATE INDEX adoption_tier_daily_tier_day ON adoption_tier_daily (tier, day) INCLUDE (n);

INSERT INTO adoption_tier_daily (tier, day, n)
SELECT a.tier, f.first_used_on, count(*)
FROM feature_adoption f JOIN accounts a USING (client_id)
GROUP BY 1, 2;
ANALYZE adoption_tier_daily;

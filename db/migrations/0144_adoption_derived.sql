-- 0144_adoption_derived.sql - the data-derived adoption milestones per account (issue 21) for
-- track_adoption_milestones' portfolio view: one row per account instead of reading every
-- usage_daily and feature_adoption row per call.
--
--   adoption_derived (client_id): m1 = first usage day with events > 0; m2 = the third
--   feature_adoption.first_used_on; m4 = the last first use of a core feature once every core
--   feature is used (null otherwise or without core features); m5 / m6 = the first use of a
--   feature in category 'integration' / 'advanced'. A row only while one of them is known.
--   m3 (first day with daily active users >= half the active contract's seats) depends on the
--   contract, so it is read per call from usage_moments' running maximum (index below: the
--   first entry whose running maximum reaches the threshold is that day); m7 / m8 (executive
--   reviews, advocates) and the account start are small group-bys per call.
--
-- Invariants (db/functions/portfolio/usage_milestones.sql): exact, not cached - statement
-- triggers on usage_daily, feature_adoption and features recompute the touched accounts (all
-- accounts when features change) in the writing transaction, under the usage writers' lock
-- (csmcp.usage_write_lock, taken before each writing statement); csmcp.adoption_derived_check()
-- compares it with a from-scratch computation (part of csmcp.portfolio_check()); bulk loads skip
-- the triggers and end with csmcp.portfolio_rebuild(), which recomputes it.
CREATE TABLE adoption_derived (
    client_id text PRIMARY KEY,
    m1 date, m2 date, m4 date, m5 date, m6 date
);

INSERT INTO adoption_derived (client_id, m1, m2, m4, m5, m6)
WITH u AS (SELECT client_id, min(day) AS m1 FROM usage_daily WHERE events > 0 GROUP BY 1),
fa AS (
    SELECT fa.client_id,
           min(fa.first_used_on) FILTER (WHERE fa.rn = 3) AS m2,
           CASE WHEN count(*) FILTER (WHERE fa.is_core) = (SELECT count(*) FROM features WHERE is_core)
                 AND (SELECT count(*) FROM features WHERE is_core) > 0
                THEN max(fa.first_used_on) FILTER (WHERE fa.is_core) END AS m4,
           min(fa.first_used_on) FILTER (WHERE fa.category = 'integration') AS m5,
           min(fa.first_used_on) FILTER (WHERE fa.category = 'advanced') AS m6
    FROM (SELECT fa.client_id, fa.first_used_on, f.is_core, f.category,
                 row_number() OVER (PARTITION BY fa.client_id ORDER BY fa.first_used_on) AS rn
          FROM feature_adoption fa JOIN features f USING (feature_id)) fa
    GROUP BY 1
)
SELECT coalesce(u.client_id, fa.client_id), u.m1, fa.m2, fa.m4, fa.m5, fa.m6
FROM u FULL JOIN fa ON fa.client_id = u.client_id
WHERE u.m1 IS NOT NULL OR fa.m2 IS NOT NULL OR fa.m4 IS NOT NULL OR fa.m5 IS NOT NULL OR fa.m6 IS NOT NULL;

-- m3: an account's first entry whose running maximum of daily active users reaches a threshold
CREATE INDEX usage_moments_max_idx ON usage_moments (client_id, cum_max, day);
ANALYZE adoption_derived;

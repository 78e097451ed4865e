-- 0148_adoption_account.sql - track_adoption_milestones' portfolio view from one row per account
-- and a histogram (issue 21): at 100,000 accounts joining accounts, contracts, adoption_derived,
-- manual confirmations, executive reviews and advocates per call, then sorting 8 x 97K values for
-- the medians, took 1.5-2.4 s.
--
--   adoption_account (client_id): every account's start (first contract's start, else its
--   creation day) and milestone days a1..a8 (the derived day or an earlier manual confirmation),
--   ahead = the milestones achieved within half their target - exactly what the from-scratch
--   portfolio view derives (csmcp.adoption_account_of). adoption_hist (m, days): how many
--   accounts achieved milestone m in `days` days from their start. The reader takes the churned
--   accounts' rows out (a few per cent; their rows by primary key); counts and medians of the
--   histogram, the overdue count (depends on today) from the rows.
--
-- Invariants (db/functions/portfolio/usage_milestones_account.sql): exact, not cached - statement
-- triggers on contracts, executive_reviews, advocates, adoption_milestones and accounts (insert,
-- delete, created_at) and the maintenance of adoption_derived (0144) recompute the touched
-- accounts in the writing transaction; every writer of these tables takes the usage writers'
-- lock (csmcp.usage_write_lock) before its statement, so the recomputations serialize in one
-- order. csmcp.adoption_account_check() compares both tables with a from-scratch computation (part
-- of csmcp.portfolio_check()); bulk loads skip the triggers and end with csmcp.portfolio_rebuild().
CREATE TABLE adoption_account (
    client_id text PRIMARY KEY,
    acc_start date,
    a1 date, a2 date, a3 date, a4 date, a5 date, a6 date, a7 date, a8 date,
    ahead integer NOT NULL
);
CREATE TABLE adoption_hist (
    m integer NOT NULL,
    days integer NOT NULL,
    n bigint NOT NULL,
    PRIMARY KEY (m, days)
);

INSERT INTO adoption_account
SELECT x.*, coalesce((x.a1 - x.acc_start <= 1)::int, 0) + coalesce((x.a2 - x.acc_start <= 7)::int, 0)
            + coalesce((x.a3 - x.acc_start <= 15)::int, 0) + coalesce((x.a4 - x.acc_start <= 30)::int, 0)
            + coalesce((x.a5 - x.acc_start <= 22)::int, 0) + coalesce((x.a6 - x.acc_start <= 45)::int, 0)
            + coalesce((x.a7 - x.acc_start <= 60)::int, 0) + coalesce((x.a8 - x.acc_start <= 90)::int, 0)
FROM (
    WITH am AS (
        SELECT client_id, min(achieved_on) FILTER (WHERE milestone = 'm1') AS x1, min(achieved_on) FILTER (WHERE milestone = 'm2') AS x2,
               min(achieved_on) FILTER (WHERE milestone = 'm3') AS x3, min(achieved_on) FILTER (WHERE milestone = 'm4') AS x4,
               min(achieved_on) FILTER (WHERE milestone = 'm5') AS x5, min(achieved_on) FILTER (WHERE milestone = 'm6') AS x6,
               min(achieved_on) FILTER (WHERE milestone = 'm7') AS x7, min(achieved_on) FILTER (WHERE milestone = 'm8') AS x8
        FROM adoption_milestones GROUP BY 1
    ),
    cs AS (SELECT client_id, min(start_date) AS s FROM contracts GROUP BY 1),
    r7 AS (SELECT client_id, min(completed_at)::date AS d FROM executive_reviews WHERE status = 'completed' GROUP BY 1),
    r8 AS (SELECT client_id, min(enrolled_at)::date AS d FROM advocates GROUP BY 1)
    SELECT a.client_id, coalesce(cs.s, (a.created_at AT TIME ZONE 'UTC')::date) AS acc_start,
           least(d.m1, am.x1) AS a1, least(d.m2, am.x2) AS a2,
           least(d.rec_days[width_bucket(coalesce(ceil(c.licensed_seats * 0.5), 5)::integer - 1, d.rec_vals) + 1], am.x3) AS a3,
           least(d.m4, am.x4) AS a4, least(d.m5, am.x5) AS a5, least(d.m6, am.x6) AS a6,
           least(r7.d, am.x7) AS a7, least(r8.d, am.x8) AS a8
    FROM accounts a
    LEFT JOIN contracts c ON c.client_id = a.client_id AND c.status = 'active'
    LEFT JOIN adoption_derived d ON d.client_id = a.client_id
    LEFT JOIN cs ON cs.client_id = a.client_id
    LEFT JOIN am ON am.client_id = a.client_id
    LEFT JOIN r7 ON r7.client_id = a.client_id
    LEFT JOIN r8 ON r8.client_id = a.client_id
) x;

INSERT INTO adoption_hist
SELECT x.m, x.d, count(*) FROM adoption_account a
CROSS JOIN LATERAL unnest(ARRAY[a.a1 - a.acc_start, a.a2 - a.acc_start, a.a3 - a.acc_start, a.a4 - a.acc_start,
                                a.a5 - a.acc_start, a.a6 - a.acc_start, a.a7 - a.acc_start, a.a8 - a.acc_start]) WITH ORDINALITY x(d, m)
WHERE x.d IS NOT NULL GROUP BY 1, 2;

-- the fast-track list: the 20 accounts furthest ahead without reading the others
CREATE INDEX adoption_account_ahead_idx ON adoption_account (ahead DESC, client_id) WHERE ahead >= 4;
ANALYZE adoption_account;
ANALYZE adoption_hist;

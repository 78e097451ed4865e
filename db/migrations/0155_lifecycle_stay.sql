-- 0155_lifecycle_stay.sql - completed stays in lifecycle stages per account (issue 21):
-- manage_lifecycle_stages reports the average completed stay in each stage (time between entering
-- it and the account's next transition) over every transition; computing it per call was a window
-- over all of lifecycle_transitions (~23,000 rows at 10,000 accounts), even when one client asked.
--
--   lifecycle_stay (client_id, stage): stays = the account's transitions into `stage` that have a
--   next transition (order: changed_at, transition_id), days = the sum of
--   extract(epoch FROM next.changed_at - changed_at) / 86400 over those (numeric: exact, so the
--   portfolio average sum(days) / sum(stays) equals avg() over the transitions to the last digit).
--
-- Invariants (db/functions/portfolio/lifecycle_stay.sql):
--   * Exact, not cached: maintained by statement-level triggers on lifecycle_transitions in the
--     writing transaction (every writer: tools, plain SQL, account erasure via ON DELETE CASCADE;
--     TRUNCATE empties it); csmcp.portfolio_check() compares it with a from-scratch computation.
--   * A write recomputes the rows of the accounts it touched, under one transaction-level
--     advisory lock shared by every writer of lifecycle_transitions, so a second writer recomputes
--     after the first has committed (READ COMMITTED: a new snapshot per statement).
--   * Bulk loads (csmcp.portfolio_bulk() on: csmcp.seed_demo) skip the triggers and end with
--     csmcp.portfolio_rebuild(), which recomputes this table too.
CREATE TABLE lifecycle_stay (
    client_id text NOT NULL,
    stage text NOT NULL,
    stays integer NOT NULL,
    days numeric NOT NULL,
    PRIMARY KEY (client_id, stage)
);

INSERT INTO lifecycle_stay (client_id, stage, stays, days)
SELECT client_id, to_stage, count(*), sum(extract(epoch FROM next_at - changed_at) / 86400)
FROM (SELECT client_id, to_stage, changed_at,
             lead(changed_at) OVER (PARTITION BY client_id ORDER BY changed_at, transition_id) AS next_at
      FROM lifecycle_transitions) l
WHERE next_at IS NOT NULL
GROUP BY 1, 2;
ANALYZE lifecycle_stay;

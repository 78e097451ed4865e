-- 0181_sup_agent_daily.sql - support tickets per agent, priority and UTC day (issue 21):
-- analyze_support_performance read every ticket with an event in the period for each call (the
-- agent analysis: every ticket of each agent, ~1.3 s at 100,000 accounts; overview and sla: the
-- period's tickets once, then once per priority).
--
--   sup_agent_daily (agent, priority, day): per ticket clock, the tickets whose clock falls on
--   that UTC day - created / escalated by created_at; first responses (count, met, breached,
--   sum of minutes) by first_response_at; resolutions (count, met, breached, sum of minutes,
--   rated) by resolved_at; ratings (rated_at set, rating set, sum, <= 2, per value) by rated_at.
--   agent '' = unassigned. The sums of minutes are the exact numeric sums of the per-ticket
--   extract(epoch ...) / 60 the tool averages, so sum / count = avg(). Counters are integers
--   (sum() of integers accumulates in int8, of bigints in numeric: several times slower over the
--   tens of thousands of rows of a period).
--
--   sup_prio_daily: the same per priority and day only (agent always '*'): the figures of the
--   whole team (every call: its recommendations; overview and sla) read a few rows per day
--   instead of one per agent.
--
-- Invariants (db/functions/support/sup_agent_daily.sql): exact, maintained by statement-level
-- triggers on support_tickets in the writing transaction (deltas of the old and new rows, upserted
-- in key order; TRUNCATE empties it); csmcp.sup_agent_daily_check() compares it with the
-- from-scratch aggregation; the function file fills it when it is empty and tickets exist (this
-- migration runs before 0200 adds rated_at on a new database, so it cannot).
CREATE TABLE sup_agent_daily (
    agent text NOT NULL,
    priority text NOT NULL,
    day date NOT NULL,
    created integer NOT NULL DEFAULT 0,
    escalated integer NOT NULL DEFAULT 0,
    f_n integer NOT NULL DEFAULT 0,
    f_met integer NOT NULL DEFAULT 0,
    f_br integer NOT NULL DEFAULT 0,
    f_sum numeric NOT NULL DEFAULT 0,
    resolved integer NOT NULL DEFAULT 0,
    r_met integer NOT NULL DEFAULT 0,
    r_br integer NOT NULL DEFAULT 0,
    r_sum numeric NOT NULL DEFAULT 0,
    r_rated integer NOT NULL DEFAULT 0,
    q_n integer NOT NULL DEFAULT 0,
    q_rated integer NOT NULL DEFAULT 0,
    q_sum integer NOT NULL DEFAULT 0,
    q_neg integer NOT NULL DEFAULT 0,
    q1 integer NOT NULL DEFAULT 0,
    q2 integer NOT NULL DEFAULT 0,
    q3 integer NOT NULL DEFAULT 0,
    q4 integer NOT NULL DEFAULT 0,
    q5 integer NOT NULL DEFAULT 0,
    PRIMARY KEY (day, agent, priority)
);

CREATE TABLE sup_prio_daily (LIKE sup_agent_daily INCLUDING DEFAULTS, PRIMARY KEY (day, agent, priority));

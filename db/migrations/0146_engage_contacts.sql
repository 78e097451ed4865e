-- 0146_engage_contacts.sql - communications and support tickets per UTC day, and per account the
-- last contact and the third-latest ticket (issue 21), for analyze_engagement_patterns' portfolio
-- view: at 100,000 accounts its communication and support parts were a scan of the period's
-- communications / tickets hash-joined to every account (1.6 s + 2.7 s of a 9.6 s call).
--
--   comm_daily (day, channel, direction): n = communications with
--   (occurred_at AT TIME ZONE 'UTC')::date = day. ticket_daily (day, priority, category): n =
--   tickets by created_at the same way. A period "occurred_at > now() - N days" is the rows of
--   the days after the cut's UTC day plus the raw rows of the cut's own day after the cut (index
--   below): exact at any moment, nothing depends on when a row was written.
--   comm_last (client_id): last_at = max(occurred_at) of the account's communications (a row only
--   while it has one): the accounts contacted in a period are those with last_at after the cut.
--   ticket_third (client_id): third_at = the third-latest created_at of the account's tickets (a
--   row only while it has 3): an account has >= 3 tickets in a period iff third_at is after the cut.
--
-- Invariants (db/functions/portfolio/engage_contacts.sql): exact, not cached - statement-level
-- triggers on communications and support_tickets in the writing transaction (tools, imports,
-- account erasure via ON DELETE CASCADE; TRUNCATE empties them): the per-day tables get each
-- statement's per-key differences with one upsert in key order; the per-account rows are locked
-- (upsert in key order) and then recomputed from the account's rows in a later statement, which
-- in READ COMMITTED sees every transaction that held the lock before. csmcp.engage_contacts_check()
-- compares all four with a from-scratch computation (part of csmcp.portfolio_check()); bulk loads
-- skip the triggers and end with csmcp.portfolio_rebuild(), which recomputes them.
CREATE TABLE comm_daily (
    day date NOT NULL,
    channel text NOT NULL,
    direction text NOT NULL,
    n bigint NOT NULL,
    PRIMARY KEY (day, channel, direction)
);
CREATE TABLE ticket_daily (
    day date NOT NULL,
    priority text NOT NULL,
    category text NOT NULL,
    n bigint NOT NULL,
    PRIMARY KEY (day, priority, category)
);
CREATE TABLE comm_last (
    client_id text PRIMARY KEY,
    last_at timestamptz
);
CREATE TABLE ticket_third (
    client_id text PRIMARY KEY,
    third_at timestamptz
);

INSERT INTO comm_daily SELECT (occurred_at AT TIME ZONE 'UTC')::date, channel, direction, count(*) FROM communications GROUP BY 1, 2, 3;
INSERT INTO ticket_daily SELECT (created_at AT TIME ZONE 'UTC')::date, priority, category, count(*) FROM support_tickets GROUP BY 1, 2, 3;
INSERT INTO comm_last SELECT client_id, max(occurred_at) FROM communications GROUP BY 1;
INSERT INTO ticket_third
SELECT client_id, created_at FROM (
    SELECT client_id, created_at, row_number() OVER (PARTITION BY client_id ORDER BY created_at DESC) AS rn FROM support_tickets) t
WHERE rn = 3;

-- the period counts: how many accounts were contacted / have 3 tickets since the cut
CREATE INDEX comm_last_at_idx ON comm_last (last_at);
CREATE INDEX ticket_third_at_idx ON ticket_third (third_at);
-- the cut's own UTC day, read raw (tickets have support_tickets_created_idx already)
CREATE INDEX communications_occurred_idx ON communications (occurred_at);
ANALYZE comm_daily;
ANALYZE ticket_daily;
ANALYZE comm_last;
ANALYZE ticket_third;

-- portfolio/engage_contacts.sql - communications and tickets per UTC day and per account the last
-- contact / third-latest ticket (tables comm_daily, ticket_daily, comm_last, ticket_third,
-- migration 0146: design and invariants there): maintenance by statement triggers, the full
-- rebuild (csmcp.portfolio_rebuild) and the check.

-- Per-account rows of the given accounts recomputed from their base rows. The first statement
-- locks the rows in key order (creating missing ones); the recomputation is a later statement,
-- so in READ COMMITTED it sees what every earlier lock holder committed (a max kept only from the
-- transition rows would miss a concurrent writer's row, and a delete needs the next-latest row).
CREATE OR REPLACE FUNCTION csmcp.comm_last_refresh(p_clients text[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO comm_last AS l (client_id) SELECT DISTINCT c FROM unnest(p_clients) c WHERE c IS NOT NULL ORDER BY 1
    ON CONFLICT (client_id) DO UPDATE SET last_at = l.last_at;
    UPDATE comm_last l SET last_at = (SELECT max(c.occurred_at) FROM communications c WHERE c.client_id = l.client_id)
    WHERE l.client_id = ANY (p_clients);
    DELETE FROM comm_last WHERE client_id = ANY (p_clients) AND last_at IS NULL;
END $$;

CREATE OR REPLACE FUNCTION csmcp.ticket_third_refresh(p_clients text[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO ticket_third AS l (client_id) SELECT DISTINCT c FROM unnest(p_clients) c WHERE c IS NOT NULL ORDER BY 1
    ON CONFLICT (client_id) DO UPDATE SET third_at = l.third_at;
    UPDATE ticket_third l SET third_at = (SELECT s.created_at FROM support_tickets s WHERE s.client_id = l.client_id
                                          ORDER BY s.created_at DESC OFFSET 2 LIMIT 1)
    WHERE l.client_id = ANY (p_clients);
    DELETE FROM ticket_third WHERE client_id = ANY (p_clients) AND third_at IS NULL;
END $$;

-- communications: INSERT adds per-day counts and raises last_at (greatest() under the row lock
-- of the upsert commutes with every other writer); UPDATE / DELETE apply the per-day
-- differences and recompute the accounts whose rows moved or went.
CREATE OR REPLACE FUNCTION csmcp.comm_daily_trg() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    cs text[];
BEGIN
    IF csmcp.portfolio_bulk() THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        INSERT INTO comm_daily AS d (day, channel, direction, n)
        SELECT (occurred_at AT TIME ZONE 'UTC')::date, channel, direction, count(*) FROM nt GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
        ON CONFLICT (day, channel, direction) DO UPDATE SET n = d.n + excluded.n;
        INSERT INTO comm_last AS l (client_id, last_at) SELECT client_id, max(occurred_at) FROM nt GROUP BY 1 ORDER BY 1
        ON CONFLICT (client_id) DO UPDATE SET last_at = greatest(l.last_at, excluded.last_at);
        RETURN NULL;
    END IF;
    -- UPDATE: only rows whose key columns changed (status updates leave both tables alone)
    INSERT INTO comm_daily AS d (day, channel, direction, n)
    SELECT day, channel, direction, sum(k) FROM (
        SELECT (o.occurred_at AT TIME ZONE 'UTC')::date AS day, o.channel, o.direction, -1 AS k
        FROM ot o JOIN nt n USING (communication_id)
        WHERE (o.occurred_at, o.channel, o.direction) IS DISTINCT FROM (n.occurred_at, n.channel, n.direction)
        UNION ALL
        SELECT (n.occurred_at AT TIME ZONE 'UTC')::date, n.channel, n.direction, 1
        FROM ot o JOIN nt n USING (communication_id)
        WHERE (o.occurred_at, o.channel, o.direction) IS DISTINCT FROM (n.occurred_at, n.channel, n.direction)) x
    GROUP BY 1, 2, 3 HAVING sum(k) <> 0 ORDER BY 1, 2, 3
    ON CONFLICT (day, channel, direction) DO UPDATE SET n = d.n + excluded.n;
    SELECT array_agg(c) INTO cs FROM (
        SELECT o.client_id AS c FROM ot o JOIN nt n USING (communication_id)
        WHERE (o.client_id, o.occurred_at) IS DISTINCT FROM (n.client_id, n.occurred_at)
        UNION SELECT n.client_id FROM ot o JOIN nt n USING (communication_id)
        WHERE (o.client_id, o.occurred_at) IS DISTINCT FROM (n.client_id, n.occurred_at)) x;
    IF cs IS NOT NULL THEN
        PERFORM csmcp.comm_last_refresh(cs);
    END IF;
    RETURN NULL;
END $$;

-- (DELETE has no NEW TABLE: its own function, so that nt is never referenced where it does not exist)
CREATE OR REPLACE FUNCTION csmcp.comm_daily_del_trg() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    cs text[];
BEGIN
    IF csmcp.portfolio_bulk() THEN
        RETURN NULL;
    END IF;
    INSERT INTO comm_daily AS d (day, channel, direction, n)
    SELECT (occurred_at AT TIME ZONE 'UTC')::date, channel, direction, -count(*) FROM ot GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    ON CONFLICT (day, channel, direction) DO UPDATE SET n = d.n + excluded.n;
    SELECT array_agg(DISTINCT client_id) INTO cs FROM ot;
    PERFORM csmcp.comm_last_refresh(cs);
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER comm_daily_ins AFTER INSERT ON communications REFERENCING NEW TABLE AS nt
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.comm_daily_trg();
CREATE OR REPLACE TRIGGER comm_daily_upd AFTER UPDATE ON communications REFERENCING OLD TABLE AS ot NEW TABLE AS nt
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.comm_daily_trg();
CREATE OR REPLACE TRIGGER comm_daily_del AFTER DELETE ON communications REFERENCING OLD TABLE AS ot
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.comm_daily_del_trg();

-- support_tickets: the same shape; the per-account third-latest ticket is always recomputed
-- (an insert can push the third-latest down, which the transition rows alone do not tell).
CREATE OR REPLACE FUNCTION csmcp.ticket_daily_trg() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    cs text[];
BEGIN
    IF csmcp.portfolio_bulk() THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        INSERT INTO ticket_daily AS d (day, priority, category, n)
        SELECT (created_at AT TIME ZONE 'UTC')::date, priority, category, count(*) FROM nt GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
        ON CONFLICT (day, priority, category) DO UPDATE SET n = d.n + excluded.n;
        SELECT array_agg(DISTINCT client_id) INTO cs FROM nt;
    ELSE
        -- UPDATE: only rows whose key columns changed (status, assignment: nothing to do)
        INSERT INTO ticket_daily AS d (day, priority, category, n)
        SELECT day, priority, category, sum(k) FROM (
            SELECT (o.created_at AT TIME ZONE 'UTC')::date AS day, o.priority, o.category, -1 AS k
            FROM ot o JOIN nt n USING (ticket_id)
            WHERE (o.created_at, o.priority, o.category) IS DISTINCT FROM (n.created_at, n.priority, n.category)
            UNION ALL
            SELECT (n.created_at AT TIME ZONE 'UTC')::date, n.priority, n.category, 1
            FROM ot o JOIN nt n USING (ticket_id)
            WHERE (o.created_at, o.priority, o.category) IS DISTINCT FROM (n.created_at, n.priority, n.category)) x
        GROUP BY 1, 2, 3 HAVING sum(k) <> 0 ORDER BY 1, 2, 3
        ON CONFLICT (day, priority, category) DO UPDATE SET n = d.n + excluded.n;
        SELECT array_agg(c) INTO cs FROM (
            SELECT o.client_id AS c FROM ot o JOIN nt n USING (ticket_id)
            WHERE (o.client_id, o.created_at) IS DISTINCT FROM (n.client_id, n.created_at)
            UNION SELECT n.client_id FROM ot o JOIN nt n USING (ticket_id)
            WHERE (o.client_id, o.created_at) IS DISTINCT FROM (n.client_id, n.created_at)) x;
    END IF;
    IF cs IS NOT NULL THEN
        PERFORM csmcp.ticket_third_refresh(cs);
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION csmcp.ticket_daily_del_trg() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    cs text[];
BEGIN
    IF csmcp.portfolio_bulk() THEN
        RETURN NULL;
    END IF;
    INSERT INTO ticket_daily AS d (day, priority, category, n)
    SELECT (created_at AT TIME ZONE 'UTC')::date, priority, category, -count(*) FROM ot GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    ON CONFLICT (day, priority, category) DO UPDATE SET n = d.n + excluded.n;
    SELECT array_agg(DISTINCT client_id) INTO cs FROM ot;
    PERFORM csmcp.ticket_third_refresh(cs);
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER ticket_daily_ins AFTER INSERT ON support_tickets REFERENCING NEW TABLE AS nt
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.ticket_daily_trg();
CREATE OR REPLACE TRIGGER ticket_daily_upd AFTER UPDATE ON support_tickets REFERENCING OLD TABLE AS ot NEW TABLE AS nt
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.ticket_daily_trg();
CREATE OR REPLACE TRIGGER ticket_daily_del AFTER DELETE ON support_tickets REFERENCING OLD TABLE AS ot
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.ticket_daily_del_trg();

CREATE OR REPLACE FUNCTION csmcp.engage_contacts_trunc_trg() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'communications' THEN
        DELETE FROM comm_daily;
        DELETE FROM comm_last;
    ELSE
        DELETE FROM ticket_daily;
        DELETE FROM ticket_third;
    END IF;
    RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER engage_contacts_trunc AFTER TRUNCATE ON communications
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.engage_contacts_trunc_trg();
CREATE OR REPLACE TRIGGER engage_contacts_trunc AFTER TRUNCATE ON support_tickets
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.engage_contacts_trunc_trg();

-- The from-scratch contents of the four tables (the rebuild and the check read the same).
CREATE OR REPLACE FUNCTION csmcp.engage_contacts_scratch()
RETURNS TABLE (what text, key text, val text)
LANGUAGE sql STABLE AS $$
    SELECT 'comm_daily', concat_ws('/', (occurred_at AT TIME ZONE 'UTC')::date, channel, direction), count(*)::text
    FROM communications GROUP BY (occurred_at AT TIME ZONE 'UTC')::date, channel, direction
    UNION ALL
    SELECT 'ticket_daily', concat_ws('/', (created_at AT TIME ZONE 'UTC')::date, priority, category), count(*)::text
    FROM support_tickets GROUP BY (created_at AT TIME ZONE 'UTC')::date, priority, category
    UNION ALL
    SELECT 'comm_last', client_id, max(occurred_at)::text FROM communications GROUP BY client_id
    UNION ALL
    SELECT 'ticket_third', client_id, created_at::text FROM (
        SELECT client_id, created_at, row_number() OVER (PARTITION BY client_id ORDER BY created_at DESC) AS rn FROM support_tickets) t
    WHERE rn = 3
$$;

-- Everything from scratch (bulk loads).
CREATE OR REPLACE FUNCTION csmcp.engage_contacts_rebuild() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    LOCK TABLE comm_daily, ticket_daily, comm_last, ticket_third IN EXCLUSIVE MODE;
    DELETE FROM comm_daily;
    DELETE FROM ticket_daily;
    DELETE FROM comm_last;
    DELETE FROM ticket_third;
    INSERT INTO comm_daily SELECT (occurred_at AT TIME ZONE 'UTC')::date, channel, direction, count(*) FROM communications GROUP BY 1, 2, 3;
    INSERT INTO ticket_daily SELECT (created_at AT TIME ZONE 'UTC')::date, priority, category, count(*) FROM support_tickets GROUP BY 1, 2, 3;
    INSERT INTO comm_last SELECT client_id, max(occurred_at) FROM communications GROUP BY 1;
    INSERT INTO ticket_third
    SELECT client_id, created_at FROM (
        SELECT client_id, created_at, row_number() OVER (PARTITION BY client_id ORDER BY created_at DESC) AS rn FROM support_tickets) t
    WHERE rn = 3;
END $$;

-- Entries that differ from the from-scratch computation (none when exact; zero counts of the
-- per-day tables count as absent).
CREATE OR REPLACE FUNCTION csmcp.engage_contacts_check()
RETURNS TABLE (what text, key text, maintained text, actual text)
LANGUAGE sql STABLE AS $$
    WITH m AS (
        SELECT 'comm_daily' AS what, concat_ws('/', day, channel, direction) AS key, n::text AS val FROM comm_daily WHERE n <> 0
        UNION ALL SELECT 'ticket_daily', concat_ws('/', day, priority, category), n::text FROM ticket_daily WHERE n <> 0
        UNION ALL SELECT 'comm_last', client_id, last_at::text FROM comm_last
        UNION ALL SELECT 'ticket_third', client_id, third_at::text FROM ticket_third)
    SELECT coalesce(m.what, a.what), coalesce(m.key, a.key), m.val, a.val
    FROM m FULL JOIN csmcp.engage_contacts_scratch() a ON a.what = m.what AND a.key = m.key
    WHERE m.val IS DISTINCT FROM a.val
$$;

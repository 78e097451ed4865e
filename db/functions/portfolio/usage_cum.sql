-- portfolio/usage_cum.sql - the running usage totals per account (table usage_cum, migration
-- 0140: design and invariants there): maintenance by triggers on usage_daily, the range sum the
-- analyses read, the full rebuild (called by csmcp.portfolio_rebuild) and the check.

-- The lock every writer of usage_daily and usage_feature_daily holds from its first usage write
-- to its commit (transaction-level advisory lock; re-entrant). Taken by a BEFORE STATEMENT
-- trigger, so before the statement changes (and row-locks) anything: a statement that held row
-- locks while waiting for this lock could deadlock with a multi-statement transaction that
-- holds it and then writes those rows.
CREATE OR REPLACE FUNCTION csmcp.usage_write_lock() RETURNS void
LANGUAGE sql AS $$ SELECT pg_advisory_xact_lock(hashtext('csmcp.usage_cum'), 0) $$;

CREATE OR REPLACE FUNCTION csmcp.usage_write_lock_trg() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT csmcp.portfolio_bulk() THEN
        PERFORM csmcp.usage_write_lock();
    END IF;
    RETURN NULL;
END $$;

-- Recomputes usage_cum of the given accounts from the given day on (changed: one row per
-- account with the earliest changed day), under one transaction-level advisory lock shared by every
-- writer of usage_daily. Per-account locks (even in key order) deadlocked: INSERT ... ON CONFLICT
-- DO UPDATE fires the INSERT and then the UPDATE statement trigger, so one statement locked its
-- inserted accounts, then its updated ones, and two such upserts could wait for each other. The
-- refresh is short (usually one row: ingestion writes today); writers of usage serialize from
-- their first usage write to their commit.
CREATE OR REPLACE FUNCTION csmcp.usage_cum_refresh(p_clients text[], p_days date[]) RETURNS void
LANGUAGE plpgsql
-- generic plans (index lookups of the given accounts, planned once per session): custom plans
-- re-planned these statements on every usage write, 2-4 ms each (issue 21, measured at 10,000
-- accounts; the GUC also covers what this calls: engage_window_refresh and _put)
SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
    PERFORM csmcp.usage_write_lock();
    -- new statements, new snapshot: a concurrent writer of these accounts has committed now.
    -- The changed accounts straight from the arrays (unnest is estimated at the arrays' length,
    -- or 10 in a generic plan: index ranges of these accounts, never a hash join over the whole
    -- table). A temp table per write cost ~10 ms of catalog work (create, analyze, drop) per
    -- usage write (issue 21, measured at 10,000 accounts).
    DELETE FROM usage_cum u USING (SELECT x.c AS client_id, min(x.d) AS d FROM unnest(p_clients, p_days) x(c, d) GROUP BY x.c) ch
    WHERE u.client_id = ch.client_id AND u.day >= ch.d;
    INSERT INTO usage_cum (client_id, day, cum_users, cum_events)
    SELECT u.client_id, u.day, b.cu + sum(u.active_users) OVER w, b.ce + sum(u.events) OVER w
    FROM (SELECT x.c AS client_id, min(x.d) AS d FROM unnest(p_clients, p_days) x(c, d) GROUP BY x.c) ch
    CROSS JOIN LATERAL (SELECT coalesce(max(p.cum_users), 0) AS cu, coalesce(max(p.cum_events), 0) AS ce
                        FROM (SELECT cum_users, cum_events FROM usage_cum p
                              WHERE p.client_id = ch.client_id AND p.day < ch.d ORDER BY p.day DESC LIMIT 1) p) b
    JOIN usage_daily u ON u.client_id = ch.client_id AND u.day >= ch.d
    WINDOW w AS (PARTITION BY u.client_id ORDER BY u.day ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW);
END $$;

CREATE OR REPLACE FUNCTION csmcp.usage_cum_trg() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    cs text[];
    ds date[];
BEGIN
    IF csmcp.portfolio_bulk() THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        SELECT array_agg(client_id), array_agg(d) INTO cs, ds FROM (SELECT client_id, min(day) AS d FROM nt GROUP BY 1) x;
    ELSIF TG_OP = 'UPDATE' THEN
        SELECT array_agg(client_id), array_agg(d) INTO cs, ds
        FROM (SELECT client_id, min(day) AS d FROM (SELECT client_id, day FROM nt UNION ALL SELECT client_id, day FROM ot) y
              GROUP BY 1) x;
    ELSE
        SELECT array_agg(client_id), array_agg(d) INTO cs, ds FROM (SELECT client_id, min(day) AS d FROM ot GROUP BY 1) x;
    END IF;
    IF cs IS NOT NULL THEN
        PERFORM csmcp.usage_cum_refresh(cs, ds);
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER usage_cum_lock BEFORE INSERT OR UPDATE OR DELETE ON usage_daily
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.usage_write_lock_trg();
CREATE OR REPLACE TRIGGER usage_cum_ins AFTER INSERT ON usage_daily REFERENCING NEW TABLE AS nt
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.usage_cum_trg();
CREATE OR REPLACE TRIGGER usage_cum_upd AFTER UPDATE ON usage_daily REFERENCING OLD TABLE AS ot NEW TABLE AS nt
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.usage_cum_trg();
CREATE OR REPLACE TRIGGER usage_cum_del AFTER DELETE ON usage_daily REFERENCING OLD TABLE AS ot
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.usage_cum_trg();

CREATE OR REPLACE FUNCTION csmcp.usage_cum_trunc_trg() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM usage_cum;
    RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER usage_cum_trunc AFTER TRUNCATE ON usage_daily
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.usage_cum_trunc_trg();

-- The running totals at day x of one account: of its last row on or before x (0, 0 without one).
CREATE OR REPLACE FUNCTION csmcp.usage_cum_at(p_client text, x date, OUT users bigint, OUT events bigint)
LANGUAGE sql STABLE AS $$
    SELECT coalesce(max(c.cum_users), 0), coalesce(max(c.cum_events), 0)
    FROM (SELECT cum_users, cum_events FROM usage_cum WHERE client_id = p_client AND day <= x ORDER BY day DESC LIMIT 1) c
$$;

-- Everything from scratch (bulk loads; TRUNCATE of usage_cum itself).
CREATE OR REPLACE FUNCTION csmcp.usage_cum_rebuild() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    LOCK TABLE usage_cum IN EXCLUSIVE MODE;
    DELETE FROM usage_cum;
    INSERT INTO usage_cum (client_id, day, cum_users, cum_events)
    SELECT client_id, day, sum(active_users) OVER w, sum(events) OVER w
    FROM usage_daily
    WINDOW w AS (PARTITION BY client_id ORDER BY day ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW);
END $$;

-- Rows of usage_cum that differ from a from-scratch window sum (none when exact).
CREATE OR REPLACE FUNCTION csmcp.usage_cum_check()
RETURNS TABLE (client_id text, day date, maintained_users bigint, actual_users bigint, maintained_events bigint, actual_events bigint)
LANGUAGE sql STABLE AS $$
    WITH a AS (SELECT u.client_id, u.day, sum(u.active_users) OVER w AS cu, sum(u.events) OVER w AS ce FROM usage_daily u
               WINDOW w AS (PARTITION BY u.client_id ORDER BY u.day ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW))
    SELECT coalesce(m.client_id, a.client_id), coalesce(m.day, a.day), m.cum_users, a.cu, m.cum_events, a.ce
    FROM usage_cum m FULL JOIN a ON a.client_id = m.client_id AND a.day = m.day
    WHERE m.cum_users IS DISTINCT FROM a.cu OR m.cum_events IS DISTINCT FROM a.ce
$$;

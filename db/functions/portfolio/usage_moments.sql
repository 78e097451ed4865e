-- portfolio/usage_moments.sql - the running usage moments per account (table usage_moments,
-- migration 0143: design and invariants there): maintenance by statement triggers on
-- usage_daily, the full rebuild (called by csmcp.portfolio_rebuild) and the check.

-- The window computation is written out three times below (refresh, rebuild, check); keep them
-- identical. dw = ISO weekday by integer arithmetic (2001-01-01 was a Monday): extract() returns
-- numeric and made the rebuild several times slower.

-- Recomputes the given accounts from the given day on (one row per account: its earliest
-- changed day), under the usage writers' lock (csmcp.usage_write_lock: writers serialize and
-- each sees the rows the previous ones committed).
CREATE OR REPLACE FUNCTION csmcp.usage_moments_refresh(p_clients text[], p_days date[]) RETURNS void
LANGUAGE plpgsql
-- generic plans (index lookups of the given accounts, planned once per session): custom plans
-- re-planned these statements on every usage write, 2-4 ms each (issue 21, measured at 10,000
-- accounts; the GUC also covers what this calls: engage_window_refresh and _put)
SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
    PERFORM csmcp.usage_write_lock();
    -- the changed accounts straight from the arrays, as in csmcp.usage_cum_refresh (index
    -- ranges of these accounts; no temp table's catalog work per write)
    DELETE FROM usage_moments m USING (SELECT x.c AS client_id, min(x.d) AS d FROM unnest(p_clients, p_days) x(c, d) GROUP BY x.c) ch
    WHERE m.client_id = ch.client_id AND m.day >= ch.d;
    INSERT INTO usage_moments
    SELECT u.client_id, u.day,
           b.r + count(*) OVER w, b.cu + sum(u.active_users) OVER w, b.sq + sum(u.active_users::int8 * u.active_users) OVER w,
           greatest(b.mx, max(u.active_users) OVER w), least(b.mn, min(u.active_users) OVER w),
           b.e1 + sum(CASE WHEN u.dw = 1 THEN u.events ELSE 0 END) OVER w,
           b.e2 + sum(CASE WHEN u.dw = 2 THEN u.events ELSE 0 END) OVER w,
           b.e3 + sum(CASE WHEN u.dw = 3 THEN u.events ELSE 0 END) OVER w,
           b.e4 + sum(CASE WHEN u.dw = 4 THEN u.events ELSE 0 END) OVER w,
           b.e5 + sum(CASE WHEN u.dw = 5 THEN u.events ELSE 0 END) OVER w,
           b.e6 + sum(CASE WHEN u.dw = 6 THEN u.events ELSE 0 END) OVER w,
           b.e7 + sum(CASE WHEN u.dw = 7 THEN u.events ELSE 0 END) OVER w
    FROM (SELECT x.c AS client_id, min(x.d) AS d FROM unnest(p_clients, p_days) x(c, d) GROUP BY x.c) ch
    CROSS JOIN LATERAL (
        SELECT coalesce(max(p.cum_rows), 0) AS r, coalesce(max(p.cum_users), 0) AS cu, coalesce(max(p.cum_sq), 0) AS sq,
               max(p.cum_max) AS mx, min(p.cum_min) AS mn,
               coalesce(max(p.cum_ev1), 0) AS e1, coalesce(max(p.cum_ev2), 0) AS e2, coalesce(max(p.cum_ev3), 0) AS e3,
               coalesce(max(p.cum_ev4), 0) AS e4, coalesce(max(p.cum_ev5), 0) AS e5, coalesce(max(p.cum_ev6), 0) AS e6,
               coalesce(max(p.cum_ev7), 0) AS e7
        FROM (SELECT * FROM usage_moments p WHERE p.client_id = ch.client_id AND p.day < ch.d ORDER BY p.day DESC LIMIT 1) p) b
    JOIN (SELECT client_id, day, active_users, events, ((day - date '2001-01-01') % 7 + 7) % 7 + 1 AS dw FROM usage_daily) u
         ON u.client_id = ch.client_id AND u.day >= ch.d
    WINDOW w AS (PARTITION BY u.client_id ORDER BY u.day ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW);
    -- analyze_engagement_patterns' day tables read these moments (engage_window.sql, 0147)
    PERFORM csmcp.engage_window_refresh(ARRAY(SELECT DISTINCT c FROM unnest(p_clients) c));
END $$;

CREATE OR REPLACE FUNCTION csmcp.usage_moments_trg() RETURNS trigger
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
        PERFORM csmcp.usage_moments_refresh(cs, ds);
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER usage_moments_ins AFTER INSERT ON usage_daily REFERENCING NEW TABLE AS nt
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.usage_moments_trg();
CREATE OR REPLACE TRIGGER usage_moments_upd AFTER UPDATE ON usage_daily REFERENCING OLD TABLE AS ot NEW TABLE AS nt
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.usage_moments_trg();
CREATE OR REPLACE TRIGGER usage_moments_del AFTER DELETE ON usage_daily REFERENCING OLD TABLE AS ot
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.usage_moments_trg();

CREATE OR REPLACE FUNCTION csmcp.usage_moments_trunc_trg() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM usage_moments;
    PERFORM csmcp.engage_window_clear();
    RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER usage_moments_trunc AFTER TRUNCATE ON usage_daily
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.usage_moments_trunc_trg();

-- Everything from scratch (bulk loads).
CREATE OR REPLACE FUNCTION csmcp.usage_moments_rebuild() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    LOCK TABLE usage_moments IN EXCLUSIVE MODE;
    DELETE FROM usage_moments;
    PERFORM csmcp.engage_window_clear();   -- filled again from the new moments by the next call
    INSERT INTO usage_moments
    SELECT client_id, day, count(*) OVER w, sum(active_users) OVER w, sum(active_users::int8 * active_users) OVER w,
           max(active_users) OVER w, min(active_users) OVER w,
           sum(CASE WHEN dw = 1 THEN events ELSE 0 END) OVER w,
           sum(CASE WHEN dw = 2 THEN events ELSE 0 END) OVER w,
           sum(CASE WHEN dw = 3 THEN events ELSE 0 END) OVER w,
           sum(CASE WHEN dw = 4 THEN events ELSE 0 END) OVER w,
           sum(CASE WHEN dw = 5 THEN events ELSE 0 END) OVER w,
           sum(CASE WHEN dw = 6 THEN events ELSE 0 END) OVER w,
           sum(CASE WHEN dw = 7 THEN events ELSE 0 END) OVER w
    FROM (SELECT client_id, day, active_users, events, ((day - date '2001-01-01') % 7 + 7) % 7 + 1 AS dw FROM usage_daily) u
    WINDOW w AS (PARTITION BY client_id ORDER BY day ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW);
END $$;

-- Rows that differ from a from-scratch window computation (none when exact).
CREATE OR REPLACE FUNCTION csmcp.usage_moments_check()
RETURNS TABLE (client_id text, day date, maintained text, actual text)
LANGUAGE sql STABLE AS $$
    WITH a AS (
        SELECT u.client_id, u.day, count(*) OVER w AS r, sum(u.active_users) OVER w AS cu,
               sum(u.active_users::int8 * u.active_users) OVER w AS sq, max(u.active_users) OVER w AS mx,
               min(u.active_users) OVER w AS mn,
               sum(CASE WHEN u.dw = 1 THEN u.events ELSE 0 END) OVER w AS e1,
               sum(CASE WHEN u.dw = 2 THEN u.events ELSE 0 END) OVER w AS e2,
               sum(CASE WHEN u.dw = 3 THEN u.events ELSE 0 END) OVER w AS e3,
               sum(CASE WHEN u.dw = 4 THEN u.events ELSE 0 END) OVER w AS e4,
               sum(CASE WHEN u.dw = 5 THEN u.events ELSE 0 END) OVER w AS e5,
               sum(CASE WHEN u.dw = 6 THEN u.events ELSE 0 END) OVER w AS e6,
               sum(CASE WHEN u.dw = 7 THEN u.events ELSE 0 END) OVER w AS e7
        FROM (SELECT client_id, day, active_users, events, ((day - date '2001-01-01') % 7 + 7) % 7 + 1 AS dw FROM usage_daily) u
        WINDOW w AS (PARTITION BY u.client_id ORDER BY u.day ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW))
    SELECT coalesce(m.client_id, a.client_id), coalesce(m.day, a.day),
           concat_ws(',', m.cum_rows, m.cum_users, m.cum_sq, m.cum_max, m.cum_min, m.cum_ev1, m.cum_ev2, m.cum_ev3,
                     m.cum_ev4, m.cum_ev5, m.cum_ev6, m.cum_ev7),
           concat_ws(',', a.r, a.cu, a.sq, a.mx, a.mn, a.e1, a.e2, a.e3, a.e4, a.e5, a.e6, a.e7)
    FROM usage_moments m FULL JOIN a ON a.client_id = m.client_id AND a.day = m.day
    WHERE (m.cum_rows, m.cum_users, m.cum_sq, m.cum_max, m.cum_min, m.cum_ev1, m.cum_ev2, m.cum_ev3, m.cum_ev4, m.cum_ev5,
           m.cum_ev6, m.cum_ev7)
          IS DISTINCT FROM (a.r, a.cu, a.sq, a.mx, a.mn, a.e1, a.e2, a.e3, a.e4, a.e5, a.e6, a.e7)
$$;

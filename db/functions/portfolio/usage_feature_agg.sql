-- portfolio/usage_feature_agg.sql - the per-feature usage rollups (tables usage_feature_agg and
-- usage_feature_pair, migration 0142: design and invariants there): maintenance by statement
-- triggers on usage_feature_daily, the full rebuild (called by csmcp.portfolio_rebuild) and
-- the check against a from-scratch computation.

-- Applies one statement's changes: d = the changed rows (sign +1 new, -1 old). Runs under the
-- advisory lock that every usage writer takes (csmcp.usage_cum_refresh's), so the deltas of
-- concurrent writers are applied one after the other and each statement here sees the rows
-- every earlier writer committed (READ COMMITTED: a new snapshot per statement).
CREATE OR REPLACE FUNCTION csmcp.usage_feature_agg_trg() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF csmcp.portfolio_bulk() THEN
        RETURN NULL;
    END IF;
    PERFORM csmcp.usage_write_lock();
    CREATE TEMP TABLE IF NOT EXISTS usage_feature_chg (client_id text, feature_id text, day date, k integer,
                                                       users bigint, events bigint) ON COMMIT DROP;
    TRUNCATE usage_feature_chg;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO usage_feature_chg SELECT client_id, feature_id, day, 1, users, events FROM nt;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO usage_feature_chg SELECT client_id, feature_id, day, -1, -users, -events FROM ot;
    END IF;

    -- the latest day of every touched pair, before and after
    CREATE TEMP TABLE IF NOT EXISTS usage_feature_pchg (client_id text, feature_id text, old_day date, new_day date) ON COMMIT DROP;
    TRUNCATE usage_feature_pchg;
    INSERT INTO usage_feature_pchg
    SELECT p.client_id, p.feature_id, fp.last_day,
           (SELECT u.day FROM usage_feature_daily u WHERE u.client_id = p.client_id AND u.feature_id = p.feature_id
            ORDER BY u.day DESC LIMIT 1)
    FROM (SELECT DISTINCT client_id, feature_id FROM usage_feature_chg) p
    LEFT JOIN usage_feature_pair fp ON fp.client_id = p.client_id AND fp.feature_id = p.feature_id;
    DELETE FROM usage_feature_pchg WHERE old_day IS NOT DISTINCT FROM new_day;

    INSERT INTO usage_feature_agg AS a (feature_id, day, rows, users, events, last_pairs)
    SELECT feature_id, day, sum(r), sum(us), sum(ev), sum(lp) FROM (
        SELECT feature_id, day, k AS r, users AS us, events AS ev, 0 AS lp FROM usage_feature_chg
        UNION ALL
        SELECT feature_id, old_day, 0, 0, 0, -1 FROM usage_feature_pchg WHERE old_day IS NOT NULL
        UNION ALL
        SELECT feature_id, new_day, 0, 0, 0, 1 FROM usage_feature_pchg WHERE new_day IS NOT NULL) x
    GROUP BY 1, 2
    ON CONFLICT (feature_id, day) DO UPDATE SET rows = a.rows + EXCLUDED.rows, users = a.users + EXCLUDED.users,
                                                events = a.events + EXCLUDED.events, last_pairs = a.last_pairs + EXCLUDED.last_pairs;
    DELETE FROM usage_feature_agg a
    WHERE a.rows = 0 AND (a.feature_id, a.day) IN (SELECT feature_id, day FROM usage_feature_chg);

    DELETE FROM usage_feature_pair fp USING usage_feature_pchg p
    WHERE fp.client_id = p.client_id AND fp.feature_id = p.feature_id AND p.new_day IS NULL;
    INSERT INTO usage_feature_pair (client_id, feature_id, last_day)
    SELECT client_id, feature_id, new_day FROM usage_feature_pchg WHERE new_day IS NOT NULL
    ON CONFLICT (client_id, feature_id) DO UPDATE SET last_day = EXCLUDED.last_day;
    RETURN NULL;
END $$;

-- Every writing statement takes the usage writers' lock before it changes a row (not only in the
-- AFTER trigger): otherwise a statement could hold row locks while waiting for the lock that a
-- multi-statement transaction holds, which then waits for those rows (deadlock).
CREATE OR REPLACE TRIGGER usage_feature_agg_lock BEFORE INSERT OR UPDATE OR DELETE ON usage_feature_daily
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.usage_write_lock_trg();
CREATE OR REPLACE TRIGGER usage_feature_agg_ins AFTER INSERT ON usage_feature_daily REFERENCING NEW TABLE AS nt
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.usage_feature_agg_trg();
CREATE OR REPLACE TRIGGER usage_feature_agg_upd AFTER UPDATE ON usage_feature_daily REFERENCING OLD TABLE AS ot NEW TABLE AS nt
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.usage_feature_agg_trg();
CREATE OR REPLACE TRIGGER usage_feature_agg_del AFTER DELETE ON usage_feature_daily REFERENCING OLD TABLE AS ot
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.usage_feature_agg_trg();

CREATE OR REPLACE FUNCTION csmcp.usage_feature_agg_trunc_trg() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM usage_feature_agg;
    DELETE FROM usage_feature_pair;
    RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER usage_feature_agg_trunc AFTER TRUNCATE ON usage_feature_daily
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.usage_feature_agg_trunc_trg();

-- Everything from scratch (bulk loads).
CREATE OR REPLACE FUNCTION csmcp.usage_feature_agg_rebuild() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    LOCK TABLE usage_feature_agg, usage_feature_pair IN EXCLUSIVE MODE;
    DELETE FROM usage_feature_agg;
    DELETE FROM usage_feature_pair;
    INSERT INTO usage_feature_pair (client_id, feature_id, last_day)
    SELECT client_id, feature_id, max(day) FROM usage_feature_daily GROUP BY 1, 2;
    INSERT INTO usage_feature_agg (feature_id, day, rows, users, events, last_pairs)
    SELECT u.feature_id, u.day, u.n, u.us, u.ev, coalesce(p.n, 0)
    FROM (SELECT feature_id, day, count(*) AS n, sum(users) AS us, sum(events) AS ev FROM usage_feature_daily GROUP BY 1, 2) u
    LEFT JOIN (SELECT feature_id, last_day, count(*) AS n FROM usage_feature_pair GROUP BY 1, 2) p
           ON p.feature_id = u.feature_id AND p.last_day = u.day;
END $$;

-- Rows of both tables that differ from a from-scratch computation (none when exact).
CREATE OR REPLACE FUNCTION csmcp.usage_feature_agg_check()
RETURNS TABLE (what text, key text, maintained text, actual text)
LANGUAGE sql STABLE AS $$
    WITH p AS (SELECT client_id, feature_id, max(day) AS last_day FROM usage_feature_daily GROUP BY 1, 2),
    a AS (SELECT u.feature_id, u.day, u.n, u.us, u.ev, coalesce(lp.n, 0) AS lp
          FROM (SELECT feature_id, day, count(*) AS n, sum(users) AS us, sum(events) AS ev FROM usage_feature_daily GROUP BY 1, 2) u
          LEFT JOIN (SELECT feature_id, last_day, count(*) AS n FROM p GROUP BY 1, 2) lp
                 ON lp.feature_id = u.feature_id AND lp.last_day = u.day)
    SELECT 'usage_feature_pair', coalesce(m.client_id, p.client_id) || '/' || coalesce(m.feature_id, p.feature_id),
           m.last_day::text, p.last_day::text
    FROM usage_feature_pair m FULL JOIN p ON p.client_id = m.client_id AND p.feature_id = m.feature_id
    WHERE m.last_day IS DISTINCT FROM p.last_day
    UNION ALL
    SELECT 'usage_feature_agg', coalesce(m.feature_id, a.feature_id) || '/' || coalesce(m.day, a.day),
           concat_ws(',', m.rows, m.users, m.events, m.last_pairs), concat_ws(',', a.n, a.us, a.ev, a.lp)
    FROM usage_feature_agg m FULL JOIN a ON a.feature_id = m.feature_id AND a.day = m.day
    WHERE (m.rows, m.users, m.events, m.last_pairs) IS DISTINCT FROM (a.n, a.us, a.ev, a.lp)
$$;

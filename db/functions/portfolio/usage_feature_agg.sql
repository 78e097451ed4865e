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
DECLARE
    -- the changed rows (k = +1 new, -1 old; users and events signed alike) and, per touched
    -- pair, its latest day before and after: arrays, not temp tables (a temp table created,
    -- truncated and dropped per statement cost ~10 ms of catalog work per usage write; issue 21)
    c_cl text[]; c_f text[]; c_d date[]; c_k integer[]; c_u bigint[]; c_e bigint[];
    p_cl text[]; p_f text[]; p_old date[]; p_new date[];
BEGIN
    IF csmcp.portfolio_bulk() THEN
        RETURN NULL;
    END IF;
    PERFORM csmcp.usage_write_lock();
    IF TG_OP = 'INSERT' THEN
        SELECT array_agg(client_id), array_agg(feature_id), array_agg(day), array_agg(1), array_agg(users), array_agg(events)
        INTO c_cl, c_f, c_d, c_k, c_u, c_e FROM nt;
    ELSIF TG_OP = 'UPDATE' THEN
        SELECT array_agg(client_id), array_agg(feature_id), array_agg(day), array_agg(k), array_agg(users), array_agg(events)
        INTO c_cl, c_f, c_d, c_k, c_u, c_e
        FROM (SELECT client_id, feature_id, day, 1 AS k, users::bigint AS users, events::bigint AS events FROM nt
              UNION ALL
              SELECT client_id, feature_id, day, -1, -users, -events FROM ot) x;
    ELSE
        SELECT array_agg(client_id), array_agg(feature_id), array_agg(day), array_agg(-1), array_agg(-users), array_agg(-events)
        INTO c_cl, c_f, c_d, c_k, c_u, c_e FROM ot;
    END IF;

    -- the latest day of every touched pair, before and after (only the pairs where it moved)
    SELECT array_agg(p.client_id), array_agg(p.feature_id), array_agg(p.old_day), array_agg(p.new_day)
    INTO p_cl, p_f, p_old, p_new
    FROM (SELECT q.client_id, q.feature_id, fp.last_day AS old_day,
                 (SELECT u.day FROM usage_feature_daily u WHERE u.client_id = q.client_id AND u.feature_id = q.feature_id
                  ORDER BY u.day DESC LIMIT 1) AS new_day
          FROM (SELECT DISTINCT x.client_id, x.feature_id FROM unnest(c_cl, c_f) x(client_id, feature_id)) q
          LEFT JOIN usage_feature_pair fp ON fp.client_id = q.client_id AND fp.feature_id = q.feature_id) p
    WHERE p.old_day IS DISTINCT FROM p.new_day;

    INSERT INTO usage_feature_agg AS a (feature_id, day, rows, users, events, last_pairs)
    SELECT feature_id, day, sum(r), sum(us), sum(ev), sum(lp) FROM (
        SELECT x.feature_id, x.day, x.k AS r, x.users AS us, x.events AS ev, 0 AS lp
        FROM unnest(c_f, c_d, c_k, c_u, c_e) x(feature_id, day, k, users, events)
        UNION ALL
        SELECT y.feature_id, y.old_day, 0, 0, 0, -1 FROM unnest(p_f, p_old) y(feature_id, old_day) WHERE y.old_day IS NOT NULL
        UNION ALL
        SELECT z.feature_id, z.new_day, 0, 0, 0, 1 FROM unnest(p_f, p_new) z(feature_id, new_day) WHERE z.new_day IS NOT NULL) x
    GROUP BY 1, 2
    ON CONFLICT (feature_id, day) DO UPDATE SET rows = a.rows + EXCLUDED.rows, users = a.users + EXCLUDED.users,
                                                events = a.events + EXCLUDED.events, last_pairs = a.last_pairs + EXCLUDED.last_pairs;
    DELETE FROM usage_feature_agg a
    WHERE a.rows = 0 AND (a.feature_id, a.day) IN (SELECT x.feature_id, x.day FROM unnest(c_f, c_d) x(feature_id, day));

    DELETE FROM usage_feature_pair fp USING unnest(p_cl, p_f, p_new) p(client_id, feature_id, new_day)
    WHERE fp.client_id = p.client_id AND fp.feature_id = p.feature_id AND p.new_day IS NULL;
    INSERT INTO usage_feature_pair (client_id, feature_id, last_day)
    SELECT p.client_id, p.feature_id, p.new_day FROM unnest(p_cl, p_f, p_new) p(client_id, feature_id, new_day)
    WHERE p.new_day IS NOT NULL
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

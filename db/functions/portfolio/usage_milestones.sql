-- portfolio/usage_milestones.sql - the data-derived adoption milestones per account (table
-- adoption_derived, migration 0144: design and invariants there): the per-account computation,
-- maintenance by statement triggers on usage_daily, feature_adoption and features, the full
-- rebuild (called by csmcp.portfolio_rebuild) and the check.

-- m1, m2, m4, m5, m6 of the given accounts (null = every account) from the base tables, exactly
-- as csmcp.adoption_milestones_all / adoption_milestones_of derive them.
DROP FUNCTION IF EXISTS csmcp.adoption_derived_of(text[]);   -- before 0145: without the record columns
CREATE OR REPLACE FUNCTION csmcp.adoption_derived_of(p_clients text[])
RETURNS TABLE (client_id text, m1 date, m2 date, m4 date, m5 date, m6 date, rec_days date[], rec_vals integer[])
LANGUAGE sql STABLE AS $$
    WITH core AS (SELECT count(*) AS n FROM features WHERE is_core),
    u AS (SELECT u.client_id, min(u.day) AS m1 FROM usage_daily u
          WHERE u.events > 0 AND (p_clients IS NULL OR u.client_id = ANY (p_clients)) GROUP BY 1),
    fa AS (
        SELECT x.client_id,
               min(x.first_used_on) FILTER (WHERE x.rn = 3) AS m2,
               CASE WHEN count(*) FILTER (WHERE x.is_core) = (SELECT n FROM core) AND (SELECT n FROM core) > 0
                    THEN max(x.first_used_on) FILTER (WHERE x.is_core) END AS m4,
               min(x.first_used_on) FILTER (WHERE x.category = 'integration') AS m5,
               min(x.first_used_on) FILTER (WHERE x.category = 'advanced') AS m6
        FROM (SELECT fa.client_id, fa.first_used_on, f.is_core, f.category,
                     row_number() OVER (PARTITION BY fa.client_id ORDER BY fa.first_used_on) AS rn
              FROM feature_adoption fa JOIN features f USING (feature_id)
              WHERE p_clients IS NULL OR fa.client_id = ANY (p_clients)) x
        GROUP BY 1
    ),
    -- the record days of daily active users (each above every earlier day's), in day order
    rec AS (
        SELECT r.client_id, array_agg(r.day ORDER BY r.day) AS days, array_agg(r.active_users ORDER BY r.day) AS vals
        FROM (SELECT u.client_id, u.day, u.active_users,
                     max(u.active_users) OVER (PARTITION BY u.client_id ORDER BY u.day ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS pm
              FROM usage_daily u WHERE p_clients IS NULL OR u.client_id = ANY (p_clients)) r
        WHERE r.pm IS NULL OR r.active_users > r.pm
        GROUP BY 1
    )
    SELECT coalesce(u.client_id, fa.client_id, rec.client_id), u.m1, fa.m2, fa.m4, fa.m5, fa.m6, rec.days, rec.vals
    FROM u FULL JOIN fa ON fa.client_id = u.client_id
    FULL JOIN rec ON rec.client_id = coalesce(u.client_id, fa.client_id)
    WHERE u.m1 IS NOT NULL OR fa.m2 IS NOT NULL OR fa.m4 IS NOT NULL OR fa.m5 IS NOT NULL OR fa.m6 IS NOT NULL
       OR rec.days IS NOT NULL
$$;

-- Recomputes the given accounts (null = all) under the usage writers' lock.
CREATE OR REPLACE FUNCTION csmcp.adoption_derived_refresh(p_clients text[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM csmcp.usage_write_lock();
    IF p_clients IS NULL THEN
        DELETE FROM adoption_derived;
    ELSE
        DELETE FROM adoption_derived WHERE client_id = ANY (p_clients);
    END IF;
    INSERT INTO adoption_derived (client_id, m1, m2, m4, m5, m6, rec_days, rec_vals)
    SELECT * FROM csmcp.adoption_derived_of(p_clients);
    -- track_adoption_milestones' per-account rows read these (usage_milestones_account.sql, 0148)
    IF p_clients IS NULL THEN
        PERFORM csmcp.adoption_account_rebuild();
    ELSE
        PERFORM csmcp.adoption_account_refresh(p_clients);
    END IF;
END $$;

CREATE OR REPLACE FUNCTION csmcp.adoption_derived_trg() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    cs text[];
BEGIN
    IF csmcp.portfolio_bulk() THEN
        RETURN NULL;
    END IF;
    IF TG_TABLE_NAME = 'features' THEN
        -- which features are core / integration / advanced changes every account's m4..m6; a
        -- statement that changed none of that (ingest_usage_events' INSERT ... ON CONFLICT DO
        -- NOTHING of known features, on every call) changes nothing: it recomputed every account
        -- per ingest call (~5 s at 10,000 accounts) until issue 21's helper engage2 measured it
        IF TG_OP = 'INSERT' THEN
            PERFORM 1 FROM nt WHERE nt.is_core OR nt.category IN ('integration', 'advanced') LIMIT 1;
        ELSIF TG_OP = 'DELETE' THEN
            PERFORM 1 FROM ot WHERE ot.is_core OR ot.category IN ('integration', 'advanced') LIMIT 1;
        ELSE
            PERFORM 1 FROM ot JOIN nt USING (feature_id)
            WHERE (ot.is_core, ot.category) IS DISTINCT FROM (nt.is_core, nt.category) LIMIT 1;
            IF NOT FOUND THEN   -- a renamed key: old and new rows do not pair up
                PERFORM 1 FROM ot WHERE NOT EXISTS (SELECT 1 FROM nt WHERE nt.feature_id = ot.feature_id) LIMIT 1;
            END IF;
        END IF;
        IF FOUND THEN
            PERFORM csmcp.adoption_derived_refresh(NULL);
        END IF;
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        SELECT array_agg(DISTINCT client_id) INTO cs FROM nt;
    ELSIF TG_OP = 'UPDATE' THEN
        SELECT array_agg(DISTINCT client_id) INTO cs FROM (SELECT client_id FROM nt UNION ALL SELECT client_id FROM ot) x;
    ELSE
        SELECT array_agg(DISTINCT client_id) INTO cs FROM ot;
    END IF;
    IF cs IS NOT NULL THEN
        PERFORM csmcp.adoption_derived_refresh(cs);
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER adoption_derived_ins AFTER INSERT ON usage_daily REFERENCING NEW TABLE AS nt
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.adoption_derived_trg();
CREATE OR REPLACE TRIGGER adoption_derived_upd AFTER UPDATE ON usage_daily REFERENCING OLD TABLE AS ot NEW TABLE AS nt
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.adoption_derived_trg();
CREATE OR REPLACE TRIGGER adoption_derived_del AFTER DELETE ON usage_daily REFERENCING OLD TABLE AS ot
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.adoption_derived_trg();

-- feature_adoption and features: the writers' lock before the statement changes anything (as on
-- the usage tables), the recomputation after it
CREATE OR REPLACE TRIGGER adoption_derived_lock BEFORE INSERT OR UPDATE OR DELETE ON feature_adoption
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.usage_write_lock_trg();
CREATE OR REPLACE TRIGGER adoption_derived_ins AFTER INSERT ON feature_adoption REFERENCING NEW TABLE AS nt
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.adoption_derived_trg();
CREATE OR REPLACE TRIGGER adoption_derived_upd AFTER UPDATE ON feature_adoption REFERENCING OLD TABLE AS ot NEW TABLE AS nt
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.adoption_derived_trg();
CREATE OR REPLACE TRIGGER adoption_derived_del AFTER DELETE ON feature_adoption REFERENCING OLD TABLE AS ot
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.adoption_derived_trg();
CREATE OR REPLACE TRIGGER adoption_derived_lock BEFORE INSERT OR UPDATE OR DELETE ON features
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.usage_write_lock_trg();
DROP TRIGGER IF EXISTS adoption_derived_chg ON features;   -- one trigger for all three events: no transition tables
CREATE OR REPLACE TRIGGER adoption_derived_feat_ins AFTER INSERT ON features REFERENCING NEW TABLE AS nt
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.adoption_derived_trg();
CREATE OR REPLACE TRIGGER adoption_derived_feat_upd AFTER UPDATE ON features REFERENCING OLD TABLE AS ot NEW TABLE AS nt
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.adoption_derived_trg();
CREATE OR REPLACE TRIGGER adoption_derived_feat_del AFTER DELETE ON features REFERENCING OLD TABLE AS ot
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.adoption_derived_trg();

CREATE OR REPLACE FUNCTION csmcp.adoption_derived_trunc_trg() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM csmcp.adoption_derived_refresh(NULL);
    RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER adoption_derived_trunc AFTER TRUNCATE ON usage_daily
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.adoption_derived_trunc_trg();
CREATE OR REPLACE TRIGGER adoption_derived_trunc AFTER TRUNCATE ON feature_adoption
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.adoption_derived_trunc_trg();

-- Everything from scratch (bulk loads).
CREATE OR REPLACE FUNCTION csmcp.adoption_derived_rebuild() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    LOCK TABLE adoption_derived IN EXCLUSIVE MODE;
    DELETE FROM adoption_derived;
    INSERT INTO adoption_derived (client_id, m1, m2, m4, m5, m6, rec_days, rec_vals) SELECT * FROM csmcp.adoption_derived_of(NULL);
END $$;

-- Rows that differ from a from-scratch computation (none when exact).
CREATE OR REPLACE FUNCTION csmcp.adoption_derived_check()
RETURNS TABLE (client_id text, maintained text, actual text)
LANGUAGE sql STABLE AS $$
    SELECT coalesce(m.client_id, a.client_id), concat_ws(',', m.m1, m.m2, m.m4, m.m5, m.m6, m.rec_days, m.rec_vals),
           concat_ws(',', a.m1, a.m2, a.m4, a.m5, a.m6, a.rec_days, a.rec_vals)
    FROM adoption_derived m FULL JOIN csmcp.adoption_derived_of(NULL) a ON a.client_id = m.client_id
    WHERE (m.m1, m.m2, m.m4, m.m5, m.m6, m.rec_days, m.rec_vals) IS DISTINCT FROM (a.m1, a.m2, a.m4, a.m5, a.m6, a.rec_days, a.rec_vals)
$$;

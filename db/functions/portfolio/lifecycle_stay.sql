-- portfolio/lifecycle_stay.sql - completed stays in lifecycle stages per account (table
-- lifecycle_stay, migration 0155: design and invariants there): maintenance by triggers on
-- lifecycle_transitions, the full rebuild (called by csmcp.portfolio_rebuild), the check and the
-- portfolio figure manage_lifecycle_stages reads.

-- The from-scratch rows of the given accounts (all accounts when p_clients is NULL).
CREATE OR REPLACE FUNCTION csmcp.lifecycle_stay_compute(p_clients text[])
RETURNS TABLE (client_id text, stage text, stays integer, days numeric)
LANGUAGE sql STABLE AS $$
    SELECT l.client_id, l.to_stage, count(*)::integer, sum(extract(epoch FROM l.next_at - l.changed_at) / 86400)
    FROM (SELECT t.client_id, t.to_stage, t.changed_at,
                 lead(t.changed_at) OVER (PARTITION BY t.client_id ORDER BY t.changed_at, t.transition_id) AS next_at
          FROM lifecycle_transitions t
          WHERE p_clients IS NULL OR t.client_id = ANY (p_clients)) l
    WHERE l.next_at IS NOT NULL
    GROUP BY 1, 2
$$;

-- Recomputes the rows of the given accounts under one transaction-level advisory lock shared by
-- every writer of lifecycle_transitions (held to commit): the statements after it see every
-- transition a concurrent writer committed.
CREATE OR REPLACE FUNCTION csmcp.lifecycle_stay_refresh(p_clients text[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('csmcp.lifecycle_stay'), 0);
    DELETE FROM lifecycle_stay WHERE client_id = ANY (p_clients);
    INSERT INTO lifecycle_stay (client_id, stage, stays, days)
    SELECT * FROM csmcp.lifecycle_stay_compute(p_clients);
END $$;

CREATE OR REPLACE FUNCTION csmcp.lifecycle_stay_trg() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    cs text[];
BEGIN
    IF csmcp.portfolio_bulk() THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        SELECT array_agg(DISTINCT client_id) INTO cs FROM nt;
    ELSIF TG_OP = 'UPDATE' THEN
        SELECT array_agg(DISTINCT client_id) INTO cs FROM (SELECT client_id FROM nt UNION SELECT client_id FROM ot) x;
    ELSE
        SELECT array_agg(DISTINCT client_id) INTO cs FROM ot;
    END IF;
    IF cs IS NOT NULL THEN
        PERFORM csmcp.lifecycle_stay_refresh(cs);
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER lifecycle_stay_ins AFTER INSERT ON lifecycle_transitions REFERENCING NEW TABLE AS nt
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.lifecycle_stay_trg();
CREATE OR REPLACE TRIGGER lifecycle_stay_upd AFTER UPDATE ON lifecycle_transitions REFERENCING OLD TABLE AS ot NEW TABLE AS nt
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.lifecycle_stay_trg();
CREATE OR REPLACE TRIGGER lifecycle_stay_del AFTER DELETE ON lifecycle_transitions REFERENCING OLD TABLE AS ot
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.lifecycle_stay_trg();

CREATE OR REPLACE FUNCTION csmcp.lifecycle_stay_trunc_trg() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM lifecycle_stay;
    RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER lifecycle_stay_trunc AFTER TRUNCATE ON lifecycle_transitions
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.lifecycle_stay_trunc_trg();

-- Everything from scratch (bulk loads).
CREATE OR REPLACE FUNCTION csmcp.lifecycle_stay_rebuild() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    LOCK TABLE lifecycle_stay IN EXCLUSIVE MODE;
    DELETE FROM lifecycle_stay;
    INSERT INTO lifecycle_stay (client_id, stage, stays, days) SELECT * FROM csmcp.lifecycle_stay_compute(NULL);
END $$;

-- Rows of lifecycle_stay that differ from the from-scratch computation (none when exact).
CREATE OR REPLACE FUNCTION csmcp.lifecycle_stay_check()
RETURNS TABLE (client_id text, stage text, maintained_stays integer, actual_stays integer, maintained_days numeric, actual_days numeric)
LANGUAGE sql STABLE AS $$
    SELECT coalesce(m.client_id, a.client_id), coalesce(m.stage, a.stage), m.stays, a.stays, m.days, a.days
    FROM lifecycle_stay m FULL JOIN csmcp.lifecycle_stay_compute(NULL) a ON a.client_id = m.client_id AND a.stage = m.stage
    WHERE m.stays IS DISTINCT FROM a.stays OR m.days IS DISTINCT FROM a.days
$$;

-- The portfolio's average completed stay per stage in days, rounded to 1 decimal: equal to
-- round(avg(extract(epoch FROM next_at - changed_at) / 86400), 1) over every transition with a
-- next one (avg(numeric) is sum / count).
CREATE OR REPLACE FUNCTION csmcp.lifecycle_stay_avg_days() RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT coalesce(jsonb_object_agg(stage, round(d / n, 1)), '{}')
    FROM (SELECT stage, sum(days) AS d, sum(stays) AS n FROM lifecycle_stay GROUP BY stage) s
    WHERE n > 0
$$;

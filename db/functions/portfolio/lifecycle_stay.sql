-- portfolio/lifecycle_stay.sql - completed stays in lifecycle stages per account (table
-- lifecycle_stay, migration 0155) with their per-stage totals, and the transitions per UTC day
-- (lifecycle_stay_totals, lifecycle_trans_daily, migration 0290; design and invariants in both
-- migrations): maintenance by triggers on lifecycle_transitions, the full rebuild (called by
-- csmcp.portfolio_rebuild), the checks and the portfolio figures manage_lifecycle_stages reads.

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

-- Recomputes the rows of the given accounts, and moves the per-stage totals by the difference
-- between their old and new rows, under one transaction-level advisory lock shared by every
-- writer of lifecycle_transitions (held to commit): the statements after it see every transition
-- a concurrent writer committed, and no two writers update the totals at once.
CREATE OR REPLACE FUNCTION csmcp.lifecycle_stay_refresh(p_clients text[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('csmcp.lifecycle_stay'), 0);
    WITH d AS (DELETE FROM lifecycle_stay WHERE client_id = ANY (p_clients) RETURNING stage, stays, days)
    INSERT INTO lifecycle_stay_totals AS t (stage, stays, days)
    SELECT stage, -sum(stays), -sum(days) FROM d GROUP BY 1 ORDER BY 1
    ON CONFLICT (stage) DO UPDATE SET stays = t.stays + excluded.stays, days = t.days + excluded.days;
    WITH i AS (INSERT INTO lifecycle_stay (client_id, stage, stays, days)
               SELECT * FROM csmcp.lifecycle_stay_compute(p_clients) RETURNING stage, stays, days)
    INSERT INTO lifecycle_stay_totals AS t (stage, stays, days)
    SELECT stage, sum(stays), sum(days) FROM i GROUP BY 1 ORDER BY 1
    ON CONFLICT (stage) DO UPDATE SET stays = t.stays + excluded.stays, days = t.days + excluded.days;
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
    IF cs IS NULL THEN
        RETURN NULL;
    END IF;
    PERFORM csmcp.lifecycle_stay_refresh(cs);
    -- The statement's differences per (UTC day, from_stage, to_stage) in lifecycle_trans_daily,
    -- after the refresh, so under its advisory lock: only the lock's holder ever locks day rows,
    -- and no writer can hold some while it waits for the lock (no deadlock between writers).
    IF TG_OP = 'INSERT' THEN
        INSERT INTO lifecycle_trans_daily AS d (day, from_stage, to_stage, n)
        SELECT (changed_at AT TIME ZONE 'UTC')::date, from_stage, to_stage, count(*) FROM nt WHERE from_stage IS NOT NULL
        GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
        ON CONFLICT (day, from_stage, to_stage) DO UPDATE SET n = d.n + excluded.n;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO lifecycle_trans_daily AS d (day, from_stage, to_stage, n)
        SELECT day, from_stage, to_stage, sum(n) FROM (
            SELECT (changed_at AT TIME ZONE 'UTC')::date AS day, from_stage, to_stage, 1 AS n FROM nt WHERE from_stage IS NOT NULL
            UNION ALL
            SELECT (changed_at AT TIME ZONE 'UTC')::date, from_stage, to_stage, -1 FROM ot WHERE from_stage IS NOT NULL) c
        GROUP BY 1, 2, 3 HAVING sum(n) <> 0 ORDER BY 1, 2, 3
        ON CONFLICT (day, from_stage, to_stage) DO UPDATE SET n = d.n + excluded.n;
    ELSE
        INSERT INTO lifecycle_trans_daily AS d (day, from_stage, to_stage, n)
        SELECT (changed_at AT TIME ZONE 'UTC')::date, from_stage, to_stage, -count(*) FROM ot WHERE from_stage IS NOT NULL
        GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
        ON CONFLICT (day, from_stage, to_stage) DO UPDATE SET n = d.n + excluded.n;
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
    DELETE FROM lifecycle_stay_totals;
    DELETE FROM lifecycle_trans_daily;
    RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER lifecycle_stay_trunc AFTER TRUNCATE ON lifecycle_transitions
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.lifecycle_stay_trunc_trg();

-- Everything from scratch (bulk loads), under the writers' advisory lock: it waits for every
-- writer of lifecycle_transitions to commit and holds the next ones back until it commits.
CREATE OR REPLACE FUNCTION csmcp.lifecycle_stay_rebuild() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('csmcp.lifecycle_stay'), 0);
    LOCK TABLE lifecycle_stay, lifecycle_stay_totals, lifecycle_trans_daily IN EXCLUSIVE MODE;
    DELETE FROM lifecycle_stay;
    DELETE FROM lifecycle_stay_totals;
    DELETE FROM lifecycle_trans_daily;
    INSERT INTO lifecycle_stay (client_id, stage, stays, days) SELECT * FROM csmcp.lifecycle_stay_compute(NULL);
    INSERT INTO lifecycle_stay_totals (stage, stays, days) SELECT stage, sum(stays), sum(days) FROM lifecycle_stay GROUP BY 1;
    INSERT INTO lifecycle_trans_daily (day, from_stage, to_stage, n)
    SELECT (changed_at AT TIME ZONE 'UTC')::date, from_stage, to_stage, count(*)
    FROM lifecycle_transitions WHERE from_stage IS NOT NULL GROUP BY 1, 2, 3;
END $$;

-- Rows of lifecycle_stay that differ from the from-scratch computation (none when exact).
CREATE OR REPLACE FUNCTION csmcp.lifecycle_stay_check()
RETURNS TABLE (client_id text, stage text, maintained_stays integer, actual_stays integer, maintained_days numeric, actual_days numeric)
LANGUAGE sql STABLE AS $$
    SELECT coalesce(m.client_id, a.client_id), coalesce(m.stage, a.stage), m.stays, a.stays, m.days, a.days
    FROM lifecycle_stay m FULL JOIN csmcp.lifecycle_stay_compute(NULL) a ON a.client_id = m.client_id AND a.stage = m.stage
    WHERE m.stays IS DISTINCT FROM a.stays OR m.days IS DISTINCT FROM a.days
$$;

-- Rows of lifecycle_stay_totals and lifecycle_trans_daily that differ from a from-scratch
-- computation over lifecycle_transitions (none when exact; a row whose counts fell to 0 equals
-- an absent one).
CREATE OR REPLACE FUNCTION csmcp.lifecycle_rollups_check()
RETURNS TABLE (what text, key text, maintained text, actual text)
LANGUAGE sql STABLE AS $$
    WITH a AS (SELECT stage, sum(stays) AS stays, sum(days) AS days FROM csmcp.lifecycle_stay_compute(NULL) GROUP BY 1),
    ad AS (SELECT (changed_at AT TIME ZONE 'UTC')::date AS day, from_stage, to_stage, count(*) AS n
           FROM lifecycle_transitions WHERE from_stage IS NOT NULL GROUP BY 1, 2, 3)
    SELECT 'lifecycle_stay_totals', coalesce(m.stage, a.stage), m.stays || '/' || m.days, a.stays || '/' || a.days
    FROM lifecycle_stay_totals m FULL JOIN a ON a.stage = m.stage
    WHERE (coalesce(m.stays, 0), coalesce(m.days, 0)) IS DISTINCT FROM (coalesce(a.stays, 0), coalesce(a.days, 0))
    UNION ALL
    SELECT 'lifecycle_trans_daily', coalesce(m.day, ad.day) || '/' || coalesce(m.from_stage, ad.from_stage) || '/'
                                    || coalesce(m.to_stage, ad.to_stage), m.n::text, ad.n::text
    FROM lifecycle_trans_daily m FULL JOIN ad ON ad.day = m.day AND ad.from_stage = m.from_stage AND ad.to_stage = m.to_stage
    WHERE coalesce(m.n, 0) <> coalesce(ad.n, 0)
$$;

-- The portfolio's average completed stay per stage in days, rounded to 1 decimal, from the
-- maintained totals: equal to round(avg(extract(epoch FROM next_at - changed_at) / 86400), 1)
-- over every transition with a next one (avg(numeric) is sum / count, and the sums are exact).
CREATE OR REPLACE FUNCTION csmcp.lifecycle_stay_avg_days() RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT coalesce(jsonb_object_agg(stage, round(days / stays, 1)), '{}') FROM lifecycle_stay_totals WHERE stays > 0
$$;

-- The transitions with a from_stage and changed_at > now() - 90 days (future ones included)
-- per (from_stage, to_stage), only those touching p_stage when given: the UTC days strictly
-- between the window's first day and today from lifecycle_trans_daily, the first day's part
-- inside the window and everything from today's UTC midnight on from lifecycle_transitions (by
-- lifecycle_changed_idx). One statement, so one snapshot for both sources.
CREATE OR REPLACE FUNCTION csmcp.lifecycle_trans_90d(p_stage text)
RETURNS TABLE (from_stage text, to_stage text, n bigint)
LANGUAGE sql STABLE AS $$
    SELECT c.from_stage, c.to_stage, sum(c.n)::bigint
    FROM (SELECT d.from_stage, d.to_stage, d.n FROM lifecycle_trans_daily d
          WHERE d.day > ((now() - interval '90 days') AT TIME ZONE 'UTC')::date AND d.day < (now() AT TIME ZONE 'UTC')::date
          UNION ALL
          SELECT t.from_stage, t.to_stage, 1 FROM lifecycle_transitions t
          WHERE t.changed_at > now() - interval '90 days'
            AND t.changed_at < (((now() - interval '90 days') AT TIME ZONE 'UTC')::date + 1)::timestamp AT TIME ZONE 'UTC'
          UNION ALL
          SELECT t.from_stage, t.to_stage, 1 FROM lifecycle_transitions t
          WHERE t.changed_at >= (now() AT TIME ZONE 'UTC')::date::timestamp AT TIME ZONE 'UTC') c
    WHERE c.from_stage IS NOT NULL AND (p_stage IS NULL OR c.from_stage = p_stage OR c.to_stage = p_stage)
    GROUP BY 1, 2 HAVING sum(c.n) > 0
$$;

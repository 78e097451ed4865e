-- portfolio/usage_milestones_account.sql - track_adoption_milestones' per-account milestones and their
-- histogram (tables adoption_account, adoption_hist, migration 0148: design and invariants there):
-- the per-account computation, maintenance by statement triggers (all under the usage writers'
-- lock), the full rebuild (called by csmcp.portfolio_rebuild) and the check.

-- The given accounts' start and eight milestone days, each the earlier of the derived day and a
-- manual confirmation (adoption_milestones), exactly as the portfolio view of
-- csmcp.track_adoption_milestones_scratch derives them: m1, m2, m4..m6 from adoption_derived, m3
-- from its record days of daily active users (the first record reaching half the active
-- contract's seats, 5 without one; width_bucket counts the records below the threshold), m7 the
-- first completed executive review, m8 the first advocate; ahead = the milestones achieved within
-- half their target (integer division). Index reads per account (laterals), for any number of
-- accounts.
CREATE OR REPLACE FUNCTION csmcp.adoption_account_of(p_clients text[])
RETURNS TABLE (client_id text, acc_start date, a1 date, a2 date, a3 date, a4 date, a5 date, a6 date, a7 date, a8 date, ahead integer)
LANGUAGE sql STABLE AS $$
    SELECT x.*, coalesce((x.a1 - x.acc_start <= 1)::int, 0) + coalesce((x.a2 - x.acc_start <= 7)::int, 0)
                + coalesce((x.a3 - x.acc_start <= 15)::int, 0) + coalesce((x.a4 - x.acc_start <= 30)::int, 0)
                + coalesce((x.a5 - x.acc_start <= 22)::int, 0) + coalesce((x.a6 - x.acc_start <= 45)::int, 0)
                + coalesce((x.a7 - x.acc_start <= 60)::int, 0) + coalesce((x.a8 - x.acc_start <= 90)::int, 0)
    FROM (
        SELECT a.client_id, coalesce(cs.s, (a.created_at AT TIME ZONE 'UTC')::date) AS acc_start,
               least(d.m1, am.x1) AS a1, least(d.m2, am.x2) AS a2,
               least(d.rec_days[width_bucket(coalesce(ceil(c.licensed_seats * 0.5), 5)::integer - 1, d.rec_vals) + 1], am.x3) AS a3,
               least(d.m4, am.x4) AS a4, least(d.m5, am.x5) AS a5, least(d.m6, am.x6) AS a6,
               least(r7.d, am.x7) AS a7, least(r8.d, am.x8) AS a8
        FROM unnest(p_clients) p(client_id)
        JOIN accounts a ON a.client_id = p.client_id
        LEFT JOIN contracts c ON c.client_id = a.client_id AND c.status = 'active'
        LEFT JOIN adoption_derived d ON d.client_id = a.client_id
        CROSS JOIN LATERAL (SELECT min(k.start_date) AS s FROM contracts k WHERE k.client_id = a.client_id) cs
        CROSS JOIN LATERAL (
            SELECT min(m.achieved_on) FILTER (WHERE m.milestone = 'm1') AS x1, min(m.achieved_on) FILTER (WHERE m.milestone = 'm2') AS x2,
                   min(m.achieved_on) FILTER (WHERE m.milestone = 'm3') AS x3, min(m.achieved_on) FILTER (WHERE m.milestone = 'm4') AS x4,
                   min(m.achieved_on) FILTER (WHERE m.milestone = 'm5') AS x5, min(m.achieved_on) FILTER (WHERE m.milestone = 'm6') AS x6,
                   min(m.achieved_on) FILTER (WHERE m.milestone = 'm7') AS x7, min(m.achieved_on) FILTER (WHERE m.milestone = 'm8') AS x8
            FROM adoption_milestones m WHERE m.client_id = a.client_id) am
        CROSS JOIN LATERAL (SELECT min(e.completed_at)::date AS d FROM executive_reviews e
                            WHERE e.client_id = a.client_id AND e.status = 'completed') r7
        CROSS JOIN LATERAL (SELECT min(v.enrolled_at)::date AS d FROM advocates v WHERE v.client_id = a.client_id) r8
    ) x
$$;

-- One adoption_account row's histogram entries (milestone 1..8, days from the start to it; only
-- the achieved ones).
CREATE OR REPLACE FUNCTION csmcp.adoption_hist_of(a adoption_account)
RETURNS TABLE (m integer, days integer)
LANGUAGE sql IMMUTABLE AS $$
    SELECT x.m::integer, x.d FROM unnest(ARRAY[a.a1 - a.acc_start, a.a2 - a.acc_start, a.a3 - a.acc_start, a.a4 - a.acc_start,
                                               a.a5 - a.acc_start, a.a6 - a.acc_start, a.a7 - a.acc_start, a.a8 - a.acc_start])
                                 WITH ORDINALITY x(d, m)
    WHERE x.d IS NOT NULL
$$;

-- Recomputes the given accounts' rows and their share of the histogram, under the usage writers'
-- lock (every writer of the tables behind them takes it before its statement: one order, no
-- lost update; a statement sees what earlier lock holders committed).
CREATE OR REPLACE FUNCTION csmcp.adoption_account_refresh(p_clients text[]) RETURNS void
LANGUAGE plpgsql
-- generic plans (index lookups of the given accounts, planned once per session): custom plans
-- re-planned these statements on every usage write, 2-4 ms each (issue 21, measured at 10,000
-- accounts; the GUC also covers what this calls: engage_window_refresh and _put)
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    cs text[] := ARRAY(SELECT DISTINCT c FROM unnest(p_clients) c WHERE c IS NOT NULL ORDER BY 1);
BEGIN
    IF cardinality(cs) = 0 THEN
        RETURN;
    END IF;
    PERFORM csmcp.usage_write_lock();
    INSERT INTO adoption_hist AS h
    SELECT x.m, x.days, -count(*) FROM adoption_account a CROSS JOIN LATERAL csmcp.adoption_hist_of(a) x
    WHERE a.client_id = ANY (cs) GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (m, days) DO UPDATE SET n = h.n + excluded.n;
    DELETE FROM adoption_account WHERE client_id = ANY (cs);
    INSERT INTO adoption_account SELECT * FROM csmcp.adoption_account_of(cs);
    INSERT INTO adoption_hist AS h
    SELECT x.m, x.days, count(*) FROM adoption_account a CROSS JOIN LATERAL csmcp.adoption_hist_of(a) x
    WHERE a.client_id = ANY (cs) GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (m, days) DO UPDATE SET n = h.n + excluded.n;
END $$;

-- Statement triggers. The lock before the statement (as on the usage tables: the writer's row
-- locks come after it), the recomputation of the touched accounts after it; an UPDATE only
-- recomputes where a column behind the milestones changed.
CREATE OR REPLACE FUNCTION csmcp.adoption_account_trg() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    cs text[];
BEGIN
    IF csmcp.portfolio_bulk() THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        SELECT array_agg(client_id) INTO cs FROM nt;
    ELSIF TG_OP = 'DELETE' THEN
        SELECT array_agg(client_id) INTO cs FROM ot;
    ELSIF TG_TABLE_NAME = 'contracts' THEN
        SELECT array_agg(c) INTO cs FROM ot o JOIN nt n USING (contract_id) CROSS JOIN LATERAL (VALUES (o.client_id), (n.client_id)) v(c)
        WHERE (o.client_id, o.start_date, o.status, o.licensed_seats) IS DISTINCT FROM (n.client_id, n.start_date, n.status, n.licensed_seats);
    ELSIF TG_TABLE_NAME = 'executive_reviews' THEN
        SELECT array_agg(c) INTO cs FROM ot o JOIN nt n USING (ebr_id) CROSS JOIN LATERAL (VALUES (o.client_id), (n.client_id)) v(c)
        WHERE (o.client_id, o.status, o.completed_at) IS DISTINCT FROM (n.client_id, n.status, n.completed_at);
    ELSIF TG_TABLE_NAME = 'advocates' THEN
        SELECT array_agg(c) INTO cs FROM ot o JOIN nt n USING (advocate_id) CROSS JOIN LATERAL (VALUES (o.client_id), (n.client_id)) v(c)
        WHERE (o.client_id, o.enrolled_at) IS DISTINCT FROM (n.client_id, n.enrolled_at);
    ELSE   -- adoption_milestones: every update
        SELECT array_agg(client_id) INTO cs FROM (SELECT client_id FROM ot UNION SELECT client_id FROM nt) x;
    END IF;
    PERFORM csmcp.adoption_account_refresh(cs);
    RETURN NULL;
END $$;

-- accounts: a new or deleted account, or a changed creation day (row trigger: most updates of
-- accounts set other columns and never reach it)
CREATE OR REPLACE FUNCTION csmcp.adoption_account_row_trg() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF csmcp.portfolio_bulk() THEN   -- (first thing: seed_bulk_begin disables such triggers)
        RETURN NULL;
    END IF;
    PERFORM csmcp.adoption_account_refresh(ARRAY[new.client_id]);
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER adoption_account_lock BEFORE INSERT OR UPDATE OR DELETE ON contracts
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.usage_write_lock_trg();
CREATE OR REPLACE TRIGGER adoption_account_ins AFTER INSERT ON contracts REFERENCING NEW TABLE AS nt
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.adoption_account_trg();
CREATE OR REPLACE TRIGGER adoption_account_upd AFTER UPDATE ON contracts REFERENCING OLD TABLE AS ot NEW TABLE AS nt
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.adoption_account_trg();
CREATE OR REPLACE TRIGGER adoption_account_del AFTER DELETE ON contracts REFERENCING OLD TABLE AS ot
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.adoption_account_trg();
CREATE OR REPLACE TRIGGER adoption_account_lock BEFORE INSERT OR UPDATE OR DELETE ON executive_reviews
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.usage_write_lock_trg();
CREATE OR REPLACE TRIGGER adoption_account_ins AFTER INSERT ON executive_reviews REFERENCING NEW TABLE AS nt
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.adoption_account_trg();
CREATE OR REPLACE TRIGGER adoption_account_upd AFTER UPDATE ON executive_reviews REFERENCING OLD TABLE AS ot NEW TABLE AS nt
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.adoption_account_trg();
CREATE OR REPLACE TRIGGER adoption_account_del AFTER DELETE ON executive_reviews REFERENCING OLD TABLE AS ot
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.adoption_account_trg();
CREATE OR REPLACE TRIGGER adoption_account_lock BEFORE INSERT OR UPDATE OR DELETE ON advocates
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.usage_write_lock_trg();
CREATE OR REPLACE TRIGGER adoption_account_ins AFTER INSERT ON advocates REFERENCING NEW TABLE AS nt
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.adoption_account_trg();
CREATE OR REPLACE TRIGGER adoption_account_upd AFTER UPDATE ON advocates REFERENCING OLD TABLE AS ot NEW TABLE AS nt
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.adoption_account_trg();
CREATE OR REPLACE TRIGGER adoption_account_del AFTER DELETE ON advocates REFERENCING OLD TABLE AS ot
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.adoption_account_trg();
CREATE OR REPLACE TRIGGER adoption_account_lock BEFORE INSERT OR UPDATE OR DELETE ON adoption_milestones
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.usage_write_lock_trg();
CREATE OR REPLACE TRIGGER adoption_account_ins AFTER INSERT ON adoption_milestones REFERENCING NEW TABLE AS nt
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.adoption_account_trg();
CREATE OR REPLACE TRIGGER adoption_account_upd AFTER UPDATE ON adoption_milestones REFERENCING OLD TABLE AS ot NEW TABLE AS nt
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.adoption_account_trg();
CREATE OR REPLACE TRIGGER adoption_account_del AFTER DELETE ON adoption_milestones REFERENCING OLD TABLE AS ot
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.adoption_account_trg();
CREATE OR REPLACE TRIGGER adoption_account_lock BEFORE INSERT OR DELETE ON accounts
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.usage_write_lock_trg();
CREATE OR REPLACE TRIGGER adoption_account_lock_upd BEFORE UPDATE OF created_at ON accounts
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.usage_write_lock_trg();
CREATE OR REPLACE TRIGGER adoption_account_ins AFTER INSERT ON accounts REFERENCING NEW TABLE AS nt
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.adoption_account_trg();
CREATE OR REPLACE TRIGGER adoption_account_del AFTER DELETE ON accounts REFERENCING OLD TABLE AS ot
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.adoption_account_trg();
CREATE OR REPLACE TRIGGER adoption_account_upd AFTER UPDATE OF created_at ON accounts
    FOR EACH ROW WHEN (old.created_at IS DISTINCT FROM new.created_at) EXECUTE FUNCTION csmcp.adoption_account_row_trg();

CREATE OR REPLACE FUNCTION csmcp.adoption_account_trunc_trg() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM csmcp.adoption_account_rebuild();
    RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER adoption_account_trunc AFTER TRUNCATE ON contracts
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.adoption_account_trunc_trg();
CREATE OR REPLACE TRIGGER adoption_account_trunc AFTER TRUNCATE ON executive_reviews
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.adoption_account_trunc_trg();
CREATE OR REPLACE TRIGGER adoption_account_trunc AFTER TRUNCATE ON advocates
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.adoption_account_trunc_trg();
CREATE OR REPLACE TRIGGER adoption_account_trunc AFTER TRUNCATE ON adoption_milestones
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.adoption_account_trunc_trg();

-- Everything from scratch (bulk loads, the catalogue of features changed, TRUNCATE).
CREATE OR REPLACE FUNCTION csmcp.adoption_account_rebuild() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    LOCK TABLE adoption_account, adoption_hist IN EXCLUSIVE MODE;
    DELETE FROM adoption_account;
    DELETE FROM adoption_hist;
    INSERT INTO adoption_account SELECT * FROM csmcp.adoption_account_of(ARRAY(SELECT client_id FROM accounts));
    INSERT INTO adoption_hist
    SELECT x.m, x.days, count(*) FROM adoption_account a CROSS JOIN LATERAL csmcp.adoption_hist_of(a) x GROUP BY 1, 2;
END $$;

-- Rows (and histogram entries) that differ from a from-scratch computation (none when exact;
-- zero histogram counts count as absent).
CREATE OR REPLACE FUNCTION csmcp.adoption_account_check()
RETURNS TABLE (client_id text, maintained text, actual text)
LANGUAGE sql STABLE AS $$
    WITH a AS (SELECT * FROM csmcp.adoption_account_of(ARRAY(SELECT client_id FROM accounts))),
    m AS (SELECT x.client_id, concat_ws(',', x.acc_start, x.a1, x.a2, x.a3, x.a4, x.a5, x.a6, x.a7, x.a8, x.ahead) AS v FROM adoption_account x),
    f AS (SELECT x.client_id, concat_ws(',', x.acc_start, x.a1, x.a2, x.a3, x.a4, x.a5, x.a6, x.a7, x.a8, x.ahead) AS v FROM a x),
    hm AS (SELECT 'hist:' || h.m || '/' || h.days AS k, h.n::text AS v FROM adoption_hist h WHERE h.n <> 0),
    ha AS (SELECT 'hist:' || x.m || '/' || x.days AS k, count(*)::text AS v
           FROM a CROSS JOIN LATERAL csmcp.adoption_hist_of(a::adoption_account) x GROUP BY x.m, x.days)
    SELECT coalesce(m.client_id, f.client_id), m.v, f.v FROM m FULL JOIN f ON f.client_id = m.client_id WHERE m.v IS DISTINCT FROM f.v
    UNION ALL
    SELECT coalesce(hm.k, ha.k), hm.v, ha.v FROM hm FULL JOIN ha ON ha.k = hm.k WHERE hm.v IS DISTINCT FROM ha.v
$$;

-- seed/_lib.sql - csmcp.seed_rand(key): a deterministic number in [0, 1) from md5(key); every
-- seed value derives from it (never random()), so the same N gives the same rows anywhere.
-- The division is in float8 (issue 21): ~0.9 instead of 1.45 us per call (1,000,000 calls), and a
-- 100,000-account seed makes tens of millions. Same values as the former numeric division
-- (bigint / 4294967296.0, then cast): x / 2^32 (x < 2^32) is exact in float8, and the numeric
-- quotient had >= 17 significant digits (select_div_scale: 16 - 4 x the estimated base-10000
-- weight), i.e. an error < 0.5e-16 relative to its leading digit, less than half an ulp of the
-- double, so its correctly rounded conversion was that same double (also checked on 6 million x).
CREATE OR REPLACE FUNCTION csmcp.seed_rand(k text) RETURNS double precision
LANGUAGE sql IMMUTABLE AS $$
    SELECT ('x' || substr(md5(k), 1, 8))::bit(32)::bigint::float8 / 4294967296.0::float8
$$;

-- csmcp.seed_health_bulk(clients, principal): one health calculation per listed account, set-based,
-- exactly what csmcp.tool_calculate_health_score(<client_id>) stores with its defaults (30-day
-- lookback, the default weights 0.35/0.25/0.15/0.15/0.10, no scorecard): the components of
-- common/health_components.sql, previous score, change, trend, risk level, churn probability, the
-- risk indicators and the account's health_score/health_trend. The seed calls it instead of one
-- tool call per account (100,000 accounts: minutes -> seconds). When an active scorecard could
-- apply (health_scorecards with status active), it falls back to the tool itself per account, so
-- the result is always the tool's. tests/integration/test_seed_scale.py checks every seeded
-- score against csmcp.health_components() from scratch. Returns the number of accounts scored.
CREATE OR REPLACE FUNCTION csmcp.seed_health_bulk(p_clients text[], p_principal text) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    t date := csmcp.today();
    cid text;
    n integer := 0;
    nl text := current_setting('enable_nestloop');
BEGIN
    IF EXISTS (SELECT 1 FROM health_scorecards WHERE status = 'active') THEN
        FOREACH cid IN ARRAY p_clients LOOP
            PERFORM csmcp.tool_calculate_health_score(jsonb_build_object('client_id', cid), p_principal);
            n := n + 1;
        END LOOP;
        RETURN n;
    END IF;
    -- Hash joins for the statement below: the planner estimates the unnested account list at 10
    -- rows and chose one index scan per account into usage_daily, tickets, NPS, ... - random
    -- reads over GBs at 100,000 accounts (> 4 minutes; sequential scans instead: see docs/data.md).
    -- A short list (the accounts the expansion part re-scores: ~6 % of them) is better served by
    -- those index scans than by two sequential scans of usage_daily.
    IF cardinality(p_clients) > 10000 THEN
        PERFORM set_config('enable_nestloop', 'off', true);
    END IF;
    CREATE TEMP TABLE seed_hb ON COMMIT DROP AS
    -- (a semi-join, not DISTINCT over unnest: the planner then expects every listed account, not 200,
    -- and hashes the account list instead of usage_daily)
    WITH acc AS (SELECT a.client_id FROM accounts a WHERE a.client_id IN (SELECT unnest(p_clients))),
    ctr AS (SELECT c.client_id, c.contract_id, c.licensed_seats AS seats, c.end_date
            FROM contracts c JOIN acc USING (client_id) WHERE c.status = 'active'),
    use30 AS (SELECT u.client_id, sum(u.active_users) AS s FROM usage_daily u JOIN acc USING (client_id)
              WHERE u.day > t - 30 AND u.day <= t GROUP BY u.client_id),
    lastd AS (SELECT u.client_id, max(u.day) AS last_day FROM usage_daily u JOIN acc USING (client_id)
              WHERE (u.events > 0 OR u.active_users > 0) AND u.day <= t GROUP BY u.client_id),
    tk AS (SELECT k.client_id, count(*) AS n_t, count(*) FILTER (WHERE k.priority IN ('P0', 'P1')) AS n_c
           FROM support_tickets k JOIN acc USING (client_id) WHERE k.created_at > now() - make_interval(days => 30)
           GROUP BY k.client_id),
    np AS (SELECT r.client_id, count(*) AS n_nps, count(*) FILTER (WHERE r.score >= 9) AS n_prom,
                  count(*) FILTER (WHERE r.score <= 6) AS n_detr
           FROM nps_responses r JOIN acc USING (client_id) WHERE r.responded_at > now() - make_interval(days => 30)
           GROUP BY r.client_id),
    inv AS (SELECT i.contract_id, count(*) FILTER (WHERE i.paid_on IS NULL AND i.due_on < t) AS n_over,
                   count(*) FILTER (WHERE i.paid_on > i.due_on) AS n_late
            FROM invoices i JOIN ctr USING (contract_id) GROUP BY i.contract_id),
    prev AS (SELECT DISTINCT ON (h.client_id) h.client_id, h.overall_score
             FROM health_scores h JOIN acc USING (client_id)
             ORDER BY h.client_id, h.calculated_at DESC, h.score_id DESC),
    comp AS (
        SELECT acc.client_id,
               CASE WHEN ctr.contract_id IS NULL OR ctr.seats IS NULL THEN 50
                    ELSE round(100 * least(1, (coalesce(use30.s, 0)::numeric / 30) / ctr.seats))::integer END AS u,
               CASE WHEN lastd.last_day IS NULL THEN 50 WHEN t - lastd.last_day <= 0 THEN 95 WHEN t - lastd.last_day <= 3 THEN 85
                    WHEN t - lastd.last_day <= 7 THEN 75 WHEN t - lastd.last_day <= 14 THEN 60
                    WHEN t - lastd.last_day <= 30 THEN 45 ELSE 30 END AS e,
               100 - least(30, 3 * coalesce(tk.n_t, 0))::integer - least(20, 10 * coalesce(tk.n_c, 0))::integer AS s,
               CASE WHEN coalesce(np.n_nps, 0) = 0 THEN 70::numeric
                    ELSE round(((np.n_prom - np.n_detr)::numeric * 100 / np.n_nps + 100) / 2, 2) END AS sat,
               CASE WHEN ctr.contract_id IS NULL THEN 85
                    ELSE greatest(0, 100 - CASE WHEN coalesce(inv.n_over, 0) > 0 THEN 40 ELSE 0 END
                                         - CASE WHEN coalesce(inv.n_late, 0) > 0 THEN 20 ELSE 0 END
                                         - CASE WHEN ctr.end_date - t < 30 THEN 10 ELSE 0 END) END AS p,
               prev.overall_score AS prev
        FROM acc LEFT JOIN ctr USING (client_id) LEFT JOIN use30 USING (client_id) LEFT JOIN lastd USING (client_id)
        LEFT JOIN tk USING (client_id) LEFT JOIN np USING (client_id) LEFT JOIN inv ON inv.contract_id = ctr.contract_id
        LEFT JOIN prev USING (client_id)
    )
    SELECT comp.*, sc.score, sc.score - comp.prev AS change,
           CASE WHEN sc.score - comp.prev > 3 THEN 'improving' WHEN sc.score - comp.prev < -3 THEN 'declining' ELSE 'stable' END AS trend,
           nextval('health_scores_score_id_seq') AS score_id
    FROM comp
    CROSS JOIN LATERAL (SELECT greatest(0, least(100, round(0.35 * comp.u + 0.25 * comp.e + 0.15 * comp.s
                                                            + 0.15 * comp.sat + 0.10 * comp.p)::integer)) AS score OFFSET 0) sc
    ORDER BY comp.client_id;
    PERFORM set_config('enable_nestloop', nl, true);
    INSERT INTO health_scores (score_id, client_id, usage_score, engagement_score, support_score, satisfaction_score, payment_score,
                               usage_weight, engagement_weight, support_weight, satisfaction_weight, payment_weight,
                               overall_score, score_change, trend, risk_level, churn_probability, lookback_days,
                               scoring_model, calculated_by)
    SELECT score_id, client_id, u, e, s, sat, p, 0.35, 0.25, 0.15, 0.15, 0.10, score, change, trend,
           csmcp.risk_level(score), csmcp.churn_probability(score), 30, 'weighted_composite', coalesce(p_principal, 'anonymous')
    FROM seed_hb ORDER BY score_id;
    GET DIAGNOSTICS n = ROW_COUNT;
    INSERT INTO risk_indicators (client_id, score_id, indicator, severity, current_value, threshold)
    SELECT h.client_id, h.score_id, x.indicator, x.severity, x.value, x.threshold
    FROM seed_hb h CROSS JOIN LATERAL (VALUES
        (1, 'risk_low_engagement', CASE WHEN h.e < 60 THEN 'high' ELSE 'medium' END, h.e::numeric, 70::numeric, h.e < 70),
        (2, 'risk_low_usage', CASE WHEN h.u < 65 THEN 'high' ELSE 'medium' END, h.u::numeric, 75::numeric, h.u < 75),
        (3, 'risk_support_issues', 'medium', h.s::numeric, 80::numeric, h.s < 80),
        (4, 'risk_declining_health', 'high', h.change::numeric, -3::numeric, h.trend = 'declining')) x(ord, indicator, severity, value, threshold, hit)
    WHERE x.hit ORDER BY h.score_id, x.ord;
    UPDATE accounts a SET health_score = h.score, health_trend = h.trend, updated_at = now()
    FROM seed_hb h WHERE a.client_id = h.client_id;
    DROP TABLE seed_hb;
    RETURN n;
END $$;

-- Bulk mode for large seeds: per-row foreign-key checks and secondary-index inserts dominate
-- the cost of loading millions of rows (usage_feature_daily checks two foreign keys per row).
-- csmcp.seed_bulk_begin() records, then drops, every foreign key between tables of public the
-- role owns (all the tables the seed fills); csmcp.seed_bulk_off(tab) then drops the keys and
-- indexes of each of the largest tables right before it is filled; csmcp.seed_bulk_end() re-creates each with its exact
-- definition (pg_get_constraintdef / pg_get_indexdef, same names), so the schema afterwards is
-- identical, and re-adding a foreign key validates every row in one anti-join: a seed that wrote
-- a dangling reference fails as a whole. Both run inside the seed's transaction (DDL is
-- transactional); the tables are locked exclusively until it commits, so seed before serving.
-- Used when n >= 2000 or csmcp.seed_bulk = 'on', and only when the current role owns the tables
-- (otherwise the seed takes the per-row path, with the same rows).
CREATE OR REPLACE FUNCTION csmcp.seed_bulk_possible() RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid IN (SELECT conrelid FROM pg_constraint
                                                              WHERE contype = 'f' AND confrelid = 'accounts'::regclass)
                          AND NOT pg_has_role(current_user, c.relowner, 'USAGE'))
       AND pg_has_role(current_user, (SELECT relowner FROM pg_class WHERE oid = 'accounts'::regclass), 'USAGE')
$$;

CREATE OR REPLACE FUNCTION csmcp.seed_bulk_begin() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE r record; n integer := 0;
BEGIN
    CREATE TEMP TABLE seed_bulk_ddl (ord serial, kind text, tab regclass, name text, def text) ON COMMIT DROP;
    INSERT INTO seed_bulk_ddl (kind, tab, name, def)
    SELECT 'fk', c.conrelid::regclass, c.conname, pg_get_constraintdef(c.oid)
    FROM pg_constraint c
    -- every foreign key between tables of public this role owns (the seed writes most of them;
    -- per-row checks that lock the referenced row dominated e.g. the onboarding task insert)
    WHERE c.contype = 'f' AND c.connamespace = 'public'::regnamespace
      AND pg_has_role(current_user, (SELECT relowner FROM pg_class WHERE oid = c.conrelid), 'USAGE')
      AND pg_has_role(current_user, (SELECT relowner FROM pg_class WHERE oid = c.confrelid), 'USAGE')
    ORDER BY c.conrelid::regclass::text, c.conname;
    -- The rollup triggers (every trigger whose function starts by returning when
    -- csmcp.portfolio_bulk() is on: the seed rebuilds those rollups once at the end) are dropped
    -- and re-created (pg_get_triggerdef: same name, definition, firing order), not only skipped:
    -- a statement trigger with a transition table makes PostgreSQL keep a copy of every inserted
    -- or updated row (17 million usage_feature_daily rows at 100,000 accounts: an 862 MB
    -- temporary file) for a function that then does nothing - and a disabled trigger too (the
    -- capture is decided from the table's triggers, enabled or not; seen in the 100,000-account
    -- run of 18:58 with the triggers disabled). Only triggers enabled in the default mode ('O'):
    -- pg_get_triggerdef does not carry ENABLE ALWAYS/REPLICA.
    INSERT INTO seed_bulk_ddl (kind, tab, name, def)
    SELECT 'trg', g.tgrelid::regclass, g.tgname, pg_get_triggerdef(g.oid)
    FROM pg_trigger g JOIN pg_proc p ON p.oid = g.tgfoid JOIN pg_class c ON c.oid = g.tgrelid
    WHERE NOT g.tgisinternal AND g.tgenabled = 'O' AND c.relnamespace = 'public'::regnamespace
      AND (p.prosrc ~ '^\s*(DECLARE\s(?:(?!BEGIN).)*)?BEGIN\s+IF csmcp\.portfolio_bulk\(\) THEN\s+RETURN (NULL|OLD|NEW);\s+END IF;'
           -- the usage writers' lock taken by a BEFORE statement trigger (nothing else)
           OR p.prosrc ~ '^\s*BEGIN\s+IF NOT csmcp\.portfolio_bulk\(\) THEN\s+PERFORM csmcp\.usage_write_lock\(\);\s+END IF;\s+RETURN NULL;\s+END;?\s*$')
      AND pg_has_role(current_user, c.relowner, 'USAGE')
    ORDER BY g.tgrelid::regclass::text, g.tgname;
    FOR r IN SELECT * FROM seed_bulk_ddl ORDER BY ord LOOP
        IF r.kind = 'trg' THEN
            EXECUTE format('DROP TRIGGER %I ON %s', r.name, r.tab);
        ELSE
            EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', r.tab, r.name);
        END IF;
        n := n + 1;
    END LOOP;
    RETURN n;
END $$;

-- csmcp.seed_bulk_off(tab): in bulk mode (after seed_bulk_begin; otherwise a no-op returning 0),
-- records and drops the primary key / unique constraints (not referenced by a foreign key that
-- is still there) and every other index of one large table, right before the seed fills it:
-- maintaining a btree per inserted row cost 7.8 of 9.4 s for 900,000 usage rows, building it
-- afterwards 1.9 s. csmcp.seed_bulk_on(tab) re-creates the keys (the parts that follow need them
-- for ON CONFLICT and lookups); the other indexes come back in csmcp.seed_bulk_end().
CREATE OR REPLACE FUNCTION csmcp.seed_bulk_off(p_tab regclass) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE r record; n integer := 0; o integer;
BEGIN
    IF to_regclass('pg_temp.seed_bulk_ddl') IS NULL THEN
        RETURN 0;
    END IF;
    SELECT coalesce(max(ord), 0) INTO o FROM seed_bulk_ddl;
    INSERT INTO seed_bulk_ddl (kind, tab, name, def)
    SELECT 'key', c.conrelid::regclass, c.conname, pg_get_constraintdef(c.oid)
    FROM pg_constraint c
    WHERE c.conrelid = p_tab AND c.contype IN ('p', 'u')
      AND NOT EXISTS (SELECT 1 FROM pg_constraint f WHERE f.contype = 'f' AND f.conindid = c.conindid)
    ORDER BY c.conname;
    INSERT INTO seed_bulk_ddl (kind, tab, name, def)
    SELECT 'index', i.indrelid::regclass, ic.relname, pg_get_indexdef(i.indexrelid)
    FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
    WHERE i.indrelid = p_tab AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)
    ORDER BY 3;
    FOR r IN SELECT * FROM seed_bulk_ddl WHERE ord > o ORDER BY ord LOOP
        IF r.kind = 'key' THEN
            EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', r.tab, r.name);
        ELSE
            EXECUTE format('DROP INDEX %s', (SELECT oid::regclass FROM pg_class WHERE relname = r.name
                                              AND relnamespace = (SELECT relnamespace FROM pg_class WHERE oid = r.tab)));
        END IF;
        n := n + 1;
    END LOOP;
    RETURN n;
END $$;

CREATE OR REPLACE FUNCTION csmcp.seed_bulk_on(p_tab regclass) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE r record; n integer := 0;
BEGIN
    IF to_regclass('pg_temp.seed_bulk_ddl') IS NULL THEN
        RETURN 0;
    END IF;
    FOR r IN SELECT * FROM seed_bulk_ddl WHERE kind = 'key' AND tab = p_tab ORDER BY ord LOOP
        EXECUTE format('ALTER TABLE %s ADD CONSTRAINT %I %s', r.tab, r.name, r.def);
        DELETE FROM seed_bulk_ddl WHERE ord = r.ord;
        n := n + 1;
    END LOOP;
    RETURN n;
END $$;

CREATE OR REPLACE FUNCTION csmcp.seed_bulk_end() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE r record; n integer := 0; t0 timestamptz;
BEGIN
    IF to_regclass('pg_temp.seed_bulk_ddl') IS NULL THEN
        RETURN 0;
    END IF;
    -- triggers first, then keys, then indexes, then the foreign keys
    FOR r IN SELECT * FROM seed_bulk_ddl ORDER BY kind DESC, ord LOOP
        t0 := clock_timestamp();
        IF r.kind = 'trg' THEN
            EXECUTE r.def;
        ELSIF r.kind IN ('fk', 'key') THEN
            EXECUTE format('ALTER TABLE %s ADD CONSTRAINT %I %s', r.tab, r.name, r.def);
        ELSE
            EXECUTE r.def;
        END IF;
        -- profile with PGOPTIONS='-c client_min_messages=debug1' csmcpctl seed ...
        RAISE DEBUG 'seed_bulk_end: % ms % %', round(extract(epoch FROM clock_timestamp() - t0) * 1000), r.tab, r.name;
        n := n + 1;
    END LOOP;
    DROP TABLE seed_bulk_ddl;
    RETURN n;
END $$;

-- csmcp.seed_rand_int(a, b, salt): a deterministic number in [0, 1) from integers by three rounds
-- of a 31-bit linear congruential mix (bigint arithmetic that cannot overflow for a <= 10^9 and
-- b, salt < 10^6). ~20x cheaper than md5: used for the per-row noise of the largest seeded table
-- (90 usage days x accounts), where csmcp.seed_rand dominated the seed's time.
CREATE OR REPLACE FUNCTION csmcp.seed_rand_int(a bigint, b bigint, salt integer) RETURNS double precision
LANGUAGE sql IMMUTABLE AS $$
    SELECT ((((((a * 1103515245 + b * 2654435 + salt * 40503) % 2147483648) * 1103515245 + 12345) % 2147483648)
              * 1103515245 + 12345) % 2147483648)::float8 / 2147483648::float8
$$;

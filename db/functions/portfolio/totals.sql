-- portfolio/totals.sql - the maintained portfolio totals (tables portfolio_counts and
-- portfolio_usage, migration 0014): bulk switch, full rebuild, compaction and a check against a
-- from-scratch computation. The triggers that write the deltas are in triggers.sql.

-- True while csmcp.seed_demo loads in bulk (the triggers then write no deltas).
CREATE OR REPLACE FUNCTION csmcp.portfolio_bulk() RETURNS boolean
LANGUAGE sql STABLE AS $$ SELECT coalesce(current_setting('csmcp.portfolio_bulk', true), '') = 'on' $$;

-- Recomputes both tables from the base tables. The EXCLUSIVE locks wait for every transaction
-- that has written deltas and block new delta writers until this transaction ends, so no delta
-- is both deleted-and-recomputed or kept-and-recomputed.
CREATE OR REPLACE FUNCTION csmcp.portfolio_rebuild() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    LOCK TABLE portfolio_counts, portfolio_usage IN EXCLUSIVE MODE;
    DELETE FROM portfolio_counts;
    DELETE FROM portfolio_usage;
    INSERT INTO portfolio_counts (tier, lifecycle_stage, accounts, health_sum, arr)
    SELECT a.tier, a.lifecycle_stage, count(*), sum(a.health_score), coalesce(sum(c.contract_value), 0)
    FROM accounts a LEFT JOIN contracts c ON c.client_id = a.client_id AND c.status = 'active'
    GROUP BY 1, 2;
    INSERT INTO portfolio_usage (day, tier, lifecycle_stage, active_users)
    SELECT u.day, a.tier, a.lifecycle_stage, sum(u.active_users)
    FROM usage_daily u JOIN accounts a USING (client_id)
    GROUP BY 1, 2, 3 HAVING sum(u.active_users) <> 0;
    PERFORM csmcp.usage_cum_rebuild();   -- the running usage totals per account (usage_cum.sql)
    PERFORM csmcp.usage_feature_agg_rebuild();   -- the per-feature usage rollups (usage_feature_agg.sql)
    PERFORM csmcp.lifecycle_stay_rebuild();   -- completed lifecycle stays per account, their stage totals, transitions per day (lifecycle_stay.sql)
    PERFORM csmcp.nps_daily_rebuild();   -- NPS responses per day (nps_daily.sql)
    PERFORM csmcp.csat_daily_rebuild();   -- CSAT/CES responses per day (csat_daily.sql)
    PERFORM csmcp.usage_moments_rebuild();   -- the running usage moments per account (usage_moments.sql)
    PERFORM csmcp.adoption_derived_rebuild();   -- the data-derived adoption milestones (usage_milestones.sql)
    PERFORM csmcp.sup_agent_daily_rebuild();   -- support tickets per agent, priority and day (support/sup_agent_daily.sql)
    PERFORM csmcp.account_search_rebuild();   -- resolve_account's texts and trigrams (scorecards/account_search.sql)
    PERFORM csmcp.revenue_rollups_rebuild();   -- the revenue tools' rollups (expansion/rollups.sql)
    PERFORM csmcp.adoption_account_rebuild();   -- the per-account milestones and their histogram (usage_milestones_account.sql)
    PERFORM csmcp.engage_contacts_rebuild();   -- communications / tickets per day and account (engage_contacts.sql)
    PERFORM csmcp.adoption_tier_rebuild();   -- adoption rows per tier and first-use day (usage_tier_adoption.sql)
END $$;

-- Merges the delta rows of each group into one. Correct under concurrency without any lock:
-- the DELETE ... RETURNING and the INSERT of the sums are one statement, and a row another
-- transaction deleted first is not returned here. The advisory lock only spares the work.
CREATE OR REPLACE FUNCTION csmcp.portfolio_compact() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtext('csmcp.portfolio_compact')) THEN
        RETURN;
    END IF;
    WITH k AS (SELECT tier, lifecycle_stage FROM portfolio_counts GROUP BY 1, 2 HAVING count(*) > 1),
    d AS (DELETE FROM portfolio_counts p USING k
          WHERE p.tier = k.tier AND p.lifecycle_stage = k.lifecycle_stage
          RETURNING p.tier, p.lifecycle_stage, p.accounts, p.health_sum, p.arr)
    INSERT INTO portfolio_counts (tier, lifecycle_stage, accounts, health_sum, arr)
    SELECT tier, lifecycle_stage, sum(accounts), sum(health_sum), sum(arr) FROM d GROUP BY 1, 2
    HAVING sum(accounts) <> 0 OR sum(health_sum) <> 0 OR sum(arr) <> 0;
    WITH k AS (SELECT day, tier, lifecycle_stage FROM portfolio_usage GROUP BY 1, 2, 3 HAVING count(*) > 1),
    d AS (DELETE FROM portfolio_usage p USING k
          WHERE p.day = k.day AND p.tier = k.tier AND p.lifecycle_stage = k.lifecycle_stage
          RETURNING p.day, p.tier, p.lifecycle_stage, p.active_users)
    INSERT INTO portfolio_usage (day, tier, lifecycle_stage, active_users)
    SELECT day, tier, lifecycle_stage, sum(active_users) FROM d GROUP BY 1, 2, 3
    HAVING sum(active_users) <> 0;
    -- adoption rows per tier and first-use day (usage_tier_adoption.sql, migration 0291)
    WITH k AS (SELECT tier, day FROM adoption_tier_daily GROUP BY 1, 2 HAVING count(*) > 1),
    d AS (DELETE FROM adoption_tier_daily p USING k WHERE p.tier = k.tier AND p.day = k.day
          RETURNING p.tier, p.day, p.n)
    INSERT INTO adoption_tier_daily (tier, day, n)
    SELECT tier, day, sum(n) FROM d GROUP BY 1, 2 HAVING sum(n) <> 0;
END $$;

-- Called by a writer after inserting n delta rows whose last id is last_id: compacts when the
-- ids crossed a multiple of 256 (so about every 256 deltas, without counting rows).
CREATE OR REPLACE FUNCTION csmcp.portfolio_after_write(last_id bigint, n bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF n > 0 AND (n >= 256 OR last_id % 256 < n) THEN
        PERFORM csmcp.portfolio_compact();
    END IF;
END $$;

-- Differences between the maintained totals and a from-scratch computation (no rows = they
-- agree). For tests and operators; reads everything, so not for the request path.
CREATE OR REPLACE FUNCTION csmcp.portfolio_check() RETURNS TABLE (what text, key text, maintained numeric, actual numeric)
LANGUAGE sql STABLE AS $$
    WITH m AS (SELECT tier, lifecycle_stage, sum(accounts) AS n, sum(health_sum) AS h, sum(arr) AS v
               FROM portfolio_counts GROUP BY 1, 2),
    a AS (SELECT a.tier, a.lifecycle_stage, count(*)::numeric AS n, sum(a.health_score)::numeric AS h,
                 coalesce(sum(c.contract_value), 0) AS v
          FROM accounts a LEFT JOIN contracts c ON c.client_id = a.client_id AND c.status = 'active'
          GROUP BY 1, 2),
    j AS (SELECT coalesce(m.tier, a.tier) || '/' || coalesce(m.lifecycle_stage, a.lifecycle_stage) AS key,
                 coalesce(m.n, 0) AS mn, coalesce(a.n, 0) AS an, coalesce(m.h, 0) AS mh, coalesce(a.h, 0) AS ah,
                 coalesce(m.v, 0) AS mv, coalesce(a.v, 0) AS av
          FROM m FULL JOIN a ON a.tier = m.tier AND a.lifecycle_stage = m.lifecycle_stage),
    mu AS (SELECT day, tier, lifecycle_stage, sum(active_users) AS au FROM portfolio_usage GROUP BY 1, 2, 3),
    au AS (SELECT u.day, a.tier, a.lifecycle_stage, sum(u.active_users)::numeric AS au
           FROM usage_daily u JOIN accounts a USING (client_id) GROUP BY 1, 2, 3)
    SELECT 'accounts', key, mn, an FROM j WHERE mn <> an
    UNION ALL SELECT 'health_sum', key, mh, ah FROM j WHERE mh <> ah
    UNION ALL SELECT 'arr', key, mv, av FROM j WHERE mv <> av
    UNION ALL
    SELECT 'active_users', coalesce(mu.day, au.day) || '/' || coalesce(mu.tier, au.tier) || '/'
                           || coalesce(mu.lifecycle_stage, au.lifecycle_stage),
           coalesce(mu.au, 0), coalesce(au.au, 0)
    FROM mu FULL JOIN au ON au.day = mu.day AND au.tier = mu.tier AND au.lifecycle_stage = mu.lifecycle_stage
    WHERE coalesce(mu.au, 0) <> coalesce(au.au, 0)
    UNION ALL   -- the running usage totals per account (usage_cum.sql, migration 0140)
    SELECT 'usage_cum', x.client_id || '/' || x.day, x.maintained_users, x.actual_users FROM csmcp.usage_cum_check() x
    UNION ALL   -- the per-feature usage rollups (usage_feature_agg.sql, migration 0142)
    SELECT x.what, x.key || ': ' || coalesce(x.maintained, '-') || ' vs ' || coalesce(x.actual, '-'), NULL, NULL
    FROM csmcp.usage_feature_agg_check() x
    UNION ALL   -- completed lifecycle stays per account (lifecycle_stay.sql, migration 0155)
    SELECT 'lifecycle_stay', y.client_id || '/' || y.stage, y.maintained_days, y.actual_days FROM csmcp.lifecycle_stay_check() y
    UNION ALL   -- per-stage stay totals and transitions per day (lifecycle_stay.sql, migration 0290)
    SELECT y.what, y.key || ': ' || coalesce(y.maintained, '-') || ' vs ' || coalesce(y.actual, '-'), NULL, NULL
    FROM csmcp.lifecycle_rollups_check() y
    UNION ALL   -- NPS responses per day (nps_daily.sql, migration 0156)
    SELECT 'nps_daily', z.day || ': ' || z.maintained || ' vs ' || z.actual, NULL, NULL FROM csmcp.nps_daily_check() z
    UNION ALL   -- CSAT/CES responses per day (csat_daily.sql, migration 0159)
    SELECT 'csat_daily', w.day || '/' || w.survey_type || ': ' || w.maintained || ' vs ' || w.actual, NULL, NULL
    FROM csmcp.csat_daily_check() w
    UNION ALL   -- the running usage moments per account (usage_moments.sql, migration 0143)
    SELECT 'usage_moments', x.client_id || '/' || x.day || ': ' || coalesce(x.maintained, '-') || ' vs ' || coalesce(x.actual, '-'),
           NULL, NULL
    FROM csmcp.usage_moments_check() x
    UNION ALL   -- the data-derived adoption milestones per account (usage_milestones.sql, migration 0144)
    SELECT 'adoption_derived', x.client_id || ': ' || coalesce(x.maintained, '-') || ' vs ' || coalesce(x.actual, '-'), NULL, NULL
    FROM csmcp.adoption_derived_check() x
    UNION ALL   -- support tickets per agent, priority and day (support/sup_agent_daily.sql, migration 0181)
    SELECT 'sup_agent_daily', s.day || '/' || s.agent || '/' || s.priority || ': ' || coalesce(s.stored::text, '-') || ' vs '
           || coalesce(s.scratch::text, '-'), NULL, NULL
    FROM csmcp.sup_agent_daily_check() s
    UNION ALL   -- resolve_account's texts and trigrams (scorecards/account_search.sql, migration 0182)
    SELECT 'account_search', x.client_id || '/' || x.src || '/' || x.contact_id || ': ' || coalesce(x.stored, '-') || ' vs '
           || coalesce(x.scratch, '-'), NULL, NULL
    FROM csmcp.account_search_check() x
    UNION ALL   -- the cross-sell ownership rows (expansion/rollups.sql, migration 0171)
    SELECT 'crosssell_own', x.client_id || ': ' || coalesce(x.got, '-') || ' vs ' || coalesce(x.want, '-'), NULL, NULL
    FROM csmcp.crosssell_own_check() x
    UNION ALL   -- the cross-sell peer counts and candidates (expansion/rollups.sql, migration 0150; session 7, helper valuex)
    SELECT x.tab, x.k || ': ' || coalesce(x.got, '-') || ' vs ' || coalesce(x.want, '-'), NULL, NULL
    FROM csmcp.crosssell_cand_check() x
    UNION ALL   -- the forecast inputs per active contract (expansion/rollups.sql, migration 0172)
    SELECT 'forecast_inputs', x.contract_id || ': ' || coalesce(x.got, '-') || ' vs ' || coalesce(x.want, '-'), NULL, NULL
    FROM csmcp.forecast_inputs_check() x
    UNION ALL   -- the latest health components per account (expansion/rollups.sql, migration 0173)
    SELECT 'account_health_latest', x.client_id || ': ' || coalesce(x.got, '-') || ' vs ' || coalesce(x.want, '-'), NULL, NULL
    FROM csmcp.account_health_latest_check() x
    UNION ALL   -- the revenue events' balance per account (expansion/rollups.sql, migration 0174)
    SELECT 'revenue_balance', x.client_id || ': ' || coalesce(x.got, '-') || ' vs ' || coalesce(x.want, '-'), NULL, NULL
    FROM csmcp.revenue_balance_check() x
    UNION ALL   -- communications / tickets per day and per account (engage_contacts.sql, migration 0146)
    SELECT x.what, x.key || ': ' || coalesce(x.maintained, '-') || ' vs ' || coalesce(x.actual, '-'), NULL, NULL
    FROM csmcp.engage_contacts_check() x
    UNION ALL   -- the per-account milestones and their histogram (usage_milestones_account.sql, migration 0148)
    SELECT 'adoption_account', x.client_id || ': ' || coalesce(x.maintained, '-') || ' vs ' || coalesce(x.actual, '-'), NULL, NULL
    FROM csmcp.adoption_account_check() x
    UNION ALL   -- analyze_engagement_patterns' day tables (engage_window.sql, migration 0147)
    SELECT 'engage_window', x.v_days || '/' || x.t || '/' || x.client_id || ': ' || coalesce(x.maintained, '-') || ' vs '
                            || coalesce(x.actual, '-'), NULL, NULL
    FROM csmcp.engage_window_check() x
    UNION ALL   -- adoption rows per tier and first-use day (usage_tier_adoption.sql, migration 0291; session 8, helper tierx)
    SELECT 'adoption_tier_daily', x.tier || '/' || x.day, x.maintained, x.actual FROM csmcp.adoption_tier_check() x
$$;

-- health/track_feature_adoption.sql - tool track_feature_adoption. Across accounts the figures
-- come from the per-feature rollups (usage_feature_agg / usage_feature_pair, migration 0142,
-- kept exact by triggers in the writing transaction: at most one row per feature and day of the
-- period); for one account from that account's usage_feature_daily rows (primary key range).
-- csmcp.track_feature_adoption_scratch below is the from-scratch computation over
-- usage_feature_daily (the tool before issue 21); the equality tests compare the two.
CREATE OR REPLACE FUNCTION csmcp.tool_track_feature_adoption(args jsonb, principal text)
RETURNS jsonb LANGUAGE plpgsql STABLE SET jit = off AS $$
DECLARE
    t date := csmcp.today();
    v_client text := csmcp.arg_text(args, 'client_id', NULL);
    v_feature text := csmcp.arg_text(args, 'feature_id', NULL);
    v_days integer := csmcp.arg_int(args, 'time_period_days', 90, 1, 365);
    v_thr numeric := csmcp.arg_num(args, 'adoption_threshold', 0.2, 0, 1);
    n_accounts integer;
    n_features integer;
    feats jsonb;
BEGIN
    IF v_client IS NOT NULL THEN PERFORM csmcp.require_account(v_client); END IF;
    IF v_feature IS NOT NULL AND NOT EXISTS (SELECT 1 FROM features WHERE feature_id = v_feature) THEN
        RAISE EXCEPTION 'feature not found: %', v_feature USING ERRCODE = 'P0002';
    END IF;
    IF v_client IS NULL THEN
        SELECT count(*) INTO n_accounts FROM accounts WHERE status <> 'churned';
    ELSE
        n_accounts := 1;
    END IF;
    SELECT count(*) INTO n_features FROM features;

    WITH usage AS (
        -- across accounts: the rollups (accounts_using = pairs whose last day lies in the
        -- period, plus pairs with a later last day that also have a row in the period)
        SELECT g.feature_id,
               coalesce(g.lp, 0) + (SELECT count(*) FROM usage_feature_pair fp
                                    WHERE fp.feature_id = g.feature_id AND fp.last_day > t
                                      AND EXISTS (SELECT 1 FROM usage_feature_daily u WHERE u.client_id = fp.client_id
                                                  AND u.feature_id = fp.feature_id AND u.day > t - v_days AND u.day <= t)) AS accounts_using,
               g.days_used, g.events, round(g.us::numeric / g.n, 2) AS avg_daily_users
        FROM (SELECT a.feature_id, sum(a.last_pairs) AS lp, count(*) AS days_used, sum(a.events) AS events,
                     sum(a.users) AS us, sum(a.rows) AS n
              FROM usage_feature_agg a
              WHERE v_client IS NULL AND a.day > t - v_days AND a.day <= t AND a.rows > 0
                AND (v_feature IS NULL OR a.feature_id = v_feature)
              GROUP BY 1) g
        UNION ALL
        -- one account: its rows of the period
        SELECT u.feature_id, 1, count(*), sum(u.events), round(sum(u.users)::numeric / count(*), 2)
        FROM usage_feature_daily u
        WHERE v_client IS NOT NULL AND u.client_id = v_client AND u.day > t - v_days AND u.day <= t
          AND (v_feature IS NULL OR u.feature_id = v_feature)
        GROUP BY 1
    ),
    rows AS (
        SELECT f.feature_id, f.name, f.category, f.is_core, coalesce(u.accounts_using, 0) AS accounts_using,
               coalesce(u.days_used, 0) AS days_used, coalesce(u.events, 0) AS events, u.avg_daily_users,
               round(CASE WHEN v_client IS NULL THEN coalesce(u.accounts_using, 0)::numeric / greatest(n_accounts, 1)
                          ELSE coalesce(u.days_used, 0)::numeric / v_days END, 3) AS rate,
               (SELECT count(*) FROM feature_adoption fa WHERE fa.feature_id = f.feature_id AND fa.first_used_on > t - v_days
                  AND (v_client IS NULL OR fa.client_id = v_client)) AS new_adopters
        FROM features f LEFT JOIN usage u USING (feature_id)
        WHERE v_feature IS NULL OR f.feature_id = v_feature
    )
    SELECT jsonb_agg(jsonb_build_object('feature_id', feature_id, 'name', name, 'category', category, 'is_core', is_core,
                                        'accounts_using', accounts_using, 'days_used', days_used, 'events', events,
                                        'avg_daily_users', avg_daily_users, 'adoption_rate', rate, 'new_adopters', new_adopters,
                                        'status', CASE WHEN rate >= v_thr THEN 'adopted' ELSE 'underutilized' END)
                     ORDER BY rate DESC, events DESC, feature_id)
    INTO feats FROM rows;
    feats := coalesce(feats, '[]');

    RETURN jsonb_build_object(
        'scope', jsonb_build_object('client_id', v_client, 'feature_id', v_feature, 'time_period_days', v_days,
                                    'accounts_analyzed', n_accounts, 'features_available', n_features,
                                    'adoption_threshold', v_thr,
                                    'rate_definition', CASE WHEN v_client IS NULL THEN 'accounts using the feature / accounts analysed'
                                                            ELSE 'days the feature was used / days in the period' END),
        'overall_adoption_rate', (SELECT round(avg((x->>'adoption_rate')::numeric), 3) FROM jsonb_array_elements(feats) x),
        'features', feats,
        'underutilized_features', (SELECT coalesce(jsonb_agg(x->'feature_id'), '[]') FROM jsonb_array_elements(feats) x
                                   WHERE x->>'status' = 'underutilized'),
        'high_value_features', (SELECT coalesce(jsonb_agg(y.fid), '[]') FROM
                                  (SELECT x->'feature_id' AS fid FROM jsonb_array_elements(feats) x
                                   WHERE (x->>'events')::bigint > 0 LIMIT 3) y));
END $$;

-- The from-scratch computation (one scan of the period's usage_feature_daily rows with two
-- grouping sets), kept for the equality tests and for operators: its answer must equal the
-- tool's on every argument.
CREATE OR REPLACE FUNCTION csmcp.track_feature_adoption_scratch(args jsonb, principal text)
RETURNS jsonb LANGUAGE plpgsql STABLE SET work_mem = '16MB' AS $$
DECLARE
    t date := csmcp.today();
    v_client text := csmcp.arg_text(args, 'client_id', NULL);
    v_feature text := csmcp.arg_text(args, 'feature_id', NULL);
    v_days integer := csmcp.arg_int(args, 'time_period_days', 90, 1, 365);
    v_thr numeric := csmcp.arg_num(args, 'adoption_threshold', 0.2, 0, 1);
    n_accounts integer;
    n_features integer;
    feats jsonb;
BEGIN
    IF v_client IS NOT NULL THEN PERFORM csmcp.require_account(v_client); END IF;
    IF v_feature IS NOT NULL AND NOT EXISTS (SELECT 1 FROM features WHERE feature_id = v_feature) THEN
        RAISE EXCEPTION 'feature not found: %', v_feature USING ERRCODE = 'P0002';
    END IF;
    SELECT count(*) INTO n_accounts FROM accounts WHERE (v_client IS NULL AND status <> 'churned') OR client_id = v_client;
    SELECT count(*) INTO n_features FROM features;

    -- One pass over the window with two grouping sets (per feature and account, per feature
    -- and day) instead of a materialised CTE of every row read twice.
    WITH g AS (
        SELECT feature_id, client_id, day, GROUPING(client_id) AS per_day,
               sum(events) AS ev, sum(users)::numeric AS u, count(*) AS n
        FROM usage_feature_daily
        WHERE day > t - v_days AND day <= t AND (v_client IS NULL OR client_id = v_client)
          AND (v_feature IS NULL OR feature_id = v_feature)
        GROUP BY GROUPING SETS ((feature_id, client_id), (feature_id, day))
    ),
    by_account AS (
        SELECT feature_id, count(*) AS accounts_using, sum(ev) AS events FROM g WHERE per_day = 0 GROUP BY 1
    ),
    by_day AS (
        SELECT feature_id, count(*) AS days_used, round(sum(u) / sum(n), 2) AS avg_daily_users
        FROM g WHERE per_day = 1 GROUP BY 1
    ),
    usage AS (
        SELECT a.feature_id, a.accounts_using, d.days_used, a.events, d.avg_daily_users
        FROM by_account a JOIN by_day d USING (feature_id)
    ),
    rows AS (
        SELECT f.feature_id, f.name, f.category, f.is_core, coalesce(u.accounts_using, 0) AS accounts_using,
               coalesce(u.days_used, 0) AS days_used, coalesce(u.events, 0) AS events, u.avg_daily_users,
               round(CASE WHEN v_client IS NULL THEN coalesce(u.accounts_using, 0)::numeric / greatest(n_accounts, 1)
                          ELSE coalesce(u.days_used, 0)::numeric / v_days END, 3) AS rate,
               (SELECT count(*) FROM feature_adoption fa WHERE fa.feature_id = f.feature_id AND fa.first_used_on > t - v_days
                  AND (v_client IS NULL OR fa.client_id = v_client)) AS new_adopters
        FROM features f LEFT JOIN usage u USING (feature_id)
        WHERE v_feature IS NULL OR f.feature_id = v_feature
    )
    SELECT jsonb_agg(jsonb_build_object('feature_id', feature_id, 'name', name, 'category', category, 'is_core', is_core,
                                        'accounts_using', accounts_using, 'days_used', days_used, 'events', events,
                                        'avg_daily_users', avg_daily_users, 'adoption_rate', rate, 'new_adopters', new_adopters,
                                        'status', CASE WHEN rate >= v_thr THEN 'adopted' ELSE 'underutilized' END)
                     ORDER BY rate DESC, events DESC, feature_id)
    INTO feats FROM rows;
    feats := coalesce(feats, '[]');

    RETURN jsonb_build_object(
        'scope', jsonb_build_object('client_id', v_client, 'feature_id', v_feature, 'time_period_days', v_days,
                                    'accounts_analyzed', n_accounts, 'features_available', n_features,
                                    'adoption_threshold', v_thr,
                                    'rate_definition', CASE WHEN v_client IS NULL THEN 'accounts using the feature / accounts analysed'
                                                            ELSE 'days the feature was used / days in the period' END),
        'overall_adoption_rate', (SELECT round(avg((x->>'adoption_rate')::numeric), 3) FROM jsonb_array_elements(feats) x),
        'features', feats,
        'underutilized_features', (SELECT coalesce(jsonb_agg(x->'feature_id'), '[]') FROM jsonb_array_elements(feats) x
                                   WHERE x->>'status' = 'underutilized'),
        'high_value_features', (SELECT coalesce(jsonb_agg(y.fid), '[]') FROM
                                  (SELECT x->'feature_id' AS fid FROM jsonb_array_elements(feats) x
                                   WHERE (x->>'events')::bigint > 0 LIMIT 3) y));
END $$;

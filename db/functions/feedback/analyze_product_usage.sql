-- analyze_product_usage: one account's product usage over a period from the usage rollups:
-- events, active users, feature utilisation and adoption against the feature catalogue, active
-- user share, trend, usage health score (reference §3.6), risks and expansion heuristics (§3.5).
-- The benchmark against the tier's other accounts comes from the maintained per-tier counts
-- (portfolio_counts, adoption_tier_daily: migration 0291); csmcp.analyze_product_usage_scratch
-- below computes it from every peer's adoption rows (the tool before 0291) for the equality tests.

-- The benchmark object from the tier's peers (number, mean adopted features) and the account's
-- adoption rate, shared by the tool and its from-scratch reference.
CREATE OR REPLACE FUNCTION csmcp.usage_benchmark(p_tier text, p_peers bigint, p_mean numeric, p_adopt numeric, p_catalogue integer)
RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_build_object('tier', p_tier, 'peer_accounts', p_peers,
                              'mean_feature_adoption_rate', round(p_mean / nullif(p_catalogue, 0), 4),
                              'comparison', CASE WHEN p_catalogue = 0 OR p_mean = 0 THEN NULL
                                                 WHEN p_adopt > 1.05 * p_mean / p_catalogue THEN 'above'
                                                 WHEN p_adopt < 0.95 * p_mean / p_catalogue THEN 'below' ELSE 'at' END)
$$;

CREATE OR REPLACE FUNCTION csmcp.tool_analyze_product_usage(args jsonb, principal text)
-- no JIT: at 100,000 accounts the plans' costs pass jit_above_cost and compiling took longer than
-- the query (issue 21: 1.5 s of a hierarchy rollup that runs in 70 ms)
RETURNS jsonb LANGUAGE plpgsql STABLE SET jit = off AS $$
DECLARE
    acc accounts;
    p record;
    v_len integer;
    v_features boolean := csmcp.arg_bool(args, 'include_feature_breakdown', true);
    v_users boolean := csmcp.arg_bool(args, 'include_user_segmentation', true);
    v_adoption boolean := csmcp.arg_bool(args, 'include_adoption_analysis', true);
    v_bench boolean := csmcp.arg_bool(args, 'compare_to_benchmark', true);
    v_benchmark jsonb;
    v_peers bigint;
    v_peer_rows bigint;
    v_catalogue integer;
    v_events bigint;
    v_prev_events bigint;
    v_peak integer;
    v_distinct integer;
    v_active integer;
    v_active_src text;
    v_seats integer;
    v_base integer;
    v_base_src text;
    v_used integer;
    v_adopted integer;
    v_util numeric;
    v_adopt numeric;
    v_pct numeric;
    v_growth numeric;
    v_trend text;
    v_mult numeric;
    v_score numeric;
    v_power integer;
    v_under jsonb;
    v_top jsonb;
    v_risks jsonb;
    v_opps jsonb;
BEGIN
    acc := csmcp.require_account(csmcp.arg_text(args, 'client_id', NULL));
    p := csmcp.fb_period(args, 30);
    v_len := p.period_end - p.period_start + 1;
    SELECT count(*) INTO v_catalogue FROM features;

    SELECT coalesce(sum(events) FILTER (WHERE day >= p.period_start), 0), coalesce(sum(events) FILTER (WHERE day < p.period_start), 0),
           coalesce(max(active_users) FILTER (WHERE day >= p.period_start), 0)
      INTO v_events, v_prev_events, v_peak
      FROM usage_daily WHERE client_id = acc.client_id AND day BETWEEN p.period_start - v_len AND p.period_end;
    SELECT count(DISTINCT user_id), count(*) FILTER (WHERE n * 2 >= v_len)
      INTO v_distinct, v_power
      FROM (SELECT user_id, count(*) AS n FROM usage_daily_users
            WHERE client_id = acc.client_id AND day BETWEEN p.period_start AND p.period_end GROUP BY user_id) u;
    IF v_distinct > 0 THEN v_active := v_distinct; v_active_src := 'distinct_users';
    ELSE v_active := v_peak; v_active_src := 'peak_daily_active_users'; v_power := NULL; END IF;

    SELECT max(licensed_seats) INTO v_seats FROM contracts WHERE client_id = acc.client_id AND status = 'active';
    IF v_seats IS NOT NULL THEN v_base := v_seats; v_base_src := 'licensed_seats';
    ELSE
        SELECT coalesce(max(active_users), 0) INTO v_base FROM usage_daily
         WHERE client_id = acc.client_id AND day BETWEEN p.period_end - 89 AND p.period_end;
        v_base := greatest(v_base, v_active); v_base_src := 'peak_daily_active_users_90d';
    END IF;

    SELECT count(DISTINCT feature_id) INTO v_used FROM usage_feature_daily
     WHERE client_id = acc.client_id AND day BETWEEN p.period_start AND p.period_end AND events > 0;
    SELECT count(*) INTO v_adopted FROM feature_adoption WHERE client_id = acc.client_id AND first_used_on <= p.period_end;
    v_util := CASE WHEN v_catalogue > 0 THEN v_used::numeric / v_catalogue ELSE 0 END;
    v_adopt := CASE WHEN v_catalogue > 0 THEN v_adopted::numeric / v_catalogue ELSE 0 END;
    v_pct := CASE WHEN v_base > 0 THEN least(v_active::numeric / v_base, 1) ELSE 0 END;

    IF v_prev_events > 0 THEN
        v_growth := (v_events - v_prev_events)::numeric / v_prev_events * 100;
        v_trend := CASE WHEN v_growth > 5 THEN 'up' WHEN v_growth < -5 THEN 'down' ELSE 'flat' END;
    ELSE v_trend := CASE WHEN v_events > 0 THEN 'up' ELSE 'flat' END;
    END IF;
    v_mult := CASE v_trend WHEN 'up' THEN 1.1 WHEN 'down' THEN 0.9 ELSE 1.0 END;
    v_score := round(least((v_util * 100 * 0.3 + v_adopt * 100 * 0.3 + v_pct * 100 * 0.4) * v_mult, 100), 1);

    SELECT coalesce(jsonb_agg(jsonb_build_object('feature_id', fa.feature_id, 'name', f.name, 'first_used_on', fa.first_used_on)
                              ORDER BY fa.feature_id), '[]')
      INTO v_under
      FROM feature_adoption fa JOIN features f USING (feature_id)
     WHERE fa.client_id = acc.client_id AND fa.first_used_on < p.period_start
       AND NOT EXISTS (SELECT 1 FROM usage_feature_daily u WHERE u.client_id = acc.client_id AND u.feature_id = fa.feature_id
                          AND u.day BETWEEN p.period_start AND p.period_end AND u.events > 0);
    IF v_features THEN
        SELECT coalesce(jsonb_agg(jsonb_build_object('feature_id', feature_id, 'name', name, 'events', ev, 'peak_daily_users', pu,
                                                     'share_of_events', CASE WHEN v_events > 0 THEN round(100.0 * ev / v_events, 1) END)
                                  ORDER BY ev DESC, feature_id), '[]')
          INTO v_top
          FROM (SELECT u.feature_id, f.name, sum(u.events) AS ev, max(u.users) AS pu
                FROM usage_feature_daily u JOIN features f USING (feature_id)
                WHERE u.client_id = acc.client_id AND u.day BETWEEN p.period_start AND p.period_end AND u.events > 0
                GROUP BY u.feature_id, f.name) q;
    END IF;

    IF v_bench THEN
        -- mean adopted features of the tier's other accounts = their adoption rows / their number
        -- (exactly avg(count per account, 0 without rows): avg is sum / count): the tier's rows
        -- up to the end minus this account's own, a range of one tier's days instead of ~33,000
        -- per-peer index probes at 100,000 accounts (issue 21)
        SELECT coalesce(sum(accounts), 0) - 1 INTO v_peers FROM portfolio_counts WHERE tier = acc.tier;
        SELECT coalesce(sum(n), 0) - v_adopted INTO v_peer_rows FROM adoption_tier_daily
         WHERE tier = acc.tier AND day <= p.period_end;
        v_benchmark := csmcp.usage_benchmark(acc.tier, v_peers, v_peer_rows::numeric / nullif(v_peers, 0), v_adopt, v_catalogue);
    END IF;

    v_risks := to_jsonb(ARRAY(SELECT x FROM unnest(ARRAY[
        CASE WHEN v_trend = 'down' THEN jsonb_build_object('risk', 'usage_declining', 'severity', 'high',
                                                           'detail', format('events %s%% versus the previous %s days', round(v_growth, 1), v_len)) END,
        CASE WHEN 1 - v_pct > 0.2 THEN jsonb_build_object('risk', 'inactive_users', 'severity', 'medium',
                                                          'detail', format('%s%% of %s not active', round((1 - v_pct) * 100, 1), v_base_src)) END,
        CASE WHEN v_util < 0.3 THEN jsonb_build_object('risk', 'low_feature_utilization', 'severity', 'medium',
                                                       'detail', format('%s of %s features used', v_used, v_catalogue)) END]) x WHERE x IS NOT NULL));
    v_opps := to_jsonb(ARRAY(SELECT x FROM unnest(ARRAY[
        CASE WHEN jsonb_array_length(v_under) > 0 THEN jsonb_build_object('type', 'feature_upgrade', 'estimated_value', 5000,
                  'reason', format('%s adopted feature(s) unused this period', jsonb_array_length(v_under))) END,
        CASE WHEN v_power > 5 THEN jsonb_build_object('type', 'tier_upgrade', 'estimated_value', 10000,
                  'reason', format('%s power users', v_power)) END]) x WHERE x IS NOT NULL));

    RETURN jsonb_build_object(
        'client_id', acc.client_id, 'client_name', acc.client_name,
        'period_start', p.period_start, 'period_end', p.period_end, 'period_days', v_len,
        'usage_analytics', jsonb_build_object(
            'total_usage_events', v_events, 'previous_period_events', v_prev_events,
            'active_users', v_active, 'active_users_source', v_active_src,
            'user_base', v_base, 'user_base_source', v_base_src,
            'power_users', v_power, 'inactive_users', greatest(v_base - v_active, 0),
            'unique_features_used', v_used, 'features_adopted', v_adopted, 'total_features_available', v_catalogue,
            'feature_utilization_rate', round(v_util, 4), 'feature_adoption_rate', round(v_adopt, 4),
            'active_user_pct', round(v_pct, 4), 'usage_trend', v_trend, 'usage_growth_rate', round(v_growth, 1)),
        'usage_health_score', v_score,
        'trend_multiplier', v_mult,
        'urgent_review', v_score < 60,
        'feature_breakdown', v_top,
        'user_segmentation', CASE WHEN v_users THEN jsonb_build_object(
            'active_users', v_active, 'power_users', v_power, 'inactive_users', greatest(v_base - v_active, 0),
            'inactive_pct', round((1 - v_pct) * 100, 1)) END,
        'underutilized_features', CASE WHEN v_adoption THEN v_under END,
        'benchmark', v_benchmark,
        'risk_indicators', v_risks,
        'opportunities', jsonb_build_object('items', v_opps,
                                            'estimated_arr_potential', (SELECT coalesce(sum((x->>'estimated_value')::int), 0) FROM jsonb_array_elements(v_opps) x)),
        'summary', format('%s, %s to %s: %s events, %s active users of %s, %s of %s features used, trend %s, usage health %s%s',
                          acc.client_name, p.period_start, p.period_end, v_events, v_active, v_base, v_used, v_catalogue, v_trend, v_score,
                          CASE WHEN v_score < 60 THEN ' (urgent review)' ELSE '' END));
END $$;

-- The from-scratch reference: the tool's answer with the benchmark computed as before migration
-- 0291, from every peer account's adoption rows; its answer must equal the tool's.
CREATE OR REPLACE FUNCTION csmcp.analyze_product_usage_scratch(args jsonb, principal text)
RETURNS jsonb LANGUAGE plpgsql STABLE SET jit = off AS $$
DECLARE
    r jsonb := csmcp.tool_analyze_product_usage(args || '{"compare_to_benchmark": false}', principal);
    acc accounts;
    v_end date := (r->>'period_end')::date;
    v_adopted integer := (r->'usage_analytics'->>'features_adopted')::integer;
    v_catalogue integer := (r->'usage_analytics'->>'total_features_available')::integer;
    b record;
BEGIN
    IF NOT csmcp.arg_bool(args, 'compare_to_benchmark', true) THEN
        RETURN r;
    END IF;
    SELECT * INTO acc FROM accounts WHERE client_id = r->>'client_id';
    SELECT count(*) AS peers, sum(x.n)::numeric / nullif(count(*), 0) AS mean
      INTO b
      FROM accounts a
      CROSS JOIN LATERAL (SELECT count(*) AS n FROM feature_adoption f
                          WHERE f.client_id = a.client_id AND f.first_used_on <= v_end) x
      WHERE a.tier = acc.tier AND a.client_id <> acc.client_id;
    RETURN jsonb_set(r, '{benchmark}', csmcp.usage_benchmark(acc.tier, b.peers, b.mean,
        CASE WHEN v_catalogue > 0 THEN v_adopted::numeric / v_catalogue ELSE 0 END, v_catalogue));
END $$;

-- 0005_health_tools.sql - health and segmentation tools (reference §1.4), over stored rows.

-- calculate_health_score: the model of 0003 plus weights, trend, risk, churn; stored as history.
CREATE OR REPLACE FUNCTION csmcp.tool_calculate_health_score(args jsonb, principal text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    acc accounts := csmcp.require_account(csmcp.arg_text(args, 'client_id', NULL));
    v_model text := csmcp.arg_text(args, 'scoring_model', 'weighted_composite',
                                   ARRAY['weighted_composite', 'ml_predictive', 'custom']);
    v_lookback integer := csmcp.arg_int(args, 'lookback_period_days', 30, 1, 365);
    v_threshold numeric := csmcp.arg_num(args, 'risk_threshold', 60, 0, 100);
    v_pred boolean := csmcp.arg_bool(args, 'include_predictions', true);
    w jsonb := args -> 'component_weights';
    wu numeric := 0.35; we numeric := 0.25; ws numeric := 0.15; wsat numeric := 0.15; wp numeric := 0.10;
    comp jsonb;
    u integer; e integer; s integer; sat numeric; p integer;
    score integer; prev integer; change integer; trend text; risk text; churn numeric;
    churn_level text;
    indicators jsonb := '[]'; alerts jsonb := '[]'; actions jsonb := '[]';
    factors jsonb; opps jsonb;
    hs health_scores;
    k text;
BEGIN
    IF v_model = 'custom' AND (w IS NULL OR jsonb_typeof(w) <> 'object') THEN
        PERFORM csmcp.invalid('scoring_model custom requires component_weights');
    END IF;
    IF w IS NOT NULL AND w <> 'null'::jsonb THEN
        IF v_model <> 'custom' THEN
            PERFORM csmcp.invalid('component_weights are only used with scoring_model custom');
        END IF;
        FOR k IN SELECT jsonb_object_keys(w) LOOP
            IF k NOT IN ('usage_weight', 'engagement_weight', 'support_weight', 'satisfaction_weight', 'payment_weight') THEN
                PERFORM csmcp.invalid('unknown weight ' || k || '; use usage_weight, engagement_weight, support_weight, satisfaction_weight, payment_weight');
            END IF;
        END LOOP;
        wu := csmcp.arg_num(w, 'usage_weight', 0, 0, 1);
        we := csmcp.arg_num(w, 'engagement_weight', 0, 0, 1);
        ws := csmcp.arg_num(w, 'support_weight', 0, 0, 1);
        wsat := csmcp.arg_num(w, 'satisfaction_weight', 0, 0, 1);
        wp := csmcp.arg_num(w, 'payment_weight', 0, 0, 1);
        IF abs(wu + we + ws + wsat + wp - 1) > 0.01 THEN
            PERFORM csmcp.invalid(format('component weights must sum to 1 (+/- 0.01); they sum to %s', wu + we + ws + wsat + wp));
        END IF;
    END IF;

    -- Serialize concurrent calculations of one account so "previous score" is well defined.
    PERFORM 1 FROM accounts WHERE client_id = acc.client_id FOR UPDATE;
    comp := csmcp.health_components(acc.client_id, v_lookback);
    u := (comp->>'usage')::integer; e := (comp->>'engagement')::integer; s := (comp->>'support')::integer;
    sat := (comp->>'satisfaction')::numeric; p := (comp->>'payment')::integer;
    score := round(wu * u + we * e + ws * s + wsat * sat + wp * p)::integer;
    score := greatest(0, least(100, score));

    SELECT overall_score INTO prev FROM health_scores WHERE client_id = acc.client_id
    ORDER BY calculated_at DESC, score_id DESC LIMIT 1;
    change := score - prev;
    trend := CASE WHEN change > 3 THEN 'improving' WHEN change < -3 THEN 'declining' ELSE 'stable' END;
    risk := csmcp.risk_level(score);
    churn := csmcp.churn_probability(score);
    churn_level := CASE WHEN churn < 0.25 THEN 'low' WHEN churn < 0.50 THEN 'medium' WHEN churn < 0.75 THEN 'high' ELSE 'critical' END;

    INSERT INTO health_scores (client_id, usage_score, engagement_score, support_score, satisfaction_score, payment_score,
                               usage_weight, engagement_weight, support_weight, satisfaction_weight, payment_weight,
                               overall_score, score_change, trend, risk_level, churn_probability, lookback_days,
                               scoring_model, calculated_by)
    VALUES (acc.client_id, u, e, s, sat, p, wu, we, ws, wsat, wp, score, change, trend, risk, churn, v_lookback,
            v_model, coalesce(principal, 'anonymous'))
    RETURNING * INTO hs;
    UPDATE accounts SET health_score = score, health_trend = trend, updated_at = now() WHERE client_id = acc.client_id;

    IF e < 70 THEN indicators := indicators || jsonb_build_object('indicator', 'risk_low_engagement',
        'severity', CASE WHEN e < 60 THEN 'high' ELSE 'medium' END, 'value', e, 'threshold', 70); END IF;
    IF u < 75 THEN indicators := indicators || jsonb_build_object('indicator', 'risk_low_usage',
        'severity', CASE WHEN u < 65 THEN 'high' ELSE 'medium' END, 'value', u, 'threshold', 75); END IF;
    IF s < 80 THEN indicators := indicators || jsonb_build_object('indicator', 'risk_support_issues',
        'severity', 'medium', 'value', s, 'threshold', 80); END IF;
    IF trend = 'declining' THEN indicators := indicators || jsonb_build_object('indicator', 'risk_declining_health',
        'severity', 'high', 'value', change, 'threshold', -3); END IF;
    INSERT INTO risk_indicators (client_id, score_id, indicator, severity, current_value, threshold)
    SELECT acc.client_id, hs.score_id, x->>'indicator', x->>'severity', (x->>'value')::numeric, (x->>'threshold')::numeric
    FROM jsonb_array_elements(indicators) x;

    IF score < v_threshold THEN alerts := alerts || jsonb_build_object('type', 'below_risk_threshold',
        'severity', CASE WHEN score < 50 THEN 'high' ELSE 'medium' END,
        'message', format('health score %s is below the risk threshold %s', score, v_threshold)); END IF;
    IF trend = 'declining' THEN alerts := alerts || jsonb_build_object('type', 'declining_trend', 'severity', 'high',
        'message', format('health score fell by %s points', -change)); END IF;
    IF churn > 0.60 THEN alerts := alerts || jsonb_build_object('type', 'churn_risk', 'severity', 'critical',
        'message', format('churn probability %s', churn)); END IF;
    IF jsonb_array_length(indicators) >= 3 THEN alerts := alerts || jsonb_build_object('type', 'multiple_risk_indicators',
        'severity', 'high', 'message', format('%s risk indicators', jsonb_array_length(indicators))); END IF;

    SELECT jsonb_agg(jsonb_build_object('component', c.name, 'score', c.score, 'weight', c.weight,
                                        'contribution', round(c.score * c.weight, 2),
                                        'impact', CASE WHEN c.score >= 80 THEN 'positive' WHEN c.score < 70 THEN 'negative' ELSE 'neutral' END)
                     ORDER BY c.ord)
    INTO factors
    FROM (VALUES (1, 'usage', u::numeric, wu), (2, 'engagement', e::numeric, we), (3, 'support', s::numeric, ws),
                 (4, 'satisfaction', sat, wsat), (5, 'payment', p::numeric, wp)) AS c(ord, name, score, weight);
    SELECT coalesce(jsonb_agg(jsonb_build_object('component', c.name, 'current_score', c.score,
                                                 'potential_health_impact', round((85 - c.score) * c.weight, 2),
                                                 'priority', CASE WHEN c.score < 70 THEN 'high' ELSE 'medium' END)
                              ORDER BY c.score, c.ord), '[]')
    INTO opps
    FROM (SELECT * FROM (VALUES (1, 'usage', u::numeric, wu), (2, 'engagement', e::numeric, we), (3, 'support', s::numeric, ws),
                                (4, 'satisfaction', sat, wsat), (5, 'payment', p::numeric, wp)) AS v(ord, name, score, weight)
          WHERE v.score < 85 ORDER BY v.score, v.ord LIMIT 3) c;

    IF score < 70 THEN actions := actions || to_jsonb('Schedule an urgent check-in and a root-cause analysis'::text); END IF;
    IF churn > 0.50 THEN actions := actions || to_jsonb('Escalate to an executive sponsor'::text); END IF;
    IF e < 70 THEN actions := actions || to_jsonb('Re-engage users: the account has not used the product recently'::text); END IF;
    IF u < 75 THEN actions := actions || to_jsonb('Drive adoption: active users are low against licensed seats'::text); END IF;
    IF s < 80 THEN actions := actions || to_jsonb('Review the open support issues with the support lead'::text); END IF;
    IF trend = 'improving' THEN actions := actions || to_jsonb('Maintain the momentum and look for expansion'::text); END IF;

    RETURN jsonb_build_object(
        'client_id', acc.client_id,
        'calculation_timestamp', hs.calculated_at,
        'score_id', hs.score_id,
        'scoring_model', v_model,
        'lookback_period_days', v_lookback,
        'current_health_score', score,
        'previous_health_score', prev,
        'score_change', change,
        'health_trend', trend,
        'risk_level', risk,
        'component_scores', jsonb_build_object('usage', u, 'engagement', e, 'support', s, 'satisfaction', sat, 'payment', p),
        'component_weights', jsonb_build_object('usage_weight', wu, 'engagement_weight', we, 'support_weight', ws,
                                                'satisfaction_weight', wsat, 'payment_weight', wp),
        'health_metrics', comp -> 'metrics',
        'risk_indicators', indicators,
        'churn_prediction', CASE WHEN v_pred THEN jsonb_build_object(
            'churn_probability', churn, 'churn_risk_level', churn_level,
            'predicted_churn_date', CASE WHEN churn > 0.50 THEN csmcp.today() + 120 END) END,
        'historical_scores', (SELECT jsonb_agg(jsonb_build_object('calculated_at', h.calculated_at, 'score', h.overall_score)
                                               ORDER BY h.calculated_at DESC, h.score_id DESC)
                              FROM (SELECT * FROM health_scores WHERE client_id = acc.client_id
                                    ORDER BY calculated_at DESC, score_id DESC LIMIT 12) h),
        'contributing_factors', factors,
        'improvement_opportunities', opps,
        'automated_alerts', alerts,
        'recommended_actions', actions);
END $$;

-- track_usage_engagement: DAU, events, sessions and features over a period, from the rollups.
CREATE OR REPLACE FUNCTION csmcp.tool_track_usage_engagement(args jsonb, principal text)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
    acc accounts := csmcp.require_account(csmcp.arg_text(args, 'client_id', NULL));
    d_end date := csmcp.arg_date(args, 'period_end', csmcp.today());
    d_start date := csmcp.arg_date(args, 'period_start', d_end - 29);
    v_gran text := csmcp.arg_text(args, 'granularity', 'daily', ARRAY['daily', 'weekly', 'monthly']);
    v_feat boolean := csmcp.arg_bool(args, 'include_feature_breakdown', true);
    c contracts := csmcp.active_contract(acc.client_id);
    ndays integer;
    m record;
    half integer;
    first_avg numeric; second_avg numeric; change numeric; direction text;
    weekday_avg numeric; weekend_avg numeric;
    series jsonb; features jsonb;
    alerts jsonb := '[]'; recs jsonb := '[]';
BEGIN
    IF d_end < d_start THEN PERFORM csmcp.invalid('period_end must not be before period_start'); END IF;
    ndays := d_end - d_start + 1;
    IF ndays > 366 THEN PERFORM csmcp.invalid('the period may span at most 365 days'); END IF;

    SELECT coalesce(sum(active_users), 0) AS user_days, coalesce(max(active_users), 0) AS peak,
           coalesce(sum(events), 0) AS events, coalesce(sum(session_minutes), 0) AS minutes,
           count(*) FILTER (WHERE events > 0) AS active_days
    INTO m FROM usage_daily WHERE client_id = acc.client_id AND day BETWEEN d_start AND d_end;

    half := ndays / 2;
    SELECT coalesce(sum(active_users) FILTER (WHERE day < d_start + half), 0)::numeric / greatest(half, 1),
           coalesce(sum(active_users) FILTER (WHERE day >= d_start + half), 0)::numeric / greatest(ndays - half, 1)
    INTO first_avg, second_avg FROM usage_daily WHERE client_id = acc.client_id AND day BETWEEN d_start AND d_end;
    change := CASE WHEN first_avg > 0 THEN round((second_avg - first_avg) / first_avg * 100, 1) END;
    direction := CASE WHEN first_avg = 0 AND second_avg > 0 THEN 'up' WHEN first_avg = 0 THEN 'flat'
                      WHEN change > 10 THEN 'up' WHEN change < -10 THEN 'down' ELSE 'flat' END;

    SELECT coalesce(avg(coalesce(u.active_users, 0)) FILTER (WHERE extract(isodow FROM g.d) < 6), 0),
           coalesce(avg(coalesce(u.active_users, 0)) FILTER (WHERE extract(isodow FROM g.d) >= 6), 0)
    INTO weekday_avg, weekend_avg
    FROM generate_series(d_start, d_end, interval '1 day') AS g(d)
    LEFT JOIN usage_daily u ON u.client_id = acc.client_id AND u.day = g.d::date;

    SELECT coalesce(jsonb_agg(jsonb_build_object('period', b.bucket, 'avg_daily_active_users', round(b.user_days::numeric / b.days, 2),
                                                 'events', b.events, 'session_minutes', b.minutes) ORDER BY b.bucket), '[]')
    INTO series FROM (
        SELECT date_trunc(CASE v_gran WHEN 'daily' THEN 'day' WHEN 'weekly' THEN 'week' ELSE 'month' END, g.d)::date AS bucket,
               count(*) AS days, coalesce(sum(u.active_users), 0) AS user_days, coalesce(sum(u.events), 0) AS events,
               coalesce(sum(u.session_minutes), 0) AS minutes
        FROM generate_series(d_start, d_end, interval '1 day') AS g(d)
        LEFT JOIN usage_daily u ON u.client_id = acc.client_id AND u.day = g.d::date
        GROUP BY 1) b;

    IF v_feat THEN
        SELECT coalesce(jsonb_agg(jsonb_build_object('feature_id', f.feature_id, 'name', coalesce(ft.name, f.feature_id),
                                                     'events', f.events, 'days_used', f.days_used,
                                                     'share_of_events', CASE WHEN m.events > 0 THEN round(f.events::numeric / m.events, 3) END)
                                  ORDER BY f.events DESC, f.feature_id), '[]')
        INTO features FROM (SELECT feature_id, sum(events) AS events, count(DISTINCT day) AS days_used
                            FROM usage_feature_daily WHERE client_id = acc.client_id AND day BETWEEN d_start AND d_end
                            GROUP BY feature_id) f LEFT JOIN features ft USING (feature_id);
    END IF;

    IF direction = 'down' THEN alerts := alerts || jsonb_build_object('type', 'usage_declining', 'severity', 'high',
        'message', format('average daily active users changed %s%% between the two halves of the period', change)); END IF;
    IF m.active_days = 0 THEN alerts := alerts || jsonb_build_object('type', 'no_usage', 'severity', 'high',
        'message', 'no usage recorded in the period'); END IF;
    IF c.licensed_seats IS NOT NULL AND m.user_days::numeric / ndays / c.licensed_seats < 0.6 THEN
        recs := recs || to_jsonb(format('Seat utilisation is %s%%: run an adoption campaign for inactive seats',
                                        round(m.user_days::numeric / ndays / c.licensed_seats * 100)));
    END IF;
    IF weekday_avg > 0 AND weekend_avg / weekday_avg < 0.20 THEN
        recs := recs || to_jsonb('Weekend engagement is below 20% of weekdays (expected for business tools; check if not)'::text);
    END IF;
    IF m.user_days > 0 AND m.minutes::numeric / m.user_days < 15 THEN
        recs := recs || to_jsonb('Average session time is under 15 minutes per active user-day: review onboarding depth'::text);
    END IF;

    RETURN jsonb_build_object(
        'client_id', acc.client_id,
        'analysis_period', jsonb_build_object('start', d_start, 'end', d_end, 'days', ndays, 'granularity', v_gran),
        'engagement_metrics', jsonb_build_object(
            'licensed_seats', c.licensed_seats,
            'avg_daily_active_users', round(m.user_days::numeric / ndays, 2),
            'peak_daily_active_users', m.peak,
            'seat_utilization', CASE WHEN c.licensed_seats IS NOT NULL THEN round(m.user_days::numeric / ndays / c.licensed_seats, 3) END,
            'total_events', m.events,
            'total_session_minutes', m.minutes,
            'avg_session_minutes_per_active_user_day', CASE WHEN m.user_days > 0 THEN round(m.minutes::numeric / m.user_days, 1) END,
            'active_days', m.active_days,
            'weekday_avg_daily_active_users', round(weekday_avg, 2),
            'weekend_avg_daily_active_users', round(weekend_avg, 2)),
        'usage_trend', jsonb_build_object('direction', direction, 'first_half_avg_dau', round(first_avg, 2),
                                          'second_half_avg_dau', round(second_avg, 2), 'change_pct', change),
        'usage_series', series,
        'feature_breakdown', features,
        'alerts', alerts,
        'recommendations', recs);
END $$;

-- Per-account value used by segmentation: ARR of the active contract (0 without one).
CREATE OR REPLACE VIEW csmcp.account_values AS
    SELECT a.client_id, a.client_name, a.industry, a.tier, a.lifecycle_stage, a.status, a.health_score,
           coalesce(c.contract_value, 0) AS arr, c.licensed_seats
    FROM accounts a LEFT JOIN contracts c ON c.client_id = a.client_id AND c.status = 'active';

-- segment_customers: builds segments by rule, persists them (segments + segment_members).
CREATE OR REPLACE FUNCTION csmcp.tool_segment_customers(args jsonb, principal text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    t date := csmcp.today();
    v_type text := csmcp.arg_text(args, 'segmentation_type', NULL,
                                  ARRAY['value_based', 'usage_based', 'health_based', 'industry', 'lifecycle', 'custom']);
    crit jsonb := coalesce(args -> 'criteria', '{}');
    v_min integer := csmcp.arg_int(args, 'min_segment_size', 5, 1, 100000);
    run_id text := 'segrun_' || to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYYMMDDHH24MISSUS');
    analyzed integer;
    segs jsonb;
    r record;
    n integer := 0;
    seg_id text;
    seg_list jsonb := '[]';
    covered integer := 0;
BEGIN
    IF v_type IS NULL THEN PERFORM csmcp.invalid('segmentation_type is required'); END IF;
    IF jsonb_typeof(crit) <> 'object' THEN PERFORM csmcp.invalid('criteria must be an object'); END IF;
    IF v_type = 'custom' AND crit = '{}'::jsonb THEN
        PERFORM csmcp.invalid('custom segmentation needs criteria (tier, industry, lifecycle_stage, health_min, health_max, min_arr, max_arr)');
    END IF;

    CREATE TEMP TABLE IF NOT EXISTS seg_assign (client_id text, segment text, ord integer) ON COMMIT DROP;
    TRUNCATE seg_assign;
    INSERT INTO seg_assign
    SELECT v.client_id, x.segment, x.ord FROM csmcp.account_values v
    LEFT JOIN LATERAL (
        SELECT u.avg_dau FROM (SELECT coalesce(sum(active_users), 0)::numeric / 30 AS avg_dau FROM usage_daily
                               WHERE client_id = v.client_id AND day > t - 30 AND day <= t) u
        WHERE v_type = 'usage_based') ud ON true
    CROSS JOIN LATERAL (
        SELECT * FROM (VALUES
            (CASE v_type
                WHEN 'value_based' THEN CASE WHEN v.arr >= 100000 THEN 'VIP Strategic' WHEN v.arr >= 50000 THEN 'High-Value Growth'
                                             WHEN v.arr >= 10000 THEN 'Standard' END
                WHEN 'usage_based' THEN CASE WHEN v.licensed_seats IS NULL THEN 'No Seat Data'
                                             WHEN ud.avg_dau / v.licensed_seats >= 0.8 THEN 'Power Users'
                                             WHEN ud.avg_dau / v.licensed_seats >= 0.4 THEN 'Active Regular' ELSE 'Casual' END
                WHEN 'health_based' THEN CASE WHEN v.health_score >= 80 THEN 'Healthy & Thriving' WHEN v.health_score >= 60 THEN 'Moderate'
                                              ELSE 'At Risk' END
                WHEN 'industry' THEN v.industry
                WHEN 'lifecycle' THEN v.lifecycle_stage
                WHEN 'custom' THEN CASE WHEN (crit->>'tier' IS NULL OR v.tier = crit->>'tier')
                                         AND (crit->>'industry' IS NULL OR lower(v.industry) = lower(crit->>'industry'))
                                         AND (crit->>'lifecycle_stage' IS NULL OR v.lifecycle_stage = crit->>'lifecycle_stage')
                                         AND (crit->>'health_min' IS NULL OR v.health_score >= (crit->>'health_min')::numeric)
                                         AND (crit->>'health_max' IS NULL OR v.health_score <= (crit->>'health_max')::numeric)
                                         AND (crit->>'min_arr' IS NULL OR v.arr >= (crit->>'min_arr')::numeric)
                                         AND (crit->>'max_arr' IS NULL OR v.arr <= (crit->>'max_arr')::numeric)
                                        THEN coalesce(crit->>'name', 'Custom Segment') END
             END,
             CASE v_type WHEN 'value_based' THEN CASE WHEN v.arr >= 100000 THEN 1 WHEN v.arr >= 50000 THEN 2 ELSE 3 END
                         WHEN 'health_based' THEN CASE WHEN v.health_score >= 80 THEN 1 WHEN v.health_score >= 60 THEN 2 ELSE 3 END
                         WHEN 'usage_based' THEN CASE WHEN v.licensed_seats IS NULL THEN 4 WHEN ud.avg_dau / v.licensed_seats >= 0.8 THEN 1
                                                      WHEN ud.avg_dau / v.licensed_seats >= 0.4 THEN 2 ELSE 3 END
                         ELSE 0 END)) s(segment, ord)) x
    WHERE v.status <> 'churned' OR v_type = 'lifecycle';

    SELECT count(*) INTO analyzed FROM seg_assign;

    FOR r IN
        SELECT sa.segment, min(sa.ord) AS ord, count(*) AS cnt, sum(v.arr) AS arr, round(avg(v.health_score), 2) AS avg_h
        FROM seg_assign sa JOIN csmcp.account_values v USING (client_id)
        WHERE sa.segment IS NOT NULL GROUP BY sa.segment HAVING count(*) >= v_min ORDER BY min(sa.ord), sa.segment
    LOOP
        n := n + 1;
        seg_id := 'seg_' || substr(run_id, 8) || '_' || n;
        INSERT INTO segments (segment_id, segmentation_id, name, segment_type, criteria, customer_count, total_arr,
                              avg_health_score, created_by)
        VALUES (seg_id, run_id, r.segment, v_type, crit, r.cnt, r.arr, r.avg_h, coalesce(principal, 'anonymous'));
        INSERT INTO segment_members (segment_id, client_id) SELECT seg_id, client_id FROM seg_assign WHERE segment = r.segment;
        covered := covered + r.cnt;
        seg_list := seg_list || jsonb_build_object(
            'segment_id', seg_id, 'name', r.segment, 'customer_count', r.cnt, 'total_arr', r.arr,
            'avg_arr', round(r.arr / r.cnt, 2), 'avg_health_score', r.avg_h,
            'share_of_customers', round(r.cnt::numeric / greatest(analyzed, 1), 3),
            'engagement_strategy', jsonb_build_object(
                'channels', CASE WHEN r.arr / r.cnt > 100000 THEN '["direct_call","executive_email","in_person","video_conference"]'::jsonb
                                 WHEN r.arr / r.cnt > 50000 THEN '["video_conference","email","in_app","phone"]'::jsonb
                                 ELSE '["email","in_app","automated_campaigns","self_service"]'::jsonb END,
                'touch_frequency', CASE WHEN r.arr / r.cnt > 100000 THEN 'weekly' WHEN r.arr / r.cnt > 25000 THEN 'bi-weekly' ELSE 'monthly' END,
                'automation_level', CASE WHEN r.arr / r.cnt > 75000 THEN 'low' WHEN r.arr / r.cnt > 25000 THEN 'medium' ELSE 'high' END));
    END LOOP;
    PERFORM csmcp.log_activity(NULL, principal, 'segment_customers', 'segmentation', run_id, NULL,
                               jsonb_build_object('segmentation_type', v_type, 'segments', n));

    RETURN jsonb_build_object(
        'segmentation_id', run_id,
        'segmentation_type', v_type,
        'execution_timestamp', now(),
        'criteria', crit,
        'min_segment_size', v_min,
        'total_customers_analyzed', analyzed,
        'segments_created', n,
        'segments', seg_list,
        'customers_segmented', covered,
        'customers_unsegmented', analyzed - covered);
END $$;

-- track_feature_adoption: from usage_feature_daily over the period.
--   all accounts: adoption_rate = accounts that used the feature / accounts analysed
--   one account:  adoption_rate = days the feature was used / days in the period
CREATE OR REPLACE FUNCTION csmcp.tool_track_feature_adoption(args jsonb, principal text)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
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

    WITH usage AS (
        SELECT feature_id, count(DISTINCT client_id) AS accounts_using, count(DISTINCT day) AS days_used,
               sum(events) AS events, round(avg(users), 2) AS avg_daily_users
        FROM usage_feature_daily
        WHERE day > t - v_days AND day <= t AND (v_client IS NULL OR client_id = v_client)
          AND (v_feature IS NULL OR feature_id = v_feature)
        GROUP BY feature_id
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

-- manage_lifecycle_stages: distribution, transitions and durations from lifecycle_transitions;
-- with client_id + new_stage it performs (and records) a transition.
CREATE OR REPLACE FUNCTION csmcp.tool_manage_lifecycle_stages(args jsonb, principal text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    stages text[] := ARRAY['onboarding', 'active', 'at_risk', 'churned', 'expansion', 'renewal'];
    v_client text := csmcp.arg_text(args, 'client_id', NULL);
    v_stage text := csmcp.arg_text(args, 'current_stage', NULL, stages);
    v_new text := csmcp.arg_text(args, 'new_stage', NULL, stages);
    v_reason text := csmcp.arg_text(args, 'reason', NULL);
    v_trans boolean := csmcp.arg_bool(args, 'include_transitions', true);
    acc accounts;
    performed jsonb;
    dist jsonb; trans jsonb; durations jsonb; client_hist jsonb; in_stage jsonb;
    total integer;
BEGIN
    IF v_new IS NOT NULL AND v_client IS NULL THEN PERFORM csmcp.invalid('new_stage needs client_id'); END IF;
    IF v_client IS NOT NULL THEN
        acc := csmcp.require_account(v_client);
        IF v_new IS NOT NULL THEN
            PERFORM 1 FROM accounts WHERE client_id = v_client FOR UPDATE;
            SELECT * INTO acc FROM accounts WHERE client_id = v_client;
            IF acc.lifecycle_stage = v_new THEN
                PERFORM csmcp.invalid(format('client %s is already in stage %s', v_client, v_new));
            END IF;
            UPDATE accounts SET lifecycle_stage = v_new, updated_at = now(),
                                status = CASE WHEN v_new = 'churned' THEN 'churned' ELSE status END
            WHERE client_id = v_client;
            INSERT INTO lifecycle_transitions (client_id, from_stage, to_stage, reason, changed_by)
            VALUES (v_client, acc.lifecycle_stage, v_new, v_reason, coalesce(principal, 'anonymous'));
            PERFORM csmcp.log_activity(v_client, principal, 'manage_lifecycle_stages', 'account', v_client,
                                       jsonb_build_object('lifecycle_stage', acc.lifecycle_stage),
                                       jsonb_build_object('lifecycle_stage', v_new, 'reason', v_reason));
            performed := jsonb_build_object('client_id', v_client, 'from_stage', acc.lifecycle_stage, 'to_stage', v_new,
                                            'reason', v_reason, 'changed_at', now());
        END IF;
    END IF;

    SELECT count(*) INTO total FROM accounts;
    SELECT jsonb_object_agg(s, coalesce(n, 0)) INTO dist
    FROM unnest(stages) s LEFT JOIN (SELECT lifecycle_stage, count(*) AS n FROM accounts GROUP BY 1) c ON c.lifecycle_stage = s;

    IF v_trans THEN
        SELECT coalesce(jsonb_agg(jsonb_build_object('from_stage', from_stage, 'to_stage', to_stage, 'count', n)
                                  ORDER BY n DESC, from_stage, to_stage), '[]')
        INTO trans FROM (SELECT from_stage, to_stage, count(*) AS n FROM lifecycle_transitions
                         WHERE from_stage IS NOT NULL AND changed_at > now() - interval '90 days'
                           AND (v_stage IS NULL OR from_stage = v_stage OR to_stage = v_stage)
                         GROUP BY 1, 2) x;
    END IF;
    -- Average completed stay in each stage: time between entering it and the next transition.
    SELECT coalesce(jsonb_object_agg(stage, days), '{}') INTO durations FROM (
        SELECT to_stage AS stage, round(avg(extract(epoch FROM next_at - changed_at) / 86400)::numeric, 1) AS days
        FROM (SELECT to_stage, changed_at, lead(changed_at) OVER (PARTITION BY client_id ORDER BY changed_at, transition_id) AS next_at
              FROM lifecycle_transitions) l
        WHERE next_at IS NOT NULL GROUP BY to_stage) d;
    IF v_stage IS NOT NULL THEN
        SELECT coalesce(jsonb_agg(jsonb_build_object('client_id', client_id, 'client_name', client_name, 'health_score', health_score)
                                  ORDER BY health_score, client_id), '[]')
        INTO in_stage FROM (SELECT * FROM accounts WHERE lifecycle_stage = v_stage ORDER BY health_score, client_id LIMIT 50) a;
    END IF;
    IF v_client IS NOT NULL THEN
        SELECT coalesce(jsonb_agg(jsonb_build_object('from_stage', from_stage, 'to_stage', to_stage, 'reason', reason,
                                                     'changed_by', changed_by, 'changed_at', changed_at)
                                  ORDER BY changed_at, transition_id), '[]')
        INTO client_hist FROM lifecycle_transitions WHERE client_id = v_client;
    END IF;

    RETURN jsonb_build_object(
        'total_customers', total,
        'stage_distribution', dist,
        'transition_performed', performed,
        'client', CASE WHEN v_client IS NOT NULL THEN jsonb_build_object(
            'client_id', v_client, 'current_stage', coalesce(v_new, acc.lifecycle_stage), 'history', client_hist) END,
        'stage_transitions_90d', trans,
        'average_stage_duration_days', durations,
        'customers_in_stage', in_stage);
END $$;

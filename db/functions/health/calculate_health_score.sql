-- calculate_health_score: the health model (common/health_components.sql) plus weights, trend,
-- risk, churn; stored as history.
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
    sc health_scorecards;   -- issue 24: the resolved scorecard (NULL: the default model)
    sca jsonb;
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
    -- issue 24: unless the caller passes custom weights, the first matching active scorecard
    -- (csmcp.resolve_scorecard) scores the account with its weights and missing-input policy.
    IF v_model <> 'custom' THEN
        sc := csmcp.resolve_scorecard(acc.client_id);
        IF sc.scorecard_id IS NOT NULL THEN
            sca := csmcp.scorecard_apply(sc, comp, acc.client_id, v_lookback);
            wu := (sca #>> '{weights,usage}')::numeric; we := (sca #>> '{weights,engagement}')::numeric;
            ws := (sca #>> '{weights,support}')::numeric; wsat := (sca #>> '{weights,satisfaction}')::numeric;
            wp := (sca #>> '{weights,payment}')::numeric;
            score := (sca ->> 'score')::integer;
        END IF;
    END IF;

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
                               scoring_model, calculated_by, scorecard_id, scorecard_version, custom_measures)
    VALUES (acc.client_id, u, e, s, sat, p, round(wu, 3), round(we, 3), round(ws, 3), round(wsat, 3), round(wp, 3),
            score, change, trend, risk, churn, v_lookback,
            v_model, coalesce(principal, 'anonymous'), sc.scorecard_id, sc.version,
            nullif(sca -> 'custom', '[]'::jsonb))
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
        'scorecard', CASE WHEN sc.scorecard_id IS NOT NULL THEN jsonb_build_object(
            'scorecard_id', sc.scorecard_id, 'version', sc.version, 'name', sc.name,
            'missing_input_policy', sc.missing_input_policy, 'missing_inputs', sca -> 'missing',
            'score_before_rounding', sca -> 'score_before_rounding', 'grading', sca -> 'grading',
            'custom_measures', sca -> 'custom') END,
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

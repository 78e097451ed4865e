-- explain_health_score: "why is it red" - the account's health computed now with the scorecard
-- calculate_health_score would use (csmcp.resolve_scorecard; none: the default model), measure by
-- measure (value, effective weight, contribution = weight x value, the inputs behind it; catalogue
-- measures included), the grading band, each contribution's change since the latest stored score,
-- and the override.
CREATE OR REPLACE FUNCTION csmcp.tool_explain_health_score(args jsonb, principal text)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
    acc accounts := csmcp.require_account(csmcp.arg_text(args, 'client_id', NULL));
    comp jsonb := csmcp.health_components(acc.client_id, 30);
    m jsonb := comp -> 'metrics';
    prev health_scores;
    ov health_overrides := csmcp.health_override_active(acc.client_id);
    v_measures jsonb;
    v_raw numeric;
    v_score integer;
    sc health_scorecards := csmcp.resolve_scorecard(acc.client_id);
    sca jsonb;
    w jsonb := '{"usage": 0.35, "engagement": 0.25, "support": 0.15, "satisfaction": 0.15, "payment": 0.10}';
    v_band jsonb;
BEGIN
    IF sc.scorecard_id IS NOT NULL THEN
        sca := csmcp.scorecard_apply(sc, comp, acc.client_id, 30);
        w := sca -> 'weights';
    END IF;
    SELECT * INTO prev FROM health_scores WHERE client_id = acc.client_id
     ORDER BY calculated_at DESC, score_id DESC LIMIT 1;
    WITH x(ord, measure, value, weight, prev_value, prev_weight, inputs) AS (VALUES
        (1, 'usage', (comp ->> 'usage')::numeric, (w ->> 'usage')::numeric, prev.usage_score::numeric, prev.usage_weight,
         CASE WHEN NOT (m ->> 'has_active_contract')::boolean OR m ->> 'licensed_seats' IS NULL
              THEN 'no active contract with licensed seats: neutral 50'
              ELSE format('%s average daily users on %s seats over %s days',
                          m ->> 'avg_daily_active_users', m ->> 'licensed_seats', m ->> 'lookback_period_days') END),
        (2, 'engagement', (comp ->> 'engagement')::numeric, (w ->> 'engagement')::numeric, prev.engagement_score::numeric, prev.engagement_weight,
         CASE WHEN m ->> 'last_usage_date' IS NULL THEN 'no day with usage recorded: neutral 50'
              ELSE format('%s days since the last day with usage (%s)', m ->> 'days_since_last_usage',
                          m ->> 'last_usage_date') END),
        (3, 'support', (comp ->> 'support')::numeric, (w ->> 'support')::numeric, prev.support_score::numeric, prev.support_weight,
         format('%s tickets opened, %s of them P0/P1, in %s days', m ->> 'tickets_opened',
                m ->> 'critical_tickets_opened', m ->> 'lookback_period_days')),
        (4, 'satisfaction', (comp ->> 'satisfaction')::numeric, (w ->> 'satisfaction')::numeric, prev.satisfaction_score, prev.satisfaction_weight,
         CASE WHEN (m ->> 'nps_responses')::integer = 0
              THEN format('no NPS response in %s days: neutral 70', m ->> 'lookback_period_days')
              ELSE format('NPS %s from %s responses (%s promoters, %s detractors) in %s days', m ->> 'nps',
                          m ->> 'nps_responses', m ->> 'nps_promoters', m ->> 'nps_detractors',
                          m ->> 'lookback_period_days') END),
        (5, 'payment', (comp ->> 'payment')::numeric, (w ->> 'payment')::numeric, prev.payment_score::numeric, prev.payment_weight,
         CASE WHEN NOT (m ->> 'has_active_contract')::boolean THEN 'no active contract: 85'
              ELSE format('%s overdue invoice(s), %s paid late, renewal in %s days', m ->> 'overdue_invoices',
                          m ->> 'late_invoices', m ->> 'days_until_renewal') END)),
    -- the scorecard's catalogue measures (value used: 50 when missing under neutral)
    y AS (
        SELECT x.* FROM x
        UNION ALL
        SELECT 5 + row_number() OVER (ORDER BY c ->> 'measure'), c ->> 'measure', (c ->> 'value_used')::numeric,
               (c ->> 'weight')::numeric,
               (SELECT (pc ->> 'value_used')::numeric FROM jsonb_array_elements(prev.custom_measures) pc
                 WHERE pc ->> 'measure' = c ->> 'measure'),
               (SELECT (pc ->> 'weight')::numeric FROM jsonb_array_elements(prev.custom_measures) pc
                 WHERE pc ->> 'measure' = c ->> 'measure'),
               CASE WHEN c ->> 'value' IS NULL
                    THEN format('catalogue measure %s: %s: %s', c ->> 'measure', c ->> 'missing_reason',
                                CASE WHEN sc.missing_input_policy = 'redistribute' THEN 'weight redistributed'
                                     ELSE 'neutral 50' END)
                    ELSE format('%s %s -> %s (catalogue measure %s)', c ->> 'raw', c ->> 'unit', c ->> 'value',
                                c ->> 'measure') END
          FROM jsonb_array_elements(coalesce(sca -> 'custom', '[]')) c)
    SELECT jsonb_agg(jsonb_build_object(
               'measure', measure, 'value', value, 'weight', weight,
               'contribution', weight * value,
               'previous_contribution', CASE WHEN prev.score_id IS NOT NULL THEN coalesce(prev_weight * prev_value, 0) END,
               'contribution_change', CASE WHEN prev.score_id IS NOT NULL
                                           THEN weight * value - coalesce(prev_weight * prev_value, 0) END,
               'inputs', inputs) ORDER BY ord),
           sum(weight * value)
      INTO v_measures, v_raw
      FROM y;
    v_score := greatest(0, least(100, round(v_raw)))::integer;
    v_band := CASE WHEN sc.scorecard_id IS NOT NULL
                   THEN (SELECT g FROM jsonb_array_elements(sc.grading) g
                          WHERE (g ->> 'min')::numeric <= v_score AND v_score <= (g ->> 'max')::numeric LIMIT 1)
                   ELSE csmcp.sc_default_band(v_score) END;
    RETURN jsonb_build_object(
        'client_id', acc.client_id,
        'scoring_model', CASE WHEN sc.scorecard_id IS NOT NULL THEN 'scorecard' ELSE 'default' END,
        'scorecard', CASE WHEN sc.scorecard_id IS NOT NULL THEN jsonb_build_object(
            'scorecard_id', sc.scorecard_id, 'version', sc.version, 'name', sc.name,
            'missing_input_policy', sc.missing_input_policy, 'missing_inputs', sca -> 'missing') END,
        'lookback_period_days', 30,
        'measures', v_measures,
        'score_before_rounding', v_raw,
        'computed_score', v_score,
        'grading', v_band,
        'previous_score', CASE WHEN prev.score_id IS NOT NULL THEN jsonb_build_object(
            'score_id', prev.score_id, 'calculated_at', prev.calculated_at, 'overall_score', prev.overall_score,
            'scoring_model', prev.scoring_model) END,
        'override', csmcp.sc_override_json(ov),
        'effective_score', coalesce(ov.score, v_score),
        'summary', format('%s: health %s (%s, %s%s)%s; lowest contribution %s%s', acc.client_id, v_score,
                          coalesce(v_band ->> 'label', 'no band'), coalesce(v_band ->> 'color', '-'),
                          CASE WHEN sc.scorecard_id IS NOT NULL
                               THEN format('; scorecard %s v%s', sc.scorecard_id, sc.version) ELSE '' END,
                          CASE WHEN ov.override_id IS NOT NULL THEN format(', overridden to %s until %s', ov.score,
                               to_char(ov.expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')) ELSE '' END,
                          (SELECT format('%s %s (%s)', e ->> 'measure', e ->> 'value', e ->> 'inputs')
                             FROM jsonb_array_elements(v_measures) e
                            ORDER BY (e ->> 'value')::numeric, e ->> 'measure' LIMIT 1),
                          CASE WHEN prev.score_id IS NOT NULL
                               THEN format('; stored score %s on %s', prev.overall_score,
                                           to_char(prev.calculated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')) ELSE '' END));
END $$;

-- explain_health_score: "why is it red" - the default health model computed now for one account,
-- measure by measure (value, weight, contribution = weight x value, the inputs behind it), the
-- grading band, each contribution's change since the latest stored score, and the override.
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
BEGIN
    SELECT * INTO prev FROM health_scores WHERE client_id = acc.client_id
     ORDER BY calculated_at DESC, score_id DESC LIMIT 1;
    WITH x(ord, measure, value, weight, prev_value, prev_weight, inputs) AS (VALUES
        (1, 'usage', (comp ->> 'usage')::numeric, 0.35, prev.usage_score::numeric, prev.usage_weight,
         CASE WHEN NOT (m ->> 'has_active_contract')::boolean OR m ->> 'licensed_seats' IS NULL
              THEN 'no active contract with licensed seats: neutral 50'
              ELSE format('%s average daily users on %s seats over %s days',
                          m ->> 'avg_daily_active_users', m ->> 'licensed_seats', m ->> 'lookback_period_days') END),
        (2, 'engagement', (comp ->> 'engagement')::numeric, 0.25, prev.engagement_score::numeric, prev.engagement_weight,
         CASE WHEN m ->> 'last_usage_date' IS NULL THEN 'no day with usage recorded: neutral 50'
              ELSE format('%s days since the last day with usage (%s)', m ->> 'days_since_last_usage',
                          m ->> 'last_usage_date') END),
        (3, 'support', (comp ->> 'support')::numeric, 0.15, prev.support_score::numeric, prev.support_weight,
         format('%s tickets opened, %s of them P0/P1, in %s days', m ->> 'tickets_opened',
                m ->> 'critical_tickets_opened', m ->> 'lookback_period_days')),
        (4, 'satisfaction', (comp ->> 'satisfaction')::numeric, 0.15, prev.satisfaction_score, prev.satisfaction_weight,
         CASE WHEN (m ->> 'nps_responses')::integer = 0
              THEN format('no NPS response in %s days: neutral 70', m ->> 'lookback_period_days')
              ELSE format('NPS %s from %s responses (%s promoters, %s detractors) in %s days', m ->> 'nps',
                          m ->> 'nps_responses', m ->> 'nps_promoters', m ->> 'nps_detractors',
                          m ->> 'lookback_period_days') END),
        (5, 'payment', (comp ->> 'payment')::numeric, 0.10, prev.payment_score::numeric, prev.payment_weight,
         CASE WHEN NOT (m ->> 'has_active_contract')::boolean THEN 'no active contract: 85'
              ELSE format('%s overdue invoice(s), %s paid late, renewal in %s days', m ->> 'overdue_invoices',
                          m ->> 'late_invoices', m ->> 'days_until_renewal') END))
    SELECT jsonb_agg(jsonb_build_object(
               'measure', measure, 'value', value, 'weight', weight,
               'contribution', weight * value,
               'previous_contribution', prev_weight * prev_value,
               'contribution_change', weight * value - prev_weight * prev_value,
               'inputs', inputs) ORDER BY ord),
           sum(weight * value)
      INTO v_measures, v_raw
      FROM x;
    v_score := greatest(0, least(100, round(v_raw)))::integer;
    RETURN jsonb_build_object(
        'client_id', acc.client_id,
        'scoring_model', 'default',
        'lookback_period_days', 30,
        'measures', v_measures,
        'score_before_rounding', v_raw,
        'computed_score', v_score,
        'grading', csmcp.sc_default_band(v_score),
        'previous_score', CASE WHEN prev.score_id IS NOT NULL THEN jsonb_build_object(
            'score_id', prev.score_id, 'calculated_at', prev.calculated_at, 'overall_score', prev.overall_score,
            'scoring_model', prev.scoring_model) END,
        'override', csmcp.sc_override_json(ov),
        'effective_score', coalesce(ov.score, v_score),
        'summary', format('%s: health %s (%s, %s)%s; lowest contribution %s%s', acc.client_id, v_score,
                          csmcp.sc_default_band(v_score) ->> 'label', csmcp.sc_default_band(v_score) ->> 'color',
                          CASE WHEN ov.override_id IS NOT NULL THEN format(', overridden to %s until %s', ov.score,
                               to_char(ov.expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')) ELSE '' END,
                          (SELECT format('%s %s (%s)', e ->> 'measure', e ->> 'value', e ->> 'inputs')
                             FROM jsonb_array_elements(v_measures) e
                            ORDER BY (e ->> 'value')::numeric, e ->> 'measure' LIMIT 1),
                          CASE WHEN prev.score_id IS NOT NULL
                               THEN format('; stored score %s on %s', prev.overall_score,
                                           to_char(prev.calculated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')) ELSE '' END));
END $$;

-- score_risk_factors: six weighted risk factors from the health components (computed now over
-- the lookback), overall risk, level, churn probability; stored in risk_assessments.
CREATE OR REPLACE FUNCTION csmcp.tool_score_risk_factors(args jsonb, principal text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    acc accounts := csmcp.require_account(csmcp.arg_text(args, 'client_id', NULL));
    v_lookback integer := csmcp.arg_int(args, 'lookback_period_days', 30, 1, 365);
    t date := csmcp.today();
    comp jsonb;
    c contracts;
    v_days integer;
    v_decided boolean := false;
    v_contract_risk integer;
    factors jsonb;
    v_overall integer;
    v_level text;
    v_prob numeric;
    v_id text;
    v_warn jsonb;
    v_prot jsonb;
    v_actions jsonb;
    v_at timestamptz := now();
BEGIN
    comp := csmcp.health_components(acc.client_id, v_lookback);
    c := csmcp.active_contract(acc.client_id);
    IF c.contract_id IS NOT NULL THEN
        v_days := c.end_date - t;
        SELECT EXISTS (SELECT 1 FROM renewals r WHERE r.contract_id = c.contract_id AND r.status IN ('won', 'lost', 'churned'))
        INTO v_decided;
    END IF;
    v_contract_risk := CASE WHEN v_days IS NULL THEN 0
                            WHEN v_days <= 30 AND NOT v_decided THEN 100
                            WHEN v_days <= 90 THEN 50 ELSE 0 END;

    SELECT jsonb_agg(jsonb_build_object('factor', f.name, 'weight', f.w, 'component', f.comp, 'component_score', f.score,
                                        'risk_score', f.risk, 'weighted_risk', round(f.w * f.risk, 2),
                                        'detail', f.detail) ORDER BY f.ord),
           round(sum(f.w * f.risk))::integer
    INTO factors, v_overall
    FROM (VALUES
        (1, 'usage_decline', 0.25, 'usage', (comp->>'usage')::numeric, 100 - (comp->>'usage')::numeric,
         jsonb_build_object('avg_daily_active_users', comp #> '{metrics,avg_daily_active_users}', 'licensed_seats', comp #> '{metrics,licensed_seats}')),
        (2, 'engagement_low', 0.20, 'engagement', (comp->>'engagement')::numeric, 100 - (comp->>'engagement')::numeric,
         jsonb_build_object('days_since_last_usage', comp #> '{metrics,days_since_last_usage}')),
        (3, 'support_volume', 0.15, 'support', (comp->>'support')::numeric, 100 - (comp->>'support')::numeric,
         jsonb_build_object('tickets_opened', comp #> '{metrics,tickets_opened}', 'critical_tickets_opened', comp #> '{metrics,critical_tickets_opened}')),
        (4, 'payment_health', 0.15, 'payment', (comp->>'payment')::numeric, 100 - (comp->>'payment')::numeric,
         jsonb_build_object('overdue_invoices', comp #> '{metrics,overdue_invoices}', 'late_invoices', comp #> '{metrics,late_invoices}')),
        (5, 'satisfaction', 0.15, 'satisfaction', (comp->>'satisfaction')::numeric, 100 - (comp->>'satisfaction')::numeric,
         jsonb_build_object('nps', comp #> '{metrics,nps}', 'nps_responses', comp #> '{metrics,nps_responses}')),
        (6, 'contract_health', 0.10, NULL, NULL, v_contract_risk::numeric,
         jsonb_build_object('days_until_renewal', v_days, 'renewal_date', c.end_date, 'renewal_decided', v_decided,
                            'has_active_contract', c.contract_id IS NOT NULL))
    ) AS f(ord, name, w, comp, score, risk, detail);

    v_level := csmcp.retention_risk_level(v_overall);
    v_prob := csmcp.retention_risk_probability(v_overall);

    SELECT coalesce(jsonb_agg(jsonb_build_object('factor', x->>'factor', 'risk_score', (x->>'risk_score')::numeric,
                                                 'severity', CASE WHEN (x->>'risk_score')::numeric >= 75 THEN 'critical' ELSE 'high' END)
                              ORDER BY (x->>'risk_score')::numeric DESC) FILTER (WHERE (x->>'risk_score')::numeric >= 50), '[]'),
           coalesce(jsonb_agg(x->>'factor') FILTER (WHERE (x->>'risk_score')::numeric <= 20), '[]'),
           coalesce(jsonb_agg(CASE x->>'factor'
                                  WHEN 'usage_decline' THEN 'Adoption drive: active users are low against licensed seats'
                                  WHEN 'engagement_low' THEN 'Re-engage the users: no recent product usage'
                                  WHEN 'support_volume' THEN 'Review open and critical tickets with the support lead'
                                  WHEN 'payment_health' THEN 'Follow up overdue or late invoices with finance'
                                  WHEN 'satisfaction' THEN 'Call the detractors and close the loop on their feedback'
                                  ELSE 'Start the renewal conversation now and agree a renewal plan' END
                              ORDER BY (x->>'risk_score')::numeric DESC) FILTER (WHERE (x->>'risk_score')::numeric >= 50), '[]')
    INTO v_warn, v_prot, v_actions
    FROM jsonb_array_elements(factors) x;

    v_id := 'RA-' || nextval('risk_assessment_seq');
    INSERT INTO risk_assessments (assessment_id, client_id, assessed_at, lookback_days, factors, overall_risk_score, risk_level,
                                  churn_probability, assessed_by)
    VALUES (v_id, acc.client_id, v_at, v_lookback, factors, v_overall, v_level, v_prob, coalesce(nullif(principal, ''), 'anonymous'));
    PERFORM csmcp.log_activity(acc.client_id, principal, 'score_risk_factors', 'risk_assessment', v_id, NULL,
                               jsonb_build_object('overall_risk_score', v_overall, 'risk_level', v_level, 'churn_probability', v_prob,
                                                  'factors', factors));

    RETURN jsonb_build_object(
        'assessment_id', v_id, 'client_id', acc.client_id, 'client_name', acc.client_name, 'assessed_at', v_at,
        'lookback_period_days', v_lookback,
        'overall_risk_score', v_overall, 'risk_level', v_level, 'churn_probability', v_prob,
        'risk_factors', factors,
        'early_warning_indicators', v_warn, 'protective_factors', v_prot, 'recommended_actions', v_actions,
        'summary', format('%s: overall risk %s (%s), churn probability %s; highest factor %s (%s)',
                          acc.client_name, v_overall, v_level, v_prob,
                          (SELECT x->>'factor' FROM jsonb_array_elements(factors) x ORDER BY (x->>'weighted_risk')::numeric DESC, x->>'factor' LIMIT 1),
                          (SELECT x->>'risk_score' FROM jsonb_array_elements(factors) x ORDER BY (x->>'weighted_risk')::numeric DESC, x->>'factor' LIMIT 1)));
END $$;

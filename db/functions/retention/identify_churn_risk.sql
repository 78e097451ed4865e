-- identify_churn_risk: accounts below the health threshold (or one account), each with its
-- health-model risk, the indicators of its latest calculation, renewal and ARR, and interventions
-- chosen from its weakest components; summary over the whole analysed set. Health = the effective
-- score (csmcp.effective_health: an active manual override, else accounts.health_score).
--
-- Interventions: the components of the latest calculation below 70, weakest first (ties in the
-- order usage, engagement, support, satisfaction, payment), at most two, each mapped to one
-- intervention; plus a renewal save plan when the active contract ends within 90 days.
CREATE OR REPLACE FUNCTION csmcp.retention_interventions(hs health_scores, p_days_to_renewal integer)
RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce((SELECT jsonb_agg(jsonb_build_object('component', x.name, 'component_score', x.score, 'intervention', x.what)
                                      ORDER BY x.score, x.ord)
                     FROM (SELECT * FROM (VALUES
                               (1, 'usage', hs.usage_score::numeric, 'Adoption workshop: drive active use against the licensed seats'),
                               (2, 'engagement', hs.engagement_score::numeric, 'Re-engagement outreach: users have not used the product recently'),
                               (3, 'support', hs.support_score::numeric, 'Support review with the support lead on open and critical tickets'),
                               (4, 'satisfaction', hs.satisfaction_score, 'Executive sponsor call on the NPS feedback'),
                               (5, 'payment', hs.payment_score::numeric, 'Billing follow-up with finance on overdue or late invoices')
                           ) v(ord, name, score, what)
                           WHERE hs.score_id IS NOT NULL AND v.score < 70 ORDER BY v.score, v.ord LIMIT 2) x), '[]')
        || CASE WHEN p_days_to_renewal BETWEEN 0 AND 90
                THEN jsonb_build_array(jsonb_build_object('component', 'contract', 'component_score', NULL,
                                                          'intervention', format('Renewal save plan: the contract renews in %s days', p_days_to_renewal)))
                ELSE '[]'::jsonb END
$$;

CREATE OR REPLACE FUNCTION csmcp.tool_identify_churn_risk(args jsonb, principal text)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_client text := csmcp.arg_text(args, 'client_id', NULL);
    v_threshold integer := csmcp.arg_int(args, 'health_score_threshold', 60, 0, 100);
    v_lookback integer := csmcp.arg_int(args, 'days_lookback', 90, 1, 365);
    v_pred boolean := csmcp.arg_bool(args, 'include_predictions', true);
    v_limit integer := csmcp.arg_int(args, 'limit', 50, 1, 1000);
    v_offset integer := csmcp.arg_int(args, 'offset', 0, 0, 1000000);
    acc accounts;
    t date := csmcp.today();
    v_summary jsonb;
    v_items jsonb;
    v_ids text[];
    v_live bigint;
BEGIN
    IF v_client IS NOT NULL THEN acc := csmcp.require_account(v_client); END IF;

    IF v_client IS NULL THEN
        -- Issue 21 (session 7): the portfolio's summary from the at-risk accounts only (the page's
        -- set below: not overridden by the computed score's index, overridden by the override;
        -- at most one active contract and one open override per account) and the count of the
        -- live accounts from the lifecycle-stage index, instead of every live account joined with
        -- its contract (0.3-1.4 s at 100,000 accounts). The same figures as the former SQL
        -- (tool_identify_churn_risk_scratch, test_rollup_equality_revenue).
        SELECT (SELECT count(*) FROM accounts) - (SELECT count(*) FROM accounts WHERE lifecycle_stage = 'churned') INTO v_live;
        WITH r AS (
            SELECT e.tier, e.h AS health_score, c.contract_value
            FROM (SELECT a.client_id, a.tier, a.health_score AS h FROM accounts a
                   WHERE a.lifecycle_stage <> 'churned' AND a.health_score < v_threshold
                     AND NOT EXISTS (SELECT 1 FROM csmcp.active_health_overrides() ov WHERE ov.client_id = a.client_id)
                  UNION ALL
                  SELECT a.client_id, a.tier, ov.score FROM csmcp.active_health_overrides() ov
                    JOIN accounts a ON a.client_id = ov.client_id
                   WHERE a.lifecycle_stage <> 'churned' AND ov.score < v_threshold) e
            LEFT JOIN contracts c ON c.client_id = e.client_id AND c.status = 'active'
        )
        SELECT jsonb_build_object(
            'total_analyzed', v_live,
            'at_risk_count', count(*),
            'at_risk_percentage', CASE WHEN v_live > 0 THEN round(count(*) * 100.0 / v_live, 1) ELSE 0 END,
            'total_arr_at_risk', coalesce(sum(contract_value), 0),
            'by_risk_level', jsonb_build_object(
                'critical', count(*) FILTER (WHERE health_score < 50),
                'high', count(*) FILTER (WHERE health_score >= 50 AND health_score < 65),
                'medium', count(*) FILTER (WHERE health_score >= 65 AND health_score < 80),
                'low', count(*) FILTER (WHERE health_score >= 80)),
            'by_tier', jsonb_build_object(
                'starter', count(*) FILTER (WHERE tier = 'starter'),
                'standard', count(*) FILTER (WHERE tier = 'standard'),
                'professional', count(*) FILTER (WHERE tier = 'professional'),
                'enterprise', count(*) FILTER (WHERE tier = 'enterprise')))
        INTO v_summary FROM r;
    ELSE
    -- The analysed set: live accounts (lifecycle stage not churned), or the one account asked for.
    -- (UNION ALL rather than OR: the first branch is skipped by a one-time filter when a
    -- client_id is given, the second is an index lookup.)
    WITH s AS (
        SELECT a.client_id, a.tier, coalesce(ov.score, a.health_score) AS health_score, c.contract_value
        FROM accounts a LEFT JOIN contracts c ON c.client_id = a.client_id AND c.status = 'active'
        LEFT JOIN csmcp.active_health_overrides() ov ON ov.client_id = a.client_id
        WHERE v_client IS NULL AND a.lifecycle_stage <> 'churned'
        UNION ALL
        SELECT a.client_id, a.tier, csmcp.effective_health(a.client_id, a.health_score) AS health_score, c.contract_value
        FROM accounts a LEFT JOIN contracts c ON c.client_id = a.client_id AND c.status = 'active'
        WHERE a.client_id = v_client
    )
    SELECT jsonb_build_object(
        'total_analyzed', count(*),
        'at_risk_count', count(*) FILTER (WHERE health_score < v_threshold),
        'at_risk_percentage', CASE WHEN count(*) > 0 THEN round(count(*) FILTER (WHERE health_score < v_threshold) * 100.0 / count(*), 1) ELSE 0 END,
        'total_arr_at_risk', coalesce(sum(contract_value) FILTER (WHERE health_score < v_threshold), 0),
        'by_risk_level', jsonb_build_object(
            'critical', count(*) FILTER (WHERE health_score < v_threshold AND health_score < 50),
            'high', count(*) FILTER (WHERE health_score < v_threshold AND health_score >= 50 AND health_score < 65),
            'medium', count(*) FILTER (WHERE health_score < v_threshold AND health_score >= 65 AND health_score < 80),
            'low', count(*) FILTER (WHERE health_score < v_threshold AND health_score >= 80)),
        'by_tier', jsonb_build_object(
            'starter', count(*) FILTER (WHERE health_score < v_threshold AND tier = 'starter'),
            'standard', count(*) FILTER (WHERE health_score < v_threshold AND tier = 'standard'),
            'professional', count(*) FILTER (WHERE health_score < v_threshold AND tier = 'professional'),
            'enterprise', count(*) FILTER (WHERE health_score < v_threshold AND tier = 'enterprise')))
    INTO v_summary FROM s;
    END IF;

    -- The page first (ids only), then the entries of that page.
    IF v_client IS NULL THEN
        SELECT coalesce(array_agg(p.client_id ORDER BY p.ord), '{}') INTO v_ids
        FROM (SELECT e.client_id, row_number() OVER (ORDER BY e.h, c.contract_value DESC NULLS LAST, e.client_id) AS ord
              FROM (-- not overridden: by the computed score (index); overridden: by the override
                    SELECT a.client_id, a.health_score AS h FROM accounts a
                     WHERE a.lifecycle_stage <> 'churned' AND a.health_score < v_threshold
                       AND NOT EXISTS (SELECT 1 FROM csmcp.active_health_overrides() ov WHERE ov.client_id = a.client_id)
                    UNION ALL
                    SELECT a.client_id, ov.score FROM csmcp.active_health_overrides() ov
                      JOIN accounts a ON a.client_id = ov.client_id
                     WHERE a.lifecycle_stage <> 'churned' AND ov.score < v_threshold) e
              LEFT JOIN contracts c ON c.client_id = e.client_id AND c.status = 'active'
              ORDER BY e.h, c.contract_value DESC NULLS LAST, e.client_id
              LIMIT v_limit OFFSET v_offset) p;
    ELSE
        v_ids := CASE WHEN v_offset = 0 THEN ARRAY[v_client] ELSE '{}' END;
    END IF;

    SELECT coalesce(jsonb_agg(x.item ORDER BY x.ord), '[]') INTO v_items
    FROM (
        SELECT u.ord,
               jsonb_build_object(
                   'client_id', a.client_id, 'client_name', a.client_name, 'tier', a.tier, 'lifecycle_stage', a.lifecycle_stage,
                   'csm_assigned', a.csm_assigned, 'at_risk', e.eff < v_threshold,
                   'health_score', e.eff, 'computed_health_score', a.health_score, 'health_overridden', e.ov IS NOT NULL,
                   'health_trend', CASE WHEN h.n >= 2 THEN CASE WHEN a.health_score - h.first_score > 3 THEN 'improving'
                                                               WHEN a.health_score - h.first_score < -3 THEN 'declining'
                                                               ELSE 'stable' END
                                        ELSE a.health_trend END,
                   'score_change_in_lookback', CASE WHEN h.n >= 2 THEN a.health_score - h.first_score END,
                   'calculations_in_lookback', coalesce(h.n, 0),
                   'risk_level', csmcp.risk_level(e.eff),
                   'churn_probability', CASE WHEN v_pred THEN csmcp.churn_probability(e.eff) END,
                   'predicted_churn_date', CASE WHEN v_pred AND csmcp.churn_probability(e.eff) > 0.50 THEN t + 120 END,
                   'risk_indicators', coalesce((SELECT jsonb_agg(jsonb_build_object('indicator', ri.indicator, 'severity', ri.severity,
                                                                                    'value', ri.current_value, 'threshold', ri.threshold)
                                                                 ORDER BY ri.indicator_id)
                                                FROM risk_indicators ri WHERE ri.score_id = hs.score_id), '[]'),
                   'last_calculated_at', hs.calculated_at,
                   'days_until_renewal', c.end_date - t,
                   'renewal_date', c.end_date,
                   'arr', c.contract_value,
                   'recommended_interventions', csmcp.retention_interventions(hs, c.end_date - t)) AS item
        FROM unnest(v_ids) WITH ORDINALITY u(client_id, ord)
        JOIN accounts a ON a.client_id = u.client_id
        LEFT JOIN csmcp.active_health_overrides() ov ON ov.client_id = a.client_id
        CROSS JOIN LATERAL (SELECT coalesce(ov.score, a.health_score) AS eff, ov.score AS ov) e
        LEFT JOIN contracts c ON c.client_id = a.client_id AND c.status = 'active'
        LEFT JOIN LATERAL (SELECT * FROM health_scores x WHERE x.client_id = a.client_id
                           ORDER BY x.calculated_at DESC, x.score_id DESC LIMIT 1) hs ON true
        LEFT JOIN LATERAL (SELECT count(*) AS n,
                                  (array_agg(x.overall_score ORDER BY x.calculated_at, x.score_id))[1] AS first_score
                           FROM health_scores x
                           WHERE x.client_id = a.client_id AND x.calculated_at > now() - make_interval(days => v_lookback)) h ON true
    ) x;

    RETURN jsonb_build_object(
        'threshold', v_threshold,
        'analysis_period', jsonb_build_object('days_lookback', v_lookback, 'from', t - v_lookback + 1, 'to', t),
        'include_predictions', v_pred,
        'at_risk_customers', v_items,
        'returned_count', jsonb_array_length(v_items), 'limit', v_limit, 'offset', v_offset,
        'risk_summary', v_summary,
        'summary', CASE WHEN v_client IS NOT NULL THEN
                format('%s: health %s%s %s the threshold %s (risk %s)', acc.client_name,
                       csmcp.effective_health(acc.client_id, acc.health_score),
                       CASE WHEN csmcp.health_override_score(acc.client_id) IS NOT NULL
                            THEN format(' (manual override; computed %s)', acc.health_score) ELSE '' END,
                       CASE WHEN csmcp.effective_health(acc.client_id, acc.health_score) < v_threshold THEN 'is below' ELSE 'is not below' END,
                       v_threshold, csmcp.risk_level(csmcp.effective_health(acc.client_id, acc.health_score)))
            ELSE format('%s of %s live accounts (%s%%) have health below %s; ARR at risk %s; critical %s, high %s',
                        v_summary->>'at_risk_count', v_summary->>'total_analyzed', v_summary->>'at_risk_percentage', v_threshold,
                        v_summary->>'total_arr_at_risk', v_summary #>> '{by_risk_level,critical}', v_summary #>> '{by_risk_level,high}') END);
END $$;

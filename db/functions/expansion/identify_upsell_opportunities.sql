-- identify_upsell_opportunities: tier-upgrade candidates (reference §3.5), with the seat
-- utilisation threshold the original ignored made real; found opportunities are persisted
-- (one open 'tier_upgrade:<tier>' opportunity per account, re-running updates it).
CREATE OR REPLACE FUNCTION csmcp.tool_identify_upsell_opportunities(args jsonb, principal text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    t date := csmcp.today();
    v_client text := csmcp.arg_text(args, 'client_id', NULL);
    v_min_health integer := csmcp.arg_int(args, 'min_health_score', 75, 0, 100);
    v_min_usage numeric := csmcp.arg_num(args, 'min_usage_threshold', 0.70, 0, 2);
    v_limit integer := csmcp.arg_int(args, 'limit', 100, 1, 1000);
    a accounts;
    cands jsonb;
    res record;
    idmap jsonb;
    opps jsonb;
    excluded jsonb;
BEGIN
    IF v_client IS NOT NULL THEN a := csmcp.require_account(v_client); END IF;

    WITH u AS (   -- utilisation of the accounts that pass the other criteria only
        SELECT * FROM csmcp.exp_utilisation_of(ARRAY(
            SELECT ac.client_id FROM accounts ac
            WHERE ac.status = 'active' AND ac.tier <> 'enterprise' AND ac.health_score >= v_min_health
              AND (v_client IS NULL OR ac.client_id = v_client)), t)),
    c AS (
        SELECT ac.client_id, ac.client_name, ac.tier, ac.health_score, ac.health_trend, u.contract_id, u.seats, u.arr,
               u.avg_dau, u.utilisation,
               CASE ac.tier WHEN 'starter' THEN 'standard' WHEN 'standard' THEN 'professional'
                            WHEN 'professional' THEN 'enterprise' END AS next_tier,
               CASE ac.tier WHEN 'starter' THEN 2.0 WHEN 'standard' THEN 2.5 WHEN 'professional' THEN 2.0 END AS mult
        FROM u JOIN accounts ac ON ac.client_id = u.client_id
        WHERE ac.tier <> 'enterprise' AND ac.health_score >= v_min_health AND u.utilisation >= v_min_usage
    ),
    p AS (
        SELECT c.*, round(c.arr * c.mult, 2) AS potential,
               CASE WHEN c.health_score >= 85 THEN 0.75 WHEN c.health_score >= 75 THEN 0.60 ELSE 0.40 END AS prob,
               CASE WHEN c.health_score >= 85 THEN 'high' WHEN c.health_score >= 75 THEN 'medium' ELSE 'low' END AS label
        FROM c
    )
    SELECT coalesce(jsonb_agg(jsonb_build_object(
               'client_id', client_id, 'key', 'tier_upgrade:' || next_tier, 'name', 'Upgrade to ' || next_tier,
               'type', 'tier_upgrade', 'value', potential - arr, 'probability', prob, 'current_arr', arr,
               'product', NULL, 'close_days', CASE label WHEN 'high' THEN 60 WHEN 'medium' THEN 75 ELSE 90 END,
               'details', jsonb_build_object('current_tier', tier, 'recommended_tier', next_tier, 'multiplier', mult,
                                             'potential_arr', potential, 'health_score', health_score,
                                             'seat_utilisation', round(utilisation, 4)),
               'client_name', client_name, 'health_trend', health_trend, 'label', label, 'avg_dau', round(avg_dau, 2),
               'seats', seats) ORDER BY potential - arr DESC, client_id), '[]')
    INTO cands FROM p;

    SELECT * INTO res FROM csmcp.exp_upsert_opportunities(cands, principal, 'identify_upsell_opportunities');

    idmap := csmcp.exp_open_id_map('tier_upgrade', v_client);
    SELECT coalesce(jsonb_agg(jsonb_build_object(
               'opportunity_id', idmap ->> ((x->>'client_id') || '|' || (x->>'key')),
               'client_id', x->>'client_id', 'client_name', x->>'client_name',
               'current_tier', x#>>'{details,current_tier}', 'recommended_tier', x#>>'{details,recommended_tier}',
               'opportunity_type', 'tier_upgrade', 'multiplier', (x#>>'{details,multiplier}')::numeric,
               'current_arr', (x->>'current_arr')::numeric, 'potential_arr', (x#>>'{details,potential_arr}')::numeric,
               'expansion_value', (x->>'value')::numeric, 'probability', (x->>'probability')::numeric,
               'probability_label', x->>'label', 'health_score', (x#>>'{details,health_score}')::integer,
               'usage_rate', (x#>>'{details,seat_utilisation}')::numeric,
               'readiness_indicators', jsonb_build_array(
                   'health score ' || (x#>>'{details,health_score}') || ' >= ' || v_min_health,
                   'seat utilisation ' || (x#>>'{details,seat_utilisation}') || ' >= ' || v_min_usage
                       || ' (' || (x->>'avg_dau') || ' average daily active users of ' || (x->>'seats') || ' seats)',
                   'health trend ' || (x->>'health_trend')),
               'recommended_approach', CASE x->>'label' WHEN 'high' THEN 'Executive business review with ROI case study'
                                                        WHEN 'medium' THEN 'Value review of seat usage with the champion, then a tier proposal'
                                                        ELSE 'CSM-led discovery call' END,
               'timeline', CASE x->>'label' WHEN 'high' THEN '30-60 days' WHEN 'medium' THEN '45-75 days' ELSE '60-90 days' END,
               'next_steps', CASE x->>'label'
                   WHEN 'high' THEN jsonb_build_array('Prepare the ROI case from usage data', 'Schedule the executive business review',
                                                      'Send the ' || (x#>>'{details,recommended_tier}') || ' tier proposal')
                   WHEN 'medium' THEN jsonb_build_array('Review seat usage with the champion', 'Identify ' || (x#>>'{details,recommended_tier}') || ' features in demand',
                                                        'Send the tier proposal')
                   ELSE jsonb_build_array('Book a discovery call', 'Confirm growth plans and budget', 'Revisit in 60 days') END)
               ORDER BY ord), '[]')
    INTO opps
    FROM (SELECT x, ord FROM jsonb_array_elements(cands) WITH ORDINALITY e(x, ord) ORDER BY ord LIMIT v_limit) s;

    -- One account asked for and not a candidate: say which criterion it misses.
    IF v_client IS NOT NULL AND jsonb_array_length(cands) = 0 THEN
        SELECT jsonb_build_object('client_id', v_client, 'reasons', to_jsonb(array_remove(ARRAY[
                   CASE WHEN a.status <> 'active' THEN 'account status is ' || a.status END,
                   CASE WHEN a.tier = 'enterprise' THEN 'enterprise is the highest tier' END,
                   CASE WHEN a.health_score < v_min_health THEN 'health score ' || a.health_score || ' < ' || v_min_health END,
                   CASE WHEN u.client_id IS NULL THEN 'no active contract with a licensed seat count' END,
                   CASE WHEN u.utilisation < v_min_usage THEN 'seat utilisation ' || round(u.utilisation, 4) || ' < ' || v_min_usage END],
                   NULL)))
        INTO excluded
        FROM (SELECT 1) one LEFT JOIN csmcp.exp_utilisation(v_client, t) u ON true;
    END IF;

    RETURN jsonb_build_object(
        'opportunities', opps,
        'opportunity_summary', jsonb_build_object(
            'total_opportunities', jsonb_array_length(cands),
            'listed', jsonb_array_length(opps),
            'total_potential_arr', (SELECT coalesce(sum((x#>>'{details,potential_arr}')::numeric), 0) FROM jsonb_array_elements(cands) x),
            'total_expansion_value', (SELECT coalesce(sum((x->>'value')::numeric), 0) FROM jsonb_array_elements(cands) x),
            'avg_expansion_value', (SELECT round(avg((x->>'value')::numeric), 2) FROM jsonb_array_elements(cands) x),
            'by_tier_upgrade', (SELECT coalesce(jsonb_object_agg(k, n), '{}') FROM (
                SELECT (x#>>'{details,current_tier}') || '_to_' || (x#>>'{details,recommended_tier}') AS k, count(*) AS n
                FROM jsonb_array_elements(cands) x GROUP BY 1) g),
            'by_probability', (SELECT jsonb_build_object(
                'high', count(*) FILTER (WHERE x->>'label' = 'high'),
                'medium', count(*) FILTER (WHERE x->>'label' = 'medium'),
                'low', count(*) FILTER (WHERE x->>'label' = 'low')) FROM jsonb_array_elements(cands) x),
            'opportunities_created', res.created,
            'opportunities_updated', res.changed),
        'criteria', jsonb_build_object('client_id', v_client, 'min_health_score', v_min_health,
                                       'min_usage_threshold', v_min_usage, 'usage_window_days', 30,
                                       'as_of', t),
        'not_qualified', excluded,
        'summary', format('%s upsell opportunities (tier upgrade), potential ARR %s, expansion value %s; %s created, %s updated.',
                               jsonb_array_length(cands),
                               (SELECT coalesce(sum((x#>>'{details,potential_arr}')::numeric), 0) FROM jsonb_array_elements(cands) x),
                               (SELECT coalesce(sum((x->>'value')::numeric), 0) FROM jsonb_array_elements(cands) x),
                               res.created, res.changed));
END $$;

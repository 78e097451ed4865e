-- identify_upsell_opportunities: tier-upgrade candidates (reference §3.5), with the seat
-- utilisation threshold the original ignored made real; found opportunities are persisted
-- (one open 'tier_upgrade:<tier>' opportunity per account, re-running updates it).
CREATE OR REPLACE FUNCTION csmcp.tool_identify_upsell_opportunities(args jsonb, principal text)
-- (custom plans only: one cached plan serves the portfolio and one account - after a few portfolio
-- calls in a session its generic plan, the portfolio's, made one-account calls 40-80 ms instead of 3)
RETURNS jsonb LANGUAGE plpgsql SET plan_cache_mode = force_custom_plan AS $$
DECLARE
    t date := csmcp.today();
    v_client text := csmcp.arg_text(args, 'client_id', NULL);
    v_min_health integer := csmcp.arg_int(args, 'min_health_score', 75, 0, 100);
    v_min_usage numeric := csmcp.arg_num(args, 'min_usage_threshold', 0.70, 0, 2);
    v_limit integer := csmcp.arg_int(args, 'limit', 100, 1, 1000);
    a accounts;
    a_cl text[]; a_next text[]; a_val numeric[]; a_prob numeric[]; a_arr numeric[]; a_close integer[]; a_det jsonb[];
    a_name text[]; a_trend text[]; a_label text[]; a_dau numeric[]; a_seats integer[]; a_tier text[]; a_mult numeric[];
    a_pot numeric[]; a_health integer[]; a_util numeric[];
    n integer;
    res record;
    opps jsonb;
    summ jsonb;
    excluded jsonb;
BEGIN
    -- Inside a bulk seed (csmcp.seed_demo) the rollups this version reads are stale until its
    -- final csmcp.portfolio_rebuild: answer with the from-scratch SQL there (the seed's calls).
    IF csmcp.portfolio_bulk() THEN
        RETURN csmcp.tool_identify_upsell_opportunities_scratch(args, principal);
    END IF;
    IF v_client IS NOT NULL THEN a := csmcp.require_account(v_client); END IF;

    -- Issue 21: seat utilisation from the running usage totals (usage_cum, exact and kept in the
    -- writing transaction: the 30 days ending t are cum(<= t) - cum(<= t - 30)) instead of 30 days
    -- of usage_daily per account - as csmcp.exp_utilisation_all (identify_expansion_opportunities.sql:
    -- the two days' rows hash-joined; session 6: two index probes per account, evaluated again for
    -- every output column, were most of the call), and typed rows instead of one
    -- jsonb document of every candidate parsed six times; the answer is unchanged
    -- (csmcp.tool_identify_upsell_opportunities_scratch, test_rollup_equality_revenue).
    -- (session 7: the accounts read once - the filters above and the utilisation's active status
    -- in one join - with the utilisation of csmcp.exp_utilisation_all inlined: ~0.2-0.4 -> ~0.1-0.15 s
    -- at 100,000 accounts; the same rows)
    WITH c AS (
        SELECT ac.client_id, ac.client_name, ac.tier, ac.health_score, ac.health_trend,
               k.contract_id, k.licensed_seats AS seats, k.contract_value AS arr,
               s.s::numeric / 30 AS avg_dau, s.s::numeric / 30 / k.licensed_seats AS utilisation,
               CASE ac.tier WHEN 'starter' THEN 'standard' WHEN 'standard' THEN 'professional'
                            WHEN 'professional' THEN 'enterprise' END AS next_tier,
               CASE ac.tier WHEN 'starter' THEN 2.0 WHEN 'standard' THEN 2.5 WHEN 'professional' THEN 2.0 END AS mult
        FROM contracts k
        JOIN accounts ac ON ac.client_id = k.client_id AND ac.status = 'active' AND ac.tier <> 'enterprise'
                        AND ac.health_score >= v_min_health
        LEFT JOIN usage_cum d0 ON d0.day = t AND d0.client_id = k.client_id
        LEFT JOIN usage_cum d1 ON d1.day = t - 30 AND d1.client_id = k.client_id
        CROSS JOIN LATERAL (
            SELECT coalesce(d0.cum_users, (SELECT x.cum_users FROM usage_cum x WHERE x.client_id = k.client_id AND x.day <= t
                                           ORDER BY x.day DESC LIMIT 1), 0)
                 - coalesce(d1.cum_users, (SELECT x.cum_users FROM usage_cum x WHERE x.client_id = k.client_id AND x.day <= t - 30
                                           ORDER BY x.day DESC LIMIT 1), 0) AS s) s
        WHERE k.status = 'active' AND k.licensed_seats IS NOT NULL
          AND (v_client IS NULL OR (k.client_id = v_client AND ac.client_id = v_client))
    ),
    p AS (
        SELECT c.*, round(c.arr * c.mult, 2) AS potential,
               CASE WHEN c.health_score >= 85 THEN 0.75 WHEN c.health_score >= 75 THEN 0.60 ELSE 0.40 END AS prob,
               CASE WHEN c.health_score >= 85 THEN 'high' WHEN c.health_score >= 75 THEN 'medium' ELSE 'low' END AS label
        FROM c WHERE c.utilisation >= v_min_usage
    )
    SELECT array_agg(client_id), array_agg(next_tier), array_agg(potential - arr), array_agg(prob), array_agg(arr),
           array_agg(CASE label WHEN 'high' THEN 60 WHEN 'medium' THEN 75 ELSE 90 END),
           array_agg(jsonb_build_object('current_tier', tier, 'recommended_tier', next_tier, 'multiplier', mult,
                                        'potential_arr', potential, 'health_score', health_score,
                                        'seat_utilisation', round(utilisation, 4))),
           array_agg(client_name), array_agg(health_trend), array_agg(label), array_agg(round(avg_dau, 2)), array_agg(seats),
           array_agg(tier), array_agg(mult), array_agg(potential), array_agg(health_score), array_agg(round(utilisation, 4))
    INTO a_cl, a_next, a_val, a_prob, a_arr, a_close, a_det, a_name, a_trend, a_label, a_dau, a_seats,
         a_tier, a_mult, a_pot, a_health, a_util
    FROM (SELECT * FROM p ORDER BY potential - arr DESC, client_id) p;
    n := coalesce(cardinality(a_cl), 0);

    SELECT * INTO res FROM csmcp.exp_upsert_opportunity_arrays(
        a_cl, ARRAY(SELECT 'tier_upgrade:' || x FROM unnest(a_next) x), ARRAY(SELECT 'Upgrade to ' || x FROM unnest(a_next) x),
        array_fill('tier_upgrade'::text, ARRAY[n]), a_val, a_prob, a_arr, array_fill(NULL::text, ARRAY[n]), a_close, a_det,
        principal, 'identify_upsell_opportunities');

    -- the listed ones (the first `limit` in the order above) with their open ids, read after the
    -- upsert (a new snapshot: rows a concurrent call created are seen)
    SELECT coalesce(jsonb_agg(jsonb_build_object(
               'opportunity_id', o.opportunity_id,
               'client_id', x.client_id, 'client_name', x.client_name,
               'current_tier', x.tier, 'recommended_tier', x.next_tier,
               'opportunity_type', 'tier_upgrade', 'multiplier', x.mult,
               'current_arr', x.arr, 'potential_arr', x.potential,
               'expansion_value', x.value, 'probability', x.prob,
               'probability_label', x.label, 'health_score', x.health,
               'usage_rate', x.util,
               'readiness_indicators', jsonb_build_array(
                   'health score ' || x.health || ' >= ' || v_min_health,
                   'seat utilisation ' || x.util || ' >= ' || v_min_usage
                       || ' (' || x.dau || ' average daily active users of ' || x.seats || ' seats)',
                   'health trend ' || x.trend),
               'recommended_approach', CASE x.label WHEN 'high' THEN 'Executive business review with ROI case study'
                                                    WHEN 'medium' THEN 'Value review of seat usage with the champion, then a tier proposal'
                                                    ELSE 'CSM-led discovery call' END,
               'timeline', CASE x.label WHEN 'high' THEN '30-60 days' WHEN 'medium' THEN '45-75 days' ELSE '60-90 days' END,
               'next_steps', CASE x.label
                   WHEN 'high' THEN jsonb_build_array('Prepare the ROI case from usage data', 'Schedule the executive business review',
                                                      'Send the ' || x.next_tier || ' tier proposal')
                   WHEN 'medium' THEN jsonb_build_array('Review seat usage with the champion', 'Identify ' || x.next_tier || ' features in demand',
                                                        'Send the tier proposal')
                   ELSE jsonb_build_array('Book a discovery call', 'Confirm growth plans and budget', 'Revisit in 60 days') END)
               ORDER BY x.ord), '[]')
    INTO opps
    FROM (SELECT * FROM unnest(a_cl, a_name, a_tier, a_next, a_mult, a_arr, a_pot, a_val, a_prob, a_label, a_health, a_util,
                               a_dau, a_seats, a_trend) WITH ORDINALITY
                        u(client_id, client_name, tier, next_tier, mult, arr, potential, value, prob, label, health, util,
                          dau, seats, trend, ord)
          ORDER BY ord LIMIT v_limit) x
    LEFT JOIN expansion_opportunities o ON o.client_id = x.client_id AND o.opportunity_key = 'tier_upgrade:' || x.next_tier
                                       AND o.stage NOT IN ('won', 'lost');

    SELECT jsonb_build_object(
               'total_opportunities', n,
               'listed', jsonb_array_length(opps),
               'total_potential_arr', coalesce(sum(potential), 0),
               'total_expansion_value', coalesce(sum(value), 0),
               'avg_expansion_value', round(avg(value), 2),
               'by_tier_upgrade', (SELECT coalesce(jsonb_object_agg(k, m), '{}') FROM (
                   SELECT x || '_to_' || y AS k, count(*) AS m FROM unnest(a_tier, a_next) g(x, y) GROUP BY 1) g),
               'by_probability', jsonb_build_object('high', count(*) FILTER (WHERE label = 'high'),
                                                    'medium', count(*) FILTER (WHERE label = 'medium'),
                                                    'low', count(*) FILTER (WHERE label = 'low')),
               'opportunities_created', res.created,
               'opportunities_updated', res.changed)
    INTO summ
    FROM unnest(a_pot, a_val, a_label) u(potential, value, label);

    -- One account asked for and not a candidate: say which criterion it misses.
    IF v_client IS NOT NULL AND n = 0 THEN
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
        'opportunity_summary', summ,
        'criteria', jsonb_build_object('client_id', v_client, 'min_health_score', v_min_health,
                                       'min_usage_threshold', v_min_usage, 'usage_window_days', 30,
                                       'as_of', t),
        'not_qualified', excluded,
        'summary', format('%s upsell opportunities (tier upgrade), potential ARR %s, expansion value %s; %s created, %s updated.',
                          n, summ->>'total_potential_arr', summ->>'total_expansion_value', res.created, res.changed));
END $$;

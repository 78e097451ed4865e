-- negotiate_renewals: a negotiation package for the account's active contract: strategy,
-- 1/2/3-year options within the discount guardrails, value evidence from real usage and health;
-- stored on the renewal (renewals.negotiation) of the contract's end date.
CREATE OR REPLACE FUNCTION csmcp.tool_negotiate_renewals(args jsonb, principal text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    t date := csmcp.today();
    v_client text := csmcp.arg_text(args, 'client_id', NULL);
    v_strategy text := csmcp.arg_text(args, 'negotiation_strategy', 'value_reinforcement',
                                      ARRAY['value_reinforcement', 'competitive_defense', 'expansion_bundle']);
    v_proposed numeric := csmcp.arg_num(args, 'proposed_arr', NULL, 0, 1e12);
    actor text := coalesce(nullif(principal, ''), 'anonymous');
    max_disc constant numeric := 0.15;
    a accounts;
    c contracts;
    arr numeric;
    strat_disc numeric;
    base numeric;
    opp record;
    opps jsonb;
    hs health_scores;
    util record;
    trend jsonb;
    n_features integer;
    n_tickets integer;
    n_resolved integer;
    options jsonb;
    evidence jsonb;
    proposal_check jsonb;
    pkg jsonb;
    ren renewals;
    old_neg jsonb;
BEGIN
    IF v_client IS NULL THEN PERFORM csmcp.invalid('client_id is required'); END IF;
    a := csmcp.require_account(v_client);
    c := csmcp.active_contract(v_client);
    IF c.contract_id IS NULL THEN
        RAISE EXCEPTION 'client % has no active contract to renew', v_client USING ERRCODE = 'P0001';
    END IF;
    arr := c.contract_value;

    SELECT count(*) AS n, coalesce(sum(estimated_value), 0) AS total,
           coalesce(round(sum(estimated_value * probability), 2), 0) AS weighted
    INTO opp FROM expansion_opportunities WHERE client_id = v_client AND stage NOT IN ('won', 'lost');
    SELECT coalesce(jsonb_agg(jsonb_build_object('opportunity_id', opportunity_id, 'expansion_type', expansion_type,
                                                 'name', name, 'estimated_value', estimated_value, 'probability', probability)
                              ORDER BY estimated_value DESC, opportunity_id), '[]')
    INTO opps FROM expansion_opportunities WHERE client_id = v_client AND stage NOT IN ('won', 'lost');

    -- Strategy: the base annual value and the strategy discount.
    CASE v_strategy
        WHEN 'value_reinforcement' THEN base := arr; strat_disc := 0;
        WHEN 'competitive_defense' THEN base := arr; strat_disc := 0.05;
        ELSE base := arr + opp.total; strat_disc := CASE WHEN opp.n > 0 THEN 0.10 ELSE 0 END;
    END CASE;

    -- Term options: term discount 0 / 10 % / 15 %, plus the strategy discount, capped at 15 %.
    SELECT jsonb_agg(jsonb_build_object(
               'term', term, 'term_years', yrs, 'term_discount', td, 'strategy_discount', strat_disc,
               'total_discount', least(max_disc, td + strat_disc),
               'annual_value', round(base * (1 - least(max_disc, td + strat_disc)), 2),
               'total_contract_value', round(base * (1 - least(max_disc, td + strat_disc)), 2) * yrs,
               'vs_current_arr', round(round(base * (1 - least(max_disc, td + strat_disc)), 2) / nullif(arr, 0), 4),
               'discount_capped', td + strat_disc > max_disc,
               'requires_approval', round(base * (1 - least(max_disc, td + strat_disc)), 2) < round(arr * 0.80, 2))
               ORDER BY yrs)
    INTO options
    FROM (VALUES ('1-year', 1, 0.00), ('2-year', 2, 0.10), ('3-year', 3, 0.15)) x(term, yrs, td);

    IF v_proposed IS NOT NULL THEN
        proposal_check := jsonb_build_object(
            'proposed_arr', v_proposed,
            'discount_vs_current', round(1 - v_proposed / nullif(arr, 0), 4),
            'status', CASE WHEN v_proposed >= round(arr * 0.85, 2) THEN 'within_guardrails'
                           WHEN v_proposed >= round(arr * 0.80, 2) THEN 'below_floor'
                           ELSE 'requires_approval' END,
            'requires_approval', v_proposed < round(arr * 0.80, 2));
    END IF;

    -- Value evidence from the account's data.
    SELECT * INTO hs FROM health_scores WHERE client_id = v_client ORDER BY calculated_at DESC, score_id DESC LIMIT 1;
    SELECT * INTO util FROM csmcp.exp_utilisation(v_client, t);
    trend := csmcp.usage_trend(v_client, t);
    SELECT count(*) INTO n_features FROM feature_adoption WHERE client_id = v_client;
    SELECT count(*), count(*) FILTER (WHERE resolved_at IS NOT NULL) INTO n_tickets, n_resolved
    FROM support_tickets WHERE client_id = v_client AND created_at > now() - interval '90 days';
    evidence := jsonb_build_object(
        'health_score', a.health_score, 'health_trend', a.health_trend,
        'health_components', CASE WHEN hs.score_id IS NOT NULL THEN jsonb_build_object(
            'usage', hs.usage_score, 'engagement', hs.engagement_score, 'support', hs.support_score,
            'satisfaction', hs.satisfaction_score, 'payment', hs.payment_score, 'calculated_at', hs.calculated_at) END,
        'licensed_seats', c.licensed_seats,
        'avg_daily_active_users_30d', round(util.avg_dau, 2),
        'seat_utilisation_30d', round(util.utilisation, 4),
        'usage_trend', trend,
        'features_adopted', n_features,
        'features_available', (SELECT count(*) FROM features),
        'tickets_last_90_days', n_tickets, 'tickets_resolved_last_90_days', n_resolved,
        'talking_points', to_jsonb(array_remove(ARRAY[
            CASE WHEN util.utilisation IS NOT NULL THEN
                round(util.avg_dau, 1) || ' of ' || c.licensed_seats || ' seats active on average over 30 days ('
                || round(util.utilisation * 100, 1) || ' %)' END,
            n_features || ' features adopted',
            CASE WHEN trend->>'direction' = 'growing' THEN 'daily active users up ' || (trend->>'change_pct') || ' % over the last 15 days' END,
            CASE WHEN a.health_score >= 70 THEN 'health score ' || a.health_score || ' (' || a.health_trend || ')' END,
            CASE WHEN n_tickets > 0 THEN n_resolved || ' of ' || n_tickets || ' support tickets resolved in 90 days' END], NULL)),
        'weak_points', to_jsonb(array_remove(ARRAY[
            CASE WHEN a.health_score < 70 THEN 'health score ' || a.health_score || ' below 70' END,
            CASE WHEN util.utilisation < 0.5 THEN 'seat utilisation ' || round(util.utilisation * 100, 1) || ' % below 50 %' END,
            CASE WHEN trend->>'direction' = 'declining' THEN 'daily active users down ' || (trend->>'change_pct') || ' %' END,
            CASE WHEN hs.payment_score < 100 THEN 'payment component ' || hs.payment_score END], NULL)));

    pkg := jsonb_build_object(
        'client_id', v_client, 'client_name', a.client_name, 'contract_id', c.contract_id,
        'renewal_date', c.end_date, 'days_until_renewal', c.end_date - t,
        'contract_term', c.contract_type, 'auto_renew', c.auto_renew,
        'current_arr', arr,
        'negotiation_strategy', v_strategy,
        'strategy', jsonb_build_object(
            'name', v_strategy,
            'approach', CASE v_strategy
                WHEN 'value_reinforcement' THEN 'Renew at the current value; lead with the value evidence and outcomes achieved'
                WHEN 'competitive_defense' THEN 'Protect the account against a competitor: 5 % retention discount, lock in multi-year'
                ELSE 'Bundle the open expansion opportunities into the renewal at a 10 % bundle discount' END,
            'base_annual_value', base, 'strategy_discount', strat_disc,
            'expansion_included', CASE WHEN v_strategy = 'expansion_bundle' THEN opps END,
            'note', CASE WHEN v_strategy = 'expansion_bundle' AND opp.n = 0
                         THEN 'no open expansion opportunities for this account: the bundle equals the current value' END),
        'proposal_arr', round(base * (1 - least(max_disc, strat_disc)), 2),
        'term_options', options,
        'guardrails', jsonb_build_object('max_discount', max_disc, 'floor_arr', round(arr * 0.85, 2),
                                         'approval_required_below', round(arr * 0.80, 2)),
        'proposal_check', proposal_check,
        'value_evidence', evidence,
        'open_expansion', jsonb_build_object('count', opp.n, 'total_value', opp.total, 'weighted_value', opp.weighted),
        'prepared_at', now(), 'prepared_by', actor);

    -- Store the package on the renewal of this contract's end date (created when missing).
    SELECT * INTO ren FROM renewals WHERE contract_id = c.contract_id AND renewal_date = c.end_date FOR UPDATE;
    old_neg := ren.negotiation;
    INSERT INTO renewals AS r (renewal_id, contract_id, client_id, renewal_date, status, current_arr, negotiation, updated_at)
    VALUES ('REN-' || nextval('renewal_seq'), c.contract_id, v_client, c.end_date,
            CASE WHEN csmcp.exp_renewal_probability(a.health_score) >= 0.80 THEN 'on_track'
                 WHEN csmcp.exp_renewal_probability(a.health_score) >= 0.60 THEN 'at_risk' ELSE 'high_risk' END,
            arr, pkg, now())
    ON CONFLICT (contract_id, renewal_date) DO UPDATE SET negotiation = excluded.negotiation, updated_at = now()
    RETURNING * INTO ren;
    PERFORM csmcp.log_activity(v_client, actor, 'negotiate_renewals:prepare', 'renewal', ren.renewal_id,
                               CASE WHEN old_neg IS NOT NULL THEN jsonb_build_object('negotiation', old_neg) END,
                               jsonb_build_object('negotiation', pkg));

    RETURN pkg || jsonb_build_object(
        'renewal_id', ren.renewal_id,
        'summary', format('%s renewal on %s: current ARR %s, %s proposal %s; 2-year %s/yr, 3-year %s/yr; floor %s, approval below %s.',
                          v_client, c.end_date, arr, v_strategy, round(base * (1 - least(max_disc, strat_disc)), 2),
                          options->1->>'annual_value', options->2->>'annual_value', round(arr * 0.85, 2), round(arr * 0.80, 2)));
END $$;

-- optimize_customer_lifetime_value: CLV = ARR x gross margin / annual churn rate for an account
-- or a segment (tier), with strategies chosen by rule from the weakest health components and the
-- open expansion opportunities; LTV:CAC only when a CAC is configured.
CREATE OR REPLACE FUNCTION csmcp.tool_optimize_customer_lifetime_value(args jsonb, principal text)
RETURNS jsonb LANGUAGE plpgsql
-- (jit off: at 100,000 accounts the plans cost enough to be JIT-compiled on every call, 80-190 ms
-- of compilation for queries that run in 150-400 ms; issue 21)
SET jit = off AS $$
DECLARE
    t date := csmcp.today();
    v_client text := csmcp.arg_text(args, 'client_id', NULL);
    v_focus text := csmcp.arg_text(args, 'optimization_focus', 'balanced', ARRAY['balanced', 'retention', 'expansion', 'efficiency']);
    v_tier text := csmcp.arg_text(args, 'tier', NULL, ARRAY['starter', 'standard', 'professional', 'enterprise']);
    gm numeric := csmcp.exp_setting('gross_margin');
    cac numeric := csmcp.exp_setting('cac');
    gm_src text;
    m record;
    churn numeric;
    raw_churn numeric;
    a accounts;
    seg record;
    comp record;
    opp record;
    strategies jsonb := '[]';
    result jsonb;
BEGIN
    -- Inside a bulk seed (csmcp.seed_demo) the rollups this version reads are stale until its
    -- final csmcp.portfolio_rebuild: answer with the from-scratch SQL there (the seed's calls).
    IF csmcp.portfolio_bulk() THEN
        RETURN csmcp.tool_optimize_customer_lifetime_value_scratch(args, principal);
    END IF;
    IF v_client IS NOT NULL AND v_tier IS NOT NULL THEN
        PERFORM csmcp.invalid('give client_id or tier, not both');
    END IF;
    IF v_client IS NOT NULL THEN a := csmcp.require_account(v_client); END IF;
    SELECT NULL::integer AS usage_score, NULL::integer AS engagement_score, NULL::integer AS support_score,
           NULL::numeric AS satisfaction_score, NULL::integer AS payment_score INTO comp;
    gm_src := CASE WHEN gm IS NULL THEN 'default' ELSE 'revenue_settings' END;
    gm := coalesce(gm, 0.8);

    -- Annual churn rate of the portfolio: churned ARR / starting ARR over the last 12 months
    -- (the 365 days ending today; cohort rules as in track_revenue_expansion), floor 0.05.
    SELECT * INTO m FROM csmcp.exp_annual_churn(t);
    raw_churn := CASE WHEN m.starting_arr > 0 THEN round(m.churned_arr / m.starting_arr, 4) END;
    churn := greatest(0.05, coalesce(raw_churn, 0.05));

    -- Scope: one account, one tier, or every active account with an active contract.
    -- (a tier or the portfolio: from crosssell_own, migration 0171 - exactly the active accounts
    -- with an active contract and its value, kept in the writing transaction - instead of
    -- accounts x contracts; issue 21)
    IF v_client IS NOT NULL THEN
        SELECT count(*) AS n, coalesce(sum(c.contract_value), 0) AS arr
        INTO seg
        FROM accounts ac JOIN contracts c ON c.client_id = ac.client_id AND c.status = 'active'
        WHERE ac.client_id = v_client;
    ELSE
        SELECT count(*) AS n, coalesce(sum(o.contract_value), 0) AS arr
        INTO seg
        FROM crosssell_own o WHERE v_tier IS NULL OR o.tier = v_tier;
    END IF;

    -- (the top opportunity by one ordered LIMIT 1 instead of three sorted array_aggs of all of them;
    -- a segment's accounts - status and tier - from account_health_latest, migration 0173, kept in
    -- the writing transaction, instead of a join with the wide accounts rows; the open rows' figures
    -- from the covering partial index of migration 0170, the top row's name fetched once)
    WITH o AS MATERIALIZED (
        SELECT o.opportunity_id, o.estimated_value, o.probability
        FROM expansion_opportunities o
        WHERE o.stage NOT IN ('won', 'lost')
          AND ((v_client IS NOT NULL AND o.client_id = v_client)
            OR (v_client IS NULL AND EXISTS (SELECT 1 FROM account_health_latest l
                                             WHERE l.client_id = o.client_id AND l.status = 'active'
                                               AND (v_tier IS NULL OR l.tier = v_tier))))
    ),
    top AS (SELECT x.opportunity_id, x.name, x.expansion_type FROM expansion_opportunities x
            WHERE x.opportunity_id = (SELECT opportunity_id FROM o ORDER BY estimated_value * probability DESC, opportunity_id LIMIT 1))
    SELECT count(*) AS n, coalesce(sum(o.estimated_value), 0) AS total,
           coalesce(round(sum(o.estimated_value * o.probability), 2), 0) AS weighted,
           (SELECT opportunity_id FROM top) AS top_id, (SELECT name FROM top) AS top_name,
           (SELECT expansion_type FROM top) AS top_type
    INTO opp
    FROM o;

    -- Weakest health components: per account, the components of its latest health score below 70
    -- (lowest first); for a segment, how many accounts have each component below 70.
    IF v_client IS NOT NULL THEN
        SELECT * INTO comp FROM (
            SELECT h.usage_score, h.engagement_score, h.support_score, h.satisfaction_score, h.payment_score
            FROM health_scores h WHERE h.client_id = v_client ORDER BY h.calculated_at DESC, h.score_id DESC LIMIT 1) x;
        IF v_focus IN ('balanced', 'retention') AND comp IS NOT NULL THEN
            SELECT coalesce(jsonb_agg(s ORDER BY ord), '[]') INTO strategies FROM (
                SELECT jsonb_build_object('type', 'retention', 'component', k, 'component_score', v,
                                          'strategy', CASE k WHEN 'usage' THEN 'Seat activation and adoption programme'
                                                             WHEN 'engagement' THEN 'Re-engagement cadence with the champion'
                                                             WHEN 'support' THEN 'Support health review of open and recent tickets'
                                                             WHEN 'satisfaction' THEN 'Detractor follow-up and NPS recovery plan'
                                                             ELSE 'Billing review of overdue and late invoices' END,
                                          'rule', k || ' component ' || v || ' < 70') AS s,
                       row_number() OVER (ORDER BY v, k) AS ord
                FROM (VALUES ('usage', comp.usage_score::numeric), ('engagement', comp.engagement_score::numeric),
                             ('support', comp.support_score::numeric), ('satisfaction', comp.satisfaction_score),
                             ('payment', comp.payment_score::numeric)) c(k, v)
                WHERE v < 70 ORDER BY v, k LIMIT CASE WHEN v_focus = 'balanced' THEN 2 ELSE 5 END) z;
        END IF;
    ELSE
        IF v_focus IN ('balanced', 'retention') THEN
            -- (the latest components per account from account_health_latest, migration 0173, kept in
            -- the writing transaction: one pass over a narrow row per account instead of DISTINCT ON
            -- over every health score; NULL components = no health score, not counted)
            WITH latest AS (
                SELECT l.client_id, l.usage_score, l.engagement_score, l.support_score, l.satisfaction_score, l.payment_score
                FROM account_health_latest l
                WHERE l.status = 'active' AND (v_tier IS NULL OR l.tier = v_tier) AND l.usage_score IS NOT NULL
            ),
            weak AS (
                SELECT k, count(*) AS n FROM latest
                CROSS JOIN LATERAL (VALUES ('usage', usage_score::numeric), ('engagement', engagement_score::numeric),
                                           ('support', support_score::numeric), ('satisfaction', satisfaction_score),
                                           ('payment', payment_score::numeric)) c(k, v)
                WHERE v < 70 GROUP BY k
            )
            SELECT coalesce(jsonb_agg(jsonb_build_object('type', 'retention', 'component', k, 'accounts', n,
                        'strategy', CASE k WHEN 'usage' THEN 'Seat activation and adoption programme'
                                           WHEN 'engagement' THEN 'Re-engagement cadence with the champion'
                                           WHEN 'support' THEN 'Support health review of open and recent tickets'
                                           WHEN 'satisfaction' THEN 'Detractor follow-up and NPS recovery plan'
                                           ELSE 'Billing review of overdue and late invoices' END,
                        'rule', n || ' accounts with the ' || k || ' component < 70') ORDER BY n DESC, k), '[]')
            INTO strategies
            FROM (SELECT * FROM weak ORDER BY n DESC, k LIMIT CASE WHEN v_focus = 'balanced' THEN 2 ELSE 5 END) w;
        END IF;
    END IF;

    IF v_focus IN ('balanced', 'expansion') AND opp.n > 0 THEN
        strategies := strategies || jsonb_build_array(jsonb_build_object(
            'type', 'expansion', 'strategy', 'Pursue the open expansion pipeline, starting with ' || opp.top_name
                                            || ' (' || opp.top_id || ', ' || opp.top_type || ')',
            'opportunities', opp.n, 'total_value', opp.total, 'weighted_value', opp.weighted,
            'rule', opp.n || ' open expansion opportunities'));
    END IF;
    IF v_focus IN ('balanced', 'efficiency') AND seg.n > 0 AND seg.arr / seg.n < 10000 THEN
        strategies := strategies || jsonb_build_array(jsonb_build_object(
            'type', 'efficiency', 'strategy', 'Serve through the digital / self-service model (starter value tier)',
            'rule', 'average ARR ' || round(seg.arr / seg.n, 2) || ' < 10000'));
    END IF;
    IF v_focus = 'efficiency' AND (v_client IS NULL OR comp.support_score < 70) THEN
        strategies := strategies || jsonb_build_array(jsonb_build_object(
            'type', 'efficiency', 'strategy', 'Deflect repeat tickets to knowledge-base articles',
            'rule', CASE WHEN v_client IS NULL THEN 'efficiency focus over a segment'
                         ELSE 'support component ' || comp.support_score || ' < 70' END));
    END IF;

    result := jsonb_build_object(
        'scope', CASE WHEN v_client IS NOT NULL THEN 'account' WHEN v_tier IS NOT NULL THEN 'segment' ELSE 'portfolio' END,
        'client_id', v_client, 'tier', v_tier, 'optimization_focus', v_focus,
        'accounts', seg.n,
        'current_arr', seg.arr,
        'assumptions', jsonb_build_object(
            'gross_margin', gm, 'gross_margin_source', gm_src,
            'annual_churn_rate', churn, 'measured_churn_rate', raw_churn, 'churn_floor_applied', coalesce(raw_churn, 0) < 0.05,
            'churn_window', jsonb_build_object('start', t - 364, 'end', t, 'starting_arr', m.starting_arr,
                                               'churned_arr', m.churned_arr),
            'expected_lifetime_years', round(1 / churn, 2)),
        'current_clv', round(seg.arr * gm / churn, 2),
        'average_clv', CASE WHEN seg.n > 0 THEN round(seg.arr / seg.n * gm / churn, 2) END,
        'potential_clv', round((seg.arr + opp.weighted) * gm / churn, 2),
        'potential_basis', 'current ARR + weighted open expansion pipeline (' || opp.weighted || ')',
        'open_expansion', jsonb_build_object('count', opp.n, 'total_value', opp.total, 'weighted_value', opp.weighted),
        'cac', coalesce(to_jsonb(cac), '"no data"'::jsonb),
        'ltv_to_cac', CASE WHEN cac > 0 AND seg.n > 0 THEN to_jsonb(round(seg.arr / seg.n * gm / churn / cac, 2))
                           ELSE '"no data"'::jsonb END,
        'ltv_to_cac_note', CASE WHEN cac IS NULL THEN 'no CAC configured (revenue_settings key cac)'
                                WHEN cac = 0 THEN 'CAC configured as 0' END,
        'health_components', CASE WHEN v_client IS NOT NULL AND comp IS NOT NULL THEN jsonb_build_object(
            'usage', comp.usage_score, 'engagement', comp.engagement_score, 'support', comp.support_score,
            'satisfaction', comp.satisfaction_score, 'payment', comp.payment_score) END,
        'strategies', strategies);
    RETURN result || jsonb_build_object('summary', format(
        '%s (%s accounts): ARR %s, CLV %s (margin %s, churn %s), potential %s; %s strategies; LTV:CAC %s.',
        coalesce(v_client, v_tier, 'portfolio'), seg.n, seg.arr, result->>'current_clv', gm, churn,
        result->>'potential_clv', jsonb_array_length(strategies), result->>'ltv_to_cac'));
END $$;

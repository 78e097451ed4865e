-- The from-scratch references of the expansion & revenue tools (issue 21): the SQL of each tool
-- as it was before its rollup-backed or set-based rewrite, kept verbatim under the name
-- csmcp.<tool>_scratch (the whole function, on purpose: the reference must not change with the
-- tool's shared parts). Not registered as tools: the
-- equality test (tests/integration/test_rollup_equality_revenue.py) compares every answer of the
-- tool with its reference after randomized concurrent writes.

CREATE OR REPLACE FUNCTION csmcp.tool_identify_upsell_opportunities_scratch(args jsonb, principal text)
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

CREATE OR REPLACE FUNCTION csmcp.tool_identify_crosssell_opportunities_scratch(args jsonb, principal text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    t date := csmcp.today();
    v_client text := csmcp.arg_text(args, 'client_id', NULL);
    v_family text := csmcp.arg_text(args, 'product_family', 'all',
                                    ARRAY['all', 'analytics', 'integration', 'automation', 'security', 'services']);
    v_min_fit numeric := csmcp.arg_num(args, 'min_fit_score', 0.5, 0, 1);
    v_limit integer := csmcp.arg_int(args, 'limit', 100, 1, 1000);
    a accounts;
    c contracts;
    a_cl text[]; a_pr text[]; a_nm text[]; a_val numeric[]; a_fit numeric[]; a_arr numeric[]; a_det jsonb[];
    a_cname text[]; a_ctier text[]; a_cind text[];
    res record;
    accts jsonb;
    summ jsonb;
    n_products integer;
BEGIN
    IF v_client IS NOT NULL THEN
        a := csmcp.require_account(v_client);
        c := csmcp.active_contract(v_client);
        IF c.contract_id IS NULL THEN
            RAISE EXCEPTION 'client % has no active contract: cross-sell needs the products of an active contract', v_client
                USING ERRCODE = 'P0001';
        END IF;
    END IF;
    SELECT count(*) INTO n_products FROM products WHERE active AND NOT is_base AND (v_family = 'all' OR family = v_family);

    -- One pass over contract_products: each contract's products as an array; eligibility is
    -- then array containment (prerequisites <@ owned), not a probe per account and product.
    WITH own AS (   -- accounts in scope of the fit computation: active, with an active contract
        SELECT ac.client_id, ac.client_name, ac.tier, ac.industry, k.contract_id, k.contract_value, k.licensed_seats,
               coalesce(cp.products, '{}') AS products
        FROM accounts ac JOIN contracts k ON k.client_id = ac.client_id AND k.status = 'active'
        LEFT JOIN LATERAL (SELECT array_agg(x.product_id) AS products FROM contract_products x
                           WHERE x.contract_id = k.contract_id) cp ON true
        WHERE ac.status = 'active' AND (v_client IS NULL OR (ac.tier = a.tier AND ac.industry = a.industry))
    ),
    peers AS (SELECT tier, industry, count(*) AS n FROM own GROUP BY 1, 2),
    owners AS (
        SELECT own.tier, own.industry, pid AS product_id, count(*) AS n
        FROM own CROSS JOIN unnest(own.products) pid GROUP BY 1, 2, 3
    ),
    cat AS MATERIALIZED (
        SELECT p.product_id, p.name, p.family, p.list_price,
               coalesce((SELECT array_agg(pr.requires) FROM product_prerequisites pr WHERE pr.product_id = p.product_id), '{}') AS req
        FROM products p
        WHERE p.active AND NOT p.is_base AND (v_family = 'all' OR p.family = v_family)
    ),
    target AS (SELECT * FROM own WHERE v_client IS NULL OR client_id = v_client),
    base AS (SELECT coalesce(array_agg(product_id), '{}') AS ids FROM products WHERE is_base AND active),
    -- fit per (tier, industry, product) first, filtered by min_fit_score: few rows, so only the
    -- products that can qualify are matched against each account
    fits AS MATERIALIZED (
        SELECT pe.tier, pe.industry, cat.product_id, cat.name AS product_name, cat.family, cat.list_price, cat.req,
               pe.n AS peers, coalesce(o.n, 0) AS peers_owning, round(coalesce(o.n, 0)::numeric / pe.n, 2) AS fit
        FROM peers pe CROSS JOIN cat
        LEFT JOIN owners o ON o.tier = pe.tier AND o.industry = pe.industry AND o.product_id = cat.product_id
        WHERE round(coalesce(o.n, 0)::numeric / pe.n, 2) >= v_min_fit
    ),
    cand AS (
        SELECT tg.client_id, tg.client_name, tg.tier, tg.industry, tg.contract_value, tg.licensed_seats,
               f.product_id, f.product_name, f.family, f.list_price, f.peers, f.peers_owning, f.fit,
               csmcp.exp_seats_factor(tg.licensed_seats) AS factor
        FROM target tg
        CROSS JOIN base
        JOIN fits f ON f.tier = tg.tier AND f.industry = tg.industry
        WHERE NOT (f.product_id = ANY (tg.products)) AND f.req <@ (tg.products || base.ids)
    )
    -- typed arrays, one element per candidate (no jsonb document of every candidate: issue 21)
    -- (one sort: the aggregates read the ordered subquery in its order)
    SELECT array_agg(client_id), array_agg(product_id), array_agg(product_name), array_agg(round(list_price * factor, 2)),
           array_agg(fit), array_agg(contract_value),
           array_agg(jsonb_build_object('product_id', product_id, 'family', family, 'fit_score', fit,
                                        'peers', peers, 'peers_owning', peers_owning, 'list_price', list_price,
                                        'seats', licensed_seats, 'seats_factor', factor)),
           array_agg(client_name), array_agg(tier), array_agg(industry)
    INTO a_cl, a_pr, a_nm, a_val, a_fit, a_arr, a_det, a_cname, a_ctier, a_cind
    FROM (SELECT * FROM cand ORDER BY client_id, fit DESC, product_id) cand;

    SELECT * INTO res FROM csmcp.exp_upsert_opportunity_arrays(
        a_cl, ARRAY(SELECT 'cross_sell:' || x FROM unnest(a_pr) x), a_nm, array_fill('cross_sell'::text, ARRAY[coalesce(cardinality(a_cl), 0)]),
        a_val, a_fit, a_arr, a_pr, array_fill(90, ARRAY[coalesce(cardinality(a_cl), 0)]), a_det, principal, 'identify_crosssell_opportunities');

    -- Per account: totals of every account (summary), recommendations and the bundle (2 products
    -- -> 10 %, 3 or more -> 15 % off the sum) built only for the listed ones; the open ids are
    -- read after the upsert (a new snapshot: rows a concurrent call created are seen).
    WITH r AS MATERIALIZED (
        SELECT u.* FROM unnest(a_cl, a_pr, a_nm, a_val, a_fit, a_arr, a_det, a_cname, a_ctier, a_cind)
                        u(client_id, product, product_name, value, fit, current_arr, details, client_name, tier, industry)
    ),
    tot AS MATERIALIZED (
        SELECT client_id, count(*) AS n, sum(value) AS total,
               CASE WHEN count(*) >= 3 THEN 0.15 WHEN count(*) = 2 THEN 0.10 ELSE 0 END AS disc
        FROM r GROUP BY 1
    ),
    top AS MATERIALIZED (SELECT * FROM tot ORDER BY total DESC, client_id LIMIT v_limit),
    per AS (
        SELECT top.client_id, top.n, top.total, top.disc, min(r.client_name) AS client_name, min(r.tier) AS tier,
               min(r.industry) AS industry, min(r.current_arr) AS current_arr,
               jsonb_agg(jsonb_build_object('opportunity_id', o.opportunity_id,
                                            'product_id', r.product, 'product_name', r.product_name,
                                            'family', r.details->>'family',
                                            'fit_score', r.fit,
                                            'peers', (r.details->>'peers')::integer,
                                            'peers_owning', (r.details->>'peers_owning')::integer,
                                            'list_price', (r.details->>'list_price')::numeric,
                                            'seats_factor', (r.details->>'seats_factor')::numeric,
                                            'estimated_value', r.value)
                         ORDER BY r.fit DESC, r.product) AS recs
        FROM top JOIN r ON r.client_id = top.client_id
        LEFT JOIN expansion_opportunities o ON o.client_id = r.client_id AND o.opportunity_key = 'cross_sell:' || r.product
                                           AND o.stage NOT IN ('won', 'lost')
        GROUP BY top.client_id, top.n, top.total, top.disc
    )
    SELECT (SELECT coalesce(jsonb_agg(jsonb_build_object(
                'client_id', client_id, 'client_name', client_name, 'tier', tier, 'industry', industry,
                'current_arr', current_arr, 'recommendations', recs, 'total_value', total,
                'bundle', CASE WHEN n >= 2 THEN jsonb_build_object('products', n, 'discount', disc, 'list_value', total,
                                                                   'bundle_value', round(total * (1 - disc), 2)) END)
                ORDER BY total DESC, client_id), '[]') FROM per),
           jsonb_build_object(
               'accounts_with_opportunities', (SELECT count(*) FROM tot),
               'total_opportunities', (SELECT coalesce(sum(n), 0) FROM tot),
               'total_value', (SELECT coalesce(sum(total), 0) FROM tot),
               'total_bundle_value', (SELECT coalesce(sum(round(total * (1 - disc), 2)), 0) FROM tot),
               'by_product', (SELECT coalesce(jsonb_object_agg(product, k), '{}')
                              FROM (SELECT product, count(*) AS k FROM r GROUP BY 1) g),
               'opportunities_created', res.created,
               'opportunities_updated', res.changed)
    INTO accts, summ;
    summ := summ || jsonb_build_object('accounts_listed', jsonb_array_length(accts));

    RETURN jsonb_build_object(
        'accounts', accts,
        'opportunity_summary', summ,
        'criteria', jsonb_build_object('client_id', v_client, 'product_family', v_family, 'min_fit_score', v_min_fit,
                                       'products_considered', n_products, 'as_of', t),
        'summary', format('%s cross-sell opportunities for %s accounts, total value %s; %s created, %s updated.',
                          summ->>'total_opportunities', summ->>'accounts_with_opportunities', summ->>'total_value',
                          res.created, res.changed));
END $$;

CREATE OR REPLACE FUNCTION csmcp.tool_optimize_customer_lifetime_value_scratch(args jsonb, principal text)
RETURNS jsonb LANGUAGE plpgsql AS $$
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
    SELECT count(*) AS n, coalesce(sum(c.contract_value), 0) AS arr
    INTO seg
    FROM accounts ac JOIN contracts c ON c.client_id = ac.client_id AND c.status = 'active'
    WHERE (v_client IS NOT NULL AND ac.client_id = v_client)
       OR (v_client IS NULL AND ac.status = 'active' AND (v_tier IS NULL OR ac.tier = v_tier));

    -- (the top opportunity by one ordered LIMIT 1 instead of three sorted array_aggs of all of them)
    WITH o AS MATERIALIZED (
        SELECT o.opportunity_id, o.name, o.expansion_type, o.estimated_value, o.probability
        FROM expansion_opportunities o JOIN accounts ac ON ac.client_id = o.client_id
        WHERE o.stage NOT IN ('won', 'lost')
          AND ((v_client IS NOT NULL AND o.client_id = v_client)
            OR (v_client IS NULL AND ac.status = 'active' AND (v_tier IS NULL OR ac.tier = v_tier)))
    ),
    top AS (SELECT opportunity_id, name, expansion_type FROM o
            ORDER BY estimated_value * probability DESC, opportunity_id LIMIT 1)
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
            WITH latest AS (
                SELECT DISTINCT ON (h.client_id) h.client_id, h.usage_score, h.engagement_score, h.support_score,
                       h.satisfaction_score, h.payment_score
                FROM health_scores h JOIN accounts ac ON ac.client_id = h.client_id
                WHERE ac.status = 'active' AND (v_tier IS NULL OR ac.tier = v_tier)
                ORDER BY h.client_id, h.calculated_at DESC, h.score_id DESC
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

CREATE OR REPLACE FUNCTION csmcp.tool_track_revenue_expansion_scratch(args jsonb, principal text)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
    t date := csmcp.today();
    v_period text := csmcp.arg_text(args, 'time_period', 'quarterly', ARRAY['monthly', 'quarterly', 'annual']);
    v_pipeline boolean := csmcp.arg_bool(args, 'include_pipeline', true);
    v_in date := csmcp.arg_date(args, 'period_start', NULL);
    ps date;
    pe date;
    m record;
    nrr numeric;
    grr numeric;
    pipe jsonb;
BEGIN
    IF v_in IS NULL THEN
        -- the last complete period: the one before the period containing today
        SELECT p_start INTO ps FROM csmcp.exp_period(v_period, t);
        SELECT p_start, p_end INTO ps, pe FROM csmcp.exp_period(v_period, ps - 1);
    ELSE
        SELECT p_start, p_end INTO ps, pe FROM csmcp.exp_period(v_period, v_in);
        IF ps > t THEN
            PERFORM csmcp.invalid(format('period_start: the %s period of %s starts after today (%s)', v_period, v_in, t));
        END IF;
    END IF;

    SELECT * INTO m FROM csmcp.exp_arr_movement(ps, pe);
    IF m.starting_arr > 0 THEN
        nrr := round((m.starting_arr + m.expansion_arr - m.contraction_arr - m.churned_arr) / m.starting_arr, 4);
        grr := round((m.starting_arr - m.contraction_arr - m.churned_arr) / m.starting_arr, 4);
    END IF;

    IF v_pipeline THEN
        SELECT jsonb_build_object(
                   'open_opportunities', count(*), 'accounts', count(DISTINCT client_id),
                   'total_value', coalesce(sum(estimated_value), 0),
                   'weighted_value', coalesce(round(sum(estimated_value * probability), 2), 0),
                   'by_type', coalesce((SELECT jsonb_object_agg(expansion_type, jsonb_build_object('count', n, 'total_value', v,
                                                                                                  'weighted_value', w))
                                        FROM (SELECT expansion_type, count(*) AS n, sum(estimated_value) AS v,
                                                     round(sum(estimated_value * probability), 2) AS w
                                              FROM expansion_opportunities WHERE stage NOT IN ('won', 'lost') GROUP BY 1) g), '{}'))
        INTO pipe FROM expansion_opportunities WHERE stage NOT IN ('won', 'lost');
    END IF;

    RETURN jsonb_build_object(
        'time_period', v_period,
        'period', jsonb_build_object('start', ps, 'end', pe - 1, 'complete', pe <= t),
        'starting_arr', m.starting_arr,
        'expansion_arr', m.expansion_arr,
        'contraction_arr', m.contraction_arr,
        'churned_arr', m.churned_arr,
        'new_arr', m.new_arr,
        'ending_arr', m.ending_arr,
        'net_change_arr', m.ending_arr - m.starting_arr,
        'net_revenue_retention', nrr,
        'gross_revenue_retention', grr,
        'accounts', jsonb_build_object('starting', m.starting_accounts, 'expanded', m.expanded_accounts,
                                       'contracted', m.contracted_accounts, 'churned', m.churned_accounts,
                                       'new', m.new_accounts),
        'no_data_reason', CASE WHEN m.starting_arr <= 0 THEN 'no ARR at the start of the period: NRR and GRR are undefined' END,
        'pipeline', pipe,
        'summary', format('%s %s to %s: starting ARR %s, expansion %s, contraction %s, churn %s, new %s; NRR %s, GRR %s.',
                          v_period, ps, pe - 1, m.starting_arr, m.expansion_arr, m.contraction_arr, m.churned_arr, m.new_arr,
                          coalesce(nrr::text, 'no data'), coalesce(grr::text, 'no data')));
END $$;

-- identify_expansion_opportunities as before session 6 (issue 21), the detection summing 30 days
-- of usage_daily (exp_utilisation) and the jsonb upsert: the reference of
-- test_rollup_equality_revenue.
CREATE OR REPLACE FUNCTION csmcp.tool_identify_expansion_opportunities_scratch(args jsonb, principal text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    t date := csmcp.today();
    all_types text[] := ARRAY['user_expansion', 'usage_expansion', 'tier_upgrade', 'cross_sell', 'professional_services'];
    v_client text := csmcp.arg_text(args, 'client_id', NULL);
    v_types text[];
    v_limit integer := csmcp.arg_int(args, 'limit', 100, 1, 1000);
    a accounts;
    cands jsonb := '[]';
    res record;
    by_type jsonb;
    opps jsonb;
    tot record;
    cur_arr numeric;
BEGIN
    IF args ? 'opportunity_types' AND jsonb_typeof(args -> 'opportunity_types') <> 'null' THEN
        IF jsonb_typeof(args -> 'opportunity_types') <> 'array' OR jsonb_array_length(args -> 'opportunity_types') = 0 THEN
            PERFORM csmcp.invalid('opportunity_types must be a non-empty array');
        END IF;
        SELECT array_agg(DISTINCT x) INTO v_types FROM jsonb_array_elements_text(args -> 'opportunity_types') x;
        IF NOT v_types <@ all_types THEN
            PERFORM csmcp.invalid('opportunity_types: each must be one of ' || array_to_string(all_types, ', '));
        END IF;
    ELSE
        v_types := all_types;
    END IF;
    IF v_client IS NOT NULL THEN a := csmcp.require_account(v_client); END IF;

    -- user_expansion: utilisation >= 0.9; 20 % more seats (rounded up) at the contract's seat price.
    IF 'user_expansion' = ANY (v_types) THEN
        SELECT coalesce(jsonb_agg(jsonb_build_object(
                   'client_id', u.client_id, 'key', 'user_expansion', 'name', 'Add ' || ceil(u.seats * 0.2) || ' seats',
                   'type', 'user_expansion', 'value', round(ceil(u.seats * 0.2) * u.arr / u.seats, 2),
                   'probability', CASE WHEN u.utilisation >= 1.0 THEN 0.80 ELSE 0.60 END, 'current_arr', u.arr,
                   'product', NULL, 'close_days', 45,
                   'details', jsonb_build_object('seats', u.seats, 'avg_daily_active_users', round(u.avg_dau, 2),
                                                 'seat_utilisation', round(u.utilisation, 4),
                                                 'additional_seats', ceil(u.seats * 0.2),
                                                 'seat_price', round(u.arr / u.seats, 2)))
                   ORDER BY u.client_id), '[]')
        INTO cands FROM csmcp.exp_utilisation(v_client, t) u WHERE u.utilisation >= 0.9;
    END IF;
    SELECT * INTO res FROM csmcp.exp_upsert_opportunities(cands, principal, 'identify_expansion_opportunities');

    -- The pipeline: open opportunities of the requested types.
    SELECT count(*) AS n, count(DISTINCT client_id) AS accounts, coalesce(sum(estimated_value), 0) AS total,
           coalesce(round(sum(estimated_value * probability), 2), 0) AS weighted
    INTO tot
    FROM expansion_opportunities
    WHERE stage NOT IN ('won', 'lost') AND expansion_type = ANY (v_types) AND (v_client IS NULL OR client_id = v_client);

    SELECT jsonb_object_agg(ty, jsonb_build_object('count', coalesce(g.n, 0), 'total_value', coalesce(g.total, 0),
                                                   'weighted_value', coalesce(g.weighted, 0)))
    INTO by_type
    FROM unnest(v_types) ty
    LEFT JOIN (SELECT expansion_type, count(*) AS n, sum(estimated_value) AS total,
                      round(sum(estimated_value * probability), 2) AS weighted
               FROM expansion_opportunities
               WHERE stage NOT IN ('won', 'lost') AND expansion_type = ANY (v_types)
                 AND (v_client IS NULL OR client_id = v_client)
               GROUP BY 1) g ON g.expansion_type = ty;

    SELECT coalesce(jsonb_agg(jsonb_build_object(
               'opportunity_id', opportunity_id, 'client_id', client_id, 'name', name, 'expansion_type', expansion_type,
               'estimated_value', estimated_value, 'probability', probability,
               'weighted_value', round(estimated_value * probability, 2), 'stage', stage,
               'expected_close_date', expected_close_date, 'product', product, 'current_arr', current_arr,
               'details', details, 'identified_by', identified_by, 'updated_at', updated_at)
               ORDER BY estimated_value * probability DESC, opportunity_id), '[]')
    INTO opps
    FROM (SELECT * FROM expansion_opportunities
          WHERE stage NOT IN ('won', 'lost') AND expansion_type = ANY (v_types) AND (v_client IS NULL OR client_id = v_client)
          ORDER BY estimated_value * probability DESC, opportunity_id LIMIT v_limit) o;

    SELECT coalesce(sum(contract_value), 0) INTO cur_arr
    FROM contracts WHERE status = 'active' AND (v_client IS NULL OR client_id = v_client);

    RETURN jsonb_build_object(
        'client_id', v_client,
        'opportunity_types', to_jsonb(v_types),
        'pipeline', jsonb_build_object(
            'total_opportunities', tot.n, 'accounts', tot.accounts,
            'total_pipeline_value', tot.total, 'weighted_pipeline_value', tot.weighted,
            'current_arr', cur_arr, 'potential_arr', cur_arr + tot.total,
            'by_type', by_type),
        'opportunities', opps,
        'detection', jsonb_build_object('user_expansion_threshold', 0.9, 'found', jsonb_array_length(cands),
                                        'created', res.created, 'updated', res.changed,
                                        'ran', 'user_expansion' = ANY (v_types)),
        'as_of', t,
        'summary', format('%s open expansion opportunities (%s accounts): pipeline %s, weighted %s; current ARR %s, potential %s.',
                          tot.n, tot.accounts, tot.total, tot.weighted, cur_arr, cur_arr + tot.total));
END $$;

-- forecast_renewals before forecast_inputs (migration 0172, issue 21 session 6): every input read
-- from contracts, accounts, invoices and escalations on each call.
CREATE OR REPLACE FUNCTION csmcp.tool_forecast_renewals_scratch(args jsonb, principal text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    t date := csmcp.today();
    v_client text := csmcp.arg_text(args, 'client_id', NULL);
    v_days integer := csmcp.arg_int(args, 'forecast_period_days', 180, 1, 730);
    v_risk boolean := csmcp.arg_bool(args, 'include_risk_analysis', true);
    v_limit integer := csmcp.arg_int(args, 'limit', 100, 1, 1000);
    actor text := coalesce(nullif(principal, ''), 'anonymous');
    a accounts;
    n_persisted integer;
    tot record;
    rows jsonb;
    risk jsonb;
    outcome jsonb;
BEGIN
    IF v_client IS NOT NULL THEN a := csmcp.require_account(v_client); END IF;

    WITH w AS MATERIALIZED (
        SELECT c.contract_id, c.client_id, ac.client_name, c.end_date, c.end_date - t AS days_left, c.contract_value AS arr,
               coalesce(ov.score, ac.health_score) AS health_score, ac.health_score AS computed_health_score,
               csmcp.exp_renewal_probability(coalesce(ov.score, ac.health_score)) AS base,
               EXISTS (SELECT 1 FROM invoices i WHERE i.contract_id = c.contract_id AND i.paid_on IS NULL AND i.due_on < t) AS overdue,
               EXISTS (SELECT 1 FROM escalations e WHERE e.client_id = c.client_id AND e.status IN ('open', 'in_progress')) AS escalated,
               r.renewal_id AS old_id, r.status AS old_status, r.forecast_arr AS old_farr, r.probability AS old_prob,
               r.forecast_band AS old_band, r.current_arr AS old_arr
        FROM contracts c
        JOIN accounts ac ON ac.client_id = c.client_id AND ac.status <> 'churned' AND (v_client IS NULL OR ac.client_id = v_client)
        LEFT JOIN csmcp.active_health_overrides() ov ON ov.client_id = ac.client_id
        LEFT JOIN renewals r ON r.contract_id = c.contract_id AND r.renewal_date = c.end_date
                             AND (v_client IS NULL OR r.client_id = v_client)
        WHERE c.status = 'active' AND c.end_date >= t AND c.end_date <= t + v_days
          AND (v_client IS NULL OR c.client_id = v_client)
    ),
    p AS MATERIALIZED (
        SELECT w.*, q.prob, round(w.arr * q.prob, 2) AS farr, csmcp.exp_forecast_band(q.prob) AS band
        FROM w CROSS JOIN LATERAL (SELECT greatest(0.05, w.base - CASE WHEN w.overdue THEN 0.15 ELSE 0 END
                                                  - CASE WHEN w.escalated THEN 0.10 ELSE 0 END) AS prob) q
    ),
    -- Persist new or changed forecasts: the renewal row of (contract, renewal date) carries the
    -- latest forecast (its status follows the band unless already decided: won/lost/churned) and
    -- each forecast that differs from the stored one (ARR, probability, band) is added to the
    -- history and the activity log; an identical repeat writes nothing.
    chg AS MATERIALIZED (
        SELECT * FROM p
        WHERE old_id IS NULL OR (old_farr, old_prob, old_band, old_arr) IS DISTINCT FROM (farr, prob, band, arr)
    ),
    up AS (
        INSERT INTO renewals AS r (renewal_id, contract_id, client_id, renewal_date, status, current_arr, forecast_arr, probability,
                                   forecast_at, forecast_band, forecast_factors, updated_at)
        SELECT 'REN-' || nextval('renewal_seq'), contract_id, client_id, end_date,
               CASE band WHEN 'high' THEN 'on_track' WHEN 'medium' THEN 'at_risk' ELSE 'high_risk' END,
               arr, farr, prob, now(), band,
               jsonb_build_object('health_score', health_score, 'base_probability', base,
                                  'payment_overdue', overdue, 'open_escalation', escalated), now()
        FROM chg
        ON CONFLICT (contract_id, renewal_date) DO UPDATE
            SET current_arr = excluded.current_arr, forecast_arr = excluded.forecast_arr, probability = excluded.probability,
                forecast_at = excluded.forecast_at, forecast_band = excluded.forecast_band,
                forecast_factors = excluded.forecast_factors, updated_at = now(),
                status = CASE WHEN r.status IN ('won', 'lost', 'churned') THEN r.status ELSE excluded.status END
            -- re-checked on the latest row: a concurrent call that stored the same forecast first
            -- makes this one a no-op (no second history row)
            WHERE (r.forecast_arr, r.probability, r.forecast_band, r.current_arr)
                  IS DISTINCT FROM (excluded.forecast_arr, excluded.probability, excluded.forecast_band, excluded.current_arr)
        RETURNING r.renewal_id, r.contract_id, r.client_id, r.renewal_date, r.status, r.current_arr, r.forecast_arr,
                  r.probability, r.forecast_band, r.forecast_factors
    ),
    hist AS (
        INSERT INTO renewal_forecasts (renewal_id, client_id, renewal_date, days_until_renewal, health_score, base_probability,
                                       probability, payment_overdue, open_escalation, current_arr, forecast_arr, band, forecast_by)
        SELECT up.renewal_id, up.client_id, up.renewal_date, chg.days_left, chg.health_score, chg.base, up.probability,
               chg.overdue, chg.escalated, up.current_arr, up.forecast_arr, up.forecast_band, actor
        FROM up JOIN chg ON chg.contract_id = up.contract_id AND chg.end_date = up.renewal_date
        RETURNING 1
    ),
    logged AS (
        INSERT INTO activity_log (client_id, actor, action, entity, entity_id, old_values, new_values)
        SELECT up.client_id, actor, 'forecast_renewals:forecast', 'renewal', up.renewal_id,
               CASE WHEN chg.old_id IS NOT NULL THEN jsonb_build_object('status', chg.old_status, 'forecast_arr', chg.old_farr,
                    'probability', chg.old_prob, 'forecast_band', chg.old_band, 'current_arr', chg.old_arr) END,
               jsonb_build_object('status', up.status, 'forecast_arr', up.forecast_arr, 'probability', up.probability,
                                  'forecast_band', up.forecast_band, 'current_arr', up.current_arr, 'factors', up.forecast_factors)
        FROM up JOIN chg ON chg.contract_id = up.contract_id AND chg.end_date = up.renewal_date
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM hist)::integer AS persisted,
           count(*) AS n, coalesce(sum(arr), 0) AS arr, coalesce(sum(farr), 0) AS farr,
           count(*) FILTER (WHERE band = 'high') AS high, count(*) FILTER (WHERE band = 'medium') AS medium,
           count(*) FILTER (WHERE band = 'at_risk') AS at_risk,
           coalesce(sum(arr) FILTER (WHERE band = 'at_risk'), 0) AS arr_at_risk,
           count(*) FILTER (WHERE overdue) AS overdue, count(*) FILTER (WHERE escalated) AS escalated,
           coalesce(sum(round(arr * (base - prob), 2)), 0) AS arr_lost,
           (SELECT coalesce(jsonb_agg(jsonb_build_object(
                   'contract_id', l.contract_id, 'client_id', l.client_id, 'client_name', l.client_name, 'renewal_date', l.end_date,
                   'days_until_renewal', l.days_left, 'current_arr', l.arr, 'health_score', l.health_score,
                   'computed_health_score', l.computed_health_score,
                   'base_probability', l.base, 'payment_overdue', l.overdue, 'open_escalation', l.escalated,
                   'probability', l.prob, 'forecast_arr', l.farr, 'band', l.band) ORDER BY l.end_date, l.client_id), '[]')
            FROM (SELECT * FROM p ORDER BY end_date, client_id LIMIT v_limit) l) AS rows,
           CASE WHEN v_risk THEN
               (SELECT coalesce(jsonb_agg(jsonb_build_object(
                   'contract_id', l.contract_id, 'client_id', l.client_id, 'client_name', l.client_name, 'renewal_date', l.end_date,
                   'days_until_renewal', l.days_left, 'current_arr', l.arr, 'health_score', l.health_score,
                   'computed_health_score', l.computed_health_score,
                   'base_probability', l.base, 'payment_overdue', l.overdue, 'open_escalation', l.escalated,
                   'probability', l.prob, 'forecast_arr', l.farr, 'band', l.band) ORDER BY l.arr DESC, l.client_id), '[]')
                FROM p l WHERE l.band = 'at_risk') END AS at_risk_rows
    INTO tot FROM p;   -- (logged, a data-modifying CTE, runs although nothing reads it)
    n_persisted := tot.persisted;
    rows := tot.rows;

    IF v_risk THEN
        risk := jsonb_build_object(
                   'at_risk_renewals', tot.at_risk_rows,
                   'arr_in_at_risk_band', tot.arr_at_risk,
                   'payment_overdue', tot.overdue, 'open_escalations', tot.escalated,
                   'arr_lost_to_adjustments', tot.arr_lost);
    END IF;

    -- Forecast versus outcome: renewals whose date has passed (last 365 days) and which had a
    -- forecast: the last forecast against what happened to the contract.
    SELECT jsonb_build_object(
               'renewals_past_with_forecast', count(*),
               'renewed', count(*) FILTER (WHERE oc = 'renewed'), 'not_renewed', count(*) FILTER (WHERE oc = 'not_renewed'),
               'undecided', count(*) FILTER (WHERE oc = 'undecided'),
               'forecast_arr', coalesce(sum(forecast_arr), 0),
               'renewed_arr', coalesce(sum(current_arr) FILTER (WHERE oc = 'renewed'), 0))
    INTO outcome
    FROM (SELECT r.forecast_arr, r.current_arr,
                 CASE WHEN r.status = 'won' OR c.status = 'renewed' THEN 'renewed'
                      WHEN r.status IN ('lost', 'churned') OR c.status IN ('cancelled', 'expired') THEN 'not_renewed'
                      ELSE 'undecided' END AS oc
          FROM renewals r JOIN contracts c ON c.contract_id = r.contract_id AND (v_client IS NULL OR c.client_id = v_client)
          WHERE r.renewal_date < t AND r.renewal_date >= t - 365 AND r.forecast_at IS NOT NULL
            AND (v_client IS NULL OR r.client_id = v_client)) o;

    RETURN jsonb_build_object(
        'forecast_period', jsonb_build_object('from', t, 'to', t + v_days, 'days', v_days, 'client_id', v_client),
        'total_renewals', tot.n,
        'arr_up_for_renewal', tot.arr,
        'forecast_arr', tot.farr,
        'predicted_renewal_rate', CASE WHEN tot.arr > 0 THEN round(tot.farr / tot.arr, 4) END,
        'by_band', jsonb_build_object('high', tot.high, 'medium', tot.medium, 'at_risk', tot.at_risk),
        'renewals', rows,
        'risk_analysis', risk,
        'forecast_vs_outcome', outcome,
        'forecasts_persisted', n_persisted,
        'summary', format('%s renewals in the next %s days: ARR %s, forecast %s (rate %s); high %s, medium %s, at risk %s.',
                          tot.n, v_days, tot.arr, tot.farr,
                          coalesce(CASE WHEN tot.arr > 0 THEN round(tot.farr / tot.arr, 4) END::text, 'no data'),
                          tot.high, tot.medium, tot.at_risk));
END $$;

-- identify_crosssell_opportunities: products of the catalogue an account's active contract lacks
-- whose prerequisites it has, scored by how many peers (same tier and industry) own them;
-- persisted as one open 'cross_sell:<product_id>' opportunity per account and product.
CREATE OR REPLACE FUNCTION csmcp.tool_identify_crosssell_opportunities(args jsonb, principal text)
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
    -- Inside a bulk seed (csmcp.seed_demo) the rollups this version reads are stale until its
    -- final csmcp.portfolio_rebuild: answer with the from-scratch SQL there (the seed's calls).
    IF csmcp.portfolio_bulk() THEN
        RETURN csmcp.tool_identify_crosssell_opportunities_scratch(args, principal);
    END IF;
    IF v_client IS NOT NULL THEN
        a := csmcp.require_account(v_client);
        c := csmcp.active_contract(v_client);
        IF c.contract_id IS NULL THEN
            RAISE EXCEPTION 'client % has no active contract: cross-sell needs the products of an active contract', v_client
                USING ERRCODE = 'P0001';
        END IF;
    END IF;
    SELECT count(*) INTO n_products FROM products WHERE active AND NOT is_base AND (v_family = 'all' OR family = v_family);

    -- The accounts in scope of the fit computation (active, with an active contract; for one
    -- account its peers: the same tier and industry) with their contract's products as one array,
    -- from crosssell_own (migration 0171, kept in the writing transaction: issue 21) instead of
    -- accounts x contracts and an aggregate of contract_products per contract; eligibility is
    -- array containment (prerequisites <@ owned), not a probe per account and product.
    WITH own AS MATERIALIZED (
        SELECT o.* FROM crosssell_own o WHERE v_client IS NULL
        UNION ALL
        SELECT o.* FROM crosssell_own o WHERE v_client IS NOT NULL AND o.tier = a.tier AND o.industry = a.industry
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

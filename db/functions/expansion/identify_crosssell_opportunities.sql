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
    cands jsonb;
    res record;
    idmap jsonb;
    accts jsonb;
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
    cand AS (
        SELECT tg.client_id, tg.client_name, tg.tier, tg.industry, tg.contract_value, tg.licensed_seats,
               cat.product_id, cat.name AS product_name, cat.family, cat.list_price,
               pe.n AS peers, coalesce(o.n, 0) AS peers_owning,
               round(coalesce(o.n, 0)::numeric / pe.n, 2) AS fit,
               csmcp.exp_seats_factor(tg.licensed_seats) AS factor
        FROM target tg
        CROSS JOIN base
        JOIN cat ON NOT (cat.product_id = ANY (tg.products)) AND cat.req <@ (tg.products || base.ids)
        JOIN peers pe ON pe.tier = tg.tier AND pe.industry = tg.industry
        LEFT JOIN owners o ON o.tier = tg.tier AND o.industry = tg.industry AND o.product_id = cat.product_id
    )
    SELECT coalesce(jsonb_agg(jsonb_build_object(
               'client_id', client_id, 'key', 'cross_sell:' || product_id, 'name', product_name, 'type', 'cross_sell',
               'value', round(list_price * factor, 2), 'probability', fit, 'current_arr', contract_value,
               'product', product_id, 'close_days', 90,
               'details', jsonb_build_object('product_id', product_id, 'family', family, 'fit_score', fit,
                                             'peers', peers, 'peers_owning', peers_owning, 'list_price', list_price,
                                             'seats', licensed_seats, 'seats_factor', factor),
               'client_name', client_name, 'tier', tier, 'industry', industry)
               ORDER BY client_id, fit DESC, product_id), '[]')
    INTO cands FROM cand WHERE fit >= v_min_fit;

    SELECT * INTO res FROM csmcp.exp_upsert_opportunities(cands, principal, 'identify_crosssell_opportunities');

    -- Per account: recommendations and the bundle (2 products -> 10 %, 3 or more -> 15 % off the sum).
    idmap := csmcp.exp_open_id_map('cross_sell', v_client);
    WITH r AS (
        SELECT x, idmap ->> ((x->>'client_id') || '|' || (x->>'key')) AS opportunity_id FROM jsonb_array_elements(cands) x
    ),
    per AS (
        SELECT x->>'client_id' AS client_id, min(x->>'client_name') AS client_name, min(x->>'tier') AS tier,
               min(x->>'industry') AS industry, min((x->>'current_arr')::numeric) AS current_arr,
               count(*) AS n, sum((x->>'value')::numeric) AS total,
               jsonb_agg(jsonb_build_object('opportunity_id', opportunity_id, 'product_id', x#>>'{details,product_id}',
                                            'product_name', x->>'name', 'family', x#>>'{details,family}',
                                            'fit_score', (x->>'probability')::numeric,
                                            'peers', (x#>>'{details,peers}')::integer,
                                            'peers_owning', (x#>>'{details,peers_owning}')::integer,
                                            'list_price', (x#>>'{details,list_price}')::numeric,
                                            'seats_factor', (x#>>'{details,seats_factor}')::numeric,
                                            'estimated_value', (x->>'value')::numeric)
                         ORDER BY (x->>'probability')::numeric DESC, x->>'product') AS recs
        FROM r GROUP BY 1
    ),
    b AS (
        SELECT per.*, CASE WHEN n >= 3 THEN 0.15 WHEN n = 2 THEN 0.10 ELSE 0 END AS disc FROM per
    )
    SELECT coalesce(jsonb_agg(jsonb_build_object(
               'client_id', client_id, 'client_name', client_name, 'tier', tier, 'industry', industry,
               'current_arr', current_arr, 'recommendations', recs, 'total_value', total,
               'bundle', CASE WHEN n >= 2 THEN jsonb_build_object('products', n, 'discount', disc, 'list_value', total,
                                                                  'bundle_value', round(total * (1 - disc), 2)) END)
               ORDER BY total DESC, client_id), '[]')
    INTO accts FROM (SELECT * FROM b ORDER BY total DESC, client_id LIMIT v_limit) lim;

    RETURN jsonb_build_object(
        'accounts', accts,
        'opportunity_summary', (SELECT jsonb_build_object(
            'accounts_with_opportunities', count(DISTINCT x->>'client_id'),
            'accounts_listed', jsonb_array_length(accts),
            'total_opportunities', count(*),
            'total_value', coalesce(sum((x->>'value')::numeric), 0),
            'total_bundle_value', coalesce((SELECT sum(CASE WHEN g.n >= 3 THEN round(g.s * 0.85, 2) WHEN g.n = 2 THEN round(g.s * 0.90, 2) ELSE g.s END)
                                            FROM (SELECT count(*) AS n, sum((y->>'value')::numeric) AS s
                                                  FROM jsonb_array_elements(cands) y GROUP BY y->>'client_id') g), 0),
            'by_product', coalesce((SELECT jsonb_object_agg(p, n) FROM (SELECT y->>'product' AS p, count(*) AS n
                                    FROM jsonb_array_elements(cands) y GROUP BY 1) g), '{}'),
            'opportunities_created', res.created,
            'opportunities_updated', res.changed)
            FROM jsonb_array_elements(cands) x),
        'criteria', jsonb_build_object('client_id', v_client, 'product_family', v_family, 'min_fit_score', v_min_fit,
                                       'products_considered', n_products, 'as_of', t),
        'summary', format('%s cross-sell opportunities for %s accounts, total value %s; %s created, %s updated.',
                               jsonb_array_length(cands),
                               (SELECT count(DISTINCT x->>'client_id') FROM jsonb_array_elements(cands) x),
                               (SELECT coalesce(sum((x->>'value')::numeric), 0) FROM jsonb_array_elements(cands) x),
                               res.created, res.changed));
END $$;

-- identify_crosssell_opportunities: products of the catalogue an account's active contract lacks
-- whose prerequisites it has, scored by how many peers (same tier and industry) own them;
-- persisted as one open 'cross_sell:<product_id>' opportunity per account and product.
-- Reads the candidates and peer counts kept by triggers (crosssell_cand, crosssell_peers,
-- crosssell_owners: migration 0150, expansion/rollups.sql); the from-scratch SQL is
-- csmcp.tool_identify_crosssell_opportunities_scratch (_scratch.sql), equal by test.
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
    -- the fits in scope, one element per (tier, industry, product) with fit >= min_fit_score
    f_ti text[]; f_in text[]; f_pr text[]; f_nm text[]; f_fam text[]; f_price numeric[]; f_peers integer[];
    f_own integer[]; f_fit numeric[]; f_stale boolean[];
    -- the candidates to persist (compare with their open opportunity), and their marks
    a_cl text[]; a_pr text[]; a_nm text[]; a_val numeric[]; a_fit numeric[]; a_arr numeric[]; a_det jsonb[]; a_dirty bigint[];
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

    -- The fit per (tier, industry, product) from the maintained peer counts (crosssell_peers /
    -- crosssell_owners, migration 0150: one row per group, kept in the writing transaction),
    -- filtered by min_fit_score; for one account only its group. stale: the group's counts are
    -- not those a portfolio call last persisted its candidates with (crosssell_synced).
    SELECT array_agg(f.tier ORDER BY f.tier, f.industry, f.product_id), array_agg(f.industry ORDER BY f.tier, f.industry, f.product_id),
           array_agg(f.product_id ORDER BY f.tier, f.industry, f.product_id), array_agg(f.name ORDER BY f.tier, f.industry, f.product_id),
           array_agg(f.family ORDER BY f.tier, f.industry, f.product_id), array_agg(f.list_price ORDER BY f.tier, f.industry, f.product_id),
           array_agg(f.peers ORDER BY f.tier, f.industry, f.product_id), array_agg(f.owning ORDER BY f.tier, f.industry, f.product_id),
           array_agg(f.fit ORDER BY f.tier, f.industry, f.product_id), array_agg(f.stale ORDER BY f.tier, f.industry, f.product_id)
    INTO f_ti, f_in, f_pr, f_nm, f_fam, f_price, f_peers, f_own, f_fit, f_stale
    FROM (SELECT pe.tier, pe.industry, p.product_id, p.name, p.family, p.list_price, pe.peers, coalesce(o.owning, 0) AS owning,
                 round(coalesce(o.owning, 0)::numeric / pe.peers, 2) AS fit,
                 (s.peers, s.owning) IS DISTINCT FROM (pe.peers, coalesce(o.owning, 0)) AS stale
          FROM crosssell_peers pe
          JOIN products p ON p.active AND NOT p.is_base AND (v_family = 'all' OR p.family = v_family)
          LEFT JOIN crosssell_owners o ON o.tier = pe.tier AND o.industry = pe.industry AND o.product_id = p.product_id
          LEFT JOIN crosssell_synced s ON s.tier = pe.tier AND s.industry = pe.industry AND s.product_id = p.product_id
          WHERE pe.peers > 0 AND (v_client IS NULL OR (pe.tier = a.tier AND pe.industry = a.industry))
            AND round(coalesce(o.owning, 0)::numeric / pe.peers, 2) >= v_min_fit) f;

    -- The candidates to persist: for one account all of its own; for the portfolio those of a
    -- stale group and the marked ones (crosssell_cand.dirty: their account or their opportunity
    -- was written since) - every other candidate's open opportunity already holds exactly these
    -- figures (the peer counts of its group are those it was persisted with), so comparing it
    -- again would change nothing (issue 21: the compare of every candidate was half the call).
    WITH f AS (SELECT * FROM unnest(f_ti, f_in, f_pr, f_nm, f_fam, f_price, f_peers, f_own, f_fit, f_stale)
                             u(tier, industry, product_id, name, family, list_price, peers, owning, fit, stale)),
    w AS (
        SELECT x.client_id, x.product_id, x.value, x.dirty, f.name, f.family, f.list_price, f.peers, f.owning, f.fit
        FROM f JOIN crosssell_cand x ON x.tier = f.tier AND x.industry = f.industry AND x.product_id = f.product_id
        WHERE CASE WHEN v_client IS NOT NULL THEN x.client_id = v_client ELSE f.stale END
        UNION ALL
        SELECT x.client_id, x.product_id, x.value, x.dirty, f.name, f.family, f.list_price, f.peers, f.owning, f.fit
        FROM f JOIN crosssell_cand x ON x.tier = f.tier AND x.industry = f.industry AND x.product_id = f.product_id
        WHERE v_client IS NULL AND NOT f.stale AND x.dirty IS NOT NULL
    )
    SELECT array_agg(w.client_id), array_agg(w.product_id), array_agg(w.name), array_agg(w.value), array_agg(w.fit),
           array_agg(o.contract_value),
           array_agg(jsonb_build_object('product_id', w.product_id, 'family', w.family, 'fit_score', w.fit,
                                        'peers', w.peers, 'peers_owning', w.owning, 'list_price', w.list_price,
                                        'seats', o.licensed_seats, 'seats_factor', csmcp.exp_seats_factor(o.licensed_seats))),
           array_agg(w.dirty)
    INTO a_cl, a_pr, a_nm, a_val, a_fit, a_arr, a_det, a_dirty
    FROM (SELECT * FROM w ORDER BY client_id, fit DESC, product_id) w
    JOIN crosssell_own o ON o.client_id = w.client_id;

    -- (csmcp.crosssell_sync: this statement's own writes do not mark their candidates)
    PERFORM set_config('csmcp.crosssell_sync', 'on', true);
    SELECT * INTO res FROM csmcp.exp_upsert_opportunity_arrays(
        a_cl, ARRAY(SELECT 'cross_sell:' || x FROM unnest(a_pr) x), a_nm, array_fill('cross_sell'::text, ARRAY[coalesce(cardinality(a_cl), 0)]),
        a_val, a_fit, a_arr, a_pr, array_fill(90, ARRAY[coalesce(cardinality(a_cl), 0)]), a_det, principal, 'identify_crosssell_opportunities');
    PERFORM set_config('csmcp.crosssell_sync', 'off', true);

    IF v_client IS NULL THEN
        -- The stale groups are persisted with the counts read above; a mark is cleared only if it
        -- is still the value read (a writer that marked the candidate since keeps it marked).
        -- Rows locked in key order, as the marking triggers lock them.
        INSERT INTO crosssell_synced AS s (tier, industry, product_id, peers, owning)
        SELECT u.tier, u.industry, u.product_id, u.peers, u.owning
        FROM unnest(f_ti, f_in, f_pr, f_peers, f_own, f_stale) u(tier, industry, product_id, peers, owning, stale)
        WHERE u.stale ORDER BY 1, 2, 3
        ON CONFLICT (tier, industry, product_id) DO UPDATE SET peers = excluded.peers, owning = excluded.owning;
        WITH l AS (SELECT x.client_id, x.product_id FROM crosssell_cand x
                   JOIN unnest(a_cl, a_pr, a_dirty) u(client_id, product_id, dirty)
                     ON x.client_id = u.client_id AND x.product_id = u.product_id AND x.dirty = u.dirty
                   ORDER BY 1, 2 FOR UPDATE OF x)
        UPDATE crosssell_cand x SET dirty = NULL FROM l WHERE x.client_id = l.client_id AND x.product_id = l.product_id;
    END IF;

    -- Per account: totals of every account (summary) from the candidates of the groups in scope,
    -- recommendations and the bundle (2 products -> 10 %, 3 or more -> 15 % off the sum) built only
    -- for the listed ones; the open ids are read after the upsert (a new snapshot: rows a
    -- concurrent call created are seen).
    WITH f AS (SELECT * FROM unnest(f_ti, f_in, f_pr, f_nm, f_fam, f_price, f_peers, f_own, f_fit)
                             u(tier, industry, product_id, name, family, list_price, peers, owning, fit)),
    r AS MATERIALIZED (
        SELECT x.client_id, x.product_id AS product, x.value, f.fit, f.name AS product_name, f.family, f.list_price,
               f.peers, f.owning
        FROM f JOIN crosssell_cand x ON x.tier = f.tier AND x.industry = f.industry AND x.product_id = f.product_id
        WHERE v_client IS NULL OR x.client_id = v_client
    ),
    tot AS MATERIALIZED (
        SELECT client_id, count(*) AS n, sum(value) AS total,
               CASE WHEN count(*) >= 3 THEN 0.15 WHEN count(*) = 2 THEN 0.10 ELSE 0 END AS disc
        FROM r GROUP BY 1
    ),
    top AS MATERIALIZED (SELECT * FROM tot ORDER BY total DESC, client_id LIMIT v_limit),
    per AS (
        SELECT top.client_id, top.n, top.total, top.disc, min(ow.client_name) AS client_name, min(ow.tier) AS tier,
               min(ow.industry) AS industry, min(ow.contract_value) AS current_arr,
               jsonb_agg(jsonb_build_object('opportunity_id', o.opportunity_id,
                                            'product_id', r.product, 'product_name', r.product_name,
                                            'family', r.family,
                                            'fit_score', r.fit,
                                            'peers', r.peers,
                                            'peers_owning', r.owning,
                                            'list_price', r.list_price,
                                            'seats_factor', csmcp.exp_seats_factor(ow.licensed_seats),
                                            'estimated_value', r.value)
                         ORDER BY r.fit DESC, r.product) AS recs
        FROM top JOIN r ON r.client_id = top.client_id
        JOIN crosssell_own ow ON ow.client_id = top.client_id
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

-- identify_expansion_opportunities: detects user expansion (seat utilisation >= 0.9) and
-- reports the pipeline of open persisted opportunities by type, with total and weighted value.
-- Seat utilisation of every active account with a seat count, as csmcp.exp_utilisation(NULL, t)
-- (the same rows and figures), from the running usage totals (usage_cum, migration 0140: exact,
-- kept in the writing transaction): the 30 days ending t are cum(t) - cum(t - 30), the rows of
-- exactly those two days hash-joined (index usage_cum_day_idx), an account without a row on such
-- a day falling back to its last row before it - instead of summing 30 days of usage_daily
-- (~300,000 rows at 10,000 accounts). Not for bulk seeding (usage_cum is rebuilt at its end).
CREATE OR REPLACE FUNCTION csmcp.exp_utilisation_all(p_today date)
RETURNS TABLE (client_id text, contract_id text, seats integer, arr numeric, avg_dau numeric, utilisation numeric)
LANGUAGE sql STABLE AS $$
    SELECT c.client_id, c.contract_id, c.licensed_seats, c.contract_value, s.s::numeric / 30, s.s::numeric / 30 / c.licensed_seats
    FROM contracts c
    JOIN accounts a ON a.client_id = c.client_id AND a.status = 'active'
    LEFT JOIN usage_cum d0 ON d0.day = p_today AND d0.client_id = c.client_id
    LEFT JOIN usage_cum d1 ON d1.day = p_today - 30 AND d1.client_id = c.client_id
    CROSS JOIN LATERAL (
        SELECT coalesce(d0.cum_users, (SELECT x.cum_users FROM usage_cum x WHERE x.client_id = c.client_id AND x.day <= p_today
                                       ORDER BY x.day DESC LIMIT 1), 0)
             - coalesce(d1.cum_users, (SELECT x.cum_users FROM usage_cum x WHERE x.client_id = c.client_id AND x.day <= p_today - 30
                                       ORDER BY x.day DESC LIMIT 1), 0) AS s) s
    WHERE c.status = 'active' AND c.licensed_seats IS NOT NULL
$$;

-- The accounts of exp_utilisation (p_client NULL: every one) whose utilisation is >= p_min: for
-- the portfolio from the running totals (exp_utilisation_all), for one account or inside a bulk
-- seed (usage_cum is only rebuilt at its end) from usage_daily. Two statements, not one UNION ALL
-- of both sources behind one-time filters: that form took ~1 s instead of ~0.25 s at 100,000
-- accounts (session 6).
CREATE OR REPLACE FUNCTION csmcp.exp_utilisation_at_least(p_client text, p_today date, p_min numeric)
RETURNS TABLE (client_id text, contract_id text, seats integer, arr numeric, avg_dau numeric, utilisation numeric)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF p_client IS NULL AND NOT csmcp.portfolio_bulk() THEN
        RETURN QUERY SELECT * FROM csmcp.exp_utilisation_all(p_today) u WHERE u.utilisation >= p_min;
    ELSE
        RETURN QUERY SELECT * FROM csmcp.exp_utilisation(p_client, p_today) u WHERE u.utilisation >= p_min;
    END IF;
END $$;

CREATE OR REPLACE FUNCTION csmcp.tool_identify_expansion_opportunities(args jsonb, principal text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    t date := csmcp.today();
    all_types text[] := ARRAY['user_expansion', 'usage_expansion', 'tier_upgrade', 'cross_sell', 'professional_services'];
    v_client text := csmcp.arg_text(args, 'client_id', NULL);
    v_types text[];
    v_limit integer := csmcp.arg_int(args, 'limit', 100, 1, 1000);
    a accounts;
    a_cl text[]; a_nm text[]; a_val numeric[]; a_prob numeric[]; a_arr numeric[]; a_det jsonb[];
    n_found integer;
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
    -- Every account: from the running totals (exp_utilisation_all, issue 21); inside a bulk seed
    -- (csmcp.seed_demo) usage_cum is only rebuilt at its end, so the seed's call sums usage_daily
    -- (exp_utilisation(NULL, t): the same rows and figures; exp_utilisation_at_least). Typed arrays to
    -- the upsert (session 6: the jsonb variant hash-joined every open opportunity of any type).
    IF 'user_expansion' = ANY (v_types) THEN
        SELECT array_agg(u.client_id), array_agg('Add ' || ceil(u.seats * 0.2) || ' seats'),
               array_agg(round(ceil(u.seats * 0.2) * u.arr / u.seats, 2)),
               array_agg(CASE WHEN u.utilisation >= 1.0 THEN 0.80 ELSE 0.60 END), array_agg(u.arr),
               array_agg(jsonb_build_object('seats', u.seats, 'avg_daily_active_users', round(u.avg_dau, 2),
                                            'seat_utilisation', round(u.utilisation, 4),
                                            'additional_seats', ceil(u.seats * 0.2),
                                            'seat_price', round(u.arr / u.seats, 2)))
        INTO a_cl, a_nm, a_val, a_prob, a_arr, a_det
        FROM (SELECT * FROM csmcp.exp_utilisation_at_least(v_client, t, 0.9) ORDER BY client_id) u;
    END IF;
    n_found := coalesce(cardinality(a_cl), 0);
    SELECT * INTO res FROM csmcp.exp_upsert_opportunity_arrays(
        a_cl, array_fill('user_expansion'::text, ARRAY[n_found]), a_nm, array_fill('user_expansion'::text, ARRAY[n_found]),
        a_val, a_prob, a_arr, array_fill(NULL::text, ARRAY[n_found]), array_fill(45, ARRAY[n_found]), a_det,
        principal, 'identify_expansion_opportunities');

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
        'detection', jsonb_build_object('user_expansion_threshold', 0.9, 'found', n_found,
                                        'created', res.created, 'updated', res.changed,
                                        'ran', 'user_expansion' = ANY (v_types)),
        'as_of', t,
        'summary', format('%s open expansion opportunities (%s accounts): pipeline %s, weighted %s; current ARR %s, potential %s.',
                          tot.n, tot.accounts, tot.total, tot.weighted, cur_arr, cur_arr + tot.total));
END $$;

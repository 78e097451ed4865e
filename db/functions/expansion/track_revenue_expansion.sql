-- track_revenue_expansion: starting ARR, expansion, contraction, churn and new business over a
-- calendar period from revenue_events; NRR and GRR; optionally the open pipeline.
CREATE OR REPLACE FUNCTION csmcp.tool_track_revenue_expansion(args jsonb, principal text)
RETURNS jsonb LANGUAGE plpgsql STABLE
-- (jit off: at 100,000 accounts the plans cost enough to be JIT-compiled on every call, 80-190 ms
-- of compilation for queries that run in 150-400 ms; issue 21)
SET jit = off AS $$
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

    -- (from revenue_balance, migration 0174, kept in the writing transaction: only the events
    -- from the period's start on are aggregated; inside a bulk seed the balance is stale until
    -- its final csmcp.portfolio_rebuild, so the from-scratch aggregate answers there)
    IF csmcp.portfolio_bulk() THEN
        SELECT * INTO m FROM csmcp.exp_arr_movement(ps, pe);
    ELSE
        SELECT * INTO m FROM csmcp.exp_arr_movement_rollup(ps, pe);
    END IF;
    IF m.starting_arr > 0 THEN
        nrr := round((m.starting_arr + m.expansion_arr - m.contraction_arr - m.churned_arr) / m.starting_arr, 4);
        grr := round((m.starting_arr - m.contraction_arr - m.churned_arr) / m.starting_arr, 4);
    END IF;

    IF v_pipeline THEN
        -- one pass (grouping sets: per type and overall) over the covering partial index of
        -- open opportunities (migration 0170) instead of two scans of the rows
        WITH g AS (
            SELECT expansion_type, GROUPING(expansion_type) AS overall, count(*) AS n, count(DISTINCT client_id) AS accounts,
                   sum(estimated_value) AS v, round(sum(estimated_value * probability), 2) AS w
            FROM expansion_opportunities WHERE stage NOT IN ('won', 'lost')
            GROUP BY GROUPING SETS ((expansion_type), ())
        )
        SELECT jsonb_build_object(
                   'open_opportunities', t.n, 'accounts', t.accounts,
                   'total_value', coalesce(t.v, 0),
                   'weighted_value', coalesce(t.w, 0),
                   'by_type', coalesce((SELECT jsonb_object_agg(expansion_type, jsonb_build_object('count', n, 'total_value', v,
                                                                                                  'weighted_value', w))
                                        FROM g WHERE overall = 0), '{}'))
        INTO pipe FROM g t WHERE t.overall = 1;
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

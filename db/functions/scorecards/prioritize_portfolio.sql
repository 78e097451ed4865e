-- prioritize_portfolio: a CSM's ranked worklist. priority = ARR x churn probability of the
-- effective score x (1 + renewal/ticket/invoice weights of scorecard_priority_weights), each entry
-- with its top reason and a suggested next action.
CREATE OR REPLACE FUNCTION csmcp.tool_prioritize_portfolio(args jsonb, principal text)
-- no JIT: at 100,000 accounts the plans' costs pass jit_above_cost and compiling took longer than
-- the query (issue 21: 1.5 s of a hierarchy rollup that runs in 70 ms)
RETURNS jsonb LANGUAGE plpgsql STABLE SET jit = off AS $$
DECLARE
    v_csm text := csmcp.arg_text(args, 'csm_assigned', NULL);
    v_limit integer := csmcp.arg_int(args, 'limit', 50, 1, 1000);
    v_offset integer := csmcp.arg_int(args, 'offset', 0, 0, 1000000);
    v_today date := csmcp.today();
    w scorecard_priority_weights;
    v_rows jsonb;
    v_total integer;
    v_sum numeric;
    v_pos bigint;
    v_accounts bigint;
    v_clients bigint;
BEGIN
    -- Issue 21 (session 7): the portfolio's rows from forecast_inputs (migration 0172, kept in the
    -- writing transaction: one narrow row per active contract of an account that is not churned,
    -- with its name, computed health, end date and value) instead of accounts x contracts (~1 s
    -- at 100,000 accounts). Every account without an active contract has ARR 0, so priority 0:
    -- it counts in the total, adds 0 to the sum and ranks after every row with a priority or an
    -- ARR. A page reaching past those rows, one CSM's list (the CSM is not in forecast_inputs)
    -- and a bulk seed (forecast_inputs is rebuilt at its end) take the former SQL
    -- (tool_prioritize_portfolio_scratch, the reference of test_rollup_equality_revenue).
    IF v_csm IS NOT NULL OR csmcp.portfolio_bulk() THEN
        RETURN csmcp.tool_prioritize_portfolio_scratch(args, principal);
    END IF;
    SELECT * INTO w FROM scorecard_priority_weights;
    IF w.singleton IS NULL THEN
        w.renewal_90d := 1.0; w.critical_ticket := 0.5; w.overdue_invoice := 1.0;
    END IF;
    -- Per row only the priority, in one product: arr x p x (1 + weights) equals the former
    -- base + renewal + tickets + invoices parts exactly (numeric products and sums are exact; the
    -- former form evaluated arr x p a dozen times per row, ~0.4 s at 100,000 accounts); the parts
    -- and the top reason are computed, as before, for the page's rows only.
    WITH scored AS MATERIALIZED (
        SELECT f.*, round(f.arr * f.p * (1 + CASE WHEN f.renewal_days BETWEEN 0 AND 90 THEN w.renewal_90d ELSE 0 END
                                           + w.critical_ticket * least(f.critical, 4)
                                           + CASE WHEN f.overdue > 0 THEN w.overdue_invoice ELSE 0 END), 2) AS priority
          FROM (SELECT fi.client_id, fi.health_score AS computed_score,
                       coalesce(o.score, fi.health_score) AS eff, o.score IS NOT NULL AS overridden,
                       csmcp.churn_probability(coalesce(o.score, fi.health_score)) AS p,
                       fi.contract_value AS arr, fi.end_date - v_today AS renewal_days,
                       coalesce(tk.n, 0)::integer AS critical, coalesce(inv.n, 0)::integer AS overdue
                  FROM forecast_inputs fi
                  -- (at most one open override per account: health_overrides_one_open)
                  LEFT JOIN health_overrides o ON o.client_id = fi.client_id AND o.cleared_at IS NULL
                                              AND o.expires_at > (SELECT csmcp.sc_now())
                  LEFT JOIN (SELECT t.client_id, count(*) AS n FROM support_tickets t
                              WHERE t.status NOT IN ('resolved', 'closed') AND t.priority IN ('P0', 'P1')
                              GROUP BY t.client_id) tk ON tk.client_id = fi.client_id
                  LEFT JOIN (SELECT i.client_id, count(*) AS n FROM invoices i
                              WHERE i.paid_on IS NULL AND i.due_on < v_today GROUP BY i.client_id) inv ON inv.client_id = fi.client_id
                OFFSET 0) f
    ), tot AS (
        SELECT count(*) AS n, sum(priority) AS s, count(*) FILTER (WHERE priority > 0 OR (priority = 0 AND arr > 0)) AS pos
          FROM scored
    ), parts AS (
        SELECT g.*, g.arr * g.p AS base,
               g.arr * g.p * CASE WHEN g.renewing THEN w.renewal_90d ELSE 0 END AS p_renewal,
               g.arr * g.p * w.critical_ticket * least(g.critical, 4) AS p_tickets,
               g.arr * g.p * CASE WHEN g.overdue > 0 THEN w.overdue_invoice ELSE 0 END AS p_invoices
          FROM (SELECT s.*, a.client_name, a.csm_assigned, s.renewal_days BETWEEN 0 AND 90 AS renewing
                  FROM (SELECT * FROM scored ORDER BY priority DESC, arr DESC, client_id LIMIT v_limit OFFSET v_offset) s
                  JOIN accounts a ON a.client_id = s.client_id) g
    ), page AS (
        SELECT x.*,
               CASE WHEN x.renewing AND x.p_renewal >= greatest(x.base, x.p_tickets, x.p_invoices) THEN 'renewal'
                    WHEN x.critical > 0 AND x.p_tickets >= greatest(x.base, x.p_renewal, x.p_invoices) THEN 'critical_tickets'
                    WHEN x.overdue > 0 AND x.p_invoices >= greatest(x.base, x.p_renewal, x.p_tickets) THEN 'overdue_invoices'
                    ELSE 'churn_risk' END AS top
          FROM parts x
    )
    SELECT (SELECT n FROM tot), (SELECT s FROM tot), (SELECT pos FROM tot),
           coalesce(jsonb_agg(jsonb_build_object(
               'client_id', p.client_id, 'client_name', p.client_name, 'csm_assigned', p.csm_assigned,
               'priority_score', p.priority, 'arr', p.arr,
               'effective_score', p.eff, 'computed_score', p.computed_score, 'overridden', p.overridden,
               'churn_probability', p.p, 'days_until_renewal', p.renewal_days,
               'open_critical_tickets', p.critical, 'overdue_invoices', p.overdue,
               'top_reason', CASE p.top
                   WHEN 'churn_risk' THEN format('churn risk: effective health %s, churn probability %s on %s ARR', p.eff, p.p, p.arr)
                   WHEN 'renewal' THEN format('renewal in %s days', p.renewal_days)
                   WHEN 'critical_tickets' THEN format('%s open P0/P1 ticket(s)', p.critical)
                   ELSE format('%s overdue invoice(s)', p.overdue) END,
               'top_reason_code', p.top,
               'next_action', CASE p.top
                   WHEN 'renewal' THEN format('Prepare the renewal due in %s days (track_renewals, negotiate_renewals)', p.renewal_days)
                   WHEN 'critical_tickets' THEN format('Review the %s open P0/P1 ticket(s) with the support lead', p.critical)
                   WHEN 'overdue_invoices' THEN format('Follow up the %s overdue invoice(s) with billing', p.overdue)
                   WHEN 'churn_risk' THEN CASE WHEN p.p > 0.50 THEN 'Escalate to an executive sponsor'
                                               WHEN p.eff < 70 THEN 'Schedule an urgent check-in and a root-cause analysis'
                                               ELSE 'Maintain the momentum and look for expansion' END END
           ) ORDER BY p.priority DESC, p.arr DESC, p.client_id), '[]'::jsonb)
      INTO v_total, v_sum, v_pos, v_rows
      FROM page p;
    -- The page must lie within the rows with a priority or an ARR (the rest rank by client_id
    -- among the accounts without an active contract, which are not read here).
    IF v_offset + v_limit > v_pos THEN
        RETURN csmcp.tool_prioritize_portfolio_scratch(args, principal);
    END IF;
    -- The total: one row per account that is not churned, one per active contract for those with
    -- contracts (forecast_inputs' rows: v_total so far) - the accounts without an active contract
    -- are the accounts not churned less the distinct accounts of forecast_inputs.
    SELECT (SELECT count(*) FROM accounts) - (SELECT count(*) FROM accounts WHERE status = 'churned'),
           (SELECT count(DISTINCT client_id) FROM forecast_inputs)
      INTO v_accounts, v_clients;
    v_total := v_total + v_accounts - v_clients;
    RETURN jsonb_build_object(
        'csm_assigned', v_csm,
        'weights', jsonb_build_object('renewal_90d', w.renewal_90d, 'critical_ticket', w.critical_ticket,
                                      'overdue_invoice', w.overdue_invoice),
        'accounts', v_rows,
        'total', v_total, 'limit', v_limit, 'offset', v_offset,
        'total_priority', coalesce(v_sum, 0),
        'summary', format('%s account(s)%s ranked; first: %s', v_total,
                          coalesce(' of ' || v_csm, ''),
                          coalesce(format('%s (priority %s, %s)', v_rows -> 0 ->> 'client_name',
                                          v_rows -> 0 ->> 'priority_score', v_rows -> 0 ->> 'top_reason'), 'none')));
END $$;

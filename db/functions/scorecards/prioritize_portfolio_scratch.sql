-- tool_prioritize_portfolio_scratch: prioritize_portfolio's former SQL (before issue 21, session 7,
-- helper valuex), unchanged: the reference of the equality test (test_rollup_equality_revenue) and
-- the answer for one CSM's accounts, for a page past the accounts with a priority and inside a
-- bulk seed (prioritize_portfolio.sql).
CREATE OR REPLACE FUNCTION csmcp.tool_prioritize_portfolio_scratch(args jsonb, principal text)
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
BEGIN
    SELECT * INTO w FROM scorecard_priority_weights;
    IF w.singleton IS NULL THEN
        w.renewal_90d := 1.0; w.critical_ticket := 0.5; w.overdue_invoice := 1.0;
    END IF;
    WITH acc AS (
        SELECT a.client_id, a.client_name, a.csm_assigned,
               a.health_score AS computed_score,
               coalesce(o.score, a.health_score) AS eff, o.score IS NOT NULL AS overridden,
               coalesce(c.contract_value, 0) AS arr, c.end_date - v_today AS renewal_days
          FROM accounts a
          LEFT JOIN health_overrides o ON o.client_id = a.client_id AND o.cleared_at IS NULL AND o.expires_at > (SELECT csmcp.sc_now())
          LEFT JOIN contracts c ON c.client_id = a.client_id AND c.status = 'active'
         WHERE a.status <> 'churned' AND (v_csm IS NULL OR a.csm_assigned = v_csm)
    ), tk AS (
        SELECT t.client_id, count(*) AS n FROM support_tickets t
         WHERE t.status NOT IN ('resolved', 'closed') AND t.priority IN ('P0', 'P1')
         GROUP BY t.client_id
    ), inv AS (
        SELECT i.client_id, count(*) AS n FROM invoices i
         WHERE i.paid_on IS NULL AND i.due_on < v_today GROUP BY i.client_id
    ), f AS (
        SELECT a.*, csmcp.churn_probability(a.eff) AS p,
               coalesce(tk.n, 0)::integer AS critical, coalesce(inv.n, 0)::integer AS overdue,
               a.renewal_days BETWEEN 0 AND 90 AS renewing
          FROM acc a LEFT JOIN tk USING (client_id) LEFT JOIN inv USING (client_id)
    ), parts AS (
        SELECT f.*, f.arr * f.p AS base,
               f.arr * f.p * CASE WHEN f.renewing THEN w.renewal_90d ELSE 0 END AS p_renewal,
               f.arr * f.p * w.critical_ticket * least(f.critical, 4) AS p_tickets,
               f.arr * f.p * CASE WHEN f.overdue > 0 THEN w.overdue_invoice ELSE 0 END AS p_invoices
          FROM f
    ), scored AS (
        SELECT x.*, round(x.base + x.p_renewal + x.p_tickets + x.p_invoices, 2) AS priority,
               CASE WHEN x.renewing AND x.p_renewal >= greatest(x.base, x.p_tickets, x.p_invoices) THEN 'renewal'
                    WHEN x.critical > 0 AND x.p_tickets >= greatest(x.base, x.p_renewal, x.p_invoices) THEN 'critical_tickets'
                    WHEN x.overdue > 0 AND x.p_invoices >= greatest(x.base, x.p_renewal, x.p_tickets) THEN 'overdue_invoices'
                    ELSE 'churn_risk' END AS top
          FROM parts x
    ), page AS (
        SELECT * FROM scored ORDER BY priority DESC, arr DESC, client_id LIMIT v_limit OFFSET v_offset
    )
    SELECT (SELECT count(*) FROM scored), (SELECT sum(priority) FROM scored),
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
      INTO v_total, v_sum, v_rows
      FROM page p;
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

-- track_renewals: active contracts ending within the window (reference §3.4), with the
-- contract's own term and auto-renew flag, and the 90/60/30/14/7-day reminders persisted once
-- per contract and renewal date.
CREATE OR REPLACE FUNCTION csmcp.tool_track_renewals(args jsonb, principal text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    t date := csmcp.today();
    v_client text := csmcp.arg_text(args, 'client_id', NULL);
    v_days integer := csmcp.arg_int(args, 'days_until_renewal', 90, 0, 365);
    v_limit integer := csmcp.arg_int(args, 'limit', 100, 1, 1000);
    a accounts;
    n_created integer;
    rows jsonb;
    summ jsonb;
BEGIN
    IF v_client IS NOT NULL THEN a := csmcp.require_account(v_client); END IF;

    -- Reminders: one per contract, renewal date and notice (90/60/30/14/7 days before), created
    -- only when the notice date is today or later; logged per contract.
    WITH due AS (
        SELECT c.contract_id, c.client_id, c.end_date
        FROM contracts c JOIN accounts ac ON ac.client_id = c.client_id AND ac.status <> 'churned'
        WHERE c.status = 'active' AND c.end_date >= t AND c.end_date <= t + v_days
          AND (v_client IS NULL OR c.client_id = v_client)
    ),
    ins AS (
        INSERT INTO renewal_reminders (contract_id, client_id, renewal_date, days_before, remind_on, created_by)
        SELECT due.contract_id, due.client_id, due.end_date, d, due.end_date - d, coalesce(nullif(principal, ''), 'anonymous')
        FROM due CROSS JOIN unnest(ARRAY[90, 60, 30, 14, 7]) d
        WHERE due.end_date - d >= t
        ON CONFLICT DO NOTHING
        RETURNING contract_id, client_id, renewal_date, days_before, remind_on
    ),
    logged AS (
        INSERT INTO activity_log (client_id, actor, action, entity, entity_id, old_values, new_values)
        SELECT client_id, coalesce(nullif(principal, ''), 'anonymous'), 'track_renewals:schedule_reminders',
               'renewal_reminders', contract_id, NULL,
               jsonb_build_object('renewal_date', min(renewal_date),
                                  'reminders', jsonb_agg(jsonb_build_object('days_before', days_before, 'remind_on', remind_on)
                                                         ORDER BY days_before DESC))
        FROM ins GROUP BY client_id, contract_id
        RETURNING 1
    )
    SELECT count(*) INTO n_created FROM ins;

    WITH w AS (
        SELECT c.contract_id, c.client_id, ac.client_name, c.end_date, c.end_date - t AS days_left, c.contract_value,
               c.contract_type, c.auto_renew, c.notice_period_days, ac.health_score,
               csmcp.exp_renewal_probability(ac.health_score) AS prob
        FROM contracts c JOIN accounts ac ON ac.client_id = c.client_id AND ac.status <> 'churned'
        WHERE c.status = 'active' AND c.end_date >= t AND c.end_date <= t + v_days
          AND (v_client IS NULL OR c.client_id = v_client)
    )
    SELECT jsonb_build_object(
               'total_renewals_tracked', count(*),
               'total_arr_at_risk', coalesce(sum(contract_value), 0),
               'expected_renewal_arr', coalesce(sum(round(contract_value * prob, 2)), 0),
               'by_timeframe', jsonb_build_object(
                   '30_days', count(*) FILTER (WHERE days_left <= 30),
                   '60_days', count(*) FILTER (WHERE days_left > 30 AND days_left <= 60),
                   '90_days', count(*) FILTER (WHERE days_left > 60 AND days_left <= 90),
                   'over_90_days', count(*) FILTER (WHERE days_left > 90)),
               'by_probability', jsonb_build_object(
                   '0.92', count(*) FILTER (WHERE prob = 0.92), '0.80', count(*) FILTER (WHERE prob = 0.80),
                   '0.65', count(*) FILTER (WHERE prob = 0.65), '0.40', count(*) FILTER (WHERE prob = 0.40)),
               'auto_renew_enabled', count(*) FILTER (WHERE auto_renew),
               'manual_renewal_required', count(*) FILTER (WHERE NOT auto_renew),
               'reminders_created', n_created)
    INTO summ FROM w;

    WITH w AS (
        SELECT c.contract_id, c.client_id, ac.client_name, c.end_date, c.end_date - t AS days_left, c.contract_value,
               c.contract_type, c.auto_renew, c.notice_period_days, ac.health_score,
               csmcp.exp_renewal_probability(ac.health_score) AS prob
        FROM contracts c JOIN accounts ac ON ac.client_id = c.client_id AND ac.status <> 'churned'
        WHERE c.status = 'active' AND c.end_date >= t AND c.end_date <= t + v_days
          AND (v_client IS NULL OR c.client_id = v_client)
        ORDER BY c.end_date, c.client_id LIMIT v_limit
    )
    SELECT coalesce(jsonb_agg(jsonb_build_object(
               'client_id', w.client_id, 'client_name', w.client_name, 'contract_id', w.contract_id,
               'renewal_date', w.end_date, 'days_until_renewal', w.days_left, 'current_arr', w.contract_value,
               'contract_term', w.contract_type, 'auto_renew', w.auto_renew, 'notice_period_days', w.notice_period_days,
               'notice_deadline', w.end_date - w.notice_period_days,
               'health_score', w.health_score, 'renewal_probability', w.prob,
               'timeframe', CASE WHEN w.days_left <= 30 THEN '30_days' WHEN w.days_left <= 60 THEN '60_days'
                                 WHEN w.days_left <= 90 THEN '90_days' ELSE 'over_90_days' END,
               'reminders_scheduled', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                        'type', r.days_before || '_day_notice', 'date', r.remind_on,
                        'status', CASE WHEN r.remind_on < t THEN 'past' WHEN r.remind_on - t <= 7 THEN 'pending' ELSE 'scheduled' END)
                        ORDER BY r.days_before DESC), '[]')
                    FROM renewal_reminders r WHERE r.contract_id = w.contract_id AND r.renewal_date = w.end_date),
               'expansion_opportunities', (SELECT jsonb_build_object('count', count(*), 'total_value', coalesce(sum(estimated_value), 0))
                    FROM expansion_opportunities o WHERE o.client_id = w.client_id AND o.stage NOT IN ('won', 'lost')),
               'key_stakeholders', (SELECT coalesce(jsonb_agg(jsonb_build_object('name', k.name, 'email', k.email, 'role', k.role,
                                                                                'title', k.title) ORDER BY k.role, k.name), '[]')
                    FROM contacts k WHERE k.client_id = w.client_id
                      AND k.role IN ('champion', 'executive_sponsor', 'decision_maker', 'billing')))
               ORDER BY w.end_date, w.client_id), '[]')
    INTO rows FROM w;

    RETURN jsonb_build_object(
        'renewals', rows,
        'renewal_summary', summ,
        'window', jsonb_build_object('from', t, 'to', t + v_days, 'days_until_renewal', v_days, 'client_id', v_client),
        'automated_actions', jsonb_build_array(jsonb_build_object(
            'action', 'schedule_renewal_reminders', 'notices_days_before', jsonb_build_array(90, 60, 30, 14, 7),
            'reminders_created', n_created, 'delivery', 'not sent: reminders are stored for the CSM; no delivery channel')),
        'summary', format('%s renewals in the next %s days, ARR %s (expected %s); %s auto-renew, %s manual; %s reminders created.',
                               summ->>'total_renewals_tracked', v_days, summ->>'total_arr_at_risk', summ->>'expected_renewal_arr',
                               summ->>'auto_renew_enabled', summ->>'manual_renewal_required', n_created));
END $$;

-- get_client_timeline: real events from every table, date range and type filters applied.
CREATE OR REPLACE FUNCTION csmcp.tool_get_client_timeline(args jsonb, principal text)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
    acc accounts := csmcp.require_account(csmcp.arg_text(args, 'client_id', NULL));
    d_end date := csmcp.arg_date(args, 'end_date', csmcp.today());
    d_start date := csmcp.arg_date(args, 'start_date', d_end - 90);
    v_limit integer := csmcp.arg_int(args, 'limit', 100, 1, 1000);
    all_types text[] := ARRAY['account', 'onboarding', 'support', 'usage', 'health', 'communication', 'renewal',
                              'product', 'contract', 'feedback', 'lifecycle'];
    v_types text[];
    ts_from timestamptz;
    ts_to timestamptz;
    result jsonb;
BEGIN
    IF d_start > d_end THEN PERFORM csmcp.invalid('start_date must not be after end_date'); END IF;
    IF args ? 'event_types' AND jsonb_typeof(args -> 'event_types') = 'array' AND jsonb_array_length(args -> 'event_types') > 0 THEN
        SELECT array_agg(x) INTO v_types FROM jsonb_array_elements_text(args -> 'event_types') x;
        IF NOT v_types <@ all_types THEN
            PERFORM csmcp.invalid('event_types must be among: ' || array_to_string(all_types, ', '));
        END IF;
    ELSE
        v_types := all_types;
    END IF;
    ts_from := d_start::timestamp AT TIME ZONE 'UTC';
    ts_to := (d_end + 1)::timestamp AT TIME ZONE 'UTC';

    WITH ev AS (
        SELECT 'act-' || activity_id AS event_id, occurred_at AS ts, 'account' AS event_type, action AS title,
               format('%s by %s', action, actor) AS description, jsonb_build_object('new_values', new_values, 'old_values', old_values) AS metadata
        FROM activity_log WHERE client_id = acc.client_id
        UNION ALL
        SELECT 'lc-' || transition_id, changed_at, 'lifecycle', 'Lifecycle: ' || coalesce(from_stage, 'new') || ' -> ' || to_stage,
               coalesce(reason, ''), jsonb_build_object('from', from_stage, 'to', to_stage, 'changed_by', changed_by)
        FROM lifecycle_transitions WHERE client_id = acc.client_id
        UNION ALL
        SELECT 'tkt-' || ticket_id, created_at, 'support', 'Ticket opened: ' || subject, priority || ' ' || category,
               jsonb_build_object('ticket_id', ticket_id, 'priority', priority, 'status', status)
        FROM support_tickets WHERE client_id = acc.client_id
        UNION ALL
        SELECT 'tkr-' || ticket_id, resolved_at, 'support', 'Ticket resolved: ' || subject, coalesce(resolution_notes, ''),
               jsonb_build_object('ticket_id', ticket_id, 'priority', priority)
        FROM support_tickets WHERE client_id = acc.client_id AND resolved_at IS NOT NULL
        UNION ALL
        SELECT 'esc-' || escalation_id, opened_at, 'support', 'Escalation (' || severity || '): ' || summary, status,
               jsonb_build_object('escalation_id', escalation_id, 'severity', severity)
        FROM escalations WHERE client_id = acc.client_id
        UNION ALL
        SELECT 'hs-' || score_id, calculated_at, 'health', 'Health score ' || overall_score || ' (' || trend || ')',
               'risk ' || risk_level, jsonb_build_object('score', overall_score, 'change', score_change, 'risk_level', risk_level)
        FROM health_scores WHERE client_id = acc.client_id
        UNION ALL
        SELECT 'al-' || alert_id, created_at, 'health', 'Alert from ' || monitor, message, jsonb_build_object('severity', severity)
        FROM monitor_alerts WHERE client_id = acc.client_id
        UNION ALL
        SELECT 'fa-' || feature_id, first_used_on::timestamp AT TIME ZONE 'UTC', 'usage', 'Started using ' || feature_id, '',
               jsonb_build_object('feature_id', feature_id)
        FROM feature_adoption WHERE client_id = acc.client_id
        UNION ALL
        SELECT 'com-' || communication_id, occurred_at, 'communication', channel || coalesce(': ' || subject, ''), direction,
               jsonb_build_object('channel', channel, 'status', status)
        FROM communications WHERE client_id = acc.client_id
        UNION ALL
        SELECT 'ebr-' || ebr_id, scheduled_at, 'communication', 'Executive review (' || ebr_type || ')', status,
               jsonb_build_object('ebr_id', ebr_id)
        FROM executive_reviews WHERE client_id = acc.client_id
        UNION ALL
        SELECT 'onb-' || plan_id, start_date::timestamp AT TIME ZONE 'UTC', 'onboarding', 'Onboarding plan started: ' || name, status,
               jsonb_build_object('plan_id', plan_id)
        FROM onboarding_plans WHERE client_id = acc.client_id
        UNION ALL
        SELECT 'ms-' || m.milestone_id, m.completed_on::timestamp AT TIME ZONE 'UTC', 'onboarding', 'Milestone completed: ' || m.name, '',
               jsonb_build_object('plan_id', m.plan_id)
        FROM onboarding_milestones m JOIN onboarding_plans p USING (plan_id)
        WHERE p.client_id = acc.client_id AND m.completed_on IS NOT NULL
        UNION ALL
        SELECT 'ctr-' || contract_id, start_date::timestamp AT TIME ZONE 'UTC', 'contract', 'Contract started: ' || contract_id,
               contract_type || ', ' || contract_value || ' ' || currency,
               jsonb_build_object('contract_id', contract_id, 'value', contract_value)
        FROM contracts WHERE client_id = acc.client_id
        UNION ALL
        SELECT 'inv-' || invoice_id, coalesce(paid_on, due_on)::timestamp AT TIME ZONE 'UTC', 'contract',
               CASE WHEN paid_on IS NULL THEN 'Invoice due: ' ELSE 'Invoice paid: ' END || invoice_id,
               CASE WHEN paid_on > due_on THEN 'paid late' WHEN paid_on IS NULL AND due_on < csmcp.today() THEN 'overdue' ELSE '' END,
               jsonb_build_object('amount', amount, 'due_on', due_on, 'paid_on', paid_on)
        FROM invoices WHERE client_id = acc.client_id
        UNION ALL
        SELECT 'ren-' || renewal_id, renewal_date::timestamp AT TIME ZONE 'UTC', 'renewal', 'Renewal ' || status, '',
               jsonb_build_object('renewal_id', renewal_id, 'current_arr', current_arr)
        FROM renewals WHERE client_id = acc.client_id
        UNION ALL
        SELECT 'rev-' || event_id, occurred_on::timestamp AT TIME ZONE 'UTC', 'renewal', 'Revenue ' || kind || ': ' || arr_delta,
               coalesce(note, ''), jsonb_build_object('kind', kind, 'arr_delta', arr_delta)
        FROM revenue_events WHERE client_id = acc.client_id
        UNION ALL
        SELECT 'nps-' || response_id, responded_at, 'feedback', 'NPS ' || score || ' (' || category || ')', coalesce(reason, ''),
               jsonb_build_object('score', score)
        FROM nps_responses WHERE client_id = acc.client_id
        UNION ALL
        SELECT 'fb-' || feedback_id, created_at,
               CASE WHEN feedback_type IN ('feature_request', 'bug_report', 'product_feedback') THEN 'product' ELSE 'feedback' END,
               title, sentiment, jsonb_build_object('feedback_type', feedback_type, 'priority', priority)
        FROM feedback WHERE client_id = acc.client_id
    ),
    sel AS (
        SELECT * FROM ev WHERE ts >= ts_from AND ts < ts_to AND event_type = ANY (v_types)
    ),
    page AS (
        SELECT * FROM sel ORDER BY ts DESC, event_id LIMIT v_limit
    )
    SELECT jsonb_build_object(
        'client_id', acc.client_id,
        'timeline', coalesce((SELECT jsonb_agg(jsonb_build_object('event_id', event_id, 'timestamp', ts, 'event_type', event_type,
                                                                  'title', title, 'description', description, 'metadata', metadata)
                                               ORDER BY ts DESC, event_id) FROM page), '[]'),
        'summary', jsonb_build_object(
            'total_events', (SELECT count(*) FROM sel),
            'returned_events', (SELECT count(*) FROM page),
            'date_range', jsonb_build_object('start', d_start, 'end', d_end),
            'event_types', to_jsonb(v_types),
            'event_type_breakdown', coalesce((SELECT jsonb_object_agg(event_type, n) FROM
                                              (SELECT event_type, count(*) AS n FROM sel GROUP BY event_type) b), '{}')))
    INTO result;
    RETURN result;
END $$;

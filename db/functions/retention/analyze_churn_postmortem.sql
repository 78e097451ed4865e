-- analyze_churn_postmortem: for a churned account, lifetime, lifetime value, the health history
-- before churn, the warning signs in the 365 days up to the churn date and which of them had no
-- intervention recorded within 14 days (missed interventions).
CREATE OR REPLACE FUNCTION csmcp.tool_analyze_churn_postmortem(args jsonb, principal text)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
    acc accounts := csmcp.require_account(csmcp.arg_text(args, 'client_id', NULL));
    v_arg date := csmcp.arg_date(args, 'churn_date', NULL);
    v_recorded date;
    v_churn date;
    v_start date;
    v_end_ts timestamptz;
    v_from date;
    v_months integer;
    v_ltv numeric;
    v_paid integer;
    v_last contracts;
    v_recent bigint;
    v_prev bigint;
    v_history jsonb;
    v_signs jsonb;
    v_missed jsonb;
    v_counts jsonb;
BEGIN
    IF acc.lifecycle_stage <> 'churned' THEN
        RAISE EXCEPTION 'account % has not churned (lifecycle stage %); a post-mortem needs a churned account', acc.client_id, acc.lifecycle_stage
            USING ERRCODE = '22023';
    END IF;
    SELECT (max(changed_at) AT TIME ZONE 'UTC')::date INTO v_recorded
    FROM lifecycle_transitions WHERE client_id = acc.client_id AND to_stage = 'churned';
    IF v_recorded IS NULL AND v_arg IS NULL THEN
        PERFORM csmcp.invalid(format('account %s has no recorded churn date; pass churn_date (YYYY-MM-DD)', acc.client_id));
    END IF;
    IF v_recorded IS NOT NULL AND v_arg IS NOT NULL AND v_arg <> v_recorded THEN
        PERFORM csmcp.invalid(format('churn_date %s does not match the recorded churn date %s of %s', v_arg, v_recorded, acc.client_id));
    END IF;
    v_churn := coalesce(v_recorded, v_arg);
    IF v_churn > csmcp.today() THEN PERFORM csmcp.invalid('churn_date cannot be in the future'); END IF;
    v_end_ts := (v_churn + 1)::timestamp AT TIME ZONE 'UTC';   -- end of the churn day
    v_from := v_churn - 364;                                      -- signs window: 365 days up to the churn date

    SELECT least((acc.created_at AT TIME ZONE 'UTC')::date, min(start_date)) INTO v_start FROM contracts WHERE client_id = acc.client_id;
    v_start := least(coalesce(v_start, (acc.created_at AT TIME ZONE 'UTC')::date), v_churn);
    v_months := (extract(year FROM age(v_churn, v_start)) * 12 + extract(month FROM age(v_churn, v_start)))::integer;
    SELECT coalesce(sum(amount), 0), count(*) INTO v_ltv, v_paid FROM invoices WHERE client_id = acc.client_id AND paid_on IS NOT NULL;
    SELECT * INTO v_last FROM contracts WHERE client_id = acc.client_id ORDER BY end_date DESC, start_date DESC LIMIT 1;

    SELECT coalesce(jsonb_agg(jsonb_build_object('calculated_at', h.calculated_at, 'score', h.overall_score, 'trend', h.trend,
                                                 'risk_level', h.risk_level) ORDER BY h.calculated_at, h.score_id), '[]')
    INTO v_history
    FROM (SELECT * FROM health_scores WHERE client_id = acc.client_id AND calculated_at < v_end_ts
          ORDER BY calculated_at DESC, score_id DESC LIMIT 24) h;

    SELECT coalesce(sum(active_users) FILTER (WHERE day > v_churn - 30), 0), coalesce(sum(active_users) FILTER (WHERE day <= v_churn - 30), 0)
    INTO v_recent, v_prev
    FROM usage_daily WHERE client_id = acc.client_id AND day > v_churn - 60 AND day <= v_churn;

    WITH signs AS (
        SELECT 'health_below_60' AS sign, min(calculated_at AT TIME ZONE 'UTC')::date AS d,
               jsonb_build_object('first_score_below_60',
                                  (array_agg(overall_score ORDER BY calculated_at, score_id))[1]) AS detail
        FROM health_scores
        WHERE client_id = acc.client_id AND overall_score < 60 AND calculated_at >= v_from::timestamp AT TIME ZONE 'UTC'
          AND calculated_at < v_end_ts
        HAVING count(*) > 0
        UNION ALL
        SELECT 'usage_decline', v_churn - 29,
               jsonb_build_object('active_user_days_previous_30', v_prev, 'active_user_days_last_30', v_recent,
                                  'decline_pct', round((v_prev - v_recent)::numeric * 100 / nullif(v_prev, 0), 1))
        WHERE v_prev > 0 AND (v_prev - v_recent)::numeric / nullif(v_prev, 0) >= 0.30
        UNION ALL
        SELECT 'critical_ticket', (created_at AT TIME ZONE 'UTC')::date,
               jsonb_build_object('ticket_id', ticket_id, 'priority', priority, 'subject', subject)
        FROM support_tickets
        WHERE client_id = acc.client_id AND priority IN ('P0', 'P1') AND created_at >= v_from::timestamp AT TIME ZONE 'UTC'
          AND created_at < v_end_ts
        UNION ALL
        SELECT 'detractor_response', (responded_at AT TIME ZONE 'UTC')::date,
               jsonb_build_object('response_id', response_id, 'score', score, 'reason', reason)
        FROM nps_responses
        WHERE client_id = acc.client_id AND score <= 6 AND responded_at >= v_from::timestamp AT TIME ZONE 'UTC'
          AND responded_at < v_end_ts
        UNION ALL
        SELECT 'overdue_invoice', due_on + 1,
               jsonb_build_object('invoice_id', invoice_id, 'amount', amount, 'due_on', due_on, 'paid_on', paid_on)
        FROM invoices
        WHERE client_id = acc.client_id AND due_on < v_churn AND (paid_on IS NULL OR paid_on > due_on) AND due_on + 1 >= v_from
    ), interventions AS (
        SELECT (occurred_at AT TIME ZONE 'UTC')::date AS d, 'communication' AS kind,
               channel || coalesce(': ' || subject, '') AS what
        FROM communications
        WHERE client_id = acc.client_id AND direction = 'outbound' AND status IN ('sent', 'delivered', 'opened', 'clicked')
        UNION ALL
        SELECT (created_at AT TIME ZONE 'UTC')::date, 'retention_campaign', campaign_id || ' ' || campaign_type
        FROM retention_campaigns WHERE client_id = acc.client_id
        UNION ALL
        SELECT (opened_at AT TIME ZONE 'UTC')::date, 'escalation', escalation_id || ' ' || severity
        FROM escalations WHERE client_id = acc.client_id
    ), judged AS (
        SELECT s.sign, s.d, s.detail,
               (SELECT jsonb_agg(jsonb_build_object('date', i.d, 'kind', i.kind, 'what', i.what) ORDER BY i.d, i.kind, i.what)
                FROM interventions i WHERE i.d BETWEEN s.d AND s.d + 14) AS iv
        FROM signs s
    )
    SELECT coalesce(jsonb_agg(jsonb_build_object('sign', sign, 'date', d, 'detail', detail,
                                                 'intervention_within_14_days', iv IS NOT NULL,
                                                 'interventions', coalesce(iv, '[]')) ORDER BY d, sign, detail::text), '[]'),
           coalesce(jsonb_agg(jsonb_build_object('sign', sign, 'date', d, 'detail', detail,
                                                 'no_intervention_by', d + 14) ORDER BY d, sign, detail::text)
                    FILTER (WHERE iv IS NULL), '[]'),
           jsonb_build_object('health_below_60', count(*) FILTER (WHERE sign = 'health_below_60'),
                              'usage_decline', count(*) FILTER (WHERE sign = 'usage_decline'),
                              'critical_ticket', count(*) FILTER (WHERE sign = 'critical_ticket'),
                              'detractor_response', count(*) FILTER (WHERE sign = 'detractor_response'),
                              'overdue_invoice', count(*) FILTER (WHERE sign = 'overdue_invoice'))
    INTO v_signs, v_missed, v_counts
    FROM judged;

    RETURN jsonb_build_object(
        'client_id', acc.client_id, 'client_name', acc.client_name, 'tier', acc.tier,
        'churn_date', v_churn, 'churn_date_source', CASE WHEN v_recorded IS NOT NULL THEN 'lifecycle_transitions' ELSE 'argument' END,
        'customer_since', v_start,
        'customer_lifetime_months', v_months,
        'customer_lifetime_days', v_churn - v_start,
        'lifetime_value', v_ltv, 'paid_invoices', v_paid,
        'arr_at_churn', v_last.contract_value, 'last_contract_id', v_last.contract_id,
        'health_history', v_history,
        'warning_signs_window', jsonb_build_object('from', v_from, 'to', v_churn),
        'warning_signs', v_signs,
        'warning_sign_counts', v_counts,
        'missed_interventions', v_missed,
        'summary', format('%s churned on %s after %s months (lifetime value %s); %s warning sign(s), %s without an intervention within 14 days%s',
                          acc.client_name, v_churn, v_months, v_ltv, jsonb_array_length(v_signs), jsonb_array_length(v_missed),
                          CASE WHEN jsonb_array_length(v_signs) > 0
                               THEN format('; first: %s on %s', v_signs #>> '{0,sign}', v_signs #>> '{0,date}') ELSE '' END));
END $$;

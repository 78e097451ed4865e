-- get_client_overview: the 360-degree view, every section from stored rows. Health is the
-- effective score (csmcp.effective_health: an active manual override, else the computed score,
-- shown beside it as health.computed_score) for the score, risk level, renewal, risks and
-- opportunities.
CREATE OR REPLACE FUNCTION csmcp.tool_get_client_overview(args jsonb, principal text)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
    t date := csmcp.today();
    acc accounts := csmcp.require_account(csmcp.arg_text(args, 'client_id', NULL));
    c contracts := csmcp.active_contract(acc.client_id);
    hs health_scores;
    j_contract jsonb; j_health jsonb; j_usage jsonb; j_support jsonb; j_sat jsonb; j_pay jsonb;
    j_renewal jsonb; j_revenue jsonb; j_onb jsonb; j_recent jsonb; j_trend jsonb;
    risks jsonb := '[]'; opps jsonb := '[]';
    avg7 numeric; avg30 numeric; ev30 bigint; last_day date; util numeric;
    open_t integer; crit_open integer; t30 integer; rating numeric; last_ticket timestamptz;
    nps90 numeric; n_nps integer; last_nps integer; csat numeric;
    overdue integer; overdue_amt numeric; late integer; last_paid date;
    days_ren integer; renew_p numeric; renew_risk text;
    pipeline numeric; n_opps integer; arr_change numeric;
    v_computed integer := acc.health_score;
BEGIN
    acc.health_score := csmcp.effective_health(acc.client_id, acc.health_score);
    IF c.contract_id IS NOT NULL THEN
        days_ren := c.end_date - t;
        j_contract := jsonb_build_object('contract_id', c.contract_id, 'contract_type', c.contract_type,
            'tier', c.tier, 'annual_value', c.contract_value, 'currency', c.currency,
            'licensed_seats', c.licensed_seats, 'billing_frequency', c.billing_frequency,
            'start_date', c.start_date, 'end_date', c.end_date, 'auto_renew', c.auto_renew,
            'days_until_renewal', days_ren);
    END IF;

    SELECT * INTO hs FROM health_scores WHERE client_id = acc.client_id
    ORDER BY calculated_at DESC, score_id DESC LIMIT 1;
    j_health := jsonb_build_object(
        'current_score', acc.health_score, 'computed_score', v_computed,
        'override', csmcp.sc_override_json(csmcp.health_override_active(acc.client_id)), 'trend', acc.health_trend,
        'risk_level', csmcp.risk_level(acc.health_score),
        'last_calculated_at', hs.calculated_at,
        'components', CASE WHEN hs.score_id IS NULL THEN NULL ELSE jsonb_build_object(
            'usage', hs.usage_score, 'engagement', hs.engagement_score, 'support', hs.support_score,
            'satisfaction', hs.satisfaction_score, 'payment', hs.payment_score) END,
        'history', coalesce((SELECT jsonb_agg(jsonb_build_object('calculated_at', h.calculated_at, 'score', h.overall_score)
                                              ORDER BY h.calculated_at DESC, h.score_id DESC)
                             FROM (SELECT * FROM health_scores WHERE client_id = acc.client_id
                                   ORDER BY calculated_at DESC, score_id DESC LIMIT 10) h), '[]'));

    SELECT coalesce(sum(active_users) FILTER (WHERE day > t - 7), 0)::numeric / 7,
           coalesce(sum(active_users), 0)::numeric / 30, coalesce(sum(events), 0)
    INTO avg7, avg30, ev30
    FROM usage_daily WHERE client_id = acc.client_id AND day > t - 30 AND day <= t;
    SELECT max(day) INTO last_day FROM usage_daily WHERE client_id = acc.client_id AND events > 0 AND day <= t;
    util := CASE WHEN c.licensed_seats IS NOT NULL THEN round(avg30 / c.licensed_seats, 3) END;
    j_trend := csmcp.usage_trend(acc.client_id, t);
    j_usage := jsonb_build_object(
        'avg_daily_active_users_7d', round(avg7, 2), 'avg_daily_active_users_30d', round(avg30, 2),
        'licensed_seats', c.licensed_seats, 'seat_utilization_30d', util, 'events_30d', ev30,
        'last_activity_date', last_day, 'days_since_last_activity', t - last_day,
        'trend', j_trend,
        'top_features_30d', coalesce((SELECT jsonb_agg(jsonb_build_object('feature_id', feature_id, 'events', ev) ORDER BY ev DESC, feature_id)
                                      FROM (SELECT feature_id, sum(events) AS ev FROM usage_feature_daily
                                            WHERE client_id = acc.client_id AND day > t - 30 AND day <= t
                                            GROUP BY feature_id ORDER BY ev DESC, feature_id LIMIT 5) f), '[]'));

    SELECT count(*) FILTER (WHERE status NOT IN ('resolved', 'closed')),
           count(*) FILTER (WHERE status NOT IN ('resolved', 'closed') AND priority IN ('P0', 'P1')),
           count(*) FILTER (WHERE created_at > now() - interval '30 days'),
           round(avg(satisfaction_rating) FILTER (WHERE created_at > now() - interval '90 days'), 2),
           max(created_at)
    INTO open_t, crit_open, t30, rating, last_ticket
    FROM support_tickets WHERE client_id = acc.client_id;
    j_support := jsonb_build_object('open_tickets', open_t, 'critical_open_tickets', crit_open,
        'tickets_last_30d', t30, 'avg_satisfaction_rating_90d', rating, 'last_ticket_at', last_ticket);

    SELECT round((count(*) FILTER (WHERE score >= 9) - count(*) FILTER (WHERE score <= 6))::numeric * 100
                 / nullif(count(*), 0), 1), count(*)
    INTO nps90, n_nps FROM nps_responses
    WHERE client_id = acc.client_id AND responded_at > now() - interval '90 days';
    SELECT score INTO last_nps FROM nps_responses WHERE client_id = acc.client_id
    ORDER BY responded_at DESC, response_id DESC LIMIT 1;
    SELECT round(avg(score), 2) INTO csat FROM csat_responses
    WHERE client_id = acc.client_id AND survey_type = 'csat' AND responded_at > now() - interval '90 days';
    j_sat := jsonb_build_object('nps_90d', nps90, 'nps_responses_90d', n_nps, 'last_nps_score', last_nps,
                                'csat_avg_90d', csat);

    SELECT count(*) FILTER (WHERE paid_on IS NULL AND due_on < t),
           coalesce(sum(amount) FILTER (WHERE paid_on IS NULL AND due_on < t), 0),
           count(*) FILTER (WHERE paid_on > due_on AND issued_on > t - 365), max(paid_on)
    INTO overdue, overdue_amt, late, last_paid FROM invoices WHERE client_id = acc.client_id;
    j_pay := jsonb_build_object('overdue_invoices', overdue, 'overdue_amount', overdue_amt,
                                'late_payments_12m', late, 'last_payment_on', last_paid);

    renew_p := CASE WHEN acc.health_score >= 80 THEN 0.90 WHEN acc.health_score >= 60 THEN 0.70 ELSE 0.40 END;
    renew_risk := CASE WHEN acc.health_score >= 80 THEN 'low' WHEN acc.health_score >= 60 THEN 'medium' ELSE 'high' END;
    j_renewal := CASE WHEN c.contract_id IS NULL THEN NULL ELSE jsonb_build_object(
        'renewal_date', c.end_date, 'days_until_renewal', days_ren, 'auto_renew', c.auto_renew,
        'renewal_probability', renew_p, 'renewal_risk_level', renew_risk) END;

    SELECT coalesce(sum(estimated_value), 0), count(*) INTO pipeline, n_opps FROM expansion_opportunities
    WHERE client_id = acc.client_id AND stage NOT IN ('won', 'lost');
    SELECT coalesce(sum(arr_delta), 0) INTO arr_change FROM revenue_events
    WHERE client_id = acc.client_id AND occurred_on > t - 365 AND kind <> 'renewal';
    j_revenue := jsonb_build_object('current_arr', coalesce(c.contract_value, 0), 'arr_change_12m', arr_change,
                                    'open_expansion_pipeline', pipeline, 'open_expansion_opportunities', n_opps);

    SELECT jsonb_build_object('plan_id', p.plan_id, 'status', p.status, 'start_date', p.start_date,
                              'target_date', p.target_date,
                              'milestones_total', (SELECT count(*) FROM onboarding_milestones m WHERE m.plan_id = p.plan_id),
                              'milestones_completed', (SELECT count(*) FROM onboarding_milestones m
                                                       WHERE m.plan_id = p.plan_id AND m.status = 'completed'))
    INTO j_onb FROM onboarding_plans p WHERE p.client_id = acc.client_id
    ORDER BY p.created_at DESC LIMIT 1;

    SELECT coalesce(jsonb_agg(x ORDER BY (x->>'timestamp')::timestamptz DESC), '[]') INTO j_recent FROM (
        SELECT x FROM (
            SELECT occurred_at AS ts, jsonb_build_object('timestamp', occurred_at, 'type', 'activity', 'title', action, 'actor', actor) AS x
            FROM activity_log WHERE client_id = acc.client_id
            UNION ALL
            SELECT created_at, jsonb_build_object('timestamp', created_at, 'type', 'support', 'title', 'Ticket ' || ticket_id || ' (' || priority || '): ' || subject)
            FROM support_tickets WHERE client_id = acc.client_id
            UNION ALL
            SELECT occurred_at, jsonb_build_object('timestamp', occurred_at, 'type', 'communication', 'title', channel || coalesce(': ' || subject, ''))
            FROM communications WHERE client_id = acc.client_id
            UNION ALL
            SELECT responded_at, jsonb_build_object('timestamp', responded_at, 'type', 'nps', 'title', 'NPS response ' || score)
            FROM nps_responses WHERE client_id = acc.client_id) u
        ORDER BY ts DESC LIMIT 10) r;

    -- Risks and opportunities, each derived from the figures above.
    IF acc.health_score < 60 THEN
        risks := risks || jsonb_build_object('type', 'low_health', 'severity', CASE WHEN acc.health_score < 50 THEN 'high' ELSE 'medium' END,
                                             'detail', format('health score %s is below 60', acc.health_score));
    END IF;
    IF j_trend->>'direction' = 'declining' THEN
        risks := risks || jsonb_build_object('type', 'usage_decline', 'severity', 'high',
                                             'detail', format('daily active users changed %s%% over the last 15 days', j_trend->>'change_pct'));
    END IF;
    IF last_day IS NULL OR t - last_day > 14 THEN
        risks := risks || jsonb_build_object('type', 'inactive', 'severity', 'high',
                                             'detail', CASE WHEN last_day IS NULL THEN 'no product usage recorded'
                                                            ELSE format('no product usage for %s days', t - last_day) END);
    END IF;
    IF util IS NOT NULL AND util < 0.5 THEN
        risks := risks || jsonb_build_object('type', 'low_seat_utilization', 'severity', 'medium',
                                             'detail', format('%s%% of licensed seats active on an average day', round(util * 100)));
    END IF;
    IF crit_open > 0 THEN
        risks := risks || jsonb_build_object('type', 'critical_tickets', 'severity', 'high',
                                             'detail', format('%s open P0/P1 tickets', crit_open));
    END IF;
    IF overdue > 0 THEN
        risks := risks || jsonb_build_object('type', 'overdue_payment', 'severity', 'high',
                                             'detail', format('%s overdue invoices (%s %s)', overdue, overdue_amt, coalesce(c.currency, 'USD')));
    END IF;
    IF nps90 IS NOT NULL AND nps90 < 0 THEN
        risks := risks || jsonb_build_object('type', 'detractors', 'severity', 'medium', 'detail', format('NPS %s over 90 days', nps90));
    END IF;
    IF days_ren IS NOT NULL AND days_ren <= 90 AND acc.health_score < 70 THEN
        risks := risks || jsonb_build_object('type', 'renewal_at_risk', 'severity', 'high',
                                             'detail', format('renewal in %s days with health %s', days_ren, acc.health_score));
    END IF;

    IF util IS NOT NULL AND util >= 0.8 THEN
        opps := opps || jsonb_build_object('type', 'user_expansion',
                                           'detail', format('%s%% of licensed seats active on an average day', round(util * 100)));
    END IF;
    IF acc.health_score >= 75 AND acc.tier <> 'enterprise' THEN
        opps := opps || jsonb_build_object('type', 'tier_upgrade', 'detail', format('healthy %s account (health %s)', acc.tier, acc.health_score));
    END IF;
    IF nps90 IS NOT NULL AND nps90 >= 50 THEN
        opps := opps || jsonb_build_object('type', 'advocacy', 'detail', format('NPS %s over 90 days', nps90));
    END IF;
    IF n_opps > 0 THEN
        opps := opps || jsonb_build_object('type', 'open_pipeline', 'detail', format('%s open expansion opportunities worth %s', n_opps, pipeline));
    END IF;

    RETURN jsonb_build_object(
        'client_id', acc.client_id,
        'basic', jsonb_build_object('client_name', acc.client_name, 'company_name', acc.company_name,
            'industry', acc.industry, 'tier', acc.tier, 'lifecycle_stage', acc.lifecycle_stage, 'status', acc.status,
            'csm_assigned', acc.csm_assigned, 'primary_contact_name', acc.primary_contact_name,
            'primary_contact_email', acc.primary_contact_email, 'created_at', acc.created_at,
            'contacts', (SELECT count(*) FROM contacts WHERE client_id = acc.client_id)),
        'contract', j_contract,
        'health', j_health,
        'usage', j_usage,
        'support', j_support,
        'satisfaction', j_sat,
        'payment', j_pay,
        'renewal', j_renewal,
        'revenue', j_revenue,
        'onboarding', j_onb,
        'recent_activity', j_recent,
        'risks', risks,
        'opportunities', opps);
END $$;

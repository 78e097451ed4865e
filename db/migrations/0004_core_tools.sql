-- 0004_core_tools.sql - core tools: register_client, get_client_overview, update_client_info,
-- list_clients, get_client_timeline. Each is one function = one transaction.

-- register_client: creates the account, its active contract, the primary contact, the first
-- lifecycle transition (-> onboarding) and an activity_log row.
CREATE OR REPLACE FUNCTION csmcp.tool_register_client(args jsonb, principal text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    t date := csmcp.today();
    v_name text := btrim(csmcp.arg_text(args, 'client_name', NULL));
    v_company text := btrim(csmcp.arg_text(args, 'company_name', NULL));
    v_industry text := coalesce(csmcp.arg_text(args, 'industry', NULL), 'Technology');
    v_value numeric := round(csmcp.arg_num(args, 'contract_value', 0, 0, 1e12), 2);
    v_start date := csmcp.arg_date(args, 'contract_start_date', t);
    v_end date;
    v_tier text := lower(coalesce(csmcp.arg_text(args, 'tier', NULL), 'standard'));
    v_seats integer := csmcp.arg_int(args, 'licensed_seats', NULL, 1, 1000000);
    v_email text := nullif(btrim(csmcp.arg_text(args, 'primary_contact_email', NULL)), '');
    v_contact text := nullif(btrim(csmcp.arg_text(args, 'primary_contact_name', NULL)), '');
    v_csm text := nullif(btrim(csmcp.arg_text(args, 'csm_assigned', NULL)), '');
    v_id text := csmcp.arg_text(args, 'client_id', NULL);
    v_base text;
    v_contract text;
    n integer := 1;
    acc accounts;
    con contracts;
BEGIN
    IF v_name IS NULL OR v_name = '' THEN PERFORM csmcp.invalid('client_name is required'); END IF;
    IF v_company IS NULL OR v_company = '' THEN PERFORM csmcp.invalid('company_name is required'); END IF;
    IF length(v_name) > 200 OR length(v_company) > 200 THEN
        PERFORM csmcp.invalid('client_name and company_name are limited to 200 characters');
    END IF;
    IF v_tier NOT IN ('starter', 'standard', 'professional', 'enterprise') THEN
        PERFORM csmcp.invalid('tier must be one of: starter, standard, professional, enterprise');
    END IF;
    v_end := csmcp.arg_date(args, 'contract_end_date', v_start + 365);
    IF v_end <= v_start THEN PERFORM csmcp.invalid('contract_end_date must be after contract_start_date'); END IF;
    IF v_email IS NOT NULL AND v_email !~ '^[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\.[a-zA-Z]{2,}$' THEN
        PERFORM csmcp.invalid('primary_contact_email is not a valid email address');
    END IF;

    IF v_id IS NOT NULL THEN
        IF v_id !~ '^[A-Za-z0-9_-]{1,100}$' THEN
            PERFORM csmcp.invalid('invalid client_id: only letters, digits, "_" and "-", at most 100 characters');
        END IF;
        IF EXISTS (SELECT 1 FROM accounts WHERE client_id = v_id) THEN
            RAISE EXCEPTION 'client already exists: %', v_id USING ERRCODE = '23505';
        END IF;
    ELSE
        -- cs_<unix time>_<first 10 characters of the name, lower case, [a-z0-9_] only>
        v_base := 'cs_' || extract(epoch FROM now())::bigint || '_' ||
                  coalesce(nullif(regexp_replace(left(lower(v_name), 10), '[^a-z0-9]+', '_', 'g'), ''), 'client');
        v_id := v_base;
        WHILE EXISTS (SELECT 1 FROM accounts WHERE client_id = v_id) LOOP
            n := n + 1;
            v_id := v_base || '_' || n;
        END LOOP;
    END IF;

    INSERT INTO accounts (client_id, client_name, company_name, industry, tier, csm_assigned,
                          primary_contact_email, primary_contact_name)
    VALUES (v_id, v_name, v_company, v_industry, v_tier, v_csm, v_email, v_contact)
    RETURNING * INTO acc;

    v_contract := 'CTR-' || v_id;
    INSERT INTO contracts (contract_id, client_id, tier, contract_value, licensed_seats, start_date, end_date)
    VALUES (v_contract, v_id, v_tier, v_value, v_seats, v_start, v_end)
    RETURNING * INTO con;

    IF v_email IS NOT NULL THEN
        INSERT INTO contacts (client_id, name, email, role, is_primary)
        VALUES (v_id, coalesce(v_contact, v_email), v_email, 'champion', true);
    END IF;
    INSERT INTO lifecycle_transitions (client_id, from_stage, to_stage, reason, changed_by)
    VALUES (v_id, NULL, 'onboarding', 'registered', coalesce(principal, 'anonymous'));
    IF v_value > 0 THEN
        INSERT INTO revenue_events (client_id, kind, arr_delta, occurred_on, note)
        VALUES (v_id, 'new', v_value, v_start, 'initial contract ' || v_contract);
    END IF;
    PERFORM csmcp.log_activity(v_id, principal, 'register_client', 'account', v_id, NULL,
                               to_jsonb(acc) || jsonb_build_object('contract', to_jsonb(con)));

    RETURN jsonb_build_object(
        'status', 'success',
        'message', format('Client %s registered', v_name),
        'client_id', v_id,
        'client_record', jsonb_build_object(
            'client_id', acc.client_id, 'client_name', acc.client_name, 'company_name', acc.company_name,
            'industry', acc.industry, 'tier', acc.tier, 'lifecycle_stage', acc.lifecycle_stage,
            'status', acc.status, 'health_score', acc.health_score, 'health_trend', acc.health_trend,
            'csm_assigned', acc.csm_assigned, 'primary_contact_email', acc.primary_contact_email,
            'primary_contact_name', acc.primary_contact_name, 'created_at', acc.created_at),
        'contract', jsonb_build_object(
            'contract_id', con.contract_id, 'contract_value', con.contract_value, 'licensed_seats', con.licensed_seats,
            'start_date', con.start_date, 'end_date', con.end_date),
        'summary', jsonb_build_object(
            'tier', v_tier,
            'contract_value', v_value,
            'contract_term_days', v_end - v_start,
            'days_until_renewal', v_end - t,
            'lifecycle_stage', acc.lifecycle_stage),
        'next_steps', jsonb_build_array(
            'Create an onboarding plan (create_onboarding_plan)',
            'Send usage events for the account (ingest_usage_events)',
            'Calculate the first health score after a week of usage (calculate_health_score)'));
END $$;

-- get_client_overview: the 360-degree view, every section from stored rows.
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
BEGIN
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
        'current_score', acc.health_score, 'trend', acc.health_trend,
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

-- update_client_info: patches account fields (and the active contract's value, dates and seats);
-- only fields whose value really changes are written; old and new values go to activity_log.
CREATE OR REPLACE FUNCTION csmcp.tool_update_client_info(args jsonb, principal text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    acc accounts := csmcp.require_account(csmcp.arg_text(args, 'client_id', NULL));
    c contracts := csmcp.active_contract(acc.client_id);
    upd jsonb := args -> 'updates';
    acc_fields text[] := ARRAY['client_name', 'company_name', 'industry', 'tier', 'csm_assigned', 'status',
                               'primary_contact_email', 'primary_contact_name'];
    con_fields text[] := ARRAY['contract_value', 'contract_start_date', 'contract_end_date', 'licensed_seats'];
    k text;
    old_v jsonb := '{}';
    new_v jsonb := '{}';
    cur jsonb;
    val jsonb;
    acc_new accounts;
    con_new contracts;
    act_id bigint;
BEGIN
    -- Lock the account row so concurrent updates serialize and old values are exact.
    PERFORM 1 FROM accounts WHERE client_id = acc.client_id FOR UPDATE;
    IF upd IS NULL OR jsonb_typeof(upd) <> 'object' OR upd = '{}'::jsonb THEN
        PERFORM csmcp.invalid('updates must be a non-empty object');
    END IF;
    FOR k IN SELECT jsonb_object_keys(upd) LOOP
        IF NOT (k = ANY (acc_fields || con_fields)) THEN
            PERFORM csmcp.invalid(format('field %s cannot be updated; allowed: %s', k,
                                         array_to_string(acc_fields || con_fields, ', ')));
        END IF;
        IF k = ANY (con_fields) AND c.contract_id IS NULL THEN
            PERFORM csmcp.invalid(format('field %s needs an active contract; the account has none', k));
        END IF;
    END LOOP;

    -- Validate values with the same readers as register_client.
    IF upd ? 'client_name' AND coalesce(btrim(csmcp.arg_text(upd, 'client_name', NULL)), '') = '' THEN
        PERFORM csmcp.invalid('client_name cannot be empty');
    END IF;
    IF upd ? 'company_name' AND coalesce(btrim(csmcp.arg_text(upd, 'company_name', NULL)), '') = '' THEN
        PERFORM csmcp.invalid('company_name cannot be empty');
    END IF;
    PERFORM csmcp.arg_text(upd, 'tier', NULL, ARRAY['starter', 'standard', 'professional', 'enterprise']);
    PERFORM csmcp.arg_text(upd, 'status', NULL, ARRAY['active', 'paused', 'churned', 'pending']);
    PERFORM csmcp.arg_text(upd, 'industry', NULL);
    PERFORM csmcp.arg_text(upd, 'csm_assigned', NULL);
    PERFORM csmcp.arg_text(upd, 'primary_contact_name', NULL);
    IF upd ? 'primary_contact_email' AND csmcp.arg_text(upd, 'primary_contact_email', NULL)
            !~ '^[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\.[a-zA-Z]{2,}$' THEN
        PERFORM csmcp.invalid('primary_contact_email is not a valid email address');
    END IF;

    UPDATE accounts SET
        client_name = coalesce(btrim(upd ->> 'client_name'), client_name),
        company_name = coalesce(btrim(upd ->> 'company_name'), company_name),
        industry = coalesce(upd ->> 'industry', industry),
        tier = coalesce(upd ->> 'tier', tier),
        csm_assigned = CASE WHEN upd ? 'csm_assigned' THEN upd ->> 'csm_assigned' ELSE csm_assigned END,
        status = coalesce(upd ->> 'status', status),
        primary_contact_email = CASE WHEN upd ? 'primary_contact_email' THEN upd ->> 'primary_contact_email' ELSE primary_contact_email END,
        primary_contact_name = CASE WHEN upd ? 'primary_contact_name' THEN upd ->> 'primary_contact_name' ELSE primary_contact_name END,
        updated_at = now()
    WHERE client_id = acc.client_id RETURNING * INTO acc_new;

    IF c.contract_id IS NOT NULL AND upd ?| con_fields THEN
        UPDATE contracts SET
            contract_value = coalesce(round(csmcp.arg_num(upd, 'contract_value', NULL, 0, 1e12), 2), contract_value),
            start_date = coalesce(csmcp.arg_date(upd, 'contract_start_date', NULL), start_date),
            end_date = coalesce(csmcp.arg_date(upd, 'contract_end_date', NULL), end_date),
            licensed_seats = CASE WHEN upd ? 'licensed_seats' THEN csmcp.arg_int(upd, 'licensed_seats', NULL, 1, 1000000)
                                  ELSE licensed_seats END,
            tier = coalesce(upd ->> 'tier', tier)
        WHERE contract_id = c.contract_id RETURNING * INTO con_new;
        IF con_new.contract_value <> c.contract_value THEN
            INSERT INTO revenue_events (client_id, kind, arr_delta, occurred_on, note)
            VALUES (acc.client_id, CASE WHEN con_new.contract_value > c.contract_value THEN 'expansion' ELSE 'contraction' END,
                    con_new.contract_value - c.contract_value, csmcp.today(), 'update_client_info');
        END IF;
    END IF;

    FOREACH k IN ARRAY acc_fields LOOP
        cur := to_jsonb(acc) -> k;
        val := to_jsonb(acc_new) -> k;
        IF cur IS DISTINCT FROM val THEN
            old_v := old_v || jsonb_build_object(k, cur);
            new_v := new_v || jsonb_build_object(k, val);
        END IF;
    END LOOP;
    IF con_new.contract_id IS NOT NULL THEN
        FOREACH k IN ARRAY con_fields LOOP
            cur := to_jsonb(c) -> CASE k WHEN 'contract_start_date' THEN 'start_date' WHEN 'contract_end_date' THEN 'end_date' ELSE k END;
            val := to_jsonb(con_new) -> CASE k WHEN 'contract_start_date' THEN 'start_date' WHEN 'contract_end_date' THEN 'end_date' ELSE k END;
            IF cur IS DISTINCT FROM val THEN
                old_v := old_v || jsonb_build_object(k, cur);
                new_v := new_v || jsonb_build_object(k, val);
            END IF;
        END LOOP;
    END IF;
    IF new_v ? 'status' AND acc_new.status = 'churned' AND acc_new.lifecycle_stage <> 'churned' THEN
        UPDATE accounts SET lifecycle_stage = 'churned' WHERE client_id = acc.client_id;
        INSERT INTO lifecycle_transitions (client_id, from_stage, to_stage, reason, changed_by)
        VALUES (acc.client_id, acc_new.lifecycle_stage, 'churned', 'status set to churned', coalesce(principal, 'anonymous'));
    END IF;
    IF new_v <> '{}'::jsonb THEN
        act_id := csmcp.log_activity(acc.client_id, principal, 'update_client_info', 'account', acc.client_id, old_v, new_v);
    END IF;

    RETURN jsonb_build_object(
        'status', 'success',
        'message', CASE WHEN new_v = '{}'::jsonb THEN 'No field changed' ELSE format('Updated %s field(s)', (SELECT count(*) FROM jsonb_object_keys(new_v))) END,
        'client_id', acc.client_id,
        'updated_fields', coalesce((SELECT jsonb_agg(k2 ORDER BY k2) FROM jsonb_object_keys(new_v) k2), '[]'),
        'previous_values', old_v,
        'new_values', new_v,
        'updated_record', jsonb_build_object(
            'client_name', acc_new.client_name, 'company_name', acc_new.company_name, 'industry', acc_new.industry,
            'tier', acc_new.tier, 'status', acc_new.status, 'csm_assigned', acc_new.csm_assigned,
            'primary_contact_email', acc_new.primary_contact_email, 'primary_contact_name', acc_new.primary_contact_name,
            'contract_value', coalesce(con_new.contract_value, c.contract_value),
            'contract_start_date', coalesce(con_new.start_date, c.start_date),
            'contract_end_date', coalesce(con_new.end_date, c.end_date),
            'licensed_seats', CASE WHEN con_new.contract_id IS NOT NULL THEN con_new.licensed_seats ELSE c.licensed_seats END),
        'audit', jsonb_build_object('updated_at', acc_new.updated_at, 'updated_by', coalesce(principal, 'anonymous'),
                                    'activity_id', act_id));
END $$;

-- list_clients: filters, sorting and pagination; the summary covers the whole filtered set.
CREATE OR REPLACE FUNCTION csmcp.tool_list_clients(args jsonb, principal text)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
    t date := csmcp.today();
    f_tier text := csmcp.arg_text(args, 'tier_filter', NULL, ARRAY['starter', 'standard', 'professional', 'enterprise']);
    f_stage text := csmcp.arg_text(args, 'lifecycle_stage_filter', NULL,
                                   ARRAY['onboarding', 'active', 'at_risk', 'churned', 'expansion', 'renewal']);
    f_min integer := csmcp.arg_int(args, 'health_score_min', NULL, 0, 100);
    f_max integer := csmcp.arg_int(args, 'health_score_max', NULL, 0, 100);
    f_industry text := csmcp.arg_text(args, 'industry_filter', NULL);
    f_csm text := csmcp.arg_text(args, 'csm_filter', NULL);
    f_search text := csmcp.arg_text(args, 'search', NULL);
    f_renew integer := csmcp.arg_int(args, 'renewal_within_days', NULL, 0, 3650);
    v_sort text := csmcp.arg_text(args, 'sort_by', 'client_id',
                                  ARRAY['client_id', 'client_name', 'health_score', 'contract_value', 'days_until_renewal']);
    v_desc boolean := csmcp.arg_text(args, 'sort_order', 'asc', ARRAY['asc', 'desc']) = 'desc';
    v_limit integer := csmcp.arg_int(args, 'limit', 50, 1, 1000);
    v_offset integer := csmcp.arg_int(args, 'offset', 0, 0, 100000000);
    result jsonb;
BEGIN
    IF f_min IS NOT NULL AND f_max IS NOT NULL AND f_min > f_max THEN
        PERFORM csmcp.invalid('health_score_min must not exceed health_score_max');
    END IF;
    WITH filtered AS (
        SELECT a.client_id, a.client_name, a.company_name, a.tier, a.lifecycle_stage, a.health_score, a.health_trend,
               a.csm_assigned, a.industry, c.contract_value, c.end_date - t AS days_until_renewal
        FROM accounts a LEFT JOIN contracts c ON c.client_id = a.client_id AND c.status = 'active'
        WHERE (f_tier IS NULL OR a.tier = f_tier)
          AND (f_stage IS NULL OR a.lifecycle_stage = f_stage)
          AND (f_min IS NULL OR a.health_score >= f_min)
          AND (f_max IS NULL OR a.health_score <= f_max)
          AND (f_industry IS NULL OR lower(a.industry) = lower(f_industry))
          AND (f_csm IS NULL OR a.csm_assigned = f_csm)
          AND (f_search IS NULL OR a.client_name ILIKE '%' || f_search || '%' OR a.company_name ILIKE '%' || f_search || '%')
          AND (f_renew IS NULL OR (c.end_date IS NOT NULL AND c.end_date - t BETWEEN 0 AND f_renew))
    ),
    ranked AS (
        SELECT f.*, row_number() OVER (ORDER BY
            CASE WHEN NOT v_desc AND v_sort = 'health_score' THEN f.health_score END ASC,
            CASE WHEN v_desc AND v_sort = 'health_score' THEN f.health_score END DESC,
            CASE WHEN NOT v_desc AND v_sort = 'contract_value' THEN f.contract_value END ASC NULLS LAST,
            CASE WHEN v_desc AND v_sort = 'contract_value' THEN f.contract_value END DESC NULLS LAST,
            CASE WHEN NOT v_desc AND v_sort = 'days_until_renewal' THEN f.days_until_renewal END ASC NULLS LAST,
            CASE WHEN v_desc AND v_sort = 'days_until_renewal' THEN f.days_until_renewal END DESC NULLS LAST,
            CASE WHEN NOT v_desc AND v_sort = 'client_name' THEN f.client_name END ASC,
            CASE WHEN v_desc AND v_sort = 'client_name' THEN f.client_name END DESC,
            CASE WHEN v_desc THEN f.client_id END DESC,
            f.client_id ASC) AS ord FROM filtered f
    ),
    page AS (
        SELECT * FROM ranked WHERE ord > v_offset AND ord <= v_offset + v_limit
    ),
    page_rows AS (
        SELECT p.*,
               (SELECT round(coalesce(sum(u.active_users), 0)::numeric / 7, 1) FROM usage_daily u
                WHERE u.client_id = p.client_id AND u.day > t - 7 AND u.day <= t) AS active_users,
               (SELECT count(*) FROM support_tickets s WHERE s.client_id = p.client_id
                AND s.status NOT IN ('resolved', 'closed')) AS tickets_open
        FROM page p
    ),
    summary AS (
        SELECT count(*) AS n, round(avg(health_score), 1) AS avg_health, coalesce(sum(contract_value), 0) AS arr,
               count(*) FILTER (WHERE lifecycle_stage = 'onboarding') AS s_onb,
               count(*) FILTER (WHERE lifecycle_stage = 'active') AS s_act,
               count(*) FILTER (WHERE lifecycle_stage = 'at_risk') AS s_risk,
               count(*) FILTER (WHERE lifecycle_stage = 'churned') AS s_churn,
               count(*) FILTER (WHERE lifecycle_stage = 'expansion') AS s_exp,
               count(*) FILTER (WHERE lifecycle_stage = 'renewal') AS s_ren,
               count(*) FILTER (WHERE tier = 'starter') AS t_st, count(*) FILTER (WHERE tier = 'standard') AS t_sd,
               count(*) FILTER (WHERE tier = 'professional') AS t_pr, count(*) FILTER (WHERE tier = 'enterprise') AS t_en
        FROM filtered
    ),
    users AS (
        SELECT round(coalesce(sum(u.active_users), 0)::numeric / 7, 1) AS total
        FROM usage_daily u JOIN filtered f USING (client_id) WHERE u.day > t - 7 AND u.day <= t
    )
    SELECT jsonb_build_object(
        'clients', coalesce((SELECT jsonb_agg(jsonb_build_object(
                'client_id', r.client_id, 'client_name', r.client_name, 'company_name', r.company_name, 'tier', r.tier,
                'industry', r.industry, 'lifecycle_stage', r.lifecycle_stage, 'health_score', r.health_score,
                'health_trend', r.health_trend, 'contract_value', r.contract_value,
                'days_until_renewal', r.days_until_renewal, 'csm_assigned', r.csm_assigned,
                'active_users', r.active_users, 'support_tickets_open', r.tickets_open) ORDER BY r.ord)
            FROM page_rows r), '[]'),
        'pagination', jsonb_build_object('total_count', s.n, 'limit', v_limit, 'offset', v_offset,
                                         'returned_count', (SELECT count(*) FROM page),
                                         'has_more', v_offset + (SELECT count(*) FROM page) < s.n),
        'filters_applied', jsonb_strip_nulls(jsonb_build_object('tier_filter', f_tier, 'lifecycle_stage_filter', f_stage,
            'health_score_min', f_min, 'health_score_max', f_max, 'industry_filter', f_industry, 'csm_filter', f_csm,
            'search', f_search, 'renewal_within_days', f_renew, 'sort_by', v_sort, 'sort_order', CASE WHEN v_desc THEN 'desc' ELSE 'asc' END)),
        'summary', jsonb_build_object('total_clients', s.n, 'average_health_score', s.avg_health, 'total_arr', s.arr,
            'total_active_users', (SELECT total FROM users),
            'lifecycle_breakdown', jsonb_build_object('onboarding', s.s_onb, 'active', s.s_act, 'at_risk', s.s_risk,
                                                      'churned', s.s_churn, 'expansion', s.s_exp, 'renewal', s.s_ren),
            'tier_breakdown', jsonb_build_object('starter', s.t_st, 'standard', s.t_sd, 'professional', s.t_pr, 'enterprise', s.t_en)))
    INTO result FROM summary s;
    RETURN result;
END $$;

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

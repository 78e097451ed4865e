-- 0012_core_concurrency.sql - register_client survives two registrations of the same name in
-- the same second (the loser takes the next suffix); update_client_info reads the old values
-- under the row lock, so concurrent updates record exact previous values.

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

    -- Two registrations of the same name in the same second race for the same id: the loser
    -- takes the next suffix instead of failing (an explicit client_id is never renamed).
    LOOP
        BEGIN
            INSERT INTO accounts (client_id, client_name, company_name, industry, tier, csm_assigned,
                                  primary_contact_email, primary_contact_name)
            VALUES (v_id, v_name, v_company, v_industry, v_tier, v_csm, v_email, v_contact)
            RETURNING * INTO acc;
            EXIT;
        EXCEPTION WHEN unique_violation THEN
            IF v_base IS NULL OR n > 1000 THEN
                RAISE EXCEPTION 'client already exists: %', v_id USING ERRCODE = '23505';
            END IF;
            n := n + 1;
            v_id := v_base || '_' || n;
        END;
    END LOOP;

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
    -- Lock the account row and read it again under the lock, so concurrent updates serialize
    -- and the recorded old values are exact.
    SELECT * INTO acc FROM accounts WHERE client_id = acc.client_id FOR UPDATE;
    c := csmcp.active_contract(acc.client_id);
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

-- core/register_client.sql - tool register_client: account, active contract, primary contact,
-- lifecycle and revenue history in one transaction. Two registrations of the same name in the
-- same second both succeed (the loser takes the next id suffix).
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

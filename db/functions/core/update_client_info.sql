-- core/update_client_info.sql - tool update_client_info: reads the old values under the row
-- lock, so concurrent updates record exact previous values in the activity log.
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

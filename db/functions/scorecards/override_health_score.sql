-- override_health_score: set or clear a manual health score with a reason and an expiry
-- (<= 180 days). While active it is the account's effective score (csmcp.effective_health_score);
-- expiry needs no writer: it is decided at read time.
CREATE OR REPLACE FUNCTION csmcp.tool_override_health_score(args jsonb, principal text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v_action text := csmcp.arg_text(args, 'action', NULL, ARRAY['set', 'clear']);
    acc accounts := csmcp.require_account(csmcp.arg_text(args, 'client_id', NULL));
    v_score integer := csmcp.arg_int(args, 'score', NULL, 0, 100);
    v_reason text := btrim(csmcp.arg_text(args, 'reason', NULL));
    v_exp_text text := csmcp.arg_text(args, 'expires_at', NULL);
    v_exp timestamptz;
    v_open health_overrides;
    v_prev health_overrides;
    v_new health_overrides;
    v_actor text := coalesce(nullif(principal, ''), 'anonymous');
BEGIN
    IF v_action = 'set' THEN
        IF v_score IS NULL THEN PERFORM csmcp.invalid('score: required to set an override'); END IF;
        IF v_reason IS NULL OR length(v_reason) < 3 THEN
            PERFORM csmcp.invalid('reason: required to set an override (at least 3 characters)');
        END IF;
        IF v_exp_text IS NULL THEN PERFORM csmcp.invalid('expires_at: required to set an override'); END IF;
        BEGIN
            v_exp := v_exp_text::timestamptz;
        EXCEPTION WHEN others THEN
            PERFORM csmcp.invalid(format('expires_at: "%s" is not a date-time (ISO 8601, e.g. 2026-12-31T00:00:00Z)', v_exp_text));
        END;
        IF v_exp <= now() THEN
            PERFORM csmcp.invalid(format('expires_at: %s is not in the future', v_exp));
        END IF;
        IF v_exp > now() + interval '180 days' THEN
            PERFORM csmcp.invalid(format('expires_at: at most 180 days ahead (until %s)', now() + interval '180 days'));
        END IF;
    ELSE
        IF v_score IS NOT NULL OR v_exp_text IS NOT NULL THEN
            PERFORM csmcp.invalid('score and expires_at are only used with action set');
        END IF;
    END IF;
    -- one writer per account at a time: the open override and its replacement stay consistent
    PERFORM 1 FROM accounts WHERE client_id = acc.client_id FOR UPDATE;
    SELECT * INTO v_open FROM health_overrides WHERE client_id = acc.client_id AND cleared_at IS NULL;
    v_prev := CASE WHEN v_open.expires_at > csmcp.sc_now() THEN v_open END;
    IF v_action = 'clear' THEN
        IF v_prev.override_id IS NULL THEN
            RAISE EXCEPTION '%', CASE WHEN v_open.override_id IS NOT NULL
                THEN format('account %s has no active health override (the last one expired at %s)', acc.client_id, v_open.expires_at)
                ELSE format('account %s has no active health override', acc.client_id) END
                USING ERRCODE = 'P0002';
        END IF;
        UPDATE health_overrides SET cleared_at = now(), cleared_by = v_actor,
               clear_reason = coalesce(v_reason, 'cleared')
         WHERE override_id = v_prev.override_id;
        PERFORM csmcp.log_activity(acc.client_id, v_actor, 'clear_health_override', 'health_override',
                                   v_prev.override_id::text, csmcp.sc_override_json(v_prev),
                                   jsonb_build_object('cleared_at', now(), 'clear_reason', coalesce(v_reason, 'cleared')));
    ELSE
        IF v_open.override_id IS NOT NULL THEN
            UPDATE health_overrides SET cleared_at = now(), cleared_by = v_actor,
                   clear_reason = CASE WHEN v_prev.override_id IS NOT NULL THEN 'replaced by a new override'
                                       ELSE 'expired; closed when a new override was set' END
             WHERE override_id = v_open.override_id;
        END IF;
        INSERT INTO health_overrides (client_id, score, reason, set_by, expires_at)
        VALUES (acc.client_id, v_score, v_reason, v_actor, v_exp) RETURNING * INTO v_new;
        PERFORM csmcp.log_activity(acc.client_id, v_actor, 'set_health_override', 'health_override',
                                   v_new.override_id::text, csmcp.sc_override_json(v_prev),
                                   csmcp.sc_override_json(v_new));
    END IF;
    RETURN jsonb_build_object(
        'status', 'success',
        'action', v_action,
        'client_id', acc.client_id,
        'override', csmcp.sc_override_json(v_new),
        'previous_override', csmcp.sc_override_json(v_prev),
        'computed_score', acc.health_score,
        'effective_score', coalesce(v_new.score, acc.health_score),
        'summary', CASE WHEN v_action = 'set'
            THEN format('%s: health score overridden to %s until %s (computed score %s)%s', acc.client_id,
                        v_score, to_char(v_exp AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), acc.health_score,
                        CASE WHEN v_prev.override_id IS NOT NULL THEN format('; replaces the override of %s', v_prev.score) ELSE '' END)
            ELSE format('%s: override of %s cleared; effective score back to the computed %s', acc.client_id,
                        v_prev.score, acc.health_score) END);
END $$;

-- manage_lifecycle_stages: distribution, transitions and durations from lifecycle_transitions;
-- with client_id + new_stage it performs (and records) a transition.
CREATE OR REPLACE FUNCTION csmcp.tool_manage_lifecycle_stages(args jsonb, principal text)
-- no JIT: at 100,000 accounts the plans' costs pass jit_above_cost and compiling took longer than
-- the query (issue 21: 1.5 s of a hierarchy rollup that runs in 70 ms)
RETURNS jsonb LANGUAGE plpgsql SET jit = off AS $$
DECLARE
    stages text[] := ARRAY['onboarding', 'active', 'at_risk', 'churned', 'expansion', 'renewal'];
    v_client text := csmcp.arg_text(args, 'client_id', NULL);
    v_stage text := csmcp.arg_text(args, 'current_stage', NULL, stages);
    v_new text := csmcp.arg_text(args, 'new_stage', NULL, stages);
    v_reason text := csmcp.arg_text(args, 'reason', NULL);
    v_trans boolean := csmcp.arg_bool(args, 'include_transitions', true);
    acc accounts;
    performed jsonb;
    dist jsonb; trans jsonb; durations jsonb; client_hist jsonb; in_stage jsonb;
    total integer;
BEGIN
    IF v_new IS NOT NULL AND v_client IS NULL THEN PERFORM csmcp.invalid('new_stage needs client_id'); END IF;
    IF v_client IS NOT NULL THEN
        acc := csmcp.require_account(v_client);
        IF v_new IS NOT NULL THEN
            PERFORM 1 FROM accounts WHERE client_id = v_client FOR UPDATE;
            SELECT * INTO acc FROM accounts WHERE client_id = v_client;
            IF acc.lifecycle_stage = v_new THEN
                PERFORM csmcp.invalid(format('client %s is already in stage %s', v_client, v_new));
            END IF;
            UPDATE accounts SET lifecycle_stage = v_new, updated_at = now(),
                                status = CASE WHEN v_new = 'churned' THEN 'churned' ELSE status END
            WHERE client_id = v_client;
            INSERT INTO lifecycle_transitions (client_id, from_stage, to_stage, reason, changed_by)
            VALUES (v_client, acc.lifecycle_stage, v_new, v_reason, coalesce(principal, 'anonymous'));
            PERFORM csmcp.log_activity(v_client, principal, 'manage_lifecycle_stages', 'account', v_client,
                                       jsonb_build_object('lifecycle_stage', acc.lifecycle_stage),
                                       jsonb_build_object('lifecycle_stage', v_new, 'reason', v_reason));
            performed := jsonb_build_object('client_id', v_client, 'from_stage', acc.lifecycle_stage, 'to_stage', v_new,
                                            'reason', v_reason, 'changed_at', now());
        END IF;
    END IF;

    -- Count and distribution from the maintained portfolio totals (portfolio_counts: kept by the
    -- triggers on accounts in every writing transaction, this call's transition included).
    SELECT coalesce(sum(accounts), 0) INTO total FROM portfolio_counts;
    SELECT jsonb_object_agg(s, coalesce(n, 0)) INTO dist
    FROM unnest(stages) s LEFT JOIN (SELECT lifecycle_stage, sum(accounts) AS n FROM portfolio_counts GROUP BY 1) c
         ON c.lifecycle_stage = s;

    -- Transitions of the last 90 days from the per-day counts kept by the triggers on
    -- lifecycle_transitions plus the two partial boundary days (lifecycle_trans_daily, migration
    -- 0290; exact: the same counts as a scan of the window, tool_manage_lifecycle_stages_scratch).
    IF v_trans THEN
        SELECT coalesce(jsonb_agg(jsonb_build_object('from_stage', from_stage, 'to_stage', to_stage, 'count', n)
                                  ORDER BY n DESC, from_stage, to_stage), '[]')
        INTO trans FROM csmcp.lifecycle_trans_90d(v_stage);
    END IF;
    -- Average completed stay in each stage: time between entering it and the next transition,
    -- from the per-stage totals kept by the triggers on lifecycle_transitions
    -- (lifecycle_stay_totals, migrations 0155 and 0290; exact: the same numeric sum / count as
    -- avg() over every transition).
    durations := csmcp.lifecycle_stay_avg_days();
    IF v_stage IS NOT NULL THEN
        SELECT coalesce(jsonb_agg(jsonb_build_object('client_id', client_id, 'client_name', client_name, 'health_score', health_score)
                                  ORDER BY health_score, client_id), '[]')
        INTO in_stage FROM (SELECT * FROM accounts WHERE lifecycle_stage = v_stage ORDER BY health_score, client_id LIMIT 50) a;
    END IF;
    IF v_client IS NOT NULL THEN
        SELECT coalesce(jsonb_agg(jsonb_build_object('from_stage', from_stage, 'to_stage', to_stage, 'reason', reason,
                                                     'changed_by', changed_by, 'changed_at', changed_at)
                                  ORDER BY changed_at, transition_id), '[]')
        INTO client_hist FROM lifecycle_transitions WHERE client_id = v_client;
    END IF;

    RETURN jsonb_build_object(
        'total_customers', total,
        'stage_distribution', dist,
        'transition_performed', performed,
        'client', CASE WHEN v_client IS NOT NULL THEN jsonb_build_object(
            'client_id', v_client, 'current_stage', coalesce(v_new, acc.lifecycle_stage), 'history', client_hist) END,
        'stage_transitions_90d', trans,
        'average_stage_duration_days', durations,
        'customers_in_stage', in_stage);
END $$;

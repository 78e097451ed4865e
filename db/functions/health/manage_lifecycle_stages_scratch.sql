-- tool_manage_lifecycle_stages_scratch: manage_lifecycle_stages' read path computed from the base
-- tables only (issue 21, session 8, helper lifex): count and distribution from accounts, the
-- 90-day transitions by a scan of the window, the stage durations by the window over every
-- transition (the tool's SQL before migrations 0155 and 0290). The reference of the equality test
-- (test_rollup_equality_portf); it never performs a transition.
CREATE OR REPLACE FUNCTION csmcp.tool_manage_lifecycle_stages_scratch(args jsonb, principal text)
RETURNS jsonb LANGUAGE plpgsql STABLE SET jit = off AS $$
DECLARE
    stages text[] := ARRAY['onboarding', 'active', 'at_risk', 'churned', 'expansion', 'renewal'];
    v_client text := csmcp.arg_text(args, 'client_id', NULL);
    v_stage text := csmcp.arg_text(args, 'current_stage', NULL, stages);
    v_trans boolean := csmcp.arg_bool(args, 'include_transitions', true);
    acc accounts;
    dist jsonb; trans jsonb; durations jsonb; client_hist jsonb; in_stage jsonb;
    total integer;
BEGIN
    IF args ? 'new_stage' THEN PERFORM csmcp.invalid('the reference does not perform transitions'); END IF;
    IF v_client IS NOT NULL THEN
        acc := csmcp.require_account(v_client);
    END IF;
    SELECT count(*) INTO total FROM accounts;
    SELECT jsonb_object_agg(s, coalesce(n, 0)) INTO dist
    FROM unnest(stages) s LEFT JOIN (SELECT lifecycle_stage, count(*) AS n FROM accounts GROUP BY 1) c ON c.lifecycle_stage = s;
    IF v_trans THEN
        SELECT coalesce(jsonb_agg(jsonb_build_object('from_stage', from_stage, 'to_stage', to_stage, 'count', n)
                                  ORDER BY n DESC, from_stage, to_stage), '[]')
        INTO trans FROM (SELECT from_stage, to_stage, count(*) AS n FROM lifecycle_transitions
                         WHERE from_stage IS NOT NULL AND changed_at > now() - interval '90 days'
                           AND (v_stage IS NULL OR from_stage = v_stage OR to_stage = v_stage)
                         GROUP BY 1, 2) x;
    END IF;
    SELECT coalesce(jsonb_object_agg(stage, days), '{}') INTO durations FROM (
        SELECT to_stage AS stage, round(avg(extract(epoch FROM next_at - changed_at) / 86400)::numeric, 1) AS days
        FROM (SELECT to_stage, changed_at, lead(changed_at) OVER (PARTITION BY client_id ORDER BY changed_at, transition_id) AS next_at
              FROM lifecycle_transitions) l
        WHERE next_at IS NOT NULL GROUP BY to_stage) d;
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
        'transition_performed', NULL,
        'client', CASE WHEN v_client IS NOT NULL THEN jsonb_build_object(
            'client_id', v_client, 'current_stage', acc.lifecycle_stage, 'history', client_hist) END,
        'stage_transitions_90d', trans,
        'average_stage_duration_days', durations,
        'customers_in_stage', in_stage);
END $$;

-- execute_retention_campaign: launch a campaign for an account (default action), read it, mark
-- its scheduled actions done, complete it. The outcome is the account's health change since
-- launch (csmcp.retention_campaign_json).
CREATE OR REPLACE FUNCTION csmcp.tool_execute_retention_campaign(args jsonb, principal text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v_action text := csmcp.arg_text(args, 'action', 'launch', ARRAY['launch', 'get', 'complete_action', 'complete']);
    v_client text := csmcp.arg_text(args, 'client_id', NULL);
    v_type text := csmcp.arg_text(args, 'campaign_type', 'proactive_outreach',
                                  ARRAY['proactive_outreach', 'value_reinforcement', 'success_planning', 'executive_engagement',
                                        'adoption_drive', 'renewal_save']);
    v_level text := csmcp.arg_text(args, 'intervention_level', 'standard', ARRAY['light', 'standard', 'aggressive']);
    v_owner text := csmcp.arg_text(args, 'owner', NULL);
    v_name text := csmcp.arg_text(args, 'campaign_name', NULL);
    v_cid text := csmcp.arg_text(args, 'campaign_id', NULL);
    v_action_id integer := csmcp.arg_int(args, 'action_id', NULL, 1, 2147483647);
    v_notes text := csmcp.arg_text(args, 'notes', NULL);
    c retention_campaigns;
    a campaign_actions;
    old_j jsonb;
    j jsonb;
BEGIN
    IF v_cid IS NOT NULL AND v_cid !~ '^ret_[0-9]+$' THEN
        PERFORM csmcp.invalid('campaign_id must look like ret_<number>');
    END IF;

    IF v_action = 'launch' THEN
        IF v_client IS NULL THEN PERFORM csmcp.invalid('client_id is required for action launch'); END IF;
        IF v_cid IS NOT NULL OR v_action_id IS NOT NULL THEN
            PERFORM csmcp.invalid('launch creates a new campaign: campaign_id and action_id are not accepted');
        END IF;
        v_cid := csmcp.retention_launch_campaign(v_client, v_type, v_level, v_owner, v_name, NULL, principal);
        j := csmcp.retention_campaign_json(v_cid);
        RETURN jsonb_build_object('action', 'launch', 'campaign', j,
            'summary', format('Campaign %s (%s, %s) launched for %s: health %s, target %s by %s; %s actions, first due %s',
                              v_cid, v_type, v_level, j->>'client_name', j #>> '{targets,health_score_at_launch}',
                              j #>> '{targets,target_health_score}', j #>> '{targets,target_date}',
                              jsonb_array_length(j->'actions'), j #>> '{actions,0,due_at}'));
    END IF;

    IF v_cid IS NULL THEN PERFORM csmcp.invalid('campaign_id is required for action ' || v_action); END IF;
    IF v_action = 'get' THEN  -- a read: no row lock (read-scope calls may run read-only)
        SELECT * INTO c FROM retention_campaigns WHERE campaign_id = v_cid;
    ELSE
        SELECT * INTO c FROM retention_campaigns WHERE campaign_id = v_cid FOR UPDATE;
    END IF;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'retention campaign % not found', v_cid USING ERRCODE = 'P0002';
    END IF;
    IF v_client IS NOT NULL AND v_client <> c.client_id THEN
        PERFORM csmcp.invalid(format('campaign %s belongs to %s, not %s', v_cid, c.client_id, v_client));
    END IF;
    old_j := csmcp.retention_campaign_json(v_cid);

    IF v_action = 'get' THEN
        RETURN jsonb_build_object('action', 'get', 'campaign', old_j,
            'summary', format('Campaign %s (%s) for %s: %s of %s actions done; health %s -> %s (%s), outcome %s',
                              v_cid, c.status, old_j->>'client_name', old_j #>> '{outcome,actions_done}',
                              old_j #>> '{outcome,actions_total}', old_j #>> '{outcome,health_score_at_launch}',
                              old_j #>> '{outcome,health_score_now}', old_j #>> '{outcome,health_change}', old_j #>> '{outcome,status}'));
    END IF;

    IF c.status = 'completed' THEN
        RAISE EXCEPTION 'campaign % is completed; % is allowed only while active or paused', v_cid, v_action USING ERRCODE = '22023';
    END IF;

    IF v_action = 'complete_action' THEN
        IF v_action_id IS NULL THEN PERFORM csmcp.invalid('action_id is required for action complete_action'); END IF;
        SELECT * INTO a FROM campaign_actions WHERE action_id = v_action_id AND campaign_id = v_cid;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'action % not found in campaign %', v_action_id, v_cid USING ERRCODE = 'P0002';
        END IF;
        IF a.done_at IS NOT NULL THEN
            RAISE EXCEPTION 'action % (%) of campaign % is already done (at %)', v_action_id, a.action, v_cid, a.done_at
                USING ERRCODE = '22023';
        END IF;
        UPDATE campaign_actions SET done_at = now(), done_by = coalesce(nullif(principal, ''), 'anonymous'), notes = v_notes
        WHERE action_id = v_action_id;
        UPDATE campaign_targets SET status = 'contacted' WHERE campaign_id = v_cid AND status = 'targeted';
        UPDATE retention_campaigns SET updated_at = now() WHERE campaign_id = v_cid;
    ELSE -- complete: freezes the outcome at the account's current health score
        UPDATE retention_campaigns SET status = 'completed', completed_at = now(), updated_at = now(),
                                       final_health_score = (SELECT health_score FROM accounts WHERE client_id = c.client_id)
        WHERE campaign_id = v_cid;
        UPDATE campaign_targets t SET status = CASE WHEN a2.lifecycle_stage = 'churned' THEN 'churned' ELSE 'retained' END
        FROM accounts a2 WHERE a2.client_id = t.client_id AND t.campaign_id = v_cid;
    END IF;
    j := csmcp.retention_campaign_json(v_cid);
    PERFORM csmcp.log_activity(c.client_id, principal, v_action || '_retention_campaign', 'retention_campaign', v_cid, old_j, j);
    RETURN jsonb_build_object('action', v_action, 'campaign', j,
        'summary', format('Campaign %s (%s): %s of %s actions done; health %s -> %s (%s), outcome %s',
                          v_cid, j->>'status', j #>> '{outcome,actions_done}', j #>> '{outcome,actions_total}',
                          j #>> '{outcome,health_score_at_launch}', j #>> '{outcome,health_score_now}',
                          j #>> '{outcome,health_change}', j #>> '{outcome,status}'));
END $$;

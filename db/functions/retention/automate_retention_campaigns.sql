-- automate_retention_campaigns: stores a trigger rule (retention_trigger_rules) that the monitor
-- process evaluates (csmcp.retention_rule_run), and returns the accounts it matches right now
-- (csmcp.retention_trigger_matches: a dry run, nothing is launched by this call).
CREATE OR REPLACE FUNCTION csmcp.tool_automate_retention_campaigns(args jsonb, principal text)
-- no JIT: at 100,000 accounts the plans' costs pass jit_above_cost and compiling took longer than
-- the query (issue 21: 1.5 s of a hierarchy rollup that runs in 70 ms)
RETURNS jsonb LANGUAGE plpgsql SET jit = off AS $$
DECLARE
    v_type text := csmcp.arg_text(args, 'trigger_type', 'health_score', ARRAY['health_score', 'usage_decline', 'nps_detractor', 'renewal_risk']);
    v_template text := csmcp.arg_text(args, 'campaign_template', 'standard_intervention',
                                      ARRAY['standard_intervention', 'light_touch', 'aggressive_save']);
    v_ctype text := csmcp.arg_text(args, 'campaign_type', 'proactive_outreach',
                                   ARRAY['proactive_outreach', 'value_reinforcement', 'success_planning', 'executive_engagement',
                                         'adoption_drive', 'renewal_save']);
    v_lookback integer := csmcp.arg_int(args, 'lookback_days', 30, 1, 365);
    v_cooldown integer := csmcp.arg_int(args, 'cooldown_days', 30, 0, 365);
    v_limit integer := csmcp.arg_int(args, 'match_limit', 100, 0, 1000);
    v_threshold numeric;
    v_level text;
    v_actions jsonb;
    r retention_trigger_rules;
    v_matches jsonb;
    v_count integer;
    v_live integer;
BEGIN
    v_threshold := CASE v_type
        WHEN 'health_score' THEN csmcp.arg_num(args, 'threshold', 60, 0, 100)
        WHEN 'usage_decline' THEN csmcp.arg_num(args, 'threshold', 30, 0.1, 100)
        WHEN 'nps_detractor' THEN csmcp.arg_num(args, 'threshold', 6, 0, 10)
        ELSE csmcp.arg_num(args, 'threshold', 60, 0, 100) END;
    v_level := CASE v_template WHEN 'light_touch' THEN 'light' WHEN 'aggressive_save' THEN 'aggressive' ELSE 'standard' END;
    v_actions := CASE v_template
        WHEN 'light_touch' THEN '[{"action":"alert_csm","delay_hours":0},{"action":"send_email","delay_hours":1}]'
        WHEN 'aggressive_save' THEN '[{"action":"alert_csm","delay_hours":0},{"action":"schedule_call","delay_hours":4},{"action":"send_email","delay_hours":1},{"action":"escalate","delay_hours":24,"condition":"no_response"}]'
        ELSE '[{"action":"alert_csm","delay_hours":0},{"action":"send_email","delay_hours":1},{"action":"schedule_call","delay_hours":24},{"action":"escalate","delay_hours":72,"condition":"no_response"}]'
        END::jsonb;

    INSERT INTO retention_trigger_rules (rule_id, trigger_type, threshold, campaign_template, campaign_type, intervention_level,
                                         lookback_days, check_interval_hours, cooldown_days, actions, status, created_by)
    VALUES ('auto_' || nextval('retention_rule_seq'), v_type, v_threshold, v_template, v_ctype, v_level, v_lookback, 24, v_cooldown,
            v_actions, 'active', coalesce(nullif(principal, ''), 'anonymous'))
    RETURNING * INTO r;

    SELECT count(*), coalesce(jsonb_agg(jsonb_build_object('client_id', m.client_id, 'client_name', a.client_name, 'tier', a.tier,
                                                           'health_score', a.health_score, 'trigger_value', m.trigger_value,
                                                           'detail', m.detail) ORDER BY m.ord) FILTER (WHERE m.ord <= v_limit), '[]')
    INTO v_count, v_matches
    FROM (SELECT x.*, row_number() OVER () AS ord FROM csmcp.retention_trigger_matches(r.rule_id) x) m
    JOIN accounts a ON a.client_id = m.client_id;
    SELECT count(*) INTO v_live FROM accounts WHERE lifecycle_stage <> 'churned';

    PERFORM csmcp.log_activity(NULL, principal, 'create_retention_trigger_rule', 'retention_trigger_rule', r.rule_id, NULL, to_jsonb(r));

    RETURN jsonb_build_object(
        'automation', jsonb_build_object(
            'rule_id', r.rule_id, 'status', r.status, 'trigger_type', r.trigger_type, 'threshold', r.threshold,
            'campaign_template', r.campaign_template, 'campaign_type', r.campaign_type, 'intervention_level', r.intervention_level,
            'trigger_config', jsonb_build_object('lookback_days', r.lookback_days, 'check_interval_hours', r.check_interval_hours,
                                                 'cooldown_days', r.cooldown_days),
            'actions', r.actions, 'created_by', r.created_by, 'created_at', r.created_at),
        'dry_run', jsonb_build_object('evaluated_at', now(), 'customers_monitored', v_live, 'matched_count', v_count,
                                      'returned_count', jsonb_array_length(v_matches), 'matches', v_matches),
        'summary', format('Rule %s stored (%s, threshold %s, template %s); it matches %s of %s live accounts now; the monitor process evaluates it every %s h',
                          r.rule_id, r.trigger_type, r.threshold, r.campaign_template, v_count, v_live, r.check_interval_hours));
END $$;

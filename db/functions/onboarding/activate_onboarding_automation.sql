-- activate_onboarding_automation: persists the plan's automation triggers and notification
-- preferences, registers each trigger with the autonomous monitor that evaluates it
-- (onboarding_automation_triggers), and moves a draft or scheduled plan to in_progress.
-- The monitor evaluating a trigger: health changes -> churn_risk_monitor; everything else -> the
-- onboarding monitor, named onboarding_progress since migration 0261 (onboarding_monitor before).
CREATE OR REPLACE FUNCTION csmcp.onb_trigger_monitor(p_trigger text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT CASE p_trigger WHEN 'health_score_change' THEN 'churn_risk_monitor'
           ELSE (SELECT name FROM monitors WHERE name IN ('onboarding_progress', 'onboarding_monitor')
                 ORDER BY name = 'onboarding_progress' DESC LIMIT 1) END
$$;

CREATE OR REPLACE FUNCTION csmcp.onb_trigger_condition(p_trigger text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE p_trigger
        WHEN 'milestone_completion' THEN 'a milestone of the plan moves to completed'
        WHEN 'training_completion' THEN 'an attendee of the account passes a training module'
        WHEN 'integration_success' THEN 'the M3 milestone (Integration & First Value) is completed'
        WHEN 'usage_milestone_reached' THEN 'daily active users reach 50% of the licensed seats for the first time'
        WHEN 'task_overdue' THEN 'an open task is past its due date'
        WHEN 'blocker_identified' THEN 'a milestone or task of the plan moves to blocked'
        WHEN 'health_score_change' THEN 'the account''s health score changes by 10 points or more between calculations'
    END
$$;

CREATE OR REPLACE FUNCTION csmcp.tool_activate_onboarding_automation(args jsonb, principal text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    all_triggers text[] := ARRAY['milestone_completion', 'training_completion', 'integration_success',
                                 'usage_milestone_reached', 'task_overdue', 'blocker_identified', 'health_score_change'];
    acc accounts := csmcp.require_account(csmcp.arg_text(args, 'client_id', NULL));
    p onboarding_plans := csmcp.onb_require_plan(acc.client_id, csmcp.arg_text(args, 'plan_id', NULL), true);
    v_trig jsonb := args -> 'automation_triggers';
    v_triggers text[];
    v_prefs jsonb := jsonb_build_object('email', true, 'slack', false, 'in_app', true,
                                        'frequency', 'immediate', 'digest', 'daily');
    v_in jsonb := args -> 'notification_preferences';
    k text;
    old_status text := p.status;
    old_cfg jsonb := p.automation_config;
    old_triggers jsonb;
    v_cfg jsonb;
    v_new_status text;
    active jsonb;
    n_active integer;
BEGIN
    IF p.status IN ('completed', 'cancelled') THEN
        RAISE EXCEPTION 'onboarding plan % is %; automation can be activated for plans in draft, scheduled, in_progress or delayed',
            p.plan_id, p.status USING ERRCODE = 'P0001';
    END IF;
    IF v_trig IS NULL OR v_trig = 'null'::jsonb THEN
        v_triggers := all_triggers;
    ELSE
        IF jsonb_typeof(v_trig) <> 'array' OR jsonb_array_length(v_trig) = 0 THEN
            PERFORM csmcp.invalid('automation_triggers must be a non-empty list');
        END IF;
        SELECT array_agg(DISTINCT e ORDER BY e) INTO v_triggers FROM jsonb_array_elements_text(v_trig) e;
        IF NOT v_triggers <@ all_triggers THEN
            PERFORM csmcp.invalid('automation_triggers entries must be among: ' || array_to_string(all_triggers, ', '));
        END IF;
    END IF;
    IF v_in IS NOT NULL AND v_in <> 'null'::jsonb THEN
        IF jsonb_typeof(v_in) <> 'object' THEN PERFORM csmcp.invalid('notification_preferences must be an object'); END IF;
        FOR k IN SELECT jsonb_object_keys(v_in) LOOP
            IF k IN ('email', 'slack', 'in_app') THEN
                IF jsonb_typeof(v_in -> k) <> 'boolean' THEN
                    PERFORM csmcp.invalid('notification_preferences.' || k || ' must be true or false');
                END IF;
            ELSIF k = 'frequency' THEN
                IF (v_in ->> k) IS NULL OR (v_in ->> k) NOT IN ('immediate', 'hourly', 'daily') THEN
                    PERFORM csmcp.invalid('notification_preferences.frequency must be one of: immediate, hourly, daily');
                END IF;
            ELSIF k = 'digest' THEN
                IF (v_in ->> k) IS NULL OR (v_in ->> k) NOT IN ('none', 'daily', 'weekly') THEN
                    PERFORM csmcp.invalid('notification_preferences.digest must be one of: none, daily, weekly');
                END IF;
            ELSE
                PERFORM csmcp.invalid('notification_preferences: unknown key ' || k);
            END IF;
        END LOOP;
        v_prefs := v_prefs || v_in;
    END IF;

    SELECT coalesce(jsonb_agg(trigger_type ORDER BY trigger_type), '[]') INTO old_triggers
    FROM onboarding_automation_triggers WHERE plan_id = p.plan_id;
    v_new_status := CASE WHEN p.status IN ('draft', 'scheduled') THEN 'in_progress' ELSE p.status END;
    v_cfg := jsonb_build_object('triggers', to_jsonb(v_triggers), 'notification_preferences', v_prefs,
                                'activated_at', now(), 'activated_by', coalesce(nullif(principal, ''), 'anonymous'));

    DELETE FROM onboarding_automation_triggers WHERE plan_id = p.plan_id AND trigger_type <> ALL (v_triggers);
    INSERT INTO onboarding_automation_triggers (plan_id, trigger_type, monitor, registered_by)
    SELECT p.plan_id, tr, csmcp.onb_trigger_monitor(tr), coalesce(nullif(principal, ''), 'anonymous') FROM unnest(v_triggers) tr
    ON CONFLICT (plan_id, trigger_type) DO NOTHING;
    UPDATE onboarding_plans SET automation_enabled = true, automation_config = v_cfg, status = v_new_status,
                                updated_at = now()
    WHERE plan_id = p.plan_id;
    -- A plan that starts now: its first milestone starts with it.
    IF old_status IN ('draft', 'scheduled') THEN
        UPDATE onboarding_milestones SET status = 'in_progress', started_on = csmcp.today()
        WHERE plan_id = p.plan_id AND seq = 1 AND status = 'not_started';
    END IF;

    SELECT jsonb_agg(jsonb_build_object('trigger', tr.trigger_type, 'monitor', tr.monitor,
                                        'condition', csmcp.onb_trigger_condition(tr.trigger_type),
                                        'monitor_enabled', m.enabled,
                                        'state', CASE WHEN m.enabled THEN 'active' ELSE 'registered (monitor disabled)' END,
                                        'registered_at', tr.registered_at) ORDER BY tr.trigger_type),
           count(*) FILTER (WHERE m.enabled)
    INTO active, n_active
    FROM onboarding_automation_triggers tr JOIN monitors m ON m.name = tr.monitor WHERE tr.plan_id = p.plan_id;

    PERFORM csmcp.log_activity(acc.client_id, principal, 'activate_onboarding_automation', 'onboarding_plan', p.plan_id,
        jsonb_build_object('status', old_status, 'automation_enabled', p.automation_enabled, 'automation_config', old_cfg,
                           'triggers', old_triggers),
        jsonb_build_object('status', v_new_status, 'automation_enabled', true, 'automation_config', v_cfg,
                           'triggers', to_jsonb(v_triggers)));

    RETURN jsonb_build_object(
        'status', 'activated',
        'summary', format('Plan %s is %s with %s automation triggers registered (%s active; the others wait for their monitor to be enabled).',
                          p.plan_id, v_new_status, cardinality(v_triggers), n_active),
        'plan_id', p.plan_id, 'client_id', acc.client_id,
        'plan_status', jsonb_build_object('previous', old_status, 'current', v_new_status),
        'automation_config', v_cfg,
        'triggers', active,
        'active_trigger_count', n_active,
        'registered_trigger_count', cardinality(v_triggers),
        'monitors', (SELECT jsonb_agg(jsonb_build_object('monitor', m.name, 'enabled', m.enabled,
                                                         'interval_hours', m.interval_hours) ORDER BY m.name)
                     FROM monitors m WHERE m.name IN (SELECT monitor FROM onboarding_automation_triggers WHERE plan_id = p.plan_id)),
        'next_steps', CASE WHEN n_active < cardinality(v_triggers)
                           THEN jsonb_build_array('Enable the monitors marked disabled (configure_autonomous_worker) so that every trigger fires')
                           ELSE '[]'::jsonb END);
END $$;

-- automate_communications: persisted trigger -> actions workflows (create, list, get, pause,
-- resume). Firings are rows of workflow_runs (recorded by csmcp.comm_workflow_record_run).

-- Records one firing of a workflow for an account with its outcome; returns the run id.
CREATE OR REPLACE FUNCTION csmcp.comm_workflow_record_run(p_workflow_id text, p_client_id text, p_outcome text,
                                                          p_detail jsonb)
RETURNS bigint LANGUAGE sql AS $$
    INSERT INTO workflow_runs (workflow_id, client_id, outcome, detail)
    VALUES (p_workflow_id, p_client_id, p_outcome, coalesce(p_detail, '{}'))
    RETURNING run_id
$$;

CREATE OR REPLACE FUNCTION csmcp.comm_workflow_json(w communication_workflows) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'workflow_id', w.workflow_id, 'workflow_name', w.name, 'description', w.description,
        'trigger_type', w.trigger_type, 'trigger_conditions', w.trigger_conditions, 'delay_minutes', w.delay_minutes,
        'is_active', w.is_active, 'created_by', w.created_by, 'created_at', w.created_at, 'updated_at', w.updated_at,
        'actions', coalesce((SELECT jsonb_agg(jsonb_build_object('seq', a.seq, 'type', a.action_type, 'params', a.params)
                                              ORDER BY a.seq) FROM workflow_actions a WHERE a.workflow_id = w.workflow_id), '[]'),
        'runs', (SELECT jsonb_build_object('total', count(*),
                                           'succeeded', count(*) FILTER (WHERE outcome = 'succeeded'),
                                           'failed', count(*) FILTER (WHERE outcome = 'failed'),
                                           'skipped', count(*) FILTER (WHERE outcome = 'skipped'),
                                           'last_fired_at', max(fired_at))
                 FROM workflow_runs r WHERE r.workflow_id = w.workflow_id))
$$;

-- 22023 naming what a trigger's conditions lack (reference §1.6).
CREATE OR REPLACE FUNCTION csmcp.comm_check_trigger(p_type text, p jsonb) RETURNS void
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    req text[] := CASE p_type WHEN 'time_based' THEN ARRAY['schedule'] WHEN 'event_based' THEN ARRAY['event']
                              WHEN 'behavior_based' THEN ARRAY['behavior'] WHEN 'health_score' THEN ARRAY['threshold', 'direction']
                              WHEN 'milestone' THEN ARRAY['milestone_name'] WHEN 'contract_event' THEN ARRAY['event_type']
                              WHEN 'usage_pattern' THEN ARRAY['metric', 'threshold'] ELSE '{}' END;
    k text;
BEGIN
    FOREACH k IN ARRAY req LOOP
        IF NOT (p ? k) OR p -> k = 'null'::jsonb OR (jsonb_typeof(p -> k) = 'string' AND btrim(p ->> k) = '') THEN
            PERFORM csmcp.invalid(format('trigger_conditions: a %s trigger needs %s', p_type, array_to_string(req, ' and ')));
        END IF;
    END LOOP;
    IF p_type = 'health_score' THEN
        IF jsonb_typeof(p -> 'threshold') <> 'number' OR (p ->> 'threshold')::numeric NOT BETWEEN 0 AND 100 THEN
            PERFORM csmcp.invalid('trigger_conditions.threshold: a health score 0-100');
        END IF;
        IF (p ->> 'direction') NOT IN ('above', 'below') THEN
            PERFORM csmcp.invalid('trigger_conditions.direction: above or below');
        END IF;
    ELSIF p_type = 'usage_pattern' AND jsonb_typeof(p -> 'threshold') <> 'number' THEN
        PERFORM csmcp.invalid('trigger_conditions.threshold: a number');
    END IF;
END $$;

CREATE OR REPLACE FUNCTION csmcp.tool_automate_communications(args jsonb, principal text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v_action text := csmcp.arg_text(args, 'action', 'create', ARRAY['create', 'list', 'get', 'pause', 'resume']);
    v_name text := nullif(btrim(csmcp.arg_text(args, 'workflow_name', NULL)), '');
    v_desc text := nullif(btrim(csmcp.arg_text(args, 'description', NULL)), '');
    v_type text := csmcp.arg_text(args, 'trigger_type', NULL);
    v_cond jsonb := args -> 'trigger_conditions';
    v_delay integer := csmcp.arg_int(args, 'delay_minutes', 0, 0, 525600);
    v_active boolean := csmcp.arg_bool(args, 'is_active', true);
    v_id text := csmcp.arg_text(args, 'workflow_id', NULL);
    v_limit integer := csmcp.arg_int(args, 'limit', 50, 1, 1000);
    v_offset integer := csmcp.arg_int(args, 'offset', 0, 0, 1000000);
    w communication_workflows;
    old_w communication_workflows;
    v_items jsonb;
    v_total integer;
BEGIN
    IF v_action = 'create' THEN
        IF v_name IS NULL THEN PERFORM csmcp.invalid('workflow_name: required for create'); END IF;
        IF v_desc IS NULL THEN PERFORM csmcp.invalid('description: required for create'); END IF;
        IF v_type IS NULL THEN PERFORM csmcp.invalid('trigger_type: required for create'); END IF;
        IF v_cond IS NULL THEN PERFORM csmcp.invalid('trigger_conditions: required for create'); END IF;
        IF coalesce(jsonb_array_length(args -> 'actions'), 0) = 0 THEN
            PERFORM csmcp.invalid('actions: at least one action is required for create');
        END IF;
        PERFORM csmcp.comm_check_trigger(v_type, v_cond);
        INSERT INTO communication_workflows (workflow_id, name, description, trigger_type, trigger_conditions, delay_minutes,
                                             is_active, created_by)
        VALUES (csmcp.comm_id('workflow', v_name), v_name, v_desc, v_type, v_cond, v_delay, v_active, principal)
        RETURNING * INTO w;
        INSERT INTO workflow_actions (workflow_id, seq, action_type, params)
        SELECT w.workflow_id, o::integer, a ->> 'type', a - 'type'
        FROM jsonb_array_elements(args -> 'actions') WITH ORDINALITY AS t(a, o);
        PERFORM csmcp.log_activity(NULL, principal, 'create', 'communication_workflow', w.workflow_id, NULL,
                                   csmcp.comm_workflow_json(w));
        RETURN jsonb_build_object('action', v_action, 'workflow', csmcp.comm_workflow_json(w),
                                  'summary', format('Workflow %s "%s": on %s, %s action(s)%s, %s', w.workflow_id, v_name,
                                                    v_type, jsonb_array_length(args -> 'actions'),
                                                    CASE WHEN v_delay > 0 THEN format(' after %s min', v_delay) ELSE '' END,
                                                    CASE WHEN v_active THEN 'active' ELSE 'paused' END));
    END IF;

    IF v_action = 'list' THEN
        SELECT count(*) INTO v_total FROM communication_workflows x
        WHERE (v_type IS NULL OR x.trigger_type = v_type) AND (NOT args ? 'is_active' OR x.is_active = v_active);
        SELECT coalesce(jsonb_agg(csmcp.comm_workflow_json(x) ORDER BY x.created_at DESC, x.workflow_id DESC), '[]') INTO v_items
        FROM (SELECT * FROM communication_workflows x
              WHERE (v_type IS NULL OR x.trigger_type = v_type) AND (NOT args ? 'is_active' OR x.is_active = v_active)
              ORDER BY x.created_at DESC, x.workflow_id DESC LIMIT v_limit OFFSET v_offset) x;
        RETURN jsonb_build_object('action', v_action, 'workflows', v_items, 'total_count', v_total,
                                  'returned_count', jsonb_array_length(v_items), 'limit', v_limit, 'offset', v_offset,
                                  'summary', format('%s workflow(s)%s%s', v_total, coalesce(' triggered by ' || v_type, ''),
                                                    CASE WHEN NOT args ? 'is_active' THEN ''
                                                         WHEN v_active THEN ', active' ELSE ', paused' END));
    END IF;

    IF v_id IS NULL THEN PERFORM csmcp.invalid('workflow_id: required for ' || v_action); END IF;
    IF v_action = 'get' THEN
        SELECT * INTO w FROM communication_workflows WHERE workflow_id = v_id;
    ELSE
        SELECT * INTO w FROM communication_workflows WHERE workflow_id = v_id FOR UPDATE;
    END IF;
    IF NOT FOUND THEN RAISE EXCEPTION 'workflow % not found', v_id USING ERRCODE = 'P0002'; END IF;

    IF v_action = 'get' THEN
        SELECT coalesce(jsonb_agg(jsonb_build_object('run_id', r.run_id, 'client_id', r.client_id, 'fired_at', r.fired_at,
                                                     'outcome', r.outcome, 'detail', r.detail)
                                  ORDER BY r.fired_at DESC, r.run_id DESC), '[]') INTO v_items
        FROM (SELECT * FROM workflow_runs r WHERE r.workflow_id = w.workflow_id
              ORDER BY r.fired_at DESC, r.run_id DESC LIMIT v_limit) r;
        RETURN jsonb_build_object('action', v_action, 'workflow', csmcp.comm_workflow_json(w), 'recent_runs', v_items,
                                  'summary', format('Workflow %s "%s": %s, %s firing(s)', w.workflow_id, w.name,
                                                    CASE WHEN w.is_active THEN 'active' ELSE 'paused' END,
                                                    (SELECT count(*) FROM workflow_runs r WHERE r.workflow_id = w.workflow_id)));
    END IF;

    -- pause / resume
    IF w.is_active = (v_action = 'resume') THEN
        RAISE EXCEPTION 'workflow % is already %', w.workflow_id, CASE WHEN w.is_active THEN 'active' ELSE 'paused' END
            USING ERRCODE = 'P0001';
    END IF;
    old_w := w;
    UPDATE communication_workflows SET is_active = (v_action = 'resume'), updated_at = now()
    WHERE workflow_id = w.workflow_id RETURNING * INTO w;
    PERFORM csmcp.log_activity(NULL, principal, 'update', 'communication_workflow', w.workflow_id,
                               jsonb_build_object('is_active', old_w.is_active), jsonb_build_object('is_active', w.is_active));
    RETURN jsonb_build_object('action', v_action, 'workflow', csmcp.comm_workflow_json(w),
                              'summary', format('Workflow %s %s', w.workflow_id,
                                                CASE WHEN w.is_active THEN 'resumed' ELSE 'paused' END));
END $$;

-- Evaluation of stored workflows, called by the monitor process (churn_risk_monitor's side work,
-- one transaction per monitor run). Evaluated trigger type: health_score — for every active
-- workflow, every live account (status not churned) with health_score < threshold (direction
-- below) or > threshold (direction above) fires once, unless the workflow already fired for that
-- account within the last 24 hours (cooldown; no double firing across runs or intervals). A firing
-- executes the actions the monitor can run: send_slack_message queues one Slack message in the
-- outbox (key workflow_run:<run_id>:<seq>); other action types (and Slack when not configured) are listed in detail.not_executed.
-- Outcome: succeeded when at least one action was queued, else skipped. Returns per workflow the
-- number of firings.
CREATE OR REPLACE FUNCTION csmcp.comm_workflows_evaluate(p_actor text) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    w communication_workflows;
    a record;
    act record;
    v_run bigint;
    v_done jsonb;
    v_not jsonb;
    v_res jsonb;
    v_n integer;
    v_out jsonb := '[]';
BEGIN
    FOR w IN SELECT * FROM communication_workflows
             WHERE is_active AND trigger_type = 'health_score'
             ORDER BY workflow_id FOR UPDATE SKIP LOCKED LOOP
        v_n := 0;
        FOR a IN SELECT x.client_id, x.client_name, x.health_score FROM accounts x
                 WHERE x.status IS DISTINCT FROM 'churned' AND x.health_score IS NOT NULL
                   AND CASE WHEN w.trigger_conditions ->> 'direction' = 'above'
                            THEN x.health_score > (w.trigger_conditions ->> 'threshold')::numeric
                            ELSE x.health_score < (w.trigger_conditions ->> 'threshold')::numeric END
                   AND NOT EXISTS (SELECT 1 FROM workflow_runs r WHERE r.workflow_id = w.workflow_id
                                   AND r.client_id = x.client_id AND r.fired_at > now() - interval '24 hours')
                 ORDER BY x.client_id LOOP
            v_run := csmcp.comm_workflow_record_run(w.workflow_id, a.client_id, 'skipped', '{}');
            v_done := '[]';
            v_not := '[]';
            FOR act IN SELECT seq, action_type, params FROM workflow_actions WHERE workflow_id = w.workflow_id ORDER BY seq LOOP
                IF act.action_type = 'send_slack_message' THEN
                    v_res := csmcp.outbox_enqueue('slack',
                        jsonb_build_object('text', coalesce(act.params ->> 'message',
                                                            format('Workflow "%s": %s (%s) health score %s is %s %s', w.name,
                                                                   a.client_name, a.client_id, a.health_score,
                                                                   w.trigger_conditions ->> 'direction',
                                                                   w.trigger_conditions ->> 'threshold')),
                                           'workflow_id', w.workflow_id, 'client_id', a.client_id) || (act.params - 'message'),
                        format('workflow_run:%s:%s', v_run, act.seq), p_actor, a.client_id, w.workflow_id);
                    IF v_res ->> 'state' = 'not_configured' THEN
                        v_not := v_not || to_jsonb(act.action_type || ' (slack not configured)');
                    ELSE
                        v_done := v_done || to_jsonb(act.action_type);
                    END IF;
                ELSE
                    v_not := v_not || to_jsonb(act.action_type);
                END IF;
            END LOOP;
            UPDATE workflow_runs SET outcome = CASE WHEN jsonb_array_length(v_done) > 0 THEN 'succeeded' ELSE 'skipped' END,
                                     detail = jsonb_build_object('trigger', 'health_score', 'health_score', a.health_score,
                                                                 'threshold', w.trigger_conditions -> 'threshold',
                                                                 'direction', w.trigger_conditions ->> 'direction',
                                                                 'executed', v_done, 'not_executed', v_not)
            WHERE run_id = v_run;
            v_n := v_n + 1;
        END LOOP;
        v_out := v_out || jsonb_build_object('workflow_id', w.workflow_id, 'fired', v_n);
    END LOOP;
    RETURN v_out;
END $$;

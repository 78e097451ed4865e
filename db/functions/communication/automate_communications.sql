-- automate_communications: persisted trigger -> actions workflows (create, list, get, pause,
-- resume, fire). The monitor leader's communication tick (csmcp.comm_tick, every monitor.tick_ms)
-- evaluates every active workflow's trigger (csmcp.comm_workflows_evaluate) and executes due
-- firings in action order; each firing is a workflow_runs row with its outcome and the result of
-- every action. Rules: worker/tools/communication/automate_communications.json ("rules").

-- Records one firing of a workflow for an account (pending until executed); returns the run id,
-- or NULL when that trigger occurrence (p_key) already fired for the account.
DROP FUNCTION IF EXISTS csmcp.comm_workflow_record_run(text, text, text, jsonb);  -- older 4-argument signature
CREATE OR REPLACE FUNCTION csmcp.comm_workflow_record_run(p_workflow_id text, p_client_id text, p_outcome text,
                                                          p_detail jsonb, p_key text DEFAULT NULL,
                                                          p_due timestamptz DEFAULT NULL)
RETURNS bigint LANGUAGE sql AS $$
    INSERT INTO workflow_runs (workflow_id, client_id, outcome, detail, trigger_key, due_at)
    VALUES (p_workflow_id, p_client_id, p_outcome, coalesce(p_detail, '{}'), p_key, coalesce(p_due, now()))
    ON CONFLICT DO NOTHING
    RETURNING run_id
$$;

CREATE OR REPLACE FUNCTION csmcp.comm_workflow_json(w communication_workflows) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'workflow_id', w.workflow_id, 'workflow_name', w.name, 'description', w.description,
        'trigger_type', w.trigger_type, 'trigger_conditions', w.trigger_conditions, 'delay_minutes', w.delay_minutes,
        'is_active', w.is_active, 'created_by', w.created_by, 'created_at', w.created_at, 'updated_at', w.updated_at,
        'next_evaluation_at', w.next_evaluation_at,
        'actions', coalesce((SELECT jsonb_agg(jsonb_build_object('seq', a.seq, 'type', a.action_type, 'params', a.params)
                                              ORDER BY a.seq) FROM workflow_actions a WHERE a.workflow_id = w.workflow_id), '[]'),
        'runs', (SELECT jsonb_build_object('total', count(*),
                                           'pending', count(*) FILTER (WHERE outcome = 'pending'),
                                           'succeeded', count(*) FILTER (WHERE outcome = 'succeeded'),
                                           'partial', count(*) FILTER (WHERE outcome = 'partial'),
                                           'failed', count(*) FILTER (WHERE outcome = 'failed'),
                                           'skipped', count(*) FILTER (WHERE outcome = 'skipped'),
                                           'cancelled', count(*) FILTER (WHERE outcome = 'cancelled'),
                                           'last_fired_at', max(fired_at))
                 FROM workflow_runs r WHERE r.workflow_id = w.workflow_id))
$$;

-- The vocabularies of the trigger conditions (rules in the JSON).
CREATE OR REPLACE FUNCTION csmcp.comm_trigger_keys(p_type text) RETURNS text[]
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE p_type WHEN 'time_based' THEN ARRAY['schedule'] WHEN 'event_based' THEN ARRAY['event']
                       WHEN 'behavior_based' THEN ARRAY['behavior', 'days', 'percent', 'feature_id']
                       WHEN 'health_score' THEN ARRAY['threshold', 'direction']
                       WHEN 'milestone' THEN ARRAY['milestone_name'] WHEN 'contract_event' THEN ARRAY['event_type', 'days_before']
                       WHEN 'usage_pattern' THEN ARRAY['metric', 'threshold', 'direction', 'period_days']
                       ELSE '{}' END || ARRAY['tier', 'client_ids', 'cooldown_hours']
$$;

-- 22023 naming what is wrong with a trigger's conditions (required keys as reference §1.6; every
-- other key must be one the evaluation uses, with a valid value).
CREATE OR REPLACE FUNCTION csmcp.comm_check_trigger(p_type text, p jsonb) RETURNS void
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    req text[] := CASE p_type WHEN 'time_based' THEN ARRAY['schedule'] WHEN 'event_based' THEN ARRAY['event']
                              WHEN 'behavior_based' THEN ARRAY['behavior'] WHEN 'health_score' THEN ARRAY['threshold', 'direction']
                              WHEN 'milestone' THEN ARRAY['milestone_name'] WHEN 'contract_event' THEN ARRAY['event_type']
                              WHEN 'usage_pattern' THEN ARRAY['metric', 'threshold'] ELSE '{}' END;
    k text;
    bad text;
BEGIN
    IF jsonb_typeof(p) <> 'object' THEN PERFORM csmcp.invalid('trigger_conditions: an object'); END IF;
    FOREACH k IN ARRAY req LOOP
        IF NOT (p ? k) OR p -> k = 'null'::jsonb OR (jsonb_typeof(p -> k) = 'string' AND btrim(p ->> k) = '') THEN
            PERFORM csmcp.invalid(format('trigger_conditions: a %s trigger needs %s', p_type, array_to_string(req, ' and ')));
        END IF;
    END LOOP;
    SELECT x INTO bad FROM jsonb_object_keys(p) x WHERE NOT (x = ANY (csmcp.comm_trigger_keys(p_type))) ORDER BY x LIMIT 1;
    IF bad IS NOT NULL THEN
        PERFORM csmcp.invalid(format('trigger_conditions.%s: not a condition of a %s trigger (allowed: %s)', bad, p_type,
                                     array_to_string(csmcp.comm_trigger_keys(p_type), ', ')));
    END IF;
    IF p ? 'tier' AND (p ->> 'tier') NOT IN ('starter', 'standard', 'professional', 'enterprise') THEN
        PERFORM csmcp.invalid('trigger_conditions.tier: starter, standard, professional or enterprise');
    END IF;
    IF p ? 'client_ids' AND (jsonb_typeof(p -> 'client_ids') <> 'array' OR jsonb_array_length(p -> 'client_ids') = 0
                             OR EXISTS (SELECT 1 FROM jsonb_array_elements(p -> 'client_ids') e WHERE jsonb_typeof(e) <> 'string')) THEN
        PERFORM csmcp.invalid('trigger_conditions.client_ids: a non-empty array of client ids');
    END IF;
    IF p ? 'cooldown_hours' AND (jsonb_typeof(p -> 'cooldown_hours') <> 'number'
                                 OR (p ->> 'cooldown_hours')::numeric NOT BETWEEN 1 AND 8760
                                 OR (p ->> 'cooldown_hours')::numeric <> trunc((p ->> 'cooldown_hours')::numeric)) THEN
        PERFORM csmcp.invalid('trigger_conditions.cooldown_hours: a whole number 1-8760');
    END IF;
    IF p_type = 'time_based' AND (p ->> 'schedule') NOT IN ('hourly', 'daily', 'weekly', 'monthly') THEN
        PERFORM csmcp.invalid('trigger_conditions.schedule: hourly, daily, weekly or monthly');
    ELSIF p_type = 'event_based' AND (p ->> 'event') !~ '^[a-z_]+\.[a-z_]+$' THEN
        PERFORM csmcp.invalid('trigger_conditions.event: <entity>.<action> of the activity log, e.g. support_ticket.create');
    ELSIF p_type = 'behavior_based' THEN
        IF (p ->> 'behavior') NOT IN ('inactive', 'usage_drop', 'feature_first_use') THEN
            PERFORM csmcp.invalid('trigger_conditions.behavior: inactive, usage_drop or feature_first_use');
        END IF;
        IF p ? 'days' AND (jsonb_typeof(p -> 'days') <> 'number' OR (p ->> 'days')::numeric NOT BETWEEN 1 AND 365
                           OR (p ->> 'days')::numeric <> trunc((p ->> 'days')::numeric)) THEN
            PERFORM csmcp.invalid('trigger_conditions.days: a whole number 1-365');
        END IF;
        IF p ? 'percent' AND (jsonb_typeof(p -> 'percent') <> 'number' OR (p ->> 'percent')::numeric NOT BETWEEN 1 AND 100) THEN
            PERFORM csmcp.invalid('trigger_conditions.percent: a number 1-100');
        END IF;
        IF (p ->> 'behavior') = 'feature_first_use' AND coalesce(p ->> 'feature_id', '') = '' THEN
            PERFORM csmcp.invalid('trigger_conditions.feature_id: required for behavior feature_first_use');
        END IF;
        IF (p ->> 'behavior') <> 'feature_first_use' AND p ? 'feature_id' THEN
            PERFORM csmcp.invalid('trigger_conditions.feature_id: only for behavior feature_first_use');
        END IF;
        IF (p ->> 'behavior') <> 'usage_drop' AND p ? 'percent' THEN
            PERFORM csmcp.invalid('trigger_conditions.percent: only for behavior usage_drop');
        END IF;
    ELSIF p_type = 'health_score' THEN
        IF jsonb_typeof(p -> 'threshold') <> 'number' OR (p ->> 'threshold')::numeric NOT BETWEEN 0 AND 100 THEN
            PERFORM csmcp.invalid('trigger_conditions.threshold: a health score 0-100');
        END IF;
        IF (p ->> 'direction') NOT IN ('above', 'below') THEN
            PERFORM csmcp.invalid('trigger_conditions.direction: above or below');
        END IF;
    ELSIF p_type = 'milestone' AND jsonb_typeof(p -> 'milestone_name') <> 'string' THEN
        PERFORM csmcp.invalid('trigger_conditions.milestone_name: a milestone name');
    ELSIF p_type = 'contract_event' THEN
        IF (p ->> 'event_type') NOT IN ('renewal_due', 'contract_expired', 'renewal_won', 'renewal_lost') THEN
            PERFORM csmcp.invalid('trigger_conditions.event_type: renewal_due, contract_expired, renewal_won or renewal_lost');
        END IF;
        IF p ? 'days_before' AND ((p ->> 'event_type') <> 'renewal_due' OR jsonb_typeof(p -> 'days_before') <> 'number'
                                  OR (p ->> 'days_before')::numeric NOT BETWEEN 1 AND 365
                                  OR (p ->> 'days_before')::numeric <> trunc((p ->> 'days_before')::numeric)) THEN
            PERFORM csmcp.invalid('trigger_conditions.days_before: a whole number 1-365, only for renewal_due');
        END IF;
    ELSIF p_type = 'usage_pattern' THEN
        IF (p ->> 'metric') NOT IN ('active_users', 'weekly_active_users', 'events', 'session_minutes') THEN
            PERFORM csmcp.invalid('trigger_conditions.metric: active_users, weekly_active_users, events or session_minutes');
        END IF;
        IF jsonb_typeof(p -> 'threshold') <> 'number' OR (p ->> 'threshold')::numeric < 0 THEN
            PERFORM csmcp.invalid('trigger_conditions.threshold: a number >= 0');
        END IF;
        IF p ? 'direction' AND (p ->> 'direction') NOT IN ('above', 'below') THEN
            PERFORM csmcp.invalid('trigger_conditions.direction: above or below');
        END IF;
        IF p ? 'period_days' AND (jsonb_typeof(p -> 'period_days') <> 'number' OR (p ->> 'period_days')::numeric NOT BETWEEN 1 AND 90
                                  OR (p ->> 'period_days')::numeric <> trunc((p ->> 'period_days')::numeric)) THEN
            PERFORM csmcp.invalid('trigger_conditions.period_days: a whole number 1-90');
        END IF;
    END IF;
END $$;

-- 22023 naming the first action whose parameters the execution cannot use.
CREATE OR REPLACE FUNCTION csmcp.comm_check_actions(p jsonb) RETURNS void
LANGUAGE plpgsql STABLE AS $$
DECLARE
    a jsonb;
    i integer := 0;
    t text;
    req text[];
    k text;
BEGIN
    FOR a IN SELECT x FROM jsonb_array_elements(p) x LOOP
        i := i + 1;
        t := a ->> 'type';
        req := CASE t WHEN 'send_email' THEN ARRAY['subject', 'body', 'sender_email'] WHEN 'create_task' THEN ARRAY['title']
                      WHEN 'create_ticket' THEN ARRAY['subject'] WHEN 'send_in_app_notification' THEN ARRAY['message']
                      WHEN 'send_sms' THEN ARRAY['message'] ELSE '{}' END;
        FOREACH k IN ARRAY req LOOP
            IF jsonb_typeof(a -> k) IS DISTINCT FROM 'string' OR btrim(a ->> k) = '' THEN
                PERFORM csmcp.invalid(format('actions[%s]: a %s action needs %s', i - 1, t, array_to_string(req, ', ')));
            END IF;
        END LOOP;
        PERFORM csmcp.comm_check_tokens(format('actions[%s]', i - 1), concat_ws(' ', a ->> 'subject', a ->> 'body', a ->> 'message',
                                                                             a ->> 'title', a ->> 'description'),
                                        csmcp.comm_builtin_tokens() || ARRAY['workflow_name']);
        IF t = 'send_email' AND (a ->> 'sender_email') !~ '^[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\.[a-zA-Z]{2,}$' THEN
            PERFORM csmcp.invalid(format('actions[%s].sender_email: an email address', i - 1));
        END IF;
        IF t = 'send_email' AND a ? 'to' AND (a ->> 'to') NOT IN ('primary', 'all_contacts') THEN
            PERFORM csmcp.invalid(format('actions[%s].to: primary or all_contacts', i - 1));
        END IF;
        IF t IN ('create_task', 'schedule_meeting') THEN
            k := CASE t WHEN 'create_task' THEN 'due_days' ELSE 'days_from_now' END;
            IF a ? k AND (jsonb_typeof(a -> k) <> 'number' OR (a ->> k)::numeric NOT BETWEEN 0 AND 365
                          OR (a ->> k)::numeric <> trunc((a ->> k)::numeric)) THEN
                PERFORM csmcp.invalid(format('actions[%s].%s: a whole number 0-365', i - 1, k));
            END IF;
        END IF;
        IF t = 'create_ticket' AND a ? 'priority' AND (a ->> 'priority') NOT IN ('P0', 'P1', 'P2', 'P3', 'P4') THEN
            PERFORM csmcp.invalid(format('actions[%s].priority: P0-P4', i - 1));
        END IF;
    END LOOP;
END $$;

CREATE OR REPLACE FUNCTION csmcp.tool_automate_communications(args jsonb, principal text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v_action text := csmcp.arg_text(args, 'action', 'create', ARRAY['create', 'list', 'get', 'pause', 'resume', 'fire']);
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
    v_ids text[];
    v_missing text;
    v_run bigint;
    v_runs jsonb := '[]';
    v_cl text;
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
        PERFORM csmcp.comm_check_actions(args -> 'actions');
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
    IF v_action IN ('get', 'fire') THEN
        SELECT * INTO w FROM communication_workflows WHERE workflow_id = v_id;
    ELSE
        SELECT * INTO w FROM communication_workflows WHERE workflow_id = v_id FOR UPDATE;
    END IF;
    IF NOT FOUND THEN RAISE EXCEPTION 'workflow % not found', v_id USING ERRCODE = 'P0002'; END IF;

    IF v_action = 'get' THEN
        SELECT coalesce(jsonb_agg(jsonb_build_object('run_id', r.run_id, 'client_id', r.client_id, 'fired_at', r.fired_at,
                                                     'outcome', r.outcome, 'detail', r.detail,
                                                     'trigger_key', r.trigger_key, 'due_at', r.due_at,
                                                     'executed_at', r.executed_at, 'actions', r.actions)
                                  ORDER BY r.fired_at DESC, r.run_id DESC), '[]') INTO v_items
        FROM (SELECT * FROM workflow_runs r WHERE r.workflow_id = w.workflow_id
              ORDER BY r.fired_at DESC, r.run_id DESC LIMIT v_limit) r;
        RETURN jsonb_build_object('action', v_action, 'workflow', csmcp.comm_workflow_json(w), 'recent_runs', v_items,
                                  'summary', format('Workflow %s "%s": %s, %s firing(s)', w.workflow_id, w.name,
                                                    CASE WHEN w.is_active THEN 'active' ELSE 'paused' END,
                                                    (SELECT count(*) FROM workflow_runs r WHERE r.workflow_id = w.workflow_id)));
    END IF;

    IF v_action = 'fire' THEN
        -- custom workflows fire on request (an external system or a person), for the given accounts.
        IF w.trigger_type <> 'custom' THEN
            RAISE EXCEPTION 'workflow % has trigger %: only custom workflows are fired on request (the others fire from their trigger)',
                w.workflow_id, w.trigger_type USING ERRCODE = 'P0001';
        END IF;
        IF NOT w.is_active THEN RAISE EXCEPTION 'workflow % is paused', w.workflow_id USING ERRCODE = 'P0001'; END IF;
        IF jsonb_typeof(args -> 'client_ids') IS DISTINCT FROM 'array' OR jsonb_array_length(args -> 'client_ids') = 0 THEN
            PERFORM csmcp.invalid('client_ids: required for fire');
        END IF;
        SELECT array_agg(DISTINCT e ORDER BY e) INTO v_ids FROM jsonb_array_elements_text(args -> 'client_ids') e;
        SELECT e INTO v_missing FROM unnest(v_ids) e WHERE NOT EXISTS (SELECT 1 FROM accounts WHERE client_id = e) ORDER BY e LIMIT 1;
        IF v_missing IS NOT NULL THEN RAISE EXCEPTION 'client not found: %', v_missing USING ERRCODE = 'P0002'; END IF;
        FOREACH v_cl IN ARRAY v_ids LOOP
            IF NOT EXISTS (SELECT 1 FROM csmcp.comm_wf_scope(w) s WHERE s.client_id = v_cl) THEN
                v_runs := v_runs || jsonb_build_object('client_id', v_cl, 'run_id', NULL,
                                                       'outcome', 'not_in_scope (churned, or outside the tier/client_ids conditions)');
                CONTINUE;
            END IF;
            v_run := csmcp.comm_wf_fire(w, v_cl, NULL, jsonb_build_object('fired_by', principal), 'automate_communications');
            v_runs := v_runs || jsonb_build_object('client_id', v_cl, 'run_id', v_run,
                                                   'outcome', (SELECT outcome FROM workflow_runs WHERE run_id = v_run));
        END LOOP;
        PERFORM csmcp.log_activity(NULL, principal, 'fire', 'communication_workflow', w.workflow_id, NULL,
                                   jsonb_build_object('client_ids', to_jsonb(v_ids), 'runs', v_runs));
        RETURN jsonb_build_object('action', v_action, 'workflow', csmcp.comm_workflow_json(w), 'fired', v_runs,
                                  'summary', format('Workflow %s fired for %s account(s)', w.workflow_id,
                                                    (SELECT count(*) FROM jsonb_array_elements(v_runs) e
                                                     WHERE e -> 'run_id' <> 'null'::jsonb)));
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


-- ---------------------------------------------------------------- evaluation

-- The accounts a workflow may fire for: live (status not churned), restricted by the optional
-- conditions tier and client_ids.
CREATE OR REPLACE FUNCTION csmcp.comm_wf_scope(w communication_workflows) RETURNS SETOF accounts
LANGUAGE sql STABLE AS $$
    SELECT a.* FROM accounts a
    WHERE a.status <> 'churned'
      AND (NOT w.trigger_conditions ? 'tier' OR a.tier = w.trigger_conditions ->> 'tier')
      AND (NOT w.trigger_conditions ? 'client_ids'
           OR a.client_id IN (SELECT jsonb_array_elements_text(w.trigger_conditions -> 'client_ids')))
$$;

-- The firings a workflow's trigger yields now: (client_id, trigger_key, detail). Occurrence
-- triggers carry a trigger_key (unique per workflow and account: fires once); level triggers
-- (health_score, usage_pattern, behavior inactive / usage_drop) have none and are held back by the
-- cooldown (cooldown_hours, default 24) after the account's last firing.
CREATE OR REPLACE FUNCTION csmcp.comm_wf_candidates(w communication_workflows)
RETURNS TABLE (client_id text, trigger_key text, detail jsonb)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    c jsonb := w.trigger_conditions;
    v_cool interval := make_interval(hours => coalesce((c ->> 'cooldown_hours')::integer, 24));
    v_thr numeric := (c ->> 'threshold')::numeric;
    v_dir text := coalesce(c ->> 'direction', 'below');
    v_days integer;
    v_from timestamptz := w.created_at;
BEGIN
    IF w.trigger_type = 'time_based' THEN
        RETURN QUERY
        SELECT a.client_id, 'period:' || to_char(p.start, 'YYYY-MM-DD"T"HH24'),
               jsonb_build_object('schedule', c ->> 'schedule', 'period_start', p.start)
        FROM csmcp.comm_wf_scope(w) a,
             LATERAL (SELECT date_trunc(CASE c ->> 'schedule' WHEN 'hourly' THEN 'hour' WHEN 'daily' THEN 'day'
                                                               WHEN 'weekly' THEN 'week' ELSE 'month' END,
                                        now() AT TIME ZONE 'UTC') AS start) p;
    ELSIF w.trigger_type = 'event_based' THEN
        RETURN QUERY
        SELECT l.client_id, 'activity:' || l.activity_id,
               jsonb_build_object('event', c ->> 'event', 'activity_id', l.activity_id, 'entity_id', l.entity_id,
                                  'occurred_at', l.occurred_at)
        FROM activity_log l JOIN csmcp.comm_wf_scope(w) a ON a.client_id = l.client_id
        WHERE l.occurred_at >= greatest(v_from, now() - interval '7 days')
          AND l.entity = split_part(c ->> 'event', '.', 1) AND l.action = split_part(c ->> 'event', '.', 2);
    ELSIF w.trigger_type = 'milestone' THEN
        RETURN QUERY
        SELECT p.client_id, 'onboarding_milestone:' || m.milestone_id,
               jsonb_build_object('milestone_name', m.name, 'source', 'onboarding', 'milestone_id', m.milestone_id,
                                  'completed_on', m.completed_on)
        FROM onboarding_milestones m JOIN onboarding_plans p ON p.plan_id = m.plan_id
        JOIN csmcp.comm_wf_scope(w) a ON a.client_id = p.client_id
        WHERE m.status = 'completed' AND m.completed_on >= (v_from AT TIME ZONE 'UTC')::date
          AND csmcp.comm_slug(m.name) = csmcp.comm_slug(c ->> 'milestone_name')
        UNION ALL
        SELECT am.client_id, 'adoption_milestone:' || am.milestone,
               jsonb_build_object('milestone_name', am.milestone, 'source', 'adoption', 'achieved_on', am.achieved_on)
        FROM adoption_milestones am JOIN csmcp.comm_wf_scope(w) a ON a.client_id = am.client_id
        WHERE am.achieved_on >= (v_from AT TIME ZONE 'UTC')::date
          AND csmcp.comm_slug(am.milestone) = csmcp.comm_slug(c ->> 'milestone_name');
    ELSIF w.trigger_type = 'contract_event' AND c ->> 'event_type' = 'renewal_due' THEN
        v_days := coalesce((c ->> 'days_before')::integer, 90);
        RETURN QUERY
        SELECT r.client_id, 'renewal_due:' || r.renewal_id,
               jsonb_build_object('event_type', 'renewal_due', 'renewal_id', r.renewal_id, 'renewal_date', r.renewal_date,
                                  'days_until', r.renewal_date - csmcp.today(), 'days_before', v_days)
        FROM renewals r JOIN csmcp.comm_wf_scope(w) a ON a.client_id = r.client_id
        WHERE r.status NOT IN ('won', 'lost', 'churned')
          AND r.renewal_date BETWEEN csmcp.today() AND csmcp.today() + v_days;
    ELSIF w.trigger_type = 'contract_event' AND c ->> 'event_type' = 'contract_expired' THEN
        RETURN QUERY
        SELECT k.client_id, 'contract_expired:' || k.contract_id,
               jsonb_build_object('event_type', 'contract_expired', 'contract_id', k.contract_id, 'end_date', k.end_date)
        FROM contracts k JOIN csmcp.comm_wf_scope(w) a ON a.client_id = k.client_id
        WHERE k.status IN ('active', 'expired') AND k.end_date < csmcp.today()
          AND k.end_date >= (v_from AT TIME ZONE 'UTC')::date - 30;
    ELSIF w.trigger_type = 'contract_event' THEN  -- renewal_won / renewal_lost
        RETURN QUERY
        SELECT r.client_id, (c ->> 'event_type') || ':' || r.renewal_id,
               jsonb_build_object('event_type', c ->> 'event_type', 'renewal_id', r.renewal_id, 'renewal_date', r.renewal_date,
                                  'status', r.status)
        FROM renewals r JOIN csmcp.comm_wf_scope(w) a ON a.client_id = r.client_id
        WHERE r.status = CASE c ->> 'event_type' WHEN 'renewal_won' THEN 'won' ELSE 'lost' END
          AND r.updated_at >= v_from;
    ELSIF w.trigger_type = 'behavior_based' AND c ->> 'behavior' = 'feature_first_use' THEN
        RETURN QUERY
        SELECT f.client_id, 'feature_first_use:' || (c ->> 'feature_id'),
               jsonb_build_object('behavior', 'feature_first_use', 'feature_id', c ->> 'feature_id', 'first_day', f.first_day)
        FROM (SELECT u.client_id, min(u.day) AS first_day FROM usage_feature_daily u
              WHERE u.feature_id = c ->> 'feature_id' AND u.events > 0 GROUP BY u.client_id) f
        JOIN csmcp.comm_wf_scope(w) a ON a.client_id = f.client_id
        WHERE f.first_day >= (v_from AT TIME ZONE 'UTC')::date;
    ELSIF w.trigger_type = 'custom' THEN
        RETURN;  -- fired only by automate_communications action fire
    ELSE
        -- level triggers, set-based (one aggregate over the window, not a subquery per account)
        v_days := coalesce((c ->> 'days')::integer, (c ->> 'period_days')::integer,
                           CASE WHEN c ->> 'behavior' = 'inactive' THEN 14 ELSE 7 END);
        IF w.trigger_type = 'health_score' THEN
            RETURN QUERY
            SELECT a.client_id, NULL::text,
                   jsonb_build_object('health_score', a.health_score, 'threshold', c -> 'threshold', 'direction', v_dir)
            FROM csmcp.comm_wf_scope(w) a
            WHERE CASE WHEN v_dir = 'above' THEN a.health_score > v_thr ELSE a.health_score < v_thr END
              AND NOT EXISTS (SELECT 1 FROM workflow_runs r WHERE r.workflow_id = w.workflow_id AND r.client_id = a.client_id
                                                              AND r.fired_at > now() - v_cool);
        ELSIF w.trigger_type = 'usage_pattern' THEN
            RETURN QUERY
            SELECT a.client_id, NULL::text,
                   jsonb_build_object('metric', c ->> 'metric', 'value', v.v, 'threshold', c -> 'threshold',
                                      'direction', v_dir, 'period_days', v_days)
            FROM csmcp.comm_wf_scope(w) a
            LEFT JOIN (SELECT d.client_id, sum(d.active_users) AS au, sum(d.events) AS ev, sum(d.session_minutes) AS sm
                       FROM usage_daily d WHERE d.day > csmcp.today() - v_days AND d.day <= csmcp.today()
                       GROUP BY d.client_id) u ON u.client_id = a.client_id
            LEFT JOIN (SELECT du.client_id, count(DISTINCT du.user_id) AS wau FROM usage_daily_users du
                       WHERE c ->> 'metric' = 'weekly_active_users'
                         AND du.day > csmcp.today() - 7 AND du.day <= csmcp.today()
                       GROUP BY du.client_id) wu ON wu.client_id = a.client_id
            CROSS JOIN LATERAL (SELECT CASE c ->> 'metric'
                                       WHEN 'active_users' THEN round(coalesce(u.au, 0)::numeric / v_days, 2)
                                       WHEN 'events' THEN coalesce(u.ev, 0)::numeric
                                       WHEN 'session_minutes' THEN coalesce(u.sm, 0)::numeric
                                       ELSE coalesce(wu.wau, 0)::numeric END AS v) v
            WHERE CASE WHEN v_dir = 'above' THEN v.v > v_thr ELSE v.v < v_thr END
              AND NOT EXISTS (SELECT 1 FROM workflow_runs r WHERE r.workflow_id = w.workflow_id AND r.client_id = a.client_id
                                                              AND r.fired_at > now() - v_cool);
        ELSIF c ->> 'behavior' = 'inactive' THEN
            RETURN QUERY
            SELECT a.client_id, NULL::text,
                   jsonb_build_object('behavior', 'inactive', 'days', v_days,
                                      'last_active_day', (SELECT max(d.day) FROM usage_daily d
                                                          WHERE d.client_id = a.client_id AND d.events > 0))
            FROM csmcp.comm_wf_scope(w) a
            WHERE a.created_at <= now() - make_interval(days => v_days)
              AND NOT EXISTS (SELECT 1 FROM usage_daily d WHERE d.client_id = a.client_id AND d.events > 0
                              AND d.day > csmcp.today() - v_days AND d.day <= csmcp.today())
              AND NOT EXISTS (SELECT 1 FROM workflow_runs r WHERE r.workflow_id = w.workflow_id AND r.client_id = a.client_id
                                                              AND r.fired_at > now() - v_cool);
        ELSE  -- usage_drop: events in the last `days` days vs the `days` before, drop >= percent
            RETURN QUERY
            SELECT a.client_id, NULL::text,
                   jsonb_build_object('behavior', 'usage_drop', 'days', v_days, 'events_current', u.cur,
                                      'events_previous', u.prev, 'drop_percent', round((u.prev - u.cur) * 100.0 / u.prev, 1))
            FROM csmcp.comm_wf_scope(w) a
            JOIN (SELECT d.client_id, coalesce(sum(d.events) FILTER (WHERE d.day > csmcp.today() - v_days), 0) AS cur,
                         coalesce(sum(d.events) FILTER (WHERE d.day <= csmcp.today() - v_days), 0) AS prev
                  FROM usage_daily d WHERE d.day > csmcp.today() - 2 * v_days AND d.day <= csmcp.today()
                  GROUP BY d.client_id) u ON u.client_id = a.client_id
            WHERE u.prev > 0 AND (u.prev - u.cur) * 100.0 / u.prev >= coalesce((c ->> 'percent')::numeric, 50)
              AND NOT EXISTS (SELECT 1 FROM workflow_runs r WHERE r.workflow_id = w.workflow_id AND r.client_id = a.client_id
                                                              AND r.fired_at > now() - v_cool);
        END IF;
    END IF;
END $$;

-- Executes one action of a run; returns its result {seq, type, state (done | skipped |
-- not_configured), ...}. Raises on failure (the caller records it).
CREATE OR REPLACE FUNCTION csmcp.comm_wf_action(w communication_workflows, p_run bigint, a accounts, p_seq integer,
                                                p_type text, p jsonb, p_actor text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    k contacts;
    tok jsonb;
    q jsonb;
    res jsonb;
    v_key text := format('workflow_run:%s:%s', p_run, p_seq);
    v_n integer := 0;
    v_mid bigint;
    v_id bigint;
    r record;
BEGIN
    SELECT * INTO k FROM contacts c WHERE c.client_id = a.client_id AND c.is_primary AND NOT c.unsubscribed;
    tok := jsonb_build_object('workflow_name', w.name) || csmcp.comm_row_tokens(a, k.name, k.email, k.title);
    res := jsonb_build_object('seq', p_seq, 'type', p_type);
    IF p_type = 'send_email' THEN
        FOR r IN SELECT c.* FROM contacts c
                 WHERE c.client_id = a.client_id AND NOT c.unsubscribed
                   AND (c.is_primary OR coalesce(p ->> 'to', 'primary') = 'all_contacts')
                 ORDER BY c.contact_id LOOP
            tok := jsonb_build_object('workflow_name', w.name) || csmcp.comm_row_tokens(a, r.name, r.email, r.title);
            v_mid := csmcp.comm_enqueue_email(NULL, NULL, a.client_id, r.contact_id, r.email, r.name, p ->> 'sender_email',
                                              csmcp.comm_render(p ->> 'subject', tok), csmcp.comm_render(p ->> 'body', tok),
                                              NULL, NULL, true, true, 'automate_communications', p_run);
            v_n := v_n + 1;
        END LOOP;
        IF v_n = 0 THEN
            RETURN res || jsonb_build_object('state', 'skipped', 'reason', 'no eligible contact (none, or unsubscribed)');
        END IF;
        RETURN res || jsonb_build_object('state', CASE WHEN csmcp.integration_enabled('sendgrid') THEN 'done' ELSE 'not_configured' END,
                                         'messages', v_n,
                                         'message_ids', (SELECT jsonb_agg(message_id ORDER BY message_id) FROM email_messages
                                                         WHERE workflow_run_id = p_run));
    ELSIF p_type = 'create_task' THEN
        INSERT INTO workflow_tasks (client_id, workflow_id, run_id, title, description, assignee, due_date)
        VALUES (a.client_id, w.workflow_id, p_run, csmcp.comm_render(p ->> 'title', tok), csmcp.comm_render(p ->> 'description', tok),
                coalesce(p ->> 'assignee', a.csm_assigned), csmcp.today() + coalesce((p ->> 'due_days')::integer, 3))
        RETURNING task_id INTO v_id;
        RETURN res || jsonb_build_object('state', 'done', 'task_id', v_id);
    ELSIF p_type = 'send_slack_message' THEN
        q := csmcp.outbox_enqueue('slack',
                 jsonb_build_object('text', coalesce(csmcp.comm_render(p ->> 'message', tok),
                                                     format('Workflow "%s" fired for %s (%s)', w.name, a.client_name, a.client_id)),
                                    'workflow_id', w.workflow_id, 'client_id', a.client_id) || (p - 'message'),
                 v_key, p_actor, a.client_id, w.workflow_id);
    ELSIF p_type = 'send_in_app_notification' THEN
        IF k.contact_id IS NULL THEN
            RETURN res || jsonb_build_object('state', 'skipped', 'reason', 'no eligible primary contact');
        END IF;
        q := csmcp.outbox_enqueue('intercom',
                 jsonb_build_object('body', jsonb_strip_nulls(jsonb_build_object(
                     'message_type', 'inapp', 'body', csmcp.comm_render(p ->> 'message', tok),
                     'from', CASE WHEN p ? 'admin_id' THEN jsonb_build_object('type', 'admin', 'id', p ->> 'admin_id') END,
                     'to', jsonb_build_object('type', 'user', 'email', k.email)))),
                 v_key, p_actor, a.client_id, w.workflow_id);
    ELSIF p_type = 'trigger_webhook' THEN
        q := csmcp.outbox_enqueue('webhook',
                 jsonb_build_object('event', 'workflow.fired', 'workflow_id', w.workflow_id, 'workflow_name', w.name,
                                    'run_id', p_run, 'client_id', a.client_id,
                                    'trigger', (SELECT detail FROM workflow_runs WHERE run_id = p_run),
                                    'data', coalesce(p -> 'payload', '{}')),
                 v_key, p_actor, a.client_id, w.workflow_id);
    ELSIF p_type = 'update_health_score' THEN
        q := csmcp.tool_calculate_health_score(jsonb_build_object('client_id', a.client_id), p_actor);
        RETURN res || jsonb_build_object('state', 'done', 'health_score', (SELECT health_score FROM accounts x
                                                                            WHERE x.client_id = a.client_id));
    ELSIF p_type = 'create_ticket' THEN
        IF k.contact_id IS NULL THEN
            RETURN res || jsonb_build_object('state', 'skipped', 'reason', 'no eligible primary contact to be the requester');
        END IF;
        q := csmcp.tool_handle_support_ticket(jsonb_strip_nulls(jsonb_build_object(
                 'action', 'create', 'client_id', a.client_id, 'subject', csmcp.comm_render(p ->> 'subject', tok),
                 'description', coalesce(csmcp.comm_render(p ->> 'description', tok), w.description),
                 'requester_email', k.email, 'requester_name', k.name, 'priority', coalesce(p ->> 'priority', 'P3'),
                 'category', coalesce(p ->> 'category', 'other'))), p_actor);
        RETURN res || jsonb_build_object('state', 'done', 'ticket_id', coalesce(q ->> 'ticket_id', q #>> '{ticket,ticket_id}'));
    ELSIF p_type = 'schedule_meeting' THEN
        INSERT INTO communications (client_id, channel, subject, body, sent_by, scheduled_for, status)
        VALUES (a.client_id, 'meeting', coalesce(csmcp.comm_render(p ->> 'title', tok), 'Meeting: ' || w.name),
                csmcp.comm_render(p ->> 'description', tok), 'workflow:' || w.workflow_id,
                now() + make_interval(days => coalesce((p ->> 'days_from_now')::integer, 7)), 'scheduled')
        RETURNING communication_id INTO v_id;
        RETURN res || jsonb_build_object('state', 'done', 'communication_id', v_id,
                                         'scheduled_for', (SELECT scheduled_for FROM communications WHERE communication_id = v_id));
    ELSE  -- send_sms
        RETURN res || jsonb_build_object('state', 'not_configured',
                                         'reason', 'no SMS channel is integrated (outbox channels: sendgrid, intercom, zendesk, slack, webhook)');
    END IF;
    -- outbox actions
    IF q ->> 'state' = 'not_configured' THEN
        RETURN res || jsonb_build_object('state', 'not_configured', 'channel', q ->> 'channel');
    END IF;
    RETURN res || jsonb_build_object('state', 'done', 'channel', q ->> 'channel', 'outbox_id', (q ->> 'outbox_id')::bigint,
                                     'outbox_state', q ->> 'state');
END $$;

-- Executes a due run: its actions in seq order, each in its own subtransaction; the first failing
-- action stops the run (later ones: not_run). Outcome: cancelled when the workflow was paused before
-- the run was due; failed when an action failed; succeeded when every action was done; skipped
-- when none was; partial otherwise.
CREATE OR REPLACE FUNCTION csmcp.comm_wf_execute(p_run bigint, p_actor text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    run workflow_runs;
    w communication_workflows;
    a accounts;
    act record;
    v_res jsonb;
    v_out jsonb := '[]';
    v_failed boolean := false;
    v_outcome text;
BEGIN
    SELECT * INTO run FROM workflow_runs WHERE run_id = p_run AND outcome = 'pending' FOR UPDATE SKIP LOCKED;
    IF NOT FOUND THEN RETURN NULL; END IF;
    SELECT * INTO w FROM communication_workflows WHERE workflow_id = run.workflow_id;
    SELECT * INTO a FROM accounts WHERE client_id = run.client_id;
    IF NOT w.is_active THEN
        UPDATE workflow_runs SET outcome = 'cancelled', executed_at = now(),
                                 detail = detail || jsonb_build_object('reason', 'workflow paused before the run was due')
        WHERE run_id = p_run;
        RETURN 'cancelled';
    END IF;
    FOR act IN SELECT seq, action_type, params FROM workflow_actions WHERE workflow_id = w.workflow_id ORDER BY seq LOOP
        IF v_failed THEN
            v_out := v_out || jsonb_build_object('seq', act.seq, 'type', act.action_type, 'state', 'not_run');
            CONTINUE;
        END IF;
        BEGIN
            v_res := csmcp.comm_wf_action(w, p_run, a, act.seq, act.action_type, act.params, p_actor);
        EXCEPTION WHEN others THEN
            v_res := jsonb_build_object('seq', act.seq, 'type', act.action_type, 'state', 'failed', 'error', SQLERRM);
            v_failed := true;
        END;
        v_out := v_out || v_res;
    END LOOP;
    v_outcome := CASE WHEN v_failed THEN 'failed'
                      WHEN NOT EXISTS (SELECT 1 FROM jsonb_array_elements(v_out) e WHERE e ->> 'state' <> 'done') THEN 'succeeded'
                      WHEN NOT EXISTS (SELECT 1 FROM jsonb_array_elements(v_out) e WHERE e ->> 'state' = 'done') THEN 'skipped'
                      ELSE 'partial' END;
    UPDATE workflow_runs SET outcome = v_outcome, actions = v_out, executed_at = now() WHERE run_id = p_run;
    RETURN v_outcome;
END $$;

-- Fires workflow w for one account: records the run (due now + delay_minutes) and executes it at
-- once when there is no delay. Returns the run id (NULL: this occurrence already fired).
CREATE OR REPLACE FUNCTION csmcp.comm_wf_fire(w communication_workflows, p_client text, p_key text, p_detail jsonb,
                                              p_actor text)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    v_run bigint;
BEGIN
    v_run := csmcp.comm_workflow_record_run(w.workflow_id, p_client, 'pending',
                                            jsonb_build_object('trigger', w.trigger_type) || coalesce(p_detail, '{}'), p_key,
                                            now() + make_interval(mins => w.delay_minutes));
    IF v_run IS NOT NULL AND w.delay_minutes = 0 THEN
        PERFORM csmcp.comm_wf_execute(v_run, p_actor);
    END IF;
    RETURN v_run;
END $$;

-- Evaluation (the monitor leader's communication tick): every active workflow whose
-- next_evaluation_at has come (at most 20 per call, and none started after 500 ms of the call) is
-- evaluated: its trigger's firings (at most
-- 200 per workflow and call; the rest at the next call) are recorded and, without delay, executed;
-- next_evaluation_at moves 60 s on (at once when the 200 were reached). Then due pending runs (at
-- most 200, oldest first; none started after 1 s of the call once one ran) are executed. Returns {workflows: [{workflow_id, fired}], executed}.
-- p_only: evaluate just that workflow (active, due or not) and execute just its due runs (tests,
-- operators).
DROP FUNCTION IF EXISTS csmcp.comm_workflows_evaluate(text);
CREATE OR REPLACE FUNCTION csmcp.comm_workflows_evaluate(p_actor text, p_only text DEFAULT NULL) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    w communication_workflows;
    cand record;
    v_n integer;
    v_out jsonb := '[]';
    v_exec integer := 0;
    pr record;
    v_t0 timestamptz := clock_timestamp();
BEGIN
    FOR w IN SELECT * FROM communication_workflows
             WHERE is_active AND trigger_type <> 'custom'
               AND (workflow_id = p_only OR (p_only IS NULL AND next_evaluation_at <= now()))
             ORDER BY next_evaluation_at, workflow_id LIMIT 20 FOR UPDATE SKIP LOCKED LOOP
        -- time budget: after 500 ms no further workflow this call (the rest stay due for the next tick)
        EXIT WHEN clock_timestamp() - v_t0 > interval '500 milliseconds';
        v_n := 0;
        FOR cand IN SELECT x.client_id, x.trigger_key, x.detail FROM csmcp.comm_wf_candidates(w) x
                    WHERE x.trigger_key IS NULL
                       OR NOT EXISTS (SELECT 1 FROM workflow_runs r WHERE r.workflow_id = w.workflow_id
                                      AND r.client_id = x.client_id AND r.trigger_key = x.trigger_key)
                    ORDER BY x.client_id, x.trigger_key LIMIT 200 LOOP
            IF csmcp.comm_wf_fire(w, cand.client_id, cand.trigger_key, cand.detail, p_actor) IS NOT NULL THEN
                v_n := v_n + 1;
            END IF;
        END LOOP;
        UPDATE communication_workflows SET next_evaluation_at = CASE WHEN v_n >= 200 THEN now() ELSE now() + interval '60 seconds' END
        WHERE workflow_id = w.workflow_id;
        v_out := v_out || jsonb_build_object('workflow_id', w.workflow_id, 'fired', v_n);
    END LOOP;
    FOR pr IN SELECT run_id FROM workflow_runs WHERE outcome = 'pending' AND due_at <= now()
                AND (p_only IS NULL OR workflow_id = p_only)
             ORDER BY due_at, run_id LIMIT 200 LOOP
        EXIT WHEN v_exec > 0 AND clock_timestamp() - v_t0 > interval '1 second';
        IF csmcp.comm_wf_execute(pr.run_id, p_actor) IS NOT NULL THEN v_exec := v_exec + 1; END IF;
    END LOOP;
    RETURN jsonb_build_object('workflows', v_out, 'executed', v_exec);
END $$;

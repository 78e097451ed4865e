-- create_onboarding_plan: the template plan (csmcp.onb_template) persisted as a draft: plan,
-- milestones with weeks scaled to timeline_weeks and due dates from start_date, their tasks,
-- the customer's goals and success criteria. One open plan per account.
CREATE OR REPLACE FUNCTION csmcp.tool_create_onboarding_plan(args jsonb, principal text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    t date := csmcp.today();
    acc accounts := csmcp.require_account(csmcp.arg_text(args, 'client_id', NULL));
    v_tier text := coalesce(csmcp.arg_text(args, 'product_tier', NULL, ARRAY['starter', 'standard', 'professional', 'enterprise']),
                            acc.tier);
    v_team integer := csmcp.arg_int(args, 'team_size', 10, 1, 10000);
    v_cx text := csmcp.arg_text(args, 'technical_complexity', 'medium', ARRAY['low', 'medium', 'high']);
    v_weeks integer := csmcp.arg_int(args, 'timeline_weeks', 4, 1, 12);
    v_start date := csmcp.arg_date(args, 'start_date', t);
    v_name text := coalesce(nullif(btrim(csmcp.arg_text(args, 'plan_name', NULL)), ''), 'Onboarding ' || acc.client_name);
    v_goals jsonb := args -> 'customer_goals';
    v_crit jsonb := coalesce(nullif(args -> 'success_criteria', 'null'::jsonb), '[]'::jsonb);
    v_id text;
    v_base text;
    n integer := 1;
    p onboarding_plans;
    other onboarding_plans;
    tm record;
    v_mid text;
    v_hours integer := 0;
    v_tasks integer := 0;
    v_ms integer := 0;
    v_m3_week integer;
    recs jsonb := '[]';
    x jsonb;
BEGIN
    IF v_goals IS NULL OR jsonb_typeof(v_goals) <> 'array' OR jsonb_array_length(v_goals) = 0 THEN
        PERFORM csmcp.invalid('customer_goals must be a non-empty list of strings');
    END IF;
    FOR x IN SELECT value FROM jsonb_array_elements(v_goals) UNION ALL SELECT value FROM jsonb_array_elements(
             CASE WHEN jsonb_typeof(v_crit) = 'array' THEN v_crit ELSE '[]' END) LOOP
        IF jsonb_typeof(x) <> 'string' OR length(btrim(x #>> '{}')) NOT BETWEEN 1 AND 500 THEN
            PERFORM csmcp.invalid('customer_goals and success_criteria entries must be strings of 1 to 500 characters');
        END IF;
    END LOOP;
    IF jsonb_typeof(v_crit) <> 'array' THEN PERFORM csmcp.invalid('success_criteria must be a list of strings'); END IF;
    IF length(v_name) > 200 THEN PERFORM csmcp.invalid('plan_name is limited to 200 characters'); END IF;
    IF v_start < t - 365 OR v_start > t + 365 THEN
        PERFORM csmcp.invalid('start_date must be within one year of today');
    END IF;

    SELECT * INTO other FROM onboarding_plans
    WHERE client_id = acc.client_id AND status IN ('draft', 'scheduled', 'in_progress', 'delayed') LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'client % already has an open onboarding plan % (status %); complete or cancel it first',
            acc.client_id, other.plan_id, other.status USING ERRCODE = 'P0001';
    END IF;

    -- onb_<client_id>_<unix time>, with _2, _3 ... if that id was already used.
    v_base := 'onb_' || acc.client_id || '_' || extract(epoch FROM now())::bigint;
    v_id := v_base;
    WHILE EXISTS (SELECT 1 FROM onboarding_plans WHERE plan_id = v_id) LOOP
        n := n + 1; v_id := v_base || '_' || n;
    END LOOP;

    SELECT sum(hours), count(*) INTO v_hours, v_ms FROM csmcp.onb_template(v_tier, v_cx, v_weeks);
    SELECT week INTO v_m3_week FROM csmcp.onb_template(v_tier, v_cx, v_weeks) WHERE code = 'M3';

    BEGIN
        INSERT INTO onboarding_plans (plan_id, client_id, name, product_tier, technical_complexity, team_size, start_date,
                                      target_date, status, timeline_weeks, ttfv_target_days, created_by)
        VALUES (v_id, acc.client_id, v_name, v_tier, v_cx, v_team, v_start, v_start + v_weeks * 7, 'draft', v_weeks,
                v_m3_week * 7, coalesce(nullif(principal, ''), 'anonymous'))
        RETURNING * INTO p;
    EXCEPTION WHEN unique_violation THEN
        -- a concurrent call created the open plan between our check and our insert
        SELECT * INTO other FROM onboarding_plans
        WHERE client_id = acc.client_id AND status IN ('draft', 'scheduled', 'in_progress', 'delayed') LIMIT 1;
        RAISE EXCEPTION 'client % already has an open onboarding plan % (status %); complete or cancel it first',
            acc.client_id, coalesce(other.plan_id, '(just created)'), coalesce(other.status, 'draft') USING ERRCODE = 'P0001';
    END;

    FOR tm IN SELECT * FROM csmcp.onb_template(v_tier, v_cx, v_weeks) LOOP
        v_mid := v_id || '_m' || tm.seq;
        INSERT INTO onboarding_milestones (milestone_id, plan_id, seq, name, week, estimated_hours, due_date, status,
                                           template_code, description, success_criteria)
        VALUES (v_mid, v_id, tm.seq, tm.name, tm.week, tm.hours, v_start + tm.week * 7, 'not_started', tm.code,
                tm.description, tm.criteria);
        INSERT INTO onboarding_tasks (milestone_id, title, due_date)
        SELECT v_mid, k.title, v_start + tm.week * 7 FROM unnest(tm.tasks) WITH ORDINALITY k(title, o) ORDER BY o;
        v_tasks := v_tasks + cardinality(tm.tasks);
    END LOOP;
    INSERT INTO onboarding_goals (plan_id, seq, kind, text)
    SELECT v_id, o, 'goal', btrim(g #>> '{}') FROM jsonb_array_elements(v_goals) WITH ORDINALITY e(g, o);
    INSERT INTO onboarding_goals (plan_id, seq, kind, text)
    SELECT v_id, o, 'success_criterion', btrim(g #>> '{}') FROM jsonb_array_elements(v_crit) WITH ORDINALITY e(g, o);

    IF v_team > 50 THEN
        recs := recs || to_jsonb(format('Team of %s users: train in cohorts of at most 50 and name a champion per cohort', v_team));
    END IF;
    IF v_cx = 'high' THEN
        recs := recs || to_jsonb('High technical complexity: assign a technical lead and hold the Technical Deep Dive before integration work'::text);
    END IF;
    IF v_tier = 'enterprise' THEN
        recs := recs || to_jsonb('Enterprise tier: secure an executive sponsor and schedule the Advanced Configuration sign-off'::text);
    END IF;
    IF v_weeks < v_ms THEN
        recs := recs || to_jsonb(format('%s milestones in %s weeks: several milestones share a week; check team capacity (%s estimated hours)',
                                        v_ms, v_weeks, v_hours));
    END IF;

    PERFORM csmcp.log_activity(acc.client_id, principal, 'create_onboarding_plan', 'onboarding_plan', v_id, NULL,
                               to_jsonb(p) || jsonb_build_object('milestones', v_ms, 'tasks', v_tasks));

    RETURN jsonb_build_object(
        'status', 'created',
        'summary', format('Draft onboarding plan %s for %s: %s milestones, %s tasks, %s estimated hours over %s weeks (%s to %s); first value targeted within %s days.',
                          v_id, acc.client_name, v_ms, v_tasks, v_hours, v_weeks, v_start, v_start + v_weeks * 7, v_m3_week * 7),
        'onboarding_plan', jsonb_build_object(
            'plan_id', v_id, 'client_id', acc.client_id, 'plan_name', v_name, 'status', p.status,
            'product_tier', v_tier, 'technical_complexity', v_cx, 'team_size', v_team, 'timeline_weeks', v_weeks,
            'start_date', v_start, 'target_completion_date', p.target_date, 'total_estimated_hours', v_hours,
            'completion_percentage', 0,
            'customer_goals', (SELECT jsonb_agg(text ORDER BY seq) FROM onboarding_goals WHERE plan_id = v_id AND kind = 'goal'),
            'success_criteria', coalesce((SELECT jsonb_agg(text ORDER BY seq) FROM onboarding_goals
                                          WHERE plan_id = v_id AND kind = 'success_criterion'), '[]'),
            'milestones', csmcp.onb_milestones_json(v_id)),
        'metrics', jsonb_build_object(
            'total_milestones', v_ms, 'total_tasks', v_tasks, 'total_estimated_hours', v_hours,
            'time_to_first_value_target_days', v_m3_week * 7,
            'complexity_score', CASE v_cx WHEN 'low' THEN 1 WHEN 'medium' THEN 2 ELSE 3 END,
            'tier_complexity', CASE v_tier WHEN 'starter' THEN 1 WHEN 'standard' THEN 2 WHEN 'professional' THEN 3 ELSE 4 END),
        'recommendations', recs,
        'next_steps', jsonb_build_array(
            format('Activate the plan and its automation triggers (activate_onboarding_automation, plan_id %s)', v_id),
            'Schedule the Core Training sessions (deliver_training_session)',
            'Track progress weekly (track_onboarding_progress)'));
END $$;

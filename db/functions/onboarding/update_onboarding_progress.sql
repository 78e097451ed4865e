-- update_onboarding_progress: the state machines of plans, milestones and tasks.
--   plan:      draft -> scheduled | in_progress | cancelled; scheduled -> in_progress | cancelled;
--              in_progress -> completed | delayed | cancelled; delayed -> in_progress | completed | cancelled;
--              completed and cancelled are final. completed needs every milestone completed or skipped.
--   milestone: not_started -> in_progress | blocked | skipped; in_progress -> completed | blocked | skipped;
--              blocked -> in_progress | skipped; completed and skipped are final. Only while the
--              plan is in_progress or delayed; blocked needs a blocker text.
--   task:      open -> done | blocked | skipped; blocked -> open | done | skipped; done and skipped final.
-- Completing a milestone closes its open tasks (done); when the last milestone is completed or
-- skipped the plan becomes completed (its time to value measured then is stored on it; an M3
-- completion refreshes its tier's benchmark). The plan row is locked first, so concurrent updates of one
-- plan serialise and the plan's completion is decided on what every committed update wrote.
CREATE OR REPLACE FUNCTION csmcp.onb_allowed(kind text, from_state text) RETURNS text[]
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE kind
        WHEN 'plan' THEN CASE from_state WHEN 'draft' THEN ARRAY['scheduled', 'in_progress', 'cancelled']
                                         WHEN 'scheduled' THEN ARRAY['in_progress', 'cancelled']
                                         WHEN 'in_progress' THEN ARRAY['completed', 'delayed', 'cancelled']
                                         WHEN 'delayed' THEN ARRAY['in_progress', 'completed', 'cancelled']
                                         ELSE ARRAY[]::text[] END
        WHEN 'milestone' THEN CASE from_state WHEN 'not_started' THEN ARRAY['in_progress', 'blocked', 'skipped']
                                              WHEN 'in_progress' THEN ARRAY['completed', 'blocked', 'skipped']
                                              WHEN 'blocked' THEN ARRAY['in_progress', 'skipped']
                                              ELSE ARRAY[]::text[] END
        ELSE CASE from_state WHEN 'open' THEN ARRAY['done', 'blocked', 'skipped']
                             WHEN 'blocked' THEN ARRAY['open', 'done', 'skipped']
                             ELSE ARRAY[]::text[] END
    END
$$;

CREATE OR REPLACE FUNCTION csmcp.onb_refuse(kind text, id text, from_state text, to_state text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE allowed text[] := csmcp.onb_allowed(kind, from_state);
BEGIN
    RAISE EXCEPTION '% % is %: cannot move to %; allowed from %: %', kind, id, from_state, to_state, from_state,
        CASE WHEN cardinality(allowed) = 0 THEN 'none (final state)' ELSE array_to_string(allowed, ', ') END
        USING ERRCODE = 'P0001';
END $$;

CREATE OR REPLACE FUNCTION csmcp.tool_update_onboarding_progress(args jsonb, principal text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    t date := csmcp.today();
    acc accounts := csmcp.require_account(csmcp.arg_text(args, 'client_id', NULL));
    p onboarding_plans := csmcp.onb_require_plan(acc.client_id, csmcp.arg_text(args, 'plan_id', NULL), true);
    v_pstat text := csmcp.arg_text(args, 'plan_status', NULL, ARRAY['scheduled', 'in_progress', 'completed', 'delayed', 'cancelled']);
    v_reason text := nullif(btrim(csmcp.arg_text(args, 'reason', NULL)), '');
    v_mid text := csmcp.arg_text(args, 'milestone_id', NULL);
    v_mstat text := csmcp.arg_text(args, 'milestone_status', NULL, ARRAY['in_progress', 'completed', 'blocked', 'skipped']);
    v_blocker text := nullif(btrim(csmcp.arg_text(args, 'blocker', NULL)), '');
    v_tid integer := csmcp.arg_int(args, 'task_id', NULL, 1, 2147483647);
    v_tstat text := csmcp.arg_text(args, 'task_status', NULL, ARRAY['open', 'done', 'blocked', 'skipped']);
    m onboarding_milestones;
    m_new onboarding_milestones;
    k onboarding_tasks;
    k_new onboarding_tasks;
    p_new onboarding_plans;
    changes jsonb := '[]';
    n_closed integer := 0;
    n_left integer;
    auto_done boolean := false;
    pending text;
BEGIN
    IF v_pstat IS NULL AND v_mid IS NULL AND v_tid IS NULL THEN
        PERFORM csmcp.invalid('nothing to update: give plan_status, milestone_id with milestone_status, or task_id with task_status');
    END IF;
    IF (v_mid IS NULL) <> (v_mstat IS NULL) THEN
        PERFORM csmcp.invalid('milestone_id and milestone_status go together');
    END IF;
    IF (v_tid IS NULL) <> (v_tstat IS NULL) THEN PERFORM csmcp.invalid('task_id and task_status go together'); END IF;
    IF v_blocker IS NOT NULL AND coalesce(v_mstat, '') <> 'blocked' AND coalesce(v_tstat, '') <> 'blocked' THEN
        PERFORM csmcp.invalid('blocker is only accepted with milestone_status or task_status blocked');
    END IF;
    IF (v_mstat = 'blocked' OR v_tstat = 'blocked') AND v_blocker IS NULL THEN
        PERFORM csmcp.invalid('blocker: say what blocks it (required with status blocked)');
    END IF;
    IF length(v_blocker) > 1000 OR length(v_reason) > 1000 THEN
        PERFORM csmcp.invalid('blocker and reason are limited to 1000 characters');
    END IF;

    -- Milestone first (it may complete the plan), then task, then an explicit plan status.
    IF v_mid IS NOT NULL THEN
        SELECT * INTO m FROM onboarding_milestones WHERE milestone_id = v_mid AND plan_id = p.plan_id FOR UPDATE;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'milestone % not found in onboarding plan %', v_mid, p.plan_id USING ERRCODE = 'P0002';
        END IF;
        IF p.status NOT IN ('in_progress', 'delayed') THEN
            RAISE EXCEPTION 'onboarding plan % is %: milestones change only while the plan is in_progress or delayed%',
                p.plan_id, p.status,
                CASE WHEN p.status IN ('draft', 'scheduled') THEN ' (activate it first: activate_onboarding_automation)' ELSE '' END
                USING ERRCODE = 'P0001';
        END IF;
        IF NOT v_mstat = ANY (csmcp.onb_allowed('milestone', m.status)) THEN
            PERFORM csmcp.onb_refuse('milestone', m.milestone_id, m.status, v_mstat);
        END IF;
        UPDATE onboarding_milestones
        SET status = v_mstat,
            started_on = CASE WHEN v_mstat = 'in_progress' THEN coalesce(started_on, t) ELSE started_on END,
            completed_on = CASE WHEN v_mstat = 'completed' THEN t END,
            blocker = CASE WHEN v_mstat = 'blocked' THEN v_blocker END
        WHERE milestone_id = m.milestone_id RETURNING * INTO m_new;
        IF v_mstat = 'completed' AND m.template_code = 'M3' THEN
            PERFORM csmcp.onb_refresh_benchmark(p.product_tier);
        END IF;
        IF v_mstat = 'completed' THEN
            UPDATE onboarding_tasks SET status = 'done', completed_at = now()
            WHERE milestone_id = m.milestone_id AND status = 'open';
            GET DIAGNOSTICS n_closed = ROW_COUNT;
        END IF;
        changes := changes || jsonb_build_object('entity', 'milestone', 'id', m.milestone_id, 'from', m.status, 'to', v_mstat,
                                                 'tasks_closed', n_closed);
        PERFORM csmcp.log_activity(acc.client_id, principal, 'update_onboarding_progress', 'onboarding_milestone', m.milestone_id,
                                   to_jsonb(m), to_jsonb(m_new) || jsonb_build_object('tasks_closed', n_closed));
        IF v_mstat IN ('completed', 'skipped') AND v_pstat IS NULL THEN
            SELECT count(*) INTO n_left FROM onboarding_milestones
            WHERE plan_id = p.plan_id AND status NOT IN ('completed', 'skipped');
            IF n_left = 0 THEN v_pstat := 'completed'; auto_done := true; END IF;
        END IF;
    END IF;

    IF v_tid IS NOT NULL THEN
        SELECT k1.* INTO k FROM onboarding_tasks k1 JOIN onboarding_milestones m1 USING (milestone_id)
        WHERE k1.task_id = v_tid AND m1.plan_id = p.plan_id FOR UPDATE OF k1;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'task % not found in onboarding plan %', v_tid, p.plan_id USING ERRCODE = 'P0002';
        END IF;
        IF p.status NOT IN ('in_progress', 'delayed') THEN
            RAISE EXCEPTION 'onboarding plan % is %: tasks change only while the plan is in_progress or delayed', p.plan_id, p.status
                USING ERRCODE = 'P0001';
        END IF;
        IF NOT v_tstat = ANY (csmcp.onb_allowed('task', k.status)) THEN
            PERFORM csmcp.onb_refuse('task', k.task_id::text, k.status, v_tstat);
        END IF;
        UPDATE onboarding_tasks SET status = v_tstat, completed_at = CASE WHEN v_tstat = 'done' THEN now() END,
                                    blocker = CASE WHEN v_tstat = 'blocked' THEN v_blocker END
        WHERE task_id = k.task_id RETURNING * INTO k_new;
        changes := changes || jsonb_build_object('entity', 'task', 'id', k.task_id, 'from', k.status, 'to', v_tstat);
        PERFORM csmcp.log_activity(acc.client_id, principal, 'update_onboarding_progress', 'onboarding_task', k.task_id::text,
                                   to_jsonb(k), to_jsonb(k_new));
    END IF;

    IF v_pstat IS NOT NULL AND v_pstat IS DISTINCT FROM p.status THEN
        IF NOT v_pstat = ANY (csmcp.onb_allowed('plan', p.status)) THEN
            PERFORM csmcp.onb_refuse('plan', p.plan_id, p.status, v_pstat);
        END IF;
        IF v_pstat = 'completed' THEN
            SELECT string_agg(milestone_id || ' (' || status || ')', ', ' ORDER BY seq) INTO pending
            FROM onboarding_milestones WHERE plan_id = p.plan_id AND status NOT IN ('completed', 'skipped');
            IF pending IS NOT NULL THEN
                RAISE EXCEPTION 'onboarding plan % cannot be completed: milestones not completed or skipped: %', p.plan_id, pending
                    USING ERRCODE = 'P0001';
            END IF;
        END IF;
        UPDATE onboarding_plans
        SET status = v_pstat,
            completed_on = CASE WHEN v_pstat = 'completed' THEN t ELSE completed_on END,
            cancelled_on = CASE WHEN v_pstat = 'cancelled' THEN t ELSE cancelled_on END,
            status_reason = CASE WHEN auto_done THEN 'every milestone completed or skipped' ELSE coalesce(v_reason, status_reason) END,
            updated_at = now()
        WHERE plan_id = p.plan_id RETURNING * INTO p_new;
        -- The account's time to value as measured at completion (read by optimize_onboarding_process).
        IF v_pstat = 'completed' THEN
            UPDATE onboarding_plans SET ttv_days = (x ->> 'ttv_days')::integer, ttv_reached = (x ->> 'reached')::boolean
            FROM (SELECT csmcp.onb_ttv(acc.client_id) AS x) q
            WHERE plan_id = p.plan_id RETURNING onboarding_plans.* INTO p_new;
        END IF;
        -- Starting a plan by hand starts its first milestone, as activation does.
        IF v_pstat = 'in_progress' AND p.status IN ('draft', 'scheduled') THEN
            UPDATE onboarding_milestones SET status = 'in_progress', started_on = t
            WHERE plan_id = p.plan_id AND seq = 1 AND status = 'not_started';
        END IF;
        changes := changes || jsonb_build_object('entity', 'plan', 'id', p.plan_id, 'from', p.status, 'to', v_pstat,
                                                 'automatic', auto_done);
        PERFORM csmcp.log_activity(acc.client_id, principal, 'update_onboarding_progress', 'onboarding_plan', p.plan_id,
                                   jsonb_build_object('status', p.status, 'completed_on', p.completed_on, 'cancelled_on', p.cancelled_on,
                                                      'status_reason', p.status_reason),
                                   jsonb_build_object('status', p_new.status, 'completed_on', p_new.completed_on,
                                                      'cancelled_on', p_new.cancelled_on, 'status_reason', p_new.status_reason));
    ELSE
        SELECT * INTO p_new FROM onboarding_plans WHERE plan_id = p.plan_id;
    END IF;

    RETURN jsonb_build_object(
        'status', 'updated',
        'summary', format('Plan %s (%s): %s.', p.plan_id, p_new.status,
                          (SELECT string_agg(format('%s %s %s -> %s', c ->> 'entity', c ->> 'id', c ->> 'from', c ->> 'to'), '; ')
                           FROM jsonb_array_elements(changes) c)),
        'plan_id', p.plan_id, 'client_id', acc.client_id, 'plan_status', p_new.status,
        'changes', changes,
        'milestones', csmcp.onb_milestones_json(p.plan_id));
END $$;

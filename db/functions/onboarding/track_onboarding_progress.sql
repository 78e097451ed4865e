-- track_onboarding_progress: one plan's progress from its rows (milestones, tasks, goals), the
-- account's training attendance and usage, the §1.3 risk thresholds and a projection from the
-- pace so far.
CREATE OR REPLACE FUNCTION csmcp.tool_track_onboarding_progress(args jsonb, principal text)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
    t date := csmcp.today();
    acc accounts := csmcp.require_account(csmcp.arg_text(args, 'client_id', NULL));
    v_plan text := csmcp.arg_text(args, 'plan_id', NULL);
    v_team boolean := csmcp.arg_bool(args, 'include_team_metrics', true);
    v_risk boolean := csmcp.arg_bool(args, 'include_risk_analysis', true);
    p onboarding_plans;
    c contracts := csmcp.active_contract(acc.client_id);
    ms record;
    tk record;
    tr record;
    v_completion numeric;
    v_task_rate numeric;
    v_train_rate numeric;
    v_activation numeric;
    v_peak integer;
    v_elapsed integer;
    v_pace numeric;
    v_remaining integer;
    v_projected date;
    v_proj_basis text;
    overdue jsonb;
    blockers jsonb;
    risks jsonb := '[]';
    recs jsonb := '[]';
    certified integer;
BEGIN
    IF v_plan IS NOT NULL THEN
        p := csmcp.onb_require_plan(acc.client_id, v_plan, false);
    ELSE
        -- the open plan, else the most recently created one
        SELECT * INTO p FROM onboarding_plans WHERE client_id = acc.client_id
        ORDER BY (status IN ('draft', 'scheduled', 'in_progress', 'delayed')) DESC, created_at DESC, plan_id DESC LIMIT 1;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'client % has no onboarding plan (create one with create_onboarding_plan)', acc.client_id
                USING ERRCODE = 'P0002';
        END IF;
    END IF;

    SELECT count(*) AS total, count(*) FILTER (WHERE status = 'completed') AS completed,
           count(*) FILTER (WHERE status = 'in_progress') AS in_progress, count(*) FILTER (WHERE status = 'not_started') AS not_started,
           count(*) FILTER (WHERE status = 'blocked') AS blocked, count(*) FILTER (WHERE status = 'skipped') AS skipped,
           count(*) FILTER (WHERE status = 'completed' AND completed_on <= due_date) AS on_time,
           coalesce(sum(estimated_hours), 0) AS hours, coalesce(sum(estimated_hours) FILTER (WHERE status = 'completed'), 0) AS hours_done
    INTO ms FROM onboarding_milestones WHERE plan_id = p.plan_id;
    SELECT count(*) AS total, count(*) FILTER (WHERE k.status = 'done') AS done, count(*) FILTER (WHERE k.status = 'blocked') AS blocked,
           count(*) FILTER (WHERE k.status = 'open' AND k.due_date < t) AS overdue
    INTO tk FROM onboarding_tasks k JOIN onboarding_milestones m USING (milestone_id) WHERE m.plan_id = p.plan_id;
    v_completion := csmcp.onb_rate(ms.completed, ms.total);
    v_task_rate := csmcp.onb_rate(tk.done, tk.total);

    SELECT coalesce(jsonb_agg(jsonb_build_object('milestone_id', milestone_id, 'name', name, 'status', status, 'due_date', due_date,
                                                 'days_overdue', t - due_date) ORDER BY seq), '[]')
    INTO overdue FROM onboarding_milestones
    WHERE plan_id = p.plan_id AND status NOT IN ('completed', 'skipped') AND due_date < t;
    SELECT coalesce(jsonb_agg(b.x ORDER BY b.seq, b.task_id NULLS FIRST), '[]') INTO blockers FROM (
        SELECT m.seq, NULL::bigint AS task_id,
               jsonb_build_object('milestone_id', m.milestone_id, 'name', m.name, 'task_id', NULL, 'blocker', m.blocker) AS x
        FROM onboarding_milestones m WHERE m.plan_id = p.plan_id AND m.status = 'blocked'
        UNION ALL
        SELECT m.seq, k.task_id,
               jsonb_build_object('milestone_id', m.milestone_id, 'name', k.title, 'task_id', k.task_id, 'blocker', k.blocker)
        FROM onboarding_tasks k JOIN onboarding_milestones m USING (milestone_id)
        WHERE m.plan_id = p.plan_id AND k.status = 'blocked') b;

    -- Training among the account's users: invitees of its sessions that have taken place;
    -- a user completed training when they attended a session and did not fail its assessment.
    SELECT count(*) AS invited, count(*) FILTER (WHERE u.completed) AS completed, count(*) FILTER (WHERE u.attended) AS attended,
           (SELECT count(*) FROM training_sessions s WHERE s.client_id = acc.client_id AND s.status = 'completed'
              AND EXISTS (SELECT 1 FROM training_attendance a WHERE a.session_id = s.session_id)) AS sessions
    INTO tr
    FROM (SELECT lower(a.email) AS email, bool_or(a.attended AND a.passed IS NOT FALSE) AS completed, bool_or(a.attended) AS attended
          FROM training_sessions s JOIN training_attendance a USING (session_id)
          WHERE s.client_id = acc.client_id AND s.status = 'completed'
          GROUP BY 1) u;
    v_train_rate := csmcp.onb_rate(tr.completed, tr.invited);

    -- Activation: peak daily active users of the last 30 days / licensed seats.
    SELECT max(active_users) INTO v_peak FROM usage_daily WHERE client_id = acc.client_id AND day > t - 30 AND day <= t;
    IF c.licensed_seats IS NOT NULL THEN
        v_activation := least(1, csmcp.onb_rate(coalesce(v_peak, 0), c.licensed_seats));
    END IF;

    -- Projection: pace = completed milestones / days since the start; remaining = milestones
    -- neither completed nor skipped; projected = today + ceil(remaining / pace).
    v_elapsed := t - p.start_date;
    v_remaining := ms.total - ms.completed - ms.skipped;
    IF p.status = 'completed' THEN
        v_projected := p.completed_on; v_proj_basis := 'completed';
    ELSIF p.status = 'cancelled' THEN
        v_proj_basis := 'cancelled: no projection';
    ELSIF v_remaining = 0 THEN
        v_projected := t; v_proj_basis := 'every milestone completed or skipped';
    ELSIF ms.completed = 0 OR v_elapsed <= 0 THEN
        v_proj_basis := 'no milestone completed yet: no pace to project from';
    ELSE
        v_pace := ms.completed::numeric / v_elapsed;
        v_projected := t + ceil(v_remaining / v_pace)::integer;
        v_proj_basis := format('%s milestone(s) completed in %s day(s): %s days per milestone, %s remaining',
                               ms.completed, v_elapsed, round(v_elapsed::numeric / ms.completed, 1), v_remaining);
    END IF;

    IF v_risk THEN
        IF v_train_rate < 0.85 THEN
            risks := risks || jsonb_build_object('risk', 'low_training_completion', 'severity', CASE WHEN v_train_rate < 0.5 THEN 'high' ELSE 'medium' END,
                                                 'value', v_train_rate, 'threshold', 0.85);
        END IF;
        IF v_activation < 0.80 THEN
            risks := risks || jsonb_build_object('risk', 'low_activation', 'severity', CASE WHEN v_activation < 0.4 THEN 'high' ELSE 'medium' END,
                                                 'value', v_activation, 'threshold', 0.80);
        END IF;
        IF jsonb_array_length(overdue) > 0 THEN
            risks := risks || jsonb_build_object('risk', 'overdue_milestones', 'severity', CASE WHEN jsonb_array_length(overdue) > 1 THEN 'high' ELSE 'medium' END,
                                                 'value', jsonb_array_length(overdue), 'threshold', 0);
        END IF;
        IF ms.blocked > 0 THEN
            risks := risks || jsonb_build_object('risk', 'blocked_milestones', 'severity', 'high', 'value', ms.blocked, 'threshold', 0);
        END IF;
        IF v_projected > p.target_date AND p.status NOT IN ('completed', 'cancelled') THEN
            risks := risks || jsonb_build_object('risk', 'projected_late', 'severity', CASE WHEN v_projected - p.target_date > 14 THEN 'high' ELSE 'medium' END,
                                                 'value', v_projected - p.target_date, 'threshold', 0);
        END IF;
        IF v_train_rate IS NULL THEN
            recs := recs || to_jsonb('No training session has taken place yet: schedule Core Training (deliver_training_session)'::text);
        ELSIF v_train_rate < 0.85 THEN
            recs := recs || to_jsonb(format('%s of %s invited users completed training: follow up with the others', tr.completed, tr.invited));
        END IF;
        IF jsonb_array_length(overdue) > 0 THEN
            recs := recs || to_jsonb(format('%s milestone(s) overdue: agree new dates or mark the plan delayed', jsonb_array_length(overdue)));
        END IF;
        IF ms.blocked > 0 THEN
            recs := recs || to_jsonb(format('%s blocked milestone(s): remove the blockers listed', ms.blocked));
        END IF;
    END IF;
    SELECT count(DISTINCT lower(user_email)) INTO certified FROM certifications WHERE client_id = acc.client_id AND revoked_at IS NULL;

    RETURN jsonb_build_object(
        'summary', format('Plan %s (%s): %s of %s milestones completed (%s%%), %s of %s tasks done; %s overdue, %s blocked; projected completion %s (target %s).',
                          p.plan_id, p.status, ms.completed, ms.total, coalesce(round(v_completion * 100, 1)::text, '0'), tk.done, tk.total,
                          jsonb_array_length(overdue), ms.blocked, coalesce(v_projected::text, 'n/a'), p.target_date),
        'client_id', acc.client_id,
        'progress_report', jsonb_build_object(
            'plan_id', p.plan_id, 'plan_name', p.name, 'status', p.status, 'start_date', p.start_date,
            'target_completion_date', p.target_date, 'completed_on', p.completed_on, 'days_elapsed', greatest(v_elapsed, 0),
            'days_remaining_to_target', p.target_date - t,
            'completion_rate', v_completion, 'completion_percentage', round(coalesce(v_completion, 0) * 100, 1),
            'task_completion_rate', v_task_rate, 'estimated_hours', ms.hours, 'completed_hours', ms.hours_done,
            'automation_enabled', p.automation_enabled),
        'milestones_summary', jsonb_build_object(
            'total', ms.total, 'completed', ms.completed, 'in_progress', ms.in_progress, 'not_started', ms.not_started,
            'blocked', ms.blocked, 'skipped', ms.skipped, 'completed_on_time', ms.on_time, 'completion_rate', v_completion),
        'tasks_summary', jsonb_build_object('total', tk.total, 'done', tk.done, 'blocked', tk.blocked, 'overdue', tk.overdue,
                                            'completion_rate', v_task_rate),
        'milestone_status', csmcp.onb_milestones_json(p.plan_id),
        'overdue_milestones', overdue,
        'blockers', blockers,
        'training_metrics', jsonb_build_object(
            'sessions_held', tr.sessions, 'users_invited', tr.invited, 'users_attended', tr.attended,
            'users_completed', tr.completed, 'training_completion_rate', v_train_rate),
        'engagement_metrics', jsonb_build_object(
            'licensed_seats', c.licensed_seats, 'peak_daily_active_users_30d', v_peak, 'activation_rate', v_activation),
        'team_metrics', CASE WHEN v_team THEN jsonb_build_object(
            'team_size', p.team_size, 'users_trained', tr.completed, 'users_certified', certified,
            'trained_share_of_team', csmcp.onb_rate(tr.completed, p.team_size)) END,
        'success_criteria_status', (SELECT coalesce(jsonb_agg(jsonb_build_object('kind', kind, 'text', text, 'achieved', achieved)
                                                              ORDER BY kind, seq), '[]')
                                    FROM onboarding_goals WHERE plan_id = p.plan_id),
        'risks', CASE WHEN v_risk THEN risks END,
        'projection', jsonb_build_object('projected_completion_date', v_projected, 'basis', v_proj_basis,
                                         'milestones_per_day', round(v_pace, 4),
                                         'on_track', CASE WHEN v_projected IS NULL THEN NULL ELSE v_projected <= p.target_date END),
        'recommendations', recs);
END $$;

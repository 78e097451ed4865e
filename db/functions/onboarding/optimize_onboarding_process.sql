-- optimize_onboarding_process: portfolio analysis of the onboarding plans completed in the
-- last analysis_period_days: completion rate, time to value, on-time rate per milestone,
-- bottlenecks and what on-time plans share. Reads only plans closed in the window (index
-- onboarding_plans_completed_idx / _cancelled_idx) and their milestones.
CREATE OR REPLACE FUNCTION csmcp.tool_optimize_onboarding_process(args jsonb, principal text)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
    t date := csmcp.today();
    v_days integer := csmcp.arg_int(args, 'analysis_period_days', 90, 7, 365);
    v_min integer := csmcp.arg_int(args, 'min_completed_onboardings', 5, 1, 100000);
    v_inprog boolean := csmcp.arg_bool(args, 'include_in_progress', true);
    v_from date := t - v_days;
    n_done integer;
    n_cancel integer;
    n_ontime integer;
    v_rate numeric;
    ttv record;
    by_ms jsonb;
    bottl jsonb;
    factors jsonb;
    inprog jsonb;
    recs jsonb := '[]';
BEGIN
    SELECT count(*) FILTER (WHERE status = 'completed'), count(*) FILTER (WHERE status = 'cancelled'),
           count(*) FILTER (WHERE status = 'completed' AND completed_on <= target_date)
    INTO n_done, n_cancel, n_ontime
    FROM onboarding_plans
    WHERE (status = 'completed' AND completed_on > v_from AND completed_on <= t)
       OR (status = 'cancelled' AND cancelled_on > v_from AND cancelled_on <= t);
    v_rate := csmcp.onb_rate(n_done, n_done + n_cancel);

    IF v_inprog THEN
        SELECT jsonb_build_object(
                   'open_plans', count(*),
                   'delayed', count(*) FILTER (WHERE p.status = 'delayed'),
                   'with_overdue_milestones', count(*) FILTER (WHERE EXISTS (
                       SELECT 1 FROM onboarding_milestones m WHERE m.plan_id = p.plan_id AND m.status NOT IN ('completed', 'skipped')
                       AND m.due_date < t)),
                   'with_blocked_milestones', count(*) FILTER (WHERE EXISTS (
                       SELECT 1 FROM onboarding_milestones m WHERE m.plan_id = p.plan_id AND m.status = 'blocked')),
                   'past_target_date', count(*) FILTER (WHERE p.target_date < t))
        INTO inprog FROM onboarding_plans p WHERE p.status IN ('in_progress', 'delayed');
    END IF;

    IF n_done < v_min THEN
        RETURN jsonb_build_object(
            'status', 'insufficient_data',
            'summary', format('Not enough data: %s onboarding plan(s) completed in the last %s days, %s needed (min_completed_onboardings).',
                              n_done, v_days, v_min),
            'analysis_period', jsonb_build_object('from', v_from + 1, 'to', t, 'days', v_days),
            'analysis_data', jsonb_build_object('completed_plans', n_done, 'cancelled_plans', n_cancel,
                                                'min_completed_onboardings', v_min, 'completion_rate', v_rate),
            'in_progress', inprog);
    END IF;

    -- Time to value of the completed plans, as measured when each was completed (stored on the plan).
    SELECT count(*) AS accounts, count(*) FILTER (WHERE ttv_reached) AS reached,
           round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ttv_days) FILTER (WHERE ttv_reached)::numeric, 1) AS median,
           round(percentile_cont(0.9) WITHIN GROUP (ORDER BY ttv_days) FILTER (WHERE ttv_reached)::numeric, 1) AS p90,
           round(avg(ttv_days) FILTER (WHERE ttv_reached), 1) AS mean
    INTO ttv
    FROM onboarding_plans WHERE status = 'completed' AND completed_on > v_from AND completed_on <= t;

    -- On-time rate per template milestone over the completed plans' completed milestones.
    WITH pm AS (
        SELECT m.template_code, m.name, m.completed_on, m.due_date
        FROM onboarding_plans p JOIN onboarding_milestones m USING (plan_id)
        WHERE p.status = 'completed' AND p.completed_on > v_from AND p.completed_on <= t AND m.status = 'completed'
    ), g AS (
        SELECT coalesce(template_code, name) AS code, min(name) AS name, count(*) AS completed,
               count(*) FILTER (WHERE completed_on <= due_date) AS on_time,
               count(*) FILTER (WHERE completed_on > due_date) AS late,
               round(avg(completed_on - due_date) FILTER (WHERE completed_on > due_date), 1) AS avg_days_late
        FROM pm GROUP BY 1
    )
    SELECT jsonb_agg(jsonb_build_object('milestone', code, 'name', name, 'completed', completed, 'on_time', on_time, 'late', late,
                                        'on_time_rate', csmcp.onb_rate(on_time, completed), 'avg_days_late', avg_days_late) ORDER BY code),
           coalesce((SELECT jsonb_agg(jsonb_build_object('milestone', code, 'name', name, 'late', late,
                                                         'late_rate', csmcp.onb_rate(late, completed), 'avg_days_late', avg_days_late)
                                      ORDER BY late::numeric / completed DESC, late DESC, code)
                     FROM (SELECT * FROM g WHERE late > 0 ORDER BY late::numeric / completed DESC, late DESC, code LIMIT 3) b), '[]')
    INTO by_ms, bottl FROM g;

    -- What on-time plans share: on-time rate per tier, complexity and team-size band.
    WITH cp AS (
        SELECT product_tier, technical_complexity,
               CASE WHEN team_size <= 10 THEN '1-10' WHEN team_size <= 50 THEN '11-50' WHEN team_size <= 200 THEN '51-200' ELSE '201+' END AS band,
               completed_on <= target_date AS on_time
        FROM onboarding_plans WHERE status = 'completed' AND completed_on > v_from AND completed_on <= t
    )
    SELECT jsonb_build_object(
        'by_tier', (SELECT jsonb_agg(jsonb_build_object('tier', product_tier, 'plans', n, 'on_time', k, 'on_time_rate', csmcp.onb_rate(k, n))
                                     ORDER BY array_position(ARRAY['starter', 'standard', 'professional', 'enterprise'], product_tier))
                    FROM (SELECT product_tier, count(*) n, count(*) FILTER (WHERE on_time) k FROM cp GROUP BY 1) a),
        'by_complexity', (SELECT jsonb_agg(jsonb_build_object('technical_complexity', technical_complexity, 'plans', n, 'on_time', k,
                                                              'on_time_rate', csmcp.onb_rate(k, n))
                                           ORDER BY array_position(ARRAY['low', 'medium', 'high'], technical_complexity))
                          FROM (SELECT technical_complexity, count(*) n, count(*) FILTER (WHERE on_time) k FROM cp GROUP BY 1) a),
        'by_team_size', (SELECT jsonb_agg(jsonb_build_object('team_size', band, 'plans', n, 'on_time', k, 'on_time_rate', csmcp.onb_rate(k, n))
                                          ORDER BY array_position(ARRAY['1-10', '11-50', '51-200', '201+'], band))
                         FROM (SELECT band, count(*) n, count(*) FILTER (WHERE on_time) k FROM cp GROUP BY 1) a))
    INTO factors;

    IF v_rate < 0.80 THEN
        recs := recs || to_jsonb(format('Completion rate %s is below 0.80: review why %s plan(s) were cancelled', v_rate, n_cancel));
    END IF;
    IF ttv.median > 30 THEN
        recs := recs || to_jsonb(format('Median time to value %s days exceeds 30: move first-value work earlier in the template', ttv.median));
    END IF;
    IF jsonb_array_length(bottl) > 0 AND (bottl -> 0 ->> 'late_rate')::numeric > 0.3 THEN
        recs := recs || to_jsonb(format('%s is late in %s of completed plans (average %s days late): add capacity or time to it',
                                        bottl -> 0 ->> 'name', bottl -> 0 ->> 'late_rate', bottl -> 0 ->> 'avg_days_late'));
    END IF;

    RETURN jsonb_build_object(
        'status', 'ok',
        'summary', format('%s plans completed and %s cancelled in the last %s days (completion rate %s); %s on time; median time to value %s days (p90 %s).',
                          n_done, n_cancel, v_days, v_rate, n_ontime, coalesce(ttv.median::text, 'n/a'), coalesce(ttv.p90::text, 'n/a')),
        'analysis_period', jsonb_build_object('from', v_from + 1, 'to', t, 'days', v_days),
        'analysis_data', jsonb_build_object('completed_plans', n_done, 'cancelled_plans', n_cancel, 'on_time_plans', n_ontime,
                                            'min_completed_onboardings', v_min),
        'success_metrics', jsonb_build_object('completion_rate', v_rate, 'on_time_plan_rate', csmcp.onb_rate(n_ontime, n_done)),
        'time_to_value_analysis', jsonb_build_object('plans', ttv.accounts, 'plans_reached', ttv.reached,
                                                     'median_days', ttv.median, 'p90_days', ttv.p90, 'mean_days', ttv.mean),
        'milestone_on_time', coalesce(by_ms, '[]'),
        'bottlenecks', bottl,
        'success_factors', factors,
        'in_progress', inprog,
        'optimization_recommendations', recs);
END $$;

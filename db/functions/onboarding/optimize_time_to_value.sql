-- optimize_time_to_value: the account's measured time to value (csmcp.onb_ttv) against a
-- target, with the original's variance math on the real value, and peer benchmarks from
-- milestone data.
CREATE OR REPLACE FUNCTION csmcp.tool_optimize_time_to_value(args jsonb, principal text)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
    t date := csmcp.today();
    acc accounts := csmcp.require_account(csmcp.arg_text(args, 'client_id', NULL));
    v_override integer := csmcp.arg_int(args, 'current_time_to_value_days', NULL, 1, 365);
    v_target_arg integer := csmcp.arg_int(args, 'target_time_to_value_days', NULL, 1, 365);
    v_bench boolean := csmcp.arg_bool(args, 'include_benchmarks', true);
    m jsonb := csmcp.onb_ttv(acc.client_id);
    p onboarding_plans;
    v_target integer;
    v_target_src text;
    v_current integer;
    v_current_src text;
    v_var integer;
    v_pct numeric;
    v_status text;
    bench jsonb;
    strat jsonb := '[]';
    v_m2 onboarding_milestones;
    v_peak numeric;
BEGIN
    SELECT * INTO p FROM onboarding_plans WHERE client_id = acc.client_id AND ttfv_target_days IS NOT NULL
    ORDER BY (status IN ('draft', 'scheduled', 'in_progress', 'delayed')) DESC, created_at DESC LIMIT 1;
    IF v_target_arg IS NOT NULL THEN
        v_target := v_target_arg; v_target_src := 'argument';
    ELSIF p.plan_id IS NOT NULL AND p.ttfv_target_days > 0 THEN
        v_target := p.ttfv_target_days; v_target_src := 'plan ' || p.plan_id || ' (M3 week x 7)';
    ELSE
        v_target := 21; v_target_src := 'default (21 days)';
    END IF;
    IF v_override IS NOT NULL THEN
        v_current := v_override; v_current_src := 'argument (what-if; measured value shown in measurement)';
    ELSIF (m ->> 'reached')::boolean THEN
        v_current := (m ->> 'ttv_days')::integer; v_current_src := 'measured';
    ELSE
        v_current := (m ->> 'days_so_far')::integer; v_current_src := 'days so far (value not reached)';
    END IF;
    v_var := v_current - v_target;
    v_pct := round(v_var::numeric / v_target * 100, 1);
    v_status := CASE WHEN v_override IS NULL AND NOT (m ->> 'reached')::boolean
                     THEN CASE WHEN v_var > 0 THEN 'not_reached_over_target' ELSE 'not_reached' END
                     WHEN v_var > 0 THEN 'above_target' ELSE 'on_target' END;

    IF v_bench THEN
        -- Days from plan start to M3 completion over the completed M3 milestones of plans of the
        -- same tier (onboarding_ttv_benchmarks, refreshed on each M3 completion).
        SELECT jsonb_build_object(
                   'basis', 'days from plan start to M3 (Integration & First Value) completion, plans of tier ' || acc.tier,
                   'plans', b.plans, 'median_days', b.median_days, 'p25_days', b.p25_days, 'p75_days', b.p75_days,
                   'refreshed_at', b.refreshed_at)
        INTO bench FROM onboarding_ttv_benchmarks b WHERE b.product_tier = acc.tier;
        IF bench IS NULL THEN
            bench := jsonb_build_object('basis', 'no completed M3 milestone of a ' || acc.tier || ' plan yet', 'plans', 0);
        END IF;
    END IF;

    -- Strategies from the account's own rows.
    IF NOT (m ->> 'reached')::boolean THEN
        SELECT mm.* INTO v_m2 FROM onboarding_milestones mm JOIN onboarding_plans pp USING (plan_id)
        WHERE pp.client_id = acc.client_id AND mm.template_code = 'M3' AND mm.status IN ('not_started', 'in_progress', 'blocked')
        ORDER BY pp.created_at DESC LIMIT 1;
        IF v_m2.milestone_id IS NOT NULL THEN
            strat := strat || jsonb_build_object('strategy', 'finish_first_value_milestone',
                'reason', format('M3 %s is %s (due %s)', v_m2.milestone_id, v_m2.status, v_m2.due_date));
        ELSE
            strat := strat || jsonb_build_object('strategy', 'create_onboarding_plan',
                'reason', 'no open Integration & First Value milestone: nothing tracks first value');
        END IF;
        IF (m ->> 'licensed_seats') IS NOT NULL THEN
            SELECT max(active_users) INTO v_peak FROM usage_daily WHERE client_id = acc.client_id AND day > t - 30;
            strat := strat || jsonb_build_object('strategy', 'drive_seat_activation',
                'reason', format('peak daily active users in the last 30 days %s of %s seats; value needs %s',
                                 coalesce(v_peak, 0), m ->> 'licensed_seats', ceil((m ->> 'licensed_seats')::numeric / 2)));
        END IF;
    ELSIF v_var > 0 THEN
        strat := strat || jsonb_build_object('strategy', 'review_onboarding_template',
            'reason', format('value took %s days, %s over the %s-day target', v_current, v_var, v_target));
    END IF;

    RETURN jsonb_build_object(
        'summary', CASE WHEN (m ->> 'reached')::boolean
                        THEN format('%s reached first value on %s (%s) after %s days; target %s days: variance %s days (%s%%), %s.',
                                    acc.client_name, m ->> 'value_date', m ->> 'value_basis', m ->> 'ttv_days', v_target, v_var, v_pct, v_status)
                        ELSE format('%s has not reached first value: %s days since %s; target %s days (variance so far %s days, %s%%).',
                                    acc.client_name, m ->> 'days_so_far', m ->> 'start_date', v_target, v_var, v_pct) END,
        'client_id', acc.client_id,
        'ttv_analysis', jsonb_build_object(
            'current_time_to_value_days', v_current, 'current_source', v_current_src,
            'target_time_to_value_days', v_target, 'target_source', v_target_src,
            'variance_days', v_var, 'variance_percentage', v_pct, 'status', v_status,
            'value_reached', (m ->> 'reached')::boolean),
        'measurement', m,
        'value_definitions', jsonb_build_array(
            jsonb_build_object('name', 'seat_activation', 'rule', 'first day with daily active users >= 50% of the first contract''s licensed seats',
                               'reached_on', m -> 'first_half_seats_active_day'),
            jsonb_build_object('name', 'first_value_milestone', 'rule', 'completion of an M3 milestone (Integration & First Value)',
                               'reached_on', m -> 'm3_completed_on')),
        'benchmarks', bench,
        'optimization_strategies', strat);
END $$;

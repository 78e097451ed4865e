-- _lib.sql - helpers shared by the onboarding & training tools (issue 15). Tables: migration
-- 0001 (plans, milestones, tasks, goals, modules, sessions, attendance, certifications) and
-- 0230_onboarding.sql. Rules stated here are documented in each tool's JSON "rules".

-- A rate num/den rounded to 3 decimals; NULL when there is nothing to divide by.
CREATE OR REPLACE FUNCTION csmcp.onb_rate(num numeric, den numeric) RETURNS numeric
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN den IS NULL OR den = 0 THEN NULL ELSE round(num / den, 3) END
$$;

CREATE OR REPLACE FUNCTION csmcp.onb_email_ok(e text) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT e ~ '^[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\.[a-zA-Z]{2,}$' AND length(e) <= 254
$$;

-- The plan of an account, optionally locked FOR UPDATE; P0002 when it does not exist or belongs
-- to another account (one message either way: a caller learns nothing about other accounts).
CREATE OR REPLACE FUNCTION csmcp.onb_require_plan(p_client_id text, p_plan_id text, p_lock boolean)
RETURNS onboarding_plans LANGUAGE plpgsql AS $$
DECLARE p onboarding_plans;
BEGIN
    IF p_plan_id IS NULL OR p_plan_id = '' THEN PERFORM csmcp.invalid('plan_id is required'); END IF;
    IF p_plan_id !~ '^onb_[A-Za-z0-9_-]{1,160}$' THEN
        PERFORM csmcp.invalid('plan_id must look like onb_<client_id>_<n>');
    END IF;
    IF p_lock THEN
        SELECT * INTO p FROM onboarding_plans WHERE plan_id = p_plan_id AND client_id = p_client_id FOR UPDATE;
    ELSE
        SELECT * INTO p FROM onboarding_plans WHERE plan_id = p_plan_id AND client_id = p_client_id;
    END IF;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'onboarding plan % not found for client %', p_plan_id, p_client_id USING ERRCODE = 'P0002';
    END IF;
    RETURN p;
END $$;

-- The plan template (create_onboarding_plan): M1..M4 always, M5 for enterprise, M6 for high
-- complexity, in that order; n milestones, milestone i (1-based) lands in week ceil(i * T / n)
-- of a T-week timeline.
CREATE OR REPLACE FUNCTION csmcp.onb_template(p_tier text, p_complexity text, p_weeks integer)
RETURNS TABLE (seq integer, code text, name text, description text, hours integer, week integer,
               criteria text, tasks text[])
LANGUAGE sql IMMUTABLE AS $$
    WITH t(code, name, description, hours, criteria, tasks, included) AS (VALUES
        ('M1', 'Kickoff & Setup', 'Kickoff meeting, account provisioning and goal confirmation', 8,
         'Kickoff held and every planned user provisioned',
         ARRAY['Hold the kickoff meeting', 'Provision users and roles', 'Confirm goals and success criteria'], true),
        ('M2', 'Core Training', 'Core product training for administrators and end users', 12,
         '80% of users completed training',
         ARRAY['Schedule the training sessions', 'Train the administrators', 'Train the end users'], true),
        ('M3', 'Integration & First Value', 'Primary integration connected and the first business outcome reached', 16,
         'First value milestone reached',
         ARRAY['Connect the primary integration', 'Import the initial data', 'Reach the first value milestone'], true),
        ('M4', 'Optimization & Success', 'Adoption review, configuration tuning and onboarding completion review', 10,
         'Onboarding completion review held',
         ARRAY['Review usage and adoption', 'Tune the configuration', 'Hold the completion review'], true),
        ('M5', 'Advanced Configuration', 'Enterprise configuration: SSO, permissions and advanced workflows', 20,
         'Enterprise configuration signed off',
         ARRAY['Configure SSO and permissions', 'Set up advanced workflows', 'Complete the security review'],
         p_tier = 'enterprise'),
        ('M6', 'Technical Deep Dive', 'Architecture review and custom integration design for a complex setup', 24,
         'Architecture review signed off',
         ARRAY['Hold the architecture review', 'Design the custom integrations', 'Validate performance'],
         p_complexity = 'high')),
    k AS (SELECT t.*, row_number() OVER (ORDER BY t.code)::integer AS i, count(*) OVER ()::integer AS n
          FROM t WHERE included)
    SELECT i, code, name, description, hours, ceil(i::numeric * p_weeks / n)::integer, criteria, tasks FROM k ORDER BY i
$$;

-- Time to value of an account (optimize_time_to_value, optimize_onboarding_process):
-- start = start date of the account's first contract (else the account's creation date, UTC);
-- value date = the earlier of (a) the first day on or after the start with daily active users
-- >= 50% of that contract's licensed seats and (b) the completion date of an M3 milestone
-- ("Integration & First Value") of one of its plans. ttv_days = value date - start; when
-- neither exists yet, days_so_far = today - start and reached = false.
CREATE OR REPLACE FUNCTION csmcp.onb_ttv(p_client_id text) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    t date := csmcp.today();
    c contracts;
    v_start date;
    v_basis text;
    d_usage date;
    d_m3 date;
    v_date date;
BEGIN
    SELECT * INTO c FROM contracts WHERE client_id = p_client_id ORDER BY start_date, contract_id LIMIT 1;
    IF c.contract_id IS NOT NULL THEN
        v_start := c.start_date; v_basis := 'first contract start (' || c.contract_id || ')';
    ELSE
        SELECT (created_at AT TIME ZONE 'UTC')::date INTO v_start FROM accounts WHERE client_id = p_client_id;
        v_basis := 'account created (no contract)';
    END IF;
    IF c.licensed_seats IS NOT NULL THEN
        SELECT min(day) INTO d_usage FROM usage_daily
        WHERE client_id = p_client_id AND day >= v_start AND active_users * 2 >= c.licensed_seats;
    END IF;
    SELECT min(m.completed_on) INTO d_m3 FROM onboarding_milestones m JOIN onboarding_plans p USING (plan_id)
    WHERE p.client_id = p_client_id AND m.template_code = 'M3' AND m.status = 'completed';
    v_date := CASE WHEN d_usage IS NULL THEN d_m3 WHEN d_m3 IS NULL THEN d_usage ELSE least(d_usage, d_m3) END;
    RETURN jsonb_build_object(
        'start_date', v_start, 'start_basis', v_basis, 'licensed_seats', c.licensed_seats,
        'first_half_seats_active_day', d_usage, 'm3_completed_on', d_m3,
        'value_date', v_date,
        'value_basis', CASE WHEN v_date IS NULL THEN NULL
                            WHEN v_date = d_usage AND v_date = d_m3 THEN 'usage >= 50% of seats and M3 completed'
                            WHEN v_date = d_usage THEN 'usage >= 50% of seats' ELSE 'M3 milestone completed' END,
        'reached', v_date IS NOT NULL,
        'ttv_days', CASE WHEN v_date IS NOT NULL THEN greatest(0, v_date - v_start) END,
        'days_so_far', CASE WHEN v_date IS NULL THEN greatest(0, t - v_start) END);
END $$;

-- Milestones of a plan with their tasks, in sequence order.
CREATE OR REPLACE FUNCTION csmcp.onb_milestones_json(p_plan_id text) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT coalesce(jsonb_agg(jsonb_build_object(
        'milestone_id', m.milestone_id, 'template_code', m.template_code, 'seq', m.seq, 'name', m.name,
        'description', m.description, 'week', m.week, 'estimated_hours', m.estimated_hours,
        'due_date', m.due_date, 'started_on', m.started_on, 'completed_on', m.completed_on, 'status', m.status,
        'blocker', m.blocker, 'success_criteria', m.success_criteria,
        'tasks', (SELECT coalesce(jsonb_agg(jsonb_build_object('task_id', k.task_id, 'title', k.title, 'due_date', k.due_date,
                                                               'status', k.status, 'assignee', k.assignee, 'blocker', k.blocker)
                                            ORDER BY k.task_id), '[]')
                  FROM onboarding_tasks k WHERE k.milestone_id = m.milestone_id))
        ORDER BY m.seq), '[]')
    FROM onboarding_milestones m WHERE m.plan_id = p_plan_id
$$;

-- Whether a user of an account passed a module: some attended session of that module for the
-- account where the user's score reached the module's passing score (stored as passed).
CREATE OR REPLACE FUNCTION csmcp.onb_best_score(p_client_id text, p_email text, p_module_id text)
RETURNS TABLE (passed boolean, best_score numeric, session_id text)
LANGUAGE sql STABLE AS $$
    SELECT coalesce(a.passed, false), a.score, s.session_id
    FROM training_sessions s JOIN training_attendance a USING (session_id)
    WHERE s.client_id = p_client_id AND s.module_id = p_module_id AND lower(a.email) = lower(p_email) AND a.attended
    ORDER BY a.passed DESC NULLS LAST, a.score DESC NULLS LAST, s.scheduled_at DESC
    LIMIT 1
$$;

-- Recomputes the time-to-value benchmark of one product tier (onboarding_ttv_benchmarks): over
-- the completed M3 milestones of plans of that tier, days from plan start to M3 completion,
-- median/p25/p75 by percentile_cont, 1 decimal. Called when an M3 milestone is completed and
-- by the seed.
CREATE OR REPLACE FUNCTION csmcp.onb_refresh_benchmark(p_tier text) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO onboarding_ttv_benchmarks AS b (product_tier, plans, median_days, p25_days, p75_days, refreshed_at)
    SELECT p_tier, count(*),
           round(percentile_cont(0.5) WITHIN GROUP (ORDER BY m3.completed_on - pl.start_date)::numeric, 1),
           round(percentile_cont(0.25) WITHIN GROUP (ORDER BY m3.completed_on - pl.start_date)::numeric, 1),
           round(percentile_cont(0.75) WITHIN GROUP (ORDER BY m3.completed_on - pl.start_date)::numeric, 1), now()
    FROM onboarding_milestones m3 JOIN onboarding_plans pl USING (plan_id)
    WHERE m3.template_code = 'M3' AND m3.status = 'completed' AND pl.product_tier = p_tier
    ON CONFLICT (product_tier) DO UPDATE
    SET plans = EXCLUDED.plans, median_days = EXCLUDED.median_days, p25_days = EXCLUDED.p25_days,
        p75_days = EXCLUDED.p75_days, refreshed_at = EXCLUDED.refreshed_at
$$;

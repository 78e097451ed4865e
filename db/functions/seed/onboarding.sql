-- db/functions/seed/onboarding.sql - demo data of the onboarding & training category (issue 15),
-- called by csmcp.seed_demo after the base data. Deterministic (csmcp.seed_rand only), dates
-- relative to today like the base seed.
--
--   * module catalogue: four more modules, two per level for basic..expert with different
--     passing scores (the base seed has one per level);
--   * the base seed's 4-month plans of onboarding accounts get template codes, tasks, goals,
--     automation triggers; ~20 % are delayed (their last due milestone not done: overdue) and
--     ~10 % have a blocked milestone;
--   * a completed initial plan (template M1..M4 [+M5/M6], 4-8 weeks) for every older account,
--     milestones on time or late (M3 and M6 late more often: the bottlenecks), cancelled at M3
--     for churned accounts;
--   * expansion-stage accounts onboard a new team: a second plan started 10-110 days ago,
--     completed or in progress; ~8 % of active accounts have a draft or scheduled plan;
--   * training sessions of the basic and intermediate modules with attendees (the account's
--     contacts and users), attendance, scores, ratings and engagement; basic certifications for
--     users who passed both basic modules (~10 % later revoked).
-- Seeded session ids are train_session_9<9 digits>, far above the sequence the tool uses.
-- csmcp.onb_ttv(client_id) (onboarding/_lib.sql) for many accounts in one statement: start = the
-- first contract's start date (by start_date, contract_id), else the account's creation date
-- (UTC); value date = the earlier of the first day on or after the start with active users >= 50 %
-- of that contract's seats and the first completed M3 milestone of the account's plans; ttv_days
-- = value date - start (at least 0) when reached.
CREATE OR REPLACE FUNCTION csmcp.seed_onb_ttv_bulk(p_clients text[])
RETURNS TABLE (client_id text, ttv_days integer, reached boolean)
-- hash joins: the array's size is unknown to the planner (estimated 10), and per-account index
-- lookups into usage_daily cost 5.6 s at 10,000 accounts
LANGUAGE sql STABLE SET enable_nestloop = off AS $$
    WITH acc AS (SELECT a.client_id, (a.created_at AT TIME ZONE 'UTC')::date AS created
                 FROM accounts a WHERE a.client_id = ANY (p_clients)),
    fc AS (SELECT DISTINCT ON (c.client_id) c.client_id, c.start_date, c.licensed_seats
           FROM contracts c JOIN acc USING (client_id) ORDER BY c.client_id, c.start_date, c.contract_id),
    st AS (SELECT acc.client_id, coalesce(fc.start_date, acc.created) AS start, fc.licensed_seats AS seats
           FROM acc LEFT JOIN fc USING (client_id)),
    du AS (SELECT st.client_id, min(u.day) AS d FROM st JOIN usage_daily u ON u.client_id = st.client_id
           WHERE st.seats IS NOT NULL AND u.day >= st.start AND u.active_users * 2 >= st.seats GROUP BY st.client_id),
    dm AS (SELECT p.client_id, min(m.completed_on) AS d FROM onboarding_plans p JOIN st USING (client_id)
           JOIN onboarding_milestones m ON m.plan_id = p.plan_id
           WHERE m.template_code = 'M3' AND m.status = 'completed' GROUP BY p.client_id),
    v AS (SELECT st.client_id, st.start,
                 CASE WHEN du.d IS NULL THEN dm.d WHEN dm.d IS NULL THEN du.d ELSE least(du.d, dm.d) END AS vd
          FROM st LEFT JOIN du USING (client_id) LEFT JOIN dm USING (client_id))
    SELECT v.client_id, CASE WHEN v.vd IS NOT NULL THEN greatest(0, v.vd - v.start) END, v.vd IS NOT NULL FROM v
$$;

CREATE OR REPLACE FUNCTION csmcp.seed_part_onboarding(n integer) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    t date := csmcp.today();
    n_mod integer; n_plans integer; n_ms integer; n_tasks integer; n_goals integer; n_trig integer;
    n_sess integer; n_att integer; n_cert integer; n_rev integer;
BEGIN
    INSERT INTO training_modules (module_id, name, description, format, certification_level, duration_minutes, passing_score) VALUES
        ('mod_reports', 'Reports & Dashboards', 'Building, sharing and scheduling reports', 'video', 'basic', 45, 0.70),
        ('mod_data', 'Data management', 'Imports, exports, custom fields and data quality', 'self_paced', 'intermediate', 60, 0.80),
        ('mod_api', 'REST API in depth', 'Authentication, pagination, webhooks and rate limits', 'workshop', 'advanced', 120, 0.80),
        ('mod_governance', 'Governance & security', 'SSO, roles, audit and data retention', 'one_on_one', 'expert', 90, 0.85)
    ON CONFLICT (module_id) DO NOTHING;
    GET DIAGNOSTICS n_mod = ROW_COUNT;

    CREATE TEMP TABLE onb_so ON COMMIT DROP AS
    SELECT a.client_id, substr(a.client_id, 6)::integer AS i, a.client_name, a.tier, a.lifecycle_stage AS stage,
           (a.created_at AT TIME ZONE 'UTC')::date AS born, c.licensed_seats AS seats,
           CASE WHEN csmcp.seed_rand(a.client_id || 'o_cx') < 0.3 THEN 'low' WHEN csmcp.seed_rand(a.client_id || 'o_cx') < 0.8 THEN 'medium'
                ELSE 'high' END AS cx
    FROM accounts a LEFT JOIN contracts c ON c.client_id = a.client_id AND c.contract_id = 'CTR-' || a.client_id
    WHERE a.client_id LIKE 'demo\_%';

    -- Base plans of onboarding accounts: template data, timeline, TTFV target (M3 in week 12).
    UPDATE onboarding_plans p SET timeline_weeks = 17, ttfv_target_days = 84, technical_complexity = onb_so.cx,
                                  team_size = greatest(1, least(10000, coalesce(onb_so.seats, 10))), created_by = 'seed',
                                  created_at = (p.start_date)::timestamp AT TIME ZONE 'UTC'
    FROM onb_so WHERE p.plan_id = 'onb_' || onb_so.client_id;
    UPDATE onboarding_milestones m SET
        template_code = 'M' || m.seq,
        description = tp.description, success_criteria = tp.criteria,
        started_on = CASE WHEN m.status IN ('in_progress', 'completed') THEN m.due_date - 30 END
    FROM onboarding_plans p, csmcp.onb_template(p.product_tier, 'low', 4) tp
    WHERE p.plan_id = m.plan_id AND p.created_by = 'seed' AND p.client_id LIKE 'demo\_%' AND tp.seq = m.seq
      AND m.plan_id = 'onb_' || p.client_id;
    -- ~20 %: the last milestone that fell due is not done yet (overdue), the plan delayed.
    WITH d AS (
        SELECT DISTINCT ON (m.plan_id) m.milestone_id, m.plan_id
        FROM onboarding_milestones m JOIN onb_so ON m.plan_id = 'onb_' || onb_so.client_id
        WHERE m.status = 'completed' AND csmcp.seed_rand(onb_so.client_id || 'o_delay') < 0.2
        ORDER BY m.plan_id, m.seq DESC
    ), u AS (
        UPDATE onboarding_milestones m SET status = 'in_progress', completed_on = NULL FROM d WHERE m.milestone_id = d.milestone_id
        RETURNING m.plan_id, m.seq
    ), nx AS (
        UPDATE onboarding_milestones m SET status = 'not_started', started_on = NULL FROM u
        WHERE m.plan_id = u.plan_id AND m.seq = u.seq + 1 AND m.status = 'in_progress'
        RETURNING m.plan_id
    )
    UPDATE onboarding_plans p SET status = 'delayed', status_reason = 'a milestone is past its due date'
    FROM u WHERE p.plan_id = u.plan_id;
    -- ~10 %: the current milestone is blocked.
    UPDATE onboarding_milestones m SET status = 'blocked',
        blocker = (ARRAY['Waiting for the customer''s IT to open the firewall for the integration',
                         'Data export from the legacy system is incomplete',
                         'Executive sponsor unavailable to approve the rollout',
                         'SSO configuration pending the identity provider team'])[1 + floor(csmcp.seed_rand(onb_so.client_id || 'o_blk') * 4)::int]
    FROM onb_so
    WHERE m.plan_id = 'onb_' || onb_so.client_id AND m.status = 'in_progress' AND csmcp.seed_rand(onb_so.client_id || 'o_block') < 0.1;

    -- Initial plans, completed (cancelled at M3 for churned accounts), for accounts older than 75 days.
    CREATE TEMP TABLE onb_sp ON COMMIT DROP AS
    SELECT onb_so.*, 'onb_' || onb_so.client_id || '_1' AS plan_id, onb_so.born AS start_date,
           CASE onb_so.tier WHEN 'starter' THEN 4 WHEN 'standard' THEN 5 WHEN 'professional' THEN 6 ELSE 8 END AS weeks,
           CASE WHEN onb_so.stage = 'churned' THEN 'cancelled' ELSE 'completed' END AS status, 1 AS kind
    FROM onb_so WHERE onb_so.stage <> 'onboarding' AND t - onb_so.born >= 75;
    -- Expansion-stage accounts onboarding a new team (~60 %), and a draft or scheduled plan for ~8 % of active ones.
    INSERT INTO onb_sp
    SELECT onb_so.*, 'onb_' || onb_so.client_id || '_2', t - (10 + floor(csmcp.seed_rand(onb_so.client_id || 'o_x2') * 100))::int,
           4, 'in_progress', 2
    FROM onb_so WHERE onb_so.stage = 'expansion' AND csmcp.seed_rand(onb_so.client_id || 'o_x') < 0.6;
    INSERT INTO onb_sp
    SELECT onb_so.*, 'onb_' || onb_so.client_id || '_2', t + (3 + floor(csmcp.seed_rand(onb_so.client_id || 'o_d2') * 20))::int,
           5, CASE WHEN csmcp.seed_rand(onb_so.client_id || 'o_sch') < 0.5 THEN 'draft' ELSE 'scheduled' END, 3
    FROM onb_so WHERE onb_so.stage = 'active' AND csmcp.seed_rand(onb_so.client_id || 'o_draft') < 0.08;

    CREATE TEMP TABLE onb_sm ON COMMIT DROP AS
    SELECT onb_sp.plan_id, onb_sp.client_id, onb_sp.kind, onb_sp.status AS plan_status, tp.seq, tp.code, tp.name, tp.description, tp.hours,
           tp.week, tp.criteria, tp.tasks, onb_sp.start_date + tp.week * 7 AS due_date,
           -- delay: M3 and M6 are late in ~45 % of plans, the others in ~15 %; late by 2-15 days, else 0-3 days early
           CASE WHEN csmcp.seed_rand(onb_sp.plan_id || tp.code || 'late') < CASE WHEN tp.code IN ('M3', 'M6') THEN 0.45 ELSE 0.15 END
                THEN 2 + floor(csmcp.seed_rand(onb_sp.plan_id || tp.code || 'dl') * 14)::int
                ELSE -floor(csmcp.seed_rand(onb_sp.plan_id || tp.code || 'de') * 4)::int END AS delay
    FROM onb_sp CROSS JOIN LATERAL csmcp.onb_template(onb_sp.tier, onb_sp.cx, onb_sp.weeks) tp;
    ALTER TABLE onb_sm ADD COLUMN done_on date, ADD COLUMN status text;
    CREATE INDEX ON onb_sm (plan_id, seq);
    CREATE INDEX ON onb_sp (plan_id);
    UPDATE onb_sm SET done_on = due_date + delay;
    UPDATE onb_sm SET done_on = NULL WHERE plan_status IN ('draft', 'scheduled') OR done_on > t
                                    OR (plan_status = 'cancelled' AND code NOT IN ('M1', 'M2'));
    UPDATE onb_sm SET status = CASE WHEN done_on IS NOT NULL THEN 'completed'
                                WHEN plan_status = 'cancelled' THEN 'not_started'
                                WHEN plan_status IN ('draft', 'scheduled') THEN 'not_started' ELSE NULL END;
    -- In-progress plans: the first milestone not done is in progress, later ones not started.
    UPDATE onb_sm SET status = CASE WHEN onb_sm.seq = f.first_open THEN 'in_progress' ELSE 'not_started' END
    FROM (SELECT plan_id, min(seq) AS first_open FROM onb_sm WHERE done_on IS NULL GROUP BY plan_id) f
    WHERE f.plan_id = onb_sm.plan_id AND onb_sm.status IS NULL;
    -- A plan whose milestones are all done is completed on the last completion date.
    UPDATE onb_sp SET status = 'completed' WHERE kind = 2 AND plan_id NOT IN (SELECT plan_id FROM onb_sm WHERE done_on IS NULL);
    ANALYZE onb_sp; ANALYZE onb_sm;

    INSERT INTO onboarding_plans (plan_id, client_id, name, product_tier, technical_complexity, team_size, start_date, target_date,
                                  completed_on, cancelled_on, status, status_reason, timeline_weeks, ttfv_target_days,
                                  automation_enabled, created_by, created_at, updated_at)
    SELECT onb_sp.plan_id, onb_sp.client_id, CASE onb_sp.kind WHEN 1 THEN 'Onboarding ' ELSE 'New team onboarding ' END || onb_sp.client_name,
           onb_sp.tier, onb_sp.cx,
           greatest(1, least(10000, CASE onb_sp.kind WHEN 1 THEN coalesce(onb_sp.seats, 10) ELSE greatest(3, coalesce(onb_sp.seats, 10) / 4) END)),
           onb_sp.start_date, onb_sp.start_date + onb_sp.weeks * 7,
           CASE WHEN onb_sp.status = 'completed' THEN g.last_done END,
           CASE WHEN onb_sp.status = 'cancelled' THEN onb_sp.start_date + g.m3_week * 7 END,
           onb_sp.status, CASE onb_sp.status WHEN 'cancelled' THEN 'customer churned before first value'
                                     WHEN 'completed' THEN 'every milestone completed or skipped' END,
           onb_sp.weeks, g.m3_week * 7,
           onb_sp.status NOT IN ('draft', 'scheduled') AND csmcp.seed_rand(onb_sp.plan_id || 'auto') < 0.7, 'seed',
           (onb_sp.start_date - CASE WHEN onb_sp.kind = 3 THEN 10 ELSE 7 END)::timestamp AT TIME ZONE 'UTC', now()
    FROM onb_sp JOIN (SELECT plan_id, max(done_on) AS last_done, max(week) FILTER (WHERE code = 'M3') AS m3_week
                  FROM onb_sm GROUP BY plan_id) g USING (plan_id);
    INSERT INTO onboarding_milestones (milestone_id, plan_id, seq, name, week, estimated_hours, due_date, completed_on, status,
                                       template_code, description, success_criteria, started_on)
    SELECT onb_sm.plan_id || '_m' || onb_sm.seq, onb_sm.plan_id, onb_sm.seq, onb_sm.name, onb_sm.week, onb_sm.hours, onb_sm.due_date, onb_sm.done_on, onb_sm.status, onb_sm.code,
           onb_sm.description, onb_sm.criteria,
           CASE WHEN onb_sm.status IN ('completed', 'in_progress') THEN least(coalesce(onb_sm.done_on, t), greatest(onb_sp.start_date, onb_sm.due_date - 7)) END
    FROM onb_sm JOIN onb_sp USING (plan_id);
    SELECT count(*) INTO n_plans FROM onb_sp;
    SELECT count(*) INTO n_ms FROM onb_sm;

    -- Tasks of every demo plan's milestones (base plans included), three per milestone.
    -- Statistics first: planned as if onboarding_tasks were empty, the NOT EXISTS below became a
    -- nested loop with a sequential scan of the tasks per milestone (568 s at 10,000 accounts).
    ANALYZE onboarding_plans; ANALYZE onboarding_milestones; ANALYZE onboarding_tasks;
    INSERT INTO onboarding_tasks (milestone_id, title, due_date, status, completed_at, blocker)
    SELECT m.milestone_id, k.title, m.due_date,
           CASE WHEN m.status = 'completed' THEN 'done' WHEN m.status = 'skipped' THEN 'skipped'
                WHEN m.status = 'blocked' AND k.o = 3 THEN 'blocked'
                WHEN m.status IN ('in_progress', 'blocked') AND k.o = 1 THEN 'done' ELSE 'open' END,
           CASE WHEN m.status = 'completed' THEN m.completed_on::timestamp AT TIME ZONE 'UTC'
                WHEN m.status IN ('in_progress', 'blocked') AND k.o = 1 THEN coalesce(m.started_on, t)::timestamp AT TIME ZONE 'UTC' END,
           CASE WHEN m.status = 'blocked' AND k.o = 3 THEN m.blocker END
    FROM onboarding_milestones m JOIN onboarding_plans p USING (plan_id)
    -- the template's task lists computed once, not once per milestone
    JOIN (SELECT tp.code, tp.tasks FROM csmcp.onb_template('enterprise', 'high', 6) tp) tpl ON tpl.code = m.template_code
    CROSS JOIN LATERAL unnest(tpl.tasks) WITH ORDINALITY k(title, o)
    -- Milestones that have tasks already, read once before the insert: a NOT EXISTS on
    -- onboarding_tasks itself was planned as a nested loop whose inner scan re-read every
    -- task this statement had inserted so far (invisible to it, but visited): quadratic,
    -- 115 s of the 10,000-account seed.
    WHERE p.client_id LIKE 'demo\_%'
      AND m.milestone_id NOT IN (SELECT x.milestone_id FROM onboarding_tasks x JOIN onboarding_milestones xm USING (milestone_id)
                                 JOIN onboarding_plans xp ON xp.plan_id = xm.plan_id WHERE xp.client_id LIKE 'demo\_%');
    GET DIAGNOSTICS n_tasks = ROW_COUNT;

    INSERT INTO onboarding_goals (plan_id, seq, kind, text, achieved)
    SELECT p.plan_id, g.o, 'goal',
           (ARRAY['Replace the spreadsheet reporting', 'Give every team lead a live dashboard', 'Automate the weekly status report',
                  'Connect the CRM data', 'Cut manual data entry in half', 'Roll out to every region'])
               [1 + floor(csmcp.seed_rand(p.plan_id || 'g' || g.o) * 6)::int] || CASE g.o WHEN 2 THEN ' (phase 2)' ELSE '' END,
           p.status = 'completed'
    FROM onboarding_plans p CROSS JOIN generate_series(1, 2) g(o) WHERE p.client_id LIKE 'demo\_%'
    ON CONFLICT DO NOTHING;
    INSERT INTO onboarding_goals (plan_id, seq, kind, text, achieved)
    SELECT p.plan_id, 1, 'success_criterion', '80% of licensed users active weekly', p.status = 'completed'
    FROM onboarding_plans p WHERE p.client_id LIKE 'demo\_%'
    ON CONFLICT DO NOTHING;
    SELECT count(*) INTO n_goals FROM onboarding_goals g JOIN onboarding_plans p USING (plan_id) WHERE p.client_id LIKE 'demo\_%';

    -- Automation for ~70 % of the started plans (all base plans are started).
    UPDATE onboarding_plans p SET automation_enabled = true,
        automation_config = jsonb_build_object(
            'triggers', '["blocker_identified", "health_score_change", "integration_success", "milestone_completion", "task_overdue", "training_completion", "usage_milestone_reached"]'::jsonb,
            'notification_preferences', jsonb_build_object('email', true, 'slack', csmcp.seed_rand(p.plan_id || 'slk') < 0.3,
                                                           'in_app', true, 'frequency', 'immediate', 'digest', 'daily'),
            'activated_at', p.start_date::timestamp AT TIME ZONE 'UTC', 'activated_by', 'seed')
    WHERE p.client_id LIKE 'demo\_%' AND p.status NOT IN ('draft', 'scheduled')
      AND (p.automation_enabled OR (p.plan_id = 'onb_' || p.client_id AND csmcp.seed_rand(p.plan_id || 'auto') < 0.7));
    INSERT INTO onboarding_automation_triggers (plan_id, trigger_type, monitor, registered_at, registered_by)
    SELECT p.plan_id, tr, csmcp.onb_trigger_monitor(tr), p.start_date::timestamp AT TIME ZONE 'UTC', 'seed'
    FROM onboarding_plans p CROSS JOIN jsonb_array_elements_text(p.automation_config -> 'triggers') tr
    WHERE p.client_id LIKE 'demo\_%' AND p.automation_enabled
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS n_trig = ROW_COUNT;

    -- Training: per plan that reached Core Training, sessions of mod_fundamentals and
    -- mod_reports (and mod_admin for professional/enterprise), held around M2's due date.
    CREATE TEMP TABLE onb_ss ON COMMIT DROP AS
    SELECT p.client_id, p.plan_id, substr(p.client_id, 6)::integer AS i, md.module_id, md.o, md.passing_score, md.format,
           'train_session_9' || lpad((substr(p.client_id, 6)::integer * 10 + CASE WHEN p.plan_id = 'onb_' || p.client_id THEN 0 WHEN p.plan_id LIKE '%\_1' THEN 3 ELSE 6 END + md.o)::text, 9, '0') AS session_id,
           (m.due_date - 5 + md.o)::timestamp AT TIME ZONE 'UTC' + interval '15 hours' AS at,
           least(8, greatest(2, p.team_size)) AS seats
    FROM onboarding_plans p
    JOIN onboarding_milestones m ON m.plan_id = p.plan_id AND m.template_code = 'M2'
    CROSS JOIN (VALUES ('mod_fundamentals', 1, 0.75::numeric, 'live_webinar'), ('mod_reports', 2, 0.70, 'video'),
                       ('mod_admin', 3, 0.75, 'workshop')) md(module_id, o, passing_score, format)
    WHERE p.client_id LIKE 'demo\_%' AND m.status IN ('in_progress', 'completed', 'blocked')
      AND (md.o < 3 OR p.product_tier IN ('professional', 'enterprise'))
      AND (m.due_date - 5 + md.o) <= t;
    INSERT INTO training_sessions (session_id, client_id, module_id, session_format, scheduled_at, duration_minutes, recording_enabled,
                                   status, created_at)
    SELECT session_id, client_id, module_id, format, at,
           (SELECT duration_minutes FROM training_modules tm WHERE tm.module_id = onb_ss.module_id),
           csmcp.seed_rand(session_id || 'rec') < 0.8, 'completed', at - interval '7 days'
    FROM onb_ss ON CONFLICT (session_id) DO NOTHING;
    GET DIAGNOSTICS n_sess = ROW_COUNT;
    -- Attendees: user1..userK of the account (K = team size, 2..8); ~85 % attend; scores
    -- 0.50..1.00, ratings 3.0..5.0, engagement 0.50..1.00. Bulk mode: loaded without its key
    -- (2 million rows at 100,000 accounts: the (session, e-mail) key maintained per row cost 74 s,
    -- built afterwards a few; every (session, e-mail) here is distinct, so nothing conflicts and
    -- re-adding the key fails the seed if that ever changed).
    PERFORM csmcp.seed_bulk_off('training_attendance');
    INSERT INTO training_attendance (session_id, email, attended, score, passed, rating, engagement, recorded_at)
    SELECT onb_ss.session_id, 'user' || u || '@' || replace(onb_ss.client_id, '_', '-') || '.test', att,
           CASE WHEN att THEN sc END, CASE WHEN att THEN sc >= onb_ss.passing_score END,
           CASE WHEN att THEN round((3 + 2 * csmcp.seed_rand(onb_ss.session_id || u || 'rt'))::numeric, 1) END,
           CASE WHEN att THEN round((0.5 + 0.5 * csmcp.seed_rand(onb_ss.session_id || u || 'en'))::numeric, 3) END,
           onb_ss.at + interval '2 hours'
    FROM onb_ss CROSS JOIN generate_series(1, 8) u
    CROSS JOIN LATERAL (SELECT csmcp.seed_rand(onb_ss.session_id || u || 'at') < 0.85 AS att,
                               round((0.5 + 0.5 * csmcp.seed_rand(onb_ss.session_id || u || 'sc'))::numeric, 3) AS sc OFFSET 0) r
    WHERE u <= onb_ss.seats
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS n_att = ROW_COUNT;
    PERFORM csmcp.seed_bulk_on('training_attendance');

    -- Basic certifications for users who passed both basic modules (evidence: best scores),
    -- issued the day after the later session; ~10 % revoked 30 days later.
    INSERT INTO certifications (certification_id, client_id, user_email, level, issued_at, issued_by, evidence, revoked_at, revoked_by,
                                revoke_reason)
    SELECT 'cert_basic_' || regexp_replace(q.email, '[^a-z0-9]+', '_', 'g') || '_' || extract(epoch FROM q.issued)::bigint,
           q.client_id, q.email, 'basic', q.issued, 'seed', q.ev,
           CASE WHEN csmcp.seed_rand(q.email || 'rev') < 0.1 AND q.issued + interval '30 days' < now() THEN q.issued + interval '30 days' END,
           CASE WHEN csmcp.seed_rand(q.email || 'rev') < 0.1 AND q.issued + interval '30 days' < now() THEN 'seed' END,
           CASE WHEN csmcp.seed_rand(q.email || 'rev') < 0.1 AND q.issued + interval '30 days' < now() THEN 'left the company' END
    FROM (SELECT s.client_id, a.email, date_trunc('day', max(s.scheduled_at)) + interval '1 day 9 hours' AS issued,
                 jsonb_agg(jsonb_build_object('module_id', s.module_id, 'best_score', a.score, 'passed', true, 'session_id', s.session_id)
                           ORDER BY s.module_id, s.session_id) AS ev
          FROM training_sessions s JOIN training_attendance a USING (session_id)
          WHERE s.client_id LIKE 'demo\_%' AND s.module_id IN ('mod_fundamentals', 'mod_reports') AND a.passed
          GROUP BY s.client_id, a.email HAVING count(DISTINCT s.module_id) = 2) q
    WHERE q.issued < now()
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS n_cert = ROW_COUNT;
    SELECT count(*) INTO n_rev FROM certifications WHERE client_id LIKE 'demo\_%' AND revoked_at IS NOT NULL;

    -- Completed plans: the account's time to value as measured now (the plans completed before
    -- today), what csmcp.onb_ttv(client_id) computes, for all accounts at once
    -- (csmcp.seed_onb_ttv_bulk; test_seed_scale compares it with onb_ttv per account); the
    -- per-tier benchmarks.
    ANALYZE onboarding_plans; ANALYZE onboarding_milestones;
    UPDATE onboarding_plans p SET ttv_days = q.ttv_days, ttv_reached = q.reached
    FROM csmcp.seed_onb_ttv_bulk(ARRAY(SELECT DISTINCT client_id FROM onboarding_plans
                                       WHERE status = 'completed' AND client_id LIKE 'demo\_%')) q
    WHERE p.client_id = q.client_id AND p.status = 'completed';
    PERFORM csmcp.onb_refresh_benchmark(tier) FROM unnest(ARRAY['starter', 'standard', 'professional', 'enterprise']) tier;

    ANALYZE onboarding_plans; ANALYZE onboarding_milestones; ANALYZE onboarding_tasks;
    ANALYZE training_sessions; ANALYZE training_attendance; ANALYZE certifications;
    RETURN jsonb_build_object('modules_added', n_mod, 'plans', n_plans, 'milestones', n_ms, 'tasks', n_tasks, 'goals', n_goals,
                              'automation_triggers', n_trig, 'training_sessions', n_sess, 'attendance', n_att,
                              'certifications', n_cert, 'revoked', n_rev);
END $$;

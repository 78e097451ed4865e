-- Standard adoption framework; achieved_on is derived from stored rows (see docs):
--   m1 Account Activated          first day with usage
--   m2 First Value Achieved       first day by which 3 distinct features had been used
--   m3 Team Onboarded             first day with daily active users >= 50% of licensed seats
--                                 (>= 5 users without seats)
--   m4 Core Features Adopted      day the last core feature (features.is_core) was first used
--   m5 Integration Connected      first use of a feature in category 'integration'
--   m6 Advanced Features Explored first use of a feature in category 'advanced'
--   m7 Business Impact Measured   first completed executive review
--   m8 Champion Developed         first advocate enrolled
-- plus any row recorded in adoption_milestones under the same key (manual confirmation).
CREATE OR REPLACE FUNCTION csmcp.adoption_milestones_of(p_client_id text)
RETURNS TABLE (milestone text, name text, target_days integer, achieved_on date)
LANGUAGE sql STABLE AS $$
    WITH c AS (SELECT licensed_seats FROM contracts WHERE client_id = p_client_id AND status = 'active'),
    derived AS (
        SELECT 'm1' AS m, (SELECT min(day) FROM usage_daily WHERE client_id = p_client_id AND events > 0) AS d
        UNION ALL
        SELECT 'm2', (SELECT first_used_on FROM feature_adoption WHERE client_id = p_client_id
                      ORDER BY first_used_on OFFSET 2 LIMIT 1)
        UNION ALL
        SELECT 'm3', (SELECT min(day) FROM usage_daily u WHERE u.client_id = p_client_id
                      AND u.active_users >= coalesce(ceil((SELECT licensed_seats FROM c) * 0.5), 5))
        UNION ALL
        SELECT 'm4', (SELECT CASE WHEN count(fa.first_used_on) = count(*) AND count(*) > 0 THEN max(fa.first_used_on) END
                      FROM features f LEFT JOIN feature_adoption fa ON fa.feature_id = f.feature_id AND fa.client_id = p_client_id
                      WHERE f.is_core)
        UNION ALL
        SELECT 'm5', (SELECT min(fa.first_used_on) FROM feature_adoption fa JOIN features f USING (feature_id)
                      WHERE fa.client_id = p_client_id AND f.category = 'integration')
        UNION ALL
        SELECT 'm6', (SELECT min(fa.first_used_on) FROM feature_adoption fa JOIN features f USING (feature_id)
                      WHERE fa.client_id = p_client_id AND f.category = 'advanced')
        UNION ALL
        SELECT 'm7', (SELECT min(completed_at)::date FROM executive_reviews WHERE client_id = p_client_id AND status = 'completed')
        UNION ALL
        SELECT 'm8', (SELECT min(enrolled_at)::date FROM advocates WHERE client_id = p_client_id)
    )
    SELECT d.m, f.name, f.target_days,
           least(d.d, (SELECT achieved_on FROM adoption_milestones am WHERE am.client_id = p_client_id AND am.milestone = d.m))
    FROM derived d JOIN (VALUES ('m1', 'Account Activated', 3), ('m2', 'First Value Achieved', 14),
                               ('m3', 'Team Onboarded', 30), ('m4', 'Core Features Adopted', 60),
                               ('m5', 'Integration Connected', 45), ('m6', 'Advanced Features Explored', 90),
                               ('m7', 'Business Impact Measured', 120), ('m8', 'Champion Developed', 180)) f(m, name, target_days)
         ON f.m = d.m
$$;

-- The day an account started (its first contract's start, else its creation date).
CREATE OR REPLACE FUNCTION csmcp.account_start(p_client_id text) RETURNS date
LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT min(start_date) FROM contracts WHERE client_id = p_client_id),
                    (SELECT (created_at AT TIME ZONE 'UTC')::date FROM accounts WHERE client_id = p_client_id))
$$;

-- tool track_adoption_milestones. One account: its eight milestones (adoption_milestones_of,
-- primary-key reads of that account's rows). Portfolio: one row per account from the
-- maintained per-account milestones (see below); csmcp.track_adoption_milestones_scratch is the
-- from-scratch computation (the tool before issue 21), which the equality tests compare.
CREATE OR REPLACE FUNCTION csmcp.tool_track_adoption_milestones(args jsonb, principal text)
RETURNS jsonb LANGUAGE plpgsql SET work_mem = '16MB' SET jit = off AS $$ -- volatile: uses a temporary work table
DECLARE
    t date := csmcp.today();
    v_client text := csmcp.arg_text(args, 'client_id', NULL);
    v_fw text := csmcp.arg_text(args, 'milestone_framework', 'standard', ARRAY['standard', 'custom']);
    custom jsonb := args -> 'custom_milestones';
    start_d date;
    ms jsonb;
    rates jsonb;
    stuck jsonb;
    fast jsonb;
    n_acc integer;
BEGIN
    IF v_fw = 'custom' AND (custom IS NULL OR jsonb_typeof(custom) <> 'array' OR jsonb_array_length(custom) = 0) THEN
        PERFORM csmcp.invalid('milestone_framework custom requires custom_milestones: [{"key": "...", "name": "...", "target_days": N}]');
    END IF;
    IF v_client IS NOT NULL THEN
        PERFORM csmcp.require_account(v_client);
        start_d := csmcp.account_start(v_client);
        IF v_fw = 'standard' THEN
            SELECT jsonb_agg(jsonb_build_object('milestone', m.milestone, 'name', m.name, 'target_days', m.target_days,
                    'achieved_on', m.achieved_on, 'days_to_achieve', m.achieved_on - start_d,
                    'status', CASE WHEN m.achieved_on IS NOT NULL AND m.achieved_on - start_d <= m.target_days THEN 'achieved_on_time'
                                   WHEN m.achieved_on IS NOT NULL THEN 'achieved_late'
                                   WHEN t - start_d > m.target_days THEN 'overdue' ELSE 'in_progress' END)
                             ORDER BY m.milestone)
            INTO ms FROM csmcp.adoption_milestones_of(v_client) m;
        ELSE
            SELECT jsonb_agg(jsonb_build_object('milestone', x->>'key', 'name', coalesce(x->>'name', x->>'key'),
                    'target_days', (x->>'target_days')::integer, 'achieved_on', am.achieved_on,
                    'days_to_achieve', am.achieved_on - start_d,
                    'status', CASE WHEN am.achieved_on IS NOT NULL THEN 'achieved'
                                   WHEN (x->>'target_days') IS NOT NULL AND t - start_d > (x->>'target_days')::integer THEN 'overdue'
                                   ELSE 'in_progress' END) ORDER BY o)
            INTO ms FROM jsonb_array_elements(custom) WITH ORDINALITY AS e(x, o)
            LEFT JOIN adoption_milestones am ON am.client_id = v_client AND am.milestone = x->>'key';
        END IF;
        RETURN jsonb_build_object(
            'milestone_framework', v_fw, 'client_id', v_client, 'start_date', start_d, 'days_since_start', t - start_d,
            'total_milestones', jsonb_array_length(ms),
            'milestones_achieved', (SELECT count(*) FROM jsonb_array_elements(ms) x WHERE x->>'achieved_on' IS NOT NULL),
            'completion_rate', round((SELECT count(*) FROM jsonb_array_elements(ms) x WHERE x->>'achieved_on' IS NOT NULL)::numeric
                                     / greatest(jsonb_array_length(ms), 1), 3),
            'milestones', ms);
    END IF;

    IF v_fw = 'custom' THEN
        PERFORM csmcp.invalid('the custom framework is tracked per account: give client_id');
    END IF;
    -- Portfolio view over all non-churned accounts, one row per account: m1, m2, m4..m6 from
    -- adoption_derived (migration 0144, kept by triggers), m3 from its record days of daily
    -- active users (0145: the first record reaching half the active contract's seats, 5 without
    -- one; width_bucket counts the records below the threshold), m7 /
    -- m8 and the start from their small tables, each the earlier of the derived day and a
    -- manual confirmation (adoption_milestones) - what csmcp.adoption_milestones_all derives.
    CREATE TEMP TABLE IF NOT EXISTS ms_w (client_id text, acc_start date, a1 date, a2 date, a3 date, a4 date,
                                          a5 date, a6 date, a7 date, a8 date) ON COMMIT DROP;
    TRUNCATE ms_w;
    INSERT INTO ms_w
    WITH acc AS (
        SELECT a.client_id, coalesce(cs.s, (a.created_at AT TIME ZONE 'UTC')::date) AS acc_start,
               coalesce(ceil(c.licensed_seats * 0.5), 5)::integer AS seats_half
        FROM accounts a
        LEFT JOIN (SELECT client_id, min(start_date) AS s FROM contracts GROUP BY 1) cs USING (client_id)
        LEFT JOIN contracts c ON c.client_id = a.client_id AND c.status = 'active'
        WHERE a.status <> 'churned'
    ),
    am AS (
        SELECT client_id, min(achieved_on) FILTER (WHERE milestone = 'm1') AS x1, min(achieved_on) FILTER (WHERE milestone = 'm2') AS x2,
               min(achieved_on) FILTER (WHERE milestone = 'm3') AS x3, min(achieved_on) FILTER (WHERE milestone = 'm4') AS x4,
               min(achieved_on) FILTER (WHERE milestone = 'm5') AS x5, min(achieved_on) FILTER (WHERE milestone = 'm6') AS x6,
               min(achieved_on) FILTER (WHERE milestone = 'm7') AS x7, min(achieved_on) FILTER (WHERE milestone = 'm8') AS x8
        FROM adoption_milestones GROUP BY 1
    ),
    r7 AS (SELECT client_id, min(completed_at)::date AS d FROM executive_reviews WHERE status = 'completed' GROUP BY 1),
    r8 AS (SELECT client_id, min(enrolled_at)::date AS d FROM advocates GROUP BY 1)
    SELECT acc.client_id, acc.acc_start, least(d.m1, am.x1), least(d.m2, am.x2),
           least(d.rec_days[width_bucket(acc.seats_half - 1, d.rec_vals) + 1], am.x3),
           least(d.m4, am.x4), least(d.m5, am.x5), least(d.m6, am.x6), least(r7.d, am.x7), least(r8.d, am.x8)
    FROM acc LEFT JOIN adoption_derived d USING (client_id) LEFT JOIN am USING (client_id)
    LEFT JOIN r7 USING (client_id) LEFT JOIN r8 USING (client_id);
    SELECT count(*) INTO n_acc FROM ms_w;

    IF n_acc > 0 THEN
        SELECT jsonb_agg(jsonb_build_object('milestone', r.m, 'name', r.name, 'target_days', r.target_days,
                                            'accounts_achieved', r.achieved, 'completion_rate', round(r.achieved::numeric / greatest(n_acc, 1), 3),
                                            'median_days_to_achieve', r.med) ORDER BY r.m)
        INTO rates
        FROM (SELECT count(a1) AS c1, percentile_disc(0.5) WITHIN GROUP (ORDER BY a1 - acc_start) AS p1,
                     count(a2) AS c2, percentile_disc(0.5) WITHIN GROUP (ORDER BY a2 - acc_start) AS p2,
                     count(a3) AS c3, percentile_disc(0.5) WITHIN GROUP (ORDER BY a3 - acc_start) AS p3,
                     count(a4) AS c4, percentile_disc(0.5) WITHIN GROUP (ORDER BY a4 - acc_start) AS p4,
                     count(a5) AS c5, percentile_disc(0.5) WITHIN GROUP (ORDER BY a5 - acc_start) AS p5,
                     count(a6) AS c6, percentile_disc(0.5) WITHIN GROUP (ORDER BY a6 - acc_start) AS p6,
                     count(a7) AS c7, percentile_disc(0.5) WITHIN GROUP (ORDER BY a7 - acc_start) AS p7,
                     count(a8) AS c8, percentile_disc(0.5) WITHIN GROUP (ORDER BY a8 - acc_start) AS p8
              FROM ms_w) z
        CROSS JOIN LATERAL (VALUES ('m1', 'Account Activated', 3, z.c1, z.p1), ('m2', 'First Value Achieved', 14, z.c2, z.p2),
                                   ('m3', 'Team Onboarded', 30, z.c3, z.p3), ('m4', 'Core Features Adopted', 60, z.c4, z.p4),
                                   ('m5', 'Integration Connected', 45, z.c5, z.p5), ('m6', 'Advanced Features Explored', 90, z.c6, z.p6),
                                   ('m7', 'Business Impact Measured', 120, z.c7, z.p7), ('m8', 'Champion Developed', 180, z.c8, z.p8))
                           r(m, name, target_days, achieved, med);
    END IF;
    -- overdue: not achieved and the account older than the target; ahead: achieved within half
    -- the target (integer division, as the per-row rule)
    SELECT coalesce(jsonb_agg(jsonb_build_object('client_id', client_id, 'overdue_milestones', n) ORDER BY n DESC, client_id), '[]')
    INTO stuck FROM (SELECT client_id, n FROM (
                         SELECT client_id, (a1 IS NULL AND t - acc_start > 3)::int + (a2 IS NULL AND t - acc_start > 14)::int
                                + (a3 IS NULL AND t - acc_start > 30)::int + (a4 IS NULL AND t - acc_start > 60)::int
                                + (a5 IS NULL AND t - acc_start > 45)::int + (a6 IS NULL AND t - acc_start > 90)::int
                                + (a7 IS NULL AND t - acc_start > 120)::int + (a8 IS NULL AND t - acc_start > 180)::int AS n
                         FROM ms_w) x
                     WHERE n >= 2 ORDER BY n DESC, client_id LIMIT 20) s;
    SELECT coalesce(jsonb_agg(jsonb_build_object('client_id', client_id, 'milestones_ahead_of_target', n) ORDER BY n DESC, client_id), '[]')
    INTO fast FROM (SELECT client_id, n FROM (
                        SELECT client_id, coalesce((a1 - acc_start <= 1)::int, 0) + coalesce((a2 - acc_start <= 7)::int, 0)
                               + coalesce((a3 - acc_start <= 15)::int, 0) + coalesce((a4 - acc_start <= 30)::int, 0)
                               + coalesce((a5 - acc_start <= 22)::int, 0) + coalesce((a6 - acc_start <= 45)::int, 0)
                               + coalesce((a7 - acc_start <= 60)::int, 0) + coalesce((a8 - acc_start <= 90)::int, 0) AS n
                        FROM ms_w) x
                    WHERE n >= 4 ORDER BY n DESC, client_id LIMIT 20) f;

    RETURN jsonb_build_object('milestone_framework', v_fw, 'accounts_analyzed', n_acc, 'total_milestones', 8,
                              'completion_rates', coalesce(rates, '[]'), 'stuck_customers', stuck, 'fast_track_customers', fast);
END $$;

-- The from-scratch computation (the tool before issue 21: every account's eight milestones from
-- csmcp.adoption_milestones_all, i.e. every usage_daily and feature_adoption row), kept for the
-- equality tests and for operators: its answer must equal the tool's on every argument.
CREATE OR REPLACE FUNCTION csmcp.track_adoption_milestones_scratch(args jsonb, principal text)
RETURNS jsonb LANGUAGE plpgsql SET work_mem = '16MB' SET jit = off AS $$ -- volatile: uses a temporary work table
DECLARE
    t date := csmcp.today();
    v_client text := csmcp.arg_text(args, 'client_id', NULL);
    v_fw text := csmcp.arg_text(args, 'milestone_framework', 'standard', ARRAY['standard', 'custom']);
    custom jsonb := args -> 'custom_milestones';
    start_d date;
    ms jsonb;
    rates jsonb;
    stuck jsonb;
    fast jsonb;
    n_acc integer;
BEGIN
    IF v_fw = 'custom' AND (custom IS NULL OR jsonb_typeof(custom) <> 'array' OR jsonb_array_length(custom) = 0) THEN
        PERFORM csmcp.invalid('milestone_framework custom requires custom_milestones: [{"key": "...", "name": "...", "target_days": N}]');
    END IF;
    IF v_client IS NOT NULL THEN
        PERFORM csmcp.require_account(v_client);
        start_d := csmcp.account_start(v_client);
        IF v_fw = 'standard' THEN
            SELECT jsonb_agg(jsonb_build_object('milestone', m.milestone, 'name', m.name, 'target_days', m.target_days,
                    'achieved_on', m.achieved_on, 'days_to_achieve', m.achieved_on - start_d,
                    'status', CASE WHEN m.achieved_on IS NOT NULL AND m.achieved_on - start_d <= m.target_days THEN 'achieved_on_time'
                                   WHEN m.achieved_on IS NOT NULL THEN 'achieved_late'
                                   WHEN t - start_d > m.target_days THEN 'overdue' ELSE 'in_progress' END)
                             ORDER BY m.milestone)
            INTO ms FROM csmcp.adoption_milestones_of(v_client) m;
        ELSE
            SELECT jsonb_agg(jsonb_build_object('milestone', x->>'key', 'name', coalesce(x->>'name', x->>'key'),
                    'target_days', (x->>'target_days')::integer, 'achieved_on', am.achieved_on,
                    'days_to_achieve', am.achieved_on - start_d,
                    'status', CASE WHEN am.achieved_on IS NOT NULL THEN 'achieved'
                                   WHEN (x->>'target_days') IS NOT NULL AND t - start_d > (x->>'target_days')::integer THEN 'overdue'
                                   ELSE 'in_progress' END) ORDER BY o)
            INTO ms FROM jsonb_array_elements(custom) WITH ORDINALITY AS e(x, o)
            LEFT JOIN adoption_milestones am ON am.client_id = v_client AND am.milestone = x->>'key';
        END IF;
        RETURN jsonb_build_object(
            'milestone_framework', v_fw, 'client_id', v_client, 'start_date', start_d, 'days_since_start', t - start_d,
            'total_milestones', jsonb_array_length(ms),
            'milestones_achieved', (SELECT count(*) FROM jsonb_array_elements(ms) x WHERE x->>'achieved_on' IS NOT NULL),
            'completion_rate', round((SELECT count(*) FROM jsonb_array_elements(ms) x WHERE x->>'achieved_on' IS NOT NULL)::numeric
                                     / greatest(jsonb_array_length(ms), 1), 3),
            'milestones', ms);
    END IF;

    IF v_fw = 'custom' THEN
        PERFORM csmcp.invalid('the custom framework is tracked per account: give client_id');
    END IF;
    -- Portfolio view over all non-churned accounts.
    CREATE TEMP TABLE IF NOT EXISTS mss_all (client_id text, milestone text, name text, target_days integer,
                                            achieved_on date, acc_start date) ON COMMIT DROP;
    TRUNCATE mss_all;
    INSERT INTO mss_all SELECT * FROM csmcp.adoption_milestones_all();
    SELECT count(DISTINCT client_id) INTO n_acc FROM mss_all;

    SELECT jsonb_agg(jsonb_build_object('milestone', milestone, 'name', name, 'target_days', target_days,
                                        'accounts_achieved', achieved, 'completion_rate', round(achieved::numeric / greatest(n_acc, 1), 3),
                                        'median_days_to_achieve', med) ORDER BY milestone)
    INTO rates FROM (SELECT milestone, name, target_days, count(achieved_on) AS achieved,
                            percentile_disc(0.5) WITHIN GROUP (ORDER BY achieved_on - acc_start) AS med
                     FROM mss_all GROUP BY milestone, name, target_days) r;
    SELECT coalesce(jsonb_agg(jsonb_build_object('client_id', client_id, 'overdue_milestones', n) ORDER BY n DESC, client_id), '[]')
    INTO stuck FROM (SELECT client_id, count(*) AS n FROM mss_all
                     WHERE achieved_on IS NULL AND t - acc_start > target_days GROUP BY client_id HAVING count(*) >= 2
                     ORDER BY n DESC, client_id LIMIT 20) s;
    SELECT coalesce(jsonb_agg(jsonb_build_object('client_id', client_id, 'milestones_ahead_of_target', n) ORDER BY n DESC, client_id), '[]')
    INTO fast FROM (SELECT client_id, count(*) AS n FROM mss_all
                    WHERE achieved_on IS NOT NULL AND achieved_on - acc_start <= target_days / 2 GROUP BY client_id
                    HAVING count(*) >= 4 ORDER BY n DESC, client_id LIMIT 20) f;

    RETURN jsonb_build_object('milestone_framework', v_fw, 'accounts_analyzed', n_acc, 'total_milestones', 8,
                              'completion_rates', coalesce(rates, '[]'), 'stuck_customers', stuck, 'fast_track_customers', fast);
END $$;

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
    -- Portfolio view over all non-churned accounts from the maintained per-account rows and their
    -- histogram (migration 0148: every account, kept by triggers in the writing transaction) minus
    -- the churned accounts' rows (primary key reads): the counts and medians of the histogram
    -- (percentile_disc(0.5) = the first days value whose running count reaches half the count),
    -- the overdue counts (they depend on today) from the rows, the fast track from its index -
    -- what csmcp.track_adoption_milestones_scratch derives from every usage and first-use row.
    n_acc := (SELECT count(*) FROM accounts) - (SELECT count(*) FROM accounts WHERE status = 'churned');

    IF n_acc > 0 THEN
        WITH h AS (
            SELECT m, days, sum(k) AS k FROM (
                SELECT h.m, h.days, h.n AS k FROM adoption_hist h WHERE h.n <> 0
                UNION ALL
                SELECT x.m, x.days, -1 FROM accounts a
                CROSS JOIN LATERAL (SELECT * FROM adoption_account aa WHERE aa.client_id = a.client_id OFFSET 0) aa   -- (by key)
                CROSS JOIN LATERAL csmcp.adoption_hist_of(aa::adoption_account) x
                WHERE a.status = 'churned') x
            GROUP BY 1, 2 HAVING sum(k) <> 0
        ),
        c AS (SELECT m, days, sum(k) OVER (PARTITION BY m ORDER BY days) AS run, sum(k) OVER (PARTITION BY m) AS tot FROM h),
        per AS (SELECT m, max(tot) AS achieved, min(days) FILTER (WHERE 2 * run >= tot) AS med FROM c GROUP BY 1)
        SELECT jsonb_agg(jsonb_build_object('milestone', r.m, 'name', r.name, 'target_days', r.target_days,
                                            'accounts_achieved', coalesce(per.achieved, 0),
                                            'completion_rate', round(coalesce(per.achieved, 0)::numeric / greatest(n_acc, 1), 3),
                                            'median_days_to_achieve', per.med) ORDER BY r.m)
        INTO rates
        FROM (VALUES ('m1', 'Account Activated', 3, 1), ('m2', 'First Value Achieved', 14, 2),
                     ('m3', 'Team Onboarded', 30, 3), ('m4', 'Core Features Adopted', 60, 4),
                     ('m5', 'Integration Connected', 45, 5), ('m6', 'Advanced Features Explored', 90, 6),
                     ('m7', 'Business Impact Measured', 120, 7), ('m8', 'Champion Developed', 180, 8)) r(m, name, target_days, k)
        LEFT JOIN per ON per.m = r.k;
    END IF;
    -- overdue: not achieved and the account older than the target; ahead: achieved within half
    -- the target (integer division, as the per-row rule)
    SELECT coalesce(jsonb_agg(jsonb_build_object('client_id', client_id, 'overdue_milestones', n) ORDER BY n DESC, client_id), '[]')
    INTO stuck FROM (SELECT client_id, n FROM (
                         SELECT aa.client_id, (a1 IS NULL AND t - acc_start > 3)::int + (a2 IS NULL AND t - acc_start > 14)::int
                                + (a3 IS NULL AND t - acc_start > 30)::int + (a4 IS NULL AND t - acc_start > 60)::int
                                + (a5 IS NULL AND t - acc_start > 45)::int + (a6 IS NULL AND t - acc_start > 90)::int
                                + (a7 IS NULL AND t - acc_start > 120)::int + (a8 IS NULL AND t - acc_start > 180)::int AS n
                         FROM adoption_account aa
                         WHERE aa.acc_start < t - 14   -- (fewer than 2 milestones can be overdue before)
                           AND NOT EXISTS (SELECT 1 FROM accounts a WHERE a.client_id = aa.client_id AND a.status = 'churned')) x
                     WHERE n >= 2 ORDER BY n DESC, client_id LIMIT 20) s;
    SELECT coalesce(jsonb_agg(jsonb_build_object('client_id', client_id, 'milestones_ahead_of_target', ahead) ORDER BY ahead DESC, client_id), '[]')
    INTO fast FROM (SELECT aa.client_id, aa.ahead FROM adoption_account aa
                    WHERE aa.ahead >= 4 AND NOT EXISTS (SELECT 1 FROM accounts a WHERE a.client_id = aa.client_id AND a.status = 'churned')
                    ORDER BY aa.ahead DESC, aa.client_id LIMIT 20) f;

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

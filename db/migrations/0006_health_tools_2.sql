-- 0006_health_tools_2.sql - track_adoption_milestones, segment_by_value_tier,
-- analyze_engagement_patterns.

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

CREATE OR REPLACE FUNCTION csmcp.tool_track_adoption_milestones(args jsonb, principal text)
RETURNS jsonb LANGUAGE plpgsql AS $$ -- volatile: uses a temporary work table
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
    CREATE TEMP TABLE IF NOT EXISTS ms_all (client_id text, milestone text, name text, target_days integer,
                                            achieved_on date, acc_start date) ON COMMIT DROP;
    TRUNCATE ms_all;
    INSERT INTO ms_all SELECT a.client_id, m.milestone, m.name, m.target_days, m.achieved_on, csmcp.account_start(a.client_id)
    FROM accounts a CROSS JOIN LATERAL csmcp.adoption_milestones_of(a.client_id) m WHERE a.status <> 'churned';
    SELECT count(DISTINCT client_id) INTO n_acc FROM ms_all;

    SELECT jsonb_agg(jsonb_build_object('milestone', milestone, 'name', name, 'target_days', target_days,
                                        'accounts_achieved', achieved, 'completion_rate', round(achieved::numeric / greatest(n_acc, 1), 3),
                                        'median_days_to_achieve', med) ORDER BY milestone)
    INTO rates FROM (SELECT milestone, name, target_days, count(achieved_on) AS achieved,
                            percentile_disc(0.5) WITHIN GROUP (ORDER BY achieved_on - acc_start) AS med
                     FROM ms_all GROUP BY milestone, name, target_days) r;
    SELECT coalesce(jsonb_agg(jsonb_build_object('client_id', client_id, 'overdue_milestones', n) ORDER BY n DESC, client_id), '[]')
    INTO stuck FROM (SELECT client_id, count(*) AS n FROM ms_all
                     WHERE achieved_on IS NULL AND t - acc_start > target_days GROUP BY client_id HAVING count(*) >= 2
                     ORDER BY n DESC, client_id LIMIT 20) s;
    SELECT coalesce(jsonb_agg(jsonb_build_object('client_id', client_id, 'milestones_ahead_of_target', n) ORDER BY n DESC, client_id), '[]')
    INTO fast FROM (SELECT client_id, count(*) AS n FROM ms_all
                    WHERE achieved_on IS NOT NULL AND achieved_on - acc_start <= target_days / 2 GROUP BY client_id
                    HAVING count(*) >= 4 ORDER BY n DESC, client_id LIMIT 20) f;

    RETURN jsonb_build_object('milestone_framework', v_fw, 'accounts_analyzed', n_acc, 'total_milestones', 8,
                              'completion_rates', coalesce(rates, '[]'), 'stuck_customers', stuck, 'fast_track_customers', fast);
END $$;

-- segment_by_value_tier: ARR tiers (defaults: strategic >= 200000, enterprise >= 100000,
-- professional >= 50000, standard >= 10000, starter below), persisted as segments.
CREATE OR REPLACE FUNCTION csmcp.tool_segment_by_value_tier(args jsonb, principal text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    defs jsonb := coalesce(args -> 'tier_definitions', '{}');
    v_strat numeric := coalesce((defs #>> '{strategic,min_arr}')::numeric, 200000);
    v_ent numeric := coalesce((defs #>> '{enterprise,min_arr}')::numeric, 100000);
    v_pro numeric := coalesce((defs #>> '{professional,min_arr}')::numeric, 50000);
    v_std numeric := coalesce((defs #>> '{standard,min_arr}')::numeric, 10000);
    v_vip boolean := csmcp.arg_bool(args, 'vip_identification', true);
    run_id text := 'segrun_' || to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYYMMDDHH24MISSUS');
    total integer; total_arr numeric;
    dist jsonb; vips jsonb; ups jsonb; downs jsonb; conc jsonb;
    r record;
BEGIN
    IF NOT (v_strat > v_ent AND v_ent > v_pro AND v_pro > v_std AND v_std >= 0) THEN
        PERFORM csmcp.invalid('tier_definitions min_arr must decrease: strategic > enterprise > professional > standard >= 0');
    END IF;
    CREATE TEMP TABLE IF NOT EXISTS vt (client_id text, client_name text, arr numeric, health integer, vtier text, prio integer,
                                        tier_max numeric) ON COMMIT DROP;
    TRUNCATE vt;
    INSERT INTO vt
    SELECT v.client_id, v.client_name, v.arr, v.health_score,
           CASE WHEN v.arr >= v_strat THEN 'strategic' WHEN v.arr >= v_ent THEN 'enterprise' WHEN v.arr >= v_pro THEN 'professional'
                WHEN v.arr >= v_std THEN 'standard' ELSE 'starter' END,
           CASE WHEN v.arr >= v_strat THEN 1 WHEN v.arr >= v_ent THEN 2 WHEN v.arr >= v_pro THEN 3 WHEN v.arr >= v_std THEN 4 ELSE 5 END,
           CASE WHEN v.arr >= v_strat THEN NULL WHEN v.arr >= v_ent THEN v_strat WHEN v.arr >= v_pro THEN v_ent
                WHEN v.arr >= v_std THEN v_pro ELSE v_std END
    FROM csmcp.account_values v WHERE v.status = 'active';
    SELECT count(*), coalesce(sum(arr), 0) INTO total, total_arr FROM vt;

    SELECT jsonb_object_agg(tier, jsonb_build_object('priority', prio, 'customer_count', coalesce(n, 0), 'total_arr', coalesce(arr, 0),
                   'avg_arr', round(coalesce(arr, 0) / nullif(n, 0), 2), 'avg_health_score', avg_h,
                   'share_of_customers', round(coalesce(n, 0)::numeric / nullif(total, 0), 3),
                   'share_of_arr', round(coalesce(arr, 0) / nullif(total_arr, 0), 3),
                   'ltv_multiplier', ltv, 'estimated_ltv', round(coalesce(arr, 0) * ltv, 2)))
    INTO dist
    FROM (VALUES ('strategic', 1, 5.5), ('enterprise', 2, 4.75), ('professional', 3, 4.0), ('standard', 4, 3.0), ('starter', 5, 2.5))
         d(tier, prio, ltv)
    LEFT JOIN (SELECT vtier, count(*) AS n, sum(arr) AS arr, round(avg(health), 1) AS avg_h FROM vt GROUP BY vtier) g ON g.vtier = d.tier;

    -- Concentration: the share of ARR held by the top 10% of accounts, and the Pareto count.
    SELECT jsonb_build_object(
        'top_10_percent_share_of_arr', round(coalesce(sum(arr) FILTER (WHERE rn <= ceil(total * 0.1)), 0) / nullif(total_arr, 0), 3),
        'accounts_holding_80_percent_of_arr', count(*) FILTER (WHERE cum - arr < 0.8 * total_arr))
    INTO conc FROM (SELECT arr, row_number() OVER (ORDER BY arr DESC, client_id) AS rn,
                           sum(arr) OVER (ORDER BY arr DESC, client_id) AS cum FROM vt) x;

    IF v_vip THEN
        SELECT coalesce(jsonb_agg(jsonb_build_object('client_id', client_id, 'client_name', client_name, 'arr', arr, 'health_score', health,
                                                     'flags', to_jsonb(array_remove(ARRAY[CASE WHEN health >= 85 THEN 'High health' END,
                                                                                          CASE WHEN arr >= 300000 THEN 'Premium ARR' END], NULL)))
                                  ORDER BY arr DESC, client_id), '[]')
        INTO vips FROM (SELECT * FROM vt WHERE vtier = 'strategic' ORDER BY arr DESC, client_id LIMIT 20) v;
    END IF;
    SELECT coalesce(jsonb_agg(jsonb_build_object('client_id', client_id, 'current_value_tier', vtier, 'arr', arr, 'health_score', health,
                                                 'next_tier_min_arr', tier_max, 'estimated_increase', round(0.3 * tier_max, 2))
                              ORDER BY arr DESC, client_id), '[]')
    INTO ups FROM (SELECT * FROM vt WHERE health >= 75 AND tier_max IS NOT NULL AND arr >= 0.7 * tier_max
                   ORDER BY arr DESC, client_id LIMIT 50) u;
    SELECT coalesce(jsonb_agg(jsonb_build_object('client_id', client_id, 'current_value_tier', vtier, 'arr', arr, 'health_score', health,
                                                 'severity', CASE WHEN health < 50 THEN 'high' ELSE 'medium' END)
                              ORDER BY health, arr DESC, client_id), '[]')
    INTO downs FROM (SELECT * FROM vt WHERE health < 60 ORDER BY health, arr DESC, client_id LIMIT 50) d;

    FOR r IN SELECT vtier, count(*) AS n, sum(arr) AS arr, round(avg(health), 2) AS h FROM vt GROUP BY vtier LOOP
        INSERT INTO segments (segment_id, segmentation_id, name, segment_type, criteria, customer_count, total_arr, avg_health_score, created_by)
        VALUES ('seg_' || substr(run_id, 8) || '_' || r.vtier, run_id, r.vtier, 'value_tier',
                jsonb_build_object('strategic', v_strat, 'enterprise', v_ent, 'professional', v_pro, 'standard', v_std),
                r.n, r.arr, r.h, coalesce(principal, 'anonymous'));
        INSERT INTO segment_members SELECT 'seg_' || substr(run_id, 8) || '_' || r.vtier, client_id FROM vt WHERE vtier = r.vtier;
    END LOOP;

    RETURN jsonb_build_object(
        'segmentation_id', run_id,
        'total_customers', total,
        'total_arr', total_arr,
        'tier_definitions', jsonb_build_object('strategic', jsonb_build_object('min_arr', v_strat),
                                               'enterprise', jsonb_build_object('min_arr', v_ent, 'max_arr', v_strat),
                                               'professional', jsonb_build_object('min_arr', v_pro, 'max_arr', v_ent),
                                               'standard', jsonb_build_object('min_arr', v_std, 'max_arr', v_pro),
                                               'starter', jsonb_build_object('min_arr', 0, 'max_arr', v_std)),
        'tier_distribution', dist,
        'value_concentration', conc,
        'vip_accounts', vips,
        'upgrade_candidates', ups,
        'downgrade_risks', downs,
        'service_level_recommendations', jsonb_build_object(
            'strategic', jsonb_build_object('csm_model', 'Dedicated Senior CSM 1:5-10', 'touch', 'weekly', 'ebr', 'quarterly with executives', 'support_sla', 'Platinum 24/7, 1-hour'),
            'enterprise', jsonb_build_object('csm_model', 'Named CSM 1:15-20', 'touch', 'bi-weekly', 'ebr', 'quarterly', 'support_sla', 'Gold business hours, 2-hour'),
            'professional', jsonb_build_object('csm_model', 'Pooled CSM 1:40-50', 'touch', 'monthly', 'ebr', 'semi-annual', 'support_sla', 'Silver, 4-hour'),
            'standard', jsonb_build_object('csm_model', 'Digital 1:100+', 'touch', 'quarterly automated', 'ebr', 'annual (optional)', 'support_sla', 'Standard email/chat, 8-hour'),
            'starter', jsonb_build_object('csm_model', 'self-service', 'touch', 'automated milestones', 'ebr', 'none', 'support_sla', 'Basic email, 24-hour')));
END $$;

-- analyze_engagement_patterns: trends, weekly rhythm, feature breadth, communication and support
-- patterns, and anomalies (days whose active users deviate >= 3 standard deviations).
CREATE OR REPLACE FUNCTION csmcp.tool_analyze_engagement_patterns(args jsonb, principal text)
RETURNS jsonb LANGUAGE plpgsql AS $$ -- volatile: uses a temporary work table
DECLARE
    t date := csmcp.today();
    v_scope text := csmcp.arg_text(args, 'analysis_scope', 'all_customers', ARRAY['all_customers', 'segment', 'individual']);
    f jsonb := coalesce(args -> 'scope_filter', '{}');
    v_days integer := csmcp.arg_int(args, 'lookback_period_days', 90, 7, 365);
    v_anom boolean := csmcp.arg_bool(args, 'anomaly_detection', true);
    types text[];
    n integer;
    temporal jsonb; feat jsonb; comm jsonb; supp jsonb; anomalies jsonb; patterns jsonb;
BEGIN
    IF args ? 'pattern_types' AND jsonb_typeof(args -> 'pattern_types') = 'array' AND jsonb_array_length(args -> 'pattern_types') > 0 THEN
        SELECT array_agg(x) INTO types FROM jsonb_array_elements_text(args -> 'pattern_types') x;
        IF NOT types <@ ARRAY['temporal', 'feature_usage', 'communication', 'support'] THEN
            PERFORM csmcp.invalid('pattern_types must be among: temporal, feature_usage, communication, support');
        END IF;
    ELSE
        types := ARRAY['temporal', 'feature_usage', 'communication', 'support'];
    END IF;
    IF v_scope = 'individual' THEN
        PERFORM csmcp.require_account(f ->> 'client_id');
    ELSIF v_scope = 'segment' AND f ->> 'segment_id' IS NOT NULL AND NOT EXISTS (SELECT 1 FROM segments WHERE segment_id = f ->> 'segment_id') THEN
        RAISE EXCEPTION 'segment not found: %', f ->> 'segment_id' USING ERRCODE = 'P0002';
    END IF;

    CREATE TEMP TABLE IF NOT EXISTS ep_acc (client_id text PRIMARY KEY) ON COMMIT DROP;
    TRUNCATE ep_acc;
    INSERT INTO ep_acc SELECT a.client_id FROM accounts a
    WHERE CASE v_scope
            WHEN 'individual' THEN a.client_id = f ->> 'client_id'
            WHEN 'segment' THEN (f ->> 'segment_id' IS NULL OR a.client_id IN (SELECT client_id FROM segment_members WHERE segment_id = f ->> 'segment_id'))
                                AND (f ->> 'tier' IS NULL OR a.tier = f ->> 'tier')
                                AND (f ->> 'health_min' IS NULL OR a.health_score >= (f ->> 'health_min')::numeric)
                                AND (f ->> 'health_max' IS NULL OR a.health_score <= (f ->> 'health_max')::numeric)
                                AND a.status <> 'churned'
            ELSE a.status <> 'churned' END;
    SELECT count(*) INTO n FROM ep_acc;

    -- Per-account usage trend (first vs second half of the window).
    CREATE TEMP TABLE IF NOT EXISTS ep_trend (client_id text, first_avg numeric, second_avg numeric, direction text) ON COMMIT DROP;
    TRUNCATE ep_trend;
    INSERT INTO ep_trend
    SELECT e.client_id, x.a1, x.a2,
           CASE WHEN x.a1 = 0 AND x.a2 = 0 THEN 'inactive' WHEN x.a1 = 0 THEN 'growing'
                WHEN (x.a2 - x.a1) / x.a1 > 0.10 THEN 'growing' WHEN (x.a2 - x.a1) / x.a1 < -0.10 THEN 'declining' ELSE 'flat' END
    FROM ep_acc e CROSS JOIN LATERAL (
        SELECT coalesce(sum(u.active_users) FILTER (WHERE u.day <= t - v_days / 2), 0)::numeric / (v_days - v_days / 2) AS a1,
               coalesce(sum(u.active_users) FILTER (WHERE u.day > t - v_days / 2), 0)::numeric / (v_days / 2) AS a2
        FROM usage_daily u WHERE u.client_id = e.client_id AND u.day > t - v_days AND u.day <= t) x;

    IF 'temporal' = ANY (types) THEN
        SELECT jsonb_build_object(
            'accounts_growing', count(*) FILTER (WHERE direction = 'growing'),
            'accounts_flat', count(*) FILTER (WHERE direction = 'flat'),
            'accounts_declining', count(*) FILTER (WHERE direction = 'declining'),
            'accounts_inactive', count(*) FILTER (WHERE direction = 'inactive'),
            'weekday_share_of_events', (SELECT round(sum(u.events) FILTER (WHERE extract(isodow FROM u.day) < 6)::numeric / nullif(sum(u.events), 0), 3)
                                        FROM usage_daily u JOIN ep_acc USING (client_id) WHERE u.day > t - v_days AND u.day <= t),
            'busiest_weekday', (SELECT to_char(u.day, 'FMDay') FROM usage_daily u JOIN ep_acc USING (client_id)
                                WHERE u.day > t - v_days AND u.day <= t GROUP BY extract(isodow FROM u.day), to_char(u.day, 'FMDay')
                                ORDER BY sum(u.events) DESC LIMIT 1))
        INTO temporal FROM ep_trend;
    END IF;
    IF 'feature_usage' = ANY (types) THEN
        SELECT jsonb_build_object(
            'avg_features_per_account', (SELECT round(avg(k), 2) FROM (SELECT e.client_id, count(DISTINCT fd.feature_id) AS k FROM ep_acc e
                                          LEFT JOIN usage_feature_daily fd ON fd.client_id = e.client_id AND fd.day > t - v_days AND fd.day <= t
                                          GROUP BY e.client_id) b),
            'top_features', (SELECT coalesce(jsonb_agg(jsonb_build_object('feature_id', feature_id, 'events', ev, 'accounts', acc) ORDER BY ev DESC, feature_id), '[]')
                             FROM (SELECT fd.feature_id, sum(fd.events) AS ev, count(DISTINCT fd.client_id) AS acc
                                   FROM usage_feature_daily fd JOIN ep_acc USING (client_id) WHERE fd.day > t - v_days AND fd.day <= t
                                   GROUP BY fd.feature_id ORDER BY ev DESC, fd.feature_id LIMIT 5) tf))
        INTO feat;
    END IF;
    IF 'communication' = ANY (types) THEN
        SELECT jsonb_build_object(
            'communications', count(c.*),
            'inbound', count(c.*) FILTER (WHERE c.direction = 'inbound'),
            'outbound', count(c.*) FILTER (WHERE c.direction = 'outbound'),
            'accounts_without_contact', (SELECT count(*) FROM ep_acc e WHERE NOT EXISTS (
                SELECT 1 FROM communications c2 WHERE c2.client_id = e.client_id AND c2.occurred_at > now() - make_interval(days => v_days))),
            'by_channel', (SELECT coalesce(jsonb_object_agg(channel, k), '{}') FROM (SELECT c3.channel, count(*) AS k FROM communications c3
                           JOIN ep_acc USING (client_id) WHERE c3.occurred_at > now() - make_interval(days => v_days) GROUP BY 1) ch))
        INTO comm FROM communications c JOIN ep_acc USING (client_id) WHERE c.occurred_at > now() - make_interval(days => v_days);
    END IF;
    IF 'support' = ANY (types) THEN
        SELECT jsonb_build_object(
            'tickets', count(s.*),
            'tickets_per_account', round(count(s.*)::numeric / greatest(n, 1), 2),
            'critical_share', round(count(s.*) FILTER (WHERE s.priority IN ('P0', 'P1'))::numeric / nullif(count(s.*), 0), 3),
            'accounts_with_3_or_more_tickets', (SELECT count(*) FROM (SELECT s2.client_id FROM support_tickets s2 JOIN ep_acc USING (client_id)
                                                WHERE s2.created_at > now() - make_interval(days => v_days) GROUP BY 1 HAVING count(*) >= 3) h),
            'top_categories', (SELECT coalesce(jsonb_object_agg(category, k), '{}') FROM (SELECT s3.category, count(*) AS k FROM support_tickets s3
                               JOIN ep_acc USING (client_id) WHERE s3.created_at > now() - make_interval(days => v_days) GROUP BY 1) cat))
        INTO supp FROM support_tickets s JOIN ep_acc USING (client_id) WHERE s.created_at > now() - make_interval(days => v_days);
    END IF;

    IF v_anom THEN
        WITH days AS (
            SELECT e.client_id, g.d::date AS day, coalesce(u.active_users, 0) AS dau
            FROM ep_acc e CROSS JOIN generate_series(t - v_days + 1, t, interval '1 day') g(d)
            LEFT JOIN usage_daily u ON u.client_id = e.client_id AND u.day = g.d::date
        ), stats AS (
            SELECT client_id, avg(dau) AS mu, stddev_pop(dau) AS sd FROM days GROUP BY client_id
        )
        SELECT coalesce(jsonb_agg(jsonb_build_object('client_id', client_id, 'day', day, 'metric', 'daily_active_users',
                                                     'value', dau, 'expected', round(mu, 2), 'z_score', z,
                                                     'kind', CASE WHEN z > 0 THEN 'spike' ELSE 'drop' END)
                                  ORDER BY abs(z) DESC, client_id, day), '[]')
        INTO anomalies FROM (
            SELECT d.client_id, d.day, d.dau, s.mu, round((d.dau - s.mu) / s.sd, 2) AS z
            FROM days d JOIN stats s USING (client_id)
            WHERE s.sd > 0 AND abs(d.dau - s.mu) / s.sd >= 3
            ORDER BY abs((d.dau - s.mu) / s.sd) DESC, d.client_id, d.day LIMIT 50) a;
    END IF;

    SELECT jsonb_agg(p ORDER BY (p->>'prevalence')::numeric DESC, p->>'pattern') INTO patterns FROM (
        SELECT jsonb_build_object('pattern', 'growing_usage', 'accounts', count(*) FILTER (WHERE direction = 'growing'),
                                  'prevalence', round(count(*) FILTER (WHERE direction = 'growing')::numeric / greatest(n, 1), 3)) AS p FROM ep_trend
        UNION ALL
        SELECT jsonb_build_object('pattern', 'declining_usage', 'accounts', count(*) FILTER (WHERE direction = 'declining'),
                                  'prevalence', round(count(*) FILTER (WHERE direction = 'declining')::numeric / greatest(n, 1), 3)) FROM ep_trend
        UNION ALL
        SELECT jsonb_build_object('pattern', 'flat_usage', 'accounts', count(*) FILTER (WHERE direction = 'flat'),
                                  'prevalence', round(count(*) FILTER (WHERE direction = 'flat')::numeric / greatest(n, 1), 3)) FROM ep_trend
        UNION ALL
        SELECT jsonb_build_object('pattern', 'inactive', 'accounts', count(*) FILTER (WHERE direction = 'inactive'),
                                  'prevalence', round(count(*) FILTER (WHERE direction = 'inactive')::numeric / greatest(n, 1), 3)) FROM ep_trend) x;

    RETURN jsonb_build_object(
        'analysis_scope', v_scope,
        'scope_filter', f,
        'lookback_period_days', v_days,
        'customers_analyzed', n,
        'identified_patterns', coalesce(patterns, '[]'),
        'declining_accounts', (SELECT coalesce(jsonb_agg(jsonb_build_object('client_id', client_id, 'first_half_avg_dau', round(first_avg, 2),
                                                         'second_half_avg_dau', round(second_avg, 2)) ORDER BY (second_avg - first_avg) / first_avg, client_id), '[]')
                               FROM (SELECT * FROM ep_trend WHERE direction = 'declining'
                                     ORDER BY (second_avg - first_avg) / first_avg, client_id LIMIT 20) d),
        'temporal_patterns', temporal,
        'feature_usage_patterns', feat,
        'communication_patterns', comm,
        'support_patterns', supp,
        'anomalies', anomalies);
END $$;

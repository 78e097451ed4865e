-- segment_customers: builds segments by rule, persists them (segments + segment_members).
CREATE OR REPLACE FUNCTION csmcp.tool_segment_customers(args jsonb, principal text)
-- no JIT: at 100,000 accounts the plans' costs pass jit_above_cost and compiling took longer than
-- the query (issue 21: 1.5 s of a hierarchy rollup that runs in 70 ms)
RETURNS jsonb LANGUAGE plpgsql SET jit = off AS $$
DECLARE
    t date := csmcp.today();
    v_type text := csmcp.arg_text(args, 'segmentation_type', NULL,
                                  ARRAY['value_based', 'usage_based', 'health_based', 'industry', 'lifecycle', 'custom']);
    crit jsonb := coalesce(args -> 'criteria', '{}');
    v_min integer := csmcp.arg_int(args, 'min_segment_size', 5, 1, 100000);
    run_id text := 'segrun_' || to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYYMMDDHH24MISSUS');
    analyzed integer;
    segs jsonb;
    r record;
    n integer := 0;
    seg_id text;
    seg_list jsonb := '[]';
    covered integer := 0;
BEGIN
    IF v_type IS NULL THEN PERFORM csmcp.invalid('segmentation_type is required'); END IF;
    IF jsonb_typeof(crit) <> 'object' THEN PERFORM csmcp.invalid('criteria must be an object'); END IF;
    IF v_type = 'custom' AND crit = '{}'::jsonb THEN
        PERFORM csmcp.invalid('custom segmentation needs criteria (tier, industry, lifecycle_stage, health_min, health_max, min_arr, max_arr)');
    END IF;

    -- before reading the accounts: serialised with deletions of accounts (common/segment_members.sql)
    PERFORM csmcp.segment_sets_lock();
    -- each account's ARR and score kept with its segment: the per-segment figures below need no
    -- second read of account_values
    CREATE TEMP TABLE IF NOT EXISTS seg_assign_v (client_id text, segment text, ord integer, arr numeric, health integer)
        ON COMMIT DROP;
    TRUNCATE seg_assign_v;
    INSERT INTO seg_assign_v
    SELECT v.client_id, x.segment, x.ord, v.arr, v.health_score FROM csmcp.account_values v
    LEFT JOIN LATERAL (
        SELECT u.avg_dau FROM (SELECT coalesce(sum(active_users), 0)::numeric / 30 AS avg_dau FROM usage_daily
                               WHERE client_id = v.client_id AND day > t - 30 AND day <= t) u
        WHERE v_type = 'usage_based') ud ON true
    CROSS JOIN LATERAL (
        SELECT * FROM (VALUES
            (CASE v_type
                WHEN 'value_based' THEN CASE WHEN v.arr >= 100000 THEN 'VIP Strategic' WHEN v.arr >= 50000 THEN 'High-Value Growth'
                                             WHEN v.arr >= 10000 THEN 'Standard' END
                WHEN 'usage_based' THEN CASE WHEN v.licensed_seats IS NULL THEN 'No Seat Data'
                                             WHEN ud.avg_dau / v.licensed_seats >= 0.8 THEN 'Power Users'
                                             WHEN ud.avg_dau / v.licensed_seats >= 0.4 THEN 'Active Regular' ELSE 'Casual' END
                WHEN 'health_based' THEN CASE WHEN v.health_score >= 80 THEN 'Healthy & Thriving' WHEN v.health_score >= 60 THEN 'Moderate'
                                              ELSE 'At Risk' END
                WHEN 'industry' THEN v.industry
                WHEN 'lifecycle' THEN v.lifecycle_stage
                WHEN 'custom' THEN CASE WHEN (crit->>'tier' IS NULL OR v.tier = crit->>'tier')
                                         AND (crit->>'industry' IS NULL OR lower(v.industry) = lower(crit->>'industry'))
                                         AND (crit->>'lifecycle_stage' IS NULL OR v.lifecycle_stage = crit->>'lifecycle_stage')
                                         AND (crit->>'health_min' IS NULL OR v.health_score >= (crit->>'health_min')::numeric)
                                         AND (crit->>'health_max' IS NULL OR v.health_score <= (crit->>'health_max')::numeric)
                                         AND (crit->>'min_arr' IS NULL OR v.arr >= (crit->>'min_arr')::numeric)
                                         AND (crit->>'max_arr' IS NULL OR v.arr <= (crit->>'max_arr')::numeric)
                                        THEN coalesce(crit->>'name', 'Custom Segment') END
             END,
             CASE v_type WHEN 'value_based' THEN CASE WHEN v.arr >= 100000 THEN 1 WHEN v.arr >= 50000 THEN 2 ELSE 3 END
                         WHEN 'health_based' THEN CASE WHEN v.health_score >= 80 THEN 1 WHEN v.health_score >= 60 THEN 2 ELSE 3 END
                         WHEN 'usage_based' THEN CASE WHEN v.licensed_seats IS NULL THEN 4 WHEN ud.avg_dau / v.licensed_seats >= 0.8 THEN 1
                                                      WHEN ud.avg_dau / v.licensed_seats >= 0.4 THEN 2 ELSE 3 END
                         ELSE 0 END)) s(segment, ord)) x
    WHERE v.status <> 'churned' OR v_type = 'lifecycle';

    SELECT count(*) INTO analyzed FROM seg_assign_v;

    FOR r IN
        SELECT sa.segment, min(sa.ord) AS ord, count(*) AS cnt, sum(sa.arr) AS arr, round(avg(sa.health), 2) AS avg_h
        FROM seg_assign_v sa
        WHERE sa.segment IS NOT NULL GROUP BY sa.segment HAVING count(*) >= v_min ORDER BY min(sa.ord), sa.segment
    LOOP
        n := n + 1;
        seg_id := 'seg_' || substr(run_id, 8) || '_' || n;
        INSERT INTO segments (segment_id, segmentation_id, name, segment_type, criteria, customer_count, total_arr,
                              avg_health_score, created_by)
        VALUES (seg_id, run_id, r.segment, v_type, crit, r.cnt, r.arr, r.avg_h, coalesce(principal, 'anonymous'));
        -- the members as one sorted array (migration 0180: a row per member, with its two
        -- foreign-key checks, was most of a call)
        INSERT INTO segment_member_sets (segment_id, client_ids)
        SELECT seg_id, array_agg(client_id ORDER BY client_id) FROM seg_assign_v WHERE segment = r.segment;
        covered := covered + r.cnt;
        seg_list := seg_list || jsonb_build_object(
            'segment_id', seg_id, 'name', r.segment, 'customer_count', r.cnt, 'total_arr', r.arr,
            'avg_arr', round(r.arr / r.cnt, 2), 'avg_health_score', r.avg_h,
            'share_of_customers', round(r.cnt::numeric / greatest(analyzed, 1), 3),
            'engagement_strategy', jsonb_build_object(
                'channels', CASE WHEN r.arr / r.cnt > 100000 THEN '["direct_call","executive_email","in_person","video_conference"]'::jsonb
                                 WHEN r.arr / r.cnt > 50000 THEN '["video_conference","email","in_app","phone"]'::jsonb
                                 ELSE '["email","in_app","automated_campaigns","self_service"]'::jsonb END,
                'touch_frequency', CASE WHEN r.arr / r.cnt > 100000 THEN 'weekly' WHEN r.arr / r.cnt > 25000 THEN 'bi-weekly' ELSE 'monthly' END,
                'automation_level', CASE WHEN r.arr / r.cnt > 75000 THEN 'low' WHEN r.arr / r.cnt > 25000 THEN 'medium' ELSE 'high' END));
    END LOOP;
    PERFORM csmcp.log_activity(NULL, principal, 'segment_customers', 'segmentation', run_id, NULL,
                               jsonb_build_object('segmentation_type', v_type, 'segments', n));

    RETURN jsonb_build_object(
        'segmentation_id', run_id,
        'segmentation_type', v_type,
        'execution_timestamp', now(),
        'criteria', crit,
        'min_segment_size', v_min,
        'total_customers_analyzed', analyzed,
        'segments_created', n,
        'segments', seg_list,
        'customers_segmented', covered,
        'customers_unsegmented', analyzed - covered);
END $$;

-- The version before migration 0180 (one segment_members row per member, through the view's
-- INSTEAD OF trigger): the reference of tests/integration/test_rollup_equality_segments.py.
CREATE OR REPLACE FUNCTION csmcp.tool_segment_customers_scratch(args jsonb, principal text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    t date := csmcp.today();
    v_type text := csmcp.arg_text(args, 'segmentation_type', NULL,
                                  ARRAY['value_based', 'usage_based', 'health_based', 'industry', 'lifecycle', 'custom']);
    crit jsonb := coalesce(args -> 'criteria', '{}');
    v_min integer := csmcp.arg_int(args, 'min_segment_size', 5, 1, 100000);
    run_id text := 'segrun_' || to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYYMMDDHH24MISSUS');
    analyzed integer;
    segs jsonb;
    r record;
    n integer := 0;
    seg_id text;
    seg_list jsonb := '[]';
    covered integer := 0;
BEGIN
    IF v_type IS NULL THEN PERFORM csmcp.invalid('segmentation_type is required'); END IF;
    IF jsonb_typeof(crit) <> 'object' THEN PERFORM csmcp.invalid('criteria must be an object'); END IF;
    IF v_type = 'custom' AND crit = '{}'::jsonb THEN
        PERFORM csmcp.invalid('custom segmentation needs criteria (tier, industry, lifecycle_stage, health_min, health_max, min_arr, max_arr)');
    END IF;

    CREATE TEMP TABLE IF NOT EXISTS seg_assign (client_id text, segment text, ord integer) ON COMMIT DROP;
    TRUNCATE seg_assign;
    INSERT INTO seg_assign
    SELECT v.client_id, x.segment, x.ord FROM csmcp.account_values v
    LEFT JOIN LATERAL (
        SELECT u.avg_dau FROM (SELECT coalesce(sum(active_users), 0)::numeric / 30 AS avg_dau FROM usage_daily
                               WHERE client_id = v.client_id AND day > t - 30 AND day <= t) u
        WHERE v_type = 'usage_based') ud ON true
    CROSS JOIN LATERAL (
        SELECT * FROM (VALUES
            (CASE v_type
                WHEN 'value_based' THEN CASE WHEN v.arr >= 100000 THEN 'VIP Strategic' WHEN v.arr >= 50000 THEN 'High-Value Growth'
                                             WHEN v.arr >= 10000 THEN 'Standard' END
                WHEN 'usage_based' THEN CASE WHEN v.licensed_seats IS NULL THEN 'No Seat Data'
                                             WHEN ud.avg_dau / v.licensed_seats >= 0.8 THEN 'Power Users'
                                             WHEN ud.avg_dau / v.licensed_seats >= 0.4 THEN 'Active Regular' ELSE 'Casual' END
                WHEN 'health_based' THEN CASE WHEN v.health_score >= 80 THEN 'Healthy & Thriving' WHEN v.health_score >= 60 THEN 'Moderate'
                                              ELSE 'At Risk' END
                WHEN 'industry' THEN v.industry
                WHEN 'lifecycle' THEN v.lifecycle_stage
                WHEN 'custom' THEN CASE WHEN (crit->>'tier' IS NULL OR v.tier = crit->>'tier')
                                         AND (crit->>'industry' IS NULL OR lower(v.industry) = lower(crit->>'industry'))
                                         AND (crit->>'lifecycle_stage' IS NULL OR v.lifecycle_stage = crit->>'lifecycle_stage')
                                         AND (crit->>'health_min' IS NULL OR v.health_score >= (crit->>'health_min')::numeric)
                                         AND (crit->>'health_max' IS NULL OR v.health_score <= (crit->>'health_max')::numeric)
                                         AND (crit->>'min_arr' IS NULL OR v.arr >= (crit->>'min_arr')::numeric)
                                         AND (crit->>'max_arr' IS NULL OR v.arr <= (crit->>'max_arr')::numeric)
                                        THEN coalesce(crit->>'name', 'Custom Segment') END
             END,
             CASE v_type WHEN 'value_based' THEN CASE WHEN v.arr >= 100000 THEN 1 WHEN v.arr >= 50000 THEN 2 ELSE 3 END
                         WHEN 'health_based' THEN CASE WHEN v.health_score >= 80 THEN 1 WHEN v.health_score >= 60 THEN 2 ELSE 3 END
                         WHEN 'usage_based' THEN CASE WHEN v.licensed_seats IS NULL THEN 4 WHEN ud.avg_dau / v.licensed_seats >= 0.8 THEN 1
                                                      WHEN ud.avg_dau / v.licensed_seats >= 0.4 THEN 2 ELSE 3 END
                         ELSE 0 END)) s(segment, ord)) x
    WHERE v.status <> 'churned' OR v_type = 'lifecycle';

    SELECT count(*) INTO analyzed FROM seg_assign;

    FOR r IN
        SELECT sa.segment, min(sa.ord) AS ord, count(*) AS cnt, sum(v.arr) AS arr, round(avg(v.health_score), 2) AS avg_h
        FROM seg_assign sa JOIN csmcp.account_values v USING (client_id)
        WHERE sa.segment IS NOT NULL GROUP BY sa.segment HAVING count(*) >= v_min ORDER BY min(sa.ord), sa.segment
    LOOP
        n := n + 1;
        seg_id := 'seg_' || substr(run_id, 8) || '_' || n;
        INSERT INTO segments (segment_id, segmentation_id, name, segment_type, criteria, customer_count, total_arr,
                              avg_health_score, created_by)
        VALUES (seg_id, run_id, r.segment, v_type, crit, r.cnt, r.arr, r.avg_h, coalesce(principal, 'anonymous'));
        INSERT INTO segment_members (segment_id, client_id) SELECT seg_id, client_id FROM seg_assign WHERE segment = r.segment;
        covered := covered + r.cnt;
        seg_list := seg_list || jsonb_build_object(
            'segment_id', seg_id, 'name', r.segment, 'customer_count', r.cnt, 'total_arr', r.arr,
            'avg_arr', round(r.arr / r.cnt, 2), 'avg_health_score', r.avg_h,
            'share_of_customers', round(r.cnt::numeric / greatest(analyzed, 1), 3),
            'engagement_strategy', jsonb_build_object(
                'channels', CASE WHEN r.arr / r.cnt > 100000 THEN '["direct_call","executive_email","in_person","video_conference"]'::jsonb
                                 WHEN r.arr / r.cnt > 50000 THEN '["video_conference","email","in_app","phone"]'::jsonb
                                 ELSE '["email","in_app","automated_campaigns","self_service"]'::jsonb END,
                'touch_frequency', CASE WHEN r.arr / r.cnt > 100000 THEN 'weekly' WHEN r.arr / r.cnt > 25000 THEN 'bi-weekly' ELSE 'monthly' END,
                'automation_level', CASE WHEN r.arr / r.cnt > 75000 THEN 'low' WHEN r.arr / r.cnt > 25000 THEN 'medium' ELSE 'high' END));
    END LOOP;
    PERFORM csmcp.log_activity(NULL, principal, 'segment_customers', 'segmentation', run_id, NULL,
                               jsonb_build_object('segmentation_type', v_type, 'segments', n));

    RETURN jsonb_build_object(
        'segmentation_id', run_id,
        'segmentation_type', v_type,
        'execution_timestamp', now(),
        'criteria', crit,
        'min_segment_size', v_min,
        'total_customers_analyzed', analyzed,
        'segments_created', n,
        'segments', seg_list,
        'customers_segmented', covered,
        'customers_unsegmented', analyzed - covered);
END $$;

-- segment_by_value_tier: ARR tiers (defaults: strategic >= 200000, enterprise >= 100000,
-- professional >= 50000, standard >= 10000, starter below), persisted as segments.
CREATE OR REPLACE FUNCTION csmcp.tool_segment_by_value_tier(args jsonb, principal text)
-- no JIT: at 100,000 accounts the plans' costs pass jit_above_cost and compiling took longer than
-- the query (issue 21: 1.5 s of a hierarchy rollup that runs in 70 ms)
RETURNS jsonb LANGUAGE plpgsql SET jit = off AS $$
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
BEGIN
    IF NOT (v_strat > v_ent AND v_ent > v_pro AND v_pro > v_std AND v_std >= 0) THEN
        PERFORM csmcp.invalid('tier_definitions min_arr must decrease: strategic > enterprise > professional > standard >= 0');
    END IF;
    -- before reading the accounts: serialised with deletions of accounts (common/segment_members.sql)
    PERFORM csmcp.segment_sets_lock();
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

    -- one statement per table; the members as one sorted array per tier (migration 0180: one
    -- segment_members row per account, with its two foreign-key checks, was most of a call)
    INSERT INTO segments (segment_id, segmentation_id, name, segment_type, criteria, customer_count, total_arr, avg_health_score, created_by)
    SELECT 'seg_' || substr(run_id, 8) || '_' || g.vtier, run_id, g.vtier, 'value_tier',
           jsonb_build_object('strategic', v_strat, 'enterprise', v_ent, 'professional', v_pro, 'standard', v_std),
           g.n, g.arr, g.h, coalesce(principal, 'anonymous')
    FROM (SELECT vtier, count(*) AS n, sum(arr) AS arr, round(avg(health), 2) AS h FROM vt GROUP BY vtier) g;
    INSERT INTO segment_member_sets (segment_id, client_ids)
    SELECT 'seg_' || substr(run_id, 8) || '_' || vtier, array_agg(client_id ORDER BY client_id) FROM vt GROUP BY vtier;

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

-- The version before migration 0180 (one segment_members row per member, through the view's
-- INSTEAD OF trigger): the reference of tests/integration/test_rollup_equality_segments.py.
CREATE OR REPLACE FUNCTION csmcp.tool_segment_by_value_tier_scratch(args jsonb, principal text)
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

    -- one statement per table (issue 21: five loops re-read vt; every member row still pays its
    -- two foreign-key checks, most of the cost of a call)
    INSERT INTO segments (segment_id, segmentation_id, name, segment_type, criteria, customer_count, total_arr, avg_health_score, created_by)
    SELECT 'seg_' || substr(run_id, 8) || '_' || g.vtier, run_id, g.vtier, 'value_tier',
           jsonb_build_object('strategic', v_strat, 'enterprise', v_ent, 'professional', v_pro, 'standard', v_std),
           g.n, g.arr, g.h, coalesce(principal, 'anonymous')
    FROM (SELECT vtier, count(*) AS n, sum(arr) AS arr, round(avg(health), 2) AS h FROM vt GROUP BY vtier) g;
    INSERT INTO segment_members SELECT 'seg_' || substr(run_id, 8) || '_' || vtier, client_id FROM vt;

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

-- list_clients: filters, sorting and pagination; the summary covers the whole filtered set.
-- Summary: without filters, or with tier_filter / lifecycle_stage_filter only, from the
-- maintained totals (db/functions/portfolio/) (cost independent of the number of accounts); with any other filter,
-- computed over the filtered set as before. Page: one query whose ORDER BY matches an index
-- for the common sorts, so only offset + limit rows are read; the ORDER BY text is chosen from
-- the constant strings below (never from the arguments), every value is a bound parameter.
-- health_score is the effective score (an active manual override, else the computed score:
-- csmcp.active_health_overrides, db/functions/scorecards/_lib.sql) in rows, filters, sorting and the
-- average; computed_health_score is shown beside it.
CREATE OR REPLACE FUNCTION csmcp.tool_list_clients(args jsonb, principal text)
RETURNS jsonb LANGUAGE plpgsql STABLE SET plan_cache_mode = force_custom_plan AS $$
DECLARE
    t date := csmcp.today();
    f_tier text := csmcp.arg_text(args, 'tier_filter', NULL, ARRAY['starter', 'standard', 'professional', 'enterprise']);
    f_stage text := csmcp.arg_text(args, 'lifecycle_stage_filter', NULL,
                                   ARRAY['onboarding', 'active', 'at_risk', 'churned', 'expansion', 'renewal']);
    f_min integer := csmcp.arg_int(args, 'health_score_min', NULL, 0, 100);
    f_max integer := csmcp.arg_int(args, 'health_score_max', NULL, 0, 100);
    f_industry text := csmcp.arg_text(args, 'industry_filter', NULL);
    f_csm text := csmcp.arg_text(args, 'csm_filter', NULL);
    f_search text := csmcp.arg_text(args, 'search', NULL);
    f_renew integer := csmcp.arg_int(args, 'renewal_within_days', NULL, 0, 3650);
    v_sort text := csmcp.arg_text(args, 'sort_by', 'client_id',
                                  ARRAY['client_id', 'client_name', 'health_score', 'contract_value', 'days_until_renewal']);
    v_desc boolean := csmcp.arg_text(args, 'sort_order', 'asc', ARRAY['asc', 'desc']) = 'desc';
    v_limit integer := csmcp.arg_int(args, 'limit', 50, 1, 1000);
    v_offset integer := csmcp.arg_int(args, 'offset', 0, 0, 100000000);
    v_order text;
    v_from text := 'accounts a';
    v_renew text := '';
    clients jsonb;
    n_page bigint;
    s record;
    users numeric;
BEGIN
    IF f_min IS NOT NULL AND f_max IS NOT NULL AND f_min > f_max THEN
        PERFORM csmcp.invalid('health_score_min must not exceed health_score_max');
    END IF;

    -- Ties are broken by client_id in the direction of the sort; NULL values sort last both ways.
    v_order := CASE v_sort
        WHEN 'client_id' THEN 'a.client_id ASC'
        WHEN 'client_name' THEN 'a.client_name ASC, a.client_id ASC'
        WHEN 'health_score' THEN 'coalesce(ov.score, a.health_score) ASC, a.client_id ASC'
        WHEN 'contract_value' THEN 'c.contract_value ASC NULLS LAST, a.client_id ASC'
        ELSE 'c.end_date ASC NULLS LAST, a.client_id ASC' END;
    IF v_desc THEN
        v_order := replace(v_order, ' ASC', ' DESC');
    END IF;
    -- The contract is joined for the page's selection only when a sort or filter needs it.
    IF v_sort IN ('contract_value', 'days_until_renewal') OR f_renew IS NOT NULL THEN
        v_from := 'accounts a LEFT JOIN contracts c ON c.client_id = a.client_id AND c.status = ''active''';
    END IF;
    IF f_renew IS NOT NULL THEN
        v_renew := 'AND c.end_date IS NOT NULL AND c.end_date - $1 BETWEEN 0 AND $9';
    END IF;
    EXECUTE
        'WITH pg AS (
            SELECT a.client_id, row_number() OVER (ORDER BY ' || v_order || ') AS ord
            FROM ' || v_from || ' LEFT JOIN csmcp.active_health_overrides() ov ON ov.client_id = a.client_id
            WHERE ($2::text IS NULL OR a.tier = $2)
              AND ($3::text IS NULL OR a.lifecycle_stage = $3)
              AND ($4::integer IS NULL OR coalesce(ov.score, a.health_score) >= $4)
              AND ($5::integer IS NULL OR coalesce(ov.score, a.health_score) <= $5)
              AND ($6::text IS NULL OR lower(a.industry) = lower($6))
              AND ($7::text IS NULL OR a.csm_assigned = $7)
              AND ($8::text IS NULL OR a.client_name ILIKE ''%'' || $8 || ''%'' OR a.company_name ILIKE ''%'' || $8 || ''%'')
              ' || v_renew || '
            ORDER BY ' || v_order || ' LIMIT $10 OFFSET $11)
        SELECT coalesce(jsonb_agg(jsonb_build_object(
                ''client_id'', a.client_id, ''client_name'', a.client_name, ''company_name'', a.company_name, ''tier'', a.tier,
                ''industry'', a.industry, ''lifecycle_stage'', a.lifecycle_stage,
                ''health_score'', coalesce(ov.score, a.health_score), ''computed_health_score'', a.health_score,
                ''health_overridden'', ov.score IS NOT NULL,
                ''health_trend'', a.health_trend, ''contract_value'', c.contract_value,
                ''days_until_renewal'', c.end_date - $1, ''csm_assigned'', a.csm_assigned,
                ''active_users'', (SELECT round(coalesce(sum(u.active_users), 0)::numeric / 7, 1) FROM usage_daily u
                                   WHERE u.client_id = a.client_id AND u.day > $1 - 7 AND u.day <= $1),
                ''support_tickets_open'', (SELECT count(*) FROM support_tickets st WHERE st.client_id = a.client_id
                                           AND st.status NOT IN (''resolved'', ''closed''))) ORDER BY pg.ord), ''[]''::jsonb),
               count(*)
        FROM pg JOIN accounts a USING (client_id)
        LEFT JOIN contracts c ON c.client_id = a.client_id AND c.status = ''active''
        LEFT JOIN csmcp.active_health_overrides() ov ON ov.client_id = a.client_id'
    INTO clients, n_page
    USING t, f_tier, f_stage, f_min, f_max, f_industry, f_csm, f_search, f_renew, v_limit, v_offset;

    IF f_min IS NULL AND f_max IS NULL AND f_industry IS NULL AND f_csm IS NULL AND f_search IS NULL
       AND f_renew IS NULL THEN
        SELECT coalesce(sum(p.accounts), 0)::bigint AS n,
               round((sum(p.health_sum) + (SELECT coalesce(sum(ov.score - a.health_score), 0)
                                             FROM csmcp.active_health_overrides() ov JOIN accounts a USING (client_id)
                                            WHERE (f_tier IS NULL OR a.tier = f_tier)
                                              AND (f_stage IS NULL OR a.lifecycle_stage = f_stage)))::numeric
                     / nullif(sum(p.accounts), 0), 1) AS avg_health,
               coalesce(sum(p.arr), 0) AS arr,
               coalesce(sum(p.accounts) FILTER (WHERE p.lifecycle_stage = 'onboarding'), 0)::bigint AS s_onb,
               coalesce(sum(p.accounts) FILTER (WHERE p.lifecycle_stage = 'active'), 0)::bigint AS s_act,
               coalesce(sum(p.accounts) FILTER (WHERE p.lifecycle_stage = 'at_risk'), 0)::bigint AS s_risk,
               coalesce(sum(p.accounts) FILTER (WHERE p.lifecycle_stage = 'churned'), 0)::bigint AS s_churn,
               coalesce(sum(p.accounts) FILTER (WHERE p.lifecycle_stage = 'expansion'), 0)::bigint AS s_exp,
               coalesce(sum(p.accounts) FILTER (WHERE p.lifecycle_stage = 'renewal'), 0)::bigint AS s_ren,
               coalesce(sum(p.accounts) FILTER (WHERE p.tier = 'starter'), 0)::bigint AS t_st,
               coalesce(sum(p.accounts) FILTER (WHERE p.tier = 'standard'), 0)::bigint AS t_sd,
               coalesce(sum(p.accounts) FILTER (WHERE p.tier = 'professional'), 0)::bigint AS t_pr,
               coalesce(sum(p.accounts) FILTER (WHERE p.tier = 'enterprise'), 0)::bigint AS t_en
        INTO s
        FROM portfolio_counts p
        WHERE (f_tier IS NULL OR p.tier = f_tier) AND (f_stage IS NULL OR p.lifecycle_stage = f_stage);
        SELECT round(coalesce(sum(p.active_users), 0)::numeric / 7, 1) INTO users
        FROM portfolio_usage p
        WHERE p.day > t - 7 AND p.day <= t
          AND (f_tier IS NULL OR p.tier = f_tier) AND (f_stage IS NULL OR p.lifecycle_stage = f_stage);
    ELSE
        WITH filtered AS (
            -- accounts without an active override by their computed score (the health index
            -- estimates this part), plus the few overridden ones by their override
            SELECT a.client_id, a.tier, a.lifecycle_stage, a.health_score, c.contract_value
            FROM accounts a LEFT JOIN contracts c ON c.client_id = a.client_id AND c.status = 'active'
            WHERE (f_tier IS NULL OR a.tier = f_tier)
              AND (f_stage IS NULL OR a.lifecycle_stage = f_stage)
              AND (f_min IS NULL OR a.health_score >= f_min)
              AND (f_max IS NULL OR a.health_score <= f_max)
              AND (f_industry IS NULL OR lower(a.industry) = lower(f_industry))
              AND (f_csm IS NULL OR a.csm_assigned = f_csm)
              AND (f_search IS NULL OR a.client_name ILIKE '%' || f_search || '%' OR a.company_name ILIKE '%' || f_search || '%')
              AND (f_renew IS NULL OR (c.end_date IS NOT NULL AND c.end_date - t BETWEEN 0 AND f_renew))
              AND NOT EXISTS (SELECT 1 FROM csmcp.active_health_overrides() ov WHERE ov.client_id = a.client_id)
            UNION ALL
            SELECT a.client_id, a.tier, a.lifecycle_stage, ov.score, c.contract_value
            FROM csmcp.active_health_overrides() ov JOIN accounts a ON a.client_id = ov.client_id
            LEFT JOIN contracts c ON c.client_id = a.client_id AND c.status = 'active'
            WHERE (f_tier IS NULL OR a.tier = f_tier)
              AND (f_stage IS NULL OR a.lifecycle_stage = f_stage)
              AND (f_min IS NULL OR ov.score >= f_min)
              AND (f_max IS NULL OR ov.score <= f_max)
              AND (f_industry IS NULL OR lower(a.industry) = lower(f_industry))
              AND (f_csm IS NULL OR a.csm_assigned = f_csm)
              AND (f_search IS NULL OR a.client_name ILIKE '%' || f_search || '%' OR a.company_name ILIKE '%' || f_search || '%')
              AND (f_renew IS NULL OR (c.end_date IS NOT NULL AND c.end_date - t BETWEEN 0 AND f_renew))
        ),
        users_cte AS (
            SELECT round(coalesce(sum(u.active_users), 0)::numeric / 7, 1) AS total
            FROM usage_daily u JOIN filtered f USING (client_id) WHERE u.day > t - 7 AND u.day <= t
        )
        SELECT count(*) AS n, round(avg(health_score), 1) AS avg_health, coalesce(sum(contract_value), 0) AS arr,
               count(*) FILTER (WHERE lifecycle_stage = 'onboarding') AS s_onb,
               count(*) FILTER (WHERE lifecycle_stage = 'active') AS s_act,
               count(*) FILTER (WHERE lifecycle_stage = 'at_risk') AS s_risk,
               count(*) FILTER (WHERE lifecycle_stage = 'churned') AS s_churn,
               count(*) FILTER (WHERE lifecycle_stage = 'expansion') AS s_exp,
               count(*) FILTER (WHERE lifecycle_stage = 'renewal') AS s_ren,
               count(*) FILTER (WHERE tier = 'starter') AS t_st, count(*) FILTER (WHERE tier = 'standard') AS t_sd,
               count(*) FILTER (WHERE tier = 'professional') AS t_pr, count(*) FILTER (WHERE tier = 'enterprise') AS t_en,
               (SELECT total FROM users_cte) AS users
        INTO s FROM filtered;
        users := s.users;
    END IF;

    RETURN jsonb_build_object(
        'clients', clients,
        'pagination', jsonb_build_object('total_count', s.n, 'limit', v_limit, 'offset', v_offset,
                                         'returned_count', n_page, 'has_more', v_offset + n_page < s.n),
        'filters_applied', jsonb_strip_nulls(jsonb_build_object('tier_filter', f_tier, 'lifecycle_stage_filter', f_stage,
            'health_score_min', f_min, 'health_score_max', f_max, 'industry_filter', f_industry, 'csm_filter', f_csm,
            'search', f_search, 'renewal_within_days', f_renew, 'sort_by', v_sort, 'sort_order', CASE WHEN v_desc THEN 'desc' ELSE 'asc' END)),
        'summary', jsonb_build_object('total_clients', s.n, 'average_health_score', s.avg_health, 'total_arr', s.arr,
            'total_active_users', users,
            'lifecycle_breakdown', jsonb_build_object('onboarding', s.s_onb, 'active', s.s_act, 'at_risk', s.s_risk,
                                                      'churned', s.s_churn, 'expansion', s.s_exp, 'renewal', s.s_ren),
            'tier_breakdown', jsonb_build_object('starter', s.t_st, 'standard', s.t_sd, 'professional', s.t_pr, 'enterprise', s.t_en)));
END $$;

-- track_cs_metrics: one customer-success metric computed from stored data over a period and its
-- buckets, against the previous period (trend +-5 %), with a health status against a configured
-- benchmark or the portfolio's own trailing 12-month value (never an invented industry figure).

-- The metric over [p_from, p_to] (inclusive UTC days) for one account, or the accounts of a tier
-- and/or industry, or the portfolio. NULL when there is no data.
-- (custom plans: each statement is planned with the call's values, so "p_client IS NULL OR
-- a.client_id = p_client" becomes an index lookup for one account; a cached generic plan scanned
-- the whole portfolio's rows of the period - issue 21)
CREATE OR REPLACE FUNCTION csmcp.fb_metric(p_type text, p_client text, p_tier text, p_industry text, p_from date, p_to date)
RETURNS numeric LANGUAGE plpgsql STABLE SET plan_cache_mode = force_custom_plan AS $$
DECLARE
    t0 timestamptz := p_from::timestamp AT TIME ZONE 'UTC';
    t1 timestamptz := (p_to + 1)::timestamp AT TIME ZONE 'UTC';
    v numeric;
    n_start bigint;
    n_churn bigint;
    v_arr numeric;
    v_cat bigint;
BEGIN
    IF p_type = 'nps' AND p_client IS NULL AND p_tier IS NULL AND p_industry IS NULL THEN
        -- the portfolio: the per-day counts kept by the triggers on nps_responses (nps_daily,
        -- migration 0156; the same responses: every one belongs to an account)
        SELECT CASE WHEN s.responses > 0 THEN round(100.0 * (s.promoters - s.detractors) / s.responses, 1) END
          INTO v FROM csmcp.nps_daily_sum(p_from, p_to) s;
    ELSIF p_type = 'nps' THEN
        SELECT CASE WHEN count(*) > 0 THEN round(100.0 * (count(*) FILTER (WHERE r.score >= 9) - count(*) FILTER (WHERE r.score <= 6)) / count(*), 1) END
          INTO v FROM nps_responses r JOIN accounts a USING (client_id)
         WHERE r.responded_at >= t0 AND r.responded_at < t1 AND (p_client IS NULL OR a.client_id = p_client)
           AND (p_tier IS NULL OR a.tier = p_tier) AND (p_industry IS NULL OR a.industry = p_industry);
    ELSIF p_type IN ('csat', 'ces') AND p_client IS NULL AND p_tier IS NULL AND p_industry IS NULL THEN
        -- the portfolio: the per-day sums kept by the triggers on csat_responses (csat_daily,
        -- migration 0159; the same responses: every one belongs to an account)
        v := csmcp.csat_daily_mean(p_type, p_from, p_to);
    ELSIF p_type IN ('csat', 'ces') THEN
        SELECT round(avg(r.score), 2) INTO v FROM csat_responses r JOIN accounts a USING (client_id)
         WHERE r.survey_type = p_type AND r.responded_at >= t0 AND r.responded_at < t1 AND (p_client IS NULL OR a.client_id = p_client)
           AND (p_tier IS NULL OR a.tier = p_tier) AND (p_industry IS NULL OR a.industry = p_industry);
    ELSIF p_type = 'support_satisfaction' THEN
        SELECT round(avg(s.satisfaction_rating), 2) INTO v FROM support_tickets s JOIN accounts a USING (client_id)
         WHERE s.satisfaction_rating IS NOT NULL AND coalesce(s.resolved_at, s.created_at) >= t0 AND coalesce(s.resolved_at, s.created_at) < t1
           AND (p_client IS NULL OR a.client_id = p_client) AND (p_tier IS NULL OR a.tier = p_tier) AND (p_industry IS NULL OR a.industry = p_industry);
    ELSIF p_type IN ('churn_rate', 'retention_rate') THEN
        SELECT count(*) INTO n_start FROM accounts a
         WHERE a.created_at < t0 AND (p_client IS NULL OR a.client_id = p_client) AND (p_tier IS NULL OR a.tier = p_tier)
           AND (p_industry IS NULL OR a.industry = p_industry)
           AND NOT EXISTS (SELECT 1 FROM revenue_events e WHERE e.client_id = a.client_id AND e.kind = 'churn' AND e.occurred_on < p_from);
        SELECT count(DISTINCT e.client_id) INTO n_churn FROM revenue_events e JOIN accounts a USING (client_id)
         WHERE e.kind = 'churn' AND e.occurred_on BETWEEN p_from AND p_to AND a.created_at < t0
           AND (p_client IS NULL OR a.client_id = p_client) AND (p_tier IS NULL OR a.tier = p_tier) AND (p_industry IS NULL OR a.industry = p_industry);
        IF n_start > 0 THEN
            v := round(n_churn::numeric / n_start, 4);
            IF p_type = 'retention_rate' THEN v := 1 - v; END IF;
        END IF;
    ELSIF p_type = 'expansion_rate' THEN
        SELECT sum(c.contract_value) INTO v_arr FROM contracts c JOIN accounts a USING (client_id)
         WHERE c.start_date <= p_from AND c.end_date >= p_from AND c.status <> 'cancelled'
           AND (p_client IS NULL OR a.client_id = p_client) AND (p_tier IS NULL OR a.tier = p_tier) AND (p_industry IS NULL OR a.industry = p_industry);
        IF v_arr > 0 THEN
            SELECT round(coalesce(sum(e.arr_delta), 0) / v_arr, 4) INTO v FROM revenue_events e JOIN accounts a USING (client_id)
             WHERE e.kind = 'expansion' AND e.occurred_on BETWEEN p_from AND p_to
               AND (p_client IS NULL OR a.client_id = p_client) AND (p_tier IS NULL OR a.tier = p_tier) AND (p_industry IS NULL OR a.industry = p_industry);
        END IF;
    ELSIF p_type = 'time_to_value' THEN
        SELECT round(avg(o.ttv_days), 1) INTO v FROM onboarding_plans o JOIN accounts a USING (client_id)
         WHERE o.ttv_reached AND o.ttv_days IS NOT NULL AND o.start_date BETWEEN p_from AND p_to
           AND (p_client IS NULL OR a.client_id = p_client) AND (p_tier IS NULL OR a.tier = p_tier) AND (p_industry IS NULL OR a.industry = p_industry);
    ELSIF p_type = 'feature_adoption' THEN
        SELECT count(*) INTO v_cat FROM features;
        IF v_cat > 0 THEN
            SELECT round(avg(coalesce(x.n, 0))::numeric / v_cat, 4) INTO v FROM accounts a
              LEFT JOIN (SELECT f.client_id, count(*) AS n FROM feature_adoption f WHERE f.first_used_on <= p_to
                          AND (p_client IS NULL OR f.client_id = p_client) GROUP BY f.client_id) x USING (client_id)
             WHERE a.created_at < t1 AND (p_client IS NULL OR a.client_id = p_client) AND (p_tier IS NULL OR a.tier = p_tier)
               AND (p_industry IS NULL OR a.industry = p_industry);
        END IF;
    ELSIF p_type IN ('engagement_score', 'health_score') THEN
        SELECT round(avg(CASE WHEN p_type = 'engagement_score' THEN h.engagement_score ELSE h.overall_score END), 1) INTO v
          FROM health_scores h JOIN accounts a USING (client_id)
         WHERE h.calculated_at >= t0 AND h.calculated_at < t1
           AND (p_client IS NULL OR a.client_id = p_client) AND (p_tier IS NULL OR a.tier = p_tier) AND (p_industry IS NULL OR a.industry = p_industry);
    END IF;
    RETURN v;
END $$;

CREATE OR REPLACE FUNCTION csmcp.fb_metric_format(p_type text, v numeric) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN v IS NULL THEN 'no data'
                WHEN p_type = 'nps' THEN round(v)::text
                WHEN p_type = 'ces' THEN to_char(v, 'FM990.0') || '/7.0'
                WHEN p_type IN ('csat', 'support_satisfaction') THEN to_char(v, 'FM990.0') || '/5.0'
                WHEN p_type IN ('churn_rate', 'retention_rate', 'expansion_rate', 'feature_adoption') THEN to_char(v * 100, 'FM9990.0') || '%'
                WHEN p_type = 'time_to_value' THEN to_char(v, 'FM99990.0') || ' days'
                ELSE to_char(v, 'FM990.0') END
$$;

CREATE OR REPLACE FUNCTION csmcp.tool_track_cs_metrics(args jsonb, principal text)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_type text := csmcp.arg_text(args, 'metric_type', NULL);
    v_client text := csmcp.arg_text(args, 'client_id', NULL);
    v_gran text := csmcp.arg_text(args, 'granularity', 'monthly');
    v_trends boolean := csmcp.arg_bool(args, 'include_trends', true);
    v_bench boolean := csmcp.arg_bool(args, 'include_benchmarks', true);
    v_seg text[] := ARRAY(SELECT DISTINCT jsonb_array_elements_text(coalesce(args->'segment_by', '[]')) ORDER BY 1);
    v_lower boolean;
    acc accounts;
    p record;
    v_len integer;
    v_val numeric;
    v_prev numeric;
    v_pct numeric;
    v_dir text;
    v_bm numeric;
    v_bm_src text;
    v_ratio numeric;
    v_status text;
    v_points jsonb;
    v_segments jsonb := '{}';
    v_step interval;
BEGIN
    IF v_client IS NOT NULL THEN acc := csmcp.require_account(v_client); END IF;
    p := csmcp.fb_period(args, 90);
    v_len := p.period_end - p.period_start + 1;
    v_lower := v_type IN ('churn_rate', 'time_to_value', 'ces');
    v_step := CASE v_gran WHEN 'daily' THEN interval '1 day' WHEN 'weekly' THEN interval '1 week'
                          WHEN 'monthly' THEN interval '1 month' ELSE interval '3 months' END;
    IF v_gran = 'daily' AND v_len > 366 THEN PERFORM csmcp.invalid('granularity: daily allows at most 366 days'); END IF;

    v_val := csmcp.fb_metric(v_type, v_client, NULL, NULL, p.period_start, p.period_end);
    v_prev := csmcp.fb_metric(v_type, v_client, NULL, NULL, p.period_start - v_len, p.period_start - 1);
    IF v_val IS NOT NULL AND v_prev IS NOT NULL AND v_prev <> 0 THEN
        v_pct := round((v_val - v_prev) / abs(v_prev) * 100, 1);
        v_dir := CASE WHEN (v_val - v_prev) / abs(v_prev) * 100 > 5 THEN 'up'
                      WHEN (v_val - v_prev) / abs(v_prev) * 100 < -5 THEN 'down' ELSE 'flat' END;
    ELSIF v_val IS NOT NULL AND v_prev = 0 THEN
        v_dir := CASE WHEN v_val > 0 THEN 'up' WHEN v_val < 0 THEN 'down' ELSE 'flat' END;
    END IF;

    SELECT value, source INTO v_bm, v_bm_src FROM cs_metric_benchmarks WHERE metric_type = v_type;
    IF v_bm IS NULL THEN
        v_bm := csmcp.fb_metric(v_type, NULL, NULL, NULL, p.period_end - 364, p.period_end);
        v_bm_src := 'portfolio_trailing_12_months';
    END IF;
    IF v_val IS NOT NULL AND v_bm > 0 THEN
        v_ratio := v_val / v_bm;
        v_status := CASE WHEN NOT v_lower THEN
                            CASE WHEN v_ratio >= 1.1 AND v_dir IS DISTINCT FROM 'down' THEN 'excellent'
                                 WHEN v_ratio >= 0.95 THEN 'good' WHEN v_ratio >= 0.85 THEN 'fair' ELSE 'poor' END
                         ELSE
                            CASE WHEN v_ratio <= 0.9 AND v_dir IS DISTINCT FROM 'up' THEN 'excellent'
                                 WHEN v_ratio <= 1.05 THEN 'good' WHEN v_ratio <= 1.15 THEN 'fair' ELSE 'poor' END END;
    END IF;

    IF v_trends THEN
        SELECT coalesce(jsonb_agg(jsonb_build_object('period_start', b.s, 'period_end', b.e,
                                                     'value', csmcp.fb_metric(v_type, v_client, NULL, NULL, b.s, b.e)) ORDER BY b.s), '[]')
          INTO v_points
          FROM (SELECT greatest(g::date, p.period_start) AS s, least((g + v_step)::date - 1, p.period_end) AS e
                FROM generate_series(date_trunc(CASE v_gran WHEN 'daily' THEN 'day' WHEN 'weekly' THEN 'week'
                                                            WHEN 'monthly' THEN 'month' ELSE 'quarter' END, p.period_start::timestamp),
                                     p.period_end::timestamp, v_step) g) b;
    END IF;

    IF 'tier' = ANY (v_seg) THEN
        v_segments := v_segments || jsonb_build_object('tier', (SELECT jsonb_object_agg(t, csmcp.fb_metric(v_type, v_client, t, NULL, p.period_start, p.period_end))
                                                                FROM unnest(ARRAY['starter', 'standard', 'professional', 'enterprise']) t));
    END IF;
    IF 'industry' = ANY (v_seg) THEN
        v_segments := v_segments || jsonb_build_object('industry', (SELECT jsonb_object_agg(i, csmcp.fb_metric(v_type, v_client, NULL, i, p.period_start, p.period_end))
                                                                    FROM (SELECT DISTINCT industry AS i FROM accounts
                                                                          WHERE v_client IS NULL OR client_id = v_client) q));
    END IF;

    RETURN jsonb_build_object(
        'metric_type', v_type,
        'scope', CASE WHEN v_client IS NULL THEN 'portfolio' ELSE 'account' END,
        'client_id', v_client,
        'period', jsonb_build_object('start', p.period_start, 'end', p.period_end, 'days', v_len, 'granularity', v_gran),
        'lower_is_better', v_lower,
        'current_metrics', jsonb_build_object('value', v_val, 'formatted', csmcp.fb_metric_format(v_type, v_val),
                                              'previous_value', v_prev, 'percent_change', v_pct, 'trend_direction', v_dir,
                                              'health_status', v_status),
        'trend_data', v_points,
        'benchmarks', CASE WHEN v_bench THEN jsonb_build_object('value', v_bm, 'source', v_bm_src,
                                                                'ratio', round(v_ratio, 3)) END,
        'segmented_data', CASE WHEN cardinality(v_seg) > 0 THEN v_segments END,
        'summary', format('%s %s, %s to %s: %s (previous %s, %s)%s', CASE WHEN v_client IS NULL THEN 'Portfolio' ELSE acc.client_name END,
                          v_type, p.period_start, p.period_end, csmcp.fb_metric_format(v_type, v_val), csmcp.fb_metric_format(v_type, v_prev),
                          coalesce(v_dir, 'no trend'),
                          CASE WHEN v_status IS NOT NULL THEN format(', %s against %s %s', v_status, v_bm_src, v_bm) ELSE '' END));
END $$;

-- analyze_feedback_sentiment: the stored feedback of a period (one account or the portfolio):
-- label counts, aggregate score and label, themes, emerging themes, comparison with the previous
-- period of equal length, critical issues and the sentiment health band - reference §3.6.
CREATE OR REPLACE FUNCTION csmcp.fb_period_stats(p_client text, p_types text[], p_from date, p_to date)
RETURNS jsonb LANGUAGE sql STABLE AS $$
    -- two disjoint branches instead of "(p_client IS NULL OR client_id = p_client)": a SQL
    -- function's statements are planned without the parameters' values, and the OR kept the
    -- client's call on a scan of the whole portfolio's feedback of the period (issue 21)
    WITH f AS (
        SELECT sentiment, sentiment_score, themes FROM feedback
        WHERE p_client IS NULL
          AND (p_types IS NULL OR feedback_type = ANY (p_types))
          AND created_at >= p_from::timestamp AT TIME ZONE 'UTC' AND created_at < (p_to + 1)::timestamp AT TIME ZONE 'UTC'
        UNION ALL
        SELECT sentiment, sentiment_score, themes FROM feedback
        WHERE client_id = p_client
          AND (p_types IS NULL OR feedback_type = ANY (p_types))
          AND created_at >= p_from::timestamp AT TIME ZONE 'UTC' AND created_at < (p_to + 1)::timestamp AT TIME ZONE 'UTC'
    ),
    c AS (
        SELECT count(*) AS total,
               count(*) FILTER (WHERE sentiment = 'very_positive') AS vp, count(*) FILTER (WHERE sentiment = 'positive') AS p,
               count(*) FILTER (WHERE sentiment = 'neutral') AS nu, count(*) FILTER (WHERE sentiment = 'negative') AS n,
               count(*) FILTER (WHERE sentiment = 'very_negative') AS vn,
               sum(csmcp.fb_label_weight(sentiment)) AS w
        FROM f
    ),
    th AS (
        SELECT t AS theme, count(*) AS mentions, round(avg(sentiment_score), 3) AS mean_sentiment
        FROM f, unnest(f.themes) t GROUP BY t
    )
    SELECT jsonb_build_object(
        'total', c.total,
        'counts', jsonb_build_object('very_positive', c.vp, 'positive', c.p, 'neutral', c.nu, 'negative', c.n, 'very_negative', c.vn),
        'score', CASE WHEN c.total > 0 THEN c.w / c.total END,
        'themes', (SELECT coalesce(jsonb_agg(jsonb_build_object('theme', theme, 'mentions', mentions, 'mean_sentiment', mean_sentiment)
                                             ORDER BY mentions DESC, theme), '[]') FROM th))
    FROM c
$$;

CREATE OR REPLACE FUNCTION csmcp.tool_analyze_feedback_sentiment(args jsonb, principal text)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_client text := csmcp.arg_text(args, 'client_id', NULL);
    v_types text[];
    v_nps boolean := csmcp.arg_bool(args, 'include_nps', true);
    v_themes boolean := csmcp.arg_bool(args, 'include_themes', true);
    v_cmp boolean := csmcp.arg_bool(args, 'compare_to_previous', true);
    p record;
    v_len integer;
    acc accounts;
    cur jsonb;
    prev jsonb;
    v_score numeric;
    v_prev numeric;
    v_pct numeric;
    v_trend text;
    v_total integer;
    v_pos jsonb;
    v_neg jsonb;
    v_emerging jsonb;
    v_critical jsonb;
    v_health jsonb;
BEGIN
    IF v_client IS NOT NULL THEN acc := csmcp.require_account(v_client); END IF;
    IF args ? 'feedback_types' AND jsonb_typeof(args->'feedback_types') = 'array' THEN
        v_types := ARRAY(SELECT DISTINCT jsonb_array_elements_text(args->'feedback_types'));
    END IF;
    p := csmcp.fb_period(args, 30);
    v_len := p.period_end - p.period_start + 1;
    cur := csmcp.fb_period_stats(v_client, v_types, p.period_start, p.period_end);
    prev := csmcp.fb_period_stats(v_client, v_types, p.period_start - v_len, p.period_start - 1);
    v_total := (cur->>'total')::int;
    v_score := (cur->>'score')::numeric;
    v_prev := (prev->>'score')::numeric;

    IF NOT v_cmp THEN v_trend := NULL;
    ELSIF v_score IS NULL OR v_prev IS NULL OR v_prev = 0 THEN v_trend := 'no_baseline';
    ELSE
        v_pct := (v_score - v_prev) / abs(v_prev) * 100;
        v_trend := CASE WHEN v_pct > 10 THEN 'improving' WHEN v_pct < -10 THEN 'declining' ELSE 'stable' END;
    END IF;

    SELECT coalesce(jsonb_agg(t ORDER BY (t->>'mentions')::int DESC, (t->>'mean_sentiment')::numeric DESC, t->>'theme')
                    FILTER (WHERE (t->>'mean_sentiment')::numeric > 0), '[]'),
           coalesce(jsonb_agg(t ORDER BY (t->>'mentions')::int DESC, (t->>'mean_sentiment')::numeric, t->>'theme')
                    FILTER (WHERE (t->>'mean_sentiment')::numeric < 0), '[]'),
           coalesce(jsonb_agg(jsonb_build_object('theme', t->>'theme', 'mentions', (t->>'mentions')::int,
                                                 'previous_mentions', coalesce((pt->>'mentions')::int, 0)) ORDER BY t->>'theme')
                    FILTER (WHERE (t->>'mentions')::int >= 3 AND (t->>'mentions')::int >= 2 * coalesce((pt->>'mentions')::int, 0)), '[]'),
           coalesce(jsonb_agg(jsonb_build_object('theme', t->>'theme', 'mentions', (t->>'mentions')::int,
                                                 'mean_sentiment', (t->>'mean_sentiment')::numeric,
                                                 'severity', CASE WHEN (t->>'mean_sentiment')::numeric <= -0.7 THEN 'high' ELSE 'medium' END)
                              ORDER BY (t->>'mean_sentiment')::numeric, t->>'theme')
                    FILTER (WHERE (t->>'mean_sentiment')::numeric < 0
                              AND ((t->>'mentions')::int >= 5 OR (t->>'mean_sentiment')::numeric <= -0.6)), '[]')
    INTO v_pos, v_neg, v_emerging, v_critical
    FROM jsonb_array_elements(cur->'themes') t
    LEFT JOIN LATERAL (SELECT x AS pt FROM jsonb_array_elements(prev->'themes') x WHERE x->>'theme' = t->>'theme') q ON true;

    v_health := CASE
        WHEN v_score IS NULL THEN NULL
        WHEN v_score >= 0.6 AND v_trend IS DISTINCT FROM 'declining' THEN '{"status": "excellent", "score": 90}'
        WHEN v_score >= 0.3 AND v_trend IS DISTINCT FROM 'declining' THEN '{"status": "good", "score": 75}'
        WHEN v_score >= 0.0 THEN '{"status": "fair", "score": 60}'
        WHEN v_score >= -0.3 THEN '{"status": "poor", "score": 40}'
        ELSE '{"status": "critical", "score": 20}' END;

    RETURN jsonb_build_object(
        'scope', CASE WHEN v_client IS NULL THEN 'portfolio' ELSE 'account' END,
        'client_id', v_client,
        'period_start', p.period_start, 'period_end', p.period_end, 'period_days', v_len,
        'feedback_types', to_jsonb(v_types),
        'total_feedback', v_total,
        'sentiment_breakdown', jsonb_build_object(
            'counts', cur->'counts',
            'distribution', (SELECT jsonb_object_agg(k, CASE WHEN v_total > 0 THEN round(100.0 * v::int / v_total, 1) ELSE 0 END)
                             FROM jsonb_each_text(cur->'counts') e(k, v))),
        'overall_sentiment', csmcp.fb_score_label(v_score),
        'overall_sentiment_score', round(v_score, 3),
        'themes', CASE WHEN v_themes THEN jsonb_build_object(
            'top_positive', (SELECT coalesce(jsonb_agg(x), '[]') FROM (SELECT x FROM jsonb_array_elements(v_pos) x LIMIT 5) q),
            'top_negative', (SELECT coalesce(jsonb_agg(x), '[]') FROM (SELECT x FROM jsonb_array_elements(v_neg) x LIMIT 5) q),
            'emerging', v_emerging) END,
        'comparison', CASE WHEN v_cmp THEN jsonb_build_object(
            'previous_period_start', p.period_start - v_len, 'previous_period_end', p.period_start - 1,
            'previous_total', (prev->>'total')::int, 'previous_score', round(v_prev, 3),
            'percent_change', round(v_pct, 1), 'trend', v_trend) END,
        'nps', CASE WHEN v_nps THEN csmcp.fb_nps(v_client, p.period_start, p.period_end) END,
        'critical_issues', v_critical,
        'health_indicators', v_health,
        'summary', format('%s, %s to %s: %s feedback items, overall %s%s%s%s',
                          CASE WHEN v_client IS NULL THEN 'Portfolio' ELSE acc.client_name END, p.period_start, p.period_end, v_total,
                          coalesce(csmcp.fb_score_label(v_score) || ' (' || round(v_score, 3) || ')', 'no data'),
                          CASE WHEN v_trend IS NOT NULL THEN ', trend ' || v_trend ELSE '' END,
                          CASE WHEN v_health IS NOT NULL THEN ', health ' || (v_health->>'status') ELSE '' END,
                          CASE WHEN jsonb_array_length(v_critical) > 0 THEN ', ' || jsonb_array_length(v_critical) || ' critical issue(s)' ELSE '' END));
END $$;

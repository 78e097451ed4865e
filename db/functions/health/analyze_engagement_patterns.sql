-- health/analyze_engagement_patterns.sql - tool analyze_engagement_patterns: one scan of the
-- 90-day rollups with two grouping sets; only accounts whose extremes reach 3 standard
-- deviations are probed for anomalies. work_mem = 16MB: a rare portfolio report.
CREATE OR REPLACE FUNCTION csmcp.tool_analyze_engagement_patterns(args jsonb, principal text)
RETURNS jsonb LANGUAGE plpgsql SET work_mem = '16MB' AS $$ -- volatile: uses temporary work tables
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

    -- One pass over the window's usage_daily rows, two grouping sets: per account (the trend's
    -- two halves, the sums for mean and deviation, the extremes) and per ISO weekday (events).
    CREATE TEMP TABLE IF NOT EXISTS ep_sum (per_account boolean, client_id text, dow integer, a1 bigint, a2 bigint,
                                            s1 float8, s2 float8, mx integer, mn integer, ev bigint) ON COMMIT DROP;
    TRUNCATE ep_sum;
    ANALYZE ep_acc;
    INSERT INTO ep_sum
    SELECT GROUPING(u.client_id) = 0, u.client_id, extract(isodow FROM u.day)::int,
           sum(u.active_users) FILTER (WHERE u.day <= t - v_days / 2),
           sum(u.active_users) FILTER (WHERE u.day > t - v_days / 2),
           sum(u.active_users)::float8, sum(u.active_users::float8 * u.active_users),
           max(u.active_users), min(u.active_users), sum(u.events)
    FROM usage_daily u JOIN ep_acc USING (client_id) WHERE u.day > t - v_days AND u.day <= t
    GROUP BY GROUPING SETS ((u.client_id), (extract(isodow FROM u.day)::int));

    -- Per-account usage trend (first vs second half of the window).
    CREATE TEMP TABLE IF NOT EXISTS ep_trend (client_id text, first_avg numeric, second_avg numeric, direction text) ON COMMIT DROP;
    TRUNCATE ep_trend;
    INSERT INTO ep_trend
    SELECT e.client_id, coalesce(x.a1, 0), coalesce(x.a2, 0),
           CASE WHEN coalesce(x.a1, 0) = 0 AND coalesce(x.a2, 0) = 0 THEN 'inactive' WHEN coalesce(x.a1, 0) = 0 THEN 'growing'
                WHEN (x.a2 - x.a1) / x.a1 > 0.10 THEN 'growing' WHEN (x.a2 - x.a1) / x.a1 < -0.10 THEN 'declining' ELSE 'flat' END
    FROM ep_acc e LEFT JOIN (
        SELECT s.client_id, coalesce(s.a1, 0)::numeric / (v_days - v_days / 2) AS a1,
               coalesce(s.a2, 0)::numeric / (v_days / 2) AS a2
        FROM ep_sum s WHERE s.per_account) x USING (client_id);

    IF 'temporal' = ANY (types) THEN
        WITH dow AS (SELECT s.dow AS d, s.ev FROM ep_sum s WHERE NOT s.per_account)
        SELECT jsonb_build_object(
            'accounts_growing', (SELECT count(*) FROM ep_trend WHERE direction = 'growing'),
            'accounts_flat', (SELECT count(*) FROM ep_trend WHERE direction = 'flat'),
            'accounts_declining', (SELECT count(*) FROM ep_trend WHERE direction = 'declining'),
            'accounts_inactive', (SELECT count(*) FROM ep_trend WHERE direction = 'inactive'),
            'weekday_share_of_events', (SELECT round(sum(ev) FILTER (WHERE d < 6)::numeric / nullif(sum(ev), 0), 3) FROM dow),
            'busiest_weekday', (SELECT (ARRAY['Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday', 'Sunday'])[d]
                                FROM dow ORDER BY ev DESC, d LIMIT 1))
        INTO temporal;
    END IF;
    IF 'feature_usage' = ANY (types) THEN
        WITH pairs AS (
            SELECT fd.feature_id, fd.client_id, sum(fd.events) AS ev
            FROM usage_feature_daily fd JOIN ep_acc USING (client_id) WHERE fd.day > t - v_days AND fd.day <= t
            GROUP BY 1, 2
        )
        SELECT jsonb_build_object(
            'avg_features_per_account', round((SELECT count(*) FROM pairs)::numeric / greatest(n, 1), 2),
            'top_features', (SELECT coalesce(jsonb_agg(jsonb_build_object('feature_id', feature_id, 'events', ev, 'accounts', acc)
                                                       ORDER BY ev DESC, feature_id), '[]')
                             FROM (SELECT feature_id, sum(ev) AS ev, count(*) AS acc FROM pairs GROUP BY 1
                                   ORDER BY 2 DESC, 1 LIMIT 5) tf))
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
        -- Mean and standard deviation over all v_days days (days without a row count as 0),
        -- from the sums of the single pass above, so only stored rows are read; missing days can
        -- only be drops, and only accounts whose mean exceeds 3 standard deviations can have
        -- such a drop. A stored day can deviate by 3 standard deviations only if the account's
        -- maximum or minimum does, so only those accounts' days are read again.
        WITH stats AS MATERIALIZED (
            SELECT e.client_id, coalesce(s.s1, 0) / v_days AS mu,
                   sqrt(greatest(0, coalesce(s.s2, 0) / v_days - (coalesce(s.s1, 0) / v_days) ^ 2)) AS sd, s.mx, s.mn
            FROM ep_acc e LEFT JOIN (SELECT * FROM ep_sum WHERE per_account) s USING (client_id)
        ),
        cand AS (
            SELECT u.client_id, u.day, u.active_users AS dau FROM usage_daily u JOIN stats s USING (client_id)
            WHERE u.day > t - v_days AND u.day <= t AND s.sd > 0 AND abs(u.active_users - s.mu) >= 3 * s.sd
              AND (s.mx - s.mu >= 3 * s.sd OR s.mu - s.mn >= 3 * s.sd)
            UNION ALL
            SELECT s.client_id, g.d::date, 0 FROM stats s
            CROSS JOIN LATERAL generate_series(t - v_days + 1, t, interval '1 day') g(d)
            WHERE s.sd > 0 AND s.mu >= 3 * s.sd
              AND NOT EXISTS (SELECT 1 FROM usage_daily u WHERE u.client_id = s.client_id AND u.day = g.d::date)
        )
        SELECT coalesce(jsonb_agg(jsonb_build_object('client_id', client_id, 'day', day, 'metric', 'daily_active_users',
                                                     'value', dau, 'expected', round(mu::numeric, 2), 'z_score', z,
                                                     'kind', CASE WHEN z > 0 THEN 'spike' ELSE 'drop' END)
                                  ORDER BY abs(z) DESC, client_id, day), '[]')
        INTO anomalies FROM (
            SELECT c.client_id, c.day, c.dau, s.mu, round(((c.dau - s.mu) / s.sd)::numeric, 2) AS z
            FROM cand c JOIN stats s USING (client_id)
            ORDER BY abs((c.dau - s.mu) / s.sd) DESC, c.client_id, c.day LIMIT 50) a;
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

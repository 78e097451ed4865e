-- track_usage_engagement: DAU, events, sessions and features over a period, from the rollups.
CREATE OR REPLACE FUNCTION csmcp.tool_track_usage_engagement(args jsonb, principal text)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
    acc accounts := csmcp.require_account(csmcp.arg_text(args, 'client_id', NULL));
    d_end date := csmcp.arg_date(args, 'period_end', csmcp.today());
    d_start date := csmcp.arg_date(args, 'period_start', d_end - 29);
    v_gran text := csmcp.arg_text(args, 'granularity', 'daily', ARRAY['daily', 'weekly', 'monthly']);
    v_feat boolean := csmcp.arg_bool(args, 'include_feature_breakdown', true);
    c contracts := csmcp.active_contract(acc.client_id);
    ndays integer;
    m record;
    half integer;
    first_avg numeric; second_avg numeric; change numeric; direction text;
    weekday_avg numeric; weekend_avg numeric;
    series jsonb; features jsonb;
    alerts jsonb := '[]'; recs jsonb := '[]';
BEGIN
    IF d_end < d_start THEN PERFORM csmcp.invalid('period_end must not be before period_start'); END IF;
    ndays := d_end - d_start + 1;
    IF ndays > 366 THEN PERFORM csmcp.invalid('the period may span at most 365 days'); END IF;

    SELECT coalesce(sum(active_users), 0) AS user_days, coalesce(max(active_users), 0) AS peak,
           coalesce(sum(events), 0) AS events, coalesce(sum(session_minutes), 0) AS minutes,
           count(*) FILTER (WHERE events > 0) AS active_days
    INTO m FROM usage_daily WHERE client_id = acc.client_id AND day BETWEEN d_start AND d_end;

    half := ndays / 2;
    SELECT coalesce(sum(active_users) FILTER (WHERE day < d_start + half), 0)::numeric / greatest(half, 1),
           coalesce(sum(active_users) FILTER (WHERE day >= d_start + half), 0)::numeric / greatest(ndays - half, 1)
    INTO first_avg, second_avg FROM usage_daily WHERE client_id = acc.client_id AND day BETWEEN d_start AND d_end;
    change := CASE WHEN first_avg > 0 THEN round((second_avg - first_avg) / first_avg * 100, 1) END;
    direction := CASE WHEN first_avg = 0 AND second_avg > 0 THEN 'up' WHEN first_avg = 0 THEN 'flat'
                      WHEN change > 10 THEN 'up' WHEN change < -10 THEN 'down' ELSE 'flat' END;

    SELECT coalesce(avg(coalesce(u.active_users, 0)) FILTER (WHERE extract(isodow FROM g.d) < 6), 0),
           coalesce(avg(coalesce(u.active_users, 0)) FILTER (WHERE extract(isodow FROM g.d) >= 6), 0)
    INTO weekday_avg, weekend_avg
    FROM generate_series(d_start, d_end, interval '1 day') AS g(d)
    LEFT JOIN usage_daily u ON u.client_id = acc.client_id AND u.day = g.d::date;

    SELECT coalesce(jsonb_agg(jsonb_build_object('period', b.bucket, 'avg_daily_active_users', round(b.user_days::numeric / b.days, 2),
                                                 'events', b.events, 'session_minutes', b.minutes) ORDER BY b.bucket), '[]')
    INTO series FROM (
        SELECT date_trunc(CASE v_gran WHEN 'daily' THEN 'day' WHEN 'weekly' THEN 'week' ELSE 'month' END, g.d)::date AS bucket,
               count(*) AS days, coalesce(sum(u.active_users), 0) AS user_days, coalesce(sum(u.events), 0) AS events,
               coalesce(sum(u.session_minutes), 0) AS minutes
        FROM generate_series(d_start, d_end, interval '1 day') AS g(d)
        LEFT JOIN usage_daily u ON u.client_id = acc.client_id AND u.day = g.d::date
        GROUP BY 1) b;

    IF v_feat THEN
        SELECT coalesce(jsonb_agg(jsonb_build_object('feature_id', f.feature_id, 'name', coalesce(ft.name, f.feature_id),
                                                     'events', f.events, 'days_used', f.days_used,
                                                     'share_of_events', CASE WHEN m.events > 0 THEN round(f.events::numeric / m.events, 3) END)
                                  ORDER BY f.events DESC, f.feature_id), '[]')
        INTO features FROM (SELECT feature_id, sum(events) AS events, count(DISTINCT day) AS days_used
                            FROM usage_feature_daily WHERE client_id = acc.client_id AND day BETWEEN d_start AND d_end
                            GROUP BY feature_id) f LEFT JOIN features ft USING (feature_id);
    END IF;

    IF direction = 'down' THEN alerts := alerts || jsonb_build_object('type', 'usage_declining', 'severity', 'high',
        'message', format('average daily active users changed %s%% between the two halves of the period', change)); END IF;
    IF m.active_days = 0 THEN alerts := alerts || jsonb_build_object('type', 'no_usage', 'severity', 'high',
        'message', 'no usage recorded in the period'); END IF;
    IF c.licensed_seats IS NOT NULL AND m.user_days::numeric / ndays / c.licensed_seats < 0.6 THEN
        recs := recs || to_jsonb(format('Seat utilisation is %s%%: run an adoption campaign for inactive seats',
                                        round(m.user_days::numeric / ndays / c.licensed_seats * 100)));
    END IF;
    IF weekday_avg > 0 AND weekend_avg / weekday_avg < 0.20 THEN
        recs := recs || to_jsonb('Weekend engagement is below 20% of weekdays (expected for business tools; check if not)'::text);
    END IF;
    IF m.user_days > 0 AND m.minutes::numeric / m.user_days < 15 THEN
        recs := recs || to_jsonb('Average session time is under 15 minutes per active user-day: review onboarding depth'::text);
    END IF;

    RETURN jsonb_build_object(
        'client_id', acc.client_id,
        'analysis_period', jsonb_build_object('start', d_start, 'end', d_end, 'days', ndays, 'granularity', v_gran),
        'engagement_metrics', jsonb_build_object(
            'licensed_seats', c.licensed_seats,
            'avg_daily_active_users', round(m.user_days::numeric / ndays, 2),
            'peak_daily_active_users', m.peak,
            'seat_utilization', CASE WHEN c.licensed_seats IS NOT NULL THEN round(m.user_days::numeric / ndays / c.licensed_seats, 3) END,
            'total_events', m.events,
            'total_session_minutes', m.minutes,
            'avg_session_minutes_per_active_user_day', CASE WHEN m.user_days > 0 THEN round(m.minutes::numeric / m.user_days, 1) END,
            'active_days', m.active_days,
            'weekday_avg_daily_active_users', round(weekday_avg, 2),
            'weekend_avg_daily_active_users', round(weekend_avg, 2)),
        'usage_trend', jsonb_build_object('direction', direction, 'first_half_avg_dau', round(first_avg, 2),
                                          'second_half_avg_dau', round(second_avg, 2), 'change_pct', change),
        'usage_series', series,
        'feature_breakdown', features,
        'alerts', alerts,
        'recommendations', recs);
END $$;

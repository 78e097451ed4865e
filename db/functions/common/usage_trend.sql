-- Usage trend of an account: mean DAU of the last 15 days vs the 15 before.
CREATE OR REPLACE FUNCTION csmcp.usage_trend(p_client_id text, p_today date) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    WITH w AS (
        SELECT coalesce(sum(active_users) FILTER (WHERE day > p_today - 15), 0)::numeric / 15 AS recent,
               coalesce(sum(active_users) FILTER (WHERE day <= p_today - 15), 0)::numeric / 15 AS before
        FROM usage_daily WHERE client_id = p_client_id AND day > p_today - 30 AND day <= p_today
    )
    SELECT jsonb_build_object(
        'recent_avg_dau', round(recent, 2), 'previous_avg_dau', round(before, 2),
        'change_pct', CASE WHEN before > 0 THEN round((recent - before) / before * 100, 1) END,
        'direction', CASE WHEN before = 0 AND recent > 0 THEN 'growing'
                          WHEN before = 0 THEN 'flat'
                          WHEN (recent - before) / before > 0.10 THEN 'growing'
                          WHEN (recent - before) / before < -0.10 THEN 'declining'
                          ELSE 'flat' END)
    FROM w
$$;

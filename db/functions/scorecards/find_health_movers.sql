-- find_health_movers: accounts whose effective health score (override while active, else the
-- computed score) changed by at least min_change within the last `days` days, up or down.
CREATE OR REPLACE FUNCTION csmcp.tool_find_health_movers(args jsonb, principal text)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_min integer := csmcp.arg_int(args, 'min_change', 10, 1, 100);
    v_days integer := csmcp.arg_int(args, 'days', 7, 1, 365);
    v_dir text := csmcp.arg_text(args, 'direction', 'both', ARRAY['up', 'down', 'both']);
    v_limit integer := csmcp.arg_int(args, 'limit', 50, 1, 1000);
    v_offset integer := csmcp.arg_int(args, 'offset', 0, 0, 1000000);
    v_t0 timestamptz := now() - make_interval(days => v_days);
    v_rows jsonb;
    v_total integer; v_up integer; v_down integer;
BEGIN
    WITH bl AS (
        -- the baseline: each account's latest stored score at or before the window start
        SELECT DISTINCT ON (h.client_id) h.client_id, h.score_id, h.calculated_at, h.overall_score
          FROM health_scores h WHERE h.calculated_at <= v_t0
         ORDER BY h.client_id, h.calculated_at DESC, h.score_id DESC
    ), ov_then AS (
        SELECT DISTINCT ON (o.client_id) o.client_id, o.score FROM health_overrides o
         WHERE o.set_at <= v_t0 AND v_t0 < least(o.expires_at, coalesce(o.cleared_at, o.expires_at))
         ORDER BY o.client_id, o.set_at DESC
    ), ov_now AS (
        SELECT o.client_id, o.score FROM health_overrides o
         WHERE o.cleared_at IS NULL AND o.expires_at > (SELECT csmcp.sc_now())
    ), base AS (
        SELECT a.client_id, a.client_name, a.csm_assigned, a.health_score,
               b.score_id AS b_id, b.calculated_at AS b_at, b.overall_score AS b_score,
               ot.score AS b_ov, onw.score AS n_ov
          FROM accounts a
          JOIN bl b ON b.client_id = a.client_id
          LEFT JOIN ov_then ot ON ot.client_id = a.client_id
          LEFT JOIN ov_now onw ON onw.client_id = a.client_id
    ), moved AS (
        SELECT x.*, coalesce(x.b_ov, x.b_score) AS from_score, coalesce(x.n_ov, x.health_score) AS to_score,
               coalesce(x.n_ov, x.health_score) - coalesce(x.b_ov, x.b_score) AS change
          FROM base x
    ), sel AS (
        SELECT m.* FROM moved m
         WHERE abs(m.change) >= v_min
           AND (v_dir = 'both' OR (v_dir = 'up' AND m.change > 0) OR (v_dir = 'down' AND m.change < 0))
    ), page AS (
        SELECT s.*, coalesce(c.contract_value, 0) AS arr
          FROM sel s LEFT JOIN contracts c ON c.client_id = s.client_id AND c.status = 'active'
         ORDER BY abs(s.change) DESC, coalesce(c.contract_value, 0) DESC, s.client_id
         LIMIT v_limit OFFSET v_offset
    )
    SELECT (SELECT count(*) FROM sel), (SELECT count(*) FROM sel WHERE change > 0),
           (SELECT count(*) FROM sel WHERE change < 0),
           coalesce(jsonb_agg(jsonb_build_object(
               'client_id', p.client_id, 'client_name', p.client_name, 'csm_assigned', p.csm_assigned,
               'from_score', p.from_score, 'to_score', p.to_score, 'change', p.change,
               'direction', CASE WHEN p.change > 0 THEN 'up' ELSE 'down' END,
               'from_overridden', p.b_ov IS NOT NULL, 'to_overridden', p.n_ov IS NOT NULL,
               'baseline_at', p.b_at, 'arr', p.arr,
               'measure_moved_most', (
                   SELECT CASE WHEN mm.delta IS NULL OR mm.delta = 0 THEN NULL
                               ELSE jsonb_build_object('measure', mm.measure, 'contribution_change', mm.delta) END
                     FROM (SELECT v.measure, v.delta FROM health_scores l, health_scores b,
                                  LATERAL (VALUES
                                      (1, 'usage', l.usage_weight * l.usage_score - b.usage_weight * b.usage_score),
                                      (2, 'engagement', l.engagement_weight * l.engagement_score - b.engagement_weight * b.engagement_score),
                                      (3, 'support', l.support_weight * l.support_score - b.support_weight * b.support_score),
                                      (4, 'satisfaction', l.satisfaction_weight * l.satisfaction_score - b.satisfaction_weight * b.satisfaction_score),
                                      (5, 'payment', l.payment_weight * l.payment_score - b.payment_weight * b.payment_score)) v(ord, measure, delta)
                            WHERE b.score_id = p.b_id
                              AND l.score_id = (SELECT h.score_id FROM health_scores h WHERE h.client_id = p.client_id
                                                 ORDER BY h.calculated_at DESC, h.score_id DESC LIMIT 1)
                            ORDER BY abs(v.delta) DESC, v.ord LIMIT 1) mm)
           ) ORDER BY abs(p.change) DESC, p.arr DESC, p.client_id), '[]'::jsonb)
      INTO v_total, v_up, v_down, v_rows
      FROM page p;
    RETURN jsonb_build_object(
        'min_change', v_min, 'days', v_days, 'direction', v_dir,
        'since', v_t0,
        'movers', v_rows,
        'total', v_total, 'up', v_up, 'down', v_down,
        'limit', v_limit, 'offset', v_offset,
        'summary', format('%s account(s) moved by %s+ points in %s days (%s up, %s down)%s', v_total, v_min, v_days,
                          v_up, v_down,
                          CASE WHEN jsonb_array_length(v_rows) > 0 THEN format('; largest: %s %s -> %s',
                               v_rows -> 0 ->> 'client_name', v_rows -> 0 ->> 'from_score', v_rows -> 0 ->> 'to_score')
                               ELSE '' END));
END $$;

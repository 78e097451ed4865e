-- scorecards/_metrics.sql - the SQL-backed measures of health_metric_catalogue (migration 0287).
-- Each: csmcp.hm_<name>(client_id, lookback_days) -> the raw value, NULL when there is no data
-- (a missing input of the scorecard). "Today" is csmcp.today(); the lookback window is the L UTC
-- days ending today (as in csmcp.health_components).

CREATE OR REPLACE FUNCTION csmcp.hm_seat_utilization(p_client_id text, p_lookback integer) RETURNS numeric
LANGUAGE sql STABLE AS $$
    SELECT round(100 * (SELECT coalesce(sum(u.active_users), 0) FROM usage_daily u
                         WHERE u.client_id = p_client_id AND u.day > csmcp.today() - p_lookback
                           AND u.day <= csmcp.today())::numeric / p_lookback / c.licensed_seats, 2)
      FROM contracts c
     WHERE c.client_id = p_client_id AND c.status = 'active' AND c.licensed_seats > 0
     ORDER BY c.end_date DESC, c.contract_id LIMIT 1
$$;

CREATE OR REPLACE FUNCTION csmcp.hm_nps_average(p_client_id text, p_lookback integer) RETURNS numeric
LANGUAGE sql STABLE AS $$
    SELECT round(avg(n.score), 2) FROM nps_responses n
     WHERE n.client_id = p_client_id AND n.responded_at > now() - make_interval(days => p_lookback)
$$;

CREATE OR REPLACE FUNCTION csmcp.hm_open_critical_tickets(p_client_id text, p_lookback integer) RETURNS numeric
LANGUAGE sql STABLE AS $$
    SELECT count(*)::numeric FROM support_tickets t
     WHERE t.client_id = p_client_id AND t.priority IN ('P0', 'P1') AND t.status NOT IN ('resolved', 'closed')
$$;

CREATE OR REPLACE FUNCTION csmcp.hm_days_since_last_activity(p_client_id text, p_lookback integer) RETURNS numeric
LANGUAGE sql STABLE AS $$
    SELECT (csmcp.today() - max(u.day))::numeric FROM usage_daily u
     WHERE u.client_id = p_client_id AND u.active_users > 0 AND u.day <= csmcp.today()
$$;

CREATE OR REPLACE FUNCTION csmcp.hm_overdue_invoices(p_client_id text, p_lookback integer) RETURNS numeric
LANGUAGE sql STABLE AS $$
    SELECT count(*)::numeric FROM invoices i
     WHERE i.client_id = p_client_id AND i.paid_on IS NULL AND i.due_on < csmcp.today()
$$;

CREATE OR REPLACE FUNCTION csmcp.hm_feature_adoption(p_client_id text, p_lookback integer) RETURNS numeric
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN n.total = 0 THEN NULL
                ELSE round(100.0 * (SELECT count(*) FROM feature_adoption f WHERE f.client_id = p_client_id) / n.total, 2) END
      FROM (SELECT count(*) AS total FROM features) n
$$;

-- One catalogue measure for one account: {measure, raw, value (0-100), unit} or value NULL when
-- missing (no data, or the measure is unknown / disabled now).
CREATE OR REPLACE FUNCTION csmcp.hm_measure(p_measure text, p_client_id text, p_lookback integer) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    m health_metric_catalogue;
    raw numeric;
BEGIN
    SELECT * INTO m FROM health_metric_catalogue WHERE measure = p_measure AND enabled;
    IF NOT FOUND OR p_client_id IS NULL OR to_regprocedure(m.sql_function || '(text, integer)') IS NULL THEN
        RETURN jsonb_build_object('measure', p_measure, 'raw', NULL, 'value', NULL, 'unit', m.unit,
                                  'missing_reason', CASE WHEN m.measure IS NULL THEN 'not in the catalogue (or disabled)'
                                                         ELSE 'its function is not installed' END);
    END IF;
    -- sql_function is constrained to csmcp.hm_<name> by the catalogue's CHECK and resolved above
    EXECUTE format('SELECT %s($1, $2)', m.sql_function) INTO raw USING p_client_id, p_lookback;
    RETURN jsonb_build_object('measure', p_measure, 'raw', raw, 'unit', m.unit,
        'value', CASE WHEN raw IS NULL THEN NULL
                      ELSE round(greatest(0, least(100, (raw - m.worst) / (m.best - m.worst) * 100)), 2) END,
        'missing_reason', CASE WHEN raw IS NULL THEN 'no data' END);
END $$;

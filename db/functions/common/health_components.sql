-- common/health_components.sql - the health model (docs/tools-preamble.md states these exact rules).
--
-- Components over a lookback of L days (window: the L UTC days ending today, inclusive):
--   usage        = round(100 * min(1, avg daily active users / licensed seats of the active
--                  contract)); avg = sum of daily active users over the window / L; no active
--                  contract or no seats -> 50
--   engagement   = from days since the last day with usage: 0 -> 95, <=3 -> 85, <=7 -> 75,
--                  <=14 -> 60, <=30 -> 45, more -> 30, never -> 50
--   support      = 100 - min(30, 3 * tickets opened in the window) - min(20, 10 * P0/P1 opened)
--   satisfaction = (NPS + 100) / 2, NPS = % promoters (9-10) - % detractors (0-6) of the NPS
--                  responses in the window, rounded to 2 decimals; no response -> 70
--   payment      = no active contract -> 85; else 100, -40 if any invoice is overdue (unpaid
--                  past its due date), -20 if any invoice was paid late (after its due date),
--                  -10 if the contract ends in fewer than 30 days
-- "In the window" for timestamps means > now() - L days.
CREATE OR REPLACE FUNCTION csmcp.health_components(p_client_id text, p_lookback integer)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
    t date := csmcp.today();
    c contracts;
    seats integer;
    avg_dau numeric;
    last_day date;
    days_since integer;
    n_tickets integer;
    n_critical integer;
    n_nps integer;
    n_prom integer;
    n_detr integer;
    nps numeric;
    n_overdue integer := 0;
    n_late integer := 0;
    days_to_renewal integer;
    u integer; e integer; s integer; sat numeric; p integer;
BEGIN
    c := csmcp.active_contract(p_client_id);
    seats := c.licensed_seats;

    SELECT coalesce(sum(active_users), 0)::numeric / p_lookback INTO avg_dau
    FROM usage_daily WHERE client_id = p_client_id AND day > t - p_lookback AND day <= t;
    u := CASE WHEN c.contract_id IS NULL OR seats IS NULL THEN 50
              ELSE round(100 * least(1, avg_dau / seats))::integer END;

    SELECT max(day) INTO last_day FROM usage_daily
    WHERE client_id = p_client_id AND (events > 0 OR active_users > 0) AND day <= t;
    days_since := t - last_day;
    e := CASE WHEN last_day IS NULL THEN 50 WHEN days_since <= 0 THEN 95 WHEN days_since <= 3 THEN 85
              WHEN days_since <= 7 THEN 75 WHEN days_since <= 14 THEN 60 WHEN days_since <= 30 THEN 45 ELSE 30 END;

    SELECT count(*), count(*) FILTER (WHERE priority IN ('P0', 'P1')) INTO n_tickets, n_critical
    FROM support_tickets WHERE client_id = p_client_id AND created_at > now() - make_interval(days => p_lookback);
    s := 100 - least(30, 3 * n_tickets) - least(20, 10 * n_critical);

    SELECT count(*), count(*) FILTER (WHERE score >= 9), count(*) FILTER (WHERE score <= 6)
    INTO n_nps, n_prom, n_detr
    FROM nps_responses WHERE client_id = p_client_id AND responded_at > now() - make_interval(days => p_lookback);
    IF n_nps = 0 THEN
        nps := NULL; sat := 70;
    ELSE
        nps := round((n_prom - n_detr)::numeric * 100 / n_nps, 2);
        sat := round(((n_prom - n_detr)::numeric * 100 / n_nps + 100) / 2, 2);
    END IF;

    IF c.contract_id IS NULL THEN
        p := 85;
    ELSE
        SELECT count(*) FILTER (WHERE paid_on IS NULL AND due_on < t), count(*) FILTER (WHERE paid_on > due_on)
        INTO n_overdue, n_late FROM invoices WHERE contract_id = c.contract_id;
        days_to_renewal := c.end_date - t;
        p := 100 - CASE WHEN n_overdue > 0 THEN 40 ELSE 0 END - CASE WHEN n_late > 0 THEN 20 ELSE 0 END
                 - CASE WHEN days_to_renewal < 30 THEN 10 ELSE 0 END;
        p := greatest(0, p);
    END IF;

    RETURN jsonb_build_object(
        'usage', u, 'engagement', e, 'support', s, 'satisfaction', sat, 'payment', p,
        'metrics', jsonb_build_object(
            'lookback_period_days', p_lookback,
            'avg_daily_active_users', round(avg_dau, 2),
            'licensed_seats', seats,
            'last_usage_date', last_day,
            'days_since_last_usage', days_since,
            'tickets_opened', n_tickets,
            'critical_tickets_opened', n_critical,
            'nps_responses', n_nps,
            'nps_promoters', n_prom,
            'nps_detractors', n_detr,
            'nps', nps,
            'has_active_contract', c.contract_id IS NOT NULL,
            'overdue_invoices', n_overdue,
            'late_invoices', n_late,
            'days_until_renewal', days_to_renewal));
END $$;

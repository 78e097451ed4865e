-- sup_agent_daily (migration 0181): support tickets per agent ('' = unassigned), priority and UTC
-- day of each ticket clock, kept exact by statement triggers on support_tickets in the writing
-- transaction; sup_prio_daily the same per priority and day, sup_prio_hourly (0203) per priority,
-- day and hour. analyze_support_performance sums, per agent, the whole days of its period from
-- sup_agent_daily and reads the tickets of the period's partial first day and of today; for the
-- whole team it sums the whole hours from sup_prio_hourly and reads the tickets of the two
-- partial hours (csmcp.sup_tally). sup_prio_daily is no longer read (kept: the previous
-- release reads it).

-- One ticket's contributions, one row per clock that is set and falls in (p_lo, p_hi] and not in
-- [e_lo, e_hi) (the days the rollup answers for), signed by sg (-1: an old row leaving). The
-- per-ticket rules are those of sup_perf_metrics_scratch / sup_perf_by_agent_scratch.
CREATE OR REPLACE FUNCTION csmcp.sup_day_rows(t support_tickets, sg integer, p_lo timestamptz, p_hi timestamptz,
                                              e_lo timestamptz, e_hi timestamptz)
RETURNS SETOF sup_agent_daily LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(t.assigned_agent, ''), t.priority, (t.created_at AT TIME ZONE 'UTC')::date,
           sg, sg * t.escalated::integer, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
     WHERE t.created_at > p_lo AND t.created_at <= p_hi AND NOT (t.created_at >= e_lo AND t.created_at < e_hi)
    UNION ALL
    SELECT coalesce(t.assigned_agent, ''), t.priority, (t.first_response_at AT TIME ZONE 'UTC')::date, 0, 0, sg,
           sg * coalesce((t.first_response_at - t.created_at <= make_interval(mins => t.sla_first_response_minutes))::integer, 0),
           sg * coalesce((t.first_response_at - t.created_at > make_interval(mins => t.sla_first_response_minutes))::integer, 0),
           sg * (extract(epoch FROM t.first_response_at - t.created_at) / 60), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
     WHERE t.first_response_at > p_lo AND t.first_response_at <= p_hi
       AND NOT (t.first_response_at >= e_lo AND t.first_response_at < e_hi)
    UNION ALL
    SELECT coalesce(t.assigned_agent, ''), t.priority, (t.resolved_at AT TIME ZONE 'UTC')::date, 0, 0, 0, 0, 0, 0, sg,
           sg * coalesce((t.resolved_at - t.created_at <= make_interval(mins => t.sla_resolution_minutes))::integer, 0),
           sg * coalesce((t.resolved_at - t.created_at > make_interval(mins => t.sla_resolution_minutes))::integer, 0),
           sg * (extract(epoch FROM t.resolved_at - t.created_at) / 60),
           sg * (t.satisfaction_rating IS NOT NULL)::integer, 0, 0, 0, 0, 0, 0, 0, 0, 0
     WHERE t.resolved_at > p_lo AND t.resolved_at <= p_hi AND NOT (t.resolved_at >= e_lo AND t.resolved_at < e_hi)
    UNION ALL
    SELECT coalesce(t.assigned_agent, ''), t.priority, (t.rated_at AT TIME ZONE 'UTC')::date, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
           sg, sg * (t.satisfaction_rating IS NOT NULL)::integer, sg * coalesce(t.satisfaction_rating, 0),
           sg * coalesce((t.satisfaction_rating <= 2)::integer, 0),
           sg * coalesce((t.satisfaction_rating = 1)::integer, 0), sg * coalesce((t.satisfaction_rating = 2)::integer, 0),
           sg * coalesce((t.satisfaction_rating = 3)::integer, 0), sg * coalesce((t.satisfaction_rating = 4)::integer, 0),
           sg * coalesce((t.satisfaction_rating = 5)::integer, 0)
     WHERE t.rated_at > p_lo AND t.rated_at <= p_hi AND NOT (t.rated_at >= e_lo AND t.rated_at < e_hi)
$$;

-- Every ticket, from scratch, as rollup rows (the check and the rebuild).
CREATE OR REPLACE FUNCTION csmcp.sup_agent_daily_scratch()
RETURNS SETOF sup_agent_daily LANGUAGE sql STABLE AS $$
    SELECT x.agent, x.priority, x.day, sum(x.created), sum(x.escalated), sum(x.f_n), sum(x.f_met), sum(x.f_br), sum(x.f_sum),
           sum(x.resolved), sum(x.r_met), sum(x.r_br), sum(x.r_sum), sum(x.r_rated), sum(x.q_n), sum(x.q_rated), sum(x.q_sum),
           sum(x.q_neg), sum(x.q1), sum(x.q2), sum(x.q3), sum(x.q4), sum(x.q5)
      FROM support_tickets t
     CROSS JOIN LATERAL csmcp.sup_day_rows(t, 1, '-infinity', 'infinity', '-infinity', '-infinity') x
     GROUP BY x.agent, x.priority, x.day
$$;

-- One ticket's rows of sup_day_rows for every clock, with the UTC hour of that clock (migration
-- 0203). Each of sup_day_rows' four branches sets its own count to sg (never 0): created (the
-- created_at clock), f_n (first_response_at), resolved (resolved_at), else q_n (rated_at).
CREATE OR REPLACE FUNCTION csmcp.sup_hour_rows(t support_tickets, sg integer)
RETURNS SETOF sup_prio_hourly LANGUAGE sql IMMUTABLE AS $$
    SELECT x.*, extract(hour FROM (CASE WHEN x.created <> 0 THEN t.created_at WHEN x.f_n <> 0 THEN t.first_response_at
                                         WHEN x.resolved <> 0 THEN t.resolved_at ELSE t.rated_at END) AT TIME ZONE 'UTC')::smallint
      FROM csmcp.sup_day_rows(t, sg, '-infinity', 'infinity', '-infinity', '-infinity') x
$$;

-- sup_prio_hourly from scratch (the check and the rebuild).
CREATE OR REPLACE FUNCTION csmcp.sup_prio_hourly_scratch()
RETURNS SETOF sup_prio_hourly LANGUAGE sql STABLE AS $$
    SELECT '*'::text, x.priority, x.day, sum(x.created), sum(x.escalated), sum(x.f_n), sum(x.f_met), sum(x.f_br), sum(x.f_sum),
           sum(x.resolved), sum(x.r_met), sum(x.r_br), sum(x.r_sum), sum(x.r_rated), sum(x.q_n), sum(x.q_rated), sum(x.q_sum),
           sum(x.q_neg), sum(x.q1), sum(x.q2), sum(x.q3), sum(x.q4), sum(x.q5), x.hr
      FROM support_tickets t
     CROSS JOIN LATERAL csmcp.sup_hour_rows(t, 1) x
     GROUP BY x.priority, x.day, x.hr
$$;

-- Rows of the rollups that differ from the from-scratch aggregation (empty = exact); agent '*'
-- is sup_prio_daily, '*h<hour>' sup_prio_hourly. A row of zeros (every ticket of the key gone) counts as absent.
CREATE OR REPLACE FUNCTION csmcp.sup_agent_daily_check()
RETURNS TABLE (day date, agent text, priority text, stored jsonb, scratch jsonb) LANGUAGE sql STABLE AS $$
    WITH sc AS MATERIALIZED (SELECT * FROM csmcp.sup_agent_daily_scratch()),
         sp AS (SELECT '*'::text AS agent, s.priority, s.day, sum(created) AS created, sum(escalated) AS escalated,
                       sum(f_n) AS f_n, sum(f_met) AS f_met, sum(f_br) AS f_br, sum(f_sum) AS f_sum, sum(resolved) AS resolved,
                       sum(r_met) AS r_met, sum(r_br) AS r_br, sum(r_sum) AS r_sum, sum(r_rated) AS r_rated, sum(q_n) AS q_n,
                       sum(q_rated) AS q_rated, sum(q_sum) AS q_sum, sum(q_neg) AS q_neg, sum(q1) AS q1, sum(q2) AS q2,
                       sum(q3) AS q3, sum(q4) AS q4, sum(q5) AS q5
                  FROM sc s GROUP BY s.day, s.priority),
         a AS (SELECT s.day, s.agent, s.priority, to_jsonb(s) - 'day' - 'agent' - 'priority' AS j FROM sup_agent_daily s
               UNION ALL
               SELECT s.day, s.agent, s.priority, to_jsonb(s) - 'day' - 'agent' - 'priority' FROM sup_prio_daily s
               UNION ALL   -- sup_prio_hourly (0203) as agent '*h<hour>'
               SELECT s.day, '*h' || s.hr, s.priority, to_jsonb(s) - 'day' - 'agent' - 'priority' - 'hr' FROM sup_prio_hourly s),
         b AS (SELECT s.day, s.agent, s.priority, to_jsonb(s) - 'day' - 'agent' - 'priority' AS j FROM sc s
               UNION ALL
               SELECT s.day, s.agent, s.priority, to_jsonb(s) - 'day' - 'agent' - 'priority' FROM sp s
               UNION ALL
               SELECT s.day, '*h' || s.hr, s.priority, to_jsonb(s) - 'day' - 'agent' - 'priority' - 'hr'
                 FROM csmcp.sup_prio_hourly_scratch() s),
         z AS (SELECT to_jsonb(r) - 'day' - 'agent' - 'priority' AS j
                 FROM (SELECT NULL::date AS day, NULL::text AS agent, NULL::text AS priority, 0 AS created, 0 AS escalated,
                              0 AS f_n, 0 AS f_met, 0 AS f_br, 0 AS f_sum, 0 AS resolved, 0 AS r_met, 0 AS r_br, 0 AS r_sum,
                              0 AS r_rated, 0 AS q_n, 0 AS q_rated, 0 AS q_sum, 0 AS q_neg, 0 AS q1, 0 AS q2, 0 AS q3, 0 AS q4,
                              0 AS q5) r)
    SELECT coalesce(a.day, b.day), coalesce(a.agent, b.agent), coalesce(a.priority, b.priority), a.j, b.j
      FROM a FULL JOIN b ON a.day = b.day AND a.agent = b.agent AND a.priority = b.priority
     WHERE coalesce(a.j, (SELECT j FROM z)) IS DISTINCT FROM coalesce(b.j, (SELECT j FROM z))
$$;

-- Recomputes the rollup; the SHARE lock waits for the ticket writers in flight and holds new
-- ones until this transaction ends, so no delta is both recomputed and applied.
CREATE OR REPLACE FUNCTION csmcp.sup_agent_daily_rebuild() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    LOCK TABLE support_tickets IN SHARE MODE;
    DELETE FROM sup_agent_daily;
    DELETE FROM sup_prio_daily;
    DELETE FROM sup_prio_hourly;
    INSERT INTO sup_prio_hourly SELECT * FROM csmcp.sup_prio_hourly_scratch() ORDER BY day, hr, priority;
    INSERT INTO sup_agent_daily SELECT * FROM csmcp.sup_agent_daily_scratch() ORDER BY day, agent, priority;
    INSERT INTO sup_prio_daily
    SELECT '*', priority, day, sum(created), sum(escalated), sum(f_n), sum(f_met), sum(f_br), sum(f_sum), sum(resolved),
           sum(r_met), sum(r_br), sum(r_sum), sum(r_rated), sum(q_n), sum(q_rated), sum(q_sum), sum(q_neg), sum(q1), sum(q2),
           sum(q3), sum(q4), sum(q5)
      FROM sup_agent_daily GROUP BY day, priority ORDER BY day, priority;
END $$;

-- The deltas of one statement: old rows out, new rows in, per key; keys whose deltas cancel (an
-- update of other columns) are not written. Upserts in key order, so that two statements over
-- several keys take the row locks in the same order.
CREATE OR REPLACE FUNCTION csmcp.sup_agent_daily_trg() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    -- returns at once in the seed's bulk transaction (which disables this trigger, see
    -- csmcp.seed_bulk_begin, and recomputes the rollups at the end with csmcp.portfolio_rebuild)
    v_tab text;
BEGIN
    IF csmcp.portfolio_bulk() THEN
        RETURN NULL;
    END IF;
    -- a work table for the session (created once: the deltas are grouped in one statement below);
    -- with each clock's hour (sup_prio_hourly, 0203; the name differs from the former
    -- sup_delta without it, which sessions of the previous functions may still hold)
    IF to_regclass('pg_temp.sup_delta_h') IS NULL THEN
        CREATE TEMP TABLE sup_delta_h (LIKE sup_prio_hourly) ON COMMIT DELETE ROWS;
    END IF;
    IF TG_OP = 'INSERT' THEN
        INSERT INTO sup_delta_h SELECT x.* FROM nt CROSS JOIN LATERAL csmcp.sup_hour_rows(nt, 1) x;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO sup_delta_h SELECT x.* FROM ot CROSS JOIN LATERAL csmcp.sup_hour_rows(ot, -1) x;
    ELSE
        INSERT INTO sup_delta_h
        SELECT x.* FROM ot CROSS JOIN LATERAL csmcp.sup_hour_rows(ot, -1) x
        UNION ALL
        SELECT x.* FROM nt CROSS JOIN LATERAL csmcp.sup_hour_rows(nt, 1) x;
    END IF;
    -- the same deltas per agent, priority and day, per priority and day (agent '*'), and per
    -- priority, day and hour
    FOREACH v_tab IN ARRAY ARRAY['sup_agent_daily', 'sup_prio_daily', 'sup_prio_hourly'] LOOP
        EXECUTE format($q$
    INSERT INTO %I AS s (agent, priority, day, created, escalated, f_n, f_met, f_br, f_sum, resolved, r_met, r_br, r_sum,
                         r_rated, q_n, q_rated, q_sum, q_neg, q1, q2, q3, q4, q5%s)
    SELECT %s, d.priority, d.day, sum(d.created), sum(d.escalated), sum(d.f_n), sum(d.f_met), sum(d.f_br), sum(d.f_sum),
           sum(d.resolved), sum(d.r_met), sum(d.r_br), sum(d.r_sum), sum(d.r_rated), sum(d.q_n), sum(d.q_rated), sum(d.q_sum),
           sum(d.q_neg), sum(d.q1), sum(d.q2), sum(d.q3), sum(d.q4), sum(d.q5)%s
      FROM sup_delta_h d
     GROUP BY 1, 2, 3%s
    HAVING sum(d.created) <> 0 OR sum(d.escalated) <> 0 OR sum(d.f_n) <> 0 OR sum(d.f_met) <> 0 OR sum(d.f_br) <> 0
        OR sum(d.f_sum) <> 0 OR sum(d.resolved) <> 0 OR sum(d.r_met) <> 0 OR sum(d.r_br) <> 0 OR sum(d.r_sum) <> 0
        OR sum(d.r_rated) <> 0 OR sum(d.q_n) <> 0 OR sum(d.q_rated) <> 0 OR sum(d.q_sum) <> 0 OR sum(d.q_neg) <> 0
        OR sum(d.q1) <> 0 OR sum(d.q2) <> 0 OR sum(d.q3) <> 0 OR sum(d.q4) <> 0 OR sum(d.q5) <> 0
     ORDER BY 3%s, 1, 2
    ON CONFLICT (%s) DO UPDATE SET
        created = s.created + excluded.created, escalated = s.escalated + excluded.escalated,
        f_n = s.f_n + excluded.f_n, f_met = s.f_met + excluded.f_met, f_br = s.f_br + excluded.f_br, f_sum = s.f_sum + excluded.f_sum,
        resolved = s.resolved + excluded.resolved, r_met = s.r_met + excluded.r_met, r_br = s.r_br + excluded.r_br,
        r_sum = s.r_sum + excluded.r_sum, r_rated = s.r_rated + excluded.r_rated,
        q_n = s.q_n + excluded.q_n, q_rated = s.q_rated + excluded.q_rated, q_sum = s.q_sum + excluded.q_sum,
        q_neg = s.q_neg + excluded.q_neg, q1 = s.q1 + excluded.q1, q2 = s.q2 + excluded.q2, q3 = s.q3 + excluded.q3,
        q4 = s.q4 + excluded.q4, q5 = s.q5 + excluded.q5$q$,
            v_tab, CASE WHEN v_tab = 'sup_prio_hourly' THEN ', hr' ELSE '' END,
            CASE v_tab WHEN 'sup_agent_daily' THEN 'd.agent' ELSE quote_literal('*') END,
            CASE WHEN v_tab = 'sup_prio_hourly' THEN ', d.hr' ELSE '' END,
            CASE WHEN v_tab = 'sup_prio_hourly' THEN ', 24' ELSE '' END,
            CASE WHEN v_tab = 'sup_prio_hourly' THEN ', 24' ELSE '' END,
            CASE WHEN v_tab = 'sup_prio_hourly' THEN 'day, hr, priority' ELSE 'day, agent, priority' END);
    END LOOP;
    DELETE FROM sup_delta_h;
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER sup_agent_daily_ins AFTER INSERT ON support_tickets REFERENCING NEW TABLE AS nt
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.sup_agent_daily_trg();
CREATE OR REPLACE TRIGGER sup_agent_daily_upd AFTER UPDATE ON support_tickets REFERENCING OLD TABLE AS ot NEW TABLE AS nt
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.sup_agent_daily_trg();
CREATE OR REPLACE TRIGGER sup_agent_daily_del AFTER DELETE ON support_tickets REFERENCING OLD TABLE AS ot
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.sup_agent_daily_trg();

CREATE OR REPLACE FUNCTION csmcp.sup_agent_daily_trunc_trg() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE sup_agent_daily, sup_prio_daily, sup_prio_hourly;   -- (a TRUNCATE of accounts reaches here through its cascade)
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER sup_agent_daily_trunc AFTER TRUNCATE ON support_tickets
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.sup_agent_daily_trunc_trg();

-- The period (p_from, p_to]'s counters per agent and priority (agent '' = unassigned; '*' = the
-- whole team's rows of the rollup's days unless p_by_agent), for an optional agent and priority: the rollup's whole UTC days inside the period, plus the tickets
-- of the partial days at both ends (p_from's day and p_to's) from support_tickets by the clocks'
-- indexes. The same sums as sup_perf_metrics_scratch's and sup_perf_by_agent_scratch's filters.
CREATE OR REPLACE FUNCTION csmcp.sup_tally(p_from timestamptz, p_to timestamptz, p_agent text, p_prio text,
                                           p_by_agent boolean)
RETURNS SETOF sup_agent_daily LANGUAGE plpgsql STABLE AS $$
DECLARE
    -- whole days d_lo..d_hi: d_lo's midnight is after p_from, d_hi's end is not after p_to
    d_lo date := (p_from AT TIME ZONE 'UTC')::date + 1;
    d_hi date := (p_to AT TIME ZONE 'UTC')::date - 1;
    e_lo timestamptz := d_lo::timestamp AT TIME ZONE 'UTC';
    e_hi timestamptz := (d_hi + 1)::timestamp AT TIME ZONE 'UTC';
    -- the whole team (0203): whole UTC hours [h_lo, h_hi) from sup_prio_hourly
    h_lo timestamp := date_trunc('hour', p_from AT TIME ZONE 'UTC') + interval '1 hour';
    h_hi timestamp := date_trunc('hour', p_to AT TIME ZONE 'UTC');
BEGIN
    IF NOT p_by_agent AND p_agent IS NULL THEN
        e_lo := h_lo AT TIME ZONE 'UTC';
        e_hi := h_hi AT TIME ZONE 'UTC';
    END IF;
    -- plpgsql, so that the bounds are values in the plans (the ranges of the clocks' indexes)
    RETURN QUERY
    WITH x AS (
        SELECT s.* FROM sup_agent_daily s
         WHERE s.day BETWEEN d_lo AND d_hi AND (p_by_agent OR p_agent IS NOT NULL)
           AND (p_agent IS NULL OR s.agent = p_agent) AND (p_prio IS NULL OR s.priority = p_prio)
        UNION ALL
        -- the whole team: a few rows per hour
        SELECT s.agent, s.priority, s.day, s.created, s.escalated, s.f_n, s.f_met, s.f_br, s.f_sum, s.resolved, s.r_met,
               s.r_br, s.r_sum, s.r_rated, s.q_n, s.q_rated, s.q_sum, s.q_neg, s.q1, s.q2, s.q3, s.q4, s.q5
          FROM sup_prio_hourly s
         WHERE s.day BETWEEN h_lo::date AND (h_hi - interval '1 hour')::date AND NOT p_by_agent AND p_agent IS NULL
           AND s.day + make_interval(hours => s.hr) >= h_lo AND s.day + make_interval(hours => s.hr) < h_hi
           AND (p_prio IS NULL OR s.priority = p_prio)
        UNION ALL
        -- the partial days (hours for the whole team): clocks in (p_from, e_lo) or [e_hi, p_to]
        -- (when p_from and p_to share a day / hour, e_lo > e_hi and that is the whole period)
        SELECT r.* FROM support_tickets t
         CROSS JOIN LATERAL csmcp.sup_day_rows(t, 1, p_from, p_to, e_lo, e_hi) r
         WHERE ((t.created_at > p_from AND t.created_at < e_lo) OR (t.created_at >= e_hi AND t.created_at <= p_to)
                OR (t.first_response_at > p_from AND t.first_response_at < e_lo)
                OR (t.first_response_at >= e_hi AND t.first_response_at <= p_to)
                OR (t.resolved_at > p_from AND t.resolved_at < e_lo) OR (t.resolved_at >= e_hi AND t.resolved_at <= p_to)
                OR (t.rated_at > p_from AND t.rated_at < e_lo) OR (t.rated_at >= e_hi AND t.rated_at <= p_to))
           AND (p_agent IS NULL OR t.assigned_agent = p_agent) AND (p_prio IS NULL OR t.priority = p_prio)
    )
    SELECT x.agent, x.priority, NULL::date, sum(x.created)::integer, sum(x.escalated)::integer, sum(x.f_n)::integer,
           sum(x.f_met)::integer, sum(x.f_br)::integer, sum(x.f_sum), sum(x.resolved)::integer, sum(x.r_met)::integer,
           sum(x.r_br)::integer, sum(x.r_sum), sum(x.r_rated)::integer, sum(x.q_n)::integer, sum(x.q_rated)::integer,
           sum(x.q_sum)::integer, sum(x.q_neg)::integer, sum(x.q1)::integer, sum(x.q2)::integer, sum(x.q3)::integer,
           sum(x.q4)::integer, sum(x.q5)::integer
      FROM x GROUP BY x.agent, x.priority;
END $$;

-- Installing the triggers over existing tickets (a database migrated from before 0181): fill the
-- rollup in this same transaction, under the rebuild's lock, so no write falls between the two.
DO $$
BEGIN
    IF NOT (EXISTS (SELECT 1 FROM sup_prio_daily) AND EXISTS (SELECT 1 FROM sup_prio_hourly))
       AND EXISTS (SELECT 1 FROM support_tickets) THEN
        PERFORM csmcp.sup_agent_daily_rebuild();
    END IF;
END $$;

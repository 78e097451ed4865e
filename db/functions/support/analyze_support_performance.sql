-- analyze_support_performance: support analytics over stored tickets, comments, ratings and KB
-- views, in the period (now - period_days, now], optionally for one client / team / agent / priority.
--
-- Figures (rates 3 decimals, minutes and CSAT 2 decimals; null with a "no data" reason when the
-- denominator is 0):
--   first-response SLA over tickets whose first response is in the period: met if
--   first_response_at - created_at <= target, else breached; resolution SLA likewise over tickets
--   resolved in the period; sla_compliance = met / (met + breached) over both clocks together.
--   csat = mean satisfaction_rating (1-5) of ratings given (rated_at) in the period;
--   response_rate = tickets resolved in the period that carry a rating / tickets resolved;
--   negative_share = ratings <= 2 / ratings; escalation_rate = tickets created in the period that
--   are escalated / tickets created; deflection_rate = KB views recorded by the portal for the
--   client(s) (kb_article_views with a client) / (those views + tickets created), "no data" when
--   the portal recorded no view in the period, not applicable with a team, agent or priority filter.
-- Recommendation rules (seed-original.md §3.7): sla_compliance < 0.9; csat < 4.0;
-- deflection_rate < 0.25; escalation_rate > 0.1; SLA issues when first-response breaches > 5,
-- resolution breaches > 10 or open tickets at risk > 5; staffing hint when resolution compliance
-- < 0.85; routing hint when first-response breaches > 5; "review SLA targets" when compliance >
-- 0.98; satisfaction actions when response rate < 0.8, csat < 4.0, negative share > 0.15.

CREATE OR REPLACE FUNCTION csmcp.sup_rate(num numeric, den numeric) RETURNS numeric
LANGUAGE sql IMMUTABLE AS $$ SELECT CASE WHEN den > 0 THEN round(num / den, 3) END $$;

-- sup_perf_metrics_scratch and sup_perf_by_agent_scratch compute from the tickets themselves: the
-- path for a client or team filter (the rollup has neither), and the reference the rollup path is
-- tested against (tests/integration/test_rollup_equality_segments.py).
CREATE OR REPLACE FUNCTION csmcp.sup_perf_metrics_scratch(p_from timestamptz, p_to timestamptz, p_client text, p_team text,
                                                  p_agent text, p_prio text) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    WITH s AS MATERIALIZED (
        -- only the tickets with an event in the period (each test below repeats its own bound);
        -- the OR of four indexed ranges is a BitmapOr, not a scan of every ticket
        SELECT t.created_at, t.first_response_at, t.resolved_at, t.rated_at, t.escalated, t.satisfaction_rating,
               t.sla_first_response_minutes, t.sla_resolution_minutes
        FROM support_tickets t
        WHERE ((t.created_at > p_from AND t.created_at <= p_to) OR (t.first_response_at > p_from AND t.first_response_at <= p_to)
               OR (t.resolved_at > p_from AND t.resolved_at <= p_to) OR (t.rated_at > p_from AND t.rated_at <= p_to))
          AND p_client IS NULL AND (p_team IS NULL OR t.assigned_team = p_team)
          AND (p_agent IS NULL OR t.assigned_agent = p_agent) AND (p_prio IS NULL OR t.priority = p_prio)
        UNION ALL
        -- one client: its tickets by the client index (a disjoint branch: this SQL function is
        -- planned without the parameters' values, and "p_client IS NULL OR client_id = p_client"
        -- read every ticket of the period - issue 21)
        SELECT t.created_at, t.first_response_at, t.resolved_at, t.rated_at, t.escalated, t.satisfaction_rating,
               t.sla_first_response_minutes, t.sla_resolution_minutes
        FROM support_tickets t
        WHERE t.client_id = p_client
          AND ((t.created_at > p_from AND t.created_at <= p_to) OR (t.first_response_at > p_from AND t.first_response_at <= p_to)
               OR (t.resolved_at > p_from AND t.resolved_at <= p_to) OR (t.rated_at > p_from AND t.rated_at <= p_to))
          AND (p_team IS NULL OR t.assigned_team = p_team)
          AND (p_agent IS NULL OR t.assigned_agent = p_agent) AND (p_prio IS NULL OR t.priority = p_prio)
    ), c AS (
        SELECT count(*) AS created, count(*) FILTER (WHERE escalated) AS escalated
        FROM s WHERE created_at > p_from AND created_at <= p_to
    ), f AS (
        SELECT count(*) FILTER (WHERE first_response_at - created_at <= make_interval(mins => sla_first_response_minutes)) AS met,
               count(*) FILTER (WHERE first_response_at - created_at > make_interval(mins => sla_first_response_minutes)) AS breached,
               avg(extract(epoch FROM first_response_at - created_at) / 60) AS avg_min
        FROM s WHERE first_response_at > p_from AND first_response_at <= p_to
    ), r AS (
        SELECT count(*) AS resolved,
               count(*) FILTER (WHERE resolved_at - created_at <= make_interval(mins => sla_resolution_minutes)) AS met,
               count(*) FILTER (WHERE resolved_at - created_at > make_interval(mins => sla_resolution_minutes)) AS breached,
               avg(extract(epoch FROM resolved_at - created_at) / 60) AS avg_min,
               count(*) FILTER (WHERE satisfaction_rating IS NOT NULL) AS rated
        FROM s WHERE resolved_at > p_from AND resolved_at <= p_to
    ), q AS (
        SELECT count(*) AS rated, avg(satisfaction_rating) AS csat, count(*) FILTER (WHERE satisfaction_rating <= 2) AS negative,
               jsonb_build_object('1', count(*) FILTER (WHERE satisfaction_rating = 1), '2', count(*) FILTER (WHERE satisfaction_rating = 2),
                                  '3', count(*) FILTER (WHERE satisfaction_rating = 3), '4', count(*) FILTER (WHERE satisfaction_rating = 4),
                                  '5', count(*) FILTER (WHERE satisfaction_rating = 5)) AS dist
        FROM s WHERE rated_at > p_from AND rated_at <= p_to AND satisfaction_rating IS NOT NULL
    ), v AS (
        SELECT (SELECT count(*) FROM kb_article_views kv
                WHERE kv.client_id IS NOT NULL AND p_client IS NULL AND kv.viewed_at > p_from AND kv.viewed_at <= p_to)
             + (SELECT count(*) FROM kb_article_views kv
                WHERE kv.client_id = p_client AND kv.viewed_at > p_from AND kv.viewed_at <= p_to) AS views
    )
    SELECT jsonb_build_object(
        'tickets_created', c.created, 'tickets_resolved', r.resolved, 'tickets_escalated', c.escalated,
        'first_response', jsonb_build_object('met', f.met, 'breached', f.breached, 'compliance', csmcp.sup_rate(f.met, f.met + f.breached),
                                             'avg_minutes', round(f.avg_min, 2)),
        'resolution', jsonb_build_object('met', r.met, 'breached', r.breached, 'compliance', csmcp.sup_rate(r.met, r.met + r.breached),
                                         'avg_minutes', round(r.avg_min, 2)),
        'sla_compliance', csmcp.sup_rate(f.met + r.met, f.met + f.breached + r.met + r.breached),
        'csat', round(q.csat, 2), 'ratings', q.rated, 'rating_distribution', q.dist,
        'response_rate', csmcp.sup_rate(r.rated, r.resolved), 'negative_share', csmcp.sup_rate(q.negative, q.rated),
        'escalation_rate', csmcp.sup_rate(c.escalated, c.created),
        'kb_portal_views', CASE WHEN p_team IS NULL AND p_agent IS NULL AND p_prio IS NULL THEN v.views END,
        'deflection_rate', CASE WHEN p_team IS NULL AND p_agent IS NULL AND p_prio IS NULL AND v.views > 0
                                THEN csmcp.sup_rate(v.views, v.views + c.created) END,
        'deflection_note', CASE WHEN p_team IS NOT NULL OR p_agent IS NOT NULL OR p_prio IS NOT NULL
                                THEN 'not applicable: KB views cannot be attributed to a team, agent or priority'
                                WHEN v.views = 0 THEN 'no data: the portal recorded no knowledge-base view in the period' END)
    FROM c, f, r, q, v
$$;

-- The period's figures per agent in one pass per clock (same definitions as sup_perf_metrics,
-- without the KB and distribution parts): agents with a ticket created or resolved in the
-- period, or open now.
CREATE OR REPLACE FUNCTION csmcp.sup_perf_by_agent_scratch(p_from timestamptz, p_to timestamptz, p_client text, p_team text,
                                                   p_agent text, p_prio text)
RETURNS TABLE (agent_id text, open_now integer, metrics jsonb)
LANGUAGE sql STABLE AS $$
    WITH s AS MATERIALIZED (
        SELECT t.assigned_agent AS ag, t.created_at, t.first_response_at, t.resolved_at, t.rated_at, t.status, t.escalated,
               t.satisfaction_rating, t.sla_first_response_minutes AS frt, t.sla_resolution_minutes AS rst
        FROM support_tickets t
        WHERE t.assigned_agent IS NOT NULL AND (p_agent IS NULL OR t.assigned_agent = p_agent)
          AND (p_client IS NULL OR t.client_id = p_client) AND (p_team IS NULL OR t.assigned_team = p_team)
          AND (p_prio IS NULL OR t.priority = p_prio)
          AND (t.created_at > p_from OR t.first_response_at > p_from OR t.resolved_at > p_from OR t.rated_at > p_from
               OR t.status NOT IN ('resolved', 'closed'))
    ), g AS (
        SELECT ag,
               count(*) FILTER (WHERE status NOT IN ('resolved', 'closed')) AS open_now,
               count(*) FILTER (WHERE created_at > p_from AND created_at <= p_to) AS created,
               count(*) FILTER (WHERE created_at > p_from AND created_at <= p_to AND escalated) AS escalated,
               count(*) FILTER (WHERE first_response_at > p_from AND first_response_at <= p_to
                                  AND first_response_at - created_at <= make_interval(mins => frt)) AS f_met,
               count(*) FILTER (WHERE first_response_at > p_from AND first_response_at <= p_to
                                  AND first_response_at - created_at > make_interval(mins => frt)) AS f_br,
               avg(extract(epoch FROM first_response_at - created_at) / 60) FILTER (WHERE first_response_at > p_from
                                  AND first_response_at <= p_to) AS f_avg,
               count(*) FILTER (WHERE resolved_at > p_from AND resolved_at <= p_to) AS resolved,
               count(*) FILTER (WHERE resolved_at > p_from AND resolved_at <= p_to
                                  AND resolved_at - created_at <= make_interval(mins => rst)) AS r_met,
               count(*) FILTER (WHERE resolved_at > p_from AND resolved_at <= p_to
                                  AND resolved_at - created_at > make_interval(mins => rst)) AS r_br,
               avg(extract(epoch FROM resolved_at - created_at) / 60) FILTER (WHERE resolved_at > p_from AND resolved_at <= p_to) AS r_avg,
               count(*) FILTER (WHERE resolved_at > p_from AND resolved_at <= p_to AND satisfaction_rating IS NOT NULL) AS r_rated,
               count(*) FILTER (WHERE rated_at > p_from AND rated_at <= p_to AND satisfaction_rating IS NOT NULL) AS rated,
               avg(satisfaction_rating) FILTER (WHERE rated_at > p_from AND rated_at <= p_to) AS csat,
               count(*) FILTER (WHERE rated_at > p_from AND rated_at <= p_to AND satisfaction_rating <= 2) AS negative
        FROM s GROUP BY ag
    )
    SELECT ag, open_now::integer, jsonb_build_object(
        'tickets_created', created, 'tickets_resolved', resolved, 'tickets_escalated', escalated,
        'first_response', jsonb_build_object('met', f_met, 'breached', f_br, 'compliance', csmcp.sup_rate(f_met, f_met + f_br),
                                             'avg_minutes', round(f_avg, 2)),
        'resolution', jsonb_build_object('met', r_met, 'breached', r_br, 'compliance', csmcp.sup_rate(r_met, r_met + r_br),
                                         'avg_minutes', round(r_avg, 2)),
        'sla_compliance', csmcp.sup_rate(f_met + r_met, f_met + f_br + r_met + r_br),
        'csat', round(csat, 2), 'ratings', rated, 'response_rate', csmcp.sup_rate(r_rated, resolved),
        'negative_share', csmcp.sup_rate(negative, rated), 'escalation_rate', csmcp.sup_rate(escalated, created))
    FROM g
$$;

-- The period's figures (see the head of this file): with neither a client nor a team filter from
-- the per-agent, priority and day rollup (csmcp.sup_tally, migration 0181), else from the tickets.
CREATE OR REPLACE FUNCTION csmcp.sup_perf_metrics(p_from timestamptz, p_to timestamptz, p_client text, p_team text,
                                                  p_agent text, p_prio text) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    res jsonb;
BEGIN
    IF p_client IS NOT NULL OR p_team IS NOT NULL THEN
        RETURN csmcp.sup_perf_metrics_scratch(p_from, p_to, p_client, p_team, p_agent, p_prio);
    END IF;
    WITH g AS (
        SELECT coalesce(sum(created), 0) AS created, coalesce(sum(escalated), 0) AS escalated,
               coalesce(sum(f_n), 0)::numeric AS f_n, coalesce(sum(f_met), 0) AS f_met, coalesce(sum(f_br), 0) AS f_br, sum(f_sum) AS f_sum,
               coalesce(sum(resolved), 0) AS resolved, coalesce(sum(r_met), 0) AS r_met, coalesce(sum(r_br), 0) AS r_br,
               sum(r_sum) AS r_sum, coalesce(sum(r_rated), 0) AS r_rated, coalesce(sum(q_rated), 0) AS q_rated,
               sum(q_sum) AS q_sum, coalesce(sum(q_neg), 0) AS q_neg, coalesce(sum(q1), 0) AS q1, coalesce(sum(q2), 0) AS q2,
               coalesce(sum(q3), 0) AS q3, coalesce(sum(q4), 0) AS q4, coalesce(sum(q5), 0) AS q5
        FROM csmcp.sup_tally(p_from, p_to, p_agent, p_prio, false)
    ), v AS (
        SELECT count(*) AS views FROM kb_article_views kv WHERE kv.client_id IS NOT NULL AND kv.viewed_at > p_from AND kv.viewed_at <= p_to
    )
    -- avg() is sum / count in numeric: the same quotient from the summed per-ticket values
    SELECT jsonb_build_object(
        'tickets_created', g.created, 'tickets_resolved', g.resolved, 'tickets_escalated', g.escalated,
        'first_response', jsonb_build_object('met', g.f_met, 'breached', g.f_br, 'compliance', csmcp.sup_rate(g.f_met, g.f_met + g.f_br),
                                             'avg_minutes', round(g.f_sum / nullif(g.f_n, 0), 2)),
        'resolution', jsonb_build_object('met', g.r_met, 'breached', g.r_br, 'compliance', csmcp.sup_rate(g.r_met, g.r_met + g.r_br),
                                         'avg_minutes', round(g.r_sum / nullif(g.resolved::numeric, 0), 2)),
        'sla_compliance', csmcp.sup_rate(g.f_met + g.r_met, g.f_met + g.f_br + g.r_met + g.r_br),
        'csat', round(g.q_sum::numeric / nullif(g.q_rated::numeric, 0), 2), 'ratings', g.q_rated,
        'rating_distribution', jsonb_build_object('1', g.q1, '2', g.q2, '3', g.q3, '4', g.q4, '5', g.q5),
        'response_rate', csmcp.sup_rate(g.r_rated, g.resolved), 'negative_share', csmcp.sup_rate(g.q_neg, g.q_rated),
        'escalation_rate', csmcp.sup_rate(g.escalated, g.created),
        'kb_portal_views', CASE WHEN p_agent IS NULL AND p_prio IS NULL THEN v.views END,
        'deflection_rate', CASE WHEN p_agent IS NULL AND p_prio IS NULL AND v.views > 0
                                THEN csmcp.sup_rate(v.views, v.views + g.created) END,
        'deflection_note', CASE WHEN p_agent IS NOT NULL OR p_prio IS NOT NULL
                                THEN 'not applicable: KB views cannot be attributed to a team, agent or priority'
                                WHEN v.views = 0 THEN 'no data: the portal recorded no knowledge-base view in the period' END)
    INTO res FROM g, v;
    RETURN res;
END $$;

-- Per agent (see sup_perf_by_agent_scratch): agents with a ticket event after p_from (in the
-- period or later) or a ticket open now; with neither a client nor a team filter from the rollup.
CREATE OR REPLACE FUNCTION csmcp.sup_perf_by_agent(p_from timestamptz, p_to timestamptz, p_client text, p_team text,
                                                   p_agent text, p_prio text)
RETURNS TABLE (agent_id text, open_now integer, metrics jsonb)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    d_lo date := (p_from AT TIME ZONE 'UTC')::date + 1;
    d_hi date := (p_to AT TIME ZONE 'UTC')::date - 1;
BEGIN
    IF p_client IS NOT NULL OR p_team IS NOT NULL THEN
        RETURN QUERY SELECT * FROM csmcp.sup_perf_by_agent_scratch(p_from, p_to, p_client, p_team, p_agent, p_prio);
        RETURN;
    END IF;
    RETURN QUERY
    WITH g AS (
        SELECT x.agent AS ag, sum(x.created) AS created, sum(x.escalated) AS escalated, sum(x.f_n)::numeric AS f_n,
               sum(x.f_met) AS f_met, sum(x.f_br) AS f_br, sum(x.f_sum) AS f_sum, sum(x.resolved) AS resolved,
               sum(x.r_met) AS r_met, sum(x.r_br) AS r_br, sum(x.r_sum) AS r_sum, sum(x.r_rated) AS r_rated,
               sum(x.q_rated) AS rated, sum(x.q_sum) AS q_sum, sum(x.q_neg) AS negative, sum(x.q_n) AS q_n
        FROM csmcp.sup_tally(p_from, p_to, p_agent, p_prio, true) x WHERE x.agent <> '' GROUP BY x.agent
    ), o AS (
        SELECT t.assigned_agent AS ag, count(*) AS n FROM support_tickets t
         WHERE t.status NOT IN ('resolved', 'closed') AND t.assigned_agent IS NOT NULL
           AND (p_agent IS NULL OR t.assigned_agent = p_agent) AND (p_prio IS NULL OR t.priority = p_prio)
         GROUP BY 1
    ), ags AS (
        -- any clock after p_from: in the period (g), on the rollup's days after it (today's rest
        -- and later; from d_lo on when p_from is today), on p_from's own day after it, open
        SELECT g.ag FROM g WHERE (g.created + g.f_n + g.resolved + g.q_n) > 0
        UNION
        SELECT s.agent FROM sup_agent_daily s
         WHERE s.day >= greatest(d_hi + 1, d_lo) AND s.agent <> '' AND (s.created + s.f_n + s.resolved + s.q_n) > 0
           AND (p_agent IS NULL OR s.agent = p_agent) AND (p_prio IS NULL OR s.priority = p_prio)
        UNION
        SELECT t.assigned_agent FROM support_tickets t
         WHERE t.assigned_agent IS NOT NULL AND (p_agent IS NULL OR t.assigned_agent = p_agent)
           AND (p_prio IS NULL OR t.priority = p_prio)
           AND ((t.created_at > p_from AND t.created_at < d_lo::timestamp AT TIME ZONE 'UTC')
                OR (t.first_response_at > p_from AND t.first_response_at < d_lo::timestamp AT TIME ZONE 'UTC')
                OR (t.resolved_at > p_from AND t.resolved_at < d_lo::timestamp AT TIME ZONE 'UTC')
                OR (t.rated_at > p_from AND t.rated_at < d_lo::timestamp AT TIME ZONE 'UTC'))
        UNION
        SELECT o.ag FROM o
    )
    SELECT a.ag, coalesce(o.n, 0)::integer, jsonb_build_object(
        'tickets_created', coalesce(g.created, 0), 'tickets_resolved', coalesce(g.resolved, 0),
        'tickets_escalated', coalesce(g.escalated, 0),
        'first_response', jsonb_build_object('met', coalesce(g.f_met, 0), 'breached', coalesce(g.f_br, 0),
                                             'compliance', csmcp.sup_rate(g.f_met, g.f_met + g.f_br),
                                             'avg_minutes', round(g.f_sum / nullif(g.f_n, 0), 2)),
        'resolution', jsonb_build_object('met', coalesce(g.r_met, 0), 'breached', coalesce(g.r_br, 0),
                                         'compliance', csmcp.sup_rate(g.r_met, g.r_met + g.r_br),
                                         'avg_minutes', round(g.r_sum / nullif(g.resolved::numeric, 0), 2)),
        'sla_compliance', csmcp.sup_rate(g.f_met + g.r_met, g.f_met + g.f_br + g.r_met + g.r_br),
        'csat', round(g.q_sum::numeric / nullif(g.rated::numeric, 0), 2), 'ratings', coalesce(g.rated, 0),
        'response_rate', csmcp.sup_rate(g.r_rated, g.resolved),
        'negative_share', csmcp.sup_rate(g.negative, g.rated), 'escalation_rate', csmcp.sup_rate(g.escalated, g.created))
    FROM ags a LEFT JOIN g ON g.ag = a.ag LEFT JOIN o ON o.ag = a.ag;
END $$;

-- Open tickets now (running clocks), in scope.
CREATE OR REPLACE FUNCTION csmcp.sup_open_now(p_client text, p_team text, p_agent text, p_prio text) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    WITH o AS (
        SELECT t.ticket_id, t.priority, t.assigned_agent, csmcp.sup_ticket_sla_state(t, now()) AS sla, csmcp.sup_breach_risk(t, now()) AS risk
        FROM support_tickets t
        WHERE t.status NOT IN ('resolved', 'closed')
          AND p_client IS NULL AND (p_team IS NULL OR t.assigned_team = p_team)
          AND (p_agent IS NULL OR t.assigned_agent = p_agent) AND (p_prio IS NULL OR t.priority = p_prio)
        UNION ALL   -- one client: by the client index (disjoint branches, as in sup_perf_metrics)
        SELECT t.ticket_id, t.priority, t.assigned_agent, csmcp.sup_ticket_sla_state(t, now()) AS sla, csmcp.sup_breach_risk(t, now()) AS risk
        FROM support_tickets t
        WHERE t.client_id = p_client AND t.status NOT IN ('resolved', 'closed')
          AND (p_team IS NULL OR t.assigned_team = p_team)
          AND (p_agent IS NULL OR t.assigned_agent = p_agent) AND (p_prio IS NULL OR t.priority = p_prio)
    )
    SELECT jsonb_build_object('open', (SELECT count(*) FROM o), 'unassigned', (SELECT count(*) FROM o WHERE assigned_agent IS NULL),
        'at_risk', (SELECT count(*) FROM o WHERE sla = 'at_risk'), 'breached', (SELECT count(*) FROM o WHERE sla = 'breached'),
        'critical_alerts', coalesce((SELECT jsonb_agg(jsonb_build_object('ticket_id', ticket_id, 'priority', priority, 'sla_state', sla,
                                         'sla_consumed', round(risk, 3), 'assigned_agent', assigned_agent) ORDER BY risk DESC, ticket_id)
                                     FROM (SELECT * FROM o WHERE priority IN ('P0', 'P1') AND sla IN ('at_risk', 'breached')
                                           ORDER BY risk DESC, ticket_id LIMIT 20) x), '[]'))
$$;

CREATE OR REPLACE FUNCTION csmcp.sup_pct(x numeric) RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT CASE WHEN x IS NULL THEN 'n/a' ELSE round(x * 100, 1) || '%' END $$;

CREATE OR REPLACE FUNCTION csmcp.tool_analyze_support_performance(args jsonb, principal text)
-- no JIT: at 100,000 accounts the plans' costs pass jit_above_cost and compiling took longer than
-- the query (issue 21: 1.5 s of a hierarchy rollup that runs in 70 ms)
RETURNS jsonb LANGUAGE plpgsql STABLE SET jit = off AS $$
DECLARE
    v_type text := csmcp.arg_text(args, 'analysis_type', 'overview',
        ARRAY['overview', 'sla', 'agent', 'satisfaction', 'knowledge_base', 'trends', 'comparison']);
    v_client text := csmcp.arg_text(args, 'client_id', NULL);
    v_days integer := csmcp.arg_int(args, 'period_days', 30, 1, 365);
    v_team text := csmcp.sup_opt_text(args, 'team_filter', 100);
    v_agent text := csmcp.sup_opt_text(args, 'agent_filter', 100);
    v_prio text := csmcp.arg_text(args, 'priority_filter', NULL, ARRAY['P0', 'P1', 'P2', 'P3', 'P4']);
    v_trends boolean := csmcp.arg_bool(args, 'include_trends', true);
    v_recs boolean := csmcp.arg_bool(args, 'include_recommendations', true);
    v_now timestamptz := now();
    v_from timestamptz := v_now - make_interval(days => v_days);
    m jsonb; p jsonb; o jsonb; res jsonb := '{}'; recs jsonb := '[]'; findings jsonb := '[]';
    v_len integer; v_nb integer; k integer; b jsonb := '[]'; bm jsonb;
    xs numeric[] := '{}'; ys numeric[] := '{}'; v_slope numeric; v_icpt numeric; v_mean numeric;
    v_summary text;
BEGIN
    IF v_client IS NOT NULL THEN PERFORM csmcp.require_account(v_client); END IF;
    IF v_agent IS NOT NULL AND NOT EXISTS (SELECT 1 FROM support_agents WHERE agent_id = v_agent) THEN
        RAISE EXCEPTION 'support agent % not found', v_agent USING ERRCODE = 'P0002';
    END IF;
    m := csmcp.sup_perf_metrics(v_from, v_now, v_client, v_team, v_agent, v_prio);
    o := csmcp.sup_open_now(v_client, v_team, v_agent, v_prio);

    -- Recommendations that apply to every analysis type, from the period's figures.
    IF (m ->> 'sla_compliance')::numeric < 0.9 THEN
        recs := recs || jsonb_build_object('rule', 'sla_compliance < 0.9', 'value', m -> 'sla_compliance',
            'recommendation', 'SLA compliance is ' || csmcp.sup_pct((m ->> 'sla_compliance')::numeric) || ': review staffing and routing for breached tickets');
    END IF;
    IF (m ->> 'csat')::numeric < 4.0 THEN
        recs := recs || jsonb_build_object('rule', 'csat < 4.0', 'value', m -> 'csat',
            'recommendation', 'Average satisfaction is ' || (m ->> 'csat') || '/5: review low-rated tickets and follow up with those customers');
    END IF;
    IF (m ->> 'deflection_rate')::numeric < 0.25 THEN
        recs := recs || jsonb_build_object('rule', 'deflection_rate < 0.25', 'value', m -> 'deflection_rate',
            'recommendation', 'Self-service deflection is ' || csmcp.sup_pct((m ->> 'deflection_rate')::numeric) || ': write articles for the search gaps and promote the portal');
    END IF;
    IF (m ->> 'escalation_rate')::numeric > 0.1 THEN
        recs := recs || jsonb_build_object('rule', 'escalation_rate > 0.1', 'value', m -> 'escalation_rate',
            'recommendation', 'Escalation rate is ' || csmcp.sup_pct((m ->> 'escalation_rate')::numeric) || ': train first-line agents on the escalated categories');
    END IF;

    IF v_type = 'overview' THEN
        findings := jsonb_build_array(
            format('%s ticket(s) created, %s resolved in %s days', m ->> 'tickets_created', m ->> 'tickets_resolved', v_days),
            format('SLA compliance %s (first response %s, resolution %s)', csmcp.sup_pct((m ->> 'sla_compliance')::numeric),
                   csmcp.sup_pct((m #>> '{first_response,compliance}')::numeric), csmcp.sup_pct((m #>> '{resolution,compliance}')::numeric)),
            format('CSAT %s from %s rating(s)', coalesce(m ->> 'csat', 'n/a'), m ->> 'ratings'),
            format('%s open now: %s at risk, %s breached, %s unassigned', o ->> 'open', o ->> 'at_risk', o ->> 'breached', o ->> 'unassigned'));
        res := jsonb_build_object('metrics', m, 'open_now', o - 'critical_alerts', 'key_findings', findings);
    ELSIF v_type = 'sla' THEN
        IF (m #>> '{first_response,breached}')::int > 5 THEN
            recs := recs || jsonb_build_object('rule', 'first-response breaches > 5', 'value', m #> '{first_response,breached}',
                'recommendation', 'Routing: ' || (m #>> '{first_response,breached}') || ' first responses breached; route new tickets sooner (route_tickets auto) and watch the queue');
        END IF;
        IF (m #>> '{resolution,breached}')::int > 10 THEN
            recs := recs || jsonb_build_object('rule', 'resolution breaches > 10', 'value', m #> '{resolution,breached}',
                'recommendation', (m #>> '{resolution,breached}') || ' resolutions breached their SLA: review the oldest open tickets daily');
        END IF;
        IF (o ->> 'at_risk')::int > 5 THEN
            recs := recs || jsonb_build_object('rule', 'open tickets at risk > 5', 'value', o -> 'at_risk',
                'recommendation', (o ->> 'at_risk') || ' open tickets are at risk of breaching: prioritise them now');
        END IF;
        IF (m #>> '{resolution,compliance}')::numeric < 0.85 THEN
            recs := recs || jsonb_build_object('rule', 'resolution compliance < 0.85', 'value', m #> '{resolution,compliance}',
                'recommendation', 'Staffing: resolution compliance is ' || csmcp.sup_pct((m #>> '{resolution,compliance}')::numeric) || '; add capacity to the busiest teams');
        END IF;
        IF (m ->> 'sla_compliance')::numeric > 0.98 THEN
            recs := recs || jsonb_build_object('rule', 'sla_compliance > 0.98', 'value', m -> 'sla_compliance',
                'recommendation', 'Review SLA targets: compliance is ' || csmcp.sup_pct((m ->> 'sla_compliance')::numeric) || ', the targets may be too loose');
        END IF;
        SELECT coalesce(jsonb_agg(jsonb_build_object('priority', pr, 'first_response_target_minutes', csmcp.sup_sla_first(pr),
                   'resolution_target_minutes', csmcp.sup_sla_resolution(pr))
                   || csmcp.sup_perf_metrics(v_from, v_now, v_client, v_team, v_agent, pr) - 'deflection_rate' - 'deflection_note' - 'kb_portal_views'
                   - 'rating_distribution' ORDER BY pr), '[]')
        INTO p FROM unnest(CASE WHEN v_prio IS NULL THEN ARRAY['P0', 'P1', 'P2', 'P3', 'P4'] ELSE ARRAY[v_prio] END) pr;
        res := jsonb_build_object('sla_metrics', jsonb_build_object('first_response', m -> 'first_response', 'resolution', m -> 'resolution',
                   'sla_compliance', m -> 'sla_compliance', 'open_at_risk', o -> 'at_risk', 'open_breached', o -> 'breached'),
               'by_priority', p, 'critical_alerts', o -> 'critical_alerts');
    ELSIF v_type = 'agent' THEN
        SELECT coalesce(jsonb_agg(jsonb_build_object('agent_id', a.agent_id, 'name', a.name, 'team', a.team, 'is_senior', a.is_senior,
                   'open_now', coalesce(g.open_now, 0), 'capacity', a.max_tickets) || g.metrics ORDER BY a.agent_id), '[]')
        INTO p
        FROM csmcp.sup_perf_by_agent(v_from, v_now, v_client, v_team, v_agent, v_prio) g
        JOIN support_agents a ON a.agent_id = g.agent_id;
        res := jsonb_build_object('agent_performance', p, 'team_metrics', m);
    ELSIF v_type = 'satisfaction' THEN
        IF (m ->> 'response_rate')::numeric < 0.8 THEN
            recs := recs || jsonb_build_object('rule', 'response_rate < 0.8', 'value', m -> 'response_rate',
                'recommendation', 'Only ' || csmcp.sup_pct((m ->> 'response_rate')::numeric) || ' of resolved tickets are rated: ask for a rating when resolving');
        END IF;
        IF (m ->> 'negative_share')::numeric > 0.15 THEN
            recs := recs || jsonb_build_object('rule', 'negative_share > 0.15', 'value', m -> 'negative_share',
                'recommendation', csmcp.sup_pct((m ->> 'negative_share')::numeric) || ' of ratings are 1-2/5: call those customers back');
        END IF;
        SELECT coalesce(jsonb_agg(jsonb_build_object('ticket_id', ticket_id, 'client_id', client_id, 'rating', satisfaction_rating,
                   'comment', satisfaction_comment, 'assigned_agent', assigned_agent, 'rated_at', csmcp.sup_ts(rated_at))
                   ORDER BY satisfaction_rating, rated_at DESC, ticket_id), '[]')
        INTO p FROM (SELECT * FROM support_tickets t WHERE t.rated_at > v_from AND t.satisfaction_rating <= 2
                     AND (v_client IS NULL OR t.client_id = v_client) AND (v_team IS NULL OR t.assigned_team = v_team)
                     AND (v_agent IS NULL OR t.assigned_agent = v_agent) AND (v_prio IS NULL OR t.priority = v_prio)
                     ORDER BY satisfaction_rating, rated_at DESC, ticket_id LIMIT 20) x;
        res := jsonb_build_object('satisfaction_metrics', jsonb_build_object('csat', m -> 'csat', 'ratings', m -> 'ratings',
                   'rating_distribution', m -> 'rating_distribution', 'response_rate', m -> 'response_rate',
                   'negative_share', m -> 'negative_share'), 'low_rated_tickets', p);
    ELSIF v_type = 'knowledge_base' THEN
        SELECT jsonb_build_object(
            'published_articles', (SELECT count(*) FROM kb_articles WHERE status = 'published'),
            'portal_views', m -> 'kb_portal_views', 'tickets_created', m -> 'tickets_created',
            'deflection_rate', m -> 'deflection_rate', 'deflection_note', m -> 'deflection_note',
            'overall_helpfulness', (SELECT csmcp.kb_helpfulness(sum(helpful_votes)::int, sum(not_helpful_votes)::int) FROM kb_articles),
            'searches', (SELECT count(*) FROM kb_searches WHERE searched_at > v_from AND (v_client IS NULL OR client_id = v_client)),
            'zero_result_searches', (SELECT count(*) FROM kb_searches WHERE searched_at > v_from AND results = 0
                                     AND (v_client IS NULL OR client_id = v_client)),
            'most_viewed', coalesce((SELECT jsonb_agg(jsonb_build_object('article_id', article_id, 'title', title, 'views', n) ORDER BY n DESC, article_id)
                                     FROM (SELECT v.article_id, a.title, count(*) n FROM kb_article_views v JOIN kb_articles a USING (article_id)
                                           WHERE v.viewed_at > v_from AND v.client_id IS NOT NULL AND (v_client IS NULL OR v.client_id = v_client)
                                           GROUP BY 1, 2 ORDER BY 3 DESC, 1 LIMIT 10) x), '[]'))
        INTO p;
        res := jsonb_build_object('kb_metrics', p,
            'search_gaps', coalesce((SELECT jsonb_agg(jsonb_build_object('query', q, 'searches', n) ORDER BY n DESC, q)
                                     FROM (SELECT lower(query) q, count(*) n FROM kb_searches WHERE searched_at > v_from AND results = 0
                                           AND (v_client IS NULL OR client_id = v_client) GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 10) x), '[]'));
    ELSIF v_type = 'comparison' THEN
        p := csmcp.sup_perf_metrics(v_from - make_interval(days => v_days), v_from, v_client, v_team, v_agent, v_prio);
        SELECT jsonb_object_agg(key, jsonb_build_object('current', cur, 'previous', prev,
                   'change', CASE WHEN cur IS NOT NULL AND prev IS NOT NULL THEN round(cur - prev, 3) END,
                   'direction', CASE WHEN cur IS NULL OR prev IS NULL THEN 'no data' WHEN cur > prev THEN 'up' WHEN cur < prev THEN 'down' ELSE 'flat' END))
        INTO res
        FROM (SELECT key, (m #>> path)::numeric AS cur, (p #>> path)::numeric AS prev
              FROM (VALUES ('tickets_created', '{tickets_created}'::text[]), ('tickets_resolved', '{tickets_resolved}'),
                           ('sla_compliance', '{sla_compliance}'), ('first_response_compliance', '{first_response,compliance}'),
                           ('resolution_compliance', '{resolution,compliance}'), ('avg_first_response_minutes', '{first_response,avg_minutes}'),
                           ('avg_resolution_minutes', '{resolution,avg_minutes}'), ('csat', '{csat}'),
                           ('escalation_rate', '{escalation_rate}'), ('deflection_rate', '{deflection_rate}')) k(key, path)) x;
        res := jsonb_build_object('comparison', res, 'current_period', m, 'previous_period', p,
            'periods', jsonb_build_object('current', jsonb_build_object('from', csmcp.sup_ts(v_from), 'to', csmcp.sup_ts(v_now)),
                                          'previous', jsonb_build_object('from', csmcp.sup_ts(v_from - make_interval(days => v_days)), 'to', csmcp.sup_ts(v_from))));
    END IF;

    -- Trends: buckets of 7 days (1 day when period_days < 14) ending now; forecast of the next
    -- bucket's created tickets by least squares over the buckets (at least 3), floored at 0.
    IF v_type = 'trends' OR (v_type = 'overview' AND v_trends) THEN
        v_len := CASE WHEN v_days >= 14 THEN 7 ELSE 1 END;
        v_nb := v_days / v_len;
        FOR k IN 1 .. v_nb LOOP
            bm := csmcp.sup_perf_metrics(v_now - make_interval(days => (v_nb - k + 1) * v_len), v_now - make_interval(days => (v_nb - k) * v_len),
                                         v_client, v_team, v_agent, v_prio);
            b := b || jsonb_build_object('bucket', k, 'from', csmcp.sup_ts(v_now - make_interval(days => (v_nb - k + 1) * v_len)),
                'to', csmcp.sup_ts(v_now - make_interval(days => (v_nb - k) * v_len)),
                'tickets_created', bm -> 'tickets_created', 'tickets_resolved', bm -> 'tickets_resolved',
                'sla_compliance', bm -> 'sla_compliance', 'csat', bm -> 'csat', 'escalation_rate', bm -> 'escalation_rate');
            xs := xs || k::numeric; ys := ys || (bm ->> 'tickets_created')::numeric;
        END LOOP;
        IF v_nb >= 3 THEN
            SELECT regr_slope(y, x), regr_intercept(y, x), avg(y) INTO v_slope, v_icpt, v_mean FROM unnest(xs, ys) u(x, y);
            p := jsonb_build_object('next_bucket_tickets_created', round(greatest(0, v_icpt + v_slope * (v_nb + 1)), 1),
                'slope_per_bucket', round(v_slope, 3),
                'direction', CASE WHEN v_mean = 0 THEN 'flat' WHEN v_slope / v_mean > 0.05 THEN 'increasing'
                                  WHEN v_slope / v_mean < -0.05 THEN 'decreasing' ELSE 'flat' END,
                'method', 'least squares over ' || v_nb || ' buckets');
        ELSE
            p := jsonb_build_object('next_bucket_tickets_created', NULL, 'note', 'no data: fewer than 3 buckets in the period');
        END IF;
        res := res || jsonb_build_object('trends', jsonb_build_object('bucket_days', v_len, 'buckets', b), 'forecast', p);
        IF v_type = 'trends' THEN res := res || jsonb_build_object('metrics', m); END IF;
    END IF;

    v_summary := format('%s support %s over %s days%s: %s created, %s resolved, SLA compliance %s, CSAT %s, escalation rate %s, deflection %s; %s open (%s breached).',
        CASE v_type WHEN 'sla' THEN 'SLA' WHEN 'knowledge_base' THEN 'Knowledge-base' ELSE initcap(v_type) END, CASE WHEN v_type = 'overview' THEN 'overview' ELSE 'analysis' END, v_days,
        concat_ws('', ' for ' || v_client, ' team ' || v_team, ' agent ' || v_agent, ' ' || v_prio),
        m ->> 'tickets_created', m ->> 'tickets_resolved', csmcp.sup_pct((m ->> 'sla_compliance')::numeric),
        coalesce(m ->> 'csat', 'n/a'), csmcp.sup_pct((m ->> 'escalation_rate')::numeric),
        coalesce(csmcp.sup_pct((m ->> 'deflection_rate')::numeric), 'n/a'), o ->> 'open', o ->> 'breached');
    RETURN jsonb_build_object('status', 'success', 'analysis_type', v_type, 'period_days', v_days,
            'period', jsonb_build_object('from', csmcp.sup_ts(v_from), 'to', csmcp.sup_ts(v_now)),
            'filters', jsonb_build_object('client_id', v_client, 'team_filter', v_team, 'agent_filter', v_agent, 'priority_filter', v_prio))
        || res
        || CASE WHEN v_recs THEN jsonb_build_object('recommendations', recs) ELSE '{}' END
        || jsonb_build_object('summary', v_summary);
END $$;

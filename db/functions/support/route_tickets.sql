-- route_tickets: assigns the real queue to the real agents (seed-original.md §3.7), persisted in
-- the same transaction.
--
-- Scope: agents = active support_agents (of team_filter when given); queue = tickets not resolved
-- or closed (of assigned_team = team_filter, priority_filter, category_filter when given).
-- load(agent) = its tickets not resolved or closed; capacity(agent) = least(agent.max_tickets,
-- max_tickets_per_agent); an agent is eligible while load < capacity.
-- Concurrency: the agent rows in scope are locked (FOR UPDATE, agent_id order) before any load is
-- counted, and queue tickets are taken FOR UPDATE SKIP LOCKED, so concurrent runs serialise on the
-- agents and can neither assign a ticket twice nor push an agent past capacity.

-- SLA breach risk = elapsed / target of the running clock (first response until answered, then
-- resolution); 0 when both clocks are stopped.
CREATE OR REPLACE FUNCTION csmcp.sup_breach_risk(t support_tickets, p_now timestamptz) RETURNS numeric
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN t.first_response_at IS NULL
                THEN csmcp.sup_elapsed(t.created_at, NULL, p_now) / t.sla_first_response_minutes
                WHEN t.resolved_at IS NULL
                THEN csmcp.sup_elapsed(t.created_at, NULL, p_now) / t.sla_resolution_minutes
                ELSE 0 END
$$;

CREATE OR REPLACE FUNCTION csmcp.sup_queue_summary(p_team text, p_prio text, p_cat text) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    WITH q AS (
        SELECT t.priority, t.category, t.assigned_agent, csmcp.sup_ticket_sla_state(t, now()) AS sla
        FROM support_tickets t
        WHERE t.status NOT IN ('resolved', 'closed')
          AND (p_team IS NULL OR t.assigned_team = p_team)
          AND (p_prio IS NULL OR t.priority = p_prio)
          AND (p_cat IS NULL OR t.category = p_cat)
    )
    SELECT jsonb_build_object(
        'total', (SELECT count(*) FROM q),
        'unassigned', (SELECT count(*) FROM q WHERE assigned_agent IS NULL),
        'sla_at_risk', (SELECT count(*) FROM q WHERE sla = 'at_risk'),
        'sla_breached', (SELECT count(*) FROM q WHERE sla = 'breached'),
        'by_priority', (SELECT coalesce(jsonb_object_agg(priority, n), '{}') FROM (SELECT priority, count(*) n FROM q GROUP BY 1) x),
        'by_category', (SELECT coalesce(jsonb_object_agg(category, n), '{}') FROM (SELECT category, count(*) n FROM q GROUP BY 1) x))
$$;

-- Open tickets in scope whose SLA is breached or at risk, most consumed first (at most 20).
CREATE OR REPLACE FUNCTION csmcp.sup_sla_alerts(p_team text, p_prio text, p_cat text) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT coalesce(jsonb_agg(x.j ORDER BY x.risk DESC, x.ticket_id), '[]')
    FROM (SELECT t.ticket_id, csmcp.sup_breach_risk(t, now()) AS risk,
                 jsonb_build_object('ticket_id', t.ticket_id, 'priority', t.priority, 'assigned_agent', t.assigned_agent,
                                    'sla_state', csmcp.sup_ticket_sla_state(t, now()),
                                    'sla_consumed', round(csmcp.sup_breach_risk(t, now()), 3)) AS j
          FROM support_tickets t
          WHERE t.status NOT IN ('resolved', 'closed')
            AND (p_team IS NULL OR t.assigned_team = p_team)
            AND (p_prio IS NULL OR t.priority = p_prio)
            AND (p_cat IS NULL OR t.category = p_cat)
            AND csmcp.sup_ticket_sla_state(t, now()) IN ('breached', 'at_risk')
          ORDER BY 2 DESC, 1 LIMIT 20) x
$$;

CREATE OR REPLACE FUNCTION csmcp.tool_route_tickets(args jsonb, principal text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v_strategy text := csmcp.arg_text(args, 'routing_strategy', 'auto', ARRAY['auto', 'manual', 'rebalance', 'escalation', 'workload']);
    v_team text := csmcp.sup_opt_text(args, 'team_filter', 100);
    v_prio text := csmcp.arg_text(args, 'priority_filter', NULL, ARRAY['P0', 'P1', 'P2', 'P3', 'P4']);
    v_cat text := csmcp.arg_text(args, 'category_filter', NULL,
        ARRAY['technical_issue', 'bug_report', 'feature_request', 'how_to_question', 'account_billing',
              'integration_support', 'training_request', 'data_issue', 'performance', 'other']);
    v_lb boolean := csmcp.arg_bool(args, 'load_balance', true);
    v_max integer := csmcp.arg_int(args, 'max_tickets_per_agent', 10, 1, 1000);
    v_ticket_arg text := csmcp.arg_text(args, 'ticket_id', NULL);
    v_agent_arg text := csmcp.sup_opt_text(args, 'agent_id', 100);
    v_now timestamptz := now();
    a_id text[] := '{}'; a_name text[] := '{}'; a_team text[] := '{}'; a_exp text[] := '{}';
    a_senior boolean[] := '{}'; a_load integer[] := '{}'; a_cap integer[] := '{}';
    n integer; i integer; best integer; best_score integer; s integer;
    r record;
    t support_tickets;
    results jsonb := '[]';
    unrouted jsonb := '[]';
    moves jsonb := '[]';
    options jsonb;
    extra jsonb := '{}';
    v_avg numeric; v_over integer[]; v_under integer[]; d integer; rcv integer;
    v_reason text; v_newprio text;
    v_util jsonb;
    v_summary text;
BEGIN
    IF v_strategy <> 'manual' AND (v_ticket_arg IS NOT NULL OR v_agent_arg IS NOT NULL) THEN
        PERFORM csmcp.invalid('ticket_id and agent_id apply to routing_strategy manual only');
    END IF;
    -- manual locks its ticket first (as handle_support_ticket update does before it locks the
    -- agent: the same order everywhere, so the two cannot deadlock); the other strategies never
    -- wait for a ticket (SKIP LOCKED).
    IF v_strategy = 'manual' THEN
        IF v_ticket_arg IS NULL THEN PERFORM csmcp.invalid('ticket_id is required for routing_strategy manual'); END IF;
        t := csmcp.sup_require_ticket(v_ticket_arg, true);
    END IF;
    -- Lock the agents in scope (agent_id order), then count their load.
    FOR r IN SELECT ag.agent_id, ag.name, ag.team, ag.is_senior, ag.max_tickets,
                    coalesce((SELECT string_agg(e.category, ',') FROM support_agent_expertise e WHERE e.agent_id = ag.agent_id), '') AS exp
             FROM support_agents ag
             WHERE ag.active AND (v_team IS NULL OR ag.team = v_team)
               AND (v_strategy <> 'manual' OR v_agent_arg IS NULL OR ag.agent_id = v_agent_arg)
             ORDER BY ag.agent_id FOR UPDATE OF ag LOOP
        a_id := a_id || r.agent_id; a_name := a_name || r.name; a_team := a_team || r.team;
        a_senior := a_senior || r.is_senior; a_exp := a_exp || (',' || r.exp || ',');
        a_cap := a_cap || least(r.max_tickets, v_max);
    END LOOP;
    n := cardinality(a_id);
    FOR i IN 1 .. n LOOP a_load := a_load || csmcp.sup_agent_load(a_id[i]); END LOOP;

    IF v_strategy IN ('auto', 'workload', 'escalation') THEN
        FOR t IN SELECT * FROM support_tickets q
                 WHERE q.status NOT IN ('resolved', 'closed')
                   AND (v_team IS NULL OR q.assigned_team = v_team)
                   AND (v_prio IS NULL OR q.priority = v_prio)
                   AND (v_cat IS NULL OR q.category = v_cat)
                   AND CASE WHEN v_strategy = 'escalation'
                            THEN q.escalated AND (q.assigned_agent IS NULL OR NOT EXISTS (
                                     SELECT 1 FROM support_agents sa WHERE sa.agent_id = q.assigned_agent AND sa.is_senior))
                            ELSE q.assigned_agent IS NULL END
                 ORDER BY csmcp.sup_weight(q.priority) DESC, csmcp.sup_breach_risk(q, v_now) DESC, q.created_at, q.ticket_id
                 FOR UPDATE SKIP LOCKED LOOP
            best := NULL; best_score := NULL;
            FOR i IN 1 .. n LOOP
                CONTINUE WHEN a_load[i] >= a_cap[i];
                IF v_strategy = 'auto' THEN
                    s := CASE WHEN position(',' || t.category || ',' IN a_exp[i]) > 0 THEN 10 ELSE 0 END
                         + CASE WHEN v_lb THEN (a_cap[i] - a_load[i]) * 2 ELSE 0 END;
                    IF best IS NULL OR s > best_score THEN best := i; best_score := s; END IF;
                ELSE
                    CONTINUE WHEN v_strategy = 'escalation' AND NOT a_senior[i];
                    IF best IS NULL OR a_load[i] < a_load[best] THEN best := i; END IF;
                END IF;
            END LOOP;
            IF best IS NULL THEN
                unrouted := unrouted || jsonb_build_object('ticket_id', t.ticket_id, 'priority', t.priority,
                    'reason', CASE WHEN v_strategy = 'escalation' THEN 'no senior agent under capacity' ELSE 'every agent in scope is at capacity' END);
                CONTINUE;
            END IF;
            v_newprio := t.priority;
            IF v_strategy = 'auto' THEN
                v_reason := format('score %s: %s, %s of %s slots free', best_score,
                    CASE WHEN position(',' || t.category || ',' IN a_exp[best]) > 0 THEN 'expertise in ' || t.category ELSE 'no expertise match' END,
                    a_cap[best] - a_load[best], a_cap[best]);
            ELSIF v_strategy = 'workload' THEN
                v_reason := format('least loaded agent (%s of %s)', a_load[best], a_cap[best]);
            ELSE
                v_reason := format('escalated ticket to the least loaded senior agent (%s of %s)', a_load[best], a_cap[best]);
                IF t.priority IN ('P2', 'P3', 'P4') THEN v_newprio := 'P1'; END IF;
            END IF;
            UPDATE support_tickets SET assigned_agent = a_id[best], updated_at = v_now, priority = v_newprio,
                   sla_first_response_minutes = csmcp.sup_sla_first(v_newprio), sla_resolution_minutes = csmcp.sup_sla_resolution(v_newprio)
            WHERE ticket_id = t.ticket_id;
            PERFORM csmcp.sup_system_comment(t.ticket_id, principal, format('Routed (%s) %s -> %s: %s%s', v_strategy,
                coalesce(t.assigned_agent, '(nobody)'), a_id[best], v_reason,
                CASE WHEN v_newprio <> t.priority THEN format('; priority %s -> P1, SLA re-targeted: first response %s -> %s min, resolution %s -> %s min',
                    t.priority, t.sla_first_response_minutes, csmcp.sup_sla_first('P1'), t.sla_resolution_minutes, csmcp.sup_sla_resolution('P1')) ELSE '' END));
            PERFORM csmcp.log_activity(t.client_id, principal, 'route_ticket', 'support_ticket', t.ticket_id,
                jsonb_build_object('assigned_agent', t.assigned_agent, 'priority', t.priority),
                jsonb_build_object('assigned_agent', a_id[best], 'priority', v_newprio, 'strategy', v_strategy));
            a_load[best] := a_load[best] + 1;
            results := results || jsonb_build_object('ticket_id', t.ticket_id, 'assigned_to', a_id[best], 'agent_name', a_name[best],
                'team', a_team[best], 'ticket_team', t.assigned_team, 'previous_agent', t.assigned_agent, 'reason', v_reason,
                'score', CASE WHEN v_strategy = 'auto' THEN best_score END,
                'priority', v_newprio, 'sla_target_minutes', CASE WHEN t.first_response_at IS NULL
                    THEN csmcp.sup_sla_first(v_newprio) ELSE csmcp.sup_sla_resolution(v_newprio) END,
                'sla_breach_risk', round(csmcp.sup_breach_risk(t, v_now), 3));
        END LOOP;
    ELSIF v_strategy = 'manual' THEN
        IF t.status IN ('resolved', 'closed') THEN
            RAISE EXCEPTION 'cannot route ticket %: it is %', t.ticket_id, t.status USING ERRCODE = 'P0001';
        END IF;
        IF v_agent_arg IS NOT NULL AND n = 0 THEN
            IF NOT EXISTS (SELECT 1 FROM support_agents WHERE agent_id = v_agent_arg) THEN
                RAISE EXCEPTION 'support agent % not found', v_agent_arg USING ERRCODE = 'P0002';
            END IF;
            RAISE EXCEPTION 'support agent % is inactive or not in team %', v_agent_arg, coalesce(v_team, '(any)') USING ERRCODE = 'P0001';
        END IF;
        SELECT coalesce(jsonb_agg(jsonb_build_object('agent_id', a_id[k], 'name', a_name[k], 'team', a_team[k],
                   'expertise_match', position(',' || t.category || ',' IN a_exp[k]) > 0,
                   'current_tickets', a_load[k], 'capacity', a_cap[k])
                   ORDER BY position(',' || t.category || ',' IN a_exp[k]) = 0, a_load[k], a_id[k]), '[]')
        INTO options FROM generate_series(1, n) g(k) WHERE a_load[k] < a_cap[k];
        extra := jsonb_build_object('ticket', jsonb_build_object('ticket_id', t.ticket_id, 'priority', t.priority,
                     'category', t.category, 'assigned_agent', t.assigned_agent),
                 'routing_options', options, 'recommendation', options -> 0);
        IF v_agent_arg IS NOT NULL THEN
            IF t.assigned_agent = v_agent_arg THEN
                RAISE EXCEPTION 'ticket % is already assigned to %', t.ticket_id, v_agent_arg USING ERRCODE = 'P0001';
            END IF;
            IF a_load[1] >= a_cap[1] THEN
                RAISE EXCEPTION 'support agent % is at capacity (% open tickets of %)', v_agent_arg, a_load[1], a_cap[1] USING ERRCODE = 'P0001';
            END IF;
            UPDATE support_tickets SET assigned_agent = v_agent_arg, updated_at = v_now WHERE ticket_id = t.ticket_id;
            v_reason := format('manual assignment (%s of %s)', a_load[1], a_cap[1]);
            PERFORM csmcp.sup_system_comment(t.ticket_id, principal, format('Routed (manual) %s -> %s: %s',
                coalesce(t.assigned_agent, '(nobody)'), v_agent_arg, v_reason));
            PERFORM csmcp.log_activity(t.client_id, principal, 'route_ticket', 'support_ticket', t.ticket_id,
                jsonb_build_object('assigned_agent', t.assigned_agent),
                jsonb_build_object('assigned_agent', v_agent_arg, 'strategy', 'manual'));
            a_load[1] := a_load[1] + 1;
            results := results || jsonb_build_object('ticket_id', t.ticket_id, 'assigned_to', v_agent_arg, 'agent_name', a_name[1],
                'team', a_team[1], 'ticket_team', t.assigned_team, 'previous_agent', t.assigned_agent, 'reason', v_reason,
                'score', NULL, 'priority', t.priority,
                'sla_target_minutes', CASE WHEN t.first_response_at IS NULL THEN t.sla_first_response_minutes ELSE t.sla_resolution_minutes END,
                'sla_breach_risk', round(csmcp.sup_breach_risk(t, v_now), 3));
        END IF;
    ELSE -- rebalance
        IF n > 0 THEN
            SELECT avg(x) INTO v_avg FROM unnest(a_load) x;
            SELECT coalesce(array_agg(k ORDER BY a_load[k] DESC, a_id[k]), '{}') INTO v_over
            FROM generate_series(1, n) g(k) WHERE a_load[k] > v_avg + 2;
            SELECT coalesce(array_agg(k ORDER BY a_load[k], a_id[k]), '{}') INTO v_under
            FROM generate_series(1, n) g(k) WHERE a_load[k] < v_avg - 1 AND a_load[k] < a_cap[k];
            FOREACH d IN ARRAY v_over LOOP
                EXIT WHEN cardinality(v_under) = 0;
                FOR t IN SELECT * FROM support_tickets q
                         WHERE q.assigned_agent = a_id[d] AND q.status NOT IN ('resolved', 'closed')
                           AND (v_prio IS NULL OR q.priority = v_prio) AND (v_cat IS NULL OR q.category = v_cat)
                         ORDER BY q.priority DESC, q.created_at DESC, q.ticket_id DESC
                         FOR UPDATE SKIP LOCKED LOOP
                    EXIT WHEN a_load[d] <= v_avg + 2 OR cardinality(v_under) = 0;
                    rcv := v_under[1];
                    UPDATE support_tickets SET assigned_agent = a_id[rcv], updated_at = v_now WHERE ticket_id = t.ticket_id;
                    v_reason := format('rebalance: %s has %s open tickets (average %s + 2 exceeded); %s has %s (below average - 1)',
                        a_id[d], a_load[d], round(v_avg, 2), a_id[rcv], a_load[rcv]);
                    PERFORM csmcp.sup_system_comment(t.ticket_id, principal, format('Routed (rebalance) %s -> %s: %s', a_id[d], a_id[rcv], v_reason));
                    PERFORM csmcp.log_activity(t.client_id, principal, 'route_ticket', 'support_ticket', t.ticket_id,
                        jsonb_build_object('assigned_agent', a_id[d]),
                        jsonb_build_object('assigned_agent', a_id[rcv], 'strategy', 'rebalance'));
                    moves := moves || jsonb_build_object('ticket_id', t.ticket_id, 'priority', t.priority, 'from_agent', a_id[d],
                        'to_agent', a_id[rcv], 'reason', v_reason);
                    a_load[d] := a_load[d] - 1;
                    a_load[rcv] := a_load[rcv] + 1;
                    IF a_load[rcv] >= v_avg - 1 OR a_load[rcv] >= a_cap[rcv] THEN v_under := v_under[2:]; END IF;
                END LOOP;
            END LOOP;
        END IF;
        extra := jsonb_build_object('rebalance_moves', moves, 'average_load', round(coalesce(v_avg, 0), 2),
            'overloaded_threshold', round(coalesce(v_avg, 0) + 2, 2), 'underloaded_threshold', round(coalesce(v_avg, 0) - 1, 2));
    END IF;

    SELECT coalesce(jsonb_agg(jsonb_build_object('agent_id', a_id[k], 'name', a_name[k], 'team', a_team[k], 'is_senior', a_senior[k],
               'current_tickets', a_load[k], 'capacity', a_cap[k],
               'utilization', round(a_load[k]::numeric / a_cap[k], 3)) ORDER BY a_id[k]), '[]')
    INTO v_util FROM generate_series(1, n) g(k);
    v_summary := CASE v_strategy
        WHEN 'manual' THEN CASE WHEN jsonb_array_length(results) > 0 THEN format('Assigned %s to %s.', v_ticket_arg, v_agent_arg)
                                ELSE format('%s agent(s) can take %s; recommended: %s.', jsonb_array_length(options), v_ticket_arg,
                                            coalesce(options #>> '{0,agent_id}', 'none (every agent is at capacity)')) END
        WHEN 'rebalance' THEN format('Rebalance over %s agent(s), average load %s: %s ticket(s) moved.', n, round(coalesce(v_avg, 0), 2),
                                     jsonb_array_length(moves))
        ELSE format('%s routing over %s agent(s): %s ticket(s) assigned, %s left unassigned (capacity).', initcap(v_strategy), n,
                    jsonb_array_length(results), jsonb_array_length(unrouted)) END;
    RETURN jsonb_build_object('status', 'success', 'routing_strategy', v_strategy,
        'filters', jsonb_build_object('team_filter', v_team, 'priority_filter', v_prio, 'category_filter', v_cat,
                                      'load_balance', v_lb, 'max_tickets_per_agent', v_max),
        'routing_results', results, 'unrouted', unrouted,
        'queue_summary', csmcp.sup_queue_summary(v_team, v_prio, v_cat),
        'agent_utilization', v_util,
        'sla_alerts', csmcp.sup_sla_alerts(v_team, v_prio, v_cat),
        'summary', v_summary) || extra;
END $$;

-- handle_support_ticket: the ticket lifecycle (seed-original.md §1.7 / §3.7), over stored rows.
--
-- State machine (status):
--   open | reopened | in_progress | waiting_on_customer | waiting_on_engineering   (working states)
--       --update status-->  in_progress | waiting_on_customer | waiting_on_engineering
--       --resolve-->        resolved        (resolution_notes required)
--       --escalate-->       same status, priority one step up (P4->P3->P2->P1; P1, P0 unchanged),
--                           team "Escalation Team", escalated, escalated_at, escalation_reason
--   resolved --close--> closed;  resolved | closed --reopen--> reopened (resolved_at, closed_at cleared)
--   rate: only resolved or closed.  update / escalate / add_comment: refused on closed;
--   update / escalate: refused on resolved (reopen first).
-- first_response_at is set by the first public agent comment or the first status change out of
-- open (update status, resolve), whichever comes first. Every action writes a system comment;
-- every write is in activity_log with old and new values; create/update/add_comment queue a
-- Zendesk delivery when the integration is enabled (csmcp.outbox_enqueue) and report its state.

CREATE OR REPLACE FUNCTION csmcp.sup_ticket_create(args jsonb, principal text) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    acc accounts := csmcp.require_account(csmcp.arg_text(args, 'client_id', NULL));
    v_subject text := csmcp.sup_req_text(args, 'subject', 500);
    v_description text := csmcp.sup_req_text(args, 'description', 20000);
    v_email text := csmcp.sup_req_text(args, 'requester_email', 255);
    v_name text := csmcp.sup_req_text(args, 'requester_name', 200);
    v_priority text := csmcp.arg_text(args, 'priority', 'P3', ARRAY['P0', 'P1', 'P2', 'P3', 'P4']);
    v_category text := csmcp.arg_text(args, 'category', 'technical_issue',
        ARRAY['technical_issue', 'bug_report', 'feature_request', 'how_to_question', 'account_billing',
              'integration_support', 'training_request', 'data_issue', 'performance', 'other']);
    v_agent_id text := csmcp.sup_opt_text(args, 'assigned_agent', 100);
    v_status text := csmcp.arg_text(args, 'status', NULL);
    v_tags text[] := csmcp.sup_tags(args, 'tags');
    ag support_agents;
    v_load integer;
    t support_tickets;
    v_id text;
    v_json jsonb;
    v_zd jsonb;
BEGIN
    IF v_email !~ '^[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\.[a-zA-Z]{2,}$' THEN
        PERFORM csmcp.invalid('requester_email is not a valid e-mail address');
    END IF;
    IF v_status IS NOT NULL AND v_status <> 'open' THEN
        PERFORM csmcp.invalid('status: a new ticket starts open; change it afterwards with action update');
    END IF;
    IF v_agent_id IS NOT NULL THEN
        ag := csmcp.sup_lock_agent(v_agent_id);
        v_load := csmcp.sup_agent_load(ag.agent_id);
        IF v_load >= ag.max_tickets THEN
            RAISE EXCEPTION 'support agent % is at capacity (% open tickets of %)', ag.agent_id, v_load, ag.max_tickets
                USING ERRCODE = 'P0001';
        END IF;
    END IF;
    v_id := 'TKT-' || nextval('support_ticket_seq');
    INSERT INTO support_tickets (ticket_id, client_id, subject, description, priority, category, status,
                                 requester_email, requester_name, assigned_agent, assigned_team,
                                 sla_first_response_minutes, sla_resolution_minutes)
    VALUES (v_id, acc.client_id, v_subject, v_description, v_priority, v_category, 'open', v_email, v_name,
            ag.agent_id, csmcp.sup_team(v_priority, v_category), csmcp.sup_sla_first(v_priority),
            csmcp.sup_sla_resolution(v_priority))
    RETURNING * INTO t;
    INSERT INTO support_ticket_tags (ticket_id, tag) SELECT v_id, g FROM unnest(coalesce(v_tags, '{}')) g;
    PERFORM csmcp.sup_system_comment(v_id, principal, format(
        'Ticket created: priority %s, category %s, team %s%s; SLA first response %s min, resolution %s min',
        t.priority, t.category, t.assigned_team, coalesce(', assigned to ' || t.assigned_agent, ''),
        t.sla_first_response_minutes, t.sla_resolution_minutes));
    v_json := csmcp.sup_ticket_json(t);
    PERFORM csmcp.log_activity(t.client_id, principal, 'create_ticket', 'support_ticket', v_id, NULL, v_json);
    v_zd := csmcp.sup_zendesk('create_ticket', t, jsonb_build_object('comment', jsonb_build_object('body', t.description, 'public', true)),
                              'zendesk:create:' || v_id);
    RETURN jsonb_build_object(
        'status', 'success', 'action', 'create', 'ticket_id', v_id, 'ticket', v_json,
        'sla_targets', jsonb_build_object('priority', t.priority,
            'first_response_minutes', t.sla_first_response_minutes, 'resolution_minutes', t.sla_resolution_minutes),
        'routing', jsonb_build_object('assigned_team', t.assigned_team, 'assigned_agent', t.assigned_agent,
            'expected_first_response', csmcp.sup_ts(t.created_at + make_interval(mins => t.sla_first_response_minutes)),
            'expected_resolution', csmcp.sup_ts(t.created_at + make_interval(mins => t.sla_resolution_minutes))),
        'next_steps', CASE WHEN t.assigned_agent IS NULL
                           THEN jsonb_build_array('Assign an agent: route_tickets (auto) or handle_support_ticket update assigned_agent',
                                                  'Answer the customer before ' || csmcp.sup_ts(t.created_at + make_interval(mins => t.sla_first_response_minutes)))
                           ELSE jsonb_build_array('Answer the customer before ' || csmcp.sup_ts(t.created_at + make_interval(mins => t.sla_first_response_minutes))) END,
        'zendesk', v_zd,
        'summary', format('Created %s (%s, %s) for %s; team %s%s; first response due %s, resolution due %s; Zendesk: %s.',
            v_id, t.priority, t.category, t.client_id, t.assigned_team, coalesce(', agent ' || t.assigned_agent, ', unassigned'),
            csmcp.sup_ts(t.created_at + make_interval(mins => t.sla_first_response_minutes)),
            csmcp.sup_ts(t.created_at + make_interval(mins => t.sla_resolution_minutes)), v_zd ->> 'state'));
END $$;

CREATE OR REPLACE FUNCTION csmcp.sup_ticket_get(args jsonb) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    t support_tickets := csmcp.sup_require_ticket(csmcp.arg_text(args, 'ticket_id', NULL), false);
    v_comments jsonb;
    v_n integer;
BEGIN
    SELECT count(*), coalesce(jsonb_agg(jsonb_build_object('comment_id', 'CMT-' || c.comment_id, 'author_type', c.author_type,
               'author_name', c.author_name, 'author_email', c.author_email, 'is_public', c.is_public,
               'content', c.content, 'created_at', csmcp.sup_ts(c.created_at)) ORDER BY c.created_at, c.comment_id), '[]')
    INTO v_n, v_comments
    FROM (SELECT * FROM ticket_comments WHERE ticket_id = t.ticket_id ORDER BY created_at DESC, comment_id DESC LIMIT 200) c;
    RETURN jsonb_build_object('status', 'success', 'action', 'get', 'ticket_id', t.ticket_id,
        'ticket', csmcp.sup_ticket_json(t), 'comments', v_comments,
        'summary', format('%s (%s, %s) is %s; SLA %s; %s comment(s).', t.ticket_id, t.priority, t.category, t.status,
                          csmcp.sup_ticket_sla_state(t, now()), v_n));
END $$;

CREATE OR REPLACE FUNCTION csmcp.sup_ticket_list(args jsonb) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_client text := csmcp.arg_text(args, 'client_id', NULL);
    v_status text := csmcp.arg_text(args, 'status', NULL);
    v_priority text := csmcp.arg_text(args, 'priority', NULL);
    v_team text := csmcp.arg_text(args, 'team', NULL);
    v_agent text := csmcp.arg_text(args, 'assigned_agent', NULL);
    v_sla text := csmcp.arg_text(args, 'sla_state', NULL, ARRAY['on_track', 'at_risk', 'breached', 'met']);
    v_limit integer := csmcp.arg_int(args, 'limit', 20, 1, 100);
    v_offset integer := csmcp.arg_int(args, 'offset', 0, 0, 1000000);
    v_now timestamptz := now();
    v_total integer;
    v_rows jsonb;
BEGIN
    IF v_client IS NOT NULL THEN PERFORM csmcp.require_account(v_client); END IF;
    -- EXECUTE with parameters: planned with this call's values, so an absent filter folds away
    -- and a present one can use its index (a cached generic plan could not).
    EXECUTE $q$
        WITH m AS (
            SELECT t FROM support_tickets t
            WHERE ($1::text IS NULL OR t.client_id = $1) AND ($2::text IS NULL OR t.status = $2)
              AND ($3::text IS NULL OR t.priority = $3) AND ($4::text IS NULL OR t.assigned_team = $4)
              AND ($5::text IS NULL OR t.assigned_agent = $5)
              -- on_track / at_risk need a running clock, met two stopped ones
              AND ($6::text IS NULL OR ($6 NOT IN ('on_track', 'at_risk') OR t.status NOT IN ('resolved', 'closed'))
                                   AND ($6 <> 'met' OR t.resolved_at IS NOT NULL)
                                   AND csmcp.sup_ticket_sla_state(t, $7) = $6)
        ), p AS (
            SELECT t FROM m ORDER BY (t).created_at DESC, (t).ticket_id DESC LIMIT $8 OFFSET $9
        )
        SELECT (SELECT count(*) FROM m)::integer,
               coalesce((SELECT jsonb_agg(csmcp.sup_ticket_json(t) ORDER BY (t).created_at DESC, (t).ticket_id DESC) FROM p), '[]')
    $q$ INTO v_total, v_rows USING v_client, v_status, v_priority, v_team, v_agent, v_sla, v_now, v_limit, v_offset;
    RETURN jsonb_build_object('status', 'success', 'action', 'list', 'tickets', v_rows,
        'pagination', jsonb_build_object('total', v_total, 'limit', v_limit, 'offset', v_offset,
                                         'has_more', v_offset + jsonb_array_length(v_rows) < v_total),
        'summary', format('%s ticket(s) match; showing %s from offset %s (newest first).', v_total, jsonb_array_length(v_rows), v_offset));
END $$;

-- The refusal of a transition: names the current state and what is allowed from it.
CREATE OR REPLACE FUNCTION csmcp.sup_refuse(t support_tickets, p_action text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE v_allowed text := CASE t.status
        WHEN 'closed' THEN 'reopen, rate, get'
        WHEN 'resolved' THEN 'close, reopen, rate, add_comment, get'
        ELSE 'update, resolve, escalate, add_comment, get' END;
BEGIN
    RAISE EXCEPTION 'cannot % ticket %: it is %; allowed from %: %', p_action, t.ticket_id, t.status, t.status, v_allowed
        USING ERRCODE = 'P0001';
END $$;

CREATE OR REPLACE FUNCTION csmcp.sup_ticket_change(v_action text, args jsonb, principal text) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    t support_tickets := csmcp.sup_require_ticket(csmcp.arg_text(args, 'ticket_id', NULL), true);
    old support_tickets := t;
    old_json jsonb := csmcp.sup_ticket_json(t);
    v_now timestamptz := now();
    working constant text[] := ARRAY['open', 'reopened', 'in_progress', 'waiting_on_customer', 'waiting_on_engineering'];
    v_priority text := csmcp.arg_text(args, 'priority', NULL, ARRAY['P0', 'P1', 'P2', 'P3', 'P4']);
    v_category text := csmcp.arg_text(args, 'category', NULL,
        ARRAY['technical_issue', 'bug_report', 'feature_request', 'how_to_question', 'account_billing',
              'integration_support', 'training_request', 'data_issue', 'performance', 'other']);
    v_status text := csmcp.arg_text(args, 'status', NULL,
        ARRAY['open', 'in_progress', 'waiting_on_customer', 'waiting_on_engineering', 'resolved', 'closed', 'reopened']);
    v_agent_id text := csmcp.sup_opt_text(args, 'assigned_agent', 100);
    v_tags text[] := csmcp.sup_tags(args, 'tags');
    v_old_tags text[];
    ag support_agents;
    v_load integer;
    notes text[] := '{}';
    extra jsonb := '{}';
    v_zd jsonb;
    v_internal text;
    v_public text;
    v_author_type text;
    v_author_name text;
    v_author_email text;
    v_cid bigint;
    v_cids bigint[] := '{}';
    v_zd_ids jsonb := '[]';
    v_comments jsonb := '[]';
    v_rating integer;
    v_new_json jsonb;
    v_act_id bigint;
BEGIN
    SELECT coalesce(array_agg(tag ORDER BY tag), '{}') INTO v_old_tags FROM support_ticket_tags WHERE ticket_id = t.ticket_id;
    CASE v_action
    WHEN 'update' THEN
        IF t.status = 'closed' OR t.status = 'resolved' THEN PERFORM csmcp.sup_refuse(t, 'update'); END IF;
        IF v_priority IS NULL AND v_category IS NULL AND v_status IS NULL AND v_agent_id IS NULL AND v_tags IS NULL THEN
            PERFORM csmcp.invalid('update: nothing to change; give priority, category, status, assigned_agent or tags');
        END IF;
        IF v_status IS NOT NULL AND v_status <> t.status THEN
            IF v_status IN ('resolved', 'closed', 'reopened') THEN
                RAISE EXCEPTION 'cannot set status % with update: use action %', v_status,
                    CASE v_status WHEN 'resolved' THEN 'resolve' WHEN 'closed' THEN 'close' ELSE 'reopen' END
                    USING ERRCODE = 'P0001';
            ELSIF v_status = 'open' THEN
                RAISE EXCEPTION 'cannot move ticket % back to open (it is %); allowed: in_progress, waiting_on_customer, waiting_on_engineering',
                    t.ticket_id, t.status USING ERRCODE = 'P0001';
            END IF;
            notes := notes || format('status %s -> %s', t.status, v_status);
            t.status := v_status;
            IF old.status = 'open' AND t.first_response_at IS NULL THEN
                t.first_response_at := v_now;
                notes := notes || 'first response recorded (status change out of open)'::text;
            END IF;
        END IF;
        IF v_category IS NOT NULL AND v_category <> t.category THEN
            notes := notes || format('category %s -> %s', t.category, v_category);
            t.category := v_category;
        END IF;
        IF v_priority IS NOT NULL AND v_priority <> t.priority THEN
            notes := notes || format('priority %s -> %s; SLA re-targeted: first response %s -> %s min, resolution %s -> %s min',
                t.priority, v_priority, t.sla_first_response_minutes, csmcp.sup_sla_first(v_priority),
                t.sla_resolution_minutes, csmcp.sup_sla_resolution(v_priority));
            t.priority := v_priority;
            t.sla_first_response_minutes := csmcp.sup_sla_first(v_priority);
            t.sla_resolution_minutes := csmcp.sup_sla_resolution(v_priority);
        END IF;
        IF (v_priority IS NOT NULL OR v_category IS NOT NULL) AND NOT t.escalated
           AND csmcp.sup_team(t.priority, t.category) IS DISTINCT FROM t.assigned_team THEN
            notes := notes || format('team %s -> %s', coalesce(t.assigned_team, '(none)'), csmcp.sup_team(t.priority, t.category));
            t.assigned_team := csmcp.sup_team(t.priority, t.category);
        END IF;
        IF v_agent_id IS NOT NULL AND v_agent_id IS DISTINCT FROM t.assigned_agent THEN
            ag := csmcp.sup_lock_agent(v_agent_id);
            v_load := csmcp.sup_agent_load(ag.agent_id);
            IF v_load >= ag.max_tickets THEN
                RAISE EXCEPTION 'support agent % is at capacity (% open tickets of %)', ag.agent_id, v_load, ag.max_tickets
                    USING ERRCODE = 'P0001';
            END IF;
            notes := notes || format('assigned %s -> %s', coalesce(t.assigned_agent, '(nobody)'), ag.agent_id);
            t.assigned_agent := ag.agent_id;
        END IF;
        IF v_tags IS NOT NULL AND v_tags IS DISTINCT FROM v_old_tags THEN
            SELECT array_agg(x ORDER BY x) INTO v_tags FROM unnest(v_tags) x;
            DELETE FROM support_ticket_tags WHERE ticket_id = t.ticket_id;
            INSERT INTO support_ticket_tags (ticket_id, tag) SELECT t.ticket_id, g FROM unnest(v_tags) g;
            notes := notes || format('tags [%s] -> [%s]', array_to_string(v_old_tags, ', '), array_to_string(coalesce(v_tags, '{}'), ', '));
        END IF;
        IF cardinality(notes) = 0 THEN
            PERFORM csmcp.invalid('update: nothing changes; ticket ' || t.ticket_id || ' already has these values');
        END IF;
    WHEN 'resolve' THEN
        IF NOT t.status = ANY (working) THEN PERFORM csmcp.sup_refuse(t, 'resolve'); END IF;
        t.resolution_notes := csmcp.sup_req_text(args, 'resolution_notes', 20000, 'to resolve a ticket');
        notes := notes || format('status %s -> resolved', t.status);
        t.status := 'resolved';
        t.resolved_at := v_now;
        IF t.first_response_at IS NULL THEN
            t.first_response_at := v_now;
            notes := notes || 'first response recorded (resolved from open)'::text;
        END IF;
        extra := jsonb_build_object('resolution', jsonb_build_object('resolved_at', csmcp.sup_ts(v_now),
            'resolution_notes', t.resolution_notes,
            'time_to_resolution_minutes', round(csmcp.sup_elapsed(t.created_at, v_now, v_now), 1),
            'resolution_sla', csmcp.sup_sla_state(t.created_at, v_now, t.sla_resolution_minutes, v_now)));
    WHEN 'close' THEN
        IF t.status <> 'resolved' THEN
            RAISE EXCEPTION 'cannot close ticket %: it is %; only a resolved ticket can be closed (resolve it first)',
                t.ticket_id, t.status USING ERRCODE = 'P0001';
        END IF;
        notes := notes || 'status resolved -> closed'::text;
        t.status := 'closed';
        t.closed_at := v_now;
        extra := jsonb_build_object('closure', jsonb_build_object('closed_at', csmcp.sup_ts(v_now)));
    WHEN 'reopen' THEN
        IF t.status NOT IN ('resolved', 'closed') THEN
            RAISE EXCEPTION 'cannot reopen ticket %: it is %; only a resolved or closed ticket can be reopened',
                t.ticket_id, t.status USING ERRCODE = 'P0001';
        END IF;
        notes := notes || format('status %s -> reopened; resolution clock running again', t.status);
        t.status := 'reopened';
        t.resolved_at := NULL;
        t.closed_at := NULL;
    WHEN 'escalate' THEN
        IF NOT t.status = ANY (working) THEN PERFORM csmcp.sup_refuse(t, 'escalate'); END IF;
        t.escalation_reason := csmcp.sup_req_text(args, 'escalation_reason', 2000, 'to escalate a ticket');
        t.priority := CASE old.priority WHEN 'P4' THEN 'P3' WHEN 'P3' THEN 'P2' WHEN 'P2' THEN 'P1' ELSE old.priority END;
        t.escalated := true;
        t.escalated_at := v_now;
        t.assigned_team := 'Escalation Team';
        notes := notes || format('escalated: %s', t.escalation_reason);
        IF t.priority <> old.priority THEN
            t.sla_first_response_minutes := csmcp.sup_sla_first(t.priority);
            t.sla_resolution_minutes := csmcp.sup_sla_resolution(t.priority);
            notes := notes || format('priority %s -> %s; SLA re-targeted: first response %s -> %s min, resolution %s -> %s min',
                old.priority, t.priority, old.sla_first_response_minutes, t.sla_first_response_minutes,
                old.sla_resolution_minutes, t.sla_resolution_minutes);
        ELSE
            notes := notes || format('priority %s unchanged (already at the top of the escalation chain)', t.priority);
        END IF;
        IF old.assigned_team IS DISTINCT FROM t.assigned_team THEN
            notes := notes || format('team %s -> Escalation Team', coalesce(old.assigned_team, '(none)'));
        END IF;
        extra := jsonb_build_object('escalation', jsonb_build_object('from_priority', old.priority, 'to_priority', t.priority,
            'team', t.assigned_team, 'reason', t.escalation_reason, 'escalated_at', csmcp.sup_ts(v_now)));
    WHEN 'add_comment' THEN
        IF t.status = 'closed' THEN PERFORM csmcp.sup_refuse(t, 'add_comment'); END IF;
        v_internal := csmcp.sup_opt_text(args, 'internal_notes', 20000);
        v_public := csmcp.sup_opt_text(args, 'customer_visible_notes', 20000);
        IF v_internal IS NULL AND v_public IS NULL THEN
            PERFORM csmcp.invalid('add_comment needs internal_notes or customer_visible_notes');
        END IF;
        v_author_type := csmcp.arg_text(args, 'author_type', 'agent', ARRAY['agent', 'customer']);
        v_author_name := csmcp.sup_opt_text(args, 'author_name', 200);
        v_author_email := csmcp.sup_opt_text(args, 'author_email', 255);
        IF v_author_email IS NOT NULL AND v_author_email !~ '^[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\.[a-zA-Z]{2,}$' THEN
            PERFORM csmcp.invalid('author_email is not a valid e-mail address');
        END IF;
        IF v_author_type = 'customer' THEN
            IF v_internal IS NOT NULL THEN
                PERFORM csmcp.invalid('internal_notes: a customer comment is always public; use customer_visible_notes');
            END IF;
            v_author_name := coalesce(v_author_name, t.requester_name);
            v_author_email := coalesce(v_author_email, t.requester_email);
        ELSE
            IF (v_author_email IS NULL OR v_author_name IS NULL) AND t.assigned_agent IS NOT NULL THEN
                v_author_name := coalesce(v_author_name, (SELECT a.name FROM support_agents a WHERE a.agent_id = t.assigned_agent));
                v_author_email := coalesce(v_author_email, (SELECT a.email FROM support_agents a WHERE a.agent_id = t.assigned_agent));
            END IF;
            IF v_author_email IS NULL THEN
                PERFORM csmcp.invalid('author_email is required: ticket ' || t.ticket_id || ' has no assigned agent to write as');
            END IF;
            v_author_name := coalesce(v_author_name, v_author_email);
        END IF;
        IF v_internal IS NOT NULL THEN
            INSERT INTO ticket_comments (ticket_id, author_email, author_name, author_type, content, is_public)
            VALUES (t.ticket_id, v_author_email, v_author_name, v_author_type, v_internal, false) RETURNING comment_id INTO v_cid;
            v_cids := v_cids || v_cid;
            v_comments := v_comments || jsonb_build_object('comment_id', 'CMT-' || v_cid, 'is_public', false);
        END IF;
        IF v_public IS NOT NULL THEN
            INSERT INTO ticket_comments (ticket_id, author_email, author_name, author_type, content, is_public)
            VALUES (t.ticket_id, v_author_email, v_author_name, v_author_type, v_public, true) RETURNING comment_id INTO v_cid;
            v_cids := v_cids || v_cid;
            v_comments := v_comments || jsonb_build_object('comment_id', 'CMT-' || v_cid, 'is_public', true);
        END IF;
        notes := notes || format('%s comment by %s (%s)', CASE WHEN v_public IS NOT NULL AND v_internal IS NOT NULL THEN 'public and internal'
                                                             WHEN v_public IS NOT NULL THEN 'public' ELSE 'internal' END,
                                 v_author_name, v_author_type);
        IF v_author_type = 'agent' AND v_public IS NOT NULL AND t.first_response_at IS NULL THEN
            t.first_response_at := v_now;
            notes := notes || 'first response recorded (first public agent comment)'::text;
        END IF;
        extra := jsonb_build_object('comment', jsonb_build_object('author_type', v_author_type, 'author_name', v_author_name,
            'author_email', v_author_email, 'comments', v_comments, 'created_at', csmcp.sup_ts(v_now),
            'first_response', t.first_response_at IS DISTINCT FROM old.first_response_at));
    WHEN 'rate' THEN
        IF t.status NOT IN ('resolved', 'closed') THEN
            RAISE EXCEPTION 'cannot rate ticket %: it is %; a ticket can be rated once it is resolved or closed',
                t.ticket_id, t.status USING ERRCODE = 'P0001';
        END IF;
        v_rating := csmcp.arg_int(args, 'satisfaction_rating', NULL, 1, 5);
        IF v_rating IS NULL THEN PERFORM csmcp.invalid('satisfaction_rating (1-5) is required to rate a ticket'); END IF;
        t.satisfaction_rating := v_rating;
        t.satisfaction_comment := csmcp.sup_opt_text(args, 'satisfaction_comment', 5000);
        t.rated_at := v_now;
        notes := notes || format('rated %s/5%s', v_rating, coalesce(' (was ' || old.satisfaction_rating || '/5)', ''));
        extra := jsonb_build_object('satisfaction', jsonb_build_object('rating', v_rating, 'comment', t.satisfaction_comment,
            'previous_rating', old.satisfaction_rating, 'rated_at', csmcp.sup_ts(v_now)));
    ELSE
        PERFORM csmcp.invalid('unknown action ' || v_action);
    END CASE;

    t.updated_at := v_now;
    UPDATE support_tickets SET status = t.status, priority = t.priority, category = t.category,
        assigned_agent = t.assigned_agent, assigned_team = t.assigned_team,
        sla_first_response_minutes = t.sla_first_response_minutes, sla_resolution_minutes = t.sla_resolution_minutes,
        updated_at = t.updated_at, first_response_at = t.first_response_at, resolved_at = t.resolved_at,
        closed_at = t.closed_at, escalated = t.escalated, escalated_at = t.escalated_at,
        escalation_reason = t.escalation_reason, resolution_notes = t.resolution_notes,
        satisfaction_rating = t.satisfaction_rating, satisfaction_comment = t.satisfaction_comment, rated_at = t.rated_at
    WHERE ticket_id = t.ticket_id;
    PERFORM csmcp.sup_system_comment(t.ticket_id, principal, initcap(replace(v_action, '_', ' ')) || ': ' ||
                                     array_to_string(notes, '; '));
    v_new_json := csmcp.sup_ticket_json(t);
    v_act_id := csmcp.log_activity(t.client_id, principal, v_action || '_ticket', 'support_ticket', t.ticket_id, old_json, v_new_json);
    IF v_action = 'update' THEN
        v_zd := csmcp.sup_zendesk('update_ticket', t, NULL, 'zendesk:update:' || t.ticket_id || ':' || v_act_id);
        extra := extra || jsonb_build_object('zendesk', v_zd);
    ELSIF v_action = 'add_comment' THEN
        -- one delivery per comment (a Zendesk ticket update carries one comment); the answer
        -- reports the state and, when queued, every outbox id
        FOR v_cid IN SELECT unnest(v_cids) LOOP
            v_zd := csmcp.sup_zendesk('add_comment', t,
                (SELECT jsonb_build_object('comment', jsonb_build_object('body', c.content, 'public', c.is_public))
                 FROM ticket_comments c WHERE c.comment_id = v_cid),
                'zendesk:comment:' || t.ticket_id || ':' || v_cid);
            IF v_zd ? 'outbox_id' THEN v_zd_ids := v_zd_ids || (v_zd -> 'outbox_id'); END IF;
        END LOOP;
        IF jsonb_array_length(v_zd_ids) > 0 THEN v_zd := v_zd || jsonb_build_object('outbox_ids', v_zd_ids); END IF;
        extra := extra || jsonb_build_object('zendesk', v_zd);
    END IF;
    RETURN jsonb_build_object('status', 'success', 'action', v_action, 'ticket_id', t.ticket_id, 'ticket', v_new_json,
            'sla_status', v_new_json -> 'sla', 'changes', to_jsonb(notes))
        || extra
        || jsonb_build_object('summary', format('%s %s: %s. Status %s, priority %s, SLA %s.', initcap(replace(v_action, '_', ' ')),
               t.ticket_id, array_to_string(notes, '; '), t.status, t.priority, v_new_json #>> '{sla,state}')
               || CASE WHEN v_zd IS NOT NULL THEN ' Zendesk: ' || (v_zd ->> 'state') || '.' ELSE '' END);
END $$;

CREATE OR REPLACE FUNCTION csmcp.tool_handle_support_ticket(args jsonb, principal text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v_action text := csmcp.arg_text(args, 'action', 'create',
        ARRAY['create', 'update', 'resolve', 'close', 'escalate', 'reopen', 'add_comment', 'rate', 'get', 'list']);
BEGIN
    IF v_action = 'create' THEN
        IF args ? 'ticket_id' THEN PERFORM csmcp.invalid('ticket_id: create generates the id; omit ticket_id'); END IF;
        RETURN csmcp.sup_ticket_create(args, principal);
    ELSIF v_action = 'get' THEN
        RETURN csmcp.sup_ticket_get(args);
    ELSIF v_action = 'list' THEN
        RETURN csmcp.sup_ticket_list(args);
    END IF;
    RETURN csmcp.sup_ticket_change(v_action, args, principal);
END $$;

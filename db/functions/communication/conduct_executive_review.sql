-- conduct_executive_review: executive business reviews, persisted. schedule_ebr -> (prepare_ebr)
-- -> complete_ebr; get_ebr_details; list_upcoming_ebrs. prepare_ebr stores a briefing built from
-- the account's own rows (health history, usage, tickets, next renewal, open opportunities).

-- The briefing of an account as of now (rules in the tool's JSON).
CREATE OR REPLACE FUNCTION csmcp.ebr_briefing(p_client_id text) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    WITH a AS (SELECT * FROM accounts WHERE client_id = p_client_id),
    d AS (SELECT csmcp.today() AS today),
    h AS (SELECT calculated_at, overall_score FROM health_scores WHERE client_id = p_client_id
          ORDER BY calculated_at DESC, score_id DESC LIMIT 6),
    h90 AS (SELECT overall_score FROM health_scores WHERE client_id = p_client_id AND calculated_at <= now() - interval '90 days'
            ORDER BY calculated_at DESC, score_id DESC LIMIT 1),
    u AS (SELECT coalesce(round(sum(u.active_users)::numeric / 30, 2), 0) AS avg_dau, coalesce(sum(u.events), 0) AS events,
                 coalesce(sum(u.session_minutes), 0) AS session_minutes, count(*) AS days_with_data
          FROM usage_daily u, d WHERE u.client_id = p_client_id AND u.day > d.today - 30 AND u.day <= d.today),
    t AS (SELECT count(*) FILTER (WHERE status NOT IN ('resolved', 'closed')) AS open,
                 count(*) FILTER (WHERE created_at > now() - interval '90 days') AS opened_90d,
                 count(*) FILTER (WHERE resolved_at > now() - interval '90 days') AS resolved_90d,
                 count(*) FILTER (WHERE status NOT IN ('resolved', 'closed') AND priority = 'P0') AS p0,
                 count(*) FILTER (WHERE status NOT IN ('resolved', 'closed') AND priority = 'P1') AS p1,
                 count(*) FILTER (WHERE status NOT IN ('resolved', 'closed') AND priority = 'P2') AS p2,
                 count(*) FILTER (WHERE status NOT IN ('resolved', 'closed') AND priority = 'P3') AS p3,
                 count(*) FILTER (WHERE status NOT IN ('resolved', 'closed') AND priority = 'P4') AS p4,
                 round(avg(satisfaction_rating) FILTER (WHERE resolved_at > now() - interval '90 days'), 2) AS csat_90d
          FROM support_tickets WHERE client_id = p_client_id),
    r AS (SELECT r.*, r.renewal_date - d.today AS days_until FROM renewals r, d
          WHERE r.client_id = p_client_id AND r.renewal_date >= d.today AND r.status NOT IN ('won', 'lost', 'churned')
          ORDER BY r.renewal_date, r.renewal_id LIMIT 1),
    o AS (SELECT * FROM expansion_opportunities WHERE client_id = p_client_id AND stage NOT IN ('won', 'lost'))
    SELECT jsonb_build_object(
        'client_id', a.client_id, 'client_name', a.client_name, 'tier', a.tier, 'lifecycle_stage', a.lifecycle_stage,
        'prepared_for', (SELECT today FROM d),
        'health', jsonb_build_object(
            'score', a.health_score, 'trend', a.health_trend,
            'history', coalesce((SELECT jsonb_agg(jsonb_build_object('calculated_at', h.calculated_at, 'score', h.overall_score)
                                                  ORDER BY h.calculated_at) FROM h), '[]'),
            'score_90_days_ago', (SELECT overall_score FROM h90),
            'change_90d', a.health_score - (SELECT overall_score FROM h90)),
        'usage', (SELECT jsonb_build_object('avg_daily_active_users_30d', u.avg_dau, 'events_30d', u.events,
                                            'session_minutes_30d', u.session_minutes, 'days_with_data_30d', u.days_with_data,
                                            'trend', csmcp.usage_trend(p_client_id, (SELECT today FROM d))) FROM u),
        'tickets', (SELECT jsonb_build_object('open', t.open, 'opened_90d', t.opened_90d, 'resolved_90d', t.resolved_90d,
                                              'open_by_priority', jsonb_build_object('P0', t.p0, 'P1', t.p1, 'P2', t.p2,
                                                                                     'P3', t.p3, 'P4', t.p4),
                                              'avg_satisfaction_90d', t.csat_90d) FROM t),
        'next_renewal', (SELECT jsonb_build_object('renewal_id', r.renewal_id, 'renewal_date', r.renewal_date,
                                                   'days_until', r.days_until, 'status', r.status,
                                                   'current_arr', r.current_arr, 'forecast_arr', r.forecast_arr,
                                                   'probability', r.probability) FROM r),
        'open_opportunities', jsonb_build_object(
            'count', (SELECT count(*) FROM o),
            'total_value', (SELECT coalesce(sum(estimated_value), 0) FROM o),
            'weighted_value', (SELECT coalesce(round(sum(estimated_value * probability), 2), 0) FROM o),
            'top', coalesce((SELECT jsonb_agg(jsonb_build_object('opportunity_id', x.opportunity_id, 'name', x.name,
                                                                 'expansion_type', x.expansion_type, 'stage', x.stage,
                                                                 'estimated_value', x.estimated_value,
                                                                 'probability', x.probability)
                                              ORDER BY x.estimated_value DESC, x.opportunity_id)
                             FROM (SELECT * FROM o ORDER BY estimated_value DESC, opportunity_id LIMIT 5) x), '[]')))
    FROM a
$$;

CREATE OR REPLACE FUNCTION csmcp.ebr_json(e executive_reviews) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'ebr_id', e.ebr_id, 'client_id', e.client_id, 'ebr_type', e.ebr_type, 'status', e.status,
        'scheduled_date', e.scheduled_at, 'duration_minutes', e.duration_minutes, 'agenda_items', e.agenda,
        'objectives', e.objectives, 'satisfaction_rating', e.satisfaction_rating, 'completed_at', e.completed_at,
        'next_ebr_date', e.next_ebr_date, 'prepared_at', e.prepared_at, 'briefing', e.briefing,
        'created_by', e.created_by, 'created_at', e.created_at,
        'customer_attendees', coalesce((SELECT jsonb_agg(jsonb_build_object('name', x.name, 'email', x.email, 'title', x.title)
                                                         ORDER BY x.name)
                                        FROM ebr_attendees x WHERE x.ebr_id = e.ebr_id AND x.side = 'customer'), '[]'),
        'vendor_attendees', coalesce((SELECT jsonb_agg(jsonb_build_object('name', x.name, 'email', x.email, 'title', x.title)
                                                       ORDER BY x.name)
                                      FROM ebr_attendees x WHERE x.ebr_id = e.ebr_id AND x.side = 'vendor'), '[]'),
        'action_items', coalesce((SELECT jsonb_agg(jsonb_build_object('item_id', x.item_id, 'text', x.text, 'owner', x.owner,
                                                                      'due_date', x.due_date, 'done', x.done) ORDER BY x.item_id)
                                  FROM ebr_action_items x WHERE x.ebr_id = e.ebr_id), '[]'))
$$;

CREATE OR REPLACE FUNCTION csmcp.tool_conduct_executive_review(args jsonb, principal text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v_action text := csmcp.arg_text(args, 'action', NULL, ARRAY['schedule_ebr', 'get_ebr_details', 'prepare_ebr',
                                                                'complete_ebr', 'list_upcoming_ebrs']);
    v_client text := csmcp.arg_text(args, 'client_id', NULL);
    v_type text := csmcp.arg_text(args, 'ebr_type', 'quarterly');
    v_when_txt text := csmcp.arg_text(args, 'scheduled_date', NULL);
    v_duration integer := csmcp.arg_int(args, 'duration_minutes', 60, 15, 480);
    v_id text := csmcp.arg_text(args, 'ebr_id', NULL);
    v_rating integer := csmcp.arg_int(args, 'satisfaction_rating', NULL, 1, 5);
    v_next date := csmcp.arg_date(args, 'next_ebr_date', NULL);
    v_days integer := csmcp.arg_int(args, 'days_ahead', 90, 1, 730);
    v_limit integer := csmcp.arg_int(args, 'limit', 50, 1, 1000);
    v_when timestamptz;
    acc accounts;
    e executive_reviews;
    old_e executive_reviews;
    x jsonb;
    v_items jsonb;
    v_total integer;
BEGIN
    IF v_action = 'schedule_ebr' THEN
        acc := csmcp.require_account(v_client);
        IF v_when_txt IS NULL THEN PERFORM csmcp.invalid('scheduled_date: required for schedule_ebr'); END IF;
        BEGIN
            v_when := v_when_txt::timestamptz;
        EXCEPTION WHEN others THEN
            PERFORM csmcp.invalid('scheduled_date: not an ISO date-time: ' || v_when_txt);
        END;
        IF v_when <= now() THEN PERFORM csmcp.invalid('scheduled_date: must be in the future'); END IF;
        INSERT INTO executive_reviews (ebr_id, client_id, ebr_type, scheduled_at, duration_minutes, agenda, objectives, created_by)
        VALUES (csmcp.comm_id('ebr', right(v_client, 20)), v_client, v_type, v_when, v_duration,
                coalesce(args -> 'agenda_items', '[]'), coalesce(args -> 'objectives', '[]'), principal)
        RETURNING * INTO e;
        BEGIN
            INSERT INTO ebr_attendees (ebr_id, side, name, email, title)
            SELECT e.ebr_id, s.side, btrim(p ->> 'name'), lower(p ->> 'email'), p ->> 'title'
            FROM (SELECT 'customer' AS side, p FROM jsonb_array_elements(coalesce(args -> 'customer_attendees', '[]')) p
                  UNION ALL
                  SELECT 'vendor', p FROM jsonb_array_elements(coalesce(args -> 'vendor_attendees', '[]')) p) s;
        EXCEPTION WHEN unique_violation THEN
            PERFORM csmcp.invalid('attendees: a name appears twice on the same side');
        END;
        x := csmcp.ebr_json(e);
        PERFORM csmcp.log_activity(v_client, principal, 'create', 'executive_review', e.ebr_id, NULL, x);
        RETURN jsonb_build_object('action', v_action, 'ebr', x,
                                  'summary', format('%s EBR %s scheduled for %s at %s (%s min), %s customer and %s vendor attendee(s)',
                                                    initcap(replace(v_type, '_', '-')), e.ebr_id, acc.client_name,
                                                    to_char(e.scheduled_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI "UTC"'),
                                                    e.duration_minutes, jsonb_array_length(x -> 'customer_attendees'),
                                                    jsonb_array_length(x -> 'vendor_attendees')));
    END IF;

    IF v_action = 'list_upcoming_ebrs' THEN
        IF v_client IS NOT NULL THEN acc := csmcp.require_account(v_client); END IF;
        SELECT count(*) INTO v_total FROM executive_reviews r
        WHERE r.status IN ('scheduled', 'prepared') AND r.scheduled_at >= now()
          AND r.scheduled_at < now() + make_interval(days => v_days) AND (v_client IS NULL OR r.client_id = v_client);
        SELECT coalesce(jsonb_agg(jsonb_build_object('ebr_id', r.ebr_id, 'client_id', r.client_id, 'client_name', a.client_name,
                                                     'ebr_type', r.ebr_type, 'status', r.status, 'scheduled_date', r.scheduled_at,
                                                     'duration_minutes', r.duration_minutes,
                                                     'days_until', (r.scheduled_at AT TIME ZONE 'UTC')::date - csmcp.today())
                                  ORDER BY r.scheduled_at, r.ebr_id), '[]')
          INTO v_items
          FROM (SELECT * FROM executive_reviews r
                WHERE r.status IN ('scheduled', 'prepared') AND r.scheduled_at >= now()
                  AND r.scheduled_at < now() + make_interval(days => v_days) AND (v_client IS NULL OR r.client_id = v_client)
                ORDER BY r.scheduled_at, r.ebr_id LIMIT v_limit) r
          JOIN accounts a USING (client_id);
        RETURN jsonb_build_object('action', v_action, 'days_ahead', v_days, 'ebrs', v_items, 'total_count', v_total,
                                  'returned_count', jsonb_array_length(v_items),
                                  'summary', format('%s EBR(s) in the next %s day(s)%s', v_total, v_days,
                                                    coalesce(' for ' || v_client, '')));
    END IF;

    IF v_id IS NULL THEN PERFORM csmcp.invalid('ebr_id: required for ' || v_action); END IF;
    IF v_action = 'get_ebr_details' THEN
        SELECT * INTO e FROM executive_reviews WHERE ebr_id = v_id;
    ELSE
        SELECT * INTO e FROM executive_reviews WHERE ebr_id = v_id FOR UPDATE;
    END IF;
    IF NOT FOUND THEN RAISE EXCEPTION 'EBR % not found', v_id USING ERRCODE = 'P0002'; END IF;

    IF v_action = 'get_ebr_details' THEN
        RETURN jsonb_build_object('action', v_action, 'ebr', csmcp.ebr_json(e),
                                  'summary', format('EBR %s for %s: %s, %s', e.ebr_id, e.client_id, e.status,
                                                    to_char(e.scheduled_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI "UTC"')));
    END IF;

    IF e.status NOT IN ('scheduled', 'prepared') THEN
        RAISE EXCEPTION 'EBR % is %: it can no longer be %', e.ebr_id, e.status,
            CASE WHEN v_action = 'prepare_ebr' THEN 'prepared' ELSE 'completed' END USING ERRCODE = 'P0001';
    END IF;
    old_e := e;

    IF v_action = 'prepare_ebr' THEN
        UPDATE executive_reviews SET briefing = csmcp.ebr_briefing(e.client_id), prepared_at = now(), status = 'prepared'
        WHERE ebr_id = e.ebr_id RETURNING * INTO e;
        PERFORM csmcp.log_activity(e.client_id, principal, 'update', 'executive_review', e.ebr_id,
                                   jsonb_build_object('status', old_e.status, 'prepared_at', old_e.prepared_at),
                                   jsonb_build_object('status', e.status, 'prepared_at', e.prepared_at));
        RETURN jsonb_build_object('action', v_action, 'ebr', csmcp.ebr_json(e), 'briefing', e.briefing,
                                  'summary', format('EBR %s prepared: health %s (%s), %s open ticket(s), %s open opportunit%s worth %s, next renewal %s',
                                                    e.ebr_id, e.briefing #>> '{health,score}', e.briefing #>> '{health,trend}',
                                                    e.briefing #>> '{tickets,open}', e.briefing #>> '{open_opportunities,count}',
                                                    CASE WHEN (e.briefing #>> '{open_opportunities,count}') = '1' THEN 'y' ELSE 'ies' END,
                                                    e.briefing #>> '{open_opportunities,total_value}',
                                                    coalesce(e.briefing #>> '{next_renewal,renewal_date}', 'none')));
    END IF;

    -- complete_ebr
    IF v_rating IS NULL THEN PERFORM csmcp.invalid('satisfaction_rating: required for complete_ebr (1-5)'); END IF;
    IF v_next IS NOT NULL AND v_next <= (e.scheduled_at AT TIME ZONE 'UTC')::date THEN
        PERFORM csmcp.invalid('next_ebr_date: must be after the EBR''s date ' || (e.scheduled_at AT TIME ZONE 'UTC')::date);
    END IF;
    INSERT INTO ebr_action_items (ebr_id, text, owner, due_date)
    SELECT e.ebr_id, btrim(i ->> 'text'), nullif(btrim(i ->> 'owner'), ''), (i ->> 'due_date')::date
    FROM jsonb_array_elements(coalesce(args -> 'action_items', '[]')) WITH ORDINALITY AS t(i, n) ORDER BY n;
    UPDATE executive_reviews SET status = 'completed', satisfaction_rating = v_rating, completed_at = now(),
                                 next_ebr_date = v_next
    WHERE ebr_id = e.ebr_id RETURNING * INTO e;
    x := csmcp.ebr_json(e);
    PERFORM csmcp.log_activity(e.client_id, principal, 'update', 'executive_review', e.ebr_id,
                               jsonb_build_object('status', old_e.status, 'satisfaction_rating', old_e.satisfaction_rating,
                                                  'next_ebr_date', old_e.next_ebr_date),
                               jsonb_build_object('status', e.status, 'satisfaction_rating', e.satisfaction_rating,
                                                  'next_ebr_date', e.next_ebr_date, 'action_items', x -> 'action_items'));
    RETURN jsonb_build_object('action', v_action, 'ebr', x,
                              'summary', format('EBR %s completed: satisfaction %s/5, %s action item(s)%s', e.ebr_id, v_rating,
                                                jsonb_array_length(x -> 'action_items'),
                                                coalesce(', next EBR ' || e.next_ebr_date, '')));
END $$;

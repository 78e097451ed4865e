-- map_customer_journey: the account's journey from its lifecycle transitions (one stage per
-- transition, until the next one), plus an advocacy stage from its first advocate enrolment;
-- per stage the touchpoints, milestones, experience metrics and the points where health fell.
CREATE OR REPLACE FUNCTION csmcp.onb_journey_stage(p_lifecycle text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE p_lifecycle WHEN 'onboarding' THEN 'onboarding' WHEN 'active' THEN 'adoption' WHEN 'at_risk' THEN 'adoption'
                            WHEN 'expansion' THEN 'expansion' WHEN 'renewal' THEN 'renewal' WHEN 'churned' THEN 'churned'
                            WHEN 'advocacy' THEN 'advocacy' END
$$;

CREATE OR REPLACE FUNCTION csmcp.tool_map_customer_journey(args jsonb, principal text)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
    acc accounts := csmcp.require_account(csmcp.arg_text(args, 'client_id', NULL));
    v_stage text := csmcp.arg_text(args, 'journey_stage', NULL, ARRAY['onboarding', 'adoption', 'expansion', 'renewal', 'advocacy']);
    v_tp boolean := csmcp.arg_bool(args, 'include_touchpoints', true);
    v_ms boolean := csmcp.arg_bool(args, 'include_milestones', true);
    v_xp boolean := csmcp.arg_bool(args, 'include_experience_metrics', true);
    stages jsonb;
    v_j jsonb;
    points jsonb;
    opps jsonb := '[]';
    r record;
BEGIN
    SELECT coalesce(jsonb_agg(jsonb_build_object('ord', ord, 'lifecycle_stage', to_stage, 'journey_stage', csmcp.onb_journey_stage(to_stage),
                                                 'entered_at', changed_at, 'left_at', left_at, 'reason', reason)), '[]')
    INTO v_j
    FROM (SELECT row_number() OVER (ORDER BY changed_at, transition_id) AS ord, to_stage, changed_at,
                 lead(changed_at) OVER (ORDER BY changed_at, transition_id) AS left_at, reason
          FROM lifecycle_transitions WHERE client_id = acc.client_id) q;
    IF jsonb_array_length(v_j) = 0 THEN
        v_j := jsonb_build_array(jsonb_build_object('ord', 1, 'lifecycle_stage', acc.lifecycle_stage,
                   'journey_stage', csmcp.onb_journey_stage(acc.lifecycle_stage), 'entered_at', acc.created_at, 'left_at', NULL,
                   'reason', 'no recorded transitions: current stage since the account was created'));
    END IF;
    SELECT v_j || coalesce(jsonb_agg(jsonb_build_object('ord', 1000, 'lifecycle_stage', NULL, 'journey_stage', 'advocacy',
                                                        'entered_at', e, 'left_at', NULL, 'reason', 'first advocate enrolled')), '[]')
    INTO v_j FROM (SELECT min(enrolled_at) AS e FROM advocates WHERE client_id = acc.client_id HAVING count(*) > 0) q;
    IF v_stage IS NOT NULL THEN
        SELECT coalesce(jsonb_agg(x), '[]') INTO v_j FROM jsonb_array_elements(v_j) x WHERE x ->> 'journey_stage' = v_stage;
    END IF;

    -- Health drops of 5 points or more between consecutive stored scores, placed in the stage
    -- during which the later score was calculated.
    SELECT coalesce(jsonb_agg(jsonb_build_object('journey_stage', j.journey_stage, 'lifecycle_stage', j.lifecycle_stage,
                                                 'calculated_at', h.calculated_at, 'previous_score', h.prev, 'score', h.overall_score,
                                                 'change', h.overall_score - h.prev) ORDER BY h.calculated_at), '[]')
    INTO points
    FROM (SELECT calculated_at, overall_score, lag(overall_score) OVER (ORDER BY calculated_at, score_id) AS prev
          FROM health_scores WHERE client_id = acc.client_id) h
    JOIN jsonb_to_recordset(v_j) AS j(ord integer, lifecycle_stage text, journey_stage text, entered_at timestamptz, left_at timestamptz, reason text) ON j.lifecycle_stage IS NOT NULL AND h.calculated_at >= j.entered_at
                      AND (j.left_at IS NULL OR h.calculated_at < j.left_at)
    WHERE h.prev IS NOT NULL AND h.overall_score <= h.prev - 5;

    SELECT coalesce(jsonb_agg(x ORDER BY (x ->> 'order')::integer), '[]') INTO stages FROM (
        SELECT jsonb_build_object(
            'order', j.ord, 'journey_stage', j.journey_stage, 'lifecycle_stage', j.lifecycle_stage, 'reason', j.reason,
            'entered_at', j.entered_at, 'left_at', j.left_at, 'current', j.left_at IS NULL,
            'duration_days', (coalesce(j.left_at, now()) AT TIME ZONE 'UTC')::date - (j.entered_at AT TIME ZONE 'UTC')::date,
            'touchpoints', CASE WHEN v_tp THEN jsonb_build_object(
                'communications', (SELECT count(*) FROM communications c WHERE c.client_id = acc.client_id
                                   AND c.occurred_at >= j.entered_at AND (j.left_at IS NULL OR c.occurred_at < j.left_at)),
                'communications_by_channel', (SELECT coalesce(jsonb_object_agg(channel, n), '{}') FROM (
                                   SELECT channel, count(*) AS n FROM communications c WHERE c.client_id = acc.client_id
                                   AND c.occurred_at >= j.entered_at AND (j.left_at IS NULL OR c.occurred_at < j.left_at) GROUP BY channel) q),
                'executive_reviews', (SELECT count(*) FROM executive_reviews e WHERE e.client_id = acc.client_id AND e.status <> 'cancelled'
                                      AND e.scheduled_at >= j.entered_at AND (j.left_at IS NULL OR e.scheduled_at < j.left_at)),
                'tickets_opened', (SELECT count(*) FROM support_tickets s WHERE s.client_id = acc.client_id
                                   AND s.created_at >= j.entered_at AND (j.left_at IS NULL OR s.created_at < j.left_at)),
                'training_sessions', (SELECT count(*) FROM training_sessions ts WHERE ts.client_id = acc.client_id AND ts.status = 'completed'
                                      AND ts.scheduled_at >= j.entered_at AND (j.left_at IS NULL OR ts.scheduled_at < j.left_at))) END,
            'milestones', CASE WHEN v_ms THEN (SELECT coalesce(jsonb_agg(y ORDER BY y ->> 'date', y ->> 'name'), '[]') FROM (
                SELECT jsonb_build_object('kind', 'onboarding_milestone', 'name', m.name, 'plan_id', m.plan_id, 'date', m.completed_on,
                                          'due_date', m.due_date, 'on_time', m.completed_on <= m.due_date) AS y
                FROM onboarding_milestones m JOIN onboarding_plans p USING (plan_id)
                WHERE p.client_id = acc.client_id AND m.status = 'completed'
                  AND m.completed_on >= (j.entered_at AT TIME ZONE 'UTC')::date
                  AND (j.left_at IS NULL OR m.completed_on < (j.left_at AT TIME ZONE 'UTC')::date)
                UNION ALL
                SELECT jsonb_build_object('kind', 'adoption_milestone', 'name', a.milestone, 'date', a.achieved_on)
                FROM adoption_milestones a WHERE a.client_id = acc.client_id
                  AND a.achieved_on >= (j.entered_at AT TIME ZONE 'UTC')::date
                  AND (j.left_at IS NULL OR a.achieved_on < (j.left_at AT TIME ZONE 'UTC')::date)) q) END,
            'experience_metrics', CASE WHEN v_xp THEN (
                SELECT jsonb_build_object(
                    'nps_responses', count(n.*),
                    'nps', CASE WHEN count(n.*) > 0 THEN round(100.0 * (count(*) FILTER (WHERE n.score >= 9) - count(*) FILTER (WHERE n.score <= 6))
                                                               / count(n.*)) END,
                    'csat_average', (SELECT round(avg(cs.score), 2) FROM csat_responses cs WHERE cs.client_id = acc.client_id
                                     AND cs.survey_type = 'csat'
                                     AND cs.responded_at >= j.entered_at AND (j.left_at IS NULL OR cs.responded_at < j.left_at)),
                    'health_at_entry', (SELECT h.overall_score FROM health_scores h WHERE h.client_id = acc.client_id
                                        AND h.calculated_at <= j.entered_at ORDER BY h.calculated_at DESC, h.score_id DESC LIMIT 1),
                    'health_at_exit', (SELECT h.overall_score FROM health_scores h WHERE h.client_id = acc.client_id
                                       AND h.calculated_at < coalesce(j.left_at, 'infinity') ORDER BY h.calculated_at DESC, h.score_id DESC LIMIT 1))
                FROM nps_responses n WHERE n.client_id = acc.client_id
                  AND n.responded_at >= j.entered_at AND (j.left_at IS NULL OR n.responded_at < j.left_at)) END,
            'intervention_points', (SELECT count(*) FROM jsonb_array_elements(points) ip
                                    WHERE ip ->> 'journey_stage' = j.journey_stage
                                      AND (ip ->> 'calculated_at')::timestamptz >= j.entered_at
                                      AND (j.left_at IS NULL OR (ip ->> 'calculated_at')::timestamptz < j.left_at))) AS x
        FROM jsonb_to_recordset(v_j) AS j(ord integer, lifecycle_stage text, journey_stage text, entered_at timestamptz,
                                          left_at timestamptz, reason text)) q;

    FOR r IN SELECT x FROM jsonb_array_elements(stages) x LOOP
        IF r.x ->> 'journey_stage' = 'onboarding' AND (r.x ->> 'duration_days')::integer > 90 THEN
            opps := opps || jsonb_build_object('journey_stage', 'onboarding', 'opportunity', 'shorten_onboarding',
                'reason', format('onboarding lasted %s days (more than 90)', r.x ->> 'duration_days'));
        END IF;
        IF v_tp AND (r.x -> 'touchpoints' ->> 'communications')::integer = 0 AND (r.x ->> 'duration_days')::integer >= 30
           AND r.x ->> 'journey_stage' <> 'churned' THEN
            opps := opps || jsonb_build_object('journey_stage', r.x ->> 'journey_stage', 'opportunity', 'add_touchpoints',
                'reason', format('no communication in %s days of %s', r.x ->> 'duration_days', r.x ->> 'journey_stage'));
        END IF;
    END LOOP;

    RETURN jsonb_build_object(
        'summary', format('%s: %s journey stage(s)%s, currently %s; %s intervention point(s) where health fell by 5+ points.',
                          acc.client_name, jsonb_array_length(stages),
                          CASE WHEN v_stage IS NOT NULL THEN ' of type ' || v_stage ELSE '' END,
                          csmcp.onb_journey_stage(acc.lifecycle_stage), jsonb_array_length(points)),
        'client_id', acc.client_id,
        'current_lifecycle_stage', acc.lifecycle_stage,
        'journey_stages', stages,
        'intervention_points', points,
        'optimization_opportunities', opps);
END $$;

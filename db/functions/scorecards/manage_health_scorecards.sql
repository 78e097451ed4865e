-- manage_health_scorecards: versioned health scorecards - list, get, create, update (a new
-- version), activate, archive. calculate_health_score scores an account with the first matching
-- active scorecard (csmcp.resolve_scorecard), else the default model.

-- Checks weights / criteria / grading; raises csmcp.invalid naming the field.
CREATE OR REPLACE FUNCTION csmcp.sc_check(p_weights jsonb, p_criteria jsonb, p_grading jsonb) RETURNS void
LANGUAGE plpgsql STABLE AS $$
DECLARE
    k text; total numeric := 0; g jsonb; prev_max numeric := -1;
BEGIN
    IF p_weights IS NOT NULL THEN
        FOR k IN SELECT jsonb_object_keys(p_weights) LOOP
            IF k NOT IN ('usage', 'engagement', 'support', 'satisfaction', 'payment')
               AND NOT EXISTS (SELECT 1 FROM health_metric_catalogue c WHERE c.measure = k AND c.enabled) THEN
                PERFORM csmcp.invalid(format('weights: unknown measure %s; measures: usage, engagement, support, satisfaction, payment%s',
                    k, coalesce((SELECT ', ' || string_agg(c.measure, ', ' ORDER BY c.measure)
                                   FROM health_metric_catalogue c WHERE c.enabled), '')));
            END IF;
            total := total + (p_weights ->> k)::numeric;
        END LOOP;
        IF abs(total - 1) > 0.01 THEN
            PERFORM csmcp.invalid(format('weights: must sum to 1 (+/- 0.01); they sum to %s', total));
        END IF;
    END IF;
    IF p_criteria IS NOT NULL AND p_criteria ->> 'segment_id' IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM segments WHERE segment_id = p_criteria ->> 'segment_id') THEN
        RAISE EXCEPTION 'segment % not found', p_criteria ->> 'segment_id' USING ERRCODE = 'P0002';
    END IF;
    IF p_grading IS NOT NULL THEN
        FOR g IN SELECT x FROM jsonb_array_elements(p_grading) x ORDER BY (x ->> 'min')::numeric LOOP
            IF (g ->> 'min')::numeric > (g ->> 'max')::numeric THEN
                PERFORM csmcp.invalid(format('grading: band %s has min %s above max %s', g ->> 'label', g ->> 'min', g ->> 'max'));
            END IF;
            IF (g ->> 'min')::numeric <= prev_max THEN
                PERFORM csmcp.invalid(format('grading: band %s overlaps the band below it', g ->> 'label'));
            END IF;
            prev_max := (g ->> 'max')::numeric;
        END LOOP;
    END IF;
END $$;

CREATE OR REPLACE FUNCTION csmcp.sc_json(s health_scorecards) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('scorecard_id', s.scorecard_id, 'version', s.version, 'name', s.name,
        'weights', s.weights, 'criteria', s.criteria, 'priority', s.priority,
        'missing_input_policy', s.missing_input_policy, 'grading', s.grading, 'status', s.status,
        'created_by', s.created_by, 'created_at', s.created_at,
        'scores_stored', (SELECT count(*) FROM health_scores h WHERE h.scorecard_id = s.scorecard_id
                             AND h.scorecard_version = s.version))
$$;

-- The measures a scorecard may weigh: the five built-in ones and the enabled catalogue measures.
CREATE OR REPLACE FUNCTION csmcp.sc_available_measures() RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_array(
        jsonb_build_object('measure', 'usage', 'kind', 'built_in', 'description', 'average daily active users / licensed seats (health model)'),
        jsonb_build_object('measure', 'engagement', 'kind', 'built_in', 'description', 'days since the last usage (health model)'),
        jsonb_build_object('measure', 'support', 'kind', 'built_in', 'description', 'tickets and P0/P1 tickets opened (health model)'),
        jsonb_build_object('measure', 'satisfaction', 'kind', 'built_in', 'description', 'NPS of the responses (health model)'),
        jsonb_build_object('measure', 'payment', 'kind', 'built_in', 'description', 'overdue / late invoices, contract end (health model)'))
        || coalesce((SELECT jsonb_agg(jsonb_build_object('measure', c.measure, 'kind', 'catalogue', 'description', c.description,
                                                         'unit', c.unit, 'worst', c.worst, 'best', c.best,
                                                         'sql_function', c.sql_function) ORDER BY c.measure)
                       FROM health_metric_catalogue c WHERE c.enabled), '[]')
$$;

CREATE OR REPLACE FUNCTION csmcp.tool_manage_health_scorecards(args jsonb, principal text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v_action text := csmcp.arg_text(args, 'action', NULL, ARRAY['list', 'get', 'create', 'update', 'activate', 'archive']);
    v_id text := csmcp.arg_text(args, 'scorecard_id', NULL);
    v_actor text := coalesce(nullif(principal, ''), 'anonymous');
    cur health_scorecards;
    nw health_scorecards;
    v_list jsonb;
    v_default_grading jsonb := '[{"min": 0, "max": 49, "label": "critical", "color": "red"},
        {"min": 50, "max": 64, "label": "high", "color": "orange"},
        {"min": 65, "max": 79, "label": "medium", "color": "yellow"},
        {"min": 80, "max": 100, "label": "low", "color": "green"}]';
BEGIN
    IF v_action = 'list' THEN
        SELECT coalesce(jsonb_agg(csmcp.sc_json(s) ORDER BY s.status <> 'active', s.priority,
                                  (substr(s.scorecard_id, 4))::bigint), '[]'::jsonb)
          INTO v_list FROM health_scorecards s WHERE s.status <> 'superseded';
        RETURN jsonb_build_object('status', 'success', 'action', v_action, 'scorecards', v_list,
            'total', jsonb_array_length(v_list), 'available_measures', csmcp.sc_available_measures(),
            'summary', format('%s scorecard(s), %s active; accounts matching none use the default model',
                              jsonb_array_length(v_list),
                              (SELECT count(*) FROM jsonb_array_elements(v_list) e WHERE e ->> 'status' = 'active')));
    END IF;
    IF v_action = 'create' THEN
        IF args -> 'name' IS NULL OR args -> 'weights' IS NULL THEN
            PERFORM csmcp.invalid('name and weights: required to create a scorecard');
        END IF;
        IF v_id IS NOT NULL THEN PERFORM csmcp.invalid('scorecard_id: assigned by the server on create'); END IF;
        PERFORM csmcp.sc_check(args -> 'weights', args -> 'criteria', args -> 'grading');
        INSERT INTO health_scorecards (scorecard_id, version, name, weights, criteria, priority,
                                       missing_input_policy, grading, status, created_by)
        VALUES ('SC-' || nextval('health_scorecard_seq'), 1, btrim(args ->> 'name'), args -> 'weights',
                coalesce(args -> 'criteria', '{}'), coalesce((args ->> 'priority')::integer, 100),
                coalesce(args ->> 'missing_input_policy', 'neutral'), coalesce(args -> 'grading', v_default_grading),
                CASE WHEN coalesce((args ->> 'active')::boolean, true) THEN 'active' ELSE 'inactive' END, v_actor)
        RETURNING * INTO nw;
        PERFORM csmcp.log_activity(NULL, v_actor, 'create_scorecard', 'health_scorecard', nw.scorecard_id, NULL, csmcp.sc_json(nw));
        RETURN jsonb_build_object('status', 'success', 'action', v_action, 'scorecard', csmcp.sc_json(nw),
            'summary', format('scorecard %s "%s" created (version 1, %s)', nw.scorecard_id, nw.name, nw.status));
    END IF;
    IF v_id IS NULL THEN PERFORM csmcp.invalid(format('scorecard_id: required for %s', v_action)); END IF;
    SELECT * INTO cur FROM health_scorecards WHERE scorecard_id = v_id AND status <> 'superseded'
       FOR UPDATE;
    IF cur.scorecard_id IS NULL THEN
        RAISE EXCEPTION 'scorecard % not found', v_id USING ERRCODE = 'P0002';
    END IF;
    IF v_action = 'get' THEN
        RETURN jsonb_build_object('status', 'success', 'action', v_action, 'scorecard', csmcp.sc_json(cur),
            'versions', (SELECT jsonb_agg(csmcp.sc_json(s) ORDER BY s.version DESC) FROM health_scorecards s
                          WHERE s.scorecard_id = v_id),
            'summary', format('scorecard %s "%s" version %s, %s', cur.scorecard_id, cur.name, cur.version, cur.status));
    END IF;
    IF v_action = 'update' THEN
        IF cur.status = 'archived' THEN
            RAISE EXCEPTION 'scorecard % is archived; activate it before changing it', v_id USING ERRCODE = 'P0001';
        END IF;
        IF args ?| ARRAY['active'] THEN PERFORM csmcp.invalid('active: use the activate or archive action'); END IF;
        PERFORM csmcp.sc_check(args -> 'weights', args -> 'criteria', args -> 'grading');
        nw := cur;
        nw.version := cur.version + 1;
        nw.name := coalesce(btrim(args ->> 'name'), cur.name);
        nw.weights := coalesce(args -> 'weights', cur.weights);
        nw.criteria := coalesce(args -> 'criteria', cur.criteria);
        nw.priority := coalesce((args ->> 'priority')::integer, cur.priority);
        nw.missing_input_policy := coalesce(args ->> 'missing_input_policy', cur.missing_input_policy);
        nw.grading := coalesce(args -> 'grading', cur.grading);
        nw.created_by := v_actor;
        nw.created_at := now();
        IF (nw.name, nw.weights, nw.criteria, nw.priority, nw.missing_input_policy, nw.grading)
           IS NOT DISTINCT FROM (cur.name, cur.weights, cur.criteria, cur.priority, cur.missing_input_policy, cur.grading) THEN
            RAISE EXCEPTION 'scorecard % update changes nothing', v_id USING ERRCODE = 'P0001';
        END IF;
        UPDATE health_scorecards SET status = 'superseded' WHERE scorecard_id = v_id AND version = cur.version;
        INSERT INTO health_scorecards VALUES (nw.*);
        PERFORM csmcp.log_activity(NULL, v_actor, 'update_scorecard', 'health_scorecard', v_id, csmcp.sc_json(cur), csmcp.sc_json(nw));
        RETURN jsonb_build_object('status', 'success', 'action', v_action, 'scorecard', csmcp.sc_json(nw),
            'summary', format('scorecard %s is now version %s (version %s kept for the scores it produced)',
                              v_id, nw.version, cur.version));
    END IF;
    -- activate / archive: the current version's status
    IF v_action = 'activate' AND cur.status = 'active' THEN
        RAISE EXCEPTION 'scorecard % is already active', v_id USING ERRCODE = 'P0001';
    END IF;
    IF v_action = 'archive' AND cur.status = 'archived' THEN
        RAISE EXCEPTION 'scorecard % is already archived', v_id USING ERRCODE = 'P0001';
    END IF;
    UPDATE health_scorecards SET status = CASE WHEN v_action = 'activate' THEN 'active' ELSE 'archived' END
     WHERE scorecard_id = v_id AND version = cur.version RETURNING * INTO nw;
    PERFORM csmcp.log_activity(NULL, v_actor, v_action || '_scorecard', 'health_scorecard', v_id,
                               jsonb_build_object('status', cur.status), jsonb_build_object('status', nw.status));
    RETURN jsonb_build_object('status', 'success', 'action', v_action, 'scorecard', csmcp.sc_json(nw),
        'summary', format('scorecard %s %s (was %s)', v_id, nw.status, cur.status));
END $$;

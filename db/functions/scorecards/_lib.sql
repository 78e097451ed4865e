-- scorecards/_lib.sql - helpers shared by the scorecards tools (issue 24).

-- "Now" for health overrides: now() plus the test clock's offset (health_clock, migration 0286;
-- empty in production). Every reader decides expiry against it, so no writer runs at expiry.
-- plpgsql (its plan is cached per session): a SQL function called from another non-inlined SQL
-- function is planned again on every call (PostgreSQL 15), 1.5 ms each at 10K accounts.
-- In a query over many rows write (SELECT csmcp.sc_now()) so that it is evaluated once.
CREATE OR REPLACE FUNCTION csmcp.sc_now() RETURNS timestamptz
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN now() + coalesce((SELECT c.offset_by FROM health_clock c), interval '0');
END $$;

-- THE effective health score, for any tool: the account's active override (not cleared,
-- expires_at > csmcp.sc_now()), else the computed accounts.health_score.
--   many rows:  LEFT JOIN csmcp.active_health_overrides() ov ON ov.client_id = a.client_id
--               ... coalesce(ov.score, a.health_score) ...   (inlined: one hash join over the
--               few active overrides; ~10x cheaper than a function call per row)
--   one row:    csmcp.effective_health(a.client_id, a.health_score)
CREATE OR REPLACE FUNCTION csmcp.active_health_overrides() RETURNS TABLE (client_id text, score integer)
LANGUAGE sql STABLE AS $$
    SELECT o.client_id, o.score FROM health_overrides o WHERE o.cleared_at IS NULL AND o.expires_at > (SELECT csmcp.sc_now())
$$;

CREATE OR REPLACE FUNCTION csmcp.effective_health(p_client_id text, p_computed integer) RETURNS integer
LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT o.score FROM health_overrides o
                      WHERE o.client_id = p_client_id AND o.cleared_at IS NULL AND o.expires_at > csmcp.sc_now()),
                    p_computed)
$$;

-- The active override's score, or NULL (same rule; "is it overridden?").
CREATE OR REPLACE FUNCTION csmcp.health_override_score(p_client_id text) RETURNS integer
LANGUAGE sql STABLE AS $$
    SELECT (SELECT o.score FROM health_overrides o
             WHERE o.client_id = p_client_id AND o.cleared_at IS NULL AND o.expires_at > csmcp.sc_now())
$$;

-- The account's active manual override, or NULL.
CREATE OR REPLACE FUNCTION csmcp.health_override_active(p_client_id text) RETURNS health_overrides
LANGUAGE sql STABLE AS $$
    SELECT o.* FROM health_overrides o
     WHERE o.client_id = p_client_id AND o.cleared_at IS NULL AND o.expires_at > csmcp.sc_now()
$$;

-- Effective health score of an account by id (one flat query: no nested SQL function).
CREATE OR REPLACE FUNCTION csmcp.effective_health_score(p_client_id text) RETURNS integer
LANGUAGE sql STABLE AS $$
    SELECT coalesce(o.score, a.health_score) FROM accounts a
      LEFT JOIN health_overrides o ON o.client_id = a.client_id AND o.cleared_at IS NULL
                                  AND o.expires_at > (SELECT csmcp.sc_now())
     WHERE a.client_id = p_client_id
$$;

-- An override as JSON (NULL for none), with whole days left until it expires.
CREATE OR REPLACE FUNCTION csmcp.sc_override_json(o health_overrides) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN o.override_id IS NULL THEN NULL ELSE jsonb_build_object(
        'override_id', o.override_id, 'score', o.score, 'reason', o.reason, 'set_by', o.set_by,
        'set_at', o.set_at, 'expires_at', o.expires_at,
        'days_remaining', floor(extract(epoch FROM (o.expires_at - csmcp.sc_now())) / 86400)::integer) END
$$;

-- Grading bands of the default model (risk_level): [min, max] -> label, colour.
CREATE OR REPLACE FUNCTION csmcp.sc_default_band(p_score integer) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN p_score >= 80 THEN '{"min": 80, "max": 100, "label": "low", "color": "green"}'::jsonb
                WHEN p_score >= 65 THEN '{"min": 65, "max": 79, "label": "medium", "color": "yellow"}'::jsonb
                WHEN p_score >= 50 THEN '{"min": 50, "max": 64, "label": "high", "color": "orange"}'::jsonb
                ELSE '{"min": 0, "max": 49, "label": "critical", "color": "red"}'::jsonb END
$$;

-- The first active scorecard whose criteria (all given keys: tier, industry, lifecycle_stage,
-- segment_id membership, hierarchy_role = parent: the account has child accounts) match the account, lowest priority number first, then scorecard_id;
-- NULL when none matches (the default model applies).
CREATE OR REPLACE FUNCTION csmcp.resolve_scorecard(p_client_id text) RETURNS health_scorecards
LANGUAGE sql STABLE AS $$
    SELECT s.* FROM health_scorecards s, accounts a
     WHERE a.client_id = p_client_id AND s.status = 'active'
       AND (s.criteria ->> 'tier' IS NULL OR s.criteria ->> 'tier' = a.tier)
       AND (s.criteria ->> 'industry' IS NULL OR lower(s.criteria ->> 'industry') = lower(a.industry))
       AND (s.criteria ->> 'lifecycle_stage' IS NULL OR s.criteria ->> 'lifecycle_stage' = a.lifecycle_stage)
       AND (s.criteria ->> 'hierarchy_role' IS NULL
            OR EXISTS (SELECT 1 FROM account_parents p WHERE p.parent_id = a.client_id))
       AND (s.criteria ->> 'segment_id' IS NULL OR EXISTS (
                SELECT 1 FROM segment_members m WHERE m.segment_id = s.criteria ->> 'segment_id'
                   AND m.client_id = a.client_id))
     ORDER BY s.priority, (substr(s.scorecard_id, 4))::bigint
     LIMIT 1
$$;

-- A scorecard applied to health_components() output (and, for its catalogue measures, to the
-- account p_client_id over p_lookback days): the effective weight of every measure it weighs
-- (missing inputs: neutral = the model's defaults for the five built-in measures and 50 for a
-- catalogue measure, at the scorecard's weights; redistribute = a missing measure's weight spread
-- proportionally over the present ones), the unrounded score, the missing measures, the grading
-- band and the catalogue measures' raw and normalised values (custom).
DROP FUNCTION IF EXISTS csmcp.scorecard_apply(health_scorecards, jsonb);
CREATE OR REPLACE FUNCTION csmcp.scorecard_apply(sc health_scorecards, comp jsonb, p_client_id text DEFAULT NULL,
                                                 p_lookback integer DEFAULT 30) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    builtin constant text[] := ARRAY['usage', 'engagement', 'support', 'satisfaction', 'payment'];
    m jsonb := comp -> 'metrics';
    missing text[] := ARRAY[]::text[];
    present_sum numeric := 0;
    w jsonb := '{}';
    vals jsonb := '{}';
    custom jsonb := '[]';
    cm jsonb;
    k text;
    raw numeric := 0;
    v_score integer;
BEGIN
    IF NOT (m ->> 'has_active_contract')::boolean OR m ->> 'licensed_seats' IS NULL THEN missing := missing || 'usage'::text; END IF;
    IF m ->> 'last_usage_date' IS NULL THEN missing := missing || 'engagement'::text; END IF;
    IF (m ->> 'nps_responses')::integer = 0 THEN missing := missing || 'satisfaction'::text; END IF;
    IF NOT (m ->> 'has_active_contract')::boolean THEN missing := missing || 'payment'::text; END IF;
    FOREACH k IN ARRAY builtin LOOP
        vals := vals || jsonb_build_object(k, (comp ->> k)::numeric);
    END LOOP;
    FOR k IN SELECT x FROM jsonb_object_keys(sc.weights) x WHERE NOT (x = ANY (builtin)) ORDER BY x LOOP
        cm := csmcp.hm_measure(k, p_client_id, p_lookback);
        IF cm ->> 'value' IS NULL THEN missing := missing || k; END IF;
        vals := vals || jsonb_build_object(k, coalesce((cm ->> 'value')::numeric, 50));
        custom := custom || jsonb_build_array(cm);
    END LOOP;
    FOR k IN SELECT x FROM jsonb_object_keys(vals) x LOOP
        IF NOT (k = ANY (missing)) THEN present_sum := present_sum + coalesce((sc.weights ->> k)::numeric, 0); END IF;
    END LOOP;
    FOR k IN SELECT x FROM jsonb_object_keys(vals) x LOOP
        w := w || jsonb_build_object(k, CASE
            WHEN sc.missing_input_policy = 'redistribute' AND present_sum > 0
                THEN CASE WHEN k = ANY (missing) THEN 0 ELSE coalesce((sc.weights ->> k)::numeric, 0) / present_sum END
            ELSE coalesce((sc.weights ->> k)::numeric, 0) END);
        raw := raw + (w ->> k)::numeric * (vals ->> k)::numeric;
    END LOOP;
    v_score := greatest(0, least(100, round(raw)))::integer;
    SELECT coalesce(jsonb_agg(c || jsonb_build_object('weight', (w ->> (c ->> 'measure'))::numeric,
                                                      'value_used', (vals ->> (c ->> 'measure'))::numeric,
                                                      'contribution', round((w ->> (c ->> 'measure'))::numeric
                                                                            * (vals ->> (c ->> 'measure'))::numeric, 4))
                              ORDER BY c ->> 'measure'), '[]')
      INTO custom FROM jsonb_array_elements(custom) c;
    RETURN jsonb_build_object('weights', w, 'score_before_rounding', raw, 'score', v_score,
        'missing', to_jsonb(missing),
        'redistributed', sc.missing_input_policy = 'redistribute' AND present_sum > 0
                         AND EXISTS (SELECT 1 FROM unnest(missing) x WHERE coalesce((sc.weights ->> x)::numeric, 0) > 0),
        'grading', (SELECT g FROM jsonb_array_elements(sc.grading) g
                     WHERE (g ->> 'min')::numeric <= v_score AND v_score <= (g ->> 'max')::numeric LIMIT 1),
        'custom', custom);
END $$;

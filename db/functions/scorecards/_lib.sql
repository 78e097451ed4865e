-- scorecards/_lib.sql - helpers shared by the scorecards tools (issue 24).

-- The account's active manual override (cleared_at IS NULL AND expires_at > now()), or NULL:
-- expiry is decided here at read time, so no writer runs when an override expires.
CREATE OR REPLACE FUNCTION csmcp.health_override_active(p_client_id text) RETURNS health_overrides
LANGUAGE sql STABLE AS $$
    SELECT o.* FROM health_overrides o
     WHERE o.client_id = p_client_id AND o.cleared_at IS NULL AND o.expires_at > now()
$$;

-- Effective health score: the active override's score, else the computed accounts.health_score.
CREATE OR REPLACE FUNCTION csmcp.effective_health_score(p_client_id text) RETURNS integer
LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT o.score FROM health_overrides o
                      WHERE o.client_id = a.client_id AND o.cleared_at IS NULL AND o.expires_at > now()),
                    a.health_score)
      FROM accounts a WHERE a.client_id = p_client_id
$$;

-- An override as JSON (NULL for none), with whole days left until it expires.
CREATE OR REPLACE FUNCTION csmcp.sc_override_json(o health_overrides) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN o.override_id IS NULL THEN NULL ELSE jsonb_build_object(
        'override_id', o.override_id, 'score', o.score, 'reason', o.reason, 'set_by', o.set_by,
        'set_at', o.set_at, 'expires_at', o.expires_at,
        'days_remaining', floor(extract(epoch FROM (o.expires_at - now())) / 86400)::integer) END
$$;

-- Grading bands of the default model (risk_level): [min, max] -> label, colour.
CREATE OR REPLACE FUNCTION csmcp.sc_default_band(p_score integer) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN p_score >= 80 THEN '{"min": 80, "max": 100, "label": "low", "color": "green"}'::jsonb
                WHEN p_score >= 65 THEN '{"min": 65, "max": 79, "label": "medium", "color": "yellow"}'::jsonb
                WHEN p_score >= 50 THEN '{"min": 50, "max": 64, "label": "high", "color": "orange"}'::jsonb
                ELSE '{"min": 0, "max": 49, "label": "critical", "color": "red"}'::jsonb END
$$;

-- tests/package/broken-smoke: a deliberately broken release for the rolling-deploy test. Its
-- calculate_health_score answers wrong (every component 0), so the processes are healthy and
-- the reload succeeds, but the smoke test (SDK data workflow: exact component scores) fails and
-- scripts/deploy must roll the first host back -- which re-applies the previous release's
-- function file. The deploy test's load does not call this tool.
CREATE OR REPLACE FUNCTION csmcp.tool_calculate_health_score(args jsonb, principal text)
RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
    PERFORM csmcp.require_account(csmcp.arg_text(args, 'client_id', NULL));
    RETURN jsonb_build_object(
        'client_id', args ->> 'client_id', 'current_health_score', 0, 'previous_health_score', 0,
        'health_trend', 'stable', 'risk_level', 'critical',
        'component_scores', jsonb_build_object('usage', 0, 'engagement', 0, 'support', 0,
                                               'satisfaction', 0, 'payment', 0));
END
$$;

-- get_worker_config: one monitor's stored configuration with its parameter specification.
CREATE OR REPLACE FUNCTION csmcp.tool_get_worker_config(args jsonb, principal text)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
    m monitors := csmcp.monitor_require(csmcp.arg_text(args, 'worker_name', NULL));
    spec jsonb := csmcp.monitor_param_spec(m.name);
    eff jsonb;
BEGIN
    SELECT jsonb_object_agg(k, coalesce(m.params -> k, spec -> k -> 'default')) INTO eff FROM jsonb_object_keys(spec) k;
    RETURN jsonb_build_object(
        'worker_name', m.name,
        'config', jsonb_build_object('enabled', m.enabled, 'interval_hours', m.interval_hours,
                                     'interval_seconds', csmcp.monitor_interval_s(m), 'params', eff,
                                     'description', m.description, 'updated_at', m.updated_at, 'updated_by', m.updated_by),
        'parameters', spec,
        'summary', format('%s is %s, every %s h; %s', m.name, CASE WHEN m.enabled THEN 'enabled' ELSE 'disabled' END,
                          m.interval_hours,
                          (SELECT string_agg(k || ' = ' || (eff -> k)::text, ', ' ORDER BY k) FROM jsonb_object_keys(eff) k)));
END $$;

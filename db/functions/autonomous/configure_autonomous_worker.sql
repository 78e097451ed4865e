-- configure_autonomous_worker: enable/disable a monitor, merge validated params, optionally set
-- the interval; takes effect at the monitor process's next tick. Logged with old and new values.
CREATE OR REPLACE FUNCTION csmcp.tool_configure_autonomous_worker(args jsonb, principal text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v_name text := csmcp.arg_text(args, 'worker_name', NULL);
    v_enabled boolean := csmcp.arg_bool(args, 'enabled', NULL);
    v_interval integer := csmcp.arg_int(args, 'interval_hours', NULL, 1, 720);
    m monitors;
    n monitors;
    v_params jsonb;
BEGIN
    PERFORM csmcp.monitor_require(v_name);
    SELECT * INTO m FROM monitors WHERE name = v_name FOR UPDATE;
    v_params := csmcp.auto_validate_params(m.name, m.params, args -> 'params');
    UPDATE monitors SET enabled = v_enabled, params = v_params, interval_hours = coalesce(v_interval, interval_hours),
                        updated_at = now(), updated_by = coalesce(nullif(principal, ''), 'anonymous')
    WHERE name = m.name RETURNING * INTO n;
    PERFORM csmcp.log_activity(NULL, principal, 'configure', 'monitor', m.name,
                               jsonb_build_object('enabled', m.enabled, 'interval_hours', m.interval_hours, 'params', m.params),
                               jsonb_build_object('enabled', n.enabled, 'interval_hours', n.interval_hours, 'params', n.params));
    RETURN jsonb_build_object(
        'success', true,
        'worker_name', n.name,
        'enabled', jsonb_build_object('previous', m.enabled, 'current', n.enabled),
        'interval_hours', jsonb_build_object('previous', m.interval_hours, 'current', n.interval_hours),
        'params_updated', coalesce(args -> 'params', '{}'),
        'params', n.params,
        'message', format('Worker %s %s%s; takes effect at the next tick', n.name,
                          CASE WHEN n.enabled THEN 'enabled' ELSE 'disabled' END,
                          CASE WHEN args ? 'params' THEN ' with updated parameters' ELSE '' END),
        'summary', format('%s: enabled %s -> %s, interval %s h -> %s h, params %s', n.name, m.enabled, n.enabled,
                          m.interval_hours, n.interval_hours, n.params::text));
END $$;

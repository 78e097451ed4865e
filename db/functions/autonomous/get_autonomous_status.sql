-- get_autonomous_status: the leader of the monitor process and every monitor's state from the
-- tables (monitors, monitor_runs, monitor_alerts, monitor_leader).
CREATE OR REPLACE FUNCTION csmcp.tool_get_autonomous_status(args jsonb, principal text)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
    l jsonb := csmcp.monitor_leader_info();
    w jsonb;
    n_en integer;
    n_open integer;
BEGIN
    SELECT jsonb_object_agg(m.name, csmcp.auto_worker_status(m) ORDER BY m.position), count(*) FILTER (WHERE m.enabled)
    INTO w, n_en FROM monitors m;
    SELECT count(*) INTO n_open FROM monitor_alerts WHERE resolved_at IS NULL;
    RETURN jsonb_build_object(
        'enabled', n_en > 0,
        'running', (l->>'up')::boolean,
        'leader', l,
        'timestamp', now(),
        'workers', coalesce(w, '{}'),
        'enabled_workers', n_en,
        'open_alerts', n_open,
        'summary', format('%s; %s of %s monitors enabled; %s open alerts',
                          CASE WHEN (l->>'up')::boolean
                               THEN format('leader %s pid %s since %s', l->>'host', l->>'pid', l->>'since')
                               ELSE 'no monitor leader is running' END,
                          n_en, (SELECT count(*) FROM monitors), n_open));
END $$;

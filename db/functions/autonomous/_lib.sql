-- autonomous/_lib.sql - what the five autonomous-control tools show of a monitor.

-- One monitor's status from the tables: enabled, interval, last run, next run, counts.
CREATE OR REPLACE FUNCTION csmcp.auto_worker_status(m monitors) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'name', m.name, 'enabled', m.enabled, 'interval_hours', m.interval_hours,
        'interval_seconds', csmcp.monitor_interval_s(m),
        'last_run', (SELECT jsonb_build_object('run_id', r.run_id, 'trigger', r.trigger, 'status', r.status,
                                               'started_at', r.started_at, 'finished_at', r.finished_at,
                                               'alerts', r.alerts, 'alerts_opened', r.alerts_opened,
                                               'alerts_resolved', r.alerts_resolved, 'error', r.error)
                     FROM monitor_runs r WHERE r.monitor = m.name ORDER BY r.started_at DESC, r.run_id DESC LIMIT 1),
        'next_run_at', CASE WHEN NOT m.enabled THEN NULL
                            WHEN EXISTS (SELECT 1 FROM monitor_runs r WHERE r.monitor = m.name AND r.status <> 'failed'
                                            AND r.slot = csmcp.monitor_slot(m, now()))
                            THEN to_timestamp((csmcp.monitor_slot(m, now()) + 1) * csmcp.monitor_interval_s(m))
                            ELSE now() END,
        'run_count', (SELECT count(*) FROM monitor_runs r WHERE r.monitor = m.name AND r.status = 'ok'),
        'error_count', (SELECT count(*) FROM monitor_runs r WHERE r.monitor = m.name AND r.status = 'failed'),
        'alert_count', (SELECT count(*) FROM monitor_alerts a WHERE a.monitor = m.name AND a.resolved_at IS NULL),
        'alerts_total', (SELECT count(*) FROM monitor_alerts a WHERE a.monitor = m.name))
$$;

-- Validated parameters for a monitor: every key known, typed and in range. Returns the merge of
-- the stored params and p_new.
CREATE OR REPLACE FUNCTION csmcp.auto_validate_params(p_monitor text, p_old jsonb, p_new jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    spec jsonb := csmcp.monitor_param_spec(p_monitor);
    k text;
    v jsonb;
    s jsonb;
BEGIN
    FOR k, v IN SELECT * FROM jsonb_each(coalesce(p_new, '{}')) LOOP
        s := spec -> k;
        IF s IS NULL THEN
            PERFORM csmcp.invalid(format('params.%s: not a parameter of %s (parameters: %s)', k, p_monitor,
                                         (SELECT string_agg(x, ', ' ORDER BY x) FROM jsonb_object_keys(spec) x)));
        END IF;
        IF s->>'type' = 'boolean' THEN
            IF jsonb_typeof(v) <> 'boolean' THEN
                PERFORM csmcp.invalid(format('params.%s: must be true or false', k));
            END IF;
        ELSE
            IF jsonb_typeof(v) <> 'number' THEN
                PERFORM csmcp.invalid(format('params.%s: must be a number', k));
            END IF;
            IF s->>'type' = 'integer' AND (v::text)::numeric <> trunc((v::text)::numeric) THEN
                PERFORM csmcp.invalid(format('params.%s: must be a whole number', k));
            END IF;
            IF (v::text)::numeric < (s->>'min')::numeric OR (v::text)::numeric > (s->>'max')::numeric THEN
                PERFORM csmcp.invalid(format('params.%s: must be between %s and %s', k, s->>'min', s->>'max'));
            END IF;
        END IF;
    END LOOP;
    RETURN coalesce(p_old, '{}') || coalesce(p_new, '{}');
END $$;

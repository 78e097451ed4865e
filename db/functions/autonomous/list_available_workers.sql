-- list_available_workers: every monitor with its enabled flag, interval and description.
CREATE OR REPLACE FUNCTION csmcp.tool_list_available_workers(args jsonb, principal text)
RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'autonomous_enabled', bool_or(m.enabled),
        'workers', jsonb_agg(jsonb_build_object('name', m.name, 'enabled', m.enabled, 'interval_hours', m.interval_hours,
                                                'description', m.description) ORDER BY m.position, m.name),
        'total_workers', count(*),
        'enabled_workers', count(*) FILTER (WHERE m.enabled),
        'summary', format('%s monitors, %s enabled: %s', count(*), count(*) FILTER (WHERE m.enabled),
                          string_agg(m.name || CASE WHEN m.enabled THEN '' ELSE ' (disabled)' END, ', ' ORDER BY m.position)))
    FROM monitors m
$$;

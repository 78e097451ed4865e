-- resource.sql - the alerts resources of MCP (worker/alerts.c): csmcp://alerts = every open
-- alert (newest first, at most 200), csmcp://alerts/<client_id> = that account's open alerts.
-- An unknown account raises P0002 (the worker answers "Resource not found").
CREATE OR REPLACE FUNCTION csmcp.alerts_resource(p_uri text) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_client text;
    v jsonb;
BEGIN
    IF p_uri = 'csmcp://alerts' THEN
        SELECT coalesce(jsonb_agg(csmcp.monitor_alert_json(a) ORDER BY a.created_at DESC, a.alert_id DESC), '[]') INTO v
        FROM (SELECT * FROM monitor_alerts WHERE resolved_at IS NULL ORDER BY created_at DESC, alert_id DESC LIMIT 200) a;
        RETURN jsonb_build_object('uri', p_uri, 'open_alerts', (SELECT count(*) FROM monitor_alerts WHERE resolved_at IS NULL),
                                  'alerts', v);
    END IF;
    v_client := substr(p_uri, length('csmcp://alerts/') + 1);
    IF left(p_uri, length('csmcp://alerts/')) <> 'csmcp://alerts/' OR v_client !~ '^[A-Za-z0-9_-]{1,100}$'
       OR NOT EXISTS (SELECT 1 FROM accounts WHERE client_id = v_client) THEN
        RAISE EXCEPTION 'resource % not found', p_uri USING ERRCODE = 'P0002';
    END IF;
    SELECT coalesce(jsonb_agg(csmcp.monitor_alert_json(a) ORDER BY a.created_at DESC, a.alert_id DESC), '[]') INTO v
    FROM monitor_alerts a WHERE a.client_id = v_client AND a.resolved_at IS NULL;
    RETURN jsonb_build_object('uri', p_uri, 'client_id', v_client, 'open_alerts', jsonb_array_length(v), 'alerts', v);
END $$;

-- trigger_worker_now: runs one monitor now, in this call's transaction, and returns the run.
-- Refused when no monitor leader is up. The run takes the monitor's run lock, so it never
-- interleaves with the leader's scheduled run of the same monitor; it has no interval slot, so
-- it does not replace the scheduled run (docs/monitors.md "Manual runs").
CREATE OR REPLACE FUNCTION csmcp.tool_trigger_worker_now(args jsonb, principal text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    m monitors := csmcp.monitor_require(csmcp.arg_text(args, 'worker_name', NULL));
    r jsonb;
BEGIN
    r := csmcp.monitor_run_manual(m.name, coalesce(nullif(principal, ''), 'anonymous'));
    RETURN jsonb_build_object(
        'status', 'ok',
        'worker', m.name,
        'run_id', (r->>'run_id')::bigint,
        'timestamp', r->'started_at',
        'duration_seconds', (r->>'duration_seconds')::numeric,
        'data', jsonb_build_object('conditions', r->'conditions', 'alerts_opened', r->'alerts_opened',
                                   'alerts_resolved', r->'alerts_resolved', 'open_alerts', r->'open_alerts',
                                   'opened_alert_ids', r->'opened_alert_ids',
                                   'notifications_queued', r->'notifications_queued', 'alerts', r->'alerts',
                                   'side_work', r->'side_work'),
        'summary', format('%s ran (run %s, %s s): %s conditions, %s alerts opened, %s resolved, %s open',
                          m.name, r->>'run_id', r->>'duration_seconds', r->>'conditions', r->>'alerts_opened',
                          r->>'alerts_resolved', r->>'open_alerts'));
END $$;

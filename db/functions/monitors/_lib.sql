-- monitors/_lib.sql - the engine of the autonomous monitors (docs/monitors.md).
--
-- Who calls what:
--   the monitor process (csmcp-worker --role monitor, worker/monitor.c), on its one connection:
--     SELECT pg_try_advisory_lock(csmcp.monitor_lock_key())      leadership (session lock)
--     SELECT csmcp.monitor_lead(host, pid)                        after taking the lock
--     SELECT csmcp.monitor_heartbeat(host, pid)                   every tick while leading
--     SELECT run_id, monitor FROM csmcp.monitor_claim(host, pid)  commits one 'running' row per due monitor
--     SELECT csmcp.monitor_execute(run_id)                        one run = one transaction
--   trigger_worker_now: csmcp.monitor_run_manual(monitor, principal) in the tool's transaction.
--
-- A run evaluates the monitor's rule (csmcp.mon_eval_<monitor>(params) → the conditions that hold
-- now: kind, subject, client_id, severity, message, detail), opens an alert for each condition
-- without an open one (monitor, kind, subject), refreshes those still open, resolves the open
-- alerts whose condition no longer holds, does the monitor's side work (stored trigger rules of
-- other tools), queues a notification per opened alert in the outbox (slack and webhook, when
-- enabled) and finishes its monitor_runs row - all in one transaction. Runs of one monitor are
-- serialised by a transaction advisory lock (monitor_lock_key, hashtext(monitor)).

CREATE OR REPLACE FUNCTION csmcp.monitor_lock_key() RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$ SELECT 1668508013::bigint $$; -- 'csmm'

CREATE OR REPLACE FUNCTION csmcp.monitor_interval_s(m monitors) RETURNS integer
LANGUAGE sql IMMUTABLE AS $$ SELECT coalesce(m.interval_seconds, m.interval_hours * 3600) $$;

-- The interval slot a scheduled run at time t belongs to.
CREATE OR REPLACE FUNCTION csmcp.monitor_slot(m monitors, t timestamptz) RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$ SELECT floor(extract(epoch FROM t) / csmcp.monitor_interval_s(m))::bigint $$;

-- The backend holding the leader lock, or NULL.
CREATE OR REPLACE FUNCTION csmcp.monitor_lock_holder() RETURNS integer
LANGUAGE sql STABLE AS $$
    -- pg_locks shows the whole cluster: an advisory lock belongs to one database, and another
    -- csmcp database on the same server (staging beside production, the parallel test groups)
    -- has its own leader.
    SELECT pid FROM pg_locks
    WHERE locktype = 'advisory' AND granted AND objsubid = 1
      AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND classid = (csmcp.monitor_lock_key() >> 32)::oid AND objid = (csmcp.monitor_lock_key() & 4294967295)::oid
    LIMIT 1
$$;

-- {up, host, pid, since, heartbeat_at}: up when the backend named by monitor_leader holds the lock.
CREATE OR REPLACE FUNCTION csmcp.monitor_leader_info() RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN l.id IS NULL OR h.pid IS NULL OR h.pid <> l.backend_pid THEN
                    jsonb_build_object('up', h.pid IS NOT NULL, 'host', NULL, 'pid', NULL, 'since', NULL,
                                       'heartbeat_at', NULL)
                ELSE jsonb_build_object('up', true, 'host', l.host, 'pid', l.pid, 'since', l.since,
                                        'heartbeat_at', l.heartbeat_at) END
    FROM (SELECT csmcp.monitor_lock_holder() AS pid) h
    LEFT JOIN monitor_leader l ON true
$$;

CREATE OR REPLACE FUNCTION csmcp.monitor_require_lock() RETURNS void
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF csmcp.monitor_lock_holder() IS DISTINCT FROM pg_backend_pid() THEN
        RAISE EXCEPTION 'this session does not hold the monitor leader lock' USING ERRCODE = '55000';
    END IF;
END $$;

-- Runs left 'running' by a process or connection that is gone: failed, "interrupted".
CREATE OR REPLACE FUNCTION csmcp.monitor_reap_interrupted() RETURNS integer
LANGUAGE sql AS $$
    WITH r AS (
        UPDATE monitor_runs SET status = 'failed', finished_at = now(),
               error = format('interrupted: the monitor process (host %s pid %s) or its database session ended during the run',
                              coalesce(host, '?'), coalesce(pid::text, '?'))
        WHERE status = 'running' AND (backend_pid IS NULL OR backend_pid NOT IN (SELECT pid FROM pg_stat_activity))
        RETURNING 1)
    SELECT count(*)::integer FROM r
$$;

-- Called by the process that has just taken the leader lock.
CREATE OR REPLACE FUNCTION csmcp.monitor_lead(p_host text, p_pid integer) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE n integer;
BEGIN
    PERFORM csmcp.monitor_require_lock();
    INSERT INTO monitor_leader (id, host, pid, backend_pid, since, heartbeat_at)
    VALUES (true, p_host, p_pid, pg_backend_pid(), now(), now())
    ON CONFLICT (id) DO UPDATE SET host = EXCLUDED.host, pid = EXCLUDED.pid, backend_pid = EXCLUDED.backend_pid,
                                   since = now(), heartbeat_at = now();
    n := csmcp.monitor_reap_interrupted();
    RETURN jsonb_build_object('leader', p_host || ':' || p_pid, 'interrupted_runs_failed', n);
END $$;

CREATE OR REPLACE FUNCTION csmcp.monitor_heartbeat(p_host text, p_pid integer) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM csmcp.monitor_require_lock();
    UPDATE monitor_leader SET heartbeat_at = now() WHERE backend_pid = pg_backend_pid();
END $$;

-- Claims every due scheduled run and commits it as 'running' (the caller runs each with
-- monitor_execute). Due: enabled, no running or succeeded run in the current slot, and no run of
-- the monitor failed within the last min(60 s, interval) (a failing monitor is retried, not spun;
-- a run interrupted by a process death is retried at once).
CREATE OR REPLACE FUNCTION csmcp.monitor_claim(p_host text, p_pid integer)
RETURNS TABLE (run_id bigint, monitor text) LANGUAGE plpgsql AS $$
BEGIN
    PERFORM csmcp.monitor_require_lock();
    PERFORM csmcp.monitor_reap_interrupted();
    RETURN QUERY
    INSERT INTO monitor_runs AS r (monitor, slot, trigger, host, pid, backend_pid)
    SELECT m.name, csmcp.monitor_slot(m, now()), 'schedule', p_host, p_pid, pg_backend_pid()
    FROM monitors m
    WHERE m.enabled
      AND NOT EXISTS (SELECT 1 FROM monitor_runs x WHERE x.monitor = m.name AND x.slot = csmcp.monitor_slot(m, now())
                                                     AND x.status <> 'failed')
      AND NOT EXISTS (SELECT 1 FROM monitor_runs x WHERE x.monitor = m.name AND x.status = 'failed'
                        AND x.error NOT LIKE 'interrupted:%'
                        AND x.finished_at > now() - make_interval(secs => least(60, csmcp.monitor_interval_s(m))))
    ORDER BY m.position, m.name
    ON CONFLICT DO NOTHING
    RETURNING r.run_id, r.monitor;
END $$;

-- The conditions of one monitor with its parameters.
CREATE OR REPLACE FUNCTION csmcp.monitor_eval(p_monitor text, p jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE found jsonb;
BEGIN
    EXECUTE format('SELECT coalesce(jsonb_agg(to_jsonb(e) ORDER BY e.kind, e.subject), ''[]'') FROM csmcp.%I($1) e',
                   'mon_eval_' || p_monitor)
    INTO found USING p;
    RETURN found;
END $$;

-- Opens, refreshes and resolves the monitor's alerts for the conditions found by run p_run_id.
-- Returns {opened: [alert ids], refreshed: n, resolved: n}.
CREATE OR REPLACE FUNCTION csmcp.monitor_apply(p_monitor text, p_run_id bigint, p_found jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    opened bigint[];
    n_ref integer;
    n_res integer;
BEGIN
    WITH f AS (
        SELECT e->>'kind' AS kind, e->>'subject' AS subject, e->>'client_id' AS client_id, e->>'severity' AS severity,
               e->>'message' AS message, coalesce(e->'detail', '{}') AS detail
        FROM jsonb_array_elements(p_found) e
    ), up AS (
        INSERT INTO monitor_alerts AS a (monitor, run_id, client_id, severity, message, kind, subject, detail, last_run_id)
        SELECT p_monitor, p_run_id, f.client_id, f.severity, f.message, f.kind, f.subject, f.detail, p_run_id FROM f
        ON CONFLICT (monitor, kind, subject) WHERE resolved_at IS NULL
        DO UPDATE SET severity = EXCLUDED.severity, message = EXCLUDED.message, detail = EXCLUDED.detail,
                      last_run_id = EXCLUDED.last_run_id, last_seen_at = now()
        RETURNING a.alert_id, (a.xmax = 0) AS inserted
    )
    SELECT coalesce(array_agg(alert_id ORDER BY alert_id) FILTER (WHERE inserted), '{}'),
           count(*) FILTER (WHERE NOT inserted)
    INTO opened, n_ref FROM up;

    WITH res AS (
        UPDATE monitor_alerts a SET resolved_at = now(), resolved_run_id = p_run_id
        WHERE a.monitor = p_monitor AND a.resolved_at IS NULL
          AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements(p_found) e
                          WHERE e->>'kind' = a.kind AND e->>'subject' = a.subject)
        RETURNING 1)
    SELECT count(*) INTO n_res FROM res;
    RETURN jsonb_build_object('opened', to_jsonb(opened), 'refreshed', n_ref, 'resolved', n_res);
END $$;

-- One alert as the tools and the alerts resource show it.
CREATE OR REPLACE FUNCTION csmcp.monitor_alert_json(a monitor_alerts) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('alert_id', a.alert_id, 'monitor', a.monitor, 'kind', a.kind, 'subject', a.subject,
                              'client_id', a.client_id, 'severity', a.severity, 'message', a.message, 'detail', a.detail,
                              'created_at', a.created_at, 'last_seen_at', a.last_seen_at, 'resolved_at', a.resolved_at,
                              'acknowledged_at', a.acknowledged_at)
$$;

-- Queues the notifications of newly opened alerts (slack, webhook; nothing for a channel that is
-- not enabled) and tells listening workers (NOTIFY csmcp_alerts, delivered at commit).
CREATE OR REPLACE FUNCTION csmcp.monitor_notify(p_alert_ids bigint[]) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    a monitor_alerts;
    n integer := 0;
    r jsonb;
BEGIN
    FOR a IN SELECT * FROM monitor_alerts WHERE alert_id = ANY (p_alert_ids) ORDER BY alert_id LOOP
        r := csmcp.outbox_enqueue('slack',
                jsonb_build_object('text', format('[%s] %s: %s', upper(a.severity), a.monitor, a.message),
                                   'alert', csmcp.monitor_alert_json(a)),
                'alert:' || a.alert_id || ':slack', 'monitor:' || a.monitor, a.client_id, a.alert_id::text);
        IF r ? 'outbox_id' THEN n := n + 1; END IF;
        r := csmcp.outbox_enqueue('webhook', jsonb_build_object('event', 'alert.opened', 'alert', csmcp.monitor_alert_json(a)),
                'alert:' || a.alert_id || ':webhook', 'monitor:' || a.monitor, a.client_id, a.alert_id::text);
        IF r ? 'outbox_id' THEN n := n + 1; END IF;
        PERFORM pg_notify('csmcp_alerts', json_build_object('alert_id', a.alert_id, 'monitor', a.monitor,
                                                            'client_id', a.client_id)::text);
    END LOOP;
    RETURN n;
END $$;

-- The body of a run (in the caller's transaction): evaluate, apply, side work, notify, finish.
CREATE OR REPLACE FUNCTION csmcp.monitor_run_body(p_run_id bigint) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    r monitor_runs;
    m monitors;
    found jsonb;
    applied jsonb;
    side jsonb := NULL;
    open_now integer;
    queued integer;
    res jsonb;
BEGIN
    SELECT * INTO r FROM monitor_runs WHERE run_id = p_run_id;
    SELECT * INTO m FROM monitors WHERE name = r.monitor;
    PERFORM pg_advisory_xact_lock(csmcp.monitor_lock_key()::integer, hashtext(m.name));
    found := csmcp.monitor_eval(m.name, m.params);
    applied := csmcp.monitor_apply(m.name, p_run_id, found);
    IF to_regprocedure(format('csmcp.mon_side_%s(jsonb,text)', m.name)) IS NOT NULL THEN
        EXECUTE format('SELECT csmcp.%I($1, $2)', 'mon_side_' || m.name) INTO side USING m.params, 'monitor:' || m.name;
    END IF;
    queued := csmcp.monitor_notify(ARRAY(SELECT jsonb_array_elements_text(applied->'opened')::bigint));
    SELECT count(*) INTO open_now FROM monitor_alerts WHERE monitor = m.name AND resolved_at IS NULL;
    res := jsonb_build_object(
        'conditions', jsonb_array_length(found),
        'alerts_opened', jsonb_array_length(applied->'opened'),
        'alerts_resolved', (applied->>'resolved')::integer,
        'open_alerts', open_now,
        'opened_alert_ids', applied->'opened',
        'notifications_queued', queued,
        'alerts', (SELECT coalesce(jsonb_agg(jsonb_build_object('kind', e->>'kind', 'subject', e->>'subject',
                                                                'client_id', e->>'client_id', 'severity', e->>'severity',
                                                                'message', e->>'message')), '[]')
                   FROM (SELECT e FROM jsonb_array_elements(found) e LIMIT 50) x));
    IF side IS NOT NULL THEN
        res := res || jsonb_build_object('side_work', side);
    END IF;
    UPDATE monitor_runs SET status = 'ok', finished_at = clock_timestamp(), alerts = jsonb_array_length(found),
           alerts_opened = jsonb_array_length(applied->'opened'), alerts_resolved = (applied->>'resolved')::integer,
           result = res - 'alerts'
    WHERE run_id = p_run_id;
    RETURN res;
END $$;

-- One scheduled run claimed by monitor_claim: the whole run is this statement's transaction. An
-- error rolls the work back (savepoint) and records the run as failed with the message.
CREATE OR REPLACE FUNCTION csmcp.monitor_execute(p_run_id bigint) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    r monitor_runs;
    res jsonb;
    msg text;
BEGIN
    SELECT * INTO r FROM monitor_runs WHERE run_id = p_run_id FOR UPDATE;
    IF NOT FOUND OR r.status <> 'running' THEN
        RETURN jsonb_build_object('run_id', p_run_id, 'status', coalesce(r.status, 'missing'), 'skipped', true);
    END IF;
    BEGIN
        res := csmcp.monitor_run_body(p_run_id);
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT;
        UPDATE monitor_runs SET status = 'failed', finished_at = clock_timestamp(), error = left(msg, 1000)
        WHERE run_id = p_run_id;
        RETURN jsonb_build_object('run_id', p_run_id, 'monitor', r.monitor, 'status', 'failed', 'error', msg);
    END;
    RETURN jsonb_build_object('run_id', p_run_id, 'monitor', r.monitor, 'status', 'ok') || (res - 'alerts' - 'opened_alert_ids');
END $$;

-- trigger_worker_now: a manual run in the caller's transaction (slot NULL: it does not consume
-- the schedule's slot). Refused when no leader holds the lock (the monitors are not running).
CREATE OR REPLACE FUNCTION csmcp.monitor_run_manual(p_monitor text, p_principal text) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_run bigint;
    t0 timestamptz := clock_timestamp();
    res jsonb;
    l jsonb := csmcp.monitor_leader_info();
BEGIN
    IF NOT (l->>'up')::boolean THEN
        RAISE EXCEPTION 'autonomous scheduler not running: no csmcp-monitor process holds the leader lock (monitor.enabled, docs/monitors.md)'
            USING ERRCODE = 'P0001';
    END IF;
    INSERT INTO monitor_runs (monitor, trigger, requested_by, host, pid, backend_pid)
    VALUES (p_monitor, 'manual', p_principal, 'tool', NULL, pg_backend_pid()) RETURNING run_id INTO v_run;
    res := csmcp.monitor_run_body(v_run);
    RETURN jsonb_build_object('run_id', v_run, 'started_at', t0,
                              'duration_seconds', round(extract(epoch FROM clock_timestamp() - t0)::numeric, 3),
                              'leader', l) || res;
END $$;

-- Parameter specification per monitor: {param: {type, min?, max?, default}}.
CREATE OR REPLACE FUNCTION csmcp.monitor_param_spec(p_monitor text) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE p_monitor
        WHEN 'churn_risk_monitor' THEN '{"health_score_threshold": {"type": "integer", "min": 0, "max": 100, "default": 60},
                                        "alert_on_critical": {"type": "boolean", "default": true}}'
        WHEN 'usage_drop_alerts' THEN '{"drop_threshold_percent": {"type": "number", "min": 1, "max": 100, "default": 30},
                                       "check_window_days": {"type": "integer", "min": 1, "max": 90, "default": 7}}'
        WHEN 'onboarding_progress' THEN '{"days_stuck_threshold": {"type": "integer", "min": 1, "max": 365, "default": 7},
                                         "completion_threshold_percent": {"type": "number", "min": 0, "max": 100, "default": 50}}'
        WHEN 'nps_csat_monitor' THEN '{"nps_alert_threshold": {"type": "integer", "min": 0, "max": 10, "default": 6},
                                      "csat_alert_threshold": {"type": "integer", "min": 1, "max": 5, "default": 3},
                                      "lookback_days": {"type": "integer", "min": 1, "max": 365, "default": 90}}'
        WHEN 'support_sla_tracker' THEN '{"sla_breach_alert": {"type": "boolean", "default": true},
                                         "hours_until_breach": {"type": "number", "min": 0, "max": 168, "default": 2}}'
        WHEN 'upsell_detector' THEN '{"usage_threshold_percent": {"type": "number", "min": 1, "max": 100, "default": 80},
                                     "health_score_min": {"type": "integer", "min": 0, "max": 100, "default": 75}}'
        WHEN 'retention_analyzer' THEN '{"cohort_size_min": {"type": "integer", "min": 1, "max": 100000, "default": 10},
                                        "retention_rate_threshold": {"type": "number", "min": 0, "max": 1, "default": 0.85}}'
    END::jsonb
$$;

-- A parameter of a run: the stored value, else the default of the spec.
CREATE OR REPLACE FUNCTION csmcp.mon_p(p jsonb, p_monitor text, p_key text) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(p -> p_key, csmcp.monitor_param_spec(p_monitor) -> p_key -> 'default')
$$;

CREATE OR REPLACE FUNCTION csmcp.monitor_require(p_name text) RETURNS monitors
LANGUAGE plpgsql STABLE AS $$
DECLARE m monitors;
BEGIN
    SELECT * INTO m FROM monitors WHERE name = p_name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'worker % not found (available: %)', p_name,
            (SELECT string_agg(name, ', ' ORDER BY position, name) FROM monitors) USING ERRCODE = 'P0002';
    END IF;
    RETURN m;
END $$;

-- The account is live (not churned).
CREATE OR REPLACE FUNCTION csmcp.mon_live(a accounts) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$ SELECT a.status <> 'churned' AND a.lifecycle_stage <> 'churned' $$;

-- 0261_monitors.sql - the seven autonomous monitors of seed-original.md §4 (names, enabled flags,
-- intervals, parameters), runs keyed by interval slot, alerts that deduplicate and resolve
-- themselves, and the leader row of the monitor process (docs/monitors.md).

-- References to a monitor follow a rename.
ALTER TABLE onboarding_automation_triggers DROP CONSTRAINT onboarding_automation_triggers_monitor_fkey,
    ADD CONSTRAINT onboarding_automation_triggers_monitor_fkey FOREIGN KEY (monitor) REFERENCES monitors
        ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE monitor_runs DROP CONSTRAINT monitor_runs_monitor_fkey,
    ADD CONSTRAINT monitor_runs_monitor_fkey FOREIGN KEY (monitor) REFERENCES monitors ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE monitor_alerts DROP CONSTRAINT monitor_alerts_monitor_fkey,
    ADD CONSTRAINT monitor_alerts_monitor_fkey FOREIGN KEY (monitor) REFERENCES monitors ON DELETE CASCADE ON UPDATE CASCADE;

UPDATE monitors SET name = 'usage_drop_alerts' WHERE name = 'usage_drop_monitor';
UPDATE monitors SET name = 'support_sla_tracker' WHERE name = 'support_sla_monitor';
UPDATE monitors SET name = 'onboarding_progress' WHERE name = 'onboarding_monitor';
-- Renewal risk is evaluated by the retention trigger rules (renewal_risk) and track_renewals;
-- §4 has no renewal worker.
DELETE FROM monitors WHERE name = 'renewal_monitor';
INSERT INTO monitors (name, description) VALUES ('retention_analyzer', '-') ON CONFLICT (name) DO NOTHING;

-- An operator override of the interval in seconds (SQL only; tests use it to run many intervals
-- quickly). NULL = interval_hours.
ALTER TABLE monitors ADD COLUMN interval_seconds integer CHECK (interval_seconds BETWEEN 1 AND 2592000),
                     ADD COLUMN updated_by text NOT NULL DEFAULT 'system',
                     ADD COLUMN position integer NOT NULL DEFAULT 0;

UPDATE monitors m SET enabled = v.enabled, interval_hours = v.hours, params = v.params::jsonb, description = v.descr,
                      position = v.pos
FROM (VALUES
    ('churn_risk_monitor', true, 4, '{"health_score_threshold": 60, "alert_on_critical": true}', 1,
     'Accounts whose health score is below the threshold (critical below 50); evaluates the due retention trigger rules and the health_score_change onboarding triggers'),
    ('usage_drop_alerts', true, 6, '{"drop_threshold_percent": 30, "check_window_days": 7}', 2,
     'Accounts whose mean daily active users fell by the threshold % or more between the last two windows of check_window_days'),
    ('onboarding_progress', true, 24, '{"days_stuck_threshold": 7, "completion_threshold_percent": 50}', 3,
     'Onboarding milestones overdue by days_stuck_threshold days or more, plans below the completion threshold at their midpoint, and the task_overdue / blocker_identified automation triggers'),
    ('nps_csat_monitor', false, 24, '{"nps_alert_threshold": 6, "csat_alert_threshold": 3, "lookback_days": 90}', 4,
     'Accounts whose latest NPS response is a detractor (score <= threshold) or whose latest CSAT response is <= threshold'),
    ('support_sla_tracker', true, 2, '{"sla_breach_alert": true, "hours_until_breach": 2}', 5,
     'Open tickets whose SLA is breached or breaches within hours_until_breach (the support SLA rule)'),
    ('upsell_detector', false, 168, '{"usage_threshold_percent": 80, "health_score_min": 75}', 6,
     'Active accounts using the threshold % or more of their licensed seats with a health score >= health_score_min'),
    ('retention_analyzer', false, 168, '{"cohort_size_min": 10, "retention_rate_threshold": 0.85}', 7,
     'Cohorts by quarter of first contract start with >= cohort_size_min accounts whose 12-month logo retention is below the threshold')
) AS v(name, enabled, hours, params, pos, descr)
WHERE m.name = v.name;

-- Runs: a scheduled run belongs to one interval slot (floor(epoch / interval seconds)); at most
-- one run per (monitor, slot) that is running or succeeded. A failed run frees its slot for a
-- retry. The claiming connection's backend pid identifies runs whose process died.
ALTER TABLE monitor_runs
    ADD COLUMN slot            bigint,
    ADD COLUMN trigger         text NOT NULL DEFAULT 'schedule' CHECK (trigger IN ('schedule', 'manual')),
    ADD COLUMN requested_by    text,
    ADD COLUMN host            text,
    ADD COLUMN pid             integer,
    ADD COLUMN backend_pid     integer,
    ADD COLUMN alerts_opened   integer NOT NULL DEFAULT 0,
    ADD COLUMN alerts_resolved integer NOT NULL DEFAULT 0,
    ADD COLUMN result          jsonb;
CREATE UNIQUE INDEX monitor_runs_slot_uq ON monitor_runs (monitor, slot) WHERE slot IS NOT NULL AND status <> 'failed';
CREATE INDEX monitor_runs_monitor_idx ON monitor_runs (monitor, started_at DESC);
CREATE INDEX monitor_runs_running_idx ON monitor_runs (run_id) WHERE status = 'running';

-- Alerts: one open alert per (monitor, kind, subject); subject is what the alert is about (the
-- account, a ticket, a milestone, a plan, a cohort). An alert whose condition no longer holds at
-- a run is resolved by that run.
ALTER TABLE monitor_alerts
    ADD COLUMN kind            text NOT NULL DEFAULT 'alert',
    ADD COLUMN subject         text NOT NULL DEFAULT '',
    ADD COLUMN detail          jsonb NOT NULL DEFAULT '{}',
    ADD COLUMN last_run_id     bigint REFERENCES monitor_runs ON DELETE SET NULL,
    ADD COLUMN last_seen_at    timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN resolved_at     timestamptz,
    ADD COLUMN resolved_run_id bigint REFERENCES monitor_runs ON DELETE SET NULL;
ALTER TABLE monitor_alerts ALTER COLUMN kind DROP DEFAULT, ALTER COLUMN subject DROP DEFAULT;
CREATE UNIQUE INDEX monitor_alerts_open_uq ON monitor_alerts (monitor, kind, subject) WHERE resolved_at IS NULL;
CREATE INDEX monitor_alerts_created_idx ON monitor_alerts (created_at DESC);

-- The leader of the monitor process (one row). Leadership itself is the PostgreSQL session
-- advisory lock csmcp.monitor_lock_key() held by backend_pid; this row says who took it.
CREATE TABLE monitor_leader (
    id           boolean PRIMARY KEY DEFAULT true CHECK (id),
    host         text NOT NULL,
    pid          integer NOT NULL,
    backend_pid  integer NOT NULL,
    since        timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now()
);

-- 0230_onboarding.sql - what the onboarding & training tools (issue 15) store beyond
-- 0001_domain_schema.sql: plan timeline and time-to-first-value target, milestone template
-- codes, start dates and blockers, the automation triggers registered with the monitors,
-- per-attendee engagement, certification programs (required modules per level) and
-- certification history (who issued or revoked, why). Schema and data only; the tool
-- functions live in db/functions/onboarding/.

ALTER TABLE onboarding_plans
    ADD COLUMN timeline_weeks   integer CHECK (timeline_weeks BETWEEN 1 AND 52),
    ADD COLUMN ttfv_target_days integer CHECK (ttfv_target_days >= 0),
    ADD COLUMN cancelled_on     date,
    ADD COLUMN status_reason    text,
    ADD COLUMN created_by       text NOT NULL DEFAULT 'system',
    ADD COLUMN updated_at       timestamptz NOT NULL DEFAULT now();

-- The template milestone each row came from (M1..M6, see create_onboarding_plan's rules).
ALTER TABLE onboarding_milestones
    ADD COLUMN template_code    text CHECK (template_code IN ('M1', 'M2', 'M3', 'M4', 'M5', 'M6')),
    ADD COLUMN description      text,
    ADD COLUMN success_criteria text,
    ADD COLUMN started_on       date,
    ADD COLUMN blocker          text,
    ADD CHECK (status <> 'blocked' OR blocker IS NOT NULL);
UPDATE onboarding_milestones SET template_code = CASE name
    WHEN 'Kickoff & Setup' THEN 'M1' WHEN 'Core Training' THEN 'M2' WHEN 'Integration & First Value' THEN 'M3'
    WHEN 'Optimization & Success' THEN 'M4' WHEN 'Advanced Configuration' THEN 'M5' WHEN 'Technical Deep Dive' THEN 'M6' END;
UPDATE onboarding_milestones SET started_on = least(completed_on, due_date - 30)
WHERE status IN ('in_progress', 'completed') AND started_on IS NULL;

-- At most one open plan per account: a second create_onboarding_plan is refused, also when
-- two arrive at the same time (the loser's unique violation is turned into that refusal).
CREATE UNIQUE INDEX onboarding_plans_one_open ON onboarding_plans (client_id)
    WHERE status IN ('draft', 'scheduled', 'in_progress', 'delayed');
CREATE INDEX onboarding_plans_completed_idx ON onboarding_plans (completed_on) WHERE status = 'completed';
CREATE INDEX onboarding_plans_cancelled_idx ON onboarding_plans (cancelled_on) WHERE status = 'cancelled';
CREATE INDEX onboarding_tasks_milestone_idx ON onboarding_tasks (milestone_id);

-- Triggers an activated plan registered with the autonomous monitors (monitors.name).
CREATE TABLE onboarding_automation_triggers (
    plan_id       text NOT NULL REFERENCES onboarding_plans ON DELETE CASCADE,
    trigger_type  text NOT NULL CHECK (trigger_type IN ('milestone_completion', 'training_completion', 'integration_success',
                                                        'usage_milestone_reached', 'task_overdue', 'blocker_identified',
                                                        'health_score_change')),
    monitor       text NOT NULL REFERENCES monitors ON DELETE CASCADE,
    registered_at timestamptz NOT NULL DEFAULT now(),
    registered_by text NOT NULL DEFAULT 'system',
    PRIMARY KEY (plan_id, trigger_type)
);

-- Training: engagement measured per attendee (0..1), when results were recorded; session ids
-- train_session_<n> come from a sequence (unique under concurrent calls).
ALTER TABLE training_attendance
    ADD COLUMN engagement  numeric(4,3) CHECK (engagement BETWEEN 0 AND 1),
    ADD COLUMN recorded_at timestamptz NOT NULL DEFAULT now(),
    ADD CHECK (attended OR (score IS NULL AND rating IS NULL AND engagement IS NULL));
CREATE SEQUENCE training_session_seq START 1000;
CREATE INDEX training_sessions_client_idx ON training_sessions (client_id, scheduled_at);
CREATE INDEX training_attendance_email_idx ON training_attendance (lower(email));

-- Certification programs: the modules a user of the account must pass for a level.
CREATE TABLE certification_programs (
    client_id  text NOT NULL REFERENCES accounts ON DELETE CASCADE,
    level      text NOT NULL CHECK (level IN ('basic', 'intermediate', 'advanced', 'expert')),
    created_by text NOT NULL DEFAULT 'system',
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (client_id, level)
);
CREATE TABLE certification_program_modules (
    client_id text NOT NULL,
    level     text NOT NULL,
    module_id text NOT NULL REFERENCES training_modules,
    PRIMARY KEY (client_id, level, module_id),
    FOREIGN KEY (client_id, level) REFERENCES certification_programs ON DELETE CASCADE
);
ALTER TABLE certifications
    ADD COLUMN issued_by     text NOT NULL DEFAULT 'system',
    ADD COLUMN evidence      jsonb NOT NULL DEFAULT '[]',
    ADD COLUMN revoked_by    text,
    ADD COLUMN revoke_reason text;
-- One active certification per user and level (history keeps the revoked ones).
CREATE UNIQUE INDEX certifications_one_active ON certifications (client_id, lower(user_email), level)
    WHERE revoked_at IS NULL;

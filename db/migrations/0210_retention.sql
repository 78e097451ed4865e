-- 0210_retention.sql - retention & risk (issue 13): escalations and campaigns become real
-- workflows, risk assessments are stored, and automated-campaign trigger rules get a table the
-- monitor process evaluates (contract: worker/tools/retention/automate_retention_campaigns.json
-- "rules", and csmcp.retention_trigger_matches in db/functions/retention/_lib.sql).
--
-- Identifiers keep the original's shapes (esc_<n>, ret_<n>, auto_<n>) but the digits come from
-- sequences instead of a Unix timestamp, so two calls in the same second never collide.

CREATE SEQUENCE IF NOT EXISTS escalation_seq START 1001;
CREATE SEQUENCE IF NOT EXISTS retention_campaign_seq START 1001;
CREATE SEQUENCE IF NOT EXISTS retention_rule_seq START 1001;
CREATE SEQUENCE IF NOT EXISTS risk_assessment_seq START 1001;

-- Escalations: the ticket-like state machine open -> in_progress -> resolved -> closed.
ALTER TABLE escalations
    ADD COLUMN description text,
    ADD COLUMN created_by  text NOT NULL DEFAULT 'system',
    ADD COLUMN updated_at  timestamptz NOT NULL DEFAULT now(),
    ADD CONSTRAINT escalations_id_format CHECK (escalation_id ~ '^esc_[0-9]+$'),
    ADD CONSTRAINT escalations_closed_after_resolved CHECK (closed_at IS NULL OR (resolved_at IS NOT NULL AND closed_at >= resolved_at)),
    ADD CONSTRAINT escalations_state_times CHECK (
        (status IN ('open', 'in_progress') AND resolved_at IS NULL AND closed_at IS NULL)
        OR (status = 'resolved' AND resolved_at IS NOT NULL AND closed_at IS NULL)
        OR (status = 'closed' AND resolved_at IS NOT NULL AND closed_at IS NOT NULL));
CREATE INDEX IF NOT EXISTS escalations_open_idx ON escalations (status, opened_at) WHERE status IN ('open', 'in_progress');

-- Retention campaigns: one account per manual campaign (campaign_targets), actions with due dates.
ALTER TABLE retention_campaigns
    ADD COLUMN client_id           text REFERENCES accounts ON DELETE CASCADE,
    ADD COLUMN owner               text,
    ADD COLUMN rule_id             text,
    ADD COLUMN target_health_score integer CHECK (target_health_score BETWEEN 0 AND 100),
    ADD COLUMN target_date         date,
    ADD COLUMN completed_at        timestamptz,
    ADD COLUMN final_health_score  integer CHECK (final_health_score BETWEEN 0 AND 100),
    ADD COLUMN updated_at          timestamptz NOT NULL DEFAULT now(),
    ADD CONSTRAINT retention_campaigns_id_format CHECK (campaign_id ~ '^ret_[0-9]+$'),
    ADD CONSTRAINT retention_campaigns_type CHECK (campaign_type IN ('proactive_outreach', 'value_reinforcement', 'success_planning',
                                                                     'executive_engagement', 'adoption_drive', 'renewal_save')),
    ADD CONSTRAINT retention_campaigns_completed CHECK ((status = 'completed') = (completed_at IS NOT NULL));
CREATE INDEX IF NOT EXISTS retention_campaigns_client_idx ON retention_campaigns (client_id, created_at);
CREATE INDEX IF NOT EXISTS campaign_targets_client_idx ON campaign_targets (client_id, added_at);
ALTER TABLE campaign_actions
    ADD COLUMN seq      integer,
    ADD COLUMN owner    text,
    ADD COLUMN done_by  text,
    ADD COLUMN notes    text;
CREATE INDEX IF NOT EXISTS campaign_actions_campaign_idx ON campaign_actions (campaign_id, due_at);

-- Trigger rules of automate_retention_campaigns, evaluated by the monitor process.
CREATE TABLE retention_trigger_rules (
    rule_id              text PRIMARY KEY CHECK (rule_id ~ '^auto_[0-9]+$'),
    trigger_type         text NOT NULL CHECK (trigger_type IN ('health_score', 'usage_decline', 'nps_detractor', 'renewal_risk')),
    threshold            numeric NOT NULL,
    campaign_template    text NOT NULL CHECK (campaign_template IN ('standard_intervention', 'light_touch', 'aggressive_save')),
    campaign_type        text NOT NULL DEFAULT 'proactive_outreach',
    intervention_level   text NOT NULL CHECK (intervention_level IN ('light', 'standard', 'aggressive')),
    lookback_days        integer NOT NULL DEFAULT 30 CHECK (lookback_days BETWEEN 1 AND 365),
    check_interval_hours integer NOT NULL DEFAULT 24 CHECK (check_interval_hours BETWEEN 1 AND 720),
    cooldown_days        integer NOT NULL DEFAULT 30 CHECK (cooldown_days BETWEEN 0 AND 365),
    actions              jsonb NOT NULL,
    status               text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'paused', 'disabled')),
    created_by           text NOT NULL DEFAULT 'system',
    created_at           timestamptz NOT NULL DEFAULT now(),
    last_evaluated_at    timestamptz,
    last_match_count     integer,
    CHECK ((trigger_type = 'health_score' AND threshold BETWEEN 0 AND 100)
           OR (trigger_type = 'usage_decline' AND threshold > 0 AND threshold <= 100)
           OR (trigger_type = 'nps_detractor' AND threshold BETWEEN 0 AND 10)
           OR (trigger_type = 'renewal_risk' AND threshold BETWEEN 0 AND 100))
);
ALTER TABLE retention_campaigns ADD CONSTRAINT retention_campaigns_rule_fk
    FOREIGN KEY (rule_id) REFERENCES retention_trigger_rules ON DELETE SET NULL;

-- Risk assessments of score_risk_factors.
CREATE TABLE risk_assessments (
    assessment_id      text PRIMARY KEY CHECK (assessment_id ~ '^RA-[0-9]+$'),
    client_id          text NOT NULL REFERENCES accounts ON DELETE CASCADE,
    assessed_at        timestamptz NOT NULL DEFAULT now(),
    lookback_days      integer NOT NULL CHECK (lookback_days BETWEEN 1 AND 365),
    factors            jsonb NOT NULL,
    overall_risk_score integer NOT NULL CHECK (overall_risk_score BETWEEN 0 AND 100),
    risk_level         text NOT NULL CHECK (risk_level IN ('low', 'medium', 'high', 'critical')),
    churn_probability  numeric(3,2) NOT NULL CHECK (churn_probability BETWEEN 0.05 AND 0.95),
    assessed_by        text NOT NULL DEFAULT 'system'
);
CREATE INDEX risk_assessments_client_idx ON risk_assessments (client_id, assessed_at DESC);

-- Portfolio satisfaction windows (monitor_satisfaction without client_id) read by date.
CREATE INDEX IF NOT EXISTS nps_responded_idx ON nps_responses (responded_at);
CREATE INDEX IF NOT EXISTS csat_responded_idx ON csat_responses (responded_at);
CREATE INDEX IF NOT EXISTS lifecycle_churned_idx ON lifecycle_transitions (client_id, changed_at) WHERE to_stage = 'churned';

-- 0250_feedback.sql - feedback & product intelligence (issue 17): feedback is persisted with its
-- per-item sentiment, themes and routing; product insights keep their scoring; the customer's
-- response to a feedback item closes its loop; VoC reports and roadmap links are stored.
--
-- Ids keep the original's shapes (FB-<n>, PI-<n>, VOC-<n>) with digits from sequences, so two
-- calls in the same second never collide.
CREATE SEQUENCE IF NOT EXISTS feedback_seq START 100001;
CREATE SEQUENCE IF NOT EXISTS product_insight_seq START 1001;
CREATE SEQUENCE IF NOT EXISTS voc_report_seq START 1001;

ALTER TABLE feedback
    ADD COLUMN themes              text[] NOT NULL DEFAULT '{}',
    ADD COLUMN emotion             text NOT NULL DEFAULT 'neutral'
                                   CHECK (emotion IN ('frustrated', 'happy', 'confused', 'neutral')),
    ADD COLUMN positive_keywords   integer NOT NULL DEFAULT 0 CHECK (positive_keywords >= 0),
    ADD COLUMN negative_keywords   integer NOT NULL DEFAULT 0 CHECK (negative_keywords >= 0),
    ADD COLUMN follow_up_required  boolean NOT NULL DEFAULT false,
    ADD COLUMN escalation_required boolean NOT NULL DEFAULT false,
    ADD COLUMN metadata            jsonb NOT NULL DEFAULT '{}',
    ADD COLUMN response            text,
    ADD COLUMN responded_at        timestamptz,
    ADD COLUMN responded_by        text,
    ADD COLUMN created_by          text NOT NULL DEFAULT 'system',
    ADD CONSTRAINT feedback_follow_up_date CHECK (follow_up_required = (follow_up_by IS NOT NULL)),
    ADD CONSTRAINT feedback_response_time CHECK ((response IS NULL) = (responded_at IS NULL));
CREATE INDEX IF NOT EXISTS feedback_created_idx ON feedback (created_at);
CREATE INDEX IF NOT EXISTS feedback_followup_idx ON feedback (created_at) WHERE follow_up_required;

ALTER TABLE product_insights
    ADD COLUMN customer_impact       text,
    ADD COLUMN business_impact       text,
    ADD COLUMN recommended_action    text,
    ADD COLUMN urgency               text CHECK (urgency IN ('urgent', 'high', 'medium', 'normal')),
    ADD COLUMN executive_escalation  boolean NOT NULL DEFAULT false,
    ADD COLUMN estimated_effort      text,
    ADD COLUMN target_recipients     text[] NOT NULL DEFAULT '{}',
    ADD COLUMN roadmap_item          text,
    ADD COLUMN roadmap_status        text CHECK (roadmap_status IN ('under_review', 'planned', 'in_progress', 'released', 'declined')),
    ADD COLUMN roadmap_updated_at    timestamptz;
CREATE INDEX IF NOT EXISTS product_insights_created_idx ON product_insights (created_at);
CREATE INDEX IF NOT EXISTS product_insight_feedback_fb_idx ON product_insight_feedback (feedback_id);
CREATE INDEX IF NOT EXISTS product_insight_accounts_client_idx ON product_insight_accounts (client_id);

CREATE TABLE IF NOT EXISTS voc_reports (
    report_id       text PRIMARY KEY CHECK (report_id ~ '^VOC-[0-9]+$'),
    report_type     text NOT NULL CHECK (report_type IN ('weekly', 'monthly', 'quarterly', 'annual')),
    client_id       text REFERENCES accounts ON DELETE CASCADE,
    period_start    date NOT NULL,
    period_end      date NOT NULL CHECK (period_end >= period_start),
    target_audience text NOT NULL CHECK (target_audience IN ('executive', 'product', 'cs_team', 'all')),
    content         jsonb NOT NULL,
    created_by      text NOT NULL DEFAULT 'system',
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS voc_reports_created_idx ON voc_reports (created_at);

-- Configured benchmarks for track_cs_metrics (none by default: the portfolio's own trailing
-- 12-month value is the benchmark when a metric has no row here).
CREATE TABLE IF NOT EXISTS cs_metric_benchmarks (
    metric_type text PRIMARY KEY CHECK (metric_type IN ('nps', 'csat', 'ces', 'churn_rate', 'retention_rate',
                                                        'expansion_rate', 'time_to_value', 'feature_adoption',
                                                        'engagement_score', 'health_score', 'support_satisfaction')),
    value       numeric NOT NULL,
    source      text NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

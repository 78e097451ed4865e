-- 0001_domain_schema.sql - the customer-success domain: every table the 59 tools read or write.
--
-- Rules (fixing what the original got wrong, reference/seed-original.md §2, §10):
--   * every child row has a real foreign key to its parent; business ids are the primary keys;
--   * money is numeric(14,2), never float; rates and probabilities are numeric with CHECKs;
--   * enumerations are CHECK constraints, so impossible data is rejected at the door;
--   * relations (segment members, ticket comments, milestones, tasks, attendees, contributions)
--     are tables, not JSON blobs; jsonb is used only for free-form payloads nobody filters on.
-- Tool logic lives in SQL functions (schema csmcp, later migrations); tables live in public.
-- Security tables (api_keys, audit_log, secrets) belong to the security migrations (>= 0100).

-- Accounts -------------------------------------------------------------------------------------
CREATE TABLE accounts (
    client_id             text PRIMARY KEY CHECK (client_id ~ '^[A-Za-z0-9_-]{1,100}$'),
    client_name           text NOT NULL CHECK (length(btrim(client_name)) BETWEEN 1 AND 200),
    company_name          text NOT NULL CHECK (length(btrim(company_name)) BETWEEN 1 AND 200),
    industry              text NOT NULL DEFAULT 'Technology' CHECK (length(industry) BETWEEN 1 AND 100),
    tier                  text NOT NULL DEFAULT 'standard'
                          CHECK (tier IN ('starter', 'standard', 'professional', 'enterprise')),
    lifecycle_stage       text NOT NULL DEFAULT 'onboarding'
                          CHECK (lifecycle_stage IN ('onboarding', 'active', 'at_risk', 'churned', 'expansion', 'renewal')),
    status                text NOT NULL DEFAULT 'active'
                          CHECK (status IN ('active', 'paused', 'churned', 'pending')),
    csm_assigned          text CHECK (length(csm_assigned) <= 200),
    primary_contact_email text CHECK (primary_contact_email ~ '^[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\.[a-zA-Z]{2,}$'),
    primary_contact_name  text CHECK (length(primary_contact_name) <= 200),
    health_score          integer NOT NULL DEFAULT 50 CHECK (health_score BETWEEN 0 AND 100),
    health_trend          text NOT NULL DEFAULT 'stable' CHECK (health_trend IN ('improving', 'stable', 'declining')),
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX accounts_tier_idx ON accounts (tier);
CREATE INDEX accounts_stage_idx ON accounts (lifecycle_stage);
CREATE INDEX accounts_health_idx ON accounts (health_score);
CREATE INDEX accounts_csm_idx ON accounts (csm_assigned);

CREATE TABLE contacts (
    contact_id  bigserial PRIMARY KEY,
    client_id   text NOT NULL REFERENCES accounts ON DELETE CASCADE,
    name        text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 200),
    email       text NOT NULL CHECK (email ~ '^[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\.[a-zA-Z]{2,}$'),
    title       text,
    role        text NOT NULL DEFAULT 'user'
                CHECK (role IN ('champion', 'executive_sponsor', 'decision_maker', 'admin', 'user', 'billing')),
    is_primary  boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (client_id, email)
);
CREATE UNIQUE INDEX contacts_one_primary ON contacts (client_id) WHERE is_primary;

-- Contracts, invoices, renewals, revenue --------------------------------------------------------
CREATE TABLE contracts (
    contract_id        text PRIMARY KEY,
    client_id          text NOT NULL REFERENCES accounts ON DELETE CASCADE,
    contract_type      text NOT NULL DEFAULT 'annual' CHECK (contract_type IN ('annual', 'multi_year', 'monthly', 'quarterly')),
    tier               text NOT NULL CHECK (tier IN ('starter', 'standard', 'professional', 'enterprise')),
    contract_value     numeric(14,2) NOT NULL CHECK (contract_value >= 0), -- annual recurring value
    currency           char(3) NOT NULL DEFAULT 'USD',
    billing_frequency  text NOT NULL DEFAULT 'annual' CHECK (billing_frequency IN ('monthly', 'quarterly', 'annual')),
    licensed_seats     integer CHECK (licensed_seats > 0),
    start_date         date NOT NULL,
    end_date           date NOT NULL,
    auto_renew         boolean NOT NULL DEFAULT false,
    notice_period_days integer NOT NULL DEFAULT 30 CHECK (notice_period_days BETWEEN 0 AND 365),
    status             text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'expired', 'cancelled', 'renewed')),
    created_at         timestamptz NOT NULL DEFAULT now(),
    CHECK (end_date > start_date)
);
CREATE INDEX contracts_client_idx ON contracts (client_id, end_date DESC);
-- At most one active contract per account: it is "the" contract of get_client_overview.
CREATE UNIQUE INDEX contracts_one_active ON contracts (client_id) WHERE status = 'active';

-- Payment history. Overdue (unpaid past due) and late (paid after due) are derived from dates.
CREATE TABLE invoices (
    invoice_id  text PRIMARY KEY,
    contract_id text NOT NULL REFERENCES contracts ON DELETE CASCADE,
    client_id   text NOT NULL REFERENCES accounts ON DELETE CASCADE,
    amount      numeric(14,2) NOT NULL CHECK (amount >= 0),
    issued_on   date NOT NULL,
    due_on      date NOT NULL,
    paid_on     date,
    CHECK (due_on >= issued_on),
    CHECK (paid_on IS NULL OR paid_on >= issued_on)
);
CREATE INDEX invoices_client_idx ON invoices (client_id, due_on);

CREATE TABLE renewals (
    renewal_id        text PRIMARY KEY,
    contract_id       text NOT NULL REFERENCES contracts ON DELETE CASCADE,
    client_id         text NOT NULL REFERENCES accounts ON DELETE CASCADE,
    renewal_date      date NOT NULL,
    status            text NOT NULL DEFAULT 'on_track'
                      CHECK (status IN ('on_track', 'at_risk', 'high_risk', 'won', 'lost', 'churned')),
    current_arr       numeric(14,2) NOT NULL CHECK (current_arr >= 0),
    forecast_arr      numeric(14,2) CHECK (forecast_arr >= 0),
    probability       numeric(4,3) CHECK (probability BETWEEN 0 AND 1),
    negotiation       jsonb,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (contract_id, renewal_date)
);
CREATE INDEX renewals_date_idx ON renewals (renewal_date);

CREATE TABLE revenue_events (
    event_id    bigserial PRIMARY KEY,
    client_id   text NOT NULL REFERENCES accounts ON DELETE CASCADE,
    kind        text NOT NULL CHECK (kind IN ('new', 'expansion', 'contraction', 'churn', 'renewal')),
    arr_delta   numeric(14,2) NOT NULL,
    occurred_on date NOT NULL,
    note        text,
    CHECK ((kind IN ('new', 'expansion') AND arr_delta >= 0) OR (kind IN ('contraction', 'churn') AND arr_delta <= 0)
           OR kind = 'renewal')
);
CREATE INDEX revenue_events_client_idx ON revenue_events (client_id, occurred_on);

CREATE TABLE expansion_opportunities (
    opportunity_id      text PRIMARY KEY,
    client_id           text NOT NULL REFERENCES accounts ON DELETE CASCADE,
    name                text NOT NULL,
    expansion_type      text NOT NULL CHECK (expansion_type IN ('upsell', 'cross_sell', 'user_expansion', 'usage_expansion',
                                                                'professional_services', 'training', 'tier_upgrade')),
    estimated_value     numeric(14,2) NOT NULL CHECK (estimated_value >= 0),
    probability         numeric(4,3) NOT NULL CHECK (probability BETWEEN 0 AND 1),
    stage               text NOT NULL DEFAULT 'identified'
                        CHECK (stage IN ('identified', 'qualified', 'proposal', 'negotiation', 'won', 'lost')),
    expected_close_date date,
    product             text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX expansion_client_idx ON expansion_opportunities (client_id);

-- Product usage ----------------------------------------------------------------------------------
CREATE TABLE features (
    feature_id  text PRIMARY KEY CHECK (feature_id ~ '^[A-Za-z0-9_.:-]{1,100}$'),
    name        text NOT NULL,
    category    text NOT NULL DEFAULT 'general',
    is_core     boolean NOT NULL DEFAULT false,
    released_on date
);

-- Raw events (idempotent by event_id). Rollups below are maintained incrementally by ingestion,
-- so history imported as rollups (seed, migrations from other systems) is never recomputed away.
CREATE TABLE usage_events (
    event_id    text PRIMARY KEY CHECK (length(event_id) BETWEEN 1 AND 200),
    client_id   text NOT NULL REFERENCES accounts ON DELETE CASCADE,
    occurred_at timestamptz NOT NULL,
    user_id     text NOT NULL CHECK (length(user_id) BETWEEN 1 AND 200),
    feature_id  text NOT NULL REFERENCES features,
    quantity    numeric(14,3) NOT NULL DEFAULT 1 CHECK (quantity >= 0),
    ingested_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX usage_events_client_idx ON usage_events (client_id, occurred_at);

CREATE TABLE usage_daily (
    client_id      text NOT NULL REFERENCES accounts ON DELETE CASCADE,
    day            date NOT NULL,
    active_users   integer NOT NULL DEFAULT 0 CHECK (active_users >= 0),
    events         integer NOT NULL DEFAULT 0 CHECK (events >= 0),
    session_minutes integer NOT NULL DEFAULT 0 CHECK (session_minutes >= 0),
    PRIMARY KEY (client_id, day)
);
CREATE TABLE usage_daily_users (
    client_id text NOT NULL REFERENCES accounts ON DELETE CASCADE,
    day       date NOT NULL,
    user_id   text NOT NULL,
    PRIMARY KEY (client_id, day, user_id)
);
CREATE TABLE usage_feature_daily (
    client_id  text NOT NULL REFERENCES accounts ON DELETE CASCADE,
    day        date NOT NULL,
    feature_id text NOT NULL REFERENCES features,
    events     integer NOT NULL DEFAULT 0 CHECK (events >= 0),
    users      integer NOT NULL DEFAULT 0 CHECK (users >= 0),
    quantity   numeric(14,3) NOT NULL DEFAULT 0 CHECK (quantity >= 0),
    PRIMARY KEY (client_id, day, feature_id)
);
CREATE TABLE usage_feature_daily_users (
    client_id  text NOT NULL REFERENCES accounts ON DELETE CASCADE,
    day        date NOT NULL,
    feature_id text NOT NULL REFERENCES features,
    user_id    text NOT NULL,
    PRIMARY KEY (client_id, day, feature_id, user_id)
);
-- First use of a feature by an account (adoption date), kept by ingestion and seed.
CREATE TABLE feature_adoption (
    client_id     text NOT NULL REFERENCES accounts ON DELETE CASCADE,
    feature_id    text NOT NULL REFERENCES features,
    first_used_on date NOT NULL,
    PRIMARY KEY (client_id, feature_id)
);

-- Health, segments, lifecycle --------------------------------------------------------------------
CREATE TABLE health_scores (
    score_id            bigserial PRIMARY KEY,
    client_id           text NOT NULL REFERENCES accounts ON DELETE CASCADE,
    calculated_at       timestamptz NOT NULL DEFAULT now(),
    usage_score         integer NOT NULL CHECK (usage_score BETWEEN 0 AND 100),
    engagement_score    integer NOT NULL CHECK (engagement_score BETWEEN 0 AND 100),
    support_score       integer NOT NULL CHECK (support_score BETWEEN 0 AND 100),
    satisfaction_score  numeric(5,2) NOT NULL CHECK (satisfaction_score BETWEEN 0 AND 100),
    payment_score       integer NOT NULL CHECK (payment_score BETWEEN 0 AND 100),
    usage_weight        numeric(4,3) NOT NULL DEFAULT 0.35 CHECK (usage_weight BETWEEN 0 AND 1),
    engagement_weight   numeric(4,3) NOT NULL DEFAULT 0.25 CHECK (engagement_weight BETWEEN 0 AND 1),
    support_weight      numeric(4,3) NOT NULL DEFAULT 0.15 CHECK (support_weight BETWEEN 0 AND 1),
    satisfaction_weight numeric(4,3) NOT NULL DEFAULT 0.15 CHECK (satisfaction_weight BETWEEN 0 AND 1),
    payment_weight      numeric(4,3) NOT NULL DEFAULT 0.10 CHECK (payment_weight BETWEEN 0 AND 1),
    overall_score       integer NOT NULL CHECK (overall_score BETWEEN 0 AND 100),
    score_change        integer,
    trend               text NOT NULL CHECK (trend IN ('improving', 'stable', 'declining')),
    risk_level          text NOT NULL CHECK (risk_level IN ('low', 'medium', 'high', 'critical')),
    churn_probability   numeric(4,3) NOT NULL CHECK (churn_probability BETWEEN 0 AND 1),
    lookback_days       integer NOT NULL CHECK (lookback_days BETWEEN 1 AND 365),
    scoring_model       text NOT NULL DEFAULT 'weighted_composite',
    calculated_by       text NOT NULL DEFAULT 'system',
    CHECK (abs(usage_weight + engagement_weight + support_weight + satisfaction_weight + payment_weight - 1) <= 0.01)
);
CREATE INDEX health_scores_client_idx ON health_scores (client_id, calculated_at DESC, score_id DESC);

CREATE TABLE risk_indicators (
    indicator_id  bigserial PRIMARY KEY,
    client_id     text NOT NULL REFERENCES accounts ON DELETE CASCADE,
    score_id      bigint REFERENCES health_scores ON DELETE CASCADE,
    indicator     text NOT NULL,
    severity      text NOT NULL CHECK (severity IN ('low', 'medium', 'high', 'critical')),
    current_value numeric NOT NULL,
    threshold     numeric NOT NULL,
    detected_at   timestamptz NOT NULL DEFAULT now(),
    resolved_at   timestamptz
);
CREATE INDEX risk_indicators_client_idx ON risk_indicators (client_id, detected_at DESC);

CREATE TABLE segments (
    segment_id        text PRIMARY KEY CHECK (segment_id ~ '^seg_[a-z0-9_]+$'),
    segmentation_id   text NOT NULL,
    name              text NOT NULL,
    segment_type      text NOT NULL CHECK (segment_type IN ('value_based', 'usage_based', 'health_based', 'industry',
                                                            'lifecycle', 'custom', 'value_tier')),
    criteria          jsonb NOT NULL DEFAULT '{}',
    customer_count    integer NOT NULL CHECK (customer_count >= 0),
    total_arr         numeric(16,2) NOT NULL DEFAULT 0,
    avg_health_score  numeric(5,2),
    created_by        text NOT NULL DEFAULT 'system',
    created_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX segments_run_idx ON segments (segmentation_id);
CREATE TABLE segment_members (
    segment_id text NOT NULL REFERENCES segments ON DELETE CASCADE,
    client_id  text NOT NULL REFERENCES accounts ON DELETE CASCADE,
    PRIMARY KEY (segment_id, client_id)
);

CREATE TABLE lifecycle_transitions (
    transition_id bigserial PRIMARY KEY,
    client_id     text NOT NULL REFERENCES accounts ON DELETE CASCADE,
    from_stage    text CHECK (from_stage IN ('onboarding', 'active', 'at_risk', 'churned', 'expansion', 'renewal')),
    to_stage      text NOT NULL CHECK (to_stage IN ('onboarding', 'active', 'at_risk', 'churned', 'expansion', 'renewal')),
    reason        text,
    changed_by    text NOT NULL DEFAULT 'system',
    changed_at    timestamptz NOT NULL DEFAULT now(),
    CHECK (from_stage IS DISTINCT FROM to_stage)
);
CREATE INDEX lifecycle_client_idx ON lifecycle_transitions (client_id, changed_at);

-- Onboarding and training ------------------------------------------------------------------------
CREATE TABLE onboarding_plans (
    plan_id                text PRIMARY KEY,
    client_id              text NOT NULL REFERENCES accounts ON DELETE CASCADE,
    name                   text NOT NULL,
    product_tier           text NOT NULL CHECK (product_tier IN ('starter', 'standard', 'professional', 'enterprise')),
    technical_complexity   text NOT NULL DEFAULT 'medium' CHECK (technical_complexity IN ('low', 'medium', 'high')),
    team_size              integer NOT NULL DEFAULT 10 CHECK (team_size BETWEEN 1 AND 10000),
    start_date             date NOT NULL,
    target_date            date NOT NULL,
    completed_on           date,
    status                 text NOT NULL DEFAULT 'draft'
                           CHECK (status IN ('draft', 'scheduled', 'in_progress', 'completed', 'delayed', 'cancelled')),
    automation_enabled     boolean NOT NULL DEFAULT false,
    automation_config      jsonb,
    created_at             timestamptz NOT NULL DEFAULT now(),
    CHECK (target_date > start_date)
);
CREATE INDEX onboarding_plans_client_idx ON onboarding_plans (client_id, status);
CREATE TABLE onboarding_goals (
    plan_id  text NOT NULL REFERENCES onboarding_plans ON DELETE CASCADE,
    seq      integer NOT NULL,
    kind     text NOT NULL CHECK (kind IN ('goal', 'success_criterion')),
    text     text NOT NULL,
    achieved boolean NOT NULL DEFAULT false,
    PRIMARY KEY (plan_id, kind, seq)
);
CREATE TABLE onboarding_milestones (
    milestone_id    text PRIMARY KEY,
    plan_id         text NOT NULL REFERENCES onboarding_plans ON DELETE CASCADE,
    seq             integer NOT NULL,
    name            text NOT NULL,
    week            integer NOT NULL CHECK (week BETWEEN 1 AND 52),
    estimated_hours integer NOT NULL CHECK (estimated_hours >= 0),
    due_date        date,
    completed_on    date,
    status          text NOT NULL DEFAULT 'not_started'
                    CHECK (status IN ('not_started', 'in_progress', 'completed', 'blocked', 'skipped')),
    UNIQUE (plan_id, seq)
);
CREATE TABLE onboarding_tasks (
    task_id      bigserial PRIMARY KEY,
    milestone_id text NOT NULL REFERENCES onboarding_milestones ON DELETE CASCADE,
    title        text NOT NULL,
    assignee     text,
    due_date     date,
    status       text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'done', 'blocked', 'skipped')),
    completed_at timestamptz
);
-- Adoption milestones reached by an account (track_adoption_milestones), from data or recorded.
CREATE TABLE adoption_milestones (
    client_id    text NOT NULL REFERENCES accounts ON DELETE CASCADE,
    milestone    text NOT NULL,
    achieved_on  date NOT NULL,
    PRIMARY KEY (client_id, milestone)
);

CREATE TABLE training_modules (
    module_id           text PRIMARY KEY,
    name                text NOT NULL,
    description         text NOT NULL DEFAULT '',
    format              text NOT NULL CHECK (format IN ('live_webinar', 'self_paced', 'one_on_one', 'workshop', 'video', 'documentation')),
    certification_level text NOT NULL DEFAULT 'basic' CHECK (certification_level IN ('basic', 'intermediate', 'advanced', 'expert')),
    duration_minutes    integer NOT NULL CHECK (duration_minutes BETWEEN 1 AND 1440),
    passing_score       numeric(3,2) NOT NULL DEFAULT 0.75 CHECK (passing_score BETWEEN 0 AND 1)
);
CREATE TABLE training_sessions (
    session_id        text PRIMARY KEY,
    client_id         text NOT NULL REFERENCES accounts ON DELETE CASCADE,
    module_id         text NOT NULL REFERENCES training_modules,
    session_format    text NOT NULL CHECK (session_format IN ('live_webinar', 'self_paced', 'one_on_one', 'workshop', 'video', 'documentation')),
    scheduled_at      timestamptz NOT NULL,
    duration_minutes  integer NOT NULL CHECK (duration_minutes BETWEEN 15 AND 480),
    recording_enabled boolean NOT NULL DEFAULT true,
    status            text NOT NULL DEFAULT 'scheduled' CHECK (status IN ('scheduled', 'completed', 'cancelled')),
    created_at        timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE training_attendance (
    session_id  text NOT NULL REFERENCES training_sessions ON DELETE CASCADE,
    email       text NOT NULL,
    attended    boolean NOT NULL DEFAULT false,
    score       numeric(4,3) CHECK (score BETWEEN 0 AND 1),
    passed      boolean,
    rating      numeric(2,1) CHECK (rating BETWEEN 1 AND 5),
    PRIMARY KEY (session_id, email)
);
CREATE TABLE certifications (
    certification_id text PRIMARY KEY,
    client_id        text NOT NULL REFERENCES accounts ON DELETE CASCADE,
    user_email       text NOT NULL,
    level            text NOT NULL CHECK (level IN ('basic', 'intermediate', 'advanced', 'expert')),
    issued_at        timestamptz NOT NULL DEFAULT now(),
    revoked_at       timestamptz,
    CHECK (revoked_at IS NULL OR revoked_at >= issued_at)
);
CREATE INDEX certifications_client_idx ON certifications (client_id);

-- Support ----------------------------------------------------------------------------------------
CREATE TABLE support_agents (
    agent_id     text PRIMARY KEY,
    name         text NOT NULL,
    email        text NOT NULL UNIQUE,
    team         text NOT NULL,
    is_senior    boolean NOT NULL DEFAULT false,
    max_tickets  integer NOT NULL DEFAULT 10 CHECK (max_tickets BETWEEN 1 AND 1000),
    active       boolean NOT NULL DEFAULT true
);
CREATE TABLE support_agent_expertise (
    agent_id text NOT NULL REFERENCES support_agents ON DELETE CASCADE,
    category text NOT NULL,
    PRIMARY KEY (agent_id, category)
);
CREATE TABLE support_tickets (
    ticket_id           text PRIMARY KEY CHECK (ticket_id ~ '^TKT-[0-9]+$'),
    client_id           text NOT NULL REFERENCES accounts ON DELETE CASCADE,
    subject             text NOT NULL CHECK (length(subject) BETWEEN 1 AND 500),
    description         text NOT NULL,
    priority            text NOT NULL DEFAULT 'P3' CHECK (priority IN ('P0', 'P1', 'P2', 'P3', 'P4')),
    category            text NOT NULL DEFAULT 'technical_issue'
                        CHECK (category IN ('technical_issue', 'bug_report', 'feature_request', 'how_to_question', 'account_billing',
                                            'integration_support', 'training_request', 'data_issue', 'performance', 'other')),
    status              text NOT NULL DEFAULT 'open'
                        CHECK (status IN ('open', 'in_progress', 'waiting_on_customer', 'waiting_on_engineering', 'resolved',
                                          'closed', 'reopened')),
    requester_email     text NOT NULL,
    requester_name      text NOT NULL,
    assigned_agent      text REFERENCES support_agents ON DELETE SET NULL,
    assigned_team       text,
    sla_first_response_minutes integer NOT NULL CHECK (sla_first_response_minutes > 0),
    sla_resolution_minutes     integer NOT NULL CHECK (sla_resolution_minutes > 0),
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    first_response_at   timestamptz,
    resolved_at         timestamptz,
    closed_at           timestamptz,
    escalated           boolean NOT NULL DEFAULT false,
    escalation_reason   text,
    resolution_notes    text,
    satisfaction_rating integer CHECK (satisfaction_rating BETWEEN 1 AND 5),
    satisfaction_comment text,
    CHECK (first_response_at IS NULL OR first_response_at >= created_at),
    CHECK (resolved_at IS NULL OR resolved_at >= created_at),
    CHECK (closed_at IS NULL OR closed_at >= created_at)
);
CREATE INDEX support_tickets_client_idx ON support_tickets (client_id, created_at);
CREATE INDEX support_tickets_open_idx ON support_tickets (status, priority) WHERE status NOT IN ('resolved', 'closed');
CREATE TABLE support_ticket_tags (
    ticket_id text NOT NULL REFERENCES support_tickets ON DELETE CASCADE,
    tag       text NOT NULL,
    PRIMARY KEY (ticket_id, tag)
);
CREATE TABLE ticket_comments (
    comment_id   bigserial PRIMARY KEY,
    ticket_id    text NOT NULL REFERENCES support_tickets ON DELETE CASCADE,
    author_email text NOT NULL,
    author_name  text NOT NULL,
    author_type  text NOT NULL CHECK (author_type IN ('agent', 'customer', 'system')),
    content      text NOT NULL CHECK (length(content) >= 1),
    is_public    boolean NOT NULL DEFAULT true,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ticket_comments_ticket_idx ON ticket_comments (ticket_id, created_at);

CREATE TABLE kb_articles (
    article_id    text PRIMARY KEY CHECK (article_id ~ '^KB-[0-9]+$'),
    title         text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    summary       text NOT NULL CHECK (length(summary) <= 500),
    content       text NOT NULL,
    category      text NOT NULL,
    subcategory   text,
    status        text NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'review', 'published', 'archived')),
    author        text NOT NULL,
    version       integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    view_count    integer NOT NULL DEFAULT 0 CHECK (view_count >= 0),
    helpful_votes integer NOT NULL DEFAULT 0 CHECK (helpful_votes >= 0),
    not_helpful_votes integer NOT NULL DEFAULT 0 CHECK (not_helpful_votes >= 0),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    published_at  timestamptz
);
CREATE TABLE kb_article_tags (
    article_id text NOT NULL REFERENCES kb_articles ON DELETE CASCADE,
    tag        text NOT NULL,
    PRIMARY KEY (article_id, tag)
);
CREATE INDEX kb_articles_fts ON kb_articles USING gin (to_tsvector('english', title || ' ' || summary || ' ' || content));

-- Customer portal (self-service) configuration per account.
CREATE TABLE portal_settings (
    client_id  text PRIMARY KEY REFERENCES accounts ON DELETE CASCADE,
    features   text[] NOT NULL DEFAULT ARRAY['tickets', 'kb'],
    branding   jsonb NOT NULL DEFAULT '{}',
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK (features <@ ARRAY['tickets', 'kb', 'downloads', 'api_access', 'chat'])
);

-- Feedback, surveys, satisfaction ----------------------------------------------------------------
CREATE TABLE surveys (
    survey_id   text PRIMARY KEY,
    name        text NOT NULL,
    survey_type text NOT NULL CHECK (survey_type IN ('nps', 'csat', 'ces', 'custom')),
    questions   jsonb NOT NULL DEFAULT '[]',
    active      boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE nps_responses (
    response_id      text PRIMARY KEY,
    client_id        text NOT NULL REFERENCES accounts ON DELETE CASCADE,
    survey_id        text REFERENCES surveys,
    respondent_email text,
    score            integer NOT NULL CHECK (score BETWEEN 0 AND 10),
    category         text GENERATED ALWAYS AS (CASE WHEN score >= 9 THEN 'promoter' WHEN score >= 7 THEN 'passive'
                                                    ELSE 'detractor' END) STORED,
    reason           text,
    responded_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX nps_client_idx ON nps_responses (client_id, responded_at);
CREATE TABLE csat_responses (
    response_id  text PRIMARY KEY,
    client_id    text NOT NULL REFERENCES accounts ON DELETE CASCADE,
    ticket_id    text REFERENCES support_tickets ON DELETE SET NULL,
    survey_type  text NOT NULL DEFAULT 'csat' CHECK (survey_type IN ('csat', 'ces')),
    score        integer NOT NULL CHECK (score BETWEEN 1 AND 7),
    comment      text,
    responded_at timestamptz NOT NULL DEFAULT now(),
    CHECK (survey_type = 'ces' OR score <= 5)
);
CREATE INDEX csat_client_idx ON csat_responses (client_id, responded_at);

CREATE TABLE feedback (
    feedback_id       text PRIMARY KEY CHECK (feedback_id ~ '^FB-[0-9]+$'),
    client_id         text NOT NULL REFERENCES accounts ON DELETE CASCADE,
    feedback_type     text NOT NULL CHECK (feedback_type IN ('nps', 'csat', 'ces', 'feature_request', 'bug_report',
                                                              'product_feedback', 'service_feedback', 'general')),
    source            text NOT NULL,
    submitter_email   text NOT NULL,
    submitter_name    text NOT NULL,
    title             text NOT NULL CHECK (length(btrim(title)) BETWEEN 1 AND 200),
    content           text NOT NULL CHECK (length(btrim(content)) >= 1),
    category          text NOT NULL,
    subcategory       text,
    sentiment         text NOT NULL CHECK (sentiment IN ('very_positive', 'positive', 'neutral', 'negative', 'very_negative')),
    sentiment_score   numeric(3,2) NOT NULL CHECK (sentiment_score BETWEEN -1 AND 1),
    priority          text NOT NULL DEFAULT 'medium' CHECK (priority IN ('critical', 'high', 'medium', 'low')),
    status            text NOT NULL DEFAULT 'new' CHECK (status IN ('new', 'reviewed', 'in_progress', 'resolved', 'closed', 'wont_fix')),
    assigned_to       text,
    follow_up_by      date,
    created_at        timestamptz NOT NULL DEFAULT now(),
    resolved_at       timestamptz
);
CREATE INDEX feedback_client_idx ON feedback (client_id, created_at);
CREATE TABLE feedback_tags (
    feedback_id text NOT NULL REFERENCES feedback ON DELETE CASCADE,
    tag         text NOT NULL,
    PRIMARY KEY (feedback_id, tag)
);
CREATE TABLE product_insights (
    insight_id          text PRIMARY KEY CHECK (insight_id ~ '^PI-[0-9]+$'),
    insight_type        text NOT NULL CHECK (insight_type IN ('feature_request', 'bug_report', 'usability_feedback',
                                                              'performance_feedback', 'integration_request', 'general_product')),
    title               text NOT NULL,
    description         text NOT NULL,
    priority            text NOT NULL CHECK (priority IN ('critical', 'high', 'medium', 'low')),
    business_value_score numeric(3,1) NOT NULL CHECK (business_value_score BETWEEN 0 AND 10),
    due_date            date,
    created_by          text NOT NULL DEFAULT 'system',
    created_at          timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE product_insight_feedback (
    insight_id  text NOT NULL REFERENCES product_insights ON DELETE CASCADE,
    feedback_id text NOT NULL REFERENCES feedback ON DELETE CASCADE,
    PRIMARY KEY (insight_id, feedback_id)
);
CREATE TABLE product_insight_accounts (
    insight_id text NOT NULL REFERENCES product_insights ON DELETE CASCADE,
    client_id  text NOT NULL REFERENCES accounts ON DELETE CASCADE,
    PRIMARY KEY (insight_id, client_id)
);

-- Retention: escalations and campaigns -----------------------------------------------------------
CREATE TABLE escalations (
    escalation_id text PRIMARY KEY,
    client_id     text NOT NULL REFERENCES accounts ON DELETE CASCADE,
    severity      text NOT NULL CHECK (severity IN ('critical', 'high', 'medium', 'low')),
    status        text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'in_progress', 'resolved', 'closed')),
    summary       text NOT NULL,
    assigned_to   text,
    sla_hours     integer NOT NULL CHECK (sla_hours > 0),
    opened_at     timestamptz NOT NULL DEFAULT now(),
    resolved_at   timestamptz,
    closed_at     timestamptz,
    resolution    text,
    CHECK (resolved_at IS NULL OR resolved_at >= opened_at)
);
CREATE INDEX escalations_client_idx ON escalations (client_id, opened_at);

CREATE TABLE retention_campaigns (
    campaign_id        text PRIMARY KEY,
    name               text NOT NULL,
    campaign_type      text NOT NULL,
    intervention_level text NOT NULL DEFAULT 'standard' CHECK (intervention_level IN ('light', 'standard', 'aggressive')),
    trigger_type       text CHECK (trigger_type IN ('health_score', 'usage_decline', 'nps_detractor', 'renewal_risk', 'manual')),
    threshold          numeric,
    status             text NOT NULL DEFAULT 'active' CHECK (status IN ('draft', 'active', 'paused', 'completed')),
    created_by         text NOT NULL DEFAULT 'system',
    created_at         timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE campaign_targets (
    campaign_id text NOT NULL REFERENCES retention_campaigns ON DELETE CASCADE,
    client_id   text NOT NULL REFERENCES accounts ON DELETE CASCADE,
    status      text NOT NULL DEFAULT 'targeted' CHECK (status IN ('targeted', 'contacted', 'retained', 'churned')),
    health_at_start integer CHECK (health_at_start BETWEEN 0 AND 100),
    added_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (campaign_id, client_id)
);
CREATE TABLE campaign_actions (
    action_id   bigserial PRIMARY KEY,
    campaign_id text NOT NULL REFERENCES retention_campaigns ON DELETE CASCADE,
    client_id   text REFERENCES accounts ON DELETE CASCADE,
    action      text NOT NULL,
    due_at      timestamptz NOT NULL,
    done_at     timestamptz
);

-- Communication and engagement -------------------------------------------------------------------
CREATE TABLE communications (
    communication_id bigserial PRIMARY KEY,
    client_id        text NOT NULL REFERENCES accounts ON DELETE CASCADE,
    channel          text NOT NULL CHECK (channel IN ('email', 'call', 'meeting', 'in_app', 'slack', 'sms', 'newsletter')),
    direction        text NOT NULL DEFAULT 'outbound' CHECK (direction IN ('inbound', 'outbound')),
    subject          text,
    body             text,
    campaign_id      text,
    sent_by          text NOT NULL DEFAULT 'system',
    occurred_at      timestamptz NOT NULL DEFAULT now(),
    scheduled_for    timestamptz,
    status           text NOT NULL DEFAULT 'sent' CHECK (status IN ('scheduled', 'sent', 'delivered', 'opened', 'clicked',
                                                                  'bounced', 'failed', 'cancelled'))
);
CREATE INDEX communications_client_idx ON communications (client_id, occurred_at);
CREATE TABLE email_campaigns (
    campaign_id     text PRIMARY KEY,
    name            text NOT NULL,
    template_type   text NOT NULL,
    subject_line    text NOT NULL,
    body_text       text NOT NULL,
    sender_email    text NOT NULL,
    target_segment  text,
    target_tier     text,
    scheduled_at    timestamptz,
    sent_at         timestamptz,
    created_by      text NOT NULL DEFAULT 'system',
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE communication_workflows (
    workflow_id        text PRIMARY KEY,
    name               text NOT NULL,
    description        text NOT NULL,
    trigger_type       text NOT NULL CHECK (trigger_type IN ('time_based', 'event_based', 'behavior_based', 'health_score',
                                                             'milestone', 'contract_event', 'usage_pattern', 'custom')),
    trigger_conditions jsonb NOT NULL,
    delay_minutes      integer NOT NULL DEFAULT 0 CHECK (delay_minutes >= 0),
    is_active          boolean NOT NULL DEFAULT true,
    created_at         timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE workflow_actions (
    workflow_id text NOT NULL REFERENCES communication_workflows ON DELETE CASCADE,
    seq         integer NOT NULL,
    action_type text NOT NULL CHECK (action_type IN ('send_email', 'create_task', 'send_slack_message', 'update_health_score',
                                                     'create_ticket', 'schedule_meeting', 'send_in_app_notification',
                                                     'trigger_webhook', 'send_sms')),
    params      jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (workflow_id, seq)
);
CREATE TABLE communities (
    community_id   text PRIMARY KEY,
    name           text NOT NULL,
    community_type text NOT NULL CHECK (community_type IN ('forum', 'slack_channel', 'user_group', 'advisory_board',
                                                           'beta_program', 'champions_program')),
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE community_members (
    member_id    text PRIMARY KEY,
    community_id text NOT NULL REFERENCES communities ON DELETE CASCADE,
    client_id    text NOT NULL REFERENCES accounts ON DELETE CASCADE,
    user_email   text NOT NULL,
    user_name    text,
    reputation   integer NOT NULL DEFAULT 0,
    joined_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (community_id, user_email)
);
CREATE TABLE community_posts (
    post_id      bigserial PRIMARY KEY,
    community_id text NOT NULL REFERENCES communities ON DELETE CASCADE,
    member_id    text REFERENCES community_members ON DELETE SET NULL,
    content      text NOT NULL,
    moderation   text NOT NULL DEFAULT 'approved' CHECK (moderation IN ('pending', 'approved', 'rejected')),
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE advocates (
    advocate_id   text PRIMARY KEY,
    client_id     text NOT NULL REFERENCES accounts ON DELETE CASCADE,
    contact_name  text NOT NULL,
    contact_email text NOT NULL,
    contact_title text,
    tier          text NOT NULL DEFAULT 'bronze' CHECK (tier IN ('bronze', 'silver', 'gold', 'platinum', 'champion')),
    enrolled_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (client_id, contact_email)
);
CREATE TABLE advocate_contributions (
    contribution_id   bigserial PRIMARY KEY,
    advocate_id       text NOT NULL REFERENCES advocates ON DELETE CASCADE,
    contribution_type text NOT NULL CHECK (contribution_type IN ('case_study', 'reference', 'review', 'testimonial',
                                                                 'speaking_engagement', 'referral', 'points_award')),
    details           text,
    points            integer NOT NULL CHECK (points > 0),
    occurred_at       timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE executive_reviews (
    ebr_id              text PRIMARY KEY,
    client_id           text NOT NULL REFERENCES accounts ON DELETE CASCADE,
    ebr_type            text NOT NULL CHECK (ebr_type IN ('quarterly', 'semi_annual', 'annual', 'ad_hoc', 'renewal', 'expansion')),
    scheduled_at        timestamptz NOT NULL,
    duration_minutes    integer NOT NULL DEFAULT 60 CHECK (duration_minutes BETWEEN 15 AND 480),
    status              text NOT NULL DEFAULT 'scheduled' CHECK (status IN ('scheduled', 'prepared', 'completed', 'cancelled')),
    agenda              jsonb NOT NULL DEFAULT '[]',
    objectives          jsonb NOT NULL DEFAULT '[]',
    satisfaction_rating integer CHECK (satisfaction_rating BETWEEN 1 AND 5),
    completed_at        timestamptz,
    next_ebr_date       date,
    created_at          timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE ebr_attendees (
    ebr_id text NOT NULL REFERENCES executive_reviews ON DELETE CASCADE,
    side   text NOT NULL CHECK (side IN ('customer', 'vendor')),
    name   text NOT NULL,
    email  text,
    title  text,
    PRIMARY KEY (ebr_id, side, name)
);
CREATE TABLE ebr_action_items (
    item_id  bigserial PRIMARY KEY,
    ebr_id   text NOT NULL REFERENCES executive_reviews ON DELETE CASCADE,
    text     text NOT NULL,
    owner    text,
    due_date date,
    done     boolean NOT NULL DEFAULT false
);
CREATE TABLE newsletters (
    newsletter_id      text PRIMARY KEY,
    name               text NOT NULL,
    edition_number     integer,
    subject_line       text NOT NULL,
    sections           jsonb NOT NULL DEFAULT '[]',
    scheduled_send     timestamptz,
    sent_at            timestamptz,
    recurrence_pattern text CHECK (recurrence_pattern IN ('weekly', 'monthly', 'quarterly')),
    created_by         text NOT NULL DEFAULT 'system',
    created_at         timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE newsletter_subscriptions (
    client_id     text PRIMARY KEY REFERENCES accounts ON DELETE CASCADE,
    subscribed    boolean NOT NULL DEFAULT true,
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- Autonomous monitors ----------------------------------------------------------------------------
CREATE TABLE monitors (
    name           text PRIMARY KEY,
    description    text NOT NULL,
    enabled        boolean NOT NULL DEFAULT false,
    interval_hours integer NOT NULL DEFAULT 24 CHECK (interval_hours BETWEEN 1 AND 720),
    params         jsonb NOT NULL DEFAULT '{}',
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE monitor_runs (
    run_id      bigserial PRIMARY KEY,
    monitor     text NOT NULL REFERENCES monitors ON DELETE CASCADE,
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    status      text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'ok', 'failed')),
    alerts      integer NOT NULL DEFAULT 0,
    error       text
);
CREATE TABLE monitor_alerts (
    alert_id        bigserial PRIMARY KEY,
    monitor         text NOT NULL REFERENCES monitors ON DELETE CASCADE,
    run_id          bigint REFERENCES monitor_runs ON DELETE SET NULL,
    client_id       text REFERENCES accounts ON DELETE CASCADE,
    severity        text NOT NULL CHECK (severity IN ('low', 'medium', 'high', 'critical')),
    message         text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    acknowledged_at timestamptz
);
CREATE INDEX monitor_alerts_client_idx ON monitor_alerts (client_id, created_at);
INSERT INTO monitors (name, description, interval_hours) VALUES
    ('churn_risk_monitor', 'Flags accounts whose health score falls below the threshold', 24),
    ('usage_drop_monitor', 'Flags accounts whose weekly active users dropped by 30% or more', 24),
    ('renewal_monitor', 'Flags renewals within 90 days with a health score below 70', 24),
    ('upsell_detector', 'Flags healthy accounts using 80% or more of their licensed seats', 168),
    ('nps_csat_monitor', 'Flags NPS detractors (score <= 6) and CSAT <= 3', 24),
    ('support_sla_monitor', 'Flags open tickets at risk of breaching their SLA', 1),
    ('onboarding_monitor', 'Flags onboarding milestones past their due date', 24);

-- Domain change log: every create/update a tool makes, with old and new values and who did it.
-- (The request-level, hash-chained audit_log belongs to the security migrations.)
CREATE TABLE activity_log (
    activity_id bigserial PRIMARY KEY,
    client_id   text REFERENCES accounts ON DELETE CASCADE,
    actor       text NOT NULL,
    action      text NOT NULL,
    entity      text NOT NULL,
    entity_id   text,
    old_values  jsonb,
    new_values  jsonb,
    occurred_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX activity_log_client_idx ON activity_log (client_id, occurred_at);

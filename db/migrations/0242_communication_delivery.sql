-- 0242_communication_delivery.sql - issue 16 remainder: workflow evaluation state, per-contact
-- newsletter subscriptions, recurring editions, and bounded (chunked) bulk sends.
--
-- workflow_runs: a firing is 'pending' until its delay has elapsed (due_at), then executed by the
--   monitor leader's communication tick; outcome partial / cancelled added; trigger_key names the
--   trigger occurrence (an activity row, a milestone, a renewal, a schedule period, ...) and is
--   unique per workflow and account, so an occurrence never fires twice; actions holds the result
--   of every action in order.
-- communication_workflows.next_evaluation_at: when the tick evaluates the workflow's trigger next.
-- workflow_tasks: the tasks the create_task action creates (for the account's CSM).
-- newsletter_contact_subscriptions: newsletter opt-in/opt-out per contact (replaces the per-account
--   newsletter_subscriptions; an account-level opt-out becomes an opt-out of each of its contacts).
-- newsletters: sender_email (kept for later editions), previous_newsletter_id (the edition it
--   follows), status 'sent' with sent_at.
-- email_messages: state 'scheduled' (waits for its time outside the outbox; released by the tick,
--   which re-checks the recipient's subscription) and 'suppressed' (the recipient unsubscribed
--   before release); one message per recipient and send (unique), so a chunk that is repeated
--   never duplicates a recipient.
-- comm_send_jobs: a bulk send's recipients are materialised by the tick in chunks (cursor
--   client_id, contact_id), each chunk its own short transaction; progress = prepared/estimated.
ALTER TABLE workflow_runs DROP CONSTRAINT IF EXISTS workflow_runs_outcome_check;
ALTER TABLE workflow_runs
    ADD CONSTRAINT workflow_runs_outcome_check
        CHECK (outcome IN ('pending', 'succeeded', 'partial', 'failed', 'skipped', 'cancelled')),
    ADD COLUMN trigger_key text,
    ADD COLUMN due_at timestamptz,
    ADD COLUMN executed_at timestamptz,
    ADD COLUMN actions jsonb NOT NULL DEFAULT '[]';
CREATE UNIQUE INDEX workflow_runs_occurrence_idx ON workflow_runs (workflow_id, client_id, trigger_key)
    WHERE trigger_key IS NOT NULL;
CREATE INDEX workflow_runs_pending_idx ON workflow_runs (due_at) WHERE outcome = 'pending';
CREATE INDEX workflow_runs_client_idx ON workflow_runs (workflow_id, client_id, fired_at);

ALTER TABLE communication_workflows ADD COLUMN next_evaluation_at timestamptz NOT NULL DEFAULT now();

CREATE TABLE workflow_tasks (
    task_id     bigserial PRIMARY KEY,
    client_id   text NOT NULL REFERENCES accounts ON DELETE CASCADE,
    workflow_id text REFERENCES communication_workflows ON DELETE SET NULL,
    run_id      bigint REFERENCES workflow_runs ON DELETE SET NULL,
    title       text NOT NULL,
    description text,
    assignee    text,
    due_date    date NOT NULL,
    status      text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'done', 'cancelled')),
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX workflow_tasks_client_idx ON workflow_tasks (client_id, due_date);

CREATE TABLE newsletter_contact_subscriptions (
    contact_id bigint PRIMARY KEY REFERENCES contacts ON DELETE CASCADE,
    client_id  text NOT NULL REFERENCES accounts ON DELETE CASCADE,
    subscribed boolean NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX newsletter_contact_subscriptions_client_idx ON newsletter_contact_subscriptions (client_id);
INSERT INTO newsletter_contact_subscriptions (contact_id, client_id, subscribed, updated_at)
SELECT c.contact_id, c.client_id, s.subscribed, s.updated_at
FROM newsletter_subscriptions s JOIN contacts c ON c.client_id = s.client_id
WHERE NOT s.subscribed;

ALTER TABLE newsletters
    ADD COLUMN sender_email text,
    ADD COLUMN previous_newsletter_id text REFERENCES newsletters ON DELETE SET NULL;
ALTER TABLE newsletters DROP CONSTRAINT IF EXISTS newsletters_status_check;
ALTER TABLE newsletters ADD CONSTRAINT newsletters_status_check
    CHECK (status IN ('draft', 'preparing', 'scheduled', 'sent'));
CREATE INDEX newsletters_due_idx ON newsletters (scheduled_send) WHERE status = 'scheduled';

ALTER TABLE email_campaigns ADD COLUMN exclude_client_ids text[];
ALTER TABLE email_campaigns DROP CONSTRAINT IF EXISTS email_campaigns_status_check;
ALTER TABLE email_campaigns ADD CONSTRAINT email_campaigns_status_check
    CHECK (status IN ('preparing', 'scheduled', 'sent'));

ALTER TABLE email_messages DROP CONSTRAINT IF EXISTS email_messages_state_check;
ALTER TABLE email_messages ADD CONSTRAINT email_messages_state_check
    CHECK (state IN ('scheduled', 'outbox', 'not_configured', 'suppressed'));
ALTER TABLE email_messages ADD COLUMN workflow_run_id bigint REFERENCES workflow_runs ON DELETE SET NULL;
ALTER TABLE email_messages DROP CONSTRAINT IF EXISTS email_messages_check;
ALTER TABLE email_messages ADD CONSTRAINT email_messages_source_check
    CHECK (num_nonnulls(campaign_id, newsletter_id, workflow_run_id) = 1);
CREATE UNIQUE INDEX email_messages_campaign_contact_idx ON email_messages (campaign_id, contact_id)
    WHERE campaign_id IS NOT NULL AND contact_id IS NOT NULL;
CREATE UNIQUE INDEX email_messages_newsletter_contact_idx ON email_messages (newsletter_id, contact_id)
    WHERE newsletter_id IS NOT NULL AND contact_id IS NOT NULL;
CREATE INDEX email_messages_release_idx ON email_messages (scheduled_for) WHERE state = 'scheduled';
CREATE INDEX email_messages_contact_idx ON email_messages (contact_id) WHERE contact_id IS NOT NULL;

CREATE TABLE comm_send_jobs (
    job_id         bigserial PRIMARY KEY,
    campaign_id    text REFERENCES email_campaigns ON DELETE CASCADE,
    newsletter_id  text REFERENCES newsletters ON DELETE CASCADE,
    estimated      integer NOT NULL,
    prepared       integer NOT NULL DEFAULT 0,
    chunks         integer NOT NULL DEFAULT 0,
    cursor_client  text,
    cursor_contact bigint,
    state          text NOT NULL DEFAULT 'running' CHECK (state IN ('running', 'done')),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    finished_at    timestamptz,
    CHECK (num_nonnulls(campaign_id, newsletter_id) = 1)
);
CREATE INDEX comm_send_jobs_running_idx ON comm_send_jobs (job_id) WHERE state = 'running';

-- event_based workflows read activity rows of the last 7 days by time.
CREATE INDEX IF NOT EXISTS activity_log_occurred_idx ON activity_log (occurred_at);

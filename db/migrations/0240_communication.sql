-- 0240_communication.sql - communication & engagement (issue 16): what the six tools persist
-- beyond the base tables of 0001.
--
-- contacts.unsubscribed: a contact who opted out of email; never a recipient of a campaign or
--   a newsletter.
-- email_campaigns: the targeting and rendering options of a send, its state.
-- email_messages: one rendered message per recipient, with the outbox row that delivers it
--   (outbox_id NULL and state 'not_configured' when SendGrid is not enabled: nothing was sent).
-- workflow_runs: each firing of a stored communication workflow and its outcome.
-- executive_reviews: the briefing stored by prepare_ebr and the notes of completion.
-- newsletters: targeting, recurrence and state; newsletter_sends: one row per recipient of an
--   edition (with its outbox row); email_events: delivery/open/click events per message.
ALTER TABLE contacts ADD COLUMN unsubscribed boolean NOT NULL DEFAULT false;

ALTER TABLE email_campaigns
    ADD COLUMN target_client_ids text[],
    ADD COLUMN all_contacts boolean NOT NULL DEFAULT false,
    ADD COLUMN body_html text,
    ADD COLUMN personalization_tokens jsonb NOT NULL DEFAULT '{}',
    ADD COLUMN track_opens boolean NOT NULL DEFAULT true,
    ADD COLUMN track_clicks boolean NOT NULL DEFAULT true,
    ADD COLUMN status text NOT NULL DEFAULT 'sent' CHECK (status IN ('scheduled', 'sent')),
    ADD COLUMN recipient_count integer NOT NULL DEFAULT 0;

CREATE TABLE email_messages (
    message_id    bigserial PRIMARY KEY,
    campaign_id   text REFERENCES email_campaigns ON DELETE CASCADE,
    newsletter_id text REFERENCES newsletters ON DELETE CASCADE,
    client_id     text NOT NULL REFERENCES accounts ON DELETE CASCADE,
    contact_id    bigint REFERENCES contacts ON DELETE SET NULL,
    email         text NOT NULL,
    subject       text NOT NULL,
    body_text     text NOT NULL,
    body_html     text,
    outbox_id     bigint,
    state         text NOT NULL CHECK (state IN ('outbox', 'not_configured')),
    scheduled_for timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CHECK ((campaign_id IS NULL) <> (newsletter_id IS NULL))
);
CREATE INDEX email_messages_campaign_idx ON email_messages (campaign_id) WHERE campaign_id IS NOT NULL;
CREATE INDEX email_messages_newsletter_idx ON email_messages (newsletter_id) WHERE newsletter_id IS NOT NULL;
CREATE INDEX email_messages_client_idx ON email_messages (client_id);

CREATE TABLE email_events (
    event_key  text PRIMARY KEY,          -- the provider's event id (sg_event_id): idempotent
    message_id bigint NOT NULL REFERENCES email_messages ON DELETE CASCADE,
    event      text NOT NULL CHECK (event IN ('processed', 'delivered', 'open', 'click', 'bounce', 'dropped',
                                              'deferred', 'spamreport', 'unsubscribe')),
    occurred_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX email_events_message_idx ON email_events (message_id);

ALTER TABLE communication_workflows
    ADD COLUMN created_by text NOT NULL DEFAULT 'system',
    ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();
CREATE TABLE workflow_runs (
    run_id      bigserial PRIMARY KEY,
    workflow_id text NOT NULL REFERENCES communication_workflows ON DELETE CASCADE,
    client_id   text REFERENCES accounts ON DELETE CASCADE,
    fired_at    timestamptz NOT NULL DEFAULT now(),
    outcome     text NOT NULL CHECK (outcome IN ('succeeded', 'failed', 'skipped')),
    detail      jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX workflow_runs_workflow_idx ON workflow_runs (workflow_id, fired_at);

ALTER TABLE communities ADD COLUMN created_by text NOT NULL DEFAULT 'system';
CREATE INDEX community_posts_community_idx ON community_posts (community_id, created_at);
CREATE INDEX community_members_community_idx ON community_members (community_id);

-- advocates.total_points: the sum of the advocate's contributions' points (kept by the tool under
-- the advocate's row lock); each contribution records the tier before/after and the multiplier.
ALTER TABLE advocates ADD COLUMN total_points integer NOT NULL DEFAULT 0 CHECK (total_points >= 0),
                      ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();
ALTER TABLE advocate_contributions
    ADD COLUMN base_points integer,
    ADD COLUMN multiplier numeric(4,2),
    ADD COLUMN tier_before text,
    ADD COLUMN tier_after text,
    ADD COLUMN recorded_by text NOT NULL DEFAULT 'system';
CREATE INDEX advocate_contributions_advocate_idx ON advocate_contributions (advocate_id, occurred_at);
CREATE INDEX advocates_client_idx ON advocates (client_id);

ALTER TABLE executive_reviews
    ADD COLUMN briefing jsonb,
    ADD COLUMN prepared_at timestamptz,
    ADD COLUMN created_by text NOT NULL DEFAULT 'system';
CREATE INDEX executive_reviews_client_idx ON executive_reviews (client_id, scheduled_at);
CREATE INDEX executive_reviews_upcoming_idx ON executive_reviews (scheduled_at) WHERE status IN ('scheduled', 'prepared');

ALTER TABLE newsletters
    ADD COLUMN send_to_all boolean NOT NULL DEFAULT true,
    ADD COLUMN target_tiers text[],
    ADD COLUMN exclude_client_ids text[],
    ADD COLUMN status text NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'scheduled', 'sent')),
    ADD COLUMN recipient_count integer NOT NULL DEFAULT 0;

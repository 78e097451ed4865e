-- 0260_outbox.sql - the delivery outbox and the integration switches.
--
-- Anything that must reach an external system (SendGrid, Intercom, Zendesk, Slack, a webhook) is
-- a row in `outbox`, written in the same transaction as the tool call that caused it; the monitor
-- process delivers it later with retries and backoff (docs/architecture.md, DESIGN.md §5). A tool
-- call never waits on an external API. `idempotency_key` makes a retried tool call enqueue at
-- most once. `integrations` holds one row per channel: a channel whose row is absent or disabled
-- is "not configured" and nothing is enqueued for it (csmcp.outbox_enqueue in
-- db/functions/outbox/outbox.sql). Credentials never live here: `settings` holds non-secret
-- settings (e.g. the Zendesk subdomain); secrets come from the configuration's credential files.
CREATE TABLE outbox (
    id              bigserial PRIMARY KEY,
    channel         text NOT NULL CHECK (channel IN ('sendgrid', 'intercom', 'zendesk', 'slack', 'webhook')),
    payload         jsonb NOT NULL,
    idempotency_key text NOT NULL UNIQUE,
    state           text NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'sending', 'sent', 'failed', 'dead')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz,
    source_tool     text,
    client_id       text,
    ref             text
);
CREATE INDEX outbox_due_idx ON outbox (state, next_attempt_at);

CREATE TABLE integrations (
    channel    text PRIMARY KEY,
    enabled    boolean NOT NULL DEFAULT false,
    settings   jsonb NOT NULL DEFAULT '{}',
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- outbox.sql - enqueueing a delivery to an external system (table outbox, migration 0260).
--
-- csmcp.integration_enabled(channel): true when integrations has an enabled row for it.
-- csmcp.outbox_enqueue(...): inside the caller's transaction, queue one delivery and answer what
-- a tool reports to its client:
--   {"state": "not_configured", "channel": …}                  the integration is off: nothing queued
--   {"outbox_id": n, "state": "queued", "channel": …}          a new row
--   {"outbox_id": n, "state": "pending_approval", "channel": …} a new row of a channel that
--                                                              requires approval: it waits for
--                                                              review_outbound_messages and is
--                                                              never delivered before approval
--   {"outbox_id": n, "state": <its state>, "channel": …, "duplicate": true}
--                                                              the idempotency key was already used:
--                                                              the existing row, unchanged
-- A failed/dead row also carries "error" (its last_error), so "failed: reason" can be reported.

CREATE OR REPLACE FUNCTION csmcp.integration_enabled(p_channel text) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT enabled FROM integrations WHERE channel = p_channel), false)
$$;

-- csmcp.outbox_requires_approval(channel): the channel's integrations row has
-- settings.require_approval = true (docs/operations/scorecards.md).
CREATE OR REPLACE FUNCTION csmcp.outbox_requires_approval(p_channel text) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT settings -> 'require_approval' = 'true'::jsonb FROM integrations WHERE channel = p_channel),
                    false)
$$;

CREATE OR REPLACE FUNCTION csmcp.outbox_enqueue(p_channel text, p_payload jsonb, p_idempotency_key text,
                                                p_source_tool text, p_client_id text, p_ref text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    o outbox;
BEGIN
    IF p_channel IS NULL OR p_channel NOT IN ('sendgrid', 'intercom', 'zendesk', 'slack', 'webhook') THEN
        RAISE EXCEPTION 'outbox: unknown channel %', coalesce(p_channel, '(null)') USING ERRCODE = '22023';
    END IF;
    IF p_idempotency_key IS NULL OR p_idempotency_key = '' THEN
        RAISE EXCEPTION 'outbox: an idempotency key is required' USING ERRCODE = '22023';
    END IF;
    IF p_payload IS NULL THEN
        RAISE EXCEPTION 'outbox: a payload is required' USING ERRCODE = '22023';
    END IF;
    IF NOT csmcp.integration_enabled(p_channel) THEN
        RETURN jsonb_build_object('state', 'not_configured', 'channel', p_channel);
    END IF;
    INSERT INTO outbox (channel, payload, idempotency_key, source_tool, client_id, ref, state, created_by)
    VALUES (p_channel, p_payload, p_idempotency_key, p_source_tool, p_client_id, p_ref,
            CASE WHEN csmcp.outbox_requires_approval(p_channel) THEN 'pending_approval' ELSE 'queued' END,
            nullif(current_setting('csmcp.actor', true), ''))
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING * INTO o;
    IF FOUND THEN
        RETURN jsonb_build_object('outbox_id', o.id, 'state', o.state, 'channel', o.channel);
    END IF;
    -- The key was used before (possibly by a concurrent transaction that has just committed:
    -- ON CONFLICT waited for it). Report that row as it is.
    SELECT * INTO o FROM outbox WHERE idempotency_key = p_idempotency_key;
    RETURN jsonb_strip_nulls(jsonb_build_object('outbox_id', o.id, 'state', o.state, 'channel', o.channel,
                                                'duplicate', true, 'error', o.last_error));
END $$;

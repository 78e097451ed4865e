-- delivery.sql - the monitor process's side of the outbox (worker/outbox.c).
--
-- csmcp.outbox_claim(channel, limit, lease_seconds, by): takes up to `limit` due rows of an
-- enabled channel with FOR UPDATE SKIP LOCKED (several monitor processes never take the same row),
-- marks them 'sending' with attempts + 1 and a lease (next_attempt_at = now + lease: a row whose
-- process died before recording the result is due again when the lease ends), and returns the
-- HTTP request to make for each (method, path relative to the channel's base URL, body).
-- Due = state queued or failed with next_attempt_at <= now, or sending with an expired lease.
-- csmcp.outbox_result(id, outcome, status, error, delay_ms, max_attempts) records an attempt:
-- outcome 'sent' -> sent; 'retry' -> failed with next_attempt_at = now + delay_ms, or dead once
-- attempts >= max_attempts; 'dead' -> dead (a 4xx the provider will never accept).

-- The provider request for a payload (docs/operations/integrations.md, "Channels").
CREATE OR REPLACE FUNCTION csmcp.outbox_request(p_channel text, p jsonb,
                                                OUT method text, OUT path text, OUT body jsonb)
LANGUAGE sql IMMUTABLE AS $$
    SELECT x.m, x.pa, x.b FROM (
        SELECT 'POST' AS m, '/v3/mail/send' AS pa, coalesce(p->'body', p) AS b WHERE p_channel = 'sendgrid'
        UNION ALL
        SELECT 'POST', CASE WHEN p->>'kind' = 'event' THEN '/events' ELSE '/messages' END,
               coalesce(p->'body', p - 'kind') WHERE p_channel = 'intercom'
        UNION ALL
        SELECT CASE WHEN p->>'operation' = 'create_ticket' THEN 'POST' ELSE 'PUT' END,
               CASE WHEN p->>'operation' = 'create_ticket' THEN '/api/v2/tickets.json'
                    ELSE '/api/v2/tickets/update_many.json?external_ids=' || (p->>'external_id') END,
               jsonb_build_object('ticket', coalesce(p->'ticket', '{}')
                                            || CASE WHEN p ? 'comment' THEN jsonb_build_object('comment', p->'comment') ELSE '{}' END)
        WHERE p_channel = 'zendesk'
        UNION ALL
        SELECT 'POST', '', jsonb_strip_nulls(jsonb_build_object('text', coalesce(p->>'text', p::text), 'blocks', p->'blocks'))
        WHERE p_channel = 'slack'
        UNION ALL
        SELECT 'POST', '', p WHERE p_channel = 'webhook'
    ) x
$$;

CREATE OR REPLACE FUNCTION csmcp.outbox_claim(p_channel text, p_limit integer, p_lease_seconds integer, p_by text)
RETURNS TABLE (id bigint, attempts integer, idempotency_key text, method text, path text, body text)
LANGUAGE sql AS $$
    WITH c AS (
        SELECT o.id FROM outbox o
        WHERE o.channel = p_channel AND o.state IN ('queued', 'failed', 'sending') AND o.next_attempt_at <= now()
          AND csmcp.integration_enabled(p_channel)
        ORDER BY o.next_attempt_at, o.id
        LIMIT p_limit
        FOR UPDATE SKIP LOCKED
    ), u AS (
        UPDATE outbox o SET state = 'sending', attempts = o.attempts + 1, sending_by = p_by, last_attempt_at = now(),
                            next_attempt_at = now() + make_interval(secs => p_lease_seconds)
        FROM c WHERE o.id = c.id
        RETURNING o.id, o.attempts, o.idempotency_key, o.channel, o.payload
    )
    SELECT u.id, u.attempts, u.idempotency_key, r.method, r.path, r.body::text
    FROM u CROSS JOIN LATERAL csmcp.outbox_request(u.channel, u.payload) r
    ORDER BY u.id
$$;

CREATE OR REPLACE FUNCTION csmcp.outbox_result(p_id bigint, p_outcome text, p_status integer, p_error text,
                                               p_delay_ms integer, p_max_attempts integer)
RETURNS text LANGUAGE sql AS $$
    UPDATE outbox SET
        state = CASE WHEN p_outcome = 'sent' THEN 'sent'
                     WHEN p_outcome = 'dead' OR attempts >= p_max_attempts THEN 'dead'
                     ELSE 'failed' END,
        sent_at = CASE WHEN p_outcome = 'sent' THEN now() END,
        last_status = p_status,
        last_error = CASE WHEN p_outcome = 'sent' THEN NULL ELSE left(p_error, 500) END,
        next_attempt_at = CASE WHEN p_outcome = 'retry' THEN now() + make_interval(secs => p_delay_ms / 1000.0)
                               ELSE next_attempt_at END,
        sending_by = NULL
    WHERE id = p_id AND state = 'sending'
    RETURNING state
$$;

-- db/functions/communication/_lib.sql - helpers shared by the communication & engagement tools
-- (issue 16). The rules are stated in the tools' JSON "rules" (docs/tools.md); keep both in step.
--
--   csmcp.comm_id(prefix, tail)             server ids <prefix>_<epoch microseconds>_<slug of tail>
--   csmcp.comm_tokens_in(text)              the {{token}} names a text uses
--   csmcp.comm_check_tokens(field, text, known)   22023 naming the first unknown token
--   csmcp.comm_render(text, tokens)         text with every {{token}} replaced
--   csmcp.comm_row_tokens(account, contact) the built-in tokens of one recipient
--   csmcp.comm_enqueue_email(...)           one message -> email_messages (+ outbox when due)
--   csmcp.comm_outbox_message(...)          a stored message -> the SendGrid outbox
--   csmcp.comm_may_send(contact, kind)      the contact's opt-outs allow this kind of message
--   csmcp.comm_release_due(limit)           due scheduled messages -> outbox (or suppressed)
--   csmcp.comm_delivery_counts(ids)         per-state counts of messages

CREATE OR REPLACE FUNCTION csmcp.comm_slug(p text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT trim(BOTH '_' FROM regexp_replace(lower(coalesce(p, '')), '[^a-z0-9]+', '_', 'g'))
$$;

CREATE OR REPLACE FUNCTION csmcp.comm_id(p_prefix text, p_tail text) RETURNS text
LANGUAGE sql VOLATILE AS $$
    SELECT p_prefix || '_' || floor(extract(epoch FROM clock_timestamp()) * 1000000)::bigint::text
           || '_' || csmcp.comm_slug(left(p_tail, 20))
$$;

-- The built-in tokens every message can use, in the order documented.
CREATE OR REPLACE FUNCTION csmcp.comm_builtin_tokens() RETURNS text[]
LANGUAGE sql IMMUTABLE AS $$
    SELECT ARRAY['client_id', 'customer_name', 'client_name', 'company_name', 'industry', 'tier', 'csm_name',
                 'health_score', 'contact_name', 'first_name', 'contact_email', 'contact_title']
$$;

CREATE OR REPLACE FUNCTION csmcp.comm_tokens_in(p text) RETURNS text[]
LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(array_agg(DISTINCT m[1]), '{}')
    FROM regexp_matches(coalesce(p, ''), '\{\{\s*([A-Za-z0-9_]+)\s*\}\}', 'g') AS m
$$;

-- Raises 22023 "<field>: unknown personalization token {{x}} (known: ...)" for the first token
-- (alphabetically) of p that is not in p_known.
CREATE OR REPLACE FUNCTION csmcp.comm_check_tokens(p_field text, p text, p_known text[]) RETURNS void
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    bad text;
BEGIN
    SELECT t INTO bad FROM unnest(csmcp.comm_tokens_in(p)) t WHERE NOT (t = ANY (p_known)) ORDER BY t LIMIT 1;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION '%: unknown personalization token {{%}} (known: %)', p_field, bad,
            array_to_string(ARRAY(SELECT DISTINCT k FROM unnest(p_known) k ORDER BY k), ', ')
            USING ERRCODE = '22023';
    END IF;
END $$;

CREATE OR REPLACE FUNCTION csmcp.comm_render(p text, p_tokens jsonb) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    r text := p;
    t text;
BEGIN
    IF p IS NULL THEN RETURN NULL; END IF;
    FOREACH t IN ARRAY csmcp.comm_tokens_in(p) LOOP
        r := regexp_replace(r, '\{\{\s*' || t || '\s*\}\}', replace(coalesce(p_tokens ->> t, ''), '\', '\\'), 'g');
    END LOOP;
    RETURN r;
END $$;

-- Built-in tokens of one recipient (NULL values render as the empty string).
CREATE OR REPLACE FUNCTION csmcp.comm_row_tokens(a accounts, p_name text, p_email text, p_title text) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_build_object(
        'client_id', a.client_id, 'customer_name', a.client_name, 'client_name', a.client_name,
        'company_name', a.company_name, 'industry', a.industry, 'tier', a.tier, 'csm_name', a.csm_assigned,
        'health_score', a.health_score::text, 'contact_name', p_name,
        'first_name', split_part(btrim(coalesce(p_name, '')), ' ', 1), 'contact_email', p_email,
        'contact_title', p_title)
$$;

-- Puts one rendered message in email_messages. Due now (p_due NULL or past): into the outbox
-- (SendGrid) at once when SendGrid is enabled, else state not_configured. Due later: state
-- 'scheduled', outside the outbox; csmcp.comm_release_due (the monitor's communication tick) puts
-- it in the outbox at its time unless its contact has unsubscribed meanwhile. One message per
-- recipient and send: a repeated (campaign|newsletter, contact) returns NULL and stores nothing.
-- Returns the message row id.
-- (signature changed in 0242's release: drop the 14-argument version of older databases)
DROP FUNCTION IF EXISTS csmcp.comm_enqueue_email(text, text, text, bigint, text, text, text, text, text, text, timestamptz,
                                                 boolean, boolean, text);
CREATE OR REPLACE FUNCTION csmcp.comm_enqueue_email(p_campaign_id text, p_newsletter_id text, p_client_id text,
                                                    p_contact_id bigint, p_email text, p_name text, p_sender text,
                                                    p_subject text, p_text text, p_html text, p_due timestamptz,
                                                    p_track_opens boolean, p_track_clicks boolean, p_tool text,
                                                    p_run_id bigint DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    mid bigint;
BEGIN
    INSERT INTO email_messages (campaign_id, newsletter_id, workflow_run_id, client_id, contact_id, email, subject, body_text,
                                body_html, state, scheduled_for)
    VALUES (p_campaign_id, p_newsletter_id, p_run_id, p_client_id, p_contact_id, p_email, p_subject, p_text, p_html,
            CASE WHEN p_due IS NOT NULL AND p_due > now() THEN 'scheduled' ELSE 'not_configured' END, p_due)
    ON CONFLICT DO NOTHING
    RETURNING message_id INTO mid;
    IF mid IS NULL THEN RETURN NULL; END IF;
    IF p_due IS NULL OR p_due <= now() THEN
        PERFORM csmcp.comm_outbox_message(mid, p_sender, p_name, p_track_opens, p_track_clicks, p_tool);
    END IF;
    RETURN mid;
END $$;

-- Puts stored message p_mid in the SendGrid outbox (idempotency key email_message:<id>): state
-- outbox, or not_configured when SendGrid is off (nothing sent).
CREATE OR REPLACE FUNCTION csmcp.comm_outbox_message(p_mid bigint, p_sender text, p_name text, p_track_opens boolean,
                                                     p_track_clicks boolean, p_tool text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    m email_messages;
    q jsonb;
    body jsonb;
BEGIN
    SELECT * INTO m FROM email_messages WHERE message_id = p_mid;
    body := jsonb_build_object(
        'personalizations', jsonb_build_array(jsonb_build_object(
            'to', jsonb_build_array(jsonb_strip_nulls(jsonb_build_object('email', m.email, 'name', p_name))))),
        'from', jsonb_build_object('email', p_sender),
        'subject', m.subject,
        'content', CASE WHEN m.body_html IS NULL THEN jsonb_build_array(jsonb_build_object('type', 'text/plain', 'value', m.body_text))
                        ELSE jsonb_build_array(jsonb_build_object('type', 'text/plain', 'value', m.body_text),
                                               jsonb_build_object('type', 'text/html', 'value', m.body_html)) END,
        'tracking_settings', jsonb_build_object('open_tracking', jsonb_build_object('enable', coalesce(p_track_opens, true)),
                                                'click_tracking', jsonb_build_object('enable', coalesce(p_track_clicks, true))),
        'custom_args', jsonb_build_object('csmcp_message_id', m.message_id::text));
    q := csmcp.outbox_enqueue('sendgrid', jsonb_build_object('body', body), 'email_message:' || m.message_id, p_tool,
                              m.client_id, coalesce(m.campaign_id, m.newsletter_id, 'workflow_run:' || m.workflow_run_id));
    IF q ? 'outbox_id' THEN
        UPDATE email_messages SET outbox_id = (q ->> 'outbox_id')::bigint, state = 'outbox' WHERE message_id = m.message_id;
        RETURN 'outbox';
    END IF;
    UPDATE email_messages SET state = 'not_configured' WHERE message_id = m.message_id;
    RETURN 'not_configured';
END $$;

-- Whether contact p_contact may receive a message of kind p_kind ('newsletter' or 'email'): never
-- when contacts.unsubscribed (opted out of all email); a newsletter also not when the contact's
-- newsletter subscription is off (its own row, else on for the account's primary contact).
CREATE OR REPLACE FUNCTION csmcp.comm_may_send(p_contact bigint, p_kind text) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM contacts c LEFT JOIN newsletter_contact_subscriptions s ON s.contact_id = c.contact_id
                   WHERE c.contact_id = p_contact AND NOT c.unsubscribed
                     AND (p_kind <> 'newsletter' OR coalesce(s.subscribed, c.is_primary)))
$$;

-- Releases due scheduled messages (at most p_limit, oldest first) into the outbox; a message whose
-- contact may no longer receive it becomes 'suppressed'. Returns {released, suppressed}.
CREATE OR REPLACE FUNCTION csmcp.comm_release_due(p_limit integer) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    r record;
    v_rel integer := 0;
    v_sup integer := 0;
BEGIN
    FOR r IN SELECT m.message_id, m.contact_id, m.newsletter_id, coalesce(c.sender_email, n.sender_email) AS sender,
                    coalesce(c.track_opens, true) AS opens, coalesce(c.track_clicks, true) AS clicks,
                    k.name AS contact_name
             FROM email_messages m
             LEFT JOIN email_campaigns c ON c.campaign_id = m.campaign_id
             LEFT JOIN newsletters n ON n.newsletter_id = m.newsletter_id
             LEFT JOIN contacts k ON k.contact_id = m.contact_id
             WHERE m.state = 'scheduled' AND m.scheduled_for <= now()
             ORDER BY m.scheduled_for, m.message_id LIMIT p_limit
             FOR UPDATE OF m SKIP LOCKED LOOP
        IF r.contact_id IS NOT NULL
           AND NOT csmcp.comm_may_send(r.contact_id, CASE WHEN r.newsletter_id IS NOT NULL THEN 'newsletter' ELSE 'email' END) THEN
            UPDATE email_messages SET state = 'suppressed' WHERE message_id = r.message_id;
            v_sup := v_sup + 1;
        ELSE
            PERFORM csmcp.comm_outbox_message(r.message_id, r.sender, r.contact_name, r.opens, r.clicks,
                                              CASE WHEN r.newsletter_id IS NOT NULL THEN 'automate_newsletters'
                                                   ELSE 'send_personalized_email' END);
            v_rel := v_rel + 1;
        END IF;
    END LOOP;
    RETURN jsonb_build_object('released', v_rel, 'suppressed', v_sup);
END $$;

-- Delivery state of messages: scheduled (waiting for its time), suppressed (recipient unsubscribed
-- before its time), the outbox row's state (queued, pending_approval, sending, sent, failed, dead),
-- or not_configured when SendGrid was off when it was due (nothing was sent).
CREATE OR REPLACE FUNCTION csmcp.comm_delivery_counts(p_campaign_id text, p_newsletter_id text) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    WITH s AS (
        SELECT CASE WHEN m.state <> 'outbox' THEN m.state ELSE coalesce(o.state, 'queued') END AS st
        FROM email_messages m LEFT JOIN outbox o ON o.id = m.outbox_id
        WHERE (p_campaign_id IS NOT NULL AND m.campaign_id = p_campaign_id)
           OR (p_newsletter_id IS NOT NULL AND m.newsletter_id = p_newsletter_id)
    )
    SELECT jsonb_build_object('scheduled', count(*) FILTER (WHERE st = 'scheduled'),
                              'queued', count(*) FILTER (WHERE st = 'queued'),
                              'pending_approval', count(*) FILTER (WHERE st = 'pending_approval'),
                              'sending', count(*) FILTER (WHERE st = 'sending'),
                              'sent', count(*) FILTER (WHERE st = 'sent'),
                              'failed', count(*) FILTER (WHERE st = 'failed'),
                              'dead', count(*) FILTER (WHERE st = 'dead'),
                              'suppressed', count(*) FILTER (WHERE st = 'suppressed'),
                              'not_configured', count(*) FILTER (WHERE st = 'not_configured'))
    FROM s
$$;

-- Recipients of a targeting: the accounts of p_client_ids, of segment p_segment and of tier p_tier
-- (union), minus p_exclude; per account its primary contact, or every contact when p_all; an
-- unsubscribed contact is never a recipient. Accounts without an eligible contact yield a row with
-- contact_id NULL (counted, not sent).
CREATE OR REPLACE FUNCTION csmcp.comm_recipients(p_client_ids text[], p_segment text, p_tier text, p_all boolean,
                                                 p_exclude text[])
RETURNS TABLE (client_id text, contact_id bigint, email text, name text, title text, unsubscribed_skipped integer)
LANGUAGE sql STABLE AS $$
    WITH acc AS (
        SELECT a.client_id FROM accounts a WHERE a.client_id = ANY (coalesce(p_client_ids, '{}'))
        UNION
        SELECT m.client_id FROM segment_members m WHERE p_segment IS NOT NULL AND m.segment_id = p_segment
        UNION
        SELECT a.client_id FROM accounts a WHERE p_tier IS NOT NULL AND a.tier = p_tier
    ), acc2 AS (
        SELECT acc.client_id FROM acc WHERE NOT (acc.client_id = ANY (coalesce(p_exclude, '{}')))
    )
    SELECT acc2.client_id, c.contact_id, c.email, c.name, c.title, us.n
    FROM acc2
    CROSS JOIN LATERAL (  -- once per account, not per contact
        SELECT count(*)::integer AS n FROM contacts u
        WHERE u.client_id = acc2.client_id AND u.unsubscribed AND (p_all OR u.is_primary)
    ) us
    LEFT JOIN LATERAL (
        SELECT c.* FROM contacts c
        WHERE c.client_id = acc2.client_id AND NOT c.unsubscribed AND (p_all OR c.is_primary)
    ) c ON true
$$;

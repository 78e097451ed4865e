-- automate_newsletters: newsletters (draft -> [preparing ->] scheduled: recipients resolved and each
-- message stored, released into the outbox at scheduled_send by the communication tick -> sent; a
-- recurring edition then gets its next one, db/functions/communication/tick.sql), subscriptions per
-- contact, performance from recorded events.

-- Records one delivery/engagement event of a message (idempotent on the provider's event id);
-- for the SendGrid event webhook. Returns true when the event is new.
CREATE OR REPLACE FUNCTION csmcp.comm_record_email_event(p_event_key text, p_message_id bigint, p_event text,
                                                         p_at timestamptz)
RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO email_events (event_key, message_id, event, occurred_at)
    VALUES (p_event_key, p_message_id, p_event, coalesce(p_at, now()))
    ON CONFLICT (event_key) DO NOTHING;
    RETURN FOUND;
END $$;

-- POST /hooks/sendgrid (worker/hook_sendgrid.c, signature already verified): records a SendGrid
-- Event Webhook batch. An event is recorded when it has sg_event_id, a known event name and
-- csmcp_message_id (our custom_args) naming a stored email message; its time is the event's
-- Unix timestamp. A repeated sg_event_id is a duplicate (idempotent); anything else is ignored.
CREATE OR REPLACE FUNCTION csmcp.comm_record_sendgrid_events(p_batch jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    e jsonb;
    v_rec integer := 0;
    v_dup integer := 0;
    v_ign integer := 0;
    v_mid bigint;
BEGIN
    IF jsonb_typeof(p_batch) <> 'array' THEN
        RAISE EXCEPTION 'sendgrid events: a JSON array is required' USING ERRCODE = '22023';
    END IF;
    FOR e IN SELECT x FROM jsonb_array_elements(p_batch) x LOOP
        v_mid := NULL;
        IF jsonb_typeof(e) = 'object' AND coalesce(e ->> 'sg_event_id', '') <> ''
           AND e ->> 'event' IN ('processed', 'delivered', 'open', 'click', 'bounce', 'dropped', 'deferred', 'spamreport',
                                 'unsubscribe')
           AND coalesce(e ->> 'csmcp_message_id', '') ~ '^[0-9]{1,18}$' THEN
            SELECT m.message_id INTO v_mid FROM email_messages m WHERE m.message_id = (e ->> 'csmcp_message_id')::bigint;
        END IF;
        IF v_mid IS NULL THEN
            v_ign := v_ign + 1;
        ELSIF csmcp.comm_record_email_event(e ->> 'sg_event_id', v_mid, e ->> 'event',
                                            CASE WHEN jsonb_typeof(e -> 'timestamp') = 'number'
                                                 THEN to_timestamp((e ->> 'timestamp')::double precision) END) THEN
            v_rec := v_rec + 1;
            IF e ->> 'event' IN ('unsubscribe', 'spamreport') THEN
                PERFORM csmcp.comm_unsubscribe_from_message(v_mid);
            END IF;
        ELSE
            v_dup := v_dup + 1;
        END IF;
    END LOOP;
    RETURN jsonb_build_object('recorded', v_rec, 'duplicates', v_dup, 'ignored', v_ign);
END $$;

-- An unsubscribe (or spam report) event of a message: the recipient stops receiving that kind of
-- message — a newsletter's recipient is unsubscribed from the newsletters, any other recipient
-- opts out of all email (contacts.unsubscribed). Logged with old and new values.
CREATE OR REPLACE FUNCTION csmcp.comm_unsubscribe_from_message(p_mid bigint) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    m email_messages;
BEGIN
    SELECT * INTO m FROM email_messages WHERE message_id = p_mid;
    IF m.contact_id IS NULL THEN RETURN; END IF;
    IF m.newsletter_id IS NOT NULL THEN
        PERFORM csmcp.comm_set_subscription(m.contact_id, false, 'sendgrid:event_webhook');
    ELSIF EXISTS (SELECT 1 FROM contacts WHERE contact_id = m.contact_id AND NOT unsubscribed) THEN
        UPDATE contacts SET unsubscribed = true WHERE contact_id = m.contact_id;
        PERFORM csmcp.log_activity(m.client_id, 'sendgrid:event_webhook', 'update', 'contact', m.contact_id::text,
                                   jsonb_build_object('unsubscribed', false), jsonb_build_object('unsubscribed', true));
    END IF;
END $$;

-- Sets contact p_contact's newsletter subscription; returns the previous effective value (a
-- contact without a row: subscribed when primary). Logs a change with old and new values.
CREATE OR REPLACE FUNCTION csmcp.comm_set_subscription(p_contact bigint, p_on boolean, p_actor text) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    k contacts;
    v_old boolean;
BEGIN
    SELECT * INTO k FROM contacts WHERE contact_id = p_contact FOR UPDATE;
    SELECT coalesce(s.subscribed, k.is_primary) INTO v_old
    FROM (SELECT 1) d LEFT JOIN newsletter_contact_subscriptions s ON s.contact_id = p_contact;
    INSERT INTO newsletter_contact_subscriptions (contact_id, client_id, subscribed, updated_at)
    VALUES (p_contact, k.client_id, p_on, now())
    ON CONFLICT (contact_id) DO UPDATE SET subscribed = EXCLUDED.subscribed, updated_at = now();
    IF v_old <> p_on THEN
        PERFORM csmcp.log_activity(k.client_id, p_actor, 'update', 'newsletter_subscription', p_contact::text,
                                   jsonb_build_object('email', k.email, 'subscribed', v_old),
                                   jsonb_build_object('email', k.email, 'subscribed', p_on));
    END IF;
    RETURN v_old;
END $$;

-- Newsletter subscription status of every contact of an account (or one).
CREATE OR REPLACE FUNCTION csmcp.comm_subscription_rows(p_client text, p_contact bigint) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT coalesce(jsonb_agg(jsonb_build_object(
               'contact_id', c.contact_id, 'email', c.email, 'name', c.name, 'is_primary', c.is_primary,
               'subscribed', coalesce(s.subscribed, c.is_primary), 'explicit', s.contact_id IS NOT NULL,
               'email_opt_out', c.unsubscribed,
               'receives_newsletters', coalesce(s.subscribed, c.is_primary) AND NOT c.unsubscribed,
               'updated_at', s.updated_at) ORDER BY c.contact_id), '[]')
    FROM contacts c LEFT JOIN newsletter_contact_subscriptions s ON s.contact_id = c.contact_id
    WHERE c.client_id = p_client AND (p_contact IS NULL OR c.contact_id = p_contact)
$$;

CREATE OR REPLACE FUNCTION csmcp.newsletter_json(n newsletters) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'newsletter_id', n.newsletter_id, 'newsletter_name', n.name, 'edition_number', n.edition_number,
        'subject_line', n.subject_line, 'sections', n.sections, 'status', n.status, 'scheduled_send', n.scheduled_send,
        'send_to_all', n.send_to_all, 'target_tiers', coalesce(to_jsonb(n.target_tiers), '[]'),
        'exclude_client_ids', coalesce(to_jsonb(n.exclude_client_ids), '[]'),
        'is_recurring', n.recurrence_pattern IS NOT NULL, 'recurrence_pattern', n.recurrence_pattern,
        'next_send', CASE WHEN n.recurrence_pattern IS NOT NULL AND n.scheduled_send IS NOT NULL THEN
                          n.scheduled_send + csmcp.comm_cadence(n.recurrence_pattern) END,
        'sent_at', n.sent_at, 'sender_email', n.sender_email, 'previous_newsletter_id', n.previous_newsletter_id,
        'next_newsletter_id', (SELECT x.newsletter_id FROM newsletters x WHERE x.previous_newsletter_id = n.newsletter_id
                               ORDER BY x.created_at LIMIT 1),
        'progress', csmcp.comm_send_progress(NULL, n.newsletter_id),
        'recipient_count', n.recipient_count, 'created_by', n.created_by, 'created_at', n.created_at,
        'delivery', csmcp.comm_delivery_counts(NULL, n.newsletter_id))
$$;

-- The plain-text body of a newsletter from its sections.
CREATE OR REPLACE FUNCTION csmcp.newsletter_text(n newsletters) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(string_agg(upper(coalesce(s ->> 'title', '')) || E'\n' || coalesce(s ->> 'content', ''), E'\n\n'
                               ORDER BY o), '')
    FROM jsonb_array_elements(n.sections) WITH ORDINALITY AS t(s, o)
$$;

CREATE OR REPLACE FUNCTION csmcp.tool_automate_newsletters(args jsonb, principal text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v_action text := csmcp.arg_text(args, 'action', NULL, ARRAY['create_newsletter', 'schedule_newsletter', 'get_newsletter',
                                                                'track_performance', 'list_newsletters', 'manage_subscriptions']);
    v_name text := nullif(btrim(csmcp.arg_text(args, 'newsletter_name', NULL)), '');
    v_edition integer := csmcp.arg_int(args, 'edition_number', NULL, 1, 100000);
    v_subject text := csmcp.arg_text(args, 'subject_line', NULL);
    v_when_txt text := csmcp.arg_text(args, 'scheduled_send', NULL);
    v_all boolean := csmcp.arg_bool(args, 'send_to_all', true);
    v_recurring boolean := csmcp.arg_bool(args, 'is_recurring', false);
    v_pattern text := csmcp.arg_text(args, 'recurrence_pattern', NULL);
    v_by text := coalesce(nullif(btrim(csmcp.arg_text(args, 'created_by', NULL)), ''), principal);
    v_sender text := csmcp.arg_text(args, 'sender_email', NULL);
    v_id text := csmcp.arg_text(args, 'newsletter_id', NULL);
    v_client text := csmcp.arg_text(args, 'client_id', NULL);
    v_sub text := csmcp.arg_text(args, 'subscription_action', NULL);
    v_status text := csmcp.arg_text(args, 'status', NULL);
    v_limit integer := csmcp.arg_int(args, 'limit', 50, 1, 1000);
    v_offset integer := csmcp.arg_int(args, 'offset', 0, 0, 1000000);
    v_tiers text[];
    v_exclude text[];
    v_when timestamptz;
    v_missing text;
    n newsletters;
    old_n newsletters;
    acc accounts;
    r record;
    v_count integer := 0;
    v_items jsonb;
    v_total integer;
    v_perf jsonb;
    v_old boolean;
    v_new boolean;
    v_cemail text := csmcp.arg_text(args, 'contact_email', NULL);
    k contacts;
BEGIN
    IF v_action = 'manage_subscriptions' THEN
        acc := csmcp.require_account(v_client);
        IF v_sub IS NULL THEN PERFORM csmcp.invalid('subscription_action: required for manage_subscriptions'); END IF;
        IF v_cemail IS NOT NULL THEN
            SELECT * INTO k FROM contacts WHERE client_id = v_client AND lower(email) = lower(v_cemail);
            IF NOT FOUND THEN
                RAISE EXCEPTION 'contact % not found at account %', v_cemail, v_client USING ERRCODE = 'P0002';
            END IF;
        ELSIF v_sub <> 'get_status' THEN
            PERFORM csmcp.invalid('contact_email: required for ' || v_sub || ' (subscriptions are per contact)');
        END IF;
        IF v_sub = 'get_status' THEN
            v_items := csmcp.comm_subscription_rows(v_client, k.contact_id);
            RETURN jsonb_build_object('action', v_action, 'client_id', v_client, 'contacts', v_items,
                                      'subscribed_count', (SELECT count(*) FROM jsonb_array_elements(v_items) e
                                                           WHERE (e ->> 'receives_newsletters')::boolean),
                                      'summary', format('%s: %s of %s contact(s) receive the newsletters', acc.client_name,
                                                        (SELECT count(*) FROM jsonb_array_elements(v_items) e
                                                         WHERE (e ->> 'receives_newsletters')::boolean),
                                                        jsonb_array_length(v_items)));
        END IF;
        v_new := v_sub = 'subscribe';
        v_old := csmcp.comm_set_subscription(k.contact_id, v_new, principal);
        -- an unsubscribe also applies to editions already stored and waiting for their time
        IF NOT v_new THEN
            UPDATE email_messages SET state = 'suppressed'
            WHERE contact_id = k.contact_id AND newsletter_id IS NOT NULL AND state = 'scheduled';
            GET DIAGNOSTICS v_count = ROW_COUNT;
        END IF;
        v_items := csmcp.comm_subscription_rows(v_client, k.contact_id);
        RETURN jsonb_build_object('action', v_action, 'client_id', v_client, 'contacts', v_items,
                                  'subscribed', v_new, 'changed', v_new <> v_old, 'suppressed_scheduled', v_count,
                                  'summary', format('%s (%s) is %s the newsletters%s%s', k.email, acc.client_name,
                                                    CASE WHEN v_new THEN 'subscribed to' ELSE 'unsubscribed from' END,
                                                    CASE WHEN v_new = v_old THEN ' (unchanged)' ELSE '' END,
                                                    CASE WHEN v_count > 0 THEN format('; %s scheduled edition message(s) withdrawn', v_count)
                                                         ELSE '' END));
    END IF;

    IF v_action = 'list_newsletters' THEN
        SELECT count(*) INTO v_total FROM newsletters x WHERE v_status IS NULL OR x.status = v_status;
        SELECT coalesce(jsonb_agg(csmcp.newsletter_json(x) - 'sections' ORDER BY x.created_at DESC, x.newsletter_id DESC), '[]')
          INTO v_items
          FROM (SELECT * FROM newsletters x WHERE v_status IS NULL OR x.status = v_status
                ORDER BY x.created_at DESC, x.newsletter_id DESC LIMIT v_limit OFFSET v_offset) x;
        RETURN jsonb_build_object('action', v_action, 'newsletters', v_items, 'total_count', v_total,
                                  'returned_count', jsonb_array_length(v_items), 'limit', v_limit, 'offset', v_offset,
                                  'summary', format('%s newsletter(s)%s', v_total, coalesce(' with status ' || v_status, '')));
    END IF;

    IF args ? 'target_tiers' THEN
        SELECT array_agg(DISTINCT x ORDER BY x) INTO v_tiers FROM jsonb_array_elements_text(args -> 'target_tiers') x;
    END IF;
    IF args ? 'exclude_client_ids' THEN
        SELECT array_agg(DISTINCT x ORDER BY x) INTO v_exclude FROM jsonb_array_elements_text(args -> 'exclude_client_ids') x;
    END IF;
    IF v_when_txt IS NOT NULL THEN
        BEGIN
            v_when := v_when_txt::timestamptz;
        EXCEPTION WHEN others THEN
            PERFORM csmcp.invalid('scheduled_send: not an ISO date-time: ' || v_when_txt);
        END;
        IF v_when <= now() THEN PERFORM csmcp.invalid('scheduled_send: must be in the future'); END IF;
    END IF;

    IF v_action = 'create_newsletter' THEN
        IF v_name IS NULL THEN PERFORM csmcp.invalid('newsletter_name: required for create_newsletter'); END IF;
        IF v_subject IS NULL THEN PERFORM csmcp.invalid('subject_line: required for create_newsletter'); END IF;
        IF NOT v_all AND v_tiers IS NULL THEN
            PERFORM csmcp.invalid('target_tiers: required when send_to_all is false');
        END IF;
        IF v_all AND v_tiers IS NOT NULL THEN
            PERFORM csmcp.invalid('target_tiers: only with send_to_all = false');
        END IF;
        IF v_recurring AND v_pattern IS NULL THEN
            PERFORM csmcp.invalid('recurrence_pattern: required when is_recurring is true');
        END IF;
        IF NOT v_recurring AND v_pattern IS NOT NULL THEN
            PERFORM csmcp.invalid('recurrence_pattern: only with is_recurring = true');
        END IF;
        SELECT x INTO v_missing FROM unnest(v_exclude) x WHERE NOT EXISTS (SELECT 1 FROM accounts WHERE client_id = x)
        ORDER BY x LIMIT 1;
        IF v_missing IS NOT NULL THEN RAISE EXCEPTION 'client not found: %', v_missing USING ERRCODE = 'P0002'; END IF;
        INSERT INTO newsletters (newsletter_id, name, edition_number, subject_line, sections, recurrence_pattern, created_by,
                                 send_to_all, target_tiers, exclude_client_ids)
        VALUES (csmcp.comm_id('newsletter', v_name), v_name, v_edition, v_subject, coalesce(args -> 'sections', '[]'),
                v_pattern, v_by, v_all, v_tiers, v_exclude)
        RETURNING * INTO n;
        PERFORM csmcp.log_activity(NULL, principal, 'create', 'newsletter', n.newsletter_id, NULL, to_jsonb(n));
        IF v_when IS NULL THEN
            RETURN jsonb_build_object('action', v_action, 'newsletter', csmcp.newsletter_json(n),
                                      'summary', format('Newsletter %s "%s" created as a draft', n.newsletter_id, v_name));
        END IF;
        v_action := 'schedule_newsletter';
    ELSE
        IF v_id IS NULL THEN PERFORM csmcp.invalid('newsletter_id: required for ' || v_action); END IF;
        IF v_action = 'schedule_newsletter' THEN
            SELECT * INTO n FROM newsletters WHERE newsletter_id = v_id FOR UPDATE;
        ELSE
            SELECT * INTO n FROM newsletters WHERE newsletter_id = v_id;
        END IF;
        IF NOT FOUND THEN RAISE EXCEPTION 'newsletter % not found', v_id USING ERRCODE = 'P0002'; END IF;
    END IF;

    IF v_action = 'get_newsletter' THEN
        RETURN jsonb_build_object('action', v_action, 'newsletter', csmcp.newsletter_json(n),
                                  'summary', format('Newsletter %s "%s": %s, %s recipient(s)', n.newsletter_id, n.name,
                                                    n.status, n.recipient_count));
    END IF;

    IF v_action = 'track_performance' THEN
        WITH m AS (SELECT message_id FROM email_messages WHERE newsletter_id = n.newsletter_id),
        e AS (SELECT ev.message_id, ev.event FROM email_events ev JOIN m USING (message_id)),
        c AS (SELECT count(DISTINCT message_id) FILTER (WHERE event = 'delivered') AS delivered,
                     count(DISTINCT message_id) FILTER (WHERE event = 'open') AS opens,
                     count(DISTINCT message_id) FILTER (WHERE event = 'click') AS clicks,
                     count(DISTINCT message_id) FILTER (WHERE event IN ('bounce', 'dropped')) AS bounced,
                     count(DISTINCT message_id) FILTER (WHERE event = 'unsubscribe') AS unsubscribed,
                     count(*) FILTER (WHERE event = 'open') AS open_events,
                     count(*) FILTER (WHERE event = 'click') AS click_events
              FROM e)
        SELECT jsonb_build_object(
                   'messages', (SELECT count(*) FROM m), 'delivered', delivered, 'unique_opens', opens,
                   'unique_clicks', clicks, 'bounced', bounced, 'unsubscribed', unsubscribed,
                   'open_events', open_events, 'click_events', click_events,
                   'open_rate', CASE WHEN delivered > 0 THEN round(opens::numeric / delivered, 4) END,
                   'click_rate', CASE WHEN delivered > 0 THEN round(clicks::numeric / delivered, 4) END,
                   'click_to_open_rate', CASE WHEN opens > 0 THEN round(clicks::numeric / opens, 4) END,
                   'bounce_rate', CASE WHEN (SELECT count(*) FROM m) > 0
                                       THEN round(bounced::numeric / (SELECT count(*) FROM m), 4) END)
          INTO v_perf FROM c;
        RETURN jsonb_build_object('action', v_action, 'newsletter_id', n.newsletter_id, 'status', n.status,
                                  'performance', v_perf, 'delivery', csmcp.comm_delivery_counts(NULL, n.newsletter_id),
                                  'summary', format('Newsletter %s: %s message(s), %s delivered, %s unique open(s), %s unique click(s), %s bounced',
                                                    n.newsletter_id, v_perf ->> 'messages', v_perf ->> 'delivered',
                                                    v_perf ->> 'unique_opens', v_perf ->> 'unique_clicks', v_perf ->> 'bounced'));
    END IF;

    -- schedule_newsletter (or create with scheduled_send): resolve recipients, enqueue each message.
    IF n.status <> 'draft' THEN
        RAISE EXCEPTION 'newsletter % is already %', n.newsletter_id, n.status USING ERRCODE = 'P0001';
    END IF;
    IF v_when IS NULL THEN PERFORM csmcp.invalid('scheduled_send: required to schedule'); END IF;
    IF v_sender IS NULL THEN PERFORM csmcp.invalid('sender_email: required to schedule'); END IF;
    old_n := n;
    UPDATE newsletters SET scheduled_send = v_when, sender_email = v_sender WHERE newsletter_id = n.newsletter_id;
    v_count := csmcp.comm_newsletter_prepare(n.newsletter_id);
    SELECT * INTO n FROM newsletters WHERE newsletter_id = n.newsletter_id;
    PERFORM csmcp.log_activity(NULL, principal, 'update', 'newsletter', n.newsletter_id,
                               jsonb_build_object('status', old_n.status, 'scheduled_send', old_n.scheduled_send),
                               jsonb_build_object('status', n.status, 'scheduled_send', n.scheduled_send,
                                                  'recipient_count', v_count, 'sender_email', v_sender));
    RETURN jsonb_build_object('action', v_action, 'newsletter', csmcp.newsletter_json(n),
                              'summary', format('Newsletter %s "%s" %s for %s to %s recipient(s); delivery: %s',
                                                n.newsletter_id, n.name,
                                                CASE WHEN n.status = 'preparing' THEN 'preparing (recipients stored in chunks by the monitor''s communication tick)'
                                                     ELSE 'scheduled' END,
                                                to_char(v_when AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI "UTC"'),
                                                CASE WHEN n.status = 'preparing' THEN (csmcp.comm_send_progress(NULL, n.newsletter_id) ->> 'estimated')::integer
                                                     ELSE v_count END,
                                                CASE WHEN csmcp.integration_enabled('sendgrid') THEN 'released into the outbox at the scheduled time'
                                                     ELSE 'SendGrid not configured, recorded as not sent' END));
END $$;

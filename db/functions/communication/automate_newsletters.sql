-- automate_newsletters: newsletters (draft -> scheduled: recipients resolved and each message put in
-- the outbox, due at scheduled_send), subscriptions per account, performance from recorded events.

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
        ELSE
            v_dup := v_dup + 1;
        END IF;
    END LOOP;
    RETURN jsonb_build_object('recorded', v_rec, 'duplicates', v_dup, 'ignored', v_ign);
END $$;

CREATE OR REPLACE FUNCTION csmcp.newsletter_json(n newsletters) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'newsletter_id', n.newsletter_id, 'newsletter_name', n.name, 'edition_number', n.edition_number,
        'subject_line', n.subject_line, 'sections', n.sections, 'status', n.status, 'scheduled_send', n.scheduled_send,
        'send_to_all', n.send_to_all, 'target_tiers', coalesce(to_jsonb(n.target_tiers), '[]'),
        'exclude_client_ids', coalesce(to_jsonb(n.exclude_client_ids), '[]'),
        'is_recurring', n.recurrence_pattern IS NOT NULL, 'recurrence_pattern', n.recurrence_pattern,
        'next_send', CASE WHEN n.recurrence_pattern IS NOT NULL AND n.scheduled_send IS NOT NULL THEN
                          n.scheduled_send + CASE n.recurrence_pattern WHEN 'weekly' THEN interval '7 days'
                                                                       WHEN 'monthly' THEN interval '1 month'
                                                                       ELSE interval '3 months' END END,
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
BEGIN
    IF v_action = 'manage_subscriptions' THEN
        acc := csmcp.require_account(v_client);
        IF v_sub IS NULL THEN PERFORM csmcp.invalid('subscription_action: required for manage_subscriptions'); END IF;
        SELECT subscribed INTO v_old FROM newsletter_subscriptions WHERE client_id = v_client FOR UPDATE;
        v_old := coalesce(v_old, true);
        IF v_sub = 'get_status' THEN
            v_new := v_old;
        ELSE
            v_new := v_sub = 'subscribe';
            INSERT INTO newsletter_subscriptions (client_id, subscribed, updated_at) VALUES (v_client, v_new, now())
            ON CONFLICT (client_id) DO UPDATE SET subscribed = EXCLUDED.subscribed, updated_at = now();
            IF v_new <> v_old THEN
                PERFORM csmcp.log_activity(v_client, principal, 'update', 'newsletter_subscription', v_client,
                                           jsonb_build_object('subscribed', v_old), jsonb_build_object('subscribed', v_new));
            END IF;
        END IF;
        RETURN jsonb_build_object('action', v_action, 'client_id', v_client, 'subscribed', v_new,
                                  'changed', v_sub <> 'get_status' AND v_new <> v_old,
                                  'updated_at', (SELECT updated_at FROM newsletter_subscriptions WHERE client_id = v_client),
                                  'summary', format('%s is %s the newsletters%s', acc.client_name,
                                                    CASE WHEN v_new THEN 'subscribed to' ELSE 'unsubscribed from' END,
                                                    CASE WHEN v_sub <> 'get_status' AND v_new = v_old THEN ' (unchanged)' ELSE '' END));
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
    FOR r IN
        SELECT a.client_id, c.contact_id, c.email, c.name
        FROM accounts a
        JOIN contacts c ON c.client_id = a.client_id AND c.is_primary AND NOT c.unsubscribed
        WHERE a.status <> 'churned'
          AND (n.send_to_all OR a.tier = ANY (n.target_tiers))
          AND NOT (a.client_id = ANY (coalesce(n.exclude_client_ids, '{}')))
          AND coalesce((SELECT s.subscribed FROM newsletter_subscriptions s WHERE s.client_id = a.client_id), true)
        ORDER BY a.client_id
    LOOP
        PERFORM csmcp.comm_enqueue_email(NULL, n.newsletter_id, r.client_id, r.contact_id, r.email, r.name, v_sender,
                                         n.subject_line, csmcp.newsletter_text(n), NULL, v_when, true, true,
                                         'automate_newsletters');
        v_count := v_count + 1;
    END LOOP;
    UPDATE newsletters SET status = 'scheduled', scheduled_send = v_when, recipient_count = v_count
    WHERE newsletter_id = n.newsletter_id RETURNING * INTO n;
    PERFORM csmcp.log_activity(NULL, principal, 'update', 'newsletter', n.newsletter_id,
                               jsonb_build_object('status', old_n.status, 'scheduled_send', old_n.scheduled_send),
                               jsonb_build_object('status', n.status, 'scheduled_send', n.scheduled_send,
                                                  'recipient_count', v_count));
    RETURN jsonb_build_object('action', v_action, 'newsletter', csmcp.newsletter_json(n),
                              'summary', format('Newsletter %s "%s" scheduled for %s to %s recipient(s); delivery: %s',
                                                n.newsletter_id, n.name,
                                                to_char(v_when AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI "UTC"'), v_count,
                                                CASE WHEN csmcp.integration_enabled('sendgrid') THEN 'queued in the outbox'
                                                     ELSE 'SendGrid not configured, recorded as not sent' END));
END $$;

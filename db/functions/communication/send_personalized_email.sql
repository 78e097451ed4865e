-- send_personalized_email: a campaign to real recipients (contacts of the targeted accounts),
-- rendered per recipient, each message stored and put in the delivery outbox (SendGrid); or the
-- delivery state of a stored campaign (action get_status); or a dry run (nothing stored).
-- One recipient of campaign c: render with the campaign's tokens and the recipient's rows, store
-- the message (due at the campaign's scheduled time, or now) and its communications row. A
-- recipient who already has a message of this campaign gets nothing (idempotent by recipient).
CREATE OR REPLACE FUNCTION csmcp.comm_campaign_message(c email_campaigns, p_client text, p_contact bigint, p_email text,
                                                       p_name text, p_title text)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    a accounts;
    tok jsonb;
    mid bigint;
BEGIN
    SELECT * INTO a FROM accounts WHERE client_id = p_client;
    tok := c.personalization_tokens || csmcp.comm_row_tokens(a, p_name, p_email, p_title);
    mid := csmcp.comm_enqueue_email(c.campaign_id, NULL, p_client, p_contact, p_email, p_name, c.sender_email,
                                    csmcp.comm_render(c.subject_line, tok), csmcp.comm_render(c.body_text, tok),
                                    csmcp.comm_render(c.body_html, tok), c.scheduled_at, c.track_opens, c.track_clicks,
                                    'send_personalized_email');
    IF mid IS NOT NULL THEN
        INSERT INTO communications (client_id, channel, subject, body, campaign_id, sent_by, scheduled_for, status)
        VALUES (p_client, 'email', csmcp.comm_render(c.subject_line, tok), csmcp.comm_render(c.body_text, tok), c.campaign_id,
                c.created_by, c.scheduled_at, CASE WHEN c.scheduled_at IS NULL THEN 'sent' ELSE 'scheduled' END);
    END IF;
    RETURN mid;
END $$;

CREATE OR REPLACE FUNCTION csmcp.tool_send_personalized_email(args jsonb, principal text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v_action text := csmcp.arg_text(args, 'action', 'send', ARRAY['send', 'get_status']);
    v_cid text := csmcp.arg_text(args, 'campaign_id', NULL);
    v_name text := nullif(btrim(csmcp.arg_text(args, 'campaign_name', NULL)), '');
    v_template text := csmcp.arg_text(args, 'template_type', NULL);
    v_subject text := csmcp.arg_text(args, 'subject_line', NULL);
    v_body text := csmcp.arg_text(args, 'body_text', NULL);
    v_html text := csmcp.arg_text(args, 'body_html', NULL);
    v_sender text := csmcp.arg_text(args, 'sender_email', NULL);
    v_segment text := csmcp.arg_text(args, 'target_segment', NULL);
    v_tier text := csmcp.arg_text(args, 'target_tier', NULL);
    v_all boolean := csmcp.arg_bool(args, 'all_contacts', false);
    v_now boolean := csmcp.arg_bool(args, 'send_immediately', false);
    v_when_txt text := csmcp.arg_text(args, 'scheduled_send_time', NULL);
    v_opens boolean := csmcp.arg_bool(args, 'track_opens', true);
    v_clicks boolean := csmcp.arg_bool(args, 'track_clicks', true);
    v_dry boolean := csmcp.arg_bool(args, 'dry_run', false);
    v_by text := coalesce(nullif(btrim(csmcp.arg_text(args, 'created_by', NULL)), ''), 'CS Team');
    v_tokens jsonb := coalesce(args -> 'personalization_tokens', '{}');
    v_ids text[];
    v_exclude text[];
    v_when timestamptz;
    v_known text[];
    v_missing text;
    v_accounts integer;
    v_no_contact integer;
    v_unsub integer;
    v_recipients integer;
    v_preview jsonb := '[]';
    v_counts jsonb;
    v_configured boolean := csmcp.integration_enabled('sendgrid');
    c email_campaigns;
    r record;
    a accounts;
    tok jsonb;
    n integer := 0;
    v_bulk boolean := false;
BEGIN
    IF v_action = 'get_status' THEN
        IF v_cid IS NULL THEN PERFORM csmcp.invalid('campaign_id: required for get_status'); END IF;
        SELECT * INTO c FROM email_campaigns WHERE campaign_id = v_cid;
        IF NOT FOUND THEN RAISE EXCEPTION 'campaign % not found', v_cid USING ERRCODE = 'P0002'; END IF;
        v_counts := csmcp.comm_delivery_counts(c.campaign_id, NULL);
        RETURN jsonb_build_object(
            'action', 'get_status', 'campaign_id', c.campaign_id, 'campaign_name', c.name, 'status', c.status,
            'scheduled_send_time', c.scheduled_at, 'recipients', c.recipient_count,
            'progress', csmcp.comm_send_progress(c.campaign_id, NULL),
            'delivery', jsonb_build_object('channel', 'sendgrid', 'configured', v_configured, 'by_state', v_counts),
            'summary', format('Campaign %s (%s): %s recipient(s)%s; scheduled %s, queued %s, sending %s, sent %s, failed %s, dead %s, suppressed %s, not configured %s',
                              c.campaign_id, c.status, c.recipient_count,
                              CASE WHEN c.status = 'preparing' THEN format(' (%s of %s stored)',
                                   csmcp.comm_send_progress(c.campaign_id, NULL) ->> 'prepared',
                                   csmcp.comm_send_progress(c.campaign_id, NULL) ->> 'estimated') ELSE '' END,
                              v_counts ->> 'scheduled', v_counts ->> 'queued', v_counts ->> 'sending',
                              v_counts ->> 'sent', v_counts ->> 'failed', v_counts ->> 'dead', v_counts ->> 'suppressed',
                              v_counts ->> 'not_configured'));
    END IF;

    -- send (or dry run)
    IF v_cid IS NOT NULL THEN PERFORM csmcp.invalid('campaign_id: only for action get_status'); END IF;
    IF v_name IS NULL THEN PERFORM csmcp.invalid('campaign_name: required'); END IF;
    IF v_template IS NULL THEN PERFORM csmcp.invalid('template_type: required'); END IF;
    IF v_subject IS NULL THEN PERFORM csmcp.invalid('subject_line: required'); END IF;
    IF v_body IS NULL THEN PERFORM csmcp.invalid('body_text: required'); END IF;
    IF v_sender IS NULL THEN PERFORM csmcp.invalid('sender_email: required'); END IF;
    IF args ? 'target_client_ids' AND jsonb_typeof(args -> 'target_client_ids') = 'array' THEN
        SELECT array_agg(DISTINCT x) INTO v_ids FROM jsonb_array_elements_text(args -> 'target_client_ids') x;
    END IF;
    IF args ? 'exclude_client_ids' AND jsonb_typeof(args -> 'exclude_client_ids') = 'array' THEN
        SELECT array_agg(DISTINCT x) INTO v_exclude FROM jsonb_array_elements_text(args -> 'exclude_client_ids') x;
    END IF;
    IF v_ids IS NULL AND v_segment IS NULL AND v_tier IS NULL THEN
        PERFORM csmcp.invalid('target: give at least one of target_client_ids, target_segment, target_tier');
    END IF;
    SELECT x INTO v_missing FROM unnest(v_ids) x WHERE NOT EXISTS (SELECT 1 FROM accounts WHERE client_id = x) ORDER BY x LIMIT 1;
    IF v_missing IS NOT NULL THEN RAISE EXCEPTION 'client not found: %', v_missing USING ERRCODE = 'P0002'; END IF;
    IF v_segment IS NOT NULL AND NOT EXISTS (SELECT 1 FROM segments WHERE segment_id = v_segment) THEN
        RAISE EXCEPTION 'segment % not found', v_segment USING ERRCODE = 'P0002';
    END IF;
    IF v_now THEN
        IF v_when_txt IS NOT NULL THEN
            PERFORM csmcp.invalid('scheduled_send_time: not allowed with send_immediately = true');
        END IF;
    ELSE
        IF v_when_txt IS NULL THEN
            PERFORM csmcp.invalid('scheduled_send_time: required unless send_immediately = true');
        END IF;
        BEGIN
            v_when := v_when_txt::timestamptz;
        EXCEPTION WHEN others THEN
            PERFORM csmcp.invalid('scheduled_send_time: not an ISO date-time: ' || v_when_txt);
        END;
        IF v_when <= now() THEN PERFORM csmcp.invalid('scheduled_send_time: must be in the future'); END IF;
    END IF;
    SELECT k INTO v_missing FROM jsonb_object_keys(v_tokens) k WHERE k = ANY (csmcp.comm_builtin_tokens()) ORDER BY k LIMIT 1;
    IF v_missing IS NOT NULL THEN
        PERFORM csmcp.invalid(format('personalization_tokens: %s is a built-in token and cannot be redefined', v_missing));
    END IF;
    v_known := csmcp.comm_builtin_tokens() || ARRAY(SELECT jsonb_object_keys(v_tokens));
    PERFORM csmcp.comm_check_tokens('subject_line', v_subject, v_known);
    PERFORM csmcp.comm_check_tokens('body_text', v_body, v_known);
    PERFORM csmcp.comm_check_tokens('body_html', v_html, v_known);

    SELECT count(DISTINCT x.client_id), count(DISTINCT x.client_id) FILTER (WHERE x.contact_id IS NULL),
           count(x.contact_id)
      INTO v_accounts, v_no_contact, v_recipients
      FROM csmcp.comm_recipients(v_ids, v_segment, v_tier, v_all, v_exclude) x;
    SELECT coalesce(sum(s), 0) INTO v_unsub
      FROM (SELECT DISTINCT x.client_id, x.unsubscribed_skipped s
            FROM csmcp.comm_recipients(v_ids, v_segment, v_tier, v_all, v_exclude) x) d;

    IF NOT v_dry THEN
        c.campaign_id := csmcp.comm_id('campaign', v_name);
        INSERT INTO email_campaigns (campaign_id, name, template_type, subject_line, body_text, sender_email, target_segment,
                                     target_tier, scheduled_at, sent_at, created_by, target_client_ids, all_contacts, body_html,
                                     personalization_tokens, track_opens, track_clicks, status, recipient_count,
                                     exclude_client_ids)
        VALUES (c.campaign_id, v_name, v_template, v_subject, v_body, v_sender, v_segment, v_tier, v_when,
                CASE WHEN v_now THEN now() END, v_by, v_ids, v_all, v_html, v_tokens, v_opens, v_clicks,
                CASE WHEN v_now THEN 'sent' ELSE 'scheduled' END, v_recipients, v_exclude)
        RETURNING * INTO c;
    END IF;

    v_bulk := NOT v_dry AND v_recipients > csmcp.comm_chunk_size();
    IF v_bulk THEN
        -- Over one chunk: the messages are stored by the monitor's communication tick, one chunk
        -- per transaction (csmcp.comm_send_chunk); only the preview is rendered here.
        UPDATE email_campaigns SET status = 'preparing' WHERE campaign_id = c.campaign_id RETURNING * INTO c;
        INSERT INTO comm_send_jobs (campaign_id, estimated) VALUES (c.campaign_id, v_recipients);
    END IF;
    FOR r IN SELECT * FROM csmcp.comm_recipients(v_ids, v_segment, v_tier, v_all, v_exclude) x
             WHERE x.contact_id IS NOT NULL ORDER BY x.client_id, x.contact_id
             LIMIT CASE WHEN v_dry OR v_bulk THEN 3 END LOOP
        SELECT * INTO a FROM accounts WHERE client_id = r.client_id;
        tok := v_tokens || csmcp.comm_row_tokens(a, r.name, r.email, r.title);
        IF n < 3 THEN
            v_preview := v_preview || jsonb_build_object(
                'client_id', r.client_id, 'email', r.email, 'name', r.name,
                'subject', csmcp.comm_render(v_subject, tok), 'body_text', csmcp.comm_render(v_body, tok),
                'body_html', csmcp.comm_render(v_html, tok));
        END IF;
        n := n + 1;
        IF NOT v_dry AND NOT v_bulk THEN
            PERFORM csmcp.comm_campaign_message(c, r.client_id, r.contact_id, r.email, r.name, r.title);
        END IF;
    END LOOP;

    IF v_dry THEN
        v_counts := jsonb_build_object('queued', 0, 'sending', 0, 'sent', 0, 'failed', 0, 'dead', 0, 'not_configured', 0);
    ELSE
        v_counts := csmcp.comm_delivery_counts(c.campaign_id, NULL);
        PERFORM csmcp.log_activity(NULL, principal, 'create', 'email_campaign', c.campaign_id, NULL,
                                   jsonb_build_object('name', v_name, 'template_type', v_template, 'status', c.status,
                                                      'recipients', v_recipients, 'target_tier', v_tier,
                                                      'target_segment', v_segment, 'target_client_ids', to_jsonb(v_ids),
                                                      'scheduled_at', v_when));
    END IF;
    RETURN jsonb_build_object(
        'action', 'send', 'dry_run', v_dry, 'campaign_id', c.campaign_id, 'campaign_name', v_name,
        'template_type', v_template,
        'status', CASE WHEN v_dry THEN 'dry_run' ELSE c.status END,
        'progress', CASE WHEN NOT v_dry THEN csmcp.comm_send_progress(c.campaign_id, NULL) END,
        'scheduled_send_time', v_when,
        'targeting', jsonb_build_object(
            'target_client_ids', coalesce(to_jsonb(v_ids), '[]'), 'target_segment', v_segment, 'target_tier', v_tier,
            'exclude_client_ids', coalesce(to_jsonb(v_exclude), '[]'), 'all_contacts', v_all,
            'accounts_targeted', v_accounts, 'accounts_without_recipient', v_no_contact,
            'unsubscribed_excluded', v_unsub, 'recipients', v_recipients),
        'delivery', jsonb_build_object('channel', 'sendgrid', 'configured', v_configured, 'by_state', v_counts),
        'tracking', jsonb_build_object('opens', v_opens, 'clicks', v_clicks),
        'preview', v_preview,
        'summary', CASE
            WHEN v_dry THEN format('Dry run of "%s": %s recipient(s) at %s account(s) (%s without an eligible contact, %s unsubscribed excluded); nothing stored',
                                   v_name, v_recipients, v_accounts, v_no_contact, v_unsub)
            WHEN v_bulk THEN format('Campaign %s preparing: %s recipient(s) at %s account(s) are stored in chunks of %s by the monitor''s communication tick (progress: get_status)',
                                    c.campaign_id, v_recipients, v_accounts, csmcp.comm_chunk_size())
            ELSE format('Campaign %s %s: %s recipient(s) at %s account(s) (%s without an eligible contact, %s unsubscribed excluded); delivery: %s',
                        c.campaign_id, CASE WHEN v_now THEN 'sent to the outbox' ELSE 'scheduled for ' || v_when END,
                        v_recipients, v_accounts, v_no_contact, v_unsub,
                        CASE WHEN v_configured THEN format('%s queued', v_counts ->> 'queued')
                             ELSE format('SendGrid not configured, %s message(s) recorded as not sent', v_counts ->> 'not_configured') END)
        END);
END $$;

-- review_outbound_messages: the approval queue of outbound messages (issue 24). A channel with
-- integrations.settings.require_approval = true queues new messages as 'pending_approval'
-- (csmcp.outbox_enqueue); the monitor never claims them. approve -> 'queued' (delivered by the
-- monitor, once: the idempotency key is unchanged), reject -> 'rejected' (never sent), edit ->
-- the payload's subject/body replaced while still pending (the original kept in
-- original_payload). Every approve/reject/edit is one activity_log row with old and new values.

-- What a reviewer reads of a payload: subject, body text and recipients per channel.
CREATE OR REPLACE FUNCTION csmcp.rom_content(p_channel text, p jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE p_channel
        WHEN 'sendgrid' THEN jsonb_build_object(
            'subject', coalesce(p -> 'body', p) ->> 'subject',
            'body', (SELECT c ->> 'value' FROM jsonb_array_elements(coalesce(coalesce(p -> 'body', p) -> 'content', '[]')) c
                      WHERE c ->> 'type' = 'text/plain' LIMIT 1),
            'has_html', EXISTS (SELECT 1 FROM jsonb_array_elements(coalesce(coalesce(p -> 'body', p) -> 'content', '[]')) c
                                 WHERE c ->> 'type' = 'text/html'),
            'recipients', coalesce((SELECT jsonb_agg(t ->> 'email')
                                      FROM jsonb_array_elements(coalesce(coalesce(p -> 'body', p) -> 'personalizations', '[]')) pe,
                                           jsonb_array_elements(coalesce(pe -> 'to', '[]')) t), '[]'))
        WHEN 'slack' THEN jsonb_build_object('subject', NULL, 'body', p ->> 'text', 'has_html', false,
                                             'recipients', '[]'::jsonb)
        WHEN 'intercom' THEN jsonb_build_object('subject', coalesce(p -> 'body', p) ->> 'subject',
                                                'body', coalesce(p -> 'body', p) ->> 'body', 'has_html', false,
                                                'recipients', '[]'::jsonb)
        WHEN 'zendesk' THEN jsonb_build_object('subject', p #>> '{ticket,subject}', 'body', p #>> '{comment,body}',
                                               'has_html', false, 'recipients', '[]'::jsonb)
        ELSE jsonb_build_object('subject', NULL, 'body', p::text, 'has_html', false, 'recipients', '[]'::jsonb)
    END
$$;

-- The payload with a new subject and/or body (NULL: unchanged); refusals name the channel's limits.
CREATE OR REPLACE FUNCTION csmcp.rom_edit(p_channel text, p jsonb, p_subject text, p_body text) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    root text[];
BEGIN
    IF p_channel = 'sendgrid' THEN
        root := CASE WHEN p ? 'body' THEN ARRAY['body'] ELSE ARRAY[]::text[] END;
        IF p_subject IS NOT NULL THEN p := jsonb_set(p, root || 'subject'::text, to_jsonb(p_subject)); END IF;
        -- the edited text replaces every content part (an HTML part would still say the old text)
        IF p_body IS NOT NULL THEN
            p := jsonb_set(p, root || 'content'::text,
                           jsonb_build_array(jsonb_build_object('type', 'text/plain', 'value', p_body)));
        END IF;
        RETURN p;
    ELSIF p_channel = 'slack' THEN
        IF p_subject IS NOT NULL THEN
            PERFORM csmcp.invalid('subject: a slack message has no subject (edit its body)');
        END IF;
        RETURN (p - 'blocks') || jsonb_build_object('text', p_body);
    ELSIF p_channel = 'intercom' THEN
        root := CASE WHEN p ? 'body' THEN ARRAY['body'] ELSE ARRAY[]::text[] END;
        IF p_subject IS NOT NULL THEN p := jsonb_set(p, root || 'subject'::text, to_jsonb(p_subject)); END IF;
        IF p_body IS NOT NULL THEN p := jsonb_set(p, root || 'body'::text, to_jsonb(p_body)); END IF;
        RETURN p;
    ELSIF p_channel = 'zendesk' THEN
        IF p_subject IS NOT NULL THEN
            p := jsonb_set(p, '{ticket}', coalesce(p -> 'ticket', '{}') || jsonb_build_object('subject', p_subject));
        END IF;
        IF p_body IS NOT NULL THEN
            p := jsonb_set(p, '{comment}', coalesce(p -> 'comment', '{}') || jsonb_build_object('body', p_body));
        END IF;
        RETURN p;
    END IF;
    PERFORM csmcp.invalid(format('message_id: a %s message is a structured event and cannot be edited (approve or reject it)',
                                 p_channel));
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION csmcp.rom_json(o outbox) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'message_id', o.id, 'channel', o.channel,
        'state', CASE WHEN o.state IN ('pending_approval', 'rejected') THEN o.state ELSE 'approved' END,
        'delivery_state', o.state, 'client_id', o.client_id, 'source_tool', o.source_tool,
        'created_by', o.created_by, 'ref', o.ref, 'created_at', o.created_at)
        || csmcp.rom_content(o.channel, o.payload)
        || jsonb_build_object('edited', o.original_payload IS NOT NULL, 'edited_by', o.edited_by,
                              'edited_at', o.edited_at, 'reviewed_by', o.reviewed_by, 'reviewed_at', o.reviewed_at,
                              'review_reason', o.review_reason)
$$;

CREATE OR REPLACE FUNCTION csmcp.tool_review_outbound_messages(args jsonb, principal text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v_action text := csmcp.arg_text(args, 'action', NULL, ARRAY['list', 'approve', 'reject', 'edit']);
    v_id bigint := csmcp.arg_int(args, 'message_id', NULL, 1, 2147483647);
    v_reason text := btrim(csmcp.arg_text(args, 'reason', NULL));
    v_subject text := csmcp.arg_text(args, 'subject', NULL);
    v_body text := csmcp.arg_text(args, 'body', NULL);
    v_channel text := csmcp.arg_text(args, 'channel', NULL);
    v_client text := csmcp.arg_text(args, 'client_id', NULL);
    v_creator text := csmcp.arg_text(args, 'creator', NULL);
    v_state text := csmcp.arg_text(args, 'state', 'pending_approval', ARRAY['pending_approval', 'rejected', 'approved']);
    v_limit integer := csmcp.arg_int(args, 'limit', 50, 1, 200);
    v_offset integer := csmcp.arg_int(args, 'offset', 0, 0, 1000000);
    v_actor text := coalesce(nullif(principal, ''), 'anonymous');
    o outbox;
    n outbox;
    v_items jsonb;
    v_total bigint;
    v_old jsonb;
    v_payload jsonb;
    v_mid bigint;
BEGIN
    IF v_action = 'list' THEN
        IF v_id IS NOT NULL OR v_reason IS NOT NULL OR v_subject IS NOT NULL OR v_body IS NOT NULL THEN
            PERFORM csmcp.invalid('message_id, reason, subject and body are not used with action list');
        END IF;
        -- count, then the page in index order (outbox_pending_idx / outbox_reviewed_idx)
        SELECT count(*) INTO v_total FROM outbox x
         WHERE CASE v_state WHEN 'pending_approval' THEN x.state = 'pending_approval'
                            WHEN 'rejected' THEN x.reviewed_at IS NOT NULL AND x.state = 'rejected'
                            ELSE x.reviewed_at IS NOT NULL AND x.state <> 'rejected' END
           AND (v_channel IS NULL OR x.channel = v_channel)
           AND (v_client IS NULL OR x.client_id = v_client)
           AND (v_creator IS NULL OR x.created_by = v_creator OR x.source_tool = v_creator);
        SELECT coalesce(jsonb_agg(csmcp.rom_json(p) ORDER BY p.created_at, p.id), '[]') INTO v_items
          FROM (SELECT x.* FROM outbox x
                 WHERE CASE v_state WHEN 'pending_approval' THEN x.state = 'pending_approval'
                                    WHEN 'rejected' THEN x.reviewed_at IS NOT NULL AND x.state = 'rejected'
                                    ELSE x.reviewed_at IS NOT NULL AND x.state <> 'rejected' END
                   AND (v_channel IS NULL OR x.channel = v_channel)
                   AND (v_client IS NULL OR x.client_id = v_client)
                   AND (v_creator IS NULL OR x.created_by = v_creator OR x.source_tool = v_creator)
                 ORDER BY x.created_at, x.id LIMIT v_limit OFFSET v_offset) p;
        RETURN jsonb_build_object(
            'status', 'success', 'action', 'list', 'state', v_state, 'messages', v_items,
            'total', v_total, 'limit', v_limit, 'offset', v_offset,
            'summary', format('%s %s message(s)%s%s%s; showing %s from offset %s', v_total, v_state,
                              CASE WHEN v_channel IS NOT NULL THEN ' on ' || v_channel ELSE '' END,
                              CASE WHEN v_client IS NOT NULL THEN ' for ' || v_client ELSE '' END,
                              CASE WHEN v_creator IS NOT NULL THEN ' created by ' || v_creator ELSE '' END,
                              jsonb_array_length(v_items), v_offset));
    END IF;

    IF v_channel IS NOT NULL OR v_client IS NOT NULL OR v_creator IS NOT NULL OR args ? 'state'
       OR args ? 'limit' OR args ? 'offset' THEN
        PERFORM csmcp.invalid(format('channel, client_id, creator, state, limit and offset are filters of action list, not %s',
                                     v_action));
    END IF;
    IF v_id IS NULL THEN PERFORM csmcp.invalid(format('message_id: required to %s a message', v_action)); END IF;
    IF v_action = 'reject' AND (v_reason IS NULL OR length(v_reason) < 3) THEN
        PERFORM csmcp.invalid('reason: required to reject a message (at least 3 characters)');
    END IF;
    IF v_action <> 'edit' AND (v_subject IS NOT NULL OR v_body IS NOT NULL) THEN
        PERFORM csmcp.invalid(format('subject and body are only used with action edit, not %s', v_action));
    END IF;
    IF v_action = 'edit' THEN
        IF v_subject IS NULL AND v_body IS NULL THEN
            PERFORM csmcp.invalid('subject or body: an edit needs at least one of them');
        END IF;
        IF v_subject IS NOT NULL AND btrim(v_subject) = '' THEN PERFORM csmcp.invalid('subject: must not be blank'); END IF;
        IF v_body IS NOT NULL AND btrim(v_body) = '' THEN PERFORM csmcp.invalid('body: must not be blank'); END IF;
    END IF;

    -- the row lock orders concurrent reviews: the second sees the first one's outcome
    SELECT * INTO o FROM outbox WHERE id = v_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'outbound message % not found', v_id USING ERRCODE = 'P0002';
    END IF;
    IF o.state <> 'pending_approval' THEN
        RAISE EXCEPTION 'outbound message % is %, not pending_approval: only a pending message can be %', v_id,
            CASE WHEN o.state = 'rejected' THEN 'rejected'
                 WHEN o.reviewed_at IS NOT NULL THEN 'already approved (delivery state ' || o.state || ')'
                 ELSE 'not awaiting approval (delivery state ' || o.state || ')' END,
            CASE v_action WHEN 'approve' THEN 'approved' WHEN 'reject' THEN 'rejected' ELSE 'edited' END
            USING ERRCODE = 'P0001';
    END IF;
    v_old := csmcp.rom_json(o);

    IF v_action = 'approve' THEN
        UPDATE outbox SET state = 'queued', reviewed_by = v_actor, reviewed_at = now(),
                          review_reason = v_reason, next_attempt_at = greatest(next_attempt_at, now())
         WHERE id = v_id RETURNING * INTO n;
    ELSIF v_action = 'reject' THEN
        UPDATE outbox SET state = 'rejected', reviewed_by = v_actor, reviewed_at = now(), review_reason = v_reason
         WHERE id = v_id RETURNING * INTO n;
    ELSE
        v_payload := csmcp.rom_edit(o.channel, o.payload, v_subject, v_body);
        UPDATE outbox SET payload = v_payload, original_payload = coalesce(original_payload, o.payload),
                          edited_by = v_actor, edited_at = now()
         WHERE id = v_id RETURNING * INTO n;
        -- an e-mail's record (email_messages) says what will be sent
        v_mid := (o.payload #>> '{body,custom_args,csmcp_message_id}')::bigint;
        IF o.channel = 'sendgrid' AND v_mid IS NOT NULL THEN
            UPDATE email_messages SET subject = coalesce(v_subject, subject),
                                      body_text = coalesce(v_body, body_text),
                                      body_html = CASE WHEN v_body IS NOT NULL THEN NULL ELSE body_html END
             WHERE message_id = v_mid AND outbox_id = v_id;
        END IF;
    END IF;
    PERFORM csmcp.log_activity((SELECT a.client_id FROM accounts a WHERE a.client_id = o.client_id), v_actor,
                               CASE v_action WHEN 'approve' THEN 'approve_outbound_message'
                                             WHEN 'reject' THEN 'reject_outbound_message'
                                             ELSE 'edit_outbound_message' END,
                               'outbound_message', v_id::text, v_old, csmcp.rom_json(n));
    RETURN jsonb_build_object(
        'status', 'success', 'action', v_action, 'message', csmcp.rom_json(n),
        'summary', format('outbound %s message %s%s %s by %s%s', o.channel, v_id,
                          CASE WHEN o.client_id IS NOT NULL THEN ' (' || o.client_id || ')' ELSE '' END,
                          CASE v_action WHEN 'approve' THEN 'approved' WHEN 'reject' THEN 'rejected'
                                        ELSE 'edited' END, v_actor,
                          CASE v_action WHEN 'approve' THEN ': queued for delivery'
                                        WHEN 'reject' THEN ': it will never be sent (' || v_reason || ')'
                                        ELSE ': still pending approval' END));
END $$;

-- tick.sql - the communication tick: background work of the communication tools, run by the
-- leading monitor process every monitor.tick_ms (worker/monitor.c, after the monitors' runs) as
-- one short transaction: SELECT csmcp.comm_tick(actor). Each part is bounded per call so that the
-- transaction stays short whatever the backlog:
--   1. one chunk (csmcp.comm_chunk_size() = 500 recipients) of the oldest bulk send job;
--   2. due scheduled messages into the outbox (at most 500; recipients who unsubscribed meanwhile
--      are suppressed);
--   3. newsletters whose time has come and whose messages are all released become 'sent'; a
--      recurring one gets its next edition (at most 20 per call);
--   4. communication workflows (csmcp.comm_workflows_evaluate: at most 20 workflows, 200 firings
--      each, 200 due delayed runs).

CREATE OR REPLACE FUNCTION csmcp.comm_chunk_size() RETURNS integer
LANGUAGE sql IMMUTABLE AS $$ SELECT 500 $$;

-- Progress of a send: {estimated, prepared, chunks, state, started_at, finished_at}; a send that
-- needed no job (one chunk or less, stored in the tool's own transaction) reports state done.
CREATE OR REPLACE FUNCTION csmcp.comm_send_progress(p_campaign_id text, p_newsletter_id text) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT coalesce(
        (SELECT jsonb_build_object('estimated', j.estimated, 'prepared', j.prepared, 'chunks', j.chunks, 'state', j.state,
                                   'started_at', j.created_at, 'finished_at', j.finished_at)
         FROM comm_send_jobs j
         WHERE (p_campaign_id IS NOT NULL AND j.campaign_id = p_campaign_id)
            OR (p_newsletter_id IS NOT NULL AND j.newsletter_id = p_newsletter_id)
         ORDER BY j.job_id DESC LIMIT 1),
        jsonb_build_object('estimated', m.n, 'prepared', m.n, 'chunks', 0, 'state', 'done'))
    FROM (SELECT count(*)::integer AS n FROM email_messages
          WHERE (p_campaign_id IS NOT NULL AND campaign_id = p_campaign_id)
             OR (p_newsletter_id IS NOT NULL AND newsletter_id = p_newsletter_id)) m
$$;

-- Recipients of a newsletter: per targeted account (not churned; all, or the target tiers; minus
-- the excluded accounts) every contact subscribed to the newsletters — a contact's own
-- subscription row, else subscribed when it is the account's primary contact — and not opted
-- out of all email (contacts.unsubscribed).
CREATE OR REPLACE FUNCTION csmcp.comm_newsletter_recipients(n newsletters)
RETURNS TABLE (client_id text, contact_id bigint, email text, name text)
LANGUAGE sql STABLE AS $$
    SELECT a.client_id, c.contact_id, c.email, c.name
    FROM accounts a
    JOIN contacts c ON c.client_id = a.client_id AND NOT c.unsubscribed
    LEFT JOIN newsletter_contact_subscriptions s ON s.contact_id = c.contact_id
    WHERE a.status <> 'churned'
      AND (n.send_to_all OR a.tier = ANY (n.target_tiers))
      AND NOT (a.client_id = ANY (coalesce(n.exclude_client_ids, '{}')))
      AND coalesce(s.subscribed, c.is_primary)
$$;

-- One newsletter recipient: the edition's message, due at its scheduled_send (idempotent by
-- recipient: NULL when the contact already has one).
CREATE OR REPLACE FUNCTION csmcp.comm_newsletter_message(n newsletters, p_client text, p_contact bigint, p_email text,
                                                         p_name text)
RETURNS bigint LANGUAGE sql AS $$
    SELECT csmcp.comm_enqueue_email(NULL, n.newsletter_id, p_client, p_contact, p_email, p_name, n.sender_email,
                                    n.subject_line, csmcp.newsletter_text(n), NULL, n.scheduled_send, true, true,
                                    'automate_newsletters')
$$;

-- Stores the next chunk of the oldest running send job: the next comm_chunk_size() recipients
-- after the job's cursor in (client_id, contact_id) order, each through the idempotent per-recipient
-- function, then moves the cursor. A chunk shorter than the size finishes the job: the campaign
-- becomes sent (or scheduled), the newsletter scheduled. Returns {job_id, stored, done} or NULL.
CREATE OR REPLACE FUNCTION csmcp.comm_send_chunk() RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    j comm_send_jobs;
    c email_campaigns;
    n newsletters;
    r record;
    v_seen integer := 0;
    v_stored integer := 0;
    v_last_client text;
    v_last_contact bigint;
    v_done boolean;
BEGIN
    SELECT * INTO j FROM comm_send_jobs WHERE state = 'running' ORDER BY job_id LIMIT 1 FOR UPDATE SKIP LOCKED;
    IF NOT FOUND THEN RETURN NULL; END IF;
    v_last_client := j.cursor_client;
    v_last_contact := j.cursor_contact;
    IF j.campaign_id IS NOT NULL THEN
        SELECT * INTO c FROM email_campaigns WHERE campaign_id = j.campaign_id;
        FOR r IN SELECT x.client_id, x.contact_id, x.email, x.name, x.title
                 FROM csmcp.comm_recipients(c.target_client_ids, c.target_segment, c.target_tier, c.all_contacts,
                                            c.exclude_client_ids) x
                 WHERE x.contact_id IS NOT NULL
                   AND (x.client_id, x.contact_id) > (coalesce(j.cursor_client, ''), coalesce(j.cursor_contact, 0))
                 ORDER BY x.client_id, x.contact_id LIMIT csmcp.comm_chunk_size() LOOP
            IF csmcp.comm_campaign_message(c, r.client_id, r.contact_id, r.email, r.name, r.title) IS NOT NULL THEN
                v_stored := v_stored + 1;
            END IF;
            v_seen := v_seen + 1;
            v_last_client := r.client_id;
            v_last_contact := r.contact_id;
        END LOOP;
    ELSE
        SELECT * INTO n FROM newsletters WHERE newsletter_id = j.newsletter_id;
        FOR r IN SELECT x.client_id, x.contact_id, x.email, x.name FROM csmcp.comm_newsletter_recipients(n) x
                 WHERE (x.client_id, x.contact_id) > (coalesce(j.cursor_client, ''), coalesce(j.cursor_contact, 0))
                 ORDER BY x.client_id, x.contact_id LIMIT csmcp.comm_chunk_size() LOOP
            IF csmcp.comm_newsletter_message(n, r.client_id, r.contact_id, r.email, r.name) IS NOT NULL THEN
                v_stored := v_stored + 1;
            END IF;
            v_seen := v_seen + 1;
            v_last_client := r.client_id;
            v_last_contact := r.contact_id;
        END LOOP;
    END IF;
    v_done := v_seen < csmcp.comm_chunk_size();
    UPDATE comm_send_jobs SET prepared = prepared + v_stored, chunks = chunks + 1, cursor_client = v_last_client,
                              cursor_contact = v_last_contact, updated_at = now(),
                              state = CASE WHEN v_done THEN 'done' ELSE 'running' END,
                              finished_at = CASE WHEN v_done THEN now() END
    WHERE job_id = j.job_id;
    IF v_done AND j.campaign_id IS NOT NULL THEN
        UPDATE email_campaigns
        SET status = CASE WHEN scheduled_at IS NULL THEN 'sent' ELSE 'scheduled' END,
            recipient_count = (SELECT count(*) FROM email_messages m WHERE m.campaign_id = j.campaign_id)
        WHERE campaign_id = j.campaign_id;
    ELSIF v_done THEN
        UPDATE newsletters
        SET status = 'scheduled',
            recipient_count = (SELECT count(*) FROM email_messages m WHERE m.newsletter_id = j.newsletter_id)
        WHERE newsletter_id = j.newsletter_id;
    END IF;
    RETURN jsonb_build_object('job_id', j.job_id, 'stored', v_stored, 'done', v_done);
END $$;

-- Stores the recipients of newsletter n (status draft or new edition): in the caller's transaction
-- when they fit one chunk (status scheduled), else as a send job (status preparing). Returns the
-- number of messages stored now.
CREATE OR REPLACE FUNCTION csmcp.comm_newsletter_prepare(p_id text) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    n newsletters;
    r record;
    v_est integer;
    v_count integer := 0;
BEGIN
    SELECT * INTO n FROM newsletters WHERE newsletter_id = p_id;
    SELECT count(*) INTO v_est FROM csmcp.comm_newsletter_recipients(n);
    IF v_est > csmcp.comm_chunk_size() THEN
        UPDATE newsletters SET status = 'preparing', recipient_count = 0 WHERE newsletter_id = p_id;
        INSERT INTO comm_send_jobs (newsletter_id, estimated) VALUES (p_id, v_est);
        RETURN 0;
    END IF;
    FOR r IN SELECT * FROM csmcp.comm_newsletter_recipients(n) x ORDER BY x.client_id, x.contact_id LOOP
        IF csmcp.comm_newsletter_message(n, r.client_id, r.contact_id, r.email, r.name) IS NOT NULL THEN
            v_count := v_count + 1;
        END IF;
    END LOOP;
    UPDATE newsletters SET status = 'scheduled', recipient_count = v_count WHERE newsletter_id = p_id;
    RETURN v_count;
END $$;

-- The cadence of a recurring newsletter.
CREATE OR REPLACE FUNCTION csmcp.comm_cadence(p_pattern text) RETURNS interval
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE p_pattern WHEN 'weekly' THEN interval '7 days' WHEN 'monthly' THEN interval '1 month'
                          WHEN 'quarterly' THEN interval '3 months' END
$$;

-- Newsletters whose scheduled_send has come, with no job running and no message still waiting,
-- become sent (sent_at now). A recurring one gets its next edition: same name, subject, sections,
-- targeting, sender and cadence, edition_number + 1, scheduled_send = the previous one + the
-- cadence (repeated until it is in the future), previous_newsletter_id = the sent one; its
-- recipients are stored (comm_newsletter_prepare). Returns [{newsletter_id, next_newsletter_id}].
CREATE OR REPLACE FUNCTION csmcp.comm_newsletters_advance(p_actor text) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    n newsletters;
    nx newsletters;
    v_next timestamptz;
    v_out jsonb := '[]';
BEGIN
    FOR n IN SELECT * FROM newsletters x
             WHERE x.status = 'scheduled' AND x.scheduled_send <= now()
               AND NOT EXISTS (SELECT 1 FROM email_messages m WHERE m.newsletter_id = x.newsletter_id AND m.state = 'scheduled')
               AND NOT EXISTS (SELECT 1 FROM comm_send_jobs j WHERE j.newsletter_id = x.newsletter_id AND j.state = 'running')
             ORDER BY x.scheduled_send, x.newsletter_id LIMIT 20 FOR UPDATE SKIP LOCKED LOOP
        UPDATE newsletters SET status = 'sent', sent_at = now() WHERE newsletter_id = n.newsletter_id;
        PERFORM csmcp.log_activity(NULL, p_actor, 'update', 'newsletter', n.newsletter_id,
                                   jsonb_build_object('status', 'scheduled'), jsonb_build_object('status', 'sent'));
        nx := NULL;
        IF n.recurrence_pattern IS NOT NULL THEN
            v_next := n.scheduled_send + csmcp.comm_cadence(n.recurrence_pattern);
            WHILE v_next <= now() LOOP
                v_next := v_next + csmcp.comm_cadence(n.recurrence_pattern);
            END LOOP;
            INSERT INTO newsletters (newsletter_id, name, edition_number, subject_line, sections, scheduled_send,
                                     recurrence_pattern, created_by, send_to_all, target_tiers, exclude_client_ids, status,
                                     sender_email, previous_newsletter_id)
            VALUES (csmcp.comm_id('newsletter', n.name), n.name, coalesce(n.edition_number, 1) + 1, n.subject_line, n.sections,
                    v_next, n.recurrence_pattern, n.created_by, n.send_to_all, n.target_tiers, n.exclude_client_ids, 'draft',
                    n.sender_email, n.newsletter_id)
            RETURNING * INTO nx;
            PERFORM csmcp.comm_newsletter_prepare(nx.newsletter_id);
            SELECT * INTO nx FROM newsletters WHERE newsletter_id = nx.newsletter_id;
            PERFORM csmcp.log_activity(NULL, p_actor, 'create', 'newsletter', nx.newsletter_id, NULL, to_jsonb(nx));
        END IF;
        v_out := v_out || jsonb_build_object('newsletter_id', n.newsletter_id, 'next_newsletter_id', nx.newsletter_id);
    END LOOP;
    RETURN v_out;
END $$;

CREATE OR REPLACE FUNCTION csmcp.comm_tick(p_actor text) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_chunk jsonb := csmcp.comm_send_chunk();
    v_rel jsonb := csmcp.comm_release_due(csmcp.comm_chunk_size());
    v_nl jsonb := csmcp.comm_newsletters_advance(p_actor);
    v_wf jsonb := csmcp.comm_workflows_evaluate(p_actor);
BEGIN
    RETURN jsonb_strip_nulls(jsonb_build_object(
        'send_chunk', v_chunk,
        'released', nullif((v_rel ->> 'released')::integer, 0), 'suppressed', nullif((v_rel ->> 'suppressed')::integer, 0),
        'newsletters_sent', CASE WHEN jsonb_array_length(v_nl) > 0 THEN v_nl END,
        'workflows_fired', nullif((SELECT coalesce(sum((e ->> 'fired')::integer), 0) FROM jsonb_array_elements(v_wf -> 'workflows') e), 0),
        'runs_executed', nullif((v_wf ->> 'executed')::integer, 0)));
END $$;

-- _lib.sql - helpers shared by the support & self-service tools (applied first in this directory).
--
-- SLA model (docs/tools.md, handle_support_ticket rules):
--   targets by priority, minutes (first response / resolution): P0 5/60, P1 15/240, P2 60/1440,
--   P3 240/2880, P4 480/4320; fixed on the ticket at creation, re-targeted (and recorded) when the
--   priority changes. Each clock starts at created_at; the first-response clock stops at
--   first_response_at, the resolution clock at resolved_at (a reopen clears resolved_at, so the
--   clock runs again from created_at). Elapsed = wall-clock minutes, fractional (seconds / 60).
--   Running: elapsed > target -> breached; elapsed > 0.8 x target -> at_risk; else on_track.
--   Stopped: elapsed <= target -> met; else breached.

-- UTC ISO 8601 with seconds, whatever the session time zone. STABLE like to_char (a helper
-- declared more strictly than its body is not inlined, and every call then starts an executor).
CREATE OR REPLACE FUNCTION csmcp.sup_ts(t timestamptz) RETURNS text
LANGUAGE sql STABLE AS $$ SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') $$;

CREATE OR REPLACE FUNCTION csmcp.sup_sla_first(p text) RETURNS integer
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE p WHEN 'P0' THEN 5 WHEN 'P1' THEN 15 WHEN 'P2' THEN 60 WHEN 'P4' THEN 480 ELSE 240 END
$$;

CREATE OR REPLACE FUNCTION csmcp.sup_sla_resolution(p text) RETURNS integer
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE p WHEN 'P0' THEN 60 WHEN 'P1' THEN 240 WHEN 'P2' THEN 1440 WHEN 'P4' THEN 4320 ELSE 2880 END
$$;

-- Routing weight of a priority (P0 5 ... P4 1).
CREATE OR REPLACE FUNCTION csmcp.sup_weight(p text) RETURNS integer
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE p WHEN 'P0' THEN 5 WHEN 'P1' THEN 4 WHEN 'P2' THEN 3 WHEN 'P4' THEN 1 ELSE 2 END
$$;

-- Team routing (seed-original.md §3.7): P0/P1 -> Escalation Team, else by category.
CREATE OR REPLACE FUNCTION csmcp.sup_team(p text, category text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN p IN ('P0', 'P1') THEN 'Escalation Team'
                ELSE CASE category
                         WHEN 'technical_issue' THEN 'Technical Support'
                         WHEN 'bug_report' THEN 'Engineering Support'
                         WHEN 'feature_request' THEN 'Product Support'
                         WHEN 'how_to_question' THEN 'Customer Success'
                         WHEN 'account_billing' THEN 'Billing Support'
                         WHEN 'integration_support' THEN 'Integration Team'
                         WHEN 'training_request' THEN 'Training Team'
                         WHEN 'data_issue' THEN 'Data Support'
                         WHEN 'performance' THEN 'Technical Support'
                         ELSE 'General Support' END END
$$;

CREATE OR REPLACE FUNCTION csmcp.sup_zendesk_priority(p text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE p WHEN 'P0' THEN 'urgent' WHEN 'P1' THEN 'high' WHEN 'P4' THEN 'low' ELSE 'normal' END
$$;

-- Zendesk's ticket statuses: new/open/pending/hold/solved/closed.
CREATE OR REPLACE FUNCTION csmcp.sup_zendesk_status(st text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE st WHEN 'waiting_on_customer' THEN 'pending' WHEN 'waiting_on_engineering' THEN 'hold'
                   WHEN 'resolved' THEN 'solved' WHEN 'closed' THEN 'closed' ELSE 'open' END
$$;

CREATE OR REPLACE FUNCTION csmcp.sup_elapsed(p_start timestamptz, p_stop timestamptz, p_now timestamptz) RETURNS numeric
LANGUAGE sql IMMUTABLE AS $$
    SELECT extract(epoch FROM (coalesce(p_stop, p_now) - p_start)) / 60
$$;

-- Written without FROM so that the planner inlines it (and the callers below) into queries.
CREATE OR REPLACE FUNCTION csmcp.sup_sla_state(p_start timestamptz, p_stop timestamptz, p_target integer,
                                               p_now timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN p_stop IS NULL THEN
                    CASE WHEN p_now - p_start > make_interval(mins => p_target) THEN 'breached'
                         WHEN p_now - p_start > make_interval(secs => 48 * p_target) THEN 'at_risk'
                         ELSE 'on_track' END
                WHEN p_stop - p_start <= make_interval(mins => p_target) THEN 'met'
                ELSE 'breached' END
$$;

-- Worst of two clock states: breached > at_risk > on_track > met.
CREATE OR REPLACE FUNCTION csmcp.sup_worst(a text, b text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN 'breached' IN (a, b) THEN 'breached' WHEN 'at_risk' IN (a, b) THEN 'at_risk'
                WHEN 'on_track' IN (a, b) THEN 'on_track' ELSE 'met' END
$$;

CREATE OR REPLACE FUNCTION csmcp.sup_ticket_sla_state(t support_tickets, p_now timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT csmcp.sup_worst(csmcp.sup_sla_state(t.created_at, t.first_response_at, t.sla_first_response_minutes, p_now),
                           csmcp.sup_sla_state(t.created_at, t.resolved_at, t.sla_resolution_minutes, p_now))
$$;

CREATE OR REPLACE FUNCTION csmcp.sup_clock_json(p_start timestamptz, p_stop timestamptz, p_target integer,
                                                p_now timestamptz) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'target_minutes', p_target,
        'due_at', csmcp.sup_ts(p_start + make_interval(mins => p_target)),
        'running', p_stop IS NULL,
        'elapsed_minutes', round(csmcp.sup_elapsed(p_start, p_stop, p_now), 1),
        'state', csmcp.sup_sla_state(p_start, p_stop, p_target, p_now))
$$;

CREATE OR REPLACE FUNCTION csmcp.sup_ticket_sla(t support_tickets, p_now timestamptz) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'first_response', csmcp.sup_clock_json(t.created_at, t.first_response_at, t.sla_first_response_minutes, p_now),
        'resolution', csmcp.sup_clock_json(t.created_at, t.resolved_at, t.sla_resolution_minutes, p_now),
        'state', csmcp.sup_ticket_sla_state(t, p_now))
$$;

-- The ticket as every support tool answers it.
CREATE OR REPLACE FUNCTION csmcp.sup_ticket_json(t support_tickets) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'ticket_id', t.ticket_id, 'client_id', t.client_id, 'subject', t.subject, 'description', t.description,
        'priority', t.priority, 'category', t.category, 'status', t.status,
        'requester_email', t.requester_email, 'requester_name', t.requester_name,
        'assigned_agent', t.assigned_agent, 'assigned_team', t.assigned_team,
        'tags', coalesce((SELECT jsonb_agg(g.tag ORDER BY g.tag) FROM support_ticket_tags g WHERE g.ticket_id = t.ticket_id), '[]'),
        'created_at', csmcp.sup_ts(t.created_at), 'updated_at', csmcp.sup_ts(t.updated_at),
        'first_response_at', csmcp.sup_ts(t.first_response_at), 'resolved_at', csmcp.sup_ts(t.resolved_at),
        'closed_at', csmcp.sup_ts(t.closed_at),
        'escalated', t.escalated, 'escalated_at', csmcp.sup_ts(t.escalated_at), 'escalation_reason', t.escalation_reason,
        'resolution_notes', t.resolution_notes,
        'satisfaction_rating', t.satisfaction_rating, 'satisfaction_comment', t.satisfaction_comment,
        'rated_at', csmcp.sup_ts(t.rated_at),
        'sla', csmcp.sup_ticket_sla(t, now()))
$$;

CREATE OR REPLACE FUNCTION csmcp.sup_check_ticket_id(p_id text) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF p_id IS NULL THEN RAISE EXCEPTION 'ticket_id is required' USING ERRCODE = '22023'; END IF;
    IF p_id !~ '^TKT-[0-9]{1,18}$' THEN
        RAISE EXCEPTION 'ticket_id must look like TKT-<number>, got %', p_id USING ERRCODE = '22023';
    END IF;
    RETURN p_id;
END $$;

-- The ticket row, locked for update when p_lock; P0002 "ticket TKT-n not found".
CREATE OR REPLACE FUNCTION csmcp.sup_require_ticket(p_id text, p_lock boolean) RETURNS support_tickets
LANGUAGE plpgsql AS $$
DECLARE t support_tickets;
BEGIN
    PERFORM csmcp.sup_check_ticket_id(p_id);
    IF p_lock THEN
        SELECT * INTO t FROM support_tickets WHERE ticket_id = p_id FOR UPDATE;
    ELSE
        SELECT * INTO t FROM support_tickets WHERE ticket_id = p_id;
    END IF;
    IF NOT FOUND THEN RAISE EXCEPTION 'ticket % not found', p_id USING ERRCODE = 'P0002'; END IF;
    RETURN t;
END $$;

-- Open tickets (not resolved, not closed) held by an agent.
CREATE OR REPLACE FUNCTION csmcp.sup_agent_load(p_agent text) RETURNS integer
LANGUAGE sql STABLE AS $$
    SELECT count(*)::integer FROM support_tickets WHERE assigned_agent = p_agent AND status NOT IN ('resolved', 'closed')
$$;

-- The agent row, locked (every assignment path locks the agent rows it assigns to, in agent_id
-- order, before counting their load: this is what keeps concurrent assignments within capacity).
CREATE OR REPLACE FUNCTION csmcp.sup_lock_agent(p_agent text) RETURNS support_agents
LANGUAGE plpgsql AS $$
DECLARE a support_agents;
BEGIN
    IF p_agent !~ '^[A-Za-z0-9_.-]{1,100}$' THEN
        RAISE EXCEPTION 'assigned_agent must be an agent id (letters, digits, "_", "-", "."), got %', p_agent
            USING ERRCODE = '22023';
    END IF;
    SELECT * INTO a FROM support_agents WHERE agent_id = p_agent FOR UPDATE;
    IF NOT FOUND THEN RAISE EXCEPTION 'support agent % not found', p_agent USING ERRCODE = 'P0002'; END IF;
    IF NOT a.active THEN RAISE EXCEPTION 'support agent % is inactive', p_agent USING ERRCODE = 'P0001'; END IF;
    RETURN a;
END $$;

-- A ticket_comments row of author_type system describing what an action changed.
CREATE OR REPLACE FUNCTION csmcp.sup_system_comment(p_ticket text, p_principal text, p_content text) RETURNS bigint
LANGUAGE sql AS $$
    INSERT INTO ticket_comments (ticket_id, author_email, author_name, author_type, content, is_public)
    VALUES (p_ticket, 'system', 'csmcp (' || coalesce(nullif(p_principal, ''), 'anonymous') || ')', 'system', p_content, false)
    RETURNING comment_id
$$;

-- Tags argument: array of 1..20 distinct strings of 1..50 characters (trimmed, lower case).
CREATE OR REPLACE FUNCTION csmcp.sup_tags(args jsonb, key text) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE v jsonb := args -> key; r text[];
BEGIN
    IF v IS NULL OR v = 'null'::jsonb THEN RETURN NULL; END IF;
    IF jsonb_typeof(v) <> 'array' THEN RAISE EXCEPTION '% must be an array of strings', key USING ERRCODE = '22023'; END IF;
    IF EXISTS (SELECT 1 FROM jsonb_array_elements(v) e WHERE jsonb_typeof(e) <> 'string'
                                                        OR length(btrim(e #>> '{}')) NOT BETWEEN 1 AND 50) THEN
        RAISE EXCEPTION '% must be strings of 1 to 50 characters', key USING ERRCODE = '22023';
    END IF;
    SELECT coalesce(array_agg(DISTINCT lower(btrim(e #>> '{}'))), '{}') INTO r FROM jsonb_array_elements(v) e;
    IF cardinality(r) > 20 THEN RAISE EXCEPTION '% holds at most 20 tags', key USING ERRCODE = '22023'; END IF;
    RETURN r;
END $$;

-- A required non-blank text argument, trimmed, at most p_max characters.
CREATE OR REPLACE FUNCTION csmcp.sup_req_text(args jsonb, key text, p_max integer, p_why text DEFAULT NULL) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE t text := btrim(csmcp.arg_text(args, key, NULL));
BEGIN
    IF t IS NULL OR t = '' THEN
        RAISE EXCEPTION '% is required%', key, coalesce(' ' || p_why, '') USING ERRCODE = '22023';
    END IF;
    IF length(t) > p_max THEN RAISE EXCEPTION '% is limited to % characters', key, p_max USING ERRCODE = '22023'; END IF;
    RETURN t;
END $$;

CREATE OR REPLACE FUNCTION csmcp.sup_opt_text(args jsonb, key text, p_max integer) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE t text := nullif(btrim(csmcp.arg_text(args, key, NULL)), '');
BEGIN
    IF length(t) > p_max THEN RAISE EXCEPTION '% is limited to % characters', key, p_max USING ERRCODE = '22023'; END IF;
    RETURN t;
END $$;

-- Zendesk delivery of a ticket change through the outbox (never blocks on Zendesk).
CREATE OR REPLACE FUNCTION csmcp.sup_zendesk(p_operation text, t support_tickets, p_extra jsonb, p_key text)
RETURNS jsonb LANGUAGE sql AS $$
    SELECT csmcp.outbox_enqueue('zendesk',
        jsonb_build_object('operation', p_operation, 'external_id', t.ticket_id,
            'ticket', jsonb_build_object('subject', t.subject, 'priority', csmcp.sup_zendesk_priority(t.priority),
                                         'status', csmcp.sup_zendesk_status(t.status), 'external_id', t.ticket_id,
                                         'requester', jsonb_build_object('name', t.requester_name, 'email', t.requester_email),
                                         'tags', coalesce((SELECT jsonb_agg(g.tag ORDER BY g.tag) FROM support_ticket_tags g
                                                           WHERE g.ticket_id = t.ticket_id), '[]')))
            || coalesce(p_extra, '{}'),
        p_key, 'handle_support_ticket', t.client_id, t.ticket_id)
$$;

-- Full-text search --------------------------------------------------------------------------
-- The article's document: title weight A, tags and summary B, content C ('english' config).
CREATE OR REPLACE FUNCTION csmcp.kb_vector(p_title text, p_summary text, p_content text, p_tags text) RETURNS tsvector
LANGUAGE sql IMMUTABLE AS $$
    SELECT setweight(to_tsvector('english', coalesce(p_title, '')), 'A') ||
           setweight(to_tsvector('english', coalesce(p_tags, '')), 'B') ||
           setweight(to_tsvector('english', coalesce(p_summary, '')), 'B') ||
           setweight(to_tsvector('english', coalesce(p_content, '')), 'C')
$$;

CREATE OR REPLACE FUNCTION csmcp.kb_articles_vector_trg() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.search_vector := csmcp.kb_vector(NEW.title, NEW.summary, NEW.content,
        (SELECT string_agg(tag, ' ') FROM kb_article_tags WHERE article_id = NEW.article_id));
    RETURN NEW;
END $$;
CREATE OR REPLACE TRIGGER kb_articles_vector BEFORE INSERT OR UPDATE OF title, summary, content, search_vector
    ON kb_articles FOR EACH ROW EXECUTE FUNCTION csmcp.kb_articles_vector_trg();

-- A tag added or removed re-computes its article's document (the UPDATE fires the trigger above).
CREATE OR REPLACE FUNCTION csmcp.kb_tags_vector_trg() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE kb_articles SET search_vector = NULL
    WHERE article_id = CASE WHEN TG_OP = 'DELETE' THEN OLD.article_id ELSE NEW.article_id END;
    RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER kb_article_tags_vector AFTER INSERT OR DELETE OR UPDATE ON kb_article_tags
    FOR EACH ROW EXECUTE FUNCTION csmcp.kb_tags_vector_trg();

-- "how to update billing" -> 'updat' | 'bill': every word of the query that is not an English
-- stop word, stemmed, any of them matching (ts_rank then favours articles matching more words,
-- and words in the title over the tags and summary over the content). NULL when nothing is left.
CREATE OR REPLACE FUNCTION csmcp.kb_query(q text) RETURNS tsquery
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN numnode(pq) = 0 THEN NULL
                ELSE replace(replace(pq::text, ' & ', ' | '), ' <-> ', ' | ')::tsquery END
    FROM (SELECT plainto_tsquery('english', q) AS pq) x
$$;

-- Helpfulness = helpful / (helpful + not helpful), 3 decimals; 0 when there are no votes.
CREATE OR REPLACE FUNCTION csmcp.kb_helpfulness(h integer, nh integer) RETURNS numeric
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN coalesce(h, 0) + coalesce(nh, 0) = 0 THEN 0 ELSE round(h::numeric / (h + nh), 3) END
$$;

CREATE OR REPLACE FUNCTION csmcp.kb_article_json(a kb_articles, p_with_content boolean) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'article_id', a.article_id, 'title', a.title, 'summary', a.summary, 'category', a.category,
        'subcategory', a.subcategory, 'status', a.status, 'author', a.author, 'version', a.version,
        'tags', coalesce((SELECT jsonb_agg(g.tag ORDER BY g.tag) FROM kb_article_tags g WHERE g.article_id = a.article_id), '[]'),
        'view_count', a.view_count, 'helpful_votes', a.helpful_votes, 'not_helpful_votes', a.not_helpful_votes,
        'helpfulness_score', csmcp.kb_helpfulness(a.helpful_votes, a.not_helpful_votes),
        'created_at', csmcp.sup_ts(a.created_at), 'updated_at', csmcp.sup_ts(a.updated_at),
        'published_at', csmcp.sup_ts(a.published_at))
        || CASE WHEN p_with_content THEN jsonb_build_object('content', a.content) ELSE '{}' END
$$;

CREATE OR REPLACE FUNCTION csmcp.kb_check_article_id(p_id text) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF p_id IS NULL THEN RAISE EXCEPTION 'article_id is required' USING ERRCODE = '22023'; END IF;
    IF p_id !~ '^KB-[0-9]{1,18}$' THEN
        RAISE EXCEPTION 'article_id must look like KB-<number>, got %', p_id USING ERRCODE = '22023';
    END IF;
    RETURN p_id;
END $$;

CREATE OR REPLACE FUNCTION csmcp.kb_require_article(p_id text, p_lock boolean) RETURNS kb_articles
LANGUAGE plpgsql AS $$
DECLARE a kb_articles;
BEGIN
    PERFORM csmcp.kb_check_article_id(p_id);
    IF p_lock THEN
        SELECT * INTO a FROM kb_articles WHERE article_id = p_id FOR UPDATE;
    ELSE
        SELECT * INTO a FROM kb_articles WHERE article_id = p_id;
    END IF;
    IF NOT FOUND THEN RAISE EXCEPTION 'article % not found', p_id USING ERRCODE = 'P0002'; END IF;
    RETURN a;
END $$;

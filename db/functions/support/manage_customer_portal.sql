-- manage_customer_portal: per-client self-service portal settings (portal_settings), resources
-- and activity, all from stored rows.
--
-- A client without a portal_settings row has the defaults (features tickets and kb, no branding)
-- and "configured": false; enable_feature / disable_feature / customize create the row.
-- Branding keys: company_name, logo_url and custom_domain ... (https URLs / host names), colours
-- as #RRGGBB; customize merges the given keys into the stored branding (null removes a key).
-- Resources: documentation = published KB articles, training = training modules (with the
-- client's sessions and attendees), downloads = portal_resources offered to everyone or to this client;
-- each type needs its feature (documentation: kb, downloads: downloads; training: always).
-- Activity: the client's tickets opened / resolved, customer comments, KB views from the portal,
-- and portal setting changes, newest first, over period_days.

CREATE OR REPLACE FUNCTION csmcp.portal_status_json(p_client text) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'client_id', p_client,
        'configured', ps.client_id IS NOT NULL,
        'features', to_jsonb(coalesce(ps.features, ARRAY['tickets', 'kb'])),
        'branding', coalesce(ps.branding, '{}'),
        'portal_url', CASE WHEN ps.branding ? 'custom_domain' THEN 'https://' || (ps.branding ->> 'custom_domain') END,
        'updated_at', csmcp.sup_ts(ps.updated_at))
    FROM (SELECT p_client AS c) x LEFT JOIN portal_settings ps ON ps.client_id = x.c
$$;

CREATE OR REPLACE FUNCTION csmcp.tool_manage_customer_portal(args jsonb, principal text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    acc accounts := csmcp.require_account(csmcp.arg_text(args, 'client_id', NULL));
    v_action text := csmcp.arg_text(args, 'action', 'get_status',
        ARRAY['get_status', 'enable_feature', 'disable_feature', 'customize', 'list_resources', 'get_activity']);
    allowed constant text[] := ARRAY['tickets', 'kb', 'downloads', 'api_access', 'chat'];
    v_enable text := csmcp.arg_text(args, 'enable_feature', NULL, allowed);
    v_disable text := csmcp.arg_text(args, 'disable_feature', NULL, allowed);
    v_type text := csmcp.arg_text(args, 'resource_type', NULL, ARRAY['documentation', 'downloads', 'training']);
    v_res text := csmcp.arg_text(args, 'resource_id', NULL);
    v_days integer := csmcp.arg_int(args, 'period_days', 30, 1, 365);
    v_limit integer := csmcp.arg_int(args, 'limit', 50, 1, 200);
    v_brand jsonb := args -> 'customize_branding';
    v_since timestamptz := now() - make_interval(days => v_days);
    old_json jsonb := csmcp.portal_status_json(acc.client_id);
    v_features text[] := ARRAY(SELECT jsonb_array_elements_text(old_json -> 'features'));
    v_branding jsonb := old_json -> 'branding';
    k text; v jsonb;
    v_new jsonb;
    v_rows jsonb;
    v_usage jsonb;
    r jsonb;
BEGIN
    IF v_action IN ('enable_feature', 'disable_feature', 'customize') THEN
        IF v_action = 'enable_feature' THEN
            IF v_enable IS NULL THEN PERFORM csmcp.invalid('enable_feature (tickets, kb, downloads, api_access, chat) is required'); END IF;
            IF v_enable = ANY (v_features) THEN
                RAISE EXCEPTION 'feature % is already enabled for %', v_enable, acc.client_id USING ERRCODE = 'P0001';
            END IF;
            v_features := ARRAY(SELECT f FROM unnest(allowed) f WHERE f = ANY (v_features || v_enable));
        ELSIF v_action = 'disable_feature' THEN
            IF v_disable IS NULL THEN PERFORM csmcp.invalid('disable_feature (tickets, kb, downloads, api_access, chat) is required'); END IF;
            IF NOT v_disable = ANY (v_features) THEN
                RAISE EXCEPTION 'feature % is not enabled for %', v_disable, acc.client_id USING ERRCODE = 'P0001';
            END IF;
            v_features := array_remove(v_features, v_disable);
        ELSE
            IF v_brand IS NULL OR jsonb_typeof(v_brand) <> 'object' OR v_brand = '{}' THEN
                PERFORM csmcp.invalid('customize_branding (an object of branding settings) is required');
            END IF;
            FOR k, v IN SELECT * FROM jsonb_each(v_brand) LOOP
                IF v = 'null'::jsonb THEN v_branding := v_branding - k; CONTINUE; END IF;
                IF jsonb_typeof(v) <> 'string' THEN PERFORM csmcp.invalid('customize_branding.' || k || ' must be a string'); END IF;
                IF k IN ('primary_color', 'secondary_color', 'accent_color') AND (v #>> '{}') !~ '^#[0-9A-Fa-f]{6}$' THEN
                    PERFORM csmcp.invalid('customize_branding.' || k || ' must be a colour #RRGGBB');
                ELSIF k IN ('logo_url', 'favicon_url') AND (v #>> '{}') !~ '^https://[A-Za-z0-9.-]+(:[0-9]+)?(/[^\s]*)?$' THEN
                    PERFORM csmcp.invalid('customize_branding.' || k || ' must be an https:// URL');
                ELSIF k = 'custom_domain' AND (v #>> '{}') !~ '^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,}$' THEN
                    PERFORM csmcp.invalid('customize_branding.custom_domain must be a lower-case host name');
                ELSIF k = 'support_email' AND (v #>> '{}') !~ '^[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\.[a-zA-Z]{2,}$' THEN
                    PERFORM csmcp.invalid('customize_branding.support_email is not a valid e-mail address');
                ELSIF length(v #>> '{}') > 500 THEN
                    PERFORM csmcp.invalid('customize_branding.' || k || ' is limited to 500 characters');
                END IF;
                v_branding := v_branding || jsonb_build_object(k, v);
            END LOOP;
        END IF;
        INSERT INTO portal_settings (client_id, features, branding, updated_at) VALUES (acc.client_id, v_features, v_branding, now())
        ON CONFLICT (client_id) DO UPDATE SET features = EXCLUDED.features, branding = EXCLUDED.branding, updated_at = now();
        v_new := csmcp.portal_status_json(acc.client_id);
        PERFORM csmcp.log_activity(acc.client_id, principal, v_action, 'portal', acc.client_id, old_json, v_new);
        RETURN jsonb_build_object('status', 'success', 'action', v_action, 'client_id', acc.client_id, 'portal', v_new,
            'previous', old_json,
            'summary', format('Portal of %s: features %s%s.', acc.client_id, array_to_string(v_features, ', '),
                              CASE WHEN v_action = 'customize' THEN '; branding ' || (SELECT string_agg(x, ', ' ORDER BY x) FROM jsonb_object_keys(v_branding) x) ELSE '' END));
    ELSIF v_action = 'get_status' THEN
        SELECT jsonb_build_object(
            'period_days', v_days,
            'tickets_opened', (SELECT count(*) FROM support_tickets WHERE client_id = acc.client_id AND created_at > v_since),
            'open_tickets', (SELECT count(*) FROM support_tickets WHERE client_id = acc.client_id AND status NOT IN ('resolved', 'closed')),
            'kb_views', (SELECT count(*) FROM kb_article_views WHERE client_id = acc.client_id AND viewed_at > v_since),
            'kb_searches', (SELECT count(*) FROM kb_searches WHERE client_id = acc.client_id AND searched_at > v_since),
            'last_activity_at', csmcp.sup_ts(greatest(
                (SELECT max(created_at) FROM support_tickets WHERE client_id = acc.client_id),
                (SELECT max(viewed_at) FROM kb_article_views WHERE client_id = acc.client_id),
                (SELECT max(searched_at) FROM kb_searches WHERE client_id = acc.client_id))))
        INTO v_usage;
        RETURN jsonb_build_object('status', 'success', 'action', 'get_status', 'client_id', acc.client_id,
            'portal', old_json, 'usage', v_usage,
            'summary', format('Portal of %s (%s): features %s; last %s days: %s ticket(s) opened, %s KB view(s), %s search(es).',
                acc.client_id, CASE WHEN (old_json ->> 'configured')::boolean THEN 'configured' ELSE 'defaults' END,
                array_to_string(v_features, ', '), v_days, v_usage ->> 'tickets_opened', v_usage ->> 'kb_views', v_usage ->> 'kb_searches'));
    ELSIF v_action = 'list_resources' THEN
        IF v_res IS NOT NULL AND v_res !~ '^(RES|KB)-[0-9]{1,18}$' AND v_res !~ '^[A-Za-z0-9_-]{1,100}$' THEN
            PERFORM csmcp.invalid('resource_id must be a KB-<n>, RES-<n> or training module id');
        END IF;
        SELECT coalesce(jsonb_agg(x.j ORDER BY x.t, x.title, x.id), '[]') INTO v_rows FROM (
            SELECT 'documentation' AS t, a.title, a.article_id AS id,
                   jsonb_build_object('resource_type', 'documentation', 'resource_id', a.article_id, 'title', a.title,
                                      'description', a.summary, 'category', a.category, 'updated_at', csmcp.sup_ts(a.updated_at)) AS j
            FROM kb_articles a
            WHERE a.status = 'published' AND 'kb' = ANY (v_features) AND (v_type IS NULL OR v_type = 'documentation')
              AND (v_res IS NULL OR a.article_id = v_res)
            UNION ALL
            SELECT 'downloads', r.title, r.resource_id,
                   jsonb_build_object('resource_type', 'downloads', 'resource_id', r.resource_id, 'title', r.title,
                                      'description', r.description, 'url', r.url, 'client_specific', r.client_id IS NOT NULL,
                                      'updated_at', csmcp.sup_ts(r.created_at))
            FROM portal_resources r
            WHERE r.resource_type = 'downloads' AND 'downloads' = ANY (v_features) AND (v_type IS NULL OR v_type = 'downloads')
              AND (r.client_id IS NULL OR r.client_id = acc.client_id) AND (v_res IS NULL OR r.resource_id = v_res)
            UNION ALL
            SELECT 'training', m.name, m.module_id,
                   jsonb_build_object('resource_type', 'training', 'resource_id', m.module_id, 'title', m.name,
                                      'description', m.description, 'format', m.format, 'duration_minutes', m.duration_minutes,
                                      'client_sessions', (SELECT count(*) FROM training_sessions ts WHERE ts.module_id = m.module_id
                                                                           AND ts.client_id = acc.client_id),
                                      'client_attendees', (SELECT count(*) FROM training_sessions ts JOIN training_attendance ta USING (session_id)
                                                           WHERE ts.module_id = m.module_id AND ts.client_id = acc.client_id AND ta.attended))
            FROM training_modules m
            WHERE (v_type IS NULL OR v_type = 'training') AND (v_res IS NULL OR m.module_id = v_res)
            ORDER BY 1, 2, 3 LIMIT v_limit) x;
        IF v_res IS NOT NULL AND jsonb_array_length(v_rows) = 0 THEN
            RAISE EXCEPTION 'resource % not found in the portal of %', v_res, acc.client_id USING ERRCODE = 'P0002';
        END IF;
        RETURN jsonb_build_object('status', 'success', 'action', 'list_resources', 'client_id', acc.client_id,
            'resource_type', v_type, 'features', to_jsonb(v_features), 'resources', v_rows,
            'summary', format('%s resource(s) in the portal of %s%s.', jsonb_array_length(v_rows), acc.client_id,
                              coalesce(' of type ' || v_type, '')));
    ELSE -- get_activity
        SELECT coalesce(jsonb_agg(x.j ORDER BY x.at DESC, x.k), '[]') INTO v_rows FROM (
            SELECT * FROM (
                SELECT created_at AS at, 'a' || ticket_id AS k, jsonb_build_object('at', csmcp.sup_ts(created_at), 'type', 'ticket_opened',
                       'ticket_id', ticket_id, 'detail', priority || ' ' || subject) AS j
                FROM support_tickets WHERE client_id = acc.client_id AND created_at > v_since
                UNION ALL
                SELECT resolved_at, 'b' || ticket_id, jsonb_build_object('at', csmcp.sup_ts(resolved_at), 'type', 'ticket_resolved',
                       'ticket_id', ticket_id, 'detail', subject)
                FROM support_tickets WHERE client_id = acc.client_id AND resolved_at > v_since
                UNION ALL
                SELECT c.created_at, 'c' || c.comment_id, jsonb_build_object('at', csmcp.sup_ts(c.created_at), 'type', 'customer_comment',
                       'ticket_id', c.ticket_id, 'detail', left(c.content, 200))
                FROM ticket_comments c JOIN support_tickets t USING (ticket_id)
                WHERE t.client_id = acc.client_id AND c.author_type = 'customer' AND c.created_at > v_since
                UNION ALL
                SELECT v.viewed_at, 'd' || v.view_id, jsonb_build_object('at', csmcp.sup_ts(v.viewed_at), 'type', 'kb_view',
                       'article_id', v.article_id, 'detail', a.title)
                FROM kb_article_views v JOIN kb_articles a USING (article_id)
                WHERE v.client_id = acc.client_id AND v.viewed_at > v_since
                UNION ALL
                SELECT s.searched_at, 'e' || s.search_id, jsonb_build_object('at', csmcp.sup_ts(s.searched_at), 'type', 'kb_search',
                       'detail', s.query || ' (' || s.results || ' result(s))')
                FROM kb_searches s WHERE s.client_id = acc.client_id AND s.searched_at > v_since
                UNION ALL
                SELECT l.occurred_at, 'f' || l.activity_id, jsonb_build_object('at', csmcp.sup_ts(l.occurred_at), 'type', 'portal_' || l.action,
                       'detail', 'by ' || l.actor)
                FROM activity_log l WHERE l.client_id = acc.client_id AND l.entity = 'portal' AND l.occurred_at > v_since
            ) u ORDER BY at DESC, k LIMIT v_limit) x;
        SELECT jsonb_object_agg(t, n) INTO r FROM (SELECT e ->> 'type' AS t, count(*) AS n FROM jsonb_array_elements(v_rows) e GROUP BY 1) y;
        RETURN jsonb_build_object('status', 'success', 'action', 'get_activity', 'client_id', acc.client_id, 'period_days', v_days,
            'activity', v_rows, 'counts', coalesce(r, '{}'),
            'summary', format('%s portal event(s) for %s in the last %s days (newest first, at most %s).',
                              jsonb_array_length(v_rows), acc.client_id, v_days, v_limit));
    END IF;
END $$;

-- manage_community: communities, members, posts and the moderation queue, persisted.
-- A member's post is held for moderation (pending) until the member has an approved post; an
-- approved post earns its author 10 reputation points.

CREATE OR REPLACE FUNCTION csmcp.community_member_json(m community_members) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'member_id', m.member_id, 'community_id', m.community_id, 'client_id', m.client_id, 'user_email', m.user_email,
        'user_name', m.user_name, 'reputation', m.reputation, 'joined_at', m.joined_at,
        'posts', (SELECT count(*) FROM community_posts p WHERE p.member_id = m.member_id AND p.moderation = 'approved'),
        'pending_posts', (SELECT count(*) FROM community_posts p WHERE p.member_id = m.member_id AND p.moderation = 'pending'),
        'last_post_at', (SELECT max(created_at) FROM community_posts p WHERE p.member_id = m.member_id))
$$;

CREATE OR REPLACE FUNCTION csmcp.community_post_json(p community_posts) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('post_id', p.post_id, 'community_id', p.community_id, 'member_id', p.member_id,
                              'content', p.content, 'moderation', p.moderation, 'created_at', p.created_at)
$$;

CREATE OR REPLACE FUNCTION csmcp.tool_manage_community(args jsonb, principal text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v_action text := csmcp.arg_text(args, 'action', NULL, ARRAY['create_community', 'add_member', 'get_member_profile',
                                                                'list_members', 'post_content', 'get_analytics', 'moderate']);
    v_name text := nullif(btrim(csmcp.arg_text(args, 'community_name', NULL)), '');
    v_type text := csmcp.arg_text(args, 'community_type', NULL);
    v_cid text := csmcp.arg_text(args, 'community_id', NULL);
    v_client text := csmcp.arg_text(args, 'client_id', NULL);
    v_email text := lower(csmcp.arg_text(args, 'user_email', NULL));
    v_uname text := nullif(btrim(csmcp.arg_text(args, 'user_name', NULL)), '');
    v_content text := nullif(btrim(csmcp.arg_text(args, 'content', NULL)), '');
    v_member text := csmcp.arg_text(args, 'member_id', NULL);
    v_post bigint := csmcp.arg_int(args, 'post_id', NULL, 1, 2147483647);
    v_decision text := csmcp.arg_text(args, 'decision', NULL);
    v_limit integer := csmcp.arg_int(args, 'limit', 50, 1, 1000);
    v_offset integer := csmcp.arg_int(args, 'offset', 0, 0, 1000000);
    c communities;
    m community_members;
    p community_posts;
    old_p community_posts;
    acc accounts;
    v_items jsonb;
    v_total integer;
    v_stats jsonb;
BEGIN
    IF v_action = 'create_community' THEN
        IF v_name IS NULL THEN PERFORM csmcp.invalid('community_name: required for create_community'); END IF;
        IF v_type IS NULL THEN PERFORM csmcp.invalid('community_type: required for create_community'); END IF;
        PERFORM pg_advisory_xact_lock(hashtext('community_name:' || lower(v_name)));
        SELECT * INTO c FROM communities WHERE lower(name) = lower(v_name);
        IF FOUND THEN
            RAISE EXCEPTION 'a community named "%" already exists: %', c.name, c.community_id USING ERRCODE = 'P0001';
        END IF;
        INSERT INTO communities (community_id, name, community_type, created_by)
        VALUES (csmcp.comm_id('community', v_name), v_name, v_type, principal) RETURNING * INTO c;
        PERFORM csmcp.log_activity(NULL, principal, 'create', 'community', c.community_id, NULL, to_jsonb(c));
        RETURN jsonb_build_object('action', v_action,
                                  'community', jsonb_build_object('community_id', c.community_id, 'community_name', c.name,
                                                                  'community_type', c.community_type, 'created_at', c.created_at),
                                  'summary', format('Community %s "%s" (%s) created', c.community_id, c.name, c.community_type));
    END IF;

    IF v_action IN ('get_member_profile', 'post_content') THEN
        IF v_member IS NULL THEN PERFORM csmcp.invalid('member_id: required for ' || v_action); END IF;
        SELECT * INTO m FROM community_members WHERE member_id = v_member;
        IF NOT FOUND THEN RAISE EXCEPTION 'member % not found', v_member USING ERRCODE = 'P0002'; END IF;
        SELECT * INTO c FROM communities WHERE community_id = m.community_id;
    ELSE
        IF v_cid IS NOT NULL THEN
            SELECT * INTO c FROM communities WHERE community_id = v_cid;
            IF NOT FOUND THEN RAISE EXCEPTION 'community % not found', v_cid USING ERRCODE = 'P0002'; END IF;
        ELSIF v_name IS NOT NULL THEN
            SELECT * INTO c FROM communities WHERE lower(name) = lower(v_name);
            IF NOT FOUND THEN RAISE EXCEPTION 'community "%" not found', v_name USING ERRCODE = 'P0002'; END IF;
        ELSE
            PERFORM csmcp.invalid('community_id or community_name: required for ' || v_action);
        END IF;
    END IF;

    IF v_action = 'add_member' THEN
        acc := csmcp.require_account(v_client);
        IF v_email IS NULL THEN PERFORM csmcp.invalid('user_email: required for add_member'); END IF;
        INSERT INTO community_members (member_id, community_id, client_id, user_email, user_name)
        VALUES (csmcp.comm_id('member', right(v_client, 20)), c.community_id, v_client, v_email, v_uname)
        ON CONFLICT (community_id, user_email) DO NOTHING RETURNING * INTO m;
        IF NOT FOUND THEN
            SELECT * INTO m FROM community_members WHERE community_id = c.community_id AND user_email = v_email;
            RAISE EXCEPTION '% is already a member of % as %', v_email, c.community_id, m.member_id USING ERRCODE = 'P0001';
        END IF;
        PERFORM csmcp.log_activity(v_client, principal, 'create', 'community_member', m.member_id, NULL, to_jsonb(m));
        RETURN jsonb_build_object('action', v_action, 'member', csmcp.community_member_json(m),
                                  'summary', format('%s (%s) joined %s as %s', coalesce(v_uname, v_email), acc.client_name,
                                                    c.name, m.member_id));
    END IF;

    IF v_action = 'get_member_profile' THEN
        SELECT coalesce(jsonb_agg(csmcp.community_post_json(x) ORDER BY x.created_at DESC, x.post_id DESC), '[]') INTO v_items
        FROM (SELECT * FROM community_posts x WHERE x.member_id = m.member_id
              ORDER BY x.created_at DESC, x.post_id DESC LIMIT v_limit OFFSET v_offset) x;
        RETURN jsonb_build_object('action', v_action, 'member', csmcp.community_member_json(m), 'recent_posts', v_items,
                                  'summary', format('%s in %s: reputation %s, %s approved post(s)', coalesce(m.user_name, m.user_email),
                                                    c.name, m.reputation,
                                                    (SELECT count(*) FROM community_posts x WHERE x.member_id = m.member_id
                                                       AND x.moderation = 'approved')));
    END IF;

    IF v_action = 'list_members' THEN
        SELECT count(*) INTO v_total FROM community_members x WHERE x.community_id = c.community_id;
        SELECT coalesce(jsonb_agg(csmcp.community_member_json(x) ORDER BY x.reputation DESC, x.joined_at, x.member_id), '[]')
          INTO v_items
          FROM (SELECT * FROM community_members x WHERE x.community_id = c.community_id
                ORDER BY x.reputation DESC, x.joined_at, x.member_id LIMIT v_limit OFFSET v_offset) x;
        RETURN jsonb_build_object('action', v_action, 'community_id', c.community_id, 'members', v_items,
                                  'total_count', v_total, 'returned_count', jsonb_array_length(v_items),
                                  'limit', v_limit, 'offset', v_offset,
                                  'summary', format('%s member(s) in %s', v_total, c.name));
    END IF;

    IF v_action = 'post_content' THEN
        IF v_content IS NULL THEN PERFORM csmcp.invalid('content: required for post_content'); END IF;
        PERFORM 1 FROM community_members WHERE member_id = m.member_id FOR UPDATE;
        INSERT INTO community_posts (community_id, member_id, content, moderation)
        VALUES (c.community_id, m.member_id, v_content,
                CASE WHEN EXISTS (SELECT 1 FROM community_posts x WHERE x.member_id = m.member_id AND x.moderation = 'approved')
                     THEN 'approved' ELSE 'pending' END)
        RETURNING * INTO p;
        IF p.moderation = 'approved' THEN
            UPDATE community_members SET reputation = reputation + 10 WHERE member_id = m.member_id RETURNING * INTO m;
        END IF;
        PERFORM csmcp.log_activity(m.client_id, principal, 'create', 'community_post', p.post_id::text, NULL, to_jsonb(p));
        RETURN jsonb_build_object('action', v_action, 'post', csmcp.community_post_json(p),
                                  'member', csmcp.community_member_json(m),
                                  'summary', format('Post %s in %s: %s', p.post_id, c.name,
                                                    CASE WHEN p.moderation = 'pending' THEN 'held for moderation (first post)'
                                                         ELSE 'published' END));
    END IF;

    IF v_action = 'moderate' THEN
        IF v_post IS NOT NULL THEN
            IF v_decision IS NULL THEN PERFORM csmcp.invalid('decision: required with post_id (approve or reject)'); END IF;
            SELECT * INTO p FROM community_posts WHERE post_id = v_post AND community_id = c.community_id FOR UPDATE;
            IF NOT FOUND THEN RAISE EXCEPTION 'post % not found in %', v_post, c.community_id USING ERRCODE = 'P0002'; END IF;
            IF p.moderation <> 'pending' THEN
                RAISE EXCEPTION 'post % is already %', v_post, p.moderation USING ERRCODE = 'P0001';
            END IF;
            old_p := p;
            UPDATE community_posts SET moderation = CASE WHEN v_decision = 'approve' THEN 'approved' ELSE 'rejected' END
            WHERE post_id = p.post_id RETURNING * INTO p;
            IF p.moderation = 'approved' THEN
                UPDATE community_members SET reputation = reputation + 10 WHERE member_id = p.member_id;
            END IF;
            PERFORM csmcp.log_activity(NULL, principal, 'update', 'community_post', p.post_id::text,
                                       jsonb_build_object('moderation', old_p.moderation),
                                       jsonb_build_object('moderation', p.moderation));
        ELSIF v_decision IS NOT NULL THEN
            PERFORM csmcp.invalid('post_id: required with decision');
        END IF;
        SELECT count(*) INTO v_total FROM community_posts x WHERE x.community_id = c.community_id AND x.moderation = 'pending';
        SELECT coalesce(jsonb_agg(csmcp.community_post_json(x) ORDER BY x.created_at, x.post_id), '[]') INTO v_items
        FROM (SELECT * FROM community_posts x WHERE x.community_id = c.community_id AND x.moderation = 'pending'
              ORDER BY x.created_at, x.post_id LIMIT v_limit) x;
        RETURN jsonb_build_object('action', v_action, 'community_id', c.community_id,
                                  'moderated', CASE WHEN v_post IS NOT NULL THEN csmcp.community_post_json(p) END,
                                  'moderation_queue', v_items, 'pending_count', v_total,
                                  'summary', format('%s%s post(s) pending moderation in %s',
                                                    CASE WHEN v_post IS NOT NULL THEN format('Post %s %s; ', v_post, p.moderation)
                                                         ELSE '' END, v_total, c.name));
    END IF;

    -- get_analytics
    SELECT jsonb_build_object(
               'members', (SELECT count(*) FROM community_members x WHERE x.community_id = c.community_id),
               'new_members_30d', (SELECT count(*) FROM community_members x WHERE x.community_id = c.community_id
                                     AND x.joined_at > now() - interval '30 days'),
               'active_members_30d', (SELECT count(DISTINCT member_id) FROM community_posts x
                                      WHERE x.community_id = c.community_id AND x.created_at > now() - interval '30 days'),
               'posts', (SELECT count(*) FROM community_posts x WHERE x.community_id = c.community_id AND x.moderation = 'approved'),
               'posts_30d', (SELECT count(*) FROM community_posts x WHERE x.community_id = c.community_id
                               AND x.moderation = 'approved' AND x.created_at > now() - interval '30 days'),
               'pending_posts', (SELECT count(*) FROM community_posts x WHERE x.community_id = c.community_id AND x.moderation = 'pending'),
               'rejected_posts', (SELECT count(*) FROM community_posts x WHERE x.community_id = c.community_id AND x.moderation = 'rejected'),
               'accounts', (SELECT count(DISTINCT client_id) FROM community_members x WHERE x.community_id = c.community_id))
      INTO v_stats;
    v_stats := v_stats || jsonb_build_object(
        'posts_per_member', CASE WHEN (v_stats ->> 'members')::integer > 0
                                 THEN round((v_stats ->> 'posts')::numeric / (v_stats ->> 'members')::integer, 2) END,
        'active_member_rate', CASE WHEN (v_stats ->> 'members')::integer > 0
                                   THEN round((v_stats ->> 'active_members_30d')::numeric / (v_stats ->> 'members')::integer, 4) END);
    RETURN jsonb_build_object('action', v_action, 'community_id', c.community_id, 'community_name', c.name,
                              'community_type', c.community_type, 'analytics', v_stats,
                              'summary', format('%s: %s member(s), %s active in 30 days, %s approved post(s) (%s per member), %s pending',
                                                c.name, v_stats ->> 'members', v_stats ->> 'active_members_30d', v_stats ->> 'posts',
                                                coalesce(v_stats ->> 'posts_per_member', '-'), v_stats ->> 'pending_posts'));
END $$;

-- update_knowledge_base: update / publish / archive / vote / increment_version on one article.
--
-- update: changes any of title, summary, content, category, subcategory, tags, status; when the
-- content fields (title, summary, content, category, subcategory, tags) change, the previous
-- version is kept in kb_article_versions and version + 1. increment_version keeps the current
-- text as a version and bumps the number without a change. publish: status published,
-- published_at = now (first publication; kept on re-publication). archive: status archived.
-- vote: helpful_vote true/false on a published article; helpfulness = helpful / (helpful +
-- not helpful), 3 decimals, 0 with no votes. The publish / archive booleans apply after an update.

CREATE OR REPLACE FUNCTION csmcp.kb_save_version(a kb_articles, principal text) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO kb_article_versions (article_id, version, title, summary, content, category, subcategory, tags, status, saved_by)
    VALUES (a.article_id, a.version, a.title, a.summary, a.content, a.category, a.subcategory,
            coalesce((SELECT array_agg(tag ORDER BY tag) FROM kb_article_tags WHERE article_id = a.article_id), '{}'),
            a.status, coalesce(nullif(principal, ''), 'anonymous'))
    ON CONFLICT (article_id, version) DO NOTHING
$$;

CREATE OR REPLACE FUNCTION csmcp.tool_update_knowledge_base(args jsonb, principal text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v_action text := csmcp.arg_text(args, 'action', 'update', ARRAY['update', 'publish', 'archive', 'vote', 'increment_version']);
    a kb_articles := csmcp.kb_require_article(csmcp.arg_text(args, 'article_id', NULL), true);
    old kb_articles := a;
    old_json jsonb := csmcp.kb_article_json(a, true);
    v_title text := csmcp.sup_opt_text(args, 'title', 200);
    v_summary text := csmcp.sup_opt_text(args, 'summary', 500);
    v_content text := csmcp.sup_opt_text(args, 'content', 100000);
    v_cat text := csmcp.sup_opt_text(args, 'category', 100);
    v_sub text := csmcp.sup_opt_text(args, 'subcategory', 100);
    v_tags text[] := csmcp.sup_tags(args, 'tags');
    v_status text := csmcp.arg_text(args, 'status', NULL, ARRAY['draft', 'review', 'published', 'archived']);
    v_publish boolean := csmcp.arg_bool(args, 'publish', false);
    v_archive boolean := csmcp.arg_bool(args, 'archive', false);
    v_vote boolean := csmcp.arg_bool(args, 'helpful_vote', NULL);
    v_old_tags text[];
    changes text[] := '{}';
    v_text_changed boolean := false;
    extra jsonb := '{}';
    v_new jsonb;
BEGIN
    IF v_publish AND v_archive THEN PERFORM csmcp.invalid('publish and archive cannot both be true'); END IF;
    SELECT coalesce(array_agg(tag ORDER BY tag), '{}') INTO v_old_tags FROM kb_article_tags WHERE article_id = a.article_id;
    IF v_action <> 'update' AND (v_title IS NOT NULL OR v_summary IS NOT NULL OR v_content IS NOT NULL OR v_cat IS NOT NULL
                                 OR v_sub IS NOT NULL OR v_tags IS NOT NULL OR v_status IS NOT NULL) THEN
        PERFORM csmcp.invalid('title, summary, content, category, subcategory, tags and status apply to action update only');
    END IF;
    IF v_action <> 'vote' AND v_vote IS NOT NULL THEN PERFORM csmcp.invalid('helpful_vote applies to action vote only'); END IF;
    IF v_action = 'update' THEN
        IF v_title IS NOT NULL AND v_title <> a.title THEN changes := changes || 'title'::text; a.title := v_title; END IF;
        IF v_summary IS NOT NULL AND v_summary <> a.summary THEN changes := changes || 'summary'::text; a.summary := v_summary; END IF;
        IF v_content IS NOT NULL AND v_content <> a.content THEN changes := changes || 'content'::text; a.content := v_content; END IF;
        IF v_cat IS NOT NULL AND v_cat <> a.category THEN changes := changes || 'category'::text; a.category := v_cat; END IF;
        IF v_sub IS NOT NULL AND v_sub IS DISTINCT FROM a.subcategory THEN changes := changes || 'subcategory'::text; a.subcategory := v_sub; END IF;
        IF v_tags IS NOT NULL THEN
            SELECT array_agg(x ORDER BY x) INTO v_tags FROM unnest(v_tags) x;
            IF coalesce(v_tags, '{}') IS DISTINCT FROM v_old_tags THEN
                IF cardinality(coalesce(v_tags, '{}')) = 0 THEN PERFORM csmcp.invalid('tags: an article keeps at least one tag'); END IF;
                changes := changes || 'tags'::text;
            END IF;
        END IF;
        v_text_changed := cardinality(changes) > 0;
        IF v_status IS NOT NULL AND v_status <> a.status THEN changes := changes || format('status %s -> %s', a.status, v_status); a.status := v_status; END IF;
        IF v_publish AND a.status <> 'published' THEN changes := changes || format('status %s -> published', a.status); a.status := 'published'; END IF;
        IF v_archive AND a.status <> 'archived' THEN changes := changes || format('status %s -> archived', a.status); a.status := 'archived'; END IF;
        IF cardinality(changes) = 0 THEN
            PERFORM csmcp.invalid('update: nothing changes; give a new title, summary, content, category, subcategory, tags or status');
        END IF;
        IF v_text_changed THEN
            PERFORM csmcp.kb_save_version(old, principal);
            a.version := a.version + 1;
        END IF;
    ELSIF v_action = 'increment_version' THEN
        PERFORM csmcp.kb_save_version(old, principal);
        a.version := a.version + 1;
        changes := changes || format('version %s -> %s', old.version, a.version);
    ELSIF v_action = 'publish' THEN
        IF a.status = 'published' THEN
            RAISE EXCEPTION 'article % is already published (since %)', a.article_id, csmcp.sup_ts(a.published_at) USING ERRCODE = 'P0001';
        END IF;
        changes := changes || format('status %s -> published', a.status);
        a.status := 'published';
    ELSIF v_action = 'archive' THEN
        IF a.status = 'archived' THEN RAISE EXCEPTION 'article % is already archived', a.article_id USING ERRCODE = 'P0001'; END IF;
        changes := changes || format('status %s -> archived', a.status);
        a.status := 'archived';
    ELSE -- vote
        IF v_vote IS NULL THEN PERFORM csmcp.invalid('helpful_vote (true or false) is required for action vote'); END IF;
        IF a.status <> 'published' THEN
            RAISE EXCEPTION 'cannot vote on article %: it is %; only published articles take votes', a.article_id, a.status
                USING ERRCODE = 'P0001';
        END IF;
        IF v_vote THEN a.helpful_votes := a.helpful_votes + 1; ELSE a.not_helpful_votes := a.not_helpful_votes + 1; END IF;
        changes := changes || CASE WHEN v_vote THEN 'helpful vote' ELSE 'not-helpful vote' END;
        extra := jsonb_build_object('vote', jsonb_build_object('helpful', v_vote, 'helpful_votes', a.helpful_votes,
            'not_helpful_votes', a.not_helpful_votes, 'helpfulness_score', csmcp.kb_helpfulness(a.helpful_votes, a.not_helpful_votes)));
    END IF;
    IF a.status = 'published' AND a.published_at IS NULL THEN a.published_at := now(); END IF;
    IF v_action <> 'vote' THEN a.updated_at := now(); END IF;
    UPDATE kb_articles SET title = a.title, summary = a.summary, content = a.content, category = a.category,
        subcategory = a.subcategory, status = a.status, version = a.version, helpful_votes = a.helpful_votes,
        not_helpful_votes = a.not_helpful_votes, updated_at = a.updated_at, published_at = a.published_at
    WHERE article_id = a.article_id;
    IF v_action = 'update' AND 'tags' = ANY (changes) THEN
        DELETE FROM kb_article_tags WHERE article_id = a.article_id;
        INSERT INTO kb_article_tags (article_id, tag) SELECT a.article_id, g FROM unnest(v_tags) g;
    END IF;
    SELECT * INTO a FROM kb_articles WHERE article_id = a.article_id;
    v_new := csmcp.kb_article_json(a, true);
    PERFORM csmcp.log_activity(NULL, principal, v_action || '_article', 'kb_article', a.article_id, old_json, v_new);
    RETURN jsonb_build_object('status', 'success', 'action', v_action, 'article_id', a.article_id, 'article', v_new,
        'changes', to_jsonb(changes), 'previous_version', CASE WHEN a.version <> old.version THEN old.version END,
        'version', a.version) || extra
        || jsonb_build_object('summary', format('%s %s: %s. Now %s, version %s, helpfulness %s.', initcap(replace(v_action, '_', ' ')),
               a.article_id, array_to_string(changes, ', '), a.status, a.version, csmcp.kb_helpfulness(a.helpful_votes, a.not_helpful_votes)));
END $$;

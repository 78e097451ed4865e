-- manage_knowledge_base: search / create / get / list / recommend / analytics over kb_articles.
--
-- search: PostgreSQL full-text search over each article's document (title weight A, tags and
-- summary B, content C; 'english' stemming and stop words). The query's remaining words are
-- OR-ed (csmcp.kb_query: "how to update billing" -> 'updat' | 'bill'); rank = ts_rank with
-- weights {D 0.1, C 0.2, B 0.4, A 1.0} rounded to 4 decimals; order rank desc, helpfulness desc,
-- article_id. Only published articles unless include_drafts (then draft and review too);
-- archived articles are never searched. Every search is recorded in kb_searches (zero-result
-- queries are the analytics' search gaps). get counts a view (view_count + 1, and a
-- kb_article_views row naming client_id when given: the portal's views).

CREATE OR REPLACE FUNCTION csmcp.kb_statuses(args jsonb) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    v_status text := csmcp.arg_text(args, 'status', NULL, ARRAY['draft', 'review', 'published', 'archived']);
    v_drafts boolean := csmcp.arg_bool(args, 'include_drafts', false);
BEGIN
    IF v_status IS NOT NULL THEN RETURN ARRAY[v_status]; END IF;
    RETURN CASE WHEN v_drafts THEN ARRAY['published', 'draft', 'review'] ELSE ARRAY['published'] END;
END $$;

CREATE OR REPLACE FUNCTION csmcp.kb_search(args jsonb, principal text) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_q text := csmcp.sup_req_text(args, 'search_query', 500, 'for action search');
    v_cat text := csmcp.sup_opt_text(args, 'search_category', 100);
    v_limit integer := csmcp.arg_int(args, 'limit', 10, 1, 100);
    v_client text := csmcp.arg_text(args, 'client_id', NULL);
    v_status text[];
    v_tsq tsquery := csmcp.kb_query(v_q);
    v_total integer;
    v_rows jsonb;
    v_cats jsonb;
BEGIN
    v_status := csmcp.kb_statuses(args - 'status');
    IF args ? 'status' THEN v_status := csmcp.kb_statuses(args); END IF;
    IF 'archived' = ANY (v_status) THEN PERFORM csmcp.invalid('status: archived articles are not searched; use action list'); END IF;
    IF v_client IS NOT NULL THEN PERFORM csmcp.require_account(v_client); END IF;
    IF v_tsq IS NULL THEN
        PERFORM csmcp.invalid('search_query has no searchable words (only stop words or punctuation): ' || v_q);
    END IF;
    WITH m AS (
        SELECT a, round(ts_rank('{0.1, 0.2, 0.4, 1.0}', a.search_vector, v_tsq)::numeric, 4) AS rank
        FROM kb_articles a
        WHERE a.search_vector @@ v_tsq AND a.status = ANY (v_status) AND (v_cat IS NULL OR a.category = v_cat)
    ), top AS (
        SELECT * FROM m ORDER BY rank DESC, csmcp.kb_helpfulness((a).helpful_votes, (a).not_helpful_votes) DESC, (a).article_id
        LIMIT v_limit
    )
    SELECT (SELECT count(*) FROM m),
           coalesce((SELECT jsonb_agg(csmcp.kb_article_json(a, false) || jsonb_build_object('rank', rank,
                        'headline', ts_headline('english', (a).title || ': ' || (a).summary || ' ' || left((a).content, 2000), v_tsq,
                                                'MaxFragments=1, MaxWords=25, MinWords=8, StartSel=**, StopSel=**'))
                      ORDER BY rank DESC, csmcp.kb_helpfulness((a).helpful_votes, (a).not_helpful_votes) DESC, (a).article_id) FROM top), '[]'),
           coalesce((SELECT jsonb_agg(jsonb_build_object('category', c, 'matches', k) ORDER BY k DESC, c)
                     FROM (SELECT (a).category AS c, count(*) AS k FROM m GROUP BY 1) x), '[]')
    INTO v_total, v_rows, v_cats;
    INSERT INTO kb_searches (query, category, results, client_id) VALUES (v_q, v_cat, v_total, v_client);
    RETURN jsonb_build_object('status', 'success', 'action', 'search', 'search_query', v_q,
        'terms', v_tsq::text, 'total_matches', v_total, 'articles', v_rows, 'related_categories', v_cats,
        'summary', CASE WHEN v_total = 0 THEN format('No article matches "%s"; recorded as a search gap.', v_q)
                        ELSE format('%s article(s) match "%s"; best: %s (%s).', v_total, v_q, v_rows #>> '{0,article_id}', v_rows #>> '{0,title}') END);
END $$;

CREATE OR REPLACE FUNCTION csmcp.kb_create(args jsonb, principal text) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_title text := csmcp.sup_req_text(args, 'title', 200);
    v_summary text := csmcp.sup_req_text(args, 'summary', 500);
    v_content text := csmcp.sup_req_text(args, 'content', 100000);
    v_cat text := csmcp.sup_req_text(args, 'category', 100);
    v_sub text := csmcp.sup_opt_text(args, 'subcategory', 100);
    v_author text := csmcp.sup_req_text(args, 'author', 200);
    v_tags text[] := csmcp.sup_tags(args, 'tags');
    v_status text := csmcp.arg_text(args, 'status', 'published', ARRAY['draft', 'review', 'published', 'archived']);
    a kb_articles;
    v_id text;
BEGIN
    IF v_tags IS NULL OR cardinality(v_tags) = 0 THEN PERFORM csmcp.invalid('tags is required: at least one tag'); END IF;
    IF v_status = 'archived' THEN PERFORM csmcp.invalid('status: a new article cannot be archived'); END IF;
    v_id := 'KB-' || nextval('kb_article_seq');
    INSERT INTO kb_articles (article_id, title, summary, content, category, subcategory, status, author, published_at)
    VALUES (v_id, v_title, v_summary, v_content, v_cat, v_sub, v_status, v_author,
            CASE WHEN v_status = 'published' THEN now() END);
    INSERT INTO kb_article_tags (article_id, tag) SELECT v_id, g FROM unnest(v_tags) g;
    SELECT * INTO a FROM kb_articles WHERE article_id = v_id;
    PERFORM csmcp.log_activity(NULL, principal, 'create_article', 'kb_article', v_id, NULL, csmcp.kb_article_json(a, true));
    RETURN jsonb_build_object('status', 'success', 'action', 'create', 'article_id', v_id, 'article', csmcp.kb_article_json(a, true),
        'summary', format('Created %s "%s" (%s, %s).', v_id, v_title, v_cat, v_status));
END $$;

CREATE OR REPLACE FUNCTION csmcp.kb_get(args jsonb, principal text) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    a kb_articles := csmcp.kb_require_article(csmcp.arg_text(args, 'article_id', NULL), false);
    v_client text := csmcp.arg_text(args, 'client_id', NULL);
    v_related jsonb;
    v_versions integer;
BEGIN
    IF v_client IS NOT NULL THEN PERFORM csmcp.require_account(v_client); END IF;
    UPDATE kb_articles SET view_count = view_count + 1 WHERE article_id = a.article_id RETURNING * INTO a;
    INSERT INTO kb_article_views (article_id, client_id) VALUES (a.article_id, v_client);
    SELECT coalesce(jsonb_agg(jsonb_build_object('article_id', r.article_id, 'title', r.title,
               'helpfulness_score', csmcp.kb_helpfulness(r.helpful_votes, r.not_helpful_votes)) ORDER BY
               csmcp.kb_helpfulness(r.helpful_votes, r.not_helpful_votes) DESC, r.view_count DESC, r.article_id), '[]')
    INTO v_related
    FROM (SELECT * FROM kb_articles r WHERE r.category = a.category AND r.status = 'published' AND r.article_id <> a.article_id
          ORDER BY csmcp.kb_helpfulness(r.helpful_votes, r.not_helpful_votes) DESC, r.view_count DESC, r.article_id LIMIT 5) r;
    SELECT count(*) INTO v_versions FROM kb_article_versions WHERE article_id = a.article_id;
    RETURN jsonb_build_object('status', 'success', 'action', 'get', 'article_id', a.article_id,
        'article', csmcp.kb_article_json(a, true), 'related_articles', v_related,
        'metrics', jsonb_build_object('view_count', a.view_count, 'helpful_votes', a.helpful_votes,
            'not_helpful_votes', a.not_helpful_votes, 'helpfulness_score', csmcp.kb_helpfulness(a.helpful_votes, a.not_helpful_votes),
            'previous_versions', v_versions),
        'summary', format('%s "%s" (%s, v%s): %s views, helpfulness %s.', a.article_id, a.title, a.status, a.version,
                          a.view_count, csmcp.kb_helpfulness(a.helpful_votes, a.not_helpful_votes)));
END $$;

CREATE OR REPLACE FUNCTION csmcp.kb_list(args jsonb) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_cat text := csmcp.sup_opt_text(args, 'search_category', 100);
    v_sub text := csmcp.sup_opt_text(args, 'subcategory', 100);
    v_status text[] := csmcp.kb_statuses(args);
    v_limit integer := csmcp.arg_int(args, 'limit', 10, 1, 100);
    v_offset integer := csmcp.arg_int(args, 'offset', 0, 0, 1000000);
    v_total integer;
    v_rows jsonb;
BEGIN
    WITH m AS (SELECT a FROM kb_articles a WHERE a.status = ANY (v_status) AND (v_cat IS NULL OR a.category = v_cat)
                                              AND (v_sub IS NULL OR a.subcategory = v_sub)),
         p AS (SELECT a FROM m ORDER BY (a).updated_at DESC, (a).article_id DESC LIMIT v_limit OFFSET v_offset)
    SELECT (SELECT count(*) FROM m),
           coalesce((SELECT jsonb_agg(csmcp.kb_article_json(a, false) ORDER BY (a).updated_at DESC, (a).article_id DESC) FROM p), '[]')
    INTO v_total, v_rows;
    RETURN jsonb_build_object('status', 'success', 'action', 'list', 'articles', v_rows,
        'pagination', jsonb_build_object('total', v_total, 'limit', v_limit, 'offset', v_offset,
                                         'has_more', v_offset + jsonb_array_length(v_rows) < v_total),
        'summary', format('%s article(s) with status %s%s; showing %s.', v_total, array_to_string(v_status, '/'),
                          coalesce(' in ' || v_cat, ''), jsonb_array_length(v_rows)));
END $$;

-- recommend: for a ticket, or for a client's open tickets. score = 1 when the article's category
-- or one of its tags equals a ticket's category, plus the ts_rank of the tickets' subjects
-- (OR-ed words) against the article; published articles with score > 0, best first.
CREATE OR REPLACE FUNCTION csmcp.kb_recommend(args jsonb) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_ticket text := csmcp.arg_text(args, 'ticket_id', NULL);
    v_client text := csmcp.arg_text(args, 'client_id', NULL);
    v_limit integer := csmcp.arg_int(args, 'limit', 10, 1, 100);
    t support_tickets;
    v_cats text[];
    v_text text;
    v_tsq tsquery;
    v_rows jsonb;
BEGIN
    IF v_ticket IS NOT NULL THEN
        t := csmcp.sup_require_ticket(v_ticket, false);
        v_cats := ARRAY[t.category];
        v_text := t.subject;
    ELSIF v_client IS NOT NULL THEN
        PERFORM csmcp.require_account(v_client);
        SELECT array_agg(DISTINCT category), string_agg(subject, ' ') INTO v_cats, v_text
        FROM (SELECT category, subject FROM support_tickets WHERE client_id = v_client AND status NOT IN ('resolved', 'closed')
              ORDER BY created_at DESC LIMIT 50) x;
        IF v_cats IS NULL THEN
            RETURN jsonb_build_object('status', 'success', 'action', 'recommend', 'client_id', v_client, 'based_on',
                jsonb_build_object('categories', '[]'::jsonb, 'open_tickets', 0), 'articles', '[]'::jsonb,
                'summary', format('%s has no open tickets: nothing to recommend from.', v_client));
        END IF;
    ELSE
        PERFORM csmcp.invalid('recommend needs ticket_id or client_id');
    END IF;
    v_tsq := csmcp.kb_query(v_text);
    SELECT coalesce(jsonb_agg(csmcp.kb_article_json(a, false) || jsonb_build_object('score', score, 'category_match', cm)
               ORDER BY score DESC, (a).article_id), '[]')
    INTO v_rows
    FROM (SELECT a, cm, round(cm::int + coalesce(ts_rank('{0.1, 0.2, 0.4, 1.0}', a.search_vector, v_tsq), 0)::numeric, 4) AS score
          FROM kb_articles a
          CROSS JOIN LATERAL (SELECT a.category = ANY (v_cats)
                                     OR EXISTS (SELECT 1 FROM kb_article_tags g WHERE g.article_id = a.article_id AND g.tag = ANY (v_cats)) AS cm) c
          WHERE a.status = 'published' AND (c.cm OR (v_tsq IS NOT NULL AND a.search_vector @@ v_tsq))
          ORDER BY 3 DESC, a.article_id LIMIT v_limit) x;
    RETURN jsonb_build_object('status', 'success', 'action', 'recommend', 'ticket_id', v_ticket, 'client_id', coalesce(v_client, t.client_id),
        'based_on', jsonb_build_object('categories', to_jsonb(v_cats), 'terms', v_tsq::text),
        'articles', v_rows,
        'summary', format('%s article(s) recommended for %s (categories %s).', jsonb_array_length(v_rows),
                          coalesce(v_ticket, v_client), array_to_string(v_cats, ', ')));
END $$;

CREATE OR REPLACE FUNCTION csmcp.kb_analytics(args jsonb) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_cat text := csmcp.sup_opt_text(args, 'search_category', 100);
    v_days integer := csmcp.arg_int(args, 'period_days', 30, 1, 365);
    v_since timestamptz := now() - make_interval(days => v_days);
    r jsonb;
BEGIN
    SELECT jsonb_build_object(
        'period_days', v_days,
        'articles_by_status', coalesce((SELECT jsonb_object_agg(status, k) FROM (SELECT status, count(*) k FROM kb_articles
                                        WHERE v_cat IS NULL OR category = v_cat GROUP BY 1) x), '{}'),
        'total_views', coalesce((SELECT sum(view_count) FROM kb_articles WHERE v_cat IS NULL OR category = v_cat), 0),
        'views_in_period', (SELECT count(*) FROM kb_article_views v JOIN kb_articles a USING (article_id)
                            WHERE v.viewed_at > v_since AND (v_cat IS NULL OR a.category = v_cat)),
        'portal_views_in_period', (SELECT count(*) FROM kb_article_views v JOIN kb_articles a USING (article_id)
                                   WHERE v.viewed_at > v_since AND v.client_id IS NOT NULL AND (v_cat IS NULL OR a.category = v_cat)),
        'votes', coalesce((SELECT sum(helpful_votes + not_helpful_votes) FROM kb_articles WHERE v_cat IS NULL OR category = v_cat), 0),
        'overall_helpfulness', (SELECT csmcp.kb_helpfulness(sum(helpful_votes)::int, sum(not_helpful_votes)::int) FROM kb_articles
                                WHERE v_cat IS NULL OR category = v_cat),
        'top_viewed', coalesce((SELECT jsonb_agg(jsonb_build_object('article_id', article_id, 'title', title, 'view_count', view_count)
                                 ORDER BY view_count DESC, article_id) FROM (SELECT * FROM kb_articles WHERE status = 'published'
                                 AND (v_cat IS NULL OR category = v_cat) ORDER BY view_count DESC, article_id LIMIT 5) x), '[]'),
        'needs_review', coalesce((SELECT jsonb_agg(jsonb_build_object('article_id', article_id, 'title', title,
                                   'helpfulness_score', csmcp.kb_helpfulness(helpful_votes, not_helpful_votes),
                                   'votes', helpful_votes + not_helpful_votes) ORDER BY csmcp.kb_helpfulness(helpful_votes, not_helpful_votes), article_id)
                                  FROM kb_articles WHERE status = 'published' AND helpful_votes + not_helpful_votes >= 5
                                   AND csmcp.kb_helpfulness(helpful_votes, not_helpful_votes) < 0.5
                                   AND (v_cat IS NULL OR category = v_cat)), '[]'),
        'by_category', coalesce((SELECT jsonb_agg(jsonb_build_object('category', category, 'published', k, 'views', v) ORDER BY v DESC, category)
                                 FROM (SELECT category, count(*) k, sum(view_count) v FROM kb_articles WHERE status = 'published'
                                       AND (v_cat IS NULL OR category = v_cat) GROUP BY 1) x), '[]'),
        'searches_in_period', (SELECT count(*) FROM kb_searches WHERE searched_at > v_since AND (v_cat IS NULL OR category = v_cat)),
        'search_gaps', coalesce((SELECT jsonb_agg(jsonb_build_object('query', q, 'searches', k, 'last_searched_at', csmcp.sup_ts(l))
                                  ORDER BY k DESC, q) FROM (SELECT lower(query) q, count(*) k, max(searched_at) l FROM kb_searches
                                  WHERE searched_at > v_since AND results = 0 AND (v_cat IS NULL OR category = v_cat)
                                  GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 10) x), '[]'))
    INTO r;
    RETURN jsonb_build_object('status', 'success', 'action', 'analytics') || r || jsonb_build_object('summary',
        format('%s published article(s), %s view(s) in the last %s days, overall helpfulness %s, %s zero-result search quer(ies).',
               coalesce(r #>> '{articles_by_status,published}', '0'), r ->> 'views_in_period', v_days, r ->> 'overall_helpfulness',
               jsonb_array_length(r -> 'search_gaps')));
END $$;

CREATE OR REPLACE FUNCTION csmcp.tool_manage_knowledge_base(args jsonb, principal text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v_action text := csmcp.arg_text(args, 'action', 'search', ARRAY['search', 'create', 'get', 'list', 'recommend', 'analytics']);
BEGIN
    RETURN CASE v_action
        WHEN 'search' THEN csmcp.kb_search(args, principal)
        WHEN 'create' THEN csmcp.kb_create(args, principal)
        WHEN 'get' THEN csmcp.kb_get(args, principal)
        WHEN 'list' THEN csmcp.kb_list(args)
        WHEN 'recommend' THEN csmcp.kb_recommend(args)
        ELSE csmcp.kb_analytics(args) END;
END $$;

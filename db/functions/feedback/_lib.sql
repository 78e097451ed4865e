-- Feedback category helpers (issue 17, rules of reference/seed-original.md §3.6).

-- Does the lower-cased text contain the keyword as a whole word (or its plural with -s)?
-- The original tested substrings, so "debug" counted as "bug" and "easy" matched "uneasy";
-- \m and \M are PostgreSQL's word-start/word-end anchors.
CREATE OR REPLACE FUNCTION csmcp.fb_has_word(p_text text, p_word text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT p_text ~ ('\m' || p_word || 's?\M') $$;

CREATE OR REPLACE FUNCTION csmcp.fb_label_score(p_label text) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE p_label WHEN 'very_positive' THEN 0.8 WHEN 'positive' THEN 0.5 WHEN 'neutral' THEN 0.0
                        WHEN 'negative' THEN -0.5 WHEN 'very_negative' THEN -0.8 END
$$;

-- Aggregate weight of a label (analyze_feedback_sentiment).
CREATE OR REPLACE FUNCTION csmcp.fb_label_weight(p_label text) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE p_label WHEN 'very_positive' THEN 1.0 WHEN 'positive' THEN 0.5 WHEN 'neutral' THEN 0.0
                        WHEN 'negative' THEN -0.5 WHEN 'very_negative' THEN -1.0 END
$$;

-- Per-item sentiment of lower(title || ' ' || content): how many of the positive and of the
-- negative keywords occur (each keyword counts once), label, score, themes and emotion.
CREATE OR REPLACE FUNCTION csmcp.fb_sentiment(p_title text, p_content text) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    WITH t AS (SELECT lower(coalesce(p_title, '') || ' ' || coalesce(p_content, '')) AS x),
    c AS (
        SELECT (SELECT count(*) FROM unnest(ARRAY['great', 'excellent', 'love', 'amazing', 'fantastic', 'helpful', 'easy', 'perfect']) w
                 WHERE csmcp.fb_has_word(t.x, w))::int AS pos,
               (SELECT count(*) FROM unnest(ARRAY['terrible', 'awful', 'hate', 'broken', 'bug', 'issue', 'problem', 'difficult', 'slow']) w
                 WHERE csmcp.fb_has_word(t.x, w))::int AS neg,
               t.x
        FROM t
    ),
    l AS (
        SELECT c.*, CASE WHEN pos > neg + 2 THEN 'very_positive' WHEN pos > neg THEN 'positive'
                         WHEN neg > pos + 2 THEN 'very_negative' WHEN neg > pos THEN 'negative'
                         ELSE 'neutral' END AS label
        FROM c
    )
    SELECT jsonb_build_object(
        'sentiment', label,
        'sentiment_score', csmcp.fb_label_score(label),
        'positive_keywords', pos,
        'negative_keywords', neg,
        'confidence', 0.75,
        'key_themes', to_jsonb(ARRAY(
            SELECT th FROM (VALUES (1, 'customer_support', ARRAY['support', 'help']),
                                   (2, 'product_features', ARRAY['feature', 'function']),
                                   (3, 'performance', ARRAY['performance', 'slow', 'fast']),
                                   (4, 'user_interface', ARRAY['ui', 'interface', 'design'])) v(o, th, words)
            WHERE EXISTS (SELECT 1 FROM unnest(words) w WHERE csmcp.fb_has_word(l.x, w)) ORDER BY o)),
        'emotion_detected', CASE WHEN csmcp.fb_has_word(x, 'frustrated') OR csmcp.fb_has_word(x, 'angry') THEN 'frustrated'
                                 WHEN csmcp.fb_has_word(x, 'happy') OR csmcp.fb_has_word(x, 'pleased') THEN 'happy'
                                 WHEN csmcp.fb_has_word(x, 'confused') OR csmcp.fb_has_word(x, 'unclear') THEN 'confused'
                                 ELSE 'neutral' END)
    FROM l
$$;

-- Aggregate label from a score: >= 0.6 very_positive, >= 0.2 positive, >= -0.2 neutral,
-- >= -0.6 negative, else very_negative.
CREATE OR REPLACE FUNCTION csmcp.fb_score_label(p_score numeric) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN p_score >= 0.6 THEN 'very_positive' WHEN p_score >= 0.2 THEN 'positive'
                WHEN p_score >= -0.2 THEN 'neutral' WHEN p_score >= -0.6 THEN 'negative' ELSE 'very_negative' END
$$;

-- Period arguments shared by the feedback tools: YYYY-MM-DD, start <= end, end not in the
-- future; default the `p_days` days ending today (start = end - (p_days - 1)).
CREATE OR REPLACE FUNCTION csmcp.fb_period(args jsonb, p_days integer, OUT period_start date, OUT period_end date)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    period_end := csmcp.arg_date(args, 'period_end', csmcp.today());
    period_start := csmcp.arg_date(args, 'period_start', period_end - (p_days - 1));
    IF period_end > csmcp.today() THEN
        PERFORM csmcp.invalid(format('period_end: %s is in the future (today is %s)', period_end, csmcp.today()));
    END IF;
    IF period_start > period_end THEN
        PERFORM csmcp.invalid(format('period_start: %s is after period_end %s', period_start, period_end));
    END IF;
END $$;

-- NPS of the responses in [p_from, p_to] (UTC days): % promoters - % detractors, 1 dp; NULL without responses.
CREATE OR REPLACE FUNCTION csmcp.fb_nps(p_client text, p_from date, p_to date) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'responses', count(*),
        'promoters', count(*) FILTER (WHERE score >= 9),
        'passives', count(*) FILTER (WHERE score BETWEEN 7 AND 8),
        'detractors', count(*) FILTER (WHERE score <= 6),
        'nps', CASE WHEN count(*) > 0 THEN round(100.0 * (count(*) FILTER (WHERE score >= 9) - count(*) FILTER (WHERE score <= 6)) / count(*), 1) END)
    FROM nps_responses
    WHERE client_id = p_client
      AND responded_at >= p_from::timestamp AT TIME ZONE 'UTC' AND responded_at < (p_to + 1)::timestamp AT TIME ZONE 'UTC'
    HAVING p_client IS NOT NULL   -- (no row at all for the portfolio)
    UNION ALL
    -- the portfolio: the per-day counts kept by the triggers on nps_responses (nps_daily,
    -- migration 0156) instead of a scan of the period's responses (issue 21)
    SELECT jsonb_build_object('responses', s.responses, 'promoters', s.promoters, 'passives', s.passives,
                              'detractors', s.detractors,
                              'nps', CASE WHEN s.responses > 0 THEN round(100.0 * (s.promoters - s.detractors) / s.responses, 1) END)
    FROM csmcp.nps_daily_sum(p_from, p_to) s
    WHERE p_client IS NULL
$$;

CREATE OR REPLACE FUNCTION csmcp.fb_json(f feedback) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'feedback_id', f.feedback_id, 'client_id', f.client_id, 'feedback_type', f.feedback_type, 'source', f.source,
        'submitter_email', f.submitter_email, 'submitter_name', f.submitter_name, 'title', f.title, 'content', f.content,
        'category', f.category, 'subcategory', f.subcategory,
        'tags', to_jsonb(ARRAY(SELECT tag FROM feedback_tags t WHERE t.feedback_id = f.feedback_id ORDER BY tag)),
        'priority', f.priority, 'status', f.status, 'sentiment', f.sentiment, 'sentiment_score', f.sentiment_score,
        'themes', to_jsonb(f.themes), 'emotion', f.emotion, 'assigned_to', f.assigned_to,
        'follow_up_required', f.follow_up_required, 'follow_up_by', f.follow_up_by,
        'escalation_required', f.escalation_required, 'metadata', f.metadata,
        'response', f.response, 'responded_at', f.responded_at, 'created_at', f.created_at)
$$;

-- Routing of a feedback item (collect_feedback and the seed): follow-up, its days, escalation, assignee.
CREATE OR REPLACE FUNCTION csmcp.fb_route(p_type text, p_category text, p_priority text, p_label text) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT jsonb_build_object(
        'follow_up_required', p_label IN ('negative', 'very_negative') OR p_priority IN ('critical', 'high')
                              OR p_type IN ('bug_report', 'feature_request'),
        'follow_up_days', CASE p_priority WHEN 'critical' THEN 1 WHEN 'high' THEN 3 WHEN 'medium' THEN 7 ELSE 14 END,
        'escalation_required', p_priority = 'critical' OR (p_label = 'very_negative' AND p_priority = 'high'),
        'assigned_to', CASE WHEN p_type IN ('bug_report', 'feature_request') THEN 'product-team@company.com'
                            WHEN lower(btrim(p_category)) IN ('support', 'service') THEN 'support-team@company.com'
                            WHEN lower(btrim(p_category)) = 'billing' THEN 'finance-team@company.com'
                            WHEN p_priority = 'critical' THEN 'cs-leadership@company.com'
                            ELSE 'cs-team@company.com' END)
$$;

-- Scoring of a product insight (share_product_insights and the seed): business value, urgency,
-- executive escalation and effort from the type, priority, accounts, feedback items and their mean score.
CREATE OR REPLACE FUNCTION csmcp.fb_insight_scoring(p_type text, p_priority text, p_accounts integer, p_feedback integer, p_avg numeric)
RETURNS jsonb LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    WITH r AS (
        SELECT least(p_accounts / 2.5, 4) AS cp,
               CASE p_priority WHEN 'critical' THEN 3 WHEN 'high' THEN 2 WHEN 'medium' THEN 1 ELSE 0.5 END AS pp,
               least(p_feedback / 5.0, 2) AS fp,
               CASE WHEN p_avg < -0.3 THEN 1.0 ELSE 0.5 END AS sp
    ), v AS (SELECT r.*, cp + pp + fp + sp AS raw, round(least(cp + pp + fp + sp, 10), 1) AS value FROM r)
    SELECT jsonb_build_object(
        'customers_points', round(cp, 2), 'priority_points', pp, 'feedback_points', round(fp, 2), 'sentiment_points', sp,
        'uncapped', round(raw, 2), 'value', value,
        'urgency', CASE WHEN p_priority = 'critical' OR value >= 8.0 THEN 'urgent'
                        WHEN p_priority = 'high' OR value >= 6.0 THEN 'high'
                        WHEN value >= 4.0 THEN 'medium' ELSE 'normal' END,
        'executive_escalation', p_priority = 'critical' OR (p_priority = 'high' AND p_accounts >= 5) OR value >= 8.0,
        'effort', CASE WHEN p_type = 'bug_report' AND p_priority IN ('critical', 'high') THEN 'Small to Medium'
                       WHEN p_type = 'bug_report' THEN 'Small'
                       WHEN p_type = 'feature_request' THEN 'Medium to Large' ELSE 'Medium' END)
    FROM v
$$;

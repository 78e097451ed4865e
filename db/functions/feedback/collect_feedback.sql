-- collect_feedback: persist one feedback item (FB-<n>) with its keyword sentiment, themes,
-- emotion and routing (follow-up, due date, escalation, assignee) - reference §3.6.
CREATE OR REPLACE FUNCTION csmcp.tool_collect_feedback(args jsonb, principal text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    acc accounts;
    v_type text := csmcp.arg_text(args, 'feedback_type', NULL);
    v_title text := csmcp.arg_text(args, 'title', NULL);
    v_content text := csmcp.arg_text(args, 'content', NULL);
    v_category text := csmcp.arg_text(args, 'category', NULL);
    v_priority text := csmcp.arg_text(args, 'priority', 'medium', ARRAY['critical', 'high', 'medium', 'low']);
    s jsonb;
    rt jsonb;
    v_label text;
    v_follow boolean;
    v_days integer;
    v_escalate boolean;
    v_assignee text;
    f feedback;
    v_out jsonb;
BEGIN
    acc := csmcp.require_account(csmcp.arg_text(args, 'client_id', NULL));
    IF btrim(v_title) = '' THEN PERFORM csmcp.invalid('title: must not be blank'); END IF;
    IF btrim(v_content) = '' THEN PERFORM csmcp.invalid('content: must not be blank'); END IF;
    IF btrim(v_category) = '' THEN PERFORM csmcp.invalid('category: must not be blank'); END IF;
    IF btrim(csmcp.arg_text(args, 'source', NULL)) = '' THEN PERFORM csmcp.invalid('source: must not be blank'); END IF;
    IF btrim(csmcp.arg_text(args, 'submitter_name', NULL)) = '' THEN PERFORM csmcp.invalid('submitter_name: must not be blank'); END IF;

    s := csmcp.fb_sentiment(v_title, v_content);
    v_label := s->>'sentiment';
    rt := csmcp.fb_route(v_type, v_category, v_priority, v_label);
    v_follow := (rt->>'follow_up_required')::boolean;
    v_days := (rt->>'follow_up_days')::int;
    v_escalate := (rt->>'escalation_required')::boolean;
    v_assignee := rt->>'assigned_to';

    INSERT INTO feedback (feedback_id, client_id, feedback_type, source, submitter_email, submitter_name, title, content,
                          category, subcategory, sentiment, sentiment_score, priority, status, assigned_to, follow_up_by,
                          themes, emotion, positive_keywords, negative_keywords, follow_up_required, escalation_required,
                          metadata, created_by)
    VALUES ('FB-' || nextval('feedback_seq'), acc.client_id, v_type, btrim(args->>'source'), args->>'submitter_email',
            btrim(args->>'submitter_name'), btrim(v_title), v_content, btrim(v_category), nullif(btrim(args->>'subcategory'), ''),
            v_label, (s->>'sentiment_score')::numeric, v_priority, 'new', v_assignee,
            CASE WHEN v_follow THEN csmcp.today() + v_days END,
            ARRAY(SELECT jsonb_array_elements_text(s->'key_themes')), s->>'emotion_detected',
            (s->>'positive_keywords')::int, (s->>'negative_keywords')::int, v_follow, v_escalate,
            coalesce(args->'metadata', '{}'), coalesce(nullif(principal, ''), 'anonymous'))
    RETURNING * INTO f;
    INSERT INTO feedback_tags (feedback_id, tag)
    SELECT DISTINCT f.feedback_id, btrim(t) FROM jsonb_array_elements_text(coalesce(args->'tags', '[]')) t WHERE btrim(t) <> '';

    v_out := csmcp.fb_json(f);
    PERFORM csmcp.log_activity(f.client_id, principal, 'collect_feedback', 'feedback', f.feedback_id, NULL, v_out);
    RETURN jsonb_build_object(
        'feedback_id', f.feedback_id,
        'feedback_record', v_out,
        'sentiment_analysis', jsonb_build_object(
            'sentiment', v_label, 'sentiment_score', (s->>'sentiment_score')::numeric, 'confidence', 0.75,
            'positive_keywords', (s->>'positive_keywords')::int, 'negative_keywords', (s->>'negative_keywords')::int,
            'key_themes', s->'key_themes', 'emotion_detected', s->>'emotion_detected'),
        'routing', jsonb_build_object(
            'assigned_to', v_assignee, 'priority', v_priority, 'follow_up_required', v_follow,
            'follow_up_days', CASE WHEN v_follow THEN v_days END,
            'follow_up_by', f.follow_up_by, 'escalation_required', v_escalate),
        'action_items', to_jsonb(ARRAY(SELECT x FROM unnest(ARRAY[
            CASE WHEN v_escalate THEN format('Escalate to cs-leadership@company.com (%s priority%s)', v_priority,
                                             CASE WHEN v_label = 'very_negative' THEN ', very negative sentiment' ELSE '' END) END,
            CASE WHEN v_follow THEN format('Follow up with %s by %s', f.submitter_email, f.follow_up_by) END,
            CASE WHEN v_type IN ('bug_report', 'feature_request') THEN 'Share with the product team (share_product_insights)' END,
            format('Review by %s', v_assignee)]) x WHERE x IS NOT NULL)),
        'summary', format('%s recorded for %s: %s (score %s), %s priority, assigned to %s%s%s', f.feedback_id, acc.client_name,
                          v_label, f.sentiment_score, v_priority, v_assignee,
                          CASE WHEN v_follow THEN ', follow up by ' || f.follow_up_by ELSE ', no follow-up needed' END,
                          CASE WHEN v_escalate THEN ', escalated' ELSE '' END));
END $$;

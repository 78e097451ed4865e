-- share_product_insights: persist a product insight (PI-<n>) linked to existing feedback and
-- accounts, scored from those rows: business value, urgency, executive escalation, effort - §3.6.
CREATE OR REPLACE FUNCTION csmcp.tool_share_product_insights(args jsonb, principal text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v_type text := csmcp.arg_text(args, 'insight_type', NULL);
    v_priority text := csmcp.arg_text(args, 'priority', NULL, ARRAY['critical', 'high', 'medium', 'low']);
    v_due date := csmcp.arg_date(args, 'due_date', NULL);
    v_fb text[] := ARRAY(SELECT DISTINCT jsonb_array_elements_text(coalesce(args->'supporting_feedback_ids', '[]')));
    v_acc text[] := ARRAY(SELECT DISTINCT jsonb_array_elements_text(coalesce(args->'affected_customers', '[]')));
    v_missing text;
    v_n_fb integer;
    v_n_acc integer;
    v_avg numeric;
    v_pos integer;
    v_neg integer;
    sc jsonb;
    v_value numeric;
    v_urgency text;
    v_exec boolean;
    v_effort text;
    v_recipients text[];
    v_quotes jsonb;
    pi product_insights;
    v_out jsonb;
BEGIN
    IF btrim(args->>'title') = '' THEN PERFORM csmcp.invalid('title: must not be blank'); END IF;
    IF btrim(args->>'description') = '' THEN PERFORM csmcp.invalid('description: must not be blank'); END IF;
    IF v_due IS NOT NULL AND v_due < csmcp.today() THEN
        PERFORM csmcp.invalid(format('due_date: %s is in the past (today is %s)', v_due, csmcp.today()));
    END IF;
    SELECT string_agg(x, ', ' ORDER BY x) INTO v_missing FROM unnest(v_fb) x WHERE NOT EXISTS (SELECT 1 FROM feedback f WHERE f.feedback_id = x);
    IF v_missing IS NOT NULL THEN RAISE EXCEPTION 'feedback not found: %', v_missing USING ERRCODE = 'P0002'; END IF;
    SELECT string_agg(x, ', ' ORDER BY x) INTO v_missing FROM unnest(v_acc) x WHERE NOT EXISTS (SELECT 1 FROM accounts a WHERE a.client_id = x);
    IF v_missing IS NOT NULL THEN RAISE EXCEPTION 'client not found: %', v_missing USING ERRCODE = 'P0002'; END IF;

    v_n_fb := cardinality(v_fb);
    v_n_acc := cardinality(v_acc);
    SELECT avg(sentiment_score), count(*) FILTER (WHERE sentiment_score > 0.2), count(*) FILTER (WHERE sentiment_score < -0.2)
      INTO v_avg, v_pos, v_neg FROM feedback WHERE feedback_id = ANY (v_fb);
    sc := csmcp.fb_insight_scoring(v_type, v_priority, v_n_acc, v_n_fb, v_avg);
    v_value := (sc->>'value')::numeric;
    v_urgency := sc->>'urgency';
    v_exec := (sc->>'executive_escalation')::boolean;
    v_effort := sc->>'effort';
    v_recipients := ARRAY(SELECT DISTINCT r FROM unnest(
        coalesce(ARRAY(SELECT jsonb_array_elements_text(args->'target_recipients')), '{}'::text[])
        || CASE WHEN args ? 'target_recipients' THEN '{}'::text[] ELSE ARRAY['product-team@company.com'] END
        || CASE WHEN v_exec THEN ARRAY['cs-leadership@company.com'] ELSE '{}'::text[] END) r ORDER BY r);

    INSERT INTO product_insights (insight_id, insight_type, title, description, priority, business_value_score, due_date, created_by,
                                  customer_impact, business_impact, recommended_action, urgency, executive_escalation,
                                  estimated_effort, target_recipients)
    VALUES ('PI-' || nextval('product_insight_seq'), v_type, btrim(args->>'title'), args->>'description', v_priority, v_value, v_due,
            coalesce(nullif(principal, ''), 'anonymous'), args->>'customer_impact', args->>'business_impact',
            args->>'recommended_action', v_urgency, v_exec, v_effort, v_recipients)
    RETURNING * INTO pi;
    INSERT INTO product_insight_feedback (insight_id, feedback_id) SELECT pi.insight_id, x FROM unnest(v_fb) x;
    INSERT INTO product_insight_accounts (insight_id, client_id) SELECT pi.insight_id, x FROM unnest(v_acc) x;

    SELECT coalesce(jsonb_agg(jsonb_build_object('feedback_id', feedback_id, 'client_id', client_id, 'submitter_name', submitter_name,
                                                 'sentiment', sentiment, 'quote', left(content, 200)) ORDER BY sentiment_score, feedback_id), '[]')
      INTO v_quotes FROM (SELECT * FROM feedback WHERE feedback_id = ANY (v_fb) ORDER BY sentiment_score, feedback_id LIMIT 5) q;

    v_out := csmcp.fb_insight_json(pi);
    PERFORM csmcp.log_activity(NULL, principal, 'share_product_insight', 'product_insight', pi.insight_id, NULL, v_out);
    RETURN jsonb_build_object(
        'insight_id', pi.insight_id,
        'insight_record', v_out,
        'score_breakdown', sc - 'value' - 'urgency' - 'executive_escalation' - 'effort',
        'supporting_feedback', jsonb_build_object(
            'count', v_n_fb, 'avg_sentiment', round(v_avg, 3),
            'positive_pct', CASE WHEN v_n_fb > 0 THEN round(100.0 * v_pos / v_n_fb, 1) ELSE 0 END,
            'negative_pct', CASE WHEN v_n_fb > 0 THEN round(100.0 * v_neg / v_n_fb, 1) ELSE 0 END,
            'overall', CASE WHEN v_avg > 0.2 THEN 'positive' WHEN v_avg < -0.2 THEN 'negative' ELSE 'neutral' END),
        'delivery_summary', jsonb_build_object('recipients', to_jsonb(v_recipients), 'executive_escalation', v_exec),
        'impact_summary', jsonb_build_object('urgency_level', v_urgency, 'affected_customers', v_n_acc, 'business_value_score', v_value),
        'customer_quotes', v_quotes,
        'tracking', jsonb_build_object('expected_acknowledgment', csmcp.today() + 2,
                                       'suggested_review_date', coalesce(v_due, csmcp.today() + 14)),
        'summary', format('%s (%s, %s priority): business value %s/10, urgency %s, effort %s, %s feedback item(s), %s account(s)%s',
                          pi.insight_id, v_type, v_priority, v_value, v_urgency, v_effort, v_n_fb, v_n_acc,
                          CASE WHEN v_exec THEN ', escalated to executives' ELSE '' END));
END $$;

CREATE OR REPLACE FUNCTION csmcp.fb_insight_json(pi product_insights) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'insight_id', pi.insight_id, 'insight_type', pi.insight_type, 'title', pi.title, 'description', pi.description,
        'priority', pi.priority, 'business_value_score', pi.business_value_score, 'urgency', pi.urgency,
        'executive_escalation', pi.executive_escalation, 'estimated_effort', pi.estimated_effort, 'due_date', pi.due_date,
        'customer_impact', pi.customer_impact, 'business_impact', pi.business_impact, 'recommended_action', pi.recommended_action,
        'target_recipients', to_jsonb(pi.target_recipients),
        'supporting_feedback_ids', to_jsonb(ARRAY(SELECT feedback_id FROM product_insight_feedback x WHERE x.insight_id = pi.insight_id ORDER BY feedback_id)),
        'affected_customers', to_jsonb(ARRAY(SELECT client_id FROM product_insight_accounts x WHERE x.insight_id = pi.insight_id ORDER BY client_id)),
        'roadmap_item', pi.roadmap_item, 'roadmap_status', pi.roadmap_status, 'created_at', pi.created_at)
$$;

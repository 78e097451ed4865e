-- manage_voice_of_customer: the VoC programme over stored feedback, NPS and insights: stored
-- reports (VOC-<n>) and executive summaries, the feedback loop (track / close) and programme
-- effectiveness, and roadmap links of product insights.
CREATE OR REPLACE FUNCTION csmcp.fb_loop_stats(p_client text, p_from date, p_to date) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'feedback_total', count(*),
        'needing_follow_up', count(*) FILTER (WHERE follow_up_required),
        'responded', count(*) FILTER (WHERE follow_up_required AND responded_at IS NOT NULL),
        'open', count(*) FILTER (WHERE follow_up_required AND responded_at IS NULL),
        'overdue', count(*) FILTER (WHERE follow_up_required AND responded_at IS NULL AND follow_up_by < csmcp.today()),
        'responded_late', count(*) FILTER (WHERE follow_up_required AND responded_at IS NOT NULL
                                             AND (responded_at AT TIME ZONE 'UTC')::date > follow_up_by),
        'closure_rate', CASE WHEN count(*) FILTER (WHERE follow_up_required) > 0
                             THEN round(count(*) FILTER (WHERE follow_up_required AND responded_at IS NOT NULL)::numeric
                                        / count(*) FILTER (WHERE follow_up_required), 4) END,
        'mean_days_to_response', round(avg(extract(epoch FROM responded_at - created_at) / 86400)
                                       FILTER (WHERE follow_up_required AND responded_at IS NOT NULL)::numeric, 2))
    FROM feedback
    WHERE (p_client IS NULL OR client_id = p_client)
      AND created_at >= p_from::timestamp AT TIME ZONE 'UTC' AND created_at < (p_to + 1)::timestamp AT TIME ZONE 'UTC'
$$;

CREATE OR REPLACE FUNCTION csmcp.fb_insight_stats(p_client text, p_from date, p_to date, p_limit integer) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    WITH i AS (
        SELECT pi.* FROM product_insights pi
        WHERE pi.created_at >= p_from::timestamp AT TIME ZONE 'UTC' AND pi.created_at < (p_to + 1)::timestamp AT TIME ZONE 'UTC'
          AND (p_client IS NULL OR EXISTS (SELECT 1 FROM product_insight_accounts x WHERE x.insight_id = pi.insight_id AND x.client_id = p_client))
    )
    SELECT jsonb_build_object(
        'count', (SELECT count(*) FROM i),
        'executive_escalations', (SELECT count(*) FROM i WHERE executive_escalation),
        'on_roadmap', (SELECT count(*) FROM i WHERE roadmap_item IS NOT NULL),
        'top', (SELECT coalesce(jsonb_agg(jsonb_build_object('insight_id', insight_id, 'title', title, 'insight_type', insight_type,
                                                             'priority', priority, 'business_value_score', business_value_score,
                                                             'urgency', urgency, 'roadmap_item', roadmap_item, 'roadmap_status', roadmap_status)
                                          ORDER BY business_value_score DESC, insight_id), '[]')
                FROM (SELECT * FROM i ORDER BY business_value_score DESC, insight_id LIMIT p_limit) t))
$$;

CREATE OR REPLACE FUNCTION csmcp.fb_quotes(p_client text, p_from date, p_to date, p_limit integer) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'positive', (SELECT coalesce(jsonb_agg(q), '[]') FROM (
            SELECT jsonb_build_object('feedback_id', feedback_id, 'client_id', client_id, 'sentiment', sentiment, 'quote', left(content, 200)) q
            FROM feedback WHERE (p_client IS NULL OR client_id = p_client) AND sentiment_score > 0
              AND created_at >= p_from::timestamp AT TIME ZONE 'UTC' AND created_at < (p_to + 1)::timestamp AT TIME ZONE 'UTC'
            ORDER BY sentiment_score DESC, created_at DESC, feedback_id LIMIT p_limit) x),
        'negative', (SELECT coalesce(jsonb_agg(q), '[]') FROM (
            SELECT jsonb_build_object('feedback_id', feedback_id, 'client_id', client_id, 'sentiment', sentiment, 'quote', left(content, 200)) q
            FROM feedback WHERE (p_client IS NULL OR client_id = p_client) AND sentiment_score < 0
              AND created_at >= p_from::timestamp AT TIME ZONE 'UTC' AND created_at < (p_to + 1)::timestamp AT TIME ZONE 'UTC'
            ORDER BY sentiment_score, created_at DESC, feedback_id LIMIT p_limit) x))
$$;

CREATE OR REPLACE FUNCTION csmcp.tool_manage_voice_of_customer(args jsonb, principal text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v_action text := csmcp.arg_text(args, 'action', NULL);
    v_client text := csmcp.arg_text(args, 'client_id', NULL);
    v_rtype text := csmcp.arg_text(args, 'report_type', 'monthly');
    v_aud text := csmcp.arg_text(args, 'target_audience', 'all');
    v_limit integer := csmcp.arg_int(args, 'limit', 5, 1, 100);
    v_days integer;
    acc accounts;
    p record;
    v_len integer;
    v_content jsonb;
    v_stats jsonb;
    v_recipients text[];
    r voc_reports;
    f feedback;
    old_f jsonb;
    pi product_insights;
    old_pi jsonb;
    cur jsonb;
    prev jsonb;
    v_name text;
BEGIN
    IF v_client IS NOT NULL THEN acc := csmcp.require_account(v_client); END IF;
    v_name := CASE WHEN v_client IS NULL THEN 'Portfolio' ELSE acc.client_name END;
    v_days := CASE v_rtype WHEN 'weekly' THEN 7 WHEN 'monthly' THEN 30 WHEN 'quarterly' THEN 90 ELSE 365 END;

    IF v_action = 'close_feedback_loop' THEN
        IF NOT args ? 'feedback_id' THEN PERFORM csmcp.invalid('feedback_id: required for close_feedback_loop'); END IF;
        IF coalesce(btrim(args->>'response'), '') = '' THEN PERFORM csmcp.invalid('response: required for close_feedback_loop (what the customer was told)'); END IF;
        SELECT * INTO f FROM feedback WHERE feedback_id = args->>'feedback_id' FOR UPDATE;
        IF NOT FOUND THEN RAISE EXCEPTION 'feedback % not found', args->>'feedback_id' USING ERRCODE = 'P0002'; END IF;
        IF v_client IS NOT NULL AND f.client_id <> v_client THEN
            RAISE EXCEPTION 'feedback % belongs to another account (%)', f.feedback_id, f.client_id USING ERRCODE = '22023';
        END IF;
        IF f.responded_at IS NOT NULL THEN
            RAISE EXCEPTION 'feedback %: loop already closed at % (response recorded)', f.feedback_id, f.responded_at USING ERRCODE = '22023';
        END IF;
        old_f := csmcp.fb_json(f);
        UPDATE feedback SET response = btrim(args->>'response'), responded_at = now(), responded_by = coalesce(nullif(principal, ''), 'anonymous'),
                            status = CASE WHEN status IN ('new', 'reviewed', 'in_progress') THEN 'resolved' ELSE status END,
                            resolved_at = coalesce(resolved_at, CASE WHEN status IN ('new', 'reviewed', 'in_progress') THEN now() END)
         WHERE feedback_id = f.feedback_id RETURNING * INTO f;
        PERFORM csmcp.log_activity(f.client_id, principal, 'close_feedback_loop', 'feedback', f.feedback_id, old_f, csmcp.fb_json(f));
        RETURN jsonb_build_object('action', v_action, 'feedback', csmcp.fb_json(f),
            'on_time', f.follow_up_by IS NULL OR (f.responded_at AT TIME ZONE 'UTC')::date <= f.follow_up_by,
            'summary', format('Feedback loop of %s closed (%s)%s', f.feedback_id, f.status,
                              CASE WHEN f.follow_up_by IS NOT NULL AND (f.responded_at AT TIME ZONE 'UTC')::date > f.follow_up_by
                                   THEN ', after its follow-up date ' || f.follow_up_by ELSE '' END));
    END IF;

    IF v_action = 'update_customer_roadmap' THEN
        IF NOT args ? 'insight_id' THEN PERFORM csmcp.invalid('insight_id: required for update_customer_roadmap'); END IF;
        IF NOT args ? 'roadmap_item' AND NOT args ? 'roadmap_status' THEN
            PERFORM csmcp.invalid('roadmap_item or roadmap_status: required for update_customer_roadmap');
        END IF;
        SELECT * INTO pi FROM product_insights WHERE insight_id = args->>'insight_id' FOR UPDATE;
        IF NOT FOUND THEN RAISE EXCEPTION 'insight % not found', args->>'insight_id' USING ERRCODE = 'P0002'; END IF;
        IF pi.roadmap_item IS NULL AND NOT args ? 'roadmap_item' THEN
            PERFORM csmcp.invalid(format('roadmap_item: insight %s is not on the roadmap yet; give the roadmap item', pi.insight_id));
        END IF;
        IF coalesce(btrim(args->>'roadmap_item'), pi.roadmap_item) IS NOT DISTINCT FROM pi.roadmap_item
           AND coalesce(args->>'roadmap_status', pi.roadmap_status, 'under_review') IS NOT DISTINCT FROM pi.roadmap_status THEN
            RAISE EXCEPTION 'insight %: roadmap unchanged (already % / %)', pi.insight_id, pi.roadmap_item, pi.roadmap_status USING ERRCODE = '22023';
        END IF;
        old_pi := csmcp.fb_insight_json(pi);
        UPDATE product_insights SET roadmap_item = coalesce(btrim(args->>'roadmap_item'), roadmap_item),
                                    roadmap_status = coalesce(args->>'roadmap_status', roadmap_status, 'under_review'),
                                    roadmap_updated_at = now()
         WHERE insight_id = pi.insight_id RETURNING * INTO pi;
        PERFORM csmcp.log_activity(NULL, principal, 'update_customer_roadmap', 'product_insight', pi.insight_id, old_pi, csmcp.fb_insight_json(pi));
        RETURN jsonb_build_object('action', v_action, 'insight', csmcp.fb_insight_json(pi),
            'affected_customers', (SELECT count(*) FROM product_insight_accounts WHERE insight_id = pi.insight_id),
            'summary', format('%s linked to roadmap item "%s" (%s)', pi.insight_id, pi.roadmap_item, pi.roadmap_status));
    END IF;

    p := csmcp.fb_period(args, v_days);
    v_len := p.period_end - p.period_start + 1;

    IF v_action = 'track_feedback_loop' THEN
        v_stats := csmcp.fb_loop_stats(v_client, p.period_start, p.period_end);
        RETURN jsonb_build_object('action', v_action, 'client_id', v_client, 'period_start', p.period_start, 'period_end', p.period_end,
            'loop', v_stats,
            'overdue_items', (SELECT coalesce(jsonb_agg(jsonb_build_object('feedback_id', feedback_id, 'client_id', client_id, 'priority', priority,
                                                                           'assigned_to', assigned_to, 'follow_up_by', follow_up_by,
                                                                           'days_overdue', csmcp.today() - follow_up_by)
                                                        ORDER BY follow_up_by, feedback_id), '[]')
                              FROM (SELECT * FROM feedback WHERE (v_client IS NULL OR client_id = v_client) AND follow_up_required
                                      AND responded_at IS NULL AND follow_up_by < csmcp.today()
                                      AND created_at >= p.period_start::timestamp AT TIME ZONE 'UTC'
                                      AND created_at < (p.period_end + 1)::timestamp AT TIME ZONE 'UTC'
                                    ORDER BY follow_up_by, feedback_id LIMIT v_limit) o),
            'summary', format('%s, %s to %s: %s of %s feedback items needing follow-up answered (closure %s), %s overdue',
                              v_name, p.period_start, p.period_end, v_stats->>'responded', v_stats->>'needing_follow_up',
                              coalesce(v_stats->>'closure_rate', 'n/a'), v_stats->>'overdue'));
    END IF;

    IF v_action = 'measure_program_effectiveness' THEN
        cur := jsonb_build_object('loop', csmcp.fb_loop_stats(v_client, p.period_start, p.period_end),
                                  'nps', csmcp.fb_nps(v_client, p.period_start, p.period_end),
                                  'insights', csmcp.fb_insight_stats(v_client, p.period_start, p.period_end, 0) - 'top');
        prev := jsonb_build_object('loop', csmcp.fb_loop_stats(v_client, p.period_start - v_len, p.period_start - 1),
                                   'nps', csmcp.fb_nps(v_client, p.period_start - v_len, p.period_start - 1),
                                   'insights', csmcp.fb_insight_stats(v_client, p.period_start - v_len, p.period_start - 1, 0) - 'top');
        RETURN jsonb_build_object('action', v_action, 'client_id', v_client, 'period_start', p.period_start, 'period_end', p.period_end,
            'current', cur, 'previous', prev,
            'change', jsonb_build_object(
                'feedback_total', (cur#>>'{loop,feedback_total}')::int - (prev#>>'{loop,feedback_total}')::int,
                'closure_rate', (cur#>>'{loop,closure_rate}')::numeric - (prev#>>'{loop,closure_rate}')::numeric,
                'mean_days_to_response', (cur#>>'{loop,mean_days_to_response}')::numeric - (prev#>>'{loop,mean_days_to_response}')::numeric,
                'nps', (cur#>>'{nps,nps}')::numeric - (prev#>>'{nps,nps}')::numeric,
                'insights', (cur#>>'{insights,count}')::int - (prev#>>'{insights,count}')::int),
            'feedback_linked_to_insights', (SELECT count(DISTINCT x.feedback_id) FROM product_insight_feedback x JOIN feedback fb USING (feedback_id)
                                             WHERE (v_client IS NULL OR fb.client_id = v_client)
                                               AND fb.created_at >= p.period_start::timestamp AT TIME ZONE 'UTC'
                                               AND fb.created_at < (p.period_end + 1)::timestamp AT TIME ZONE 'UTC'),
            'summary', format('%s, %s to %s: closure %s (previous %s), NPS %s (previous %s), %s insight(s), %s on the roadmap',
                              v_name, p.period_start, p.period_end, coalesce(cur#>>'{loop,closure_rate}', 'n/a'),
                              coalesce(prev#>>'{loop,closure_rate}', 'n/a'), coalesce(cur#>>'{nps,nps}', 'n/a'),
                              coalesce(prev#>>'{nps,nps}', 'n/a'), cur#>>'{insights,count}', cur#>>'{insights,on_roadmap}'));
    END IF;

    -- create_voc_report and generate_executive_summary: a stored report VOC-<n>.
    v_stats := csmcp.tool_analyze_feedback_sentiment(
        jsonb_strip_nulls(jsonb_build_object('client_id', v_client, 'period_start', p.period_start, 'period_end', p.period_end)), principal);
    IF v_action = 'generate_executive_summary' THEN
        v_aud := 'executive';
        v_content := jsonb_build_object(
            'kind', 'executive_summary',
            'headline', jsonb_build_object('nps', v_stats#>'{nps,nps}', 'nps_responses', v_stats#>'{nps,responses}',
                                           'feedback_items', v_stats->'total_feedback', 'overall_sentiment', v_stats->'overall_sentiment',
                                           'sentiment_score', v_stats->'overall_sentiment_score', 'trend', v_stats#>'{comparison,trend}',
                                           'health', v_stats->'health_indicators'),
            'critical_issues', v_stats->'critical_issues',
            'feedback_loop', csmcp.fb_loop_stats(v_client, p.period_start, p.period_end),
            'top_insights', csmcp.fb_insight_stats(v_client, p.period_start, p.period_end, v_limit)->'top',
            'escalated_feedback', (SELECT count(*) FROM feedback WHERE (v_client IS NULL OR client_id = v_client) AND escalation_required
                                     AND created_at >= p.period_start::timestamp AT TIME ZONE 'UTC'
                                     AND created_at < (p.period_end + 1)::timestamp AT TIME ZONE 'UTC'));
    ELSE
        v_content := jsonb_strip_nulls(jsonb_build_object(
            'kind', 'voc_report',
            'sentiment', CASE WHEN csmcp.arg_bool(args, 'include_sentiment', true) THEN v_stats - 'nps' - 'summary' END,
            'nps', CASE WHEN csmcp.arg_bool(args, 'include_nps', true) THEN v_stats->'nps' END,
            'product_insights', CASE WHEN csmcp.arg_bool(args, 'include_product_insights', true)
                                     THEN csmcp.fb_insight_stats(v_client, p.period_start, p.period_end, v_limit) END,
            'customer_quotes', CASE WHEN csmcp.arg_bool(args, 'include_customer_quotes', true)
                                    THEN csmcp.fb_quotes(v_client, p.period_start, p.period_end, v_limit) END,
            'feedback_loop', csmcp.fb_loop_stats(v_client, p.period_start, p.period_end)));
    END IF;
    v_recipients := CASE v_aud WHEN 'executive' THEN ARRAY['executive-team@company.com']
                               WHEN 'product' THEN ARRAY['product-team@company.com']
                               WHEN 'cs_team' THEN ARRAY['cs-team@company.com']
                               ELSE ARRAY['cs-team@company.com', 'executive-team@company.com', 'product-team@company.com'] END;
    INSERT INTO voc_reports (report_id, report_type, client_id, period_start, period_end, target_audience, content, created_by)
    VALUES ('VOC-' || nextval('voc_report_seq'), v_rtype, v_client, p.period_start, p.period_end, v_aud,
            v_content || jsonb_build_object('recipients', to_jsonb(v_recipients)), coalesce(nullif(principal, ''), 'anonymous'))
    RETURNING * INTO r;
    PERFORM csmcp.log_activity(v_client, principal, v_action, 'voc_report', r.report_id, NULL,
                               jsonb_build_object('report_id', r.report_id, 'report_type', r.report_type, 'target_audience', r.target_audience,
                                                  'period_start', r.period_start, 'period_end', r.period_end));
    RETURN jsonb_build_object('action', v_action, 'report_id', r.report_id, 'report_type', r.report_type, 'client_id', v_client,
        'period_start', r.period_start, 'period_end', r.period_end, 'target_audience', r.target_audience,
        'delivery', jsonb_build_object('recipients', to_jsonb(v_recipients), 'stored_at', r.created_at),
        'report', r.content,
        'summary', format('%s %s (%s) for %s, %s to %s: %s feedback items, sentiment %s, NPS %s',
                          CASE WHEN v_action = 'generate_executive_summary' THEN 'Executive summary' ELSE 'VoC report' END,
                          r.report_id, v_rtype, v_name, p.period_start, p.period_end, v_stats->>'total_feedback',
                          coalesce(v_stats->>'overall_sentiment', 'no data'), coalesce(v_stats#>>'{nps,nps}', 'no data')));
END $$;

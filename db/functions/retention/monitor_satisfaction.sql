-- monitor_satisfaction: NPS, CSAT and CES over the last P days (responded_at > now - P days)
-- against the P days before, for one account or the portfolio; NPS detractors listed.
CREATE OR REPLACE FUNCTION csmcp.tool_monitor_satisfaction(args jsonb, principal text)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_client text := csmcp.arg_text(args, 'client_id', NULL);
    v_type text := csmcp.arg_text(args, 'survey_type', 'nps', ARRAY['nps', 'csat', 'ces']);
    v_days integer := csmcp.arg_int(args, 'time_period_days', 90, 1, 730);
    v_limit integer := csmcp.arg_int(args, 'detractor_limit', 50, 0, 500);
    acc accounts;
    v_now timestamptz := now();
    cur jsonb;
    prev jsonb;
    chg jsonb;
    v_detr jsonb;
    v_head text;
BEGIN
    IF v_client IS NOT NULL THEN acc := csmcp.require_account(v_client); END IF;
    cur := csmcp.retention_satisfaction(v_client, v_now - make_interval(days => v_days), v_now);
    prev := csmcp.retention_satisfaction(v_client, v_now - make_interval(days => 2 * v_days), v_now - make_interval(days => v_days));
    chg := jsonb_build_object(
        'nps', (cur->>'nps')::numeric - (prev->>'nps')::numeric,
        'csat', (cur->>'csat')::numeric - (prev->>'csat')::numeric,
        'ces', (cur->>'ces')::numeric - (prev->>'ces')::numeric);

    SELECT coalesce(jsonb_agg(jsonb_build_object('response_id', d.response_id, 'client_id', d.client_id, 'client_name', a.client_name,
                                                 'respondent_email', d.respondent_email, 'score', d.score, 'reason', d.reason,
                                                 'responded_at', d.responded_at)
                              ORDER BY d.responded_at DESC, d.response_id), '[]')
    INTO v_detr
    FROM (SELECT * FROM nps_responses n
          WHERE v_client IS NULL AND n.score <= 6 AND n.responded_at > v_now - make_interval(days => v_days) AND n.responded_at <= v_now
          UNION ALL
          SELECT * FROM nps_responses n
          WHERE n.client_id = v_client AND n.score <= 6 AND n.responded_at > v_now - make_interval(days => v_days) AND n.responded_at <= v_now
          ORDER BY responded_at DESC, response_id LIMIT v_limit) d
    JOIN accounts a ON a.client_id = d.client_id;

    v_head := CASE v_type
        WHEN 'nps' THEN format('NPS %s (%s responses; %s promoters, %s passives, %s detractors), change %s',
                               coalesce(cur->>'nps', 'no data'), cur->>'nps_responses', cur->>'promoters', cur->>'passives',
                               cur->>'detractors', coalesce(chg->>'nps', 'n/a'))
        WHEN 'csat' THEN format('CSAT %s/5 (%s responses), change %s', coalesce(cur->>'csat', 'no data'), cur->>'csat_responses',
                                coalesce(chg->>'csat', 'n/a'))
        ELSE format('CES %s/7 (%s responses), change %s', coalesce(cur->>'ces', 'no data'), cur->>'ces_responses',
                    coalesce(chg->>'ces', 'n/a')) END;

    RETURN jsonb_build_object(
        'scope', CASE WHEN v_client IS NULL THEN 'portfolio' ELSE 'account' END,
        'client_id', v_client,
        'survey_type', v_type,
        'time_period_days', v_days,
        'current_period', cur,
        'previous_period', prev,
        'change', chg,
        'detractors', v_detr,
        'detractors_total', (cur->>'detractors')::integer,
        'summary', format('%s, last %s days%s: %s', CASE WHEN v_client IS NULL THEN 'Portfolio' ELSE acc.client_name END, v_days,
                          '', v_head));
END $$;

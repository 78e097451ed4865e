-- db/functions/seed/feedback.sql - demo data of the feedback & product intelligence category
-- (issue 17), called by csmcp.seed_demo after the base data. Deterministic: csmcp.seed_rand(key)
-- only; times relative to now()/today like the base seed.
--
--   * 1-6 feedback items per demo account over the last 365 days, written from a set of
--     templates (praise, bugs, feature requests, support, billing, performance); sentiment,
--     themes and routing come from the same rules as collect_feedback (fb_sentiment, fb_route);
--     ~70 % of the items needing follow-up have a recorded response (some late);
--   * NPS responses for the 6-12 months the base seed does not cover, and CES responses;
--   * product insights per (theme, month) of negative feedback, linked to that feedback and
--     its accounts and scored by fb_insight_scoring; some linked to roadmap items.
-- Seeded ids use a reserved range (FB-9<n>, PI-9<n>) the sequences never reach.
CREATE OR REPLACE FUNCTION csmcp.seed_part_feedback(n integer) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    n_fb integer; n_resp integer; n_nps integer; n_ces integer; n_pi integer; n_road integer;
BEGIN
    CREATE TEMP TABLE sf_tpl ON COMMIT DROP AS
    SELECT * FROM (VALUES
        (0, 'product_feedback', 'product', 'Love the new dashboard', 'The new dashboard is great and easy to use, the team is happy with the design.'),
        (1, 'service_feedback', 'support', 'Excellent support', 'Support was helpful and fast, excellent help with our integration.'),
        (2, 'bug_report', 'product', 'Export broken', 'CSV export is broken since the last release; this bug blocks our month-end reports.'),
        (3, 'bug_report', 'product', 'Reports are slow', 'Reports are slow to load and the performance issue is getting worse, users are frustrated.'),
        (4, 'feature_request', 'product', 'Bulk editing', 'We would love a bulk edit feature for records; doing it one by one is difficult.'),
        (5, 'feature_request', 'product', 'SSO for contractors', 'Please add SSO groups for contractors, the current function is unclear.'),
        (6, 'general', 'billing', 'Invoice question', 'The invoice lists seats we removed last quarter; please check the billing.'),
        (7, 'service_feedback', 'service', 'Slow ticket replies', 'Ticket replies are slow and the problem with our account is still open; terrible experience, we hate waiting.'),
        (8, 'product_feedback', 'product', 'Mobile app', 'The mobile interface is fine for quick checks.'),
        (9, 'general', 'account', 'Quarterly review', 'Good quarterly review, the roadmap was clear and the CSM was pleased with our adoption.'),
        (10, 'product_feedback', 'product', 'Awful search', 'Search is awful: results are broken and the problem makes the UI difficult to use.'),
        (11, 'nps', 'survey', 'NPS comment', 'Perfect fit for our team, amazing onboarding and fantastic support.')
    ) t(k, ftype, category, title, content);
    -- fb_sentiment and fb_route are deterministic in their arguments: computed once per template
    -- (and priority), not once per item (fb_sentiment runs ~40 word-boundary regexes).
    ALTER TABLE sf_tpl ADD COLUMN s jsonb;
    UPDATE sf_tpl SET s = csmcp.fb_sentiment(title, content);
    CREATE TEMP TABLE sf_route ON COMMIT DROP AS
    SELECT t.k, p.priority, csmcp.fb_route(t.ftype, t.category, p.priority, t.s->>'sentiment') AS rt
    FROM sf_tpl t CROSS JOIN (VALUES ('critical'), ('high'), ('medium'), ('low')) p(priority);

    CREATE TEMP TABLE sf_items ON COMMIT DROP AS
    SELECT a.client_id, substr(a.client_id, 6)::integer AS i, j,
           t AS tpl,
           (ARRAY['critical', 'high', 'medium', 'medium', 'low', 'low'])[1 + floor(csmcp.seed_rand(a.client_id || 'fb_p' || j) * 6)::int] AS priority,
           now() - make_interval(secs => csmcp.seed_rand(a.client_id || 'fb_d' || j) * 365 * 86400) AS created_at,
           csmcp.seed_rand(a.client_id || 'fb_r' || j) AS r_resp
    FROM accounts a CROSS JOIN LATERAL generate_series(1, 1 + floor(csmcp.seed_rand(a.client_id || 'fb_n') * 6)::int) j
    CROSS JOIN LATERAL (SELECT floor(csmcp.seed_rand(a.client_id || 'fb_t' || j) * 12)::int AS k OFFSET 0) kk  -- once per item
    JOIN sf_tpl t ON t.k = kk.k
    WHERE a.client_id LIKE 'demo\_%';

    INSERT INTO feedback (feedback_id, client_id, feedback_type, source, submitter_email, submitter_name, title, content, category,
                          sentiment, sentiment_score, priority, status, assigned_to, follow_up_by, created_at, themes, emotion,
                          positive_keywords, negative_keywords, follow_up_required, escalation_required, response, responded_at,
                          responded_by, resolved_at, created_by)
    SELECT 'FB-9' || lpad((x.i * 10 + x.j)::text, 9, '0'), x.client_id, (x.tpl).ftype,
           (ARRAY['email', 'in_app', 'call', 'survey'])[1 + floor(csmcp.seed_rand(x.client_id || 'fb_s' || x.j) * 4)::int],
           'user' || x.j || '@' || x.client_id || '.test', 'User ' || x.j, (x.tpl).title, (x.tpl).content, (x.tpl).category,
           s->>'sentiment', (s->>'sentiment_score')::numeric, x.priority,
           CASE WHEN resp THEN 'resolved' WHEN x.r_resp < 0.85 THEN 'new' ELSE 'in_progress' END,
           rt->>'assigned_to',
           CASE WHEN (rt->>'follow_up_required')::boolean THEN (x.created_at AT TIME ZONE 'UTC')::date + (rt->>'follow_up_days')::int END,
           x.created_at, ARRAY(SELECT jsonb_array_elements_text(s->'key_themes')), s->>'emotion_detected',
           (s->>'positive_keywords')::int, (s->>'negative_keywords')::int,
           (rt->>'follow_up_required')::boolean, (rt->>'escalation_required')::boolean,
           CASE WHEN resp THEN 'Thanks for telling us - we have followed up on "' || (x.tpl).title || '".' END,
           CASE WHEN resp THEN resp_at END, CASE WHEN resp THEN 'seed' END, CASE WHEN resp THEN resp_at END, 'seed'
    FROM sf_items x
    CROSS JOIN LATERAL (SELECT (x.tpl).s AS s OFFSET 0) s1
    JOIN sf_route r1 ON r1.k = (x.tpl).k AND r1.priority = x.priority
    CROSS JOIN LATERAL (SELECT x.created_at + make_interval(secs => csmcp.seed_rand(x.client_id || 'fb_ra' || x.j)
                                                                   * 1.5 * (rt->>'follow_up_days')::int * 86400) AS resp_at OFFSET 0) r2
    CROSS JOIN LATERAL (SELECT (rt->>'follow_up_required')::boolean AND x.r_resp < 0.7 AND r2.resp_at < now() AS resp OFFSET 0) r3
    ON CONFLICT (feedback_id) DO NOTHING;
    GET DIAGNOSTICS n_fb = ROW_COUNT;
    SELECT count(*) INTO n_resp FROM feedback WHERE feedback_id LIKE 'FB-9%' AND responded_by = 'seed';

    -- NPS for the months 6-12 ago (the base seed covers the last 6): 0-2 per account, scores
    -- following the account's health.
    INSERT INTO nps_responses (response_id, client_id, respondent_email, score, reason, responded_at)
    SELECT 'nps-fb-' || a.client_id || '-' || j, a.client_id, 'user' || j || '@' || a.client_id || '.test',
           greatest(0, least(10, round(a.health_score / 10.0 + (csmcp.seed_rand(a.client_id || 'nps_s' || j) - 0.5) * 6)::int)),
           NULL, now() - make_interval(days => 185 + floor(csmcp.seed_rand(a.client_id || 'nps_d' || j) * 175)::int)
    FROM accounts a CROSS JOIN generate_series(1, 2) j
    WHERE a.client_id LIKE 'demo\_%' AND csmcp.seed_rand(a.client_id || 'nps_k' || j) < 0.6
    ON CONFLICT (response_id) DO NOTHING;
    GET DIAGNOSTICS n_nps = ROW_COUNT;

    -- CES (1 = effortless .. 7 = very hard) for ~40 % of accounts, 1-3 over the year.
    INSERT INTO csat_responses (response_id, client_id, survey_type, score, comment, responded_at)
    SELECT 'ces-fb-' || a.client_id || '-' || j, a.client_id, 'ces',
           greatest(1, least(7, round(7 - a.health_score / 18.0 + (csmcp.seed_rand(a.client_id || 'ces_s' || j) - 0.5) * 3)::int)),
           NULL, now() - make_interval(days => floor(csmcp.seed_rand(a.client_id || 'ces_d' || j) * 365)::int)
    FROM accounts a CROSS JOIN LATERAL generate_series(1, 1 + floor(csmcp.seed_rand(a.client_id || 'ces_n') * 3)::int) j
    WHERE a.client_id LIKE 'demo\_%' AND csmcp.seed_rand(a.client_id || 'ces_k') < 0.4
    ON CONFLICT (response_id) DO NOTHING;
    GET DIAGNOSTICS n_ces = ROW_COUNT;

    -- Insights: per theme and month, the negative seeded feedback (at most 20 items).
    CREATE TEMP TABLE sf_groups ON COMMIT DROP AS
    SELECT row_number() OVER (ORDER BY theme, q) AS g, theme, q, ids[1:20] AS ids
    FROM (SELECT t AS theme, date_trunc('month', f.created_at AT TIME ZONE 'UTC')::date AS q,
                 array_agg(f.feedback_id ORDER BY f.sentiment_score, f.feedback_id) AS ids
          FROM feedback f, unnest(f.themes) t
          WHERE f.feedback_id LIKE 'FB-9%' AND f.sentiment_score < 0
          GROUP BY 1, 2 HAVING count(*) >= 2) z;

    INSERT INTO product_insights (insight_id, insight_type, title, description, priority, business_value_score, due_date, created_by,
                                  customer_impact, business_impact, recommended_action, urgency, executive_escalation,
                                  estimated_effort, target_recipients, roadmap_item, roadmap_status, roadmap_updated_at, created_at)
    SELECT 'PI-9' || lpad(g.g::text, 6, '0'), itype,
           initcap(replace(g.theme, '_', ' ')) || ' complaints, ' || to_char(g.q, 'Mon YYYY'),
           cardinality(g.ids) || ' negative feedback items about ' || replace(g.theme, '_', ' ') || ' in ' || to_char(g.q, 'Mon YYYY'),
           prio, (sc->>'value')::numeric, NULL, 'seed',
           n_acc || ' accounts affected', 'Renewal risk on affected accounts', 'Prioritise a fix for ' || replace(g.theme, '_', ' '),
           sc->>'urgency', (sc->>'executive_escalation')::boolean, sc->>'effort',
           ARRAY['product-team@company.com'] || CASE WHEN (sc->>'executive_escalation')::boolean THEN ARRAY['cs-leadership@company.com'] ELSE '{}' END,
           CASE WHEN csmcp.seed_rand('pi_rm' || g.g) < 0.5 THEN 'RM-' || (100 + g.g) || ' ' || initcap(replace(g.theme, '_', ' ')) || ' improvements' END,
           CASE WHEN csmcp.seed_rand('pi_rm' || g.g) < 0.5 THEN (ARRAY['under_review', 'planned', 'in_progress', 'released'])[1 + floor(csmcp.seed_rand('pi_rs' || g.g) * 4)::int] END,
           CASE WHEN csmcp.seed_rand('pi_rm' || g.g) < 0.5 THEN least(now(), g.q + interval '40 days') END,
           least(now(), g.q + interval '35 days')
    FROM sf_groups g
    CROSS JOIN LATERAL (SELECT count(DISTINCT f.client_id)::int AS n_acc, avg(f.sentiment_score) AS avg_s FROM feedback f WHERE f.feedback_id = ANY (g.ids)) st
    CROSS JOIN LATERAL (SELECT CASE g.theme WHEN 'performance' THEN 'performance_feedback' WHEN 'user_interface' THEN 'usability_feedback'
                                            WHEN 'product_features' THEN 'feature_request' ELSE 'general_product' END AS itype,
                               CASE WHEN cardinality(g.ids) >= 10 THEN 'high' WHEN cardinality(g.ids) >= 4 THEN 'medium' ELSE 'low' END AS prio OFFSET 0) k
    CROSS JOIN LATERAL (SELECT csmcp.fb_insight_scoring(k.itype, k.prio, st.n_acc, cardinality(g.ids), st.avg_s) AS sc OFFSET 0) s
    ON CONFLICT (insight_id) DO NOTHING;
    GET DIAGNOSTICS n_pi = ROW_COUNT;
    INSERT INTO product_insight_feedback (insight_id, feedback_id)
    SELECT 'PI-9' || lpad(g.g::text, 6, '0'), unnest(g.ids) FROM sf_groups g ON CONFLICT DO NOTHING;
    INSERT INTO product_insight_accounts (insight_id, client_id)
    SELECT DISTINCT 'PI-9' || lpad(g.g::text, 6, '0'), f.client_id FROM sf_groups g JOIN feedback f ON f.feedback_id = ANY (g.ids)
    ON CONFLICT DO NOTHING;
    SELECT count(*) INTO n_road FROM product_insights WHERE insight_id LIKE 'PI-9%' AND roadmap_item IS NOT NULL;

    RETURN jsonb_build_object('feedback', n_fb, 'feedback_responses', n_resp, 'nps_responses', n_nps, 'ces_responses', n_ces,
                              'product_insights', n_pi, 'insights_on_roadmap', n_road);
END $$;

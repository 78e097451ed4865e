-- db/functions/seed/retention.sql - demo data of the retention & risk category (issue 13),
-- called by csmcp.seed_demo after the base data (accounts demo_NNNNN, health calculations).
-- Deterministic: csmcp.seed_rand(key) only; times relative to now()/today like the base seed.
--
--   * churned accounts get a plausible end: invoices of their contract(s) up to the churn date
--     (some paid late, some left unpaid), weekly health history sliding below 60 over the 16
--     weeks before churn, P0/P1 tickets and detractor NPS responses before churn, a few outbound
--     touches (so post-mortems find covered and missed warning signs), a churn revenue event;
--   * escalations in every state (open/in_progress on track, at risk and breached; resolved
--     and closed, SLA met and breached) on low-health accounts;
--   * retention campaigns active, paused and completed (actions done, overdue, scheduled) and
--     one stored trigger rule.
-- Seeded ids use a reserved high range (esc_9xxxxxxx, ret_9xxxxxxx, auto_9000001, TKT-<base
-- slot 9>) so they never meet the sequences the tools draw from.
CREATE OR REPLACE FUNCTION csmcp.seed_part_retention(n integer) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    t date := csmcp.today();
    n_inv integer; n_hs integer; n_tkt integer; n_nps integer; n_com integer; n_rev integer;
    n_esc integer; n_camp integer; n_act integer;
BEGIN
    CREATE TEMP TABLE sr_churned ON COMMIT DROP AS
    SELECT a.client_id, substr(a.client_id, 6)::integer AS i, a.csm_assigned AS csm,
           (max(l.changed_at) AT TIME ZONE 'UTC')::date AS churn_date
    FROM accounts a JOIN lifecycle_transitions l ON l.client_id = a.client_id AND l.to_stage = 'churned'
    WHERE a.client_id LIKE 'demo\_%' AND a.lifecycle_stage = 'churned'
    GROUP BY a.client_id, a.csm_assigned;

    -- Invoices of every contract of a churned account issued up to the churn date: quarterly,
    -- due after 30 days, paid 10 days early; the first paid 12 days late for ~30 %; the last one
    -- left unpaid for ~50 % (the customer stopped paying).
    INSERT INTO invoices (invoice_id, contract_id, client_id, amount, issued_on, due_on, paid_on)
    SELECT 'INV-' || c.contract_id || '-' || q, c.contract_id, c.client_id, round(c.contract_value / 4, 2),
           c.start_date + q * 91, c.start_date + q * 91 + 30,
           CASE WHEN c.start_date + q * 91 + 30 >= s.churn_date THEN NULL
                WHEN c.status = 'cancelled' AND c.start_date + (q + 1) * 91 > s.churn_date
                     AND csmcp.seed_rand(s.i || 'r_unpaid') < 0.5 THEN NULL
                WHEN q = 0 AND csmcp.seed_rand(s.i || 'r_late') < 0.3 THEN c.start_date + q * 91 + 42
                ELSE c.start_date + q * 91 + 20 END
    FROM sr_churned s JOIN contracts c ON c.client_id = s.client_id CROSS JOIN generate_series(0, 3) q
    WHERE c.start_date + q * 91 <= s.churn_date
    ON CONFLICT (invoice_id) DO NOTHING;
    GET DIAGNOSTICS n_inv = ROW_COUNT;

    -- Usage fading out: for ~60 % of them the daily active users of the 30 days before churn
    -- are halved (a usage decline post-mortems can find; health_below_60 etc. come below).
    UPDATE usage_daily u SET active_users = u.active_users / 2, events = u.events / 2, session_minutes = u.session_minutes / 2
    FROM sr_churned s
    WHERE u.client_id = s.client_id AND u.day > s.churn_date - 30 AND u.day <= s.churn_date
      AND csmcp.seed_rand(s.i || 'r_fade') < 0.6
      AND NOT EXISTS (SELECT 1 FROM health_scores hs WHERE hs.client_id = s.client_id AND hs.calculated_by = 'seed'
                                                       AND hs.calculated_at < (s.churn_date + 1)::timestamp AT TIME ZONE 'UTC');

    -- Weekly health history over the 16 weeks before churn, sliding from healthy to critical.
    INSERT INTO health_scores (client_id, calculated_at, usage_score, engagement_score, support_score, satisfaction_score,
                               payment_score, overall_score, score_change, trend, risk_level, churn_probability, lookback_days,
                               scoring_model, calculated_by)
    SELECT h.client_id, h.at, h.u, h.e, h.s, h.sat, h.p, h.score,
           h.score - lag(h.score) OVER w,
           CASE WHEN h.score - lag(h.score) OVER w > 3 THEN 'improving' WHEN h.score - lag(h.score) OVER w < -3 THEN 'declining'
                ELSE 'stable' END,
           csmcp.risk_level(h.score), csmcp.churn_probability(h.score), 30, 'weighted_composite', 'seed'
    FROM (
        SELECT x.*, round(0.35 * x.u + 0.25 * x.e + 0.15 * x.s + 0.15 * x.sat + 0.10 * x.p)::integer AS score
        FROM (
            SELECT s.client_id, k,
                   ((s.churn_date - (16 - k) * 7)::timestamp + interval '6 hours') AT TIME ZONE 'UTC' AS at,
                   greatest(0, least(100, round(85 - 55 * k / 16.0 + 8 * (csmcp.seed_rand(s.i || 'hu' || k) - 0.5))))::integer AS u,
                   CASE WHEN k < 10 THEN 95 WHEN k < 13 THEN 75 WHEN k < 15 THEN 60 ELSE 45 END AS e,
                   greatest(40, 100 - 3 * floor(k / 3.0) - CASE WHEN k >= 9 THEN 20 ELSE 0 END)::integer AS s,
                   round((75 - 35 * k / 16.0 + 6 * (csmcp.seed_rand(s.i || 'hs' || k) - 0.5))::numeric, 2) AS sat,
                   CASE WHEN k >= 12 AND csmcp.seed_rand(s.i || 'r_unpaid') < 0.5 THEN 60 ELSE 100 END AS p
            FROM sr_churned s CROSS JOIN generate_series(0, 16) k
            WHERE NOT EXISTS (SELECT 1 FROM health_scores hs WHERE hs.client_id = s.client_id AND hs.calculated_by = 'seed'
                                                               AND hs.calculated_at < (s.churn_date + 1)::timestamp AT TIME ZONE 'UTC')
        ) x
    ) h
    WINDOW w AS (PARTITION BY h.client_id ORDER BY h.k);
    GET DIAGNOSTICS n_hs = ROW_COUNT;

    -- One or two P0/P1 tickets 20-70 days before churn (base-seed slot 9 of the account's range).
    INSERT INTO support_tickets (ticket_id, client_id, subject, description, priority, category, status, requester_email, requester_name,
                                 assigned_agent, assigned_team, sla_first_response_minutes, sla_resolution_minutes, created_at,
                                 first_response_at, resolved_at, closed_at)
    SELECT 'TKT-' || (100000 + s.i * 10 + 9), s.client_id,
           (ARRAY['Data sync failing for all users', 'Reports missing since the last release', 'Login outage for our SSO users'])
               [1 + floor(csmcp.seed_rand(s.i || 'r_tsub') * 3)::int],
           'Reported by the customer; business impact stated as high.',
           CASE WHEN csmcp.seed_rand(s.i || 'r_tp') < 0.3 THEN 'P0' ELSE 'P1' END, 'technical_issue', 'closed',
           'contact1@' || replace(s.client_id, '_', '-') || '.test', 'Contact One ' || s.i,
           'agt_07', 'Escalation Team',
           CASE WHEN csmcp.seed_rand(s.i || 'r_tp') < 0.3 THEN 5 ELSE 15 END,
           CASE WHEN csmcp.seed_rand(s.i || 'r_tp') < 0.3 THEN 60 ELSE 240 END,
           x.c, x.c + interval '40 minutes', x.c + interval '30 hours', x.c + interval '3 days'
    FROM sr_churned s
    CROSS JOIN LATERAL (SELECT ((s.churn_date - (20 + floor(csmcp.seed_rand(s.i || 'r_td') * 50))::int)::timestamp
                                + interval '10 hours') AT TIME ZONE 'UTC' AS c OFFSET 0) x
    WHERE csmcp.seed_rand(s.i || 'r_t') < 0.7
    ON CONFLICT (ticket_id) DO NOTHING;
    GET DIAGNOSTICS n_tkt = ROW_COUNT;

    -- Detractor NPS responses 10-80 days before churn.
    INSERT INTO nps_responses (response_id, client_id, survey_id, respondent_email, score, reason, responded_at)
    SELECT 'NPS-' || s.client_id || '-churn-' || k, s.client_id, 'srv_nps_relationship',
           'contact' || k || '@' || replace(s.client_id, '_', '-') || '.test',
           (2 + floor(csmcp.seed_rand(s.i || 'r_ns' || k) * 4))::int,
           (ARRAY['Too expensive for the value we get', 'Missing integrations we need', 'Support takes too long',
                  'We are consolidating tools'])[1 + floor(csmcp.seed_rand(s.i || 'r_nr' || k) * 4)::int],
           ((s.churn_date - (10 + floor(csmcp.seed_rand(s.i || 'r_nd' || k) * 70))::int)::timestamp + interval '15 hours') AT TIME ZONE 'UTC'
    FROM sr_churned s CROSS JOIN generate_series(1, 2) k
    WHERE k <= 1 + floor(csmcp.seed_rand(s.i || 'r_nn') * 2)
      AND EXISTS (SELECT 1 FROM surveys WHERE survey_id = 'srv_nps_relationship')
    ON CONFLICT (response_id) DO NOTHING;
    GET DIAGNOSTICS n_nps = ROW_COUNT;

    -- A few outbound touches before churn (the base seed gives churned accounts none).
    INSERT INTO communications (client_id, channel, direction, subject, sent_by, occurred_at, status)
    SELECT s.client_id, (ARRAY['email', 'call', 'meeting'])[k], 'outbound',
           (ARRAY['Checking in on your usage', 'Follow-up on your support case', 'Renewal conversation'])[k],
           coalesce(s.csm, 'csm'), ((s.churn_date - (5 + floor(csmcp.seed_rand(s.i || 'r_cd' || k) * 100))::int)::timestamp
                                    + interval '11 hours') AT TIME ZONE 'UTC', 'sent'
    FROM sr_churned s CROSS JOIN generate_series(1, 3) k
    WHERE csmcp.seed_rand(s.i || 'r_c' || k) < 0.45
      AND NOT EXISTS (SELECT 1 FROM communications m WHERE m.client_id = s.client_id AND m.occurred_at < (s.churn_date + 1)::timestamp AT TIME ZONE 'UTC'
                                                      AND m.subject = (ARRAY['Checking in on your usage', 'Follow-up on your support case', 'Renewal conversation'])[k]);
    GET DIAGNOSTICS n_com = ROW_COUNT;

    INSERT INTO revenue_events (client_id, kind, arr_delta, occurred_on, note)
    SELECT s.client_id, 'churn', -c.contract_value, s.churn_date, 'contract cancelled'
    FROM sr_churned s JOIN LATERAL (SELECT contract_value FROM contracts c WHERE c.client_id = s.client_id
                                    ORDER BY end_date DESC LIMIT 1) c ON true
    WHERE NOT EXISTS (SELECT 1 FROM revenue_events r WHERE r.client_id = s.client_id AND r.kind = 'churn');
    GET DIAGNOSTICS n_rev = ROW_COUNT;

    -- Escalations on live accounts with health below 65 (about 40 % of them), in every state.
    CREATE TEMP TABLE sr_esc ON COMMIT DROP AS
    SELECT a.client_id, substr(a.client_id, 6)::integer AS i, a.client_name, a.csm_assigned AS csm,
           CASE WHEN csmcp.seed_rand(a.client_id || 'r_es') < 0.15 THEN 'critical' WHEN csmcp.seed_rand(a.client_id || 'r_es') < 0.55 THEN 'high'
                WHEN csmcp.seed_rand(a.client_id || 'r_es') < 0.85 THEN 'medium' ELSE 'low' END AS severity,
           floor(csmcp.seed_rand(a.client_id || 'r_est') * 6)::integer AS shape
    FROM accounts a
    WHERE a.client_id LIKE 'demo\_%' AND a.lifecycle_stage <> 'churned' AND a.health_score < 65
      AND csmcp.seed_rand(a.client_id || 'r_e') < 0.4;
    -- shape: 0 open on track, 1 open at risk, 2 in_progress breached, 3 resolved met, 4 closed met,
    -- 5 closed breached. Elapsed as a fraction of the SLA: 0.3, 0.9, 1.5; resolved after 0.5/0.7/1.6.
    INSERT INTO escalations (escalation_id, client_id, severity, status, summary, description, assigned_to, sla_hours, opened_at,
                             resolved_at, closed_at, resolution, created_by, updated_at)
    SELECT 'esc_' || (90000000 + e.i), e.client_id, e.severity,
           (ARRAY['open', 'open', 'in_progress', 'resolved', 'closed', 'closed'])[e.shape + 1],
           (ARRAY['Executive sponsor unhappy with adoption', 'Repeated outages reported by the customer',
                  'Renewal at risk after pricing discussion', 'Key integration broken for two weeks'])
               [1 + floor(csmcp.seed_rand(e.client_id || 'r_esub') * 4)::int],
           'Raised by the CSM after the last health review.', coalesce(e.csm, 'CS leadership'),
           csmcp.escalation_sla_hours(e.severity), x.opened,
           CASE WHEN e.shape >= 3 THEN x.opened + make_interval(secs => csmcp.escalation_sla_hours(e.severity) * 3600 *
                                                                        (ARRAY[0.5, 0.7, 1.6])[e.shape - 2]) END,
           CASE WHEN e.shape >= 4 THEN x.opened + make_interval(secs => csmcp.escalation_sla_hours(e.severity) * 3600 *
                                                                        (ARRAY[0.5, 0.7, 1.6])[e.shape - 2]) + interval '1 day' END,
           CASE WHEN e.shape >= 3 THEN 'Action plan agreed with the customer; follow-up scheduled.' END,
           'seed', now()
    FROM sr_esc e
    CROSS JOIN LATERAL (SELECT CASE WHEN e.shape <= 2
                                    THEN now() - make_interval(secs => csmcp.escalation_sla_hours(e.severity) * 3600 * (ARRAY[0.3, 0.9, 1.5])[e.shape + 1])
                                    ELSE now() - make_interval(days => 5 + floor(csmcp.seed_rand(e.client_id || 'r_eo') * 40)::int) END AS opened OFFSET 0) x
    ON CONFLICT (escalation_id) DO NOTHING;
    GET DIAGNOSTICS n_esc = ROW_COUNT;

    -- A stored trigger rule (health below 60), as if created a week ago and evaluated daily.
    INSERT INTO retention_trigger_rules (rule_id, trigger_type, threshold, campaign_template, campaign_type, intervention_level,
                                         actions, status, created_by, created_at, last_evaluated_at, last_match_count)
    VALUES ('auto_9000001', 'health_score', 60, 'standard_intervention', 'proactive_outreach', 'standard',
            '[{"action":"alert_csm","delay_hours":0},{"action":"send_email","delay_hours":1},{"action":"schedule_call","delay_hours":24},{"action":"escalate","delay_hours":72,"condition":"no_response"}]',
            'active', 'seed', now() - interval '7 days', NULL, NULL)
    ON CONFLICT (rule_id) DO NOTHING;

    -- Campaigns on live accounts with health below 70 (about 30 %): launched 3-45 days ago;
    -- active, paused or completed; health at launch a few points off today's score.
    CREATE TEMP TABLE sr_camp ON COMMIT DROP AS
    SELECT a.client_id, substr(a.client_id, 6)::integer AS i, a.client_name, a.csm_assigned AS csm, a.health_score,
           (ARRAY['proactive_outreach', 'value_reinforcement', 'success_planning', 'adoption_drive', 'renewal_save'])
               [1 + floor(csmcp.seed_rand(a.client_id || 'r_ct') * 5)::int] AS ctype,
           (ARRAY['light', 'standard', 'standard', 'aggressive'])[1 + floor(csmcp.seed_rand(a.client_id || 'r_cl') * 4)::int] AS level,
           CASE WHEN csmcp.seed_rand(a.client_id || 'r_cs') < 0.55 THEN 'active' WHEN csmcp.seed_rand(a.client_id || 'r_cs') < 0.7 THEN 'paused'
                ELSE 'completed' END AS status,
           (3 + floor(csmcp.seed_rand(a.client_id || 'r_ca') * 43))::integer AS age,
           greatest(0, least(100, a.health_score + (floor(csmcp.seed_rand(a.client_id || 'r_cd') * 17) - 10)::integer)) AS h0,
           csmcp.seed_rand(a.client_id || 'r_cr') < 0.3 AS by_rule
    FROM accounts a
    WHERE a.client_id LIKE 'demo\_%' AND a.lifecycle_stage <> 'churned' AND a.health_score < 70
      AND csmcp.seed_rand(a.client_id || 'r_cmp') < 0.3;
    INSERT INTO retention_campaigns (campaign_id, name, campaign_type, intervention_level, trigger_type, threshold, status, created_by,
                                     created_at, client_id, owner, rule_id, target_health_score, target_date, completed_at,
                                     final_health_score, updated_at)
    SELECT 'ret_' || (90000000 + c.i), initcap(replace(c.ctype, '_', ' ')) || ' - ' || c.client_name, c.ctype, c.level,
           CASE WHEN c.by_rule THEN 'health_score' ELSE 'manual' END, CASE WHEN c.by_rule THEN 60 END, c.status,
           CASE WHEN c.by_rule THEN 'monitor:retention' ELSE 'seed' END,
           now() - make_interval(days => c.age), c.client_id, c.csm, CASE WHEN c.by_rule THEN 'auto_9000001' END,
           least(100, c.h0 + 20), t - c.age + 30,
           CASE WHEN c.status = 'completed' THEN now() - make_interval(days => c.age) + interval '21 days' END,
           CASE WHEN c.status = 'completed' THEN c.health_score END, now()
    FROM sr_camp c WHERE c.status <> 'completed' OR c.age > 21
    ON CONFLICT (campaign_id) DO NOTHING;
    GET DIAGNOSTICS n_camp = ROW_COUNT;
    INSERT INTO campaign_targets (campaign_id, client_id, status, health_at_start, added_at)
    SELECT 'ret_' || (90000000 + c.i), c.client_id,
           CASE WHEN c.status = 'completed' THEN 'retained' WHEN c.age > 2 THEN 'contacted' ELSE 'targeted' END,
           c.h0, now() - make_interval(days => c.age)
    FROM sr_camp c WHERE EXISTS (SELECT 1 FROM retention_campaigns r WHERE r.campaign_id = 'ret_' || (90000000 + c.i))
    ON CONFLICT DO NOTHING;
    -- Actions: due ones done for ~75 % (overdue otherwise), future ones scheduled.
    INSERT INTO campaign_actions (campaign_id, client_id, action, due_at, done_at, seq, owner, done_by)
    SELECT 'ret_' || (90000000 + c.i), c.client_id, p.action, now() - make_interval(days => c.age) + make_interval(days => p.offset_days),
           CASE WHEN now() - make_interval(days => c.age) + make_interval(days => p.offset_days) < now()
                     AND (c.status = 'completed' OR csmcp.seed_rand(c.client_id || 'r_ad' || p.seq) < 0.75)
                THEN now() - make_interval(days => c.age) + make_interval(days => p.offset_days) + interval '5 hours' END,
           p.seq, c.csm,
           CASE WHEN now() - make_interval(days => c.age) + make_interval(days => p.offset_days) < now()
                     AND (c.status = 'completed' OR csmcp.seed_rand(c.client_id || 'r_ad' || p.seq) < 0.75)
                THEN coalesce(c.csm, 'csm') END
    FROM sr_camp c CROSS JOIN LATERAL csmcp.retention_action_plan(c.level) p
    WHERE EXISTS (SELECT 1 FROM retention_campaigns r WHERE r.campaign_id = 'ret_' || (90000000 + c.i))
      AND NOT EXISTS (SELECT 1 FROM campaign_actions x WHERE x.campaign_id = 'ret_' || (90000000 + c.i));
    GET DIAGNOSTICS n_act = ROW_COUNT;

    ANALYZE escalations; ANALYZE retention_campaigns; ANALYZE campaign_actions; ANALYZE campaign_targets;
    RETURN jsonb_build_object('churned_accounts', (SELECT count(*) FROM sr_churned), 'churn_invoices', n_inv,
                              'churn_health_history', n_hs, 'churn_tickets', n_tkt, 'churn_detractors', n_nps,
                              'churn_touches', n_com, 'churn_revenue_events', n_rev, 'escalations', n_esc,
                              'retention_campaigns', n_camp, 'campaign_actions', n_act, 'trigger_rules', 1);
END $$;

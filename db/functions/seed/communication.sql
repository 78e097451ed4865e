-- db/functions/seed/communication.sql - demo data of the communication & engagement category
-- (issue 16), called by csmcp.seed_demo after the base data (accounts demo_NNNNN with contacts).
-- Deterministic: csmcp.seed_rand(key) only; times relative to now()/today like the base seed.
--
--   * ~4 % of non-primary contacts unsubscribed from email; ~5 % of accounts unsubscribed from
--     the newsletters;
--   * three communities (forum, champions program, beta program) whose members are champion /
--     admin contacts, posts over the last 60 days (approved, one pending first post per ~10 %
--     of members, a few rejected), reputation = 10 x approved posts;
--   * advocates (the champion contact of ~1 in 12 accounts) with 1-6 contributions each, points
--     and tiers computed by the same rules as manage_advocacy_program (reference 3.8);
--   * executive reviews: a completed one ~80 days ago (rating, action items, next date) and an
--     upcoming scheduled one for each enterprise account and ~half of the professional ones;
--   * four communication workflows (health_score, usage_pattern, contract_event, milestone) with
--     ordered actions and recorded firings; two newsletter drafts (one recurring monthly).
-- No email is sent or queued by the seed (campaign sends are made with the tool).
-- Seeded ids use a reserved range (<prefix>_9000000…) so they never meet the tools' ids.
CREATE OR REPLACE FUNCTION csmcp.seed_part_communication(n integer) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    n_unsub integer; n_nl_unsub integer; n_mem integer; n_posts integer; n_adv integer; n_ctb integer := 0;
    n_ebr integer; n_items integer; n_wf integer; n_runs integer;
    adv record;
    k integer;
    v_type text;
    v_base integer;
    v_pts integer;
    v_total integer;
    v_tier text;
    v_new_tier text;
BEGIN
    UPDATE contacts c SET unsubscribed = true
    WHERE c.client_id LIKE 'demo\_%' AND NOT c.is_primary AND NOT c.unsubscribed
      AND csmcp.seed_rand(c.client_id || c.email || 'c_unsub') < 0.04;
    GET DIAGNOSTICS n_unsub = ROW_COUNT;

    -- newsletter subscriptions per contact: ~5 % of primary contacts opted out, ~10 % of the
    -- other contacts opted in
    INSERT INTO newsletter_contact_subscriptions (contact_id, client_id, subscribed, updated_at)
    SELECT c.contact_id, c.client_id, NOT c.is_primary,
           now() - make_interval(days => 1 + floor(csmcp.seed_rand(c.client_id || c.email || 'c_nlday') * 200)::integer)
    FROM contacts c
    WHERE c.client_id LIKE 'demo\_%'
      AND csmcp.seed_rand(c.client_id || c.email || 'c_nl') < CASE WHEN c.is_primary THEN 0.05 ELSE 0.10 END
    ON CONFLICT (contact_id) DO NOTHING;
    GET DIAGNOSTICS n_nl_unsub = ROW_COUNT;

    -- Communities
    INSERT INTO communities (community_id, name, community_type, created_at, created_by) VALUES
        ('community_9000001_customer_forum', 'Customer Forum', 'forum', now() - interval '400 days', 'seed'),
        ('community_9000002_champions_circle', 'Champions Circle', 'champions_program', now() - interval '300 days', 'seed'),
        ('community_9000003_beta_program', 'Beta Program', 'beta_program', now() - interval '120 days', 'seed')
    ON CONFLICT (community_id) DO NOTHING;
    INSERT INTO community_members (member_id, community_id, client_id, user_email, user_name, joined_at)
    SELECT 'member_9' || lpad(c.contact_id::text, 7, '0') || '_' || right(x.community_id, 1) || '_' || c.client_id,
           x.community_id, c.client_id, c.email, c.name,
           now() - make_interval(days => 5 + floor(csmcp.seed_rand(c.email || x.community_id) * 300)::integer)
    FROM contacts c
    CROSS JOIN (VALUES ('community_9000001_customer_forum', 0.35), ('community_9000002_champions_circle', 0.5),
                       ('community_9000003_beta_program', 0.2)) x(community_id, share)
    WHERE c.client_id LIKE 'demo\_%' AND c.role IN ('champion', 'admin')
      AND (x.community_id <> 'community_9000002_champions_circle' OR c.role = 'champion')
      AND csmcp.seed_rand(c.email || x.community_id || 'c_join') < x.share
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS n_mem = ROW_COUNT;
    -- Posts: 0-5 per member over the last 60 days (never before joining); the first post of ~10 %
    -- of members still pending, ~5 % of later posts rejected.
    INSERT INTO community_posts (community_id, member_id, content, moderation, created_at)
    SELECT m.community_id, m.member_id,
           (ARRAY['How do you set up scheduled reports?', 'Tip: saved filters speed up the weekly review.',
                  'Has anyone connected the API to their data warehouse?', 'Our team doubled adoption with in-app guides.',
                  'Feature idea: bulk edit for dashboards.', 'Thanks for the quick answer on SSO!'])
               [1 + floor(csmcp.seed_rand(m.member_id || g || 'c_txt') * 6)::integer],
           CASE WHEN g = 1 AND csmcp.seed_rand(m.member_id || 'c_pend') < 0.1 THEN 'pending'
                WHEN g > 1 AND csmcp.seed_rand(m.member_id || g || 'c_rej') < 0.05 THEN 'rejected'
                ELSE 'approved' END,
           greatest(m.joined_at + make_interval(hours => g),
                    now() - make_interval(hours => floor(csmcp.seed_rand(m.member_id || g || 'c_h') * 60 * 24)::integer))
    FROM community_members m
    CROSS JOIN generate_series(1, 5) g
    WHERE m.member_id LIKE 'member\_9%' AND g <= floor(csmcp.seed_rand(m.member_id || 'c_nposts') * 6)::integer
      AND NOT EXISTS (SELECT 1 FROM community_posts p WHERE p.member_id = m.member_id);
    GET DIAGNOSTICS n_posts = ROW_COUNT;
    -- A member whose first post is pending has no approved post yet (the tool's moderation rule).
    UPDATE community_posts p SET moderation = 'pending'
    WHERE p.member_id IN (SELECT x.member_id FROM community_posts x WHERE x.member_id LIKE 'member\_9%'
                          GROUP BY x.member_id HAVING bool_or(x.moderation = 'pending'))
      AND p.moderation = 'approved';
    UPDATE community_members m SET reputation = 10 * x.n
    FROM (SELECT p.member_id, count(*) AS n FROM community_posts p
          WHERE p.member_id LIKE 'member\_9%' AND p.moderation = 'approved' GROUP BY p.member_id) x
    WHERE m.member_id = x.member_id;

    -- Advocates and their contributions (points and tier by the tool's rules)
    INSERT INTO advocates (advocate_id, client_id, contact_name, contact_email, contact_title, enrolled_at)
    SELECT 'advocate_9' || lpad(c.contact_id::text, 7, '0') || '_' || c.client_id, c.client_id, c.name, c.email, c.title,
           now() - make_interval(days => 30 + floor(csmcp.seed_rand(c.client_id || 'c_adv_d') * 500)::integer)
    FROM contacts c JOIN accounts a ON a.client_id = c.client_id
    WHERE c.client_id LIKE 'demo\_%' AND c.role = 'champion' AND a.status <> 'churned'
      AND csmcp.seed_rand(c.client_id || 'c_adv') < (1.0 / 12 + CASE WHEN a.health_score >= 70 THEN 0.08 ELSE 0 END)
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS n_adv = ROW_COUNT;
    FOR adv IN SELECT * FROM advocates x WHERE x.advocate_id LIKE 'advocate\_9%' AND x.total_points = 0
               AND NOT EXISTS (SELECT 1 FROM advocate_contributions c WHERE c.advocate_id = x.advocate_id)
               ORDER BY x.advocate_id LOOP
        v_total := 0;
        v_tier := 'bronze';
        FOR k IN 1 .. 1 + floor(csmcp.seed_rand(adv.advocate_id || 'c_nctb') * 6)::integer LOOP
            v_type := (ARRAY['case_study', 'reference', 'review', 'testimonial', 'speaking_engagement', 'referral',
                             'review', 'testimonial', 'reference'])
                      [1 + floor(csmcp.seed_rand(adv.advocate_id || k || 'c_type') * 9)::integer];
            v_base := csmcp.advocacy_base_points(v_type);
            v_pts := round(v_base * csmcp.advocacy_multiplier(v_tier))::integer;
            v_new_tier := csmcp.advocacy_tier(v_total + v_pts);
            INSERT INTO advocate_contributions (advocate_id, contribution_type, details, points, base_points, multiplier,
                                                tier_before, tier_after, recorded_by, occurred_at)
            VALUES (adv.advocate_id, v_type, initcap(replace(v_type, '_', ' ')) || ' for ' || adv.client_id, v_pts, v_base,
                    csmcp.advocacy_multiplier(v_tier), v_tier, v_new_tier, 'seed',
                    adv.enrolled_at + make_interval(days => k * 20));
            v_total := v_total + v_pts;
            v_tier := v_new_tier;
            n_ctb := n_ctb + 1;
        END LOOP;
        UPDATE advocates SET total_points = v_total, tier = v_tier,
                             updated_at = (SELECT max(occurred_at) FROM advocate_contributions c WHERE c.advocate_id = adv.advocate_id)
        WHERE advocate_id = adv.advocate_id;
    END LOOP;

    -- Executive reviews: a completed one ~80 days ago and an upcoming one
    INSERT INTO executive_reviews (ebr_id, client_id, ebr_type, scheduled_at, duration_minutes, status, agenda, objectives,
                                   satisfaction_rating, completed_at, next_ebr_date, created_by, created_at)
    SELECT 'ebr_9' || lpad(substr(a.client_id, 6), 6, '0') || '1_' || a.client_id, a.client_id, 'quarterly',
           date_trunc('hour', now()) - make_interval(days => 75 + floor(csmcp.seed_rand(a.client_id || 'c_ebr1') * 10)::integer),
           60, 'completed', '["Value delivered", "Adoption", "Roadmap"]', '["Confirm success plan"]',
           CASE WHEN a.health_score >= 70 THEN 4 WHEN a.health_score >= 50 THEN 3 ELSE 2 END
             + (csmcp.seed_rand(a.client_id || 'c_ebr_sat') < 0.5)::integer,
           date_trunc('hour', now()) - make_interval(days => 74), csmcp.today() + 15, 'seed', now() - interval '100 days'
    FROM accounts a
    WHERE a.client_id LIKE 'demo\_%' AND a.status <> 'churned'
      AND (a.tier = 'enterprise' OR (a.tier = 'professional' AND csmcp.seed_rand(a.client_id || 'c_ebr') < 0.5))
    ON CONFLICT DO NOTHING;
    INSERT INTO executive_reviews (ebr_id, client_id, ebr_type, scheduled_at, duration_minutes, status, agenda, objectives,
                                   created_by)
    SELECT 'ebr_9' || lpad(substr(e.client_id, 6), 6, '0') || '2_' || e.client_id, e.client_id,
           CASE WHEN r.renewal_date < csmcp.today() + 60 THEN 'renewal' ELSE 'quarterly' END,
           (csmcp.today() + 5 + floor(csmcp.seed_rand(e.client_id || 'c_ebr2') * 40)::integer)::timestamp + interval '15 hours',
           CASE WHEN a.tier = 'enterprise' THEN 90 ELSE 60 END, 'scheduled',
           '["Health and adoption review", "Open support topics", "Renewal and expansion"]', '["Agree next quarter goals"]', 'seed'
    FROM executive_reviews e JOIN accounts a USING (client_id)
    -- one grouped pass over renewals (a per-row min() lookup was planned on the renewal_date
    -- index, filtering client_id: every upcoming renewal read per review, 170 s at 10,000 accounts)
    LEFT JOIN (SELECT x.client_id, min(x.renewal_date) AS renewal_date FROM renewals x
               WHERE x.renewal_date >= csmcp.today() GROUP BY x.client_id) r ON r.client_id = e.client_id
    WHERE e.ebr_id LIKE 'ebr\_9%1\_%'
    ON CONFLICT DO NOTHING;
    SELECT count(*) INTO n_ebr FROM executive_reviews WHERE ebr_id LIKE 'ebr\_9%';
    INSERT INTO ebr_attendees (ebr_id, side, name, email, title)
    SELECT e.ebr_id, 'customer', c.name, c.email, c.title
    FROM executive_reviews e JOIN contacts c ON c.client_id = e.client_id AND c.role IN ('executive_sponsor', 'champion')
    WHERE e.ebr_id LIKE 'ebr\_9%'
    UNION ALL
    SELECT e.ebr_id, 'vendor', a.csm_assigned, NULL, 'Customer Success Manager'
    FROM executive_reviews e JOIN accounts a USING (client_id)
    WHERE e.ebr_id LIKE 'ebr\_9%' AND a.csm_assigned IS NOT NULL
    ON CONFLICT DO NOTHING;
    INSERT INTO ebr_action_items (ebr_id, text, owner, due_date, done)
    SELECT e.ebr_id, t.txt, CASE WHEN t.o = 1 THEN a.csm_assigned ELSE a.primary_contact_name END,
           (e.scheduled_at AT TIME ZONE 'UTC')::date + 14 * t.o, t.o = 1
    FROM executive_reviews e JOIN accounts a USING (client_id)
    CROSS JOIN (VALUES (1, 'Share adoption dashboard with the sponsor'), (2, 'Run a training session for new users'))
               t(o, txt)
    WHERE e.ebr_id LIKE 'ebr\_9%' AND e.status = 'completed'
      -- the reviews that have items already, read once (a hashed NOT IN): planned without
      -- statistics, NOT EXISTS became a nested loop re-reading every item this statement had
      -- inserted so far (quadratic: 1 s at 30,000 accounts, 47 s at 100,000)
      AND e.ebr_id NOT IN (SELECT i.ebr_id FROM ebr_action_items i WHERE i.ebr_id IS NOT NULL);
    GET DIAGNOSTICS n_items = ROW_COUNT;

    -- Workflows and their recorded firings. Seeded paused: a running monitor would otherwise start
    -- executing them (e-mails, tasks, meetings) in every seeded database, CI's included; resume
    -- them with automate_communications to see them run.
    INSERT INTO communication_workflows (workflow_id, name, description, trigger_type, trigger_conditions, delay_minutes,
                                         is_active, created_by, created_at)
    VALUES
        ('workflow_9000001_low_health_outreach', 'Low health outreach', 'Email and a CSM task when health drops below 60',
         'health_score', '{"threshold": 60, "direction": "below"}', 0, false, 'seed', now() - interval '90 days'),
        ('workflow_9000002_usage_drop_nudge', 'Usage drop nudge', 'In-app tips when weekly active users fall under 10',
         'usage_pattern', '{"metric": "weekly_active_users", "threshold": 10}', 60, false, 'seed', now() - interval '60 days'),
        ('workflow_9000003_renewal_90_days', 'Renewal 90 days', 'Renewal reminder and meeting 90 days before the end',
         'contract_event', '{"event_type": "renewal_due", "days_before": 90}', 0, false, 'seed', now() - interval '200 days'),
        ('workflow_9000004_onboarding_done', 'Onboarding done', 'Congratulate and ask for feedback at go-live',
         'milestone', '{"milestone_name": "go_live"}', 1440, false, 'seed', now() - interval '150 days')
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS n_wf = ROW_COUNT;
    INSERT INTO workflow_actions (workflow_id, seq, action_type, params) VALUES
        ('workflow_9000001_low_health_outreach', 1, 'send_email',
         '{"subject": "{{first_name}}, can we help {{client_name}}?", "body": "Hi {{first_name}}, your CSM {{csm_name}} would like to review how things are going.", "sender_email": "success@csmcp.test", "template_type": "health_check"}'),
        ('workflow_9000001_low_health_outreach', 2, 'create_task', '{"title": "Call {{client_name}} about their health score", "due_days": 3}'),
        ('workflow_9000002_usage_drop_nudge', 1, 'send_in_app_notification', '{"message": "Tips to get more done"}'),
        ('workflow_9000003_renewal_90_days', 1, 'send_email',
         '{"subject": "Your renewal with us", "body": "Hi {{first_name}}, {{client_name}}''s renewal is coming up; let us plan it together.", "sender_email": "renewals@csmcp.test", "template_type": "renewal_reminder"}'),
        ('workflow_9000003_renewal_90_days', 2, 'schedule_meeting', '{"title": "Renewal review with {{client_name}}", "days_from_now": 14}'),
        ('workflow_9000004_onboarding_done', 1, 'send_email',
         '{"subject": "Congratulations on going live", "body": "Hi {{first_name}}, how was onboarding? Reply and tell us.", "sender_email": "success@csmcp.test", "template_type": "feedback_request"}')
    ON CONFLICT DO NOTHING;
    -- rows of an older seed: parameters the execution needs
    UPDATE workflow_actions SET params = params || '{"subject": "{{first_name}}, can we help {{client_name}}?", "body": "Hi {{first_name}}, your CSM {{csm_name}} would like to review how things are going.", "sender_email": "success@csmcp.test"}'
    WHERE workflow_id IN ('workflow_9000001_low_health_outreach', 'workflow_9000003_renewal_90_days', 'workflow_9000004_onboarding_done')
      AND action_type = 'send_email' AND NOT params ? 'subject';
    UPDATE workflow_actions SET params = params || '{"title": "Follow up with {{client_name}}"}'
    WHERE workflow_id = 'workflow_9000001_low_health_outreach' AND action_type = 'create_task' AND NOT params ? 'title';
    INSERT INTO workflow_runs (workflow_id, client_id, fired_at, due_at, executed_at, outcome, detail)
    SELECT 'workflow_9000001_low_health_outreach', a.client_id,
           now() - make_interval(days => floor(csmcp.seed_rand(a.client_id || 'c_run') * 60)::integer),
           now() - make_interval(days => floor(csmcp.seed_rand(a.client_id || 'c_run') * 60)::integer),
           now() - make_interval(days => floor(csmcp.seed_rand(a.client_id || 'c_run') * 60)::integer),
           CASE WHEN csmcp.seed_rand(a.client_id || 'c_runok') < 0.9 THEN 'succeeded' ELSE 'failed' END,
           jsonb_build_object('health_score', a.health_score, 'actions', 2)
    FROM accounts a
    WHERE a.client_id LIKE 'demo\_%' AND a.health_score < 60
      AND NOT EXISTS (SELECT 1 FROM workflow_runs r WHERE r.workflow_id = 'workflow_9000001_low_health_outreach');
    GET DIAGNOSTICS n_runs = ROW_COUNT;

    INSERT INTO newsletters (newsletter_id, name, edition_number, subject_line, sections, recurrence_pattern, created_by,
                             send_to_all, target_tiers, status)
    VALUES
        ('newsletter_9000001_monthly_product_news', 'Monthly product news', 12, 'What''s new this month',
         '[{"type": "feature_highlight", "title": "Saved filters", "content": "Save any filter set and share it with your team."},
           {"type": "tip", "title": "Keyboard shortcuts", "content": "Press ? anywhere to see them."},
           {"type": "event", "title": "Customer webinar", "content": "Live Q&A with the product team next Thursday."}]',
         'monthly', 'seed', true, NULL, 'draft'),
        ('newsletter_9000002_enterprise_briefing', 'Enterprise briefing', 3, 'Quarterly enterprise briefing',
         '[{"type": "update", "title": "Security", "content": "SSO enforcement and audit export are now available."}]',
         NULL, 'seed', false, ARRAY['enterprise'], 'draft')
    ON CONFLICT DO NOTHING;

    RETURN jsonb_build_object('contacts_unsubscribed', n_unsub, 'newsletter_subscriptions', n_nl_unsub,
                              'community_members', n_mem, 'community_posts', n_posts, 'advocates', n_adv,
                              'advocate_contributions', n_ctb, 'executive_reviews', n_ebr, 'ebr_action_items', n_items,
                              'workflows', n_wf, 'workflow_runs', n_runs);
END $$;

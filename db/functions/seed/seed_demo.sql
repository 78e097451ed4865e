-- seed/seed_demo.sql - csmcp.seed_demo(n): a deterministic, realistic demo data set
-- (`csmcpctl seed --accounts N`).
--
-- Deterministic: every value derives from md5 of (account number, purpose) (csmcp.seed_rand,
-- seed/_lib.sql), and dates are relative to today, so the same N gives the same accounts,
-- shapes and relative history on any machine. Demo accounts are named demo_00001..; re-seeding
-- replaces them (and only them: rows of other accounts are never touched).
-- Base data per account: every demo account is at least 95 days old, so each has the full
-- 90 days of daily usage history (the churned ones stop 40 days ago); contract with seats,
-- contacts, 30 days of per-feature usage, feature adoption dates, quarterly invoices (some paid
-- late, some overdue), support tickets, NPS and CSAT responses, communications, lifecycle
-- history; onboarding accounts (younger than 120 days) have a 4-month plan with monthly
-- milestones; then one real health calculation per account.
-- Then every category's part, csmcp.seed_part_<category>(n) (db/functions/seed/<category>.sql):
-- it must be deterministic too (csmcp.seed_rand, never random()), insert rows only for demo
-- accounts (or its own demo objects), and return the counts of what it inserted as a JSON
-- object; seed_demo returns {"accounts": n, ..., "<category>": {counts}, ...}.
-- The portfolio totals are rebuilt once at the end (bulk mode: the triggers skip the deltas).

-- Demo contact k (1..5) of demo account i: a deterministic person's name (the five contacts of an
-- account have five different surnames) and an address first.last@<slug of the account's name>.test
-- on the reserved .test TLD (RFC 2606: never deliverable), never a placeholder domain.
-- The key is built with i::text, not i || ...: integer || text is anytextcat, a STABLE function,
-- and an IMMUTABLE SQL function whose body calls a STABLE one is not inlined - each call went
-- through the SQL-function executor (~10 us instead of ~2.5; ~1.7 million calls at 100,000
-- accounts). The same text, so the same names.
CREATE OR REPLACE FUNCTION csmcp.seed_contact_name(i integer, k integer) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT (ARRAY['Amara', 'Bruno', 'Carmen', 'Dmitri', 'Elena', 'Farid', 'Greta', 'Hassan', 'Ingrid', 'Jonas', 'Keiko',
                  'Lucas', 'Mei', 'Nadia', 'Oscar', 'Priya'])[1 + floor(csmcp.seed_rand(i::text || 'cf' || k::text) * 16)::int] || ' ' ||
           (ARRAY['Achebe', 'Bergström', 'Castillo', 'Dlamini', 'Eriksen', 'Fontaine', 'García', 'Hoffmann', 'Ito', 'Jansen',
                  'Kowalski', 'Lindgren', 'Mensah', 'Novak', 'Okonkwo', 'Petrov'])[1 + (i * 7 + k) % 16]
$$;
CREATE OR REPLACE FUNCTION csmcp.seed_contact_email(p_name text, p_company text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT regexp_replace(lower(translate(p_name, 'öäåéíóúñçłšž', 'oaaeiounclsz')), '[^a-z0-9]+', '.', 'g') || '@' ||
           btrim(regexp_replace(lower(p_company), '[^a-z0-9]+', '-', 'g'), '-') || '.test'
$$;

-- Demo account i: demo_00001 .. demo_99999, then demo_100000 .. (never truncated: with
-- lpad(i, 5) account 100000 would have been demo_10000 again).
CREATE OR REPLACE FUNCTION csmcp.seed_client_id(i integer) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT 'demo_' || lpad(i::text, greatest(5, length(i::text)), '0')
$$;

CREATE OR REPLACE FUNCTION csmcp.seed_demo(n integer) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    t date := csmcp.today();
    n_scored integer := 0;
    result jsonb;
    part record;
    counts jsonb;
    t0 timestamptz := clock_timestamp();
    tp timestamptz;
    timing jsonb := '{}';
BEGIN
    IF n IS NULL OR n < 1 OR n > 1000000 THEN
        RAISE EXCEPTION 'accounts must be between 1 and 1000000' USING ERRCODE = '22023';
    END IF;
    -- Bulk load: the portfolio triggers do nothing in this transaction; the totals are rebuilt
    -- once at the end (db/functions/portfolio/totals.sql).
    PERFORM set_config('csmcp.portfolio_bulk', 'on', true);
    -- Memory for the seed's sorts, hashes and index builds (this transaction only): with the
    -- 4 MB default the window sums and joins over millions of usage rows spill to disk.
    PERFORM set_config('work_mem', '256MB', true);
    -- 2 GB for the index builds of the bulk mode: a parallel build gives each of its (up to 3)
    -- participants a share. At 100,000 accounts the (feature_id, day) index of usage_feature_daily
    -- and the (day, client_id) indexes of usage_moments / usage_cum took 122 / 75 / 63 s with 1 GB
    -- and 60 / 28 / 18 s with 2 GB (two runs at different load: docs/scale.md "Seeding").
    PERFORM set_config('maintenance_work_mem', '2GB', true);
    -- No JIT: at these sizes nearly every statement of the seed passes jit_optimize_above_cost and
    -- jit_inline_above_cost, and compiling with LLVM costs ~1 s per statement (100,000 generated
    -- accounts rows: 4.7-5.6 s with JIT, 3.6-4.2 s without) for expressions evaluated once per row.
    PERFORM set_config('jit', 'off', true);
    DELETE FROM accounts WHERE client_id LIKE 'demo\_%';
    DELETE FROM segments WHERE NOT EXISTS (SELECT 1 FROM segment_members m WHERE m.segment_id = segments.segment_id);
    -- Large seeds: foreign keys and secondary usage indexes dropped now, re-created (and every
    -- row validated) at the end (seed/_lib.sql csmcp.seed_bulk_begin/end).
    IF (n >= 2000 OR current_setting('csmcp.seed_bulk', true) = 'on') AND csmcp.seed_bulk_possible() THEN
        PERFORM csmcp.seed_bulk_begin();
    END IF;

    INSERT INTO features (feature_id, name, category, is_core) VALUES
        ('dashboard', 'Dashboard', 'core', true), ('reports', 'Reports', 'core', true),
        ('search', 'Search', 'core', true), ('alerts', 'Alerts', 'core', true),
        ('api', 'REST API', 'integration', false), ('slack_integration', 'Slack integration', 'integration', false),
        ('salesforce_sync', 'Salesforce sync', 'integration', false), ('automation', 'Workflow automation', 'advanced', false),
        ('custom_fields', 'Custom fields', 'advanced', false), ('analytics_studio', 'Analytics studio', 'advanced', false),
        ('exports', 'Exports', 'general', false), ('mobile_app', 'Mobile app', 'general', false)
    ON CONFLICT (feature_id) DO NOTHING;
    INSERT INTO support_agents (agent_id, name, email, team, is_senior, max_tickets) VALUES
        ('agt_01', 'Maya Patel', 'maya.patel@support.csmcp.test', 'Technical Support', true, 12),
        ('agt_02', 'Leo Fischer', 'leo.fischer@support.csmcp.test', 'Technical Support', false, 10),
        ('agt_03', 'Ana Souza', 'ana.souza@support.csmcp.test', 'Engineering Support', true, 8),
        ('agt_04', 'Tom Becker', 'tom.becker@support.csmcp.test', 'Billing Support', false, 10),
        ('agt_05', 'Grace Kim', 'grace.kim@support.csmcp.test', 'Customer Success', false, 10),
        ('agt_06', 'Omar Haddad', 'omar.haddad@support.csmcp.test', 'Integration Team', false, 10),
        ('agt_07', 'Ines Moreau', 'ines.moreau@support.csmcp.test', 'Escalation Team', true, 6),
        ('agt_08', 'Jon Berg', 'jon.berg@support.csmcp.test', 'Product Support', false, 10)
    ON CONFLICT (agent_id) DO UPDATE SET email = EXCLUDED.email;  -- earlier seeds used a placeholder domain
    INSERT INTO support_agent_expertise VALUES
        ('agt_01', 'technical_issue'), ('agt_01', 'performance'), ('agt_02', 'technical_issue'), ('agt_02', 'how_to_question'),
        ('agt_03', 'bug_report'), ('agt_03', 'data_issue'), ('agt_04', 'account_billing'), ('agt_05', 'how_to_question'),
        ('agt_05', 'training_request'), ('agt_06', 'integration_support'), ('agt_07', 'bug_report'), ('agt_07', 'technical_issue'),
        ('agt_08', 'feature_request')
    ON CONFLICT DO NOTHING;
    INSERT INTO training_modules (module_id, name, description, format, certification_level, duration_minutes) VALUES
        ('mod_fundamentals', 'Platform Fundamentals', 'Navigation, dashboards and reports', 'live_webinar', 'basic', 90),
        ('mod_admin', 'Administration', 'Users, roles, settings', 'workshop', 'intermediate', 120),
        ('mod_integrations', 'Integrations', 'API, Slack and Salesforce', 'self_paced', 'advanced', 60),
        ('mod_automation', 'Automation expert', 'Workflows and custom fields', 'one_on_one', 'expert', 120)
    ON CONFLICT (module_id) DO NOTHING;
    INSERT INTO surveys (survey_id, name, survey_type) VALUES ('srv_nps_relationship', 'Relationship NPS', 'nps'),
                                                              ('srv_csat_ticket', 'Ticket CSAT', 'csat')
    ON CONFLICT (survey_id) DO NOTHING;
    INSERT INTO kb_articles (article_id, title, summary, content, category, status, author, published_at, view_count, helpful_votes, not_helpful_votes)
    SELECT 'KB-' || (1000 + i), x.title, x.title || ' - step by step.', 'How to ' || lower(x.title) || '. ' || repeat('Details. ', 20),
           x.cat, 'published', 'docs-team', now() - make_interval(days => 200 - i * 10), 100 + i * 37, 10 + i * 3, i
    FROM (VALUES (1, 'Create your first dashboard', 'getting_started'), (2, 'Invite users and assign roles', 'administration'),
                 (3, 'Connect the Slack integration', 'integrations'), (4, 'Use the REST API', 'integrations'),
                 (5, 'Schedule a report', 'reports'), (6, 'Set up alerts', 'alerts'), (7, 'Build a workflow automation', 'automation'),
                 (8, 'Export data to CSV', 'data'), (9, 'Troubleshoot slow dashboards', 'performance'),
                 (10, 'Update billing details', 'billing')) x(i, title, cat)
    ON CONFLICT (article_id) DO NOTHING;

    -- Accounts and their fixed traits.
    CREATE TEMP TABLE sd ON COMMIT DROP AS
    SELECT i, csmcp.seed_client_id(i) AS client_id,
           (ARRAY['Acme', 'Globex', 'Initech', 'Umbrella', 'Stark', 'Wayne', 'Wonka', 'Hooli', 'Vandelay', 'Soylent',
                  'Cyberdyne', 'Tyrell', 'Aperture', 'Massive', 'Oscorp', 'Nakatomi', 'Gringotts', 'Monarch', 'Pied Piper', 'Dunder'])
               [1 + floor(csmcp.seed_rand(i || 'n1') * 20)::int] || ' ' ||
           (ARRAY['Analytics', 'Logistics', 'Health', 'Foods', 'Energy', 'Media', 'Robotics', 'Finance', 'Retail', 'Labs'])
               [1 + floor(csmcp.seed_rand(i || 'n2') * 10)::int] || ' ' || i AS client_name,
           (ARRAY['Technology', 'Healthcare', 'Finance', 'Retail', 'Manufacturing', 'Education', 'Media', 'Logistics'])
               [1 + floor(csmcp.seed_rand(i || 'ind') * 8)::int] AS industry,
           CASE WHEN csmcp.seed_rand(i || 'tier') < 0.25 THEN 'starter' WHEN csmcp.seed_rand(i || 'tier') < 0.60 THEN 'standard'
                WHEN csmcp.seed_rand(i || 'tier') < 0.85 THEN 'professional' ELSE 'enterprise' END AS tier,
           CASE WHEN csmcp.seed_rand(i || 'pat') < 0.30 THEN 'growing' WHEN csmcp.seed_rand(i || 'pat') < 0.75 THEN 'flat'
                ELSE 'declining' END AS pattern,
           0.3 + 0.6 * csmcp.seed_rand(i || 'u0') AS u0,
           csmcp.seed_rand(i || 'churn') < 0.03 AS churned,
           (95 + floor(csmcp.seed_rand(i || 'age') * 805))::int AS age_days,
           (ARRAY['Alice Moreno', 'Ben Okafor', 'Chloe Dubois', 'Dev Sharma', 'Eva Lindqvist', 'Felix Wagner', 'Gina Rossi', 'Hiro Tanaka'])
               [1 + floor(csmcp.seed_rand(i || 'csm') * 8)::int] AS csm
    FROM generate_series(1, n) i;
    ALTER TABLE sd ADD COLUMN seats integer, ADD COLUMN arr numeric, ADD COLUMN start_date date, ADD COLUMN stage text;
    UPDATE sd SET seats = CASE tier WHEN 'starter' THEN 5 + floor(csmcp.seed_rand(i || 's') * 10)
                                    WHEN 'standard' THEN 15 + floor(csmcp.seed_rand(i || 's') * 35)
                                    WHEN 'professional' THEN 50 + floor(csmcp.seed_rand(i || 's') * 100)
                                    ELSE 150 + floor(csmcp.seed_rand(i || 's') * 450) END;
    UPDATE sd SET arr = round(seats * CASE tier WHEN 'starter' THEN 600 WHEN 'standard' THEN 900 WHEN 'professional' THEN 1100 ELSE 1300 END, -2),
                  -- the current contract year started 0..364 days ago, so renewals spread over the next year
                  start_date = t - least(age_days, floor(csmcp.seed_rand(i || 'cs') * 365)::int);
    UPDATE sd SET stage = CASE WHEN churned THEN 'churned'
                               WHEN age_days < 120 THEN 'onboarding'
                               WHEN start_date + 365 - t <= 45 THEN 'renewal'
                               WHEN pattern = 'declining' AND csmcp.seed_rand(i || 'st') < 0.6 THEN 'at_risk'
                               WHEN pattern = 'growing' AND u0 > 0.7 THEN 'expansion'
                               ELSE 'active' END;

    -- Bulk mode: accounts, contacts and tickets are loaded without their indexes (accounts has four
    -- trigram GiST indexes: 370 us per inserted or updated row at 10,000 accounts); keys come back
    -- right after each insert, the other indexes at the end (seed_bulk_end).
    PERFORM csmcp.seed_bulk_off('accounts');
    INSERT INTO accounts (client_id, client_name, company_name, industry, tier, lifecycle_stage, status, csm_assigned,
                          primary_contact_email, primary_contact_name, created_at, updated_at)
    SELECT client_id, client_name,
           client_name || (ARRAY[' Inc', ' Ltd', ' GmbH', ' LLC'])[1 + floor(csmcp.seed_rand(i || 'suf') * 4)::int],
           industry, tier, stage, CASE WHEN churned THEN 'churned' ELSE 'active' END, csm,
           csmcp.seed_contact_email(csmcp.seed_contact_name(i, 1), client_name), csmcp.seed_contact_name(i, 1),
           (t - age_days)::timestamp AT TIME ZONE 'UTC', now()
    FROM sd;
    PERFORM csmcp.seed_bulk_on('accounts');
    PERFORM csmcp.seed_bulk_off('contacts');
    INSERT INTO contacts (client_id, name, email, title, role, is_primary)
    SELECT sd.client_id, csmcp.seed_contact_name(sd.i, k),
           csmcp.seed_contact_email(csmcp.seed_contact_name(sd.i, k), sd.client_name),
           (ARRAY['Head of Operations', 'VP Engineering', 'CFO', 'Team Lead', 'Analyst'])[k],
           (ARRAY['champion', 'executive_sponsor', 'billing', 'admin', 'user'])[k], k = 1
    FROM sd CROSS JOIN generate_series(1, 5) k
    WHERE k <= 2 + floor(csmcp.seed_rand(sd.i || 'nc') * 4);
    PERFORM csmcp.seed_bulk_on('contacts');

    INSERT INTO contracts (contract_id, client_id, contract_type, tier, contract_value, billing_frequency, licensed_seats,
                           start_date, end_date, auto_renew, status)
    SELECT 'CTR-' || client_id, client_id, 'annual', tier, arr, 'quarterly', seats, start_date, start_date + 365,
           csmcp.seed_rand(i || 'ar') < 0.3, CASE WHEN churned THEN 'cancelled' ELSE 'active' END
    FROM sd;
    -- The previous contract year for older accounts (expired), so history spans renewals.
    INSERT INTO contracts (contract_id, client_id, contract_type, tier, contract_value, billing_frequency, licensed_seats,
                           start_date, end_date, status)
    SELECT 'CTR-' || client_id || '-prev', client_id, 'annual', tier, round(arr * 0.9, -2), 'quarterly', greatest(1, round(seats * 0.9)),
           start_date - 365, start_date, 'renewed'
    FROM sd WHERE age_days >= (t - start_date) + 365;
    INSERT INTO renewals (renewal_id, contract_id, client_id, renewal_date, status, current_arr)
    SELECT 'REN-' || client_id, 'CTR-' || client_id, client_id, start_date + 365, 'on_track', arr FROM sd WHERE NOT churned;
    INSERT INTO revenue_events (client_id, kind, arr_delta, occurred_on, note)
    SELECT client_id, 'new', CASE WHEN age_days >= (t - start_date) + 365 THEN round(arr * 0.9, -2) ELSE arr END,
           t - age_days, 'initial contract' FROM sd;
    INSERT INTO revenue_events (client_id, kind, arr_delta, occurred_on, note)
    SELECT client_id, 'expansion', arr - round(arr * 0.9, -2), start_date, 'renewal with more seats'
    FROM sd WHERE age_days >= (t - start_date) + 365 AND arr > round(arr * 0.9, -2);

    -- Quarterly invoices of the current contract: due 30 days after issue; ~10% of accounts paid
    -- one late, ~6% have the latest past-due invoice unpaid (overdue).
    INSERT INTO invoices (invoice_id, contract_id, client_id, amount, issued_on, due_on, paid_on)
    SELECT 'INV-' || sd.client_id || '-' || q, 'CTR-' || sd.client_id, sd.client_id, round(sd.arr / 4, 2),
           sd.start_date + q * 91, sd.start_date + q * 91 + 30,
           CASE WHEN csmcp.seed_rand(sd.i || 'od') < 0.06 AND sd.start_date + q * 91 + 30 < t
                     AND sd.start_date + (q + 1) * 91 + 30 >= t THEN NULL
                WHEN sd.start_date + q * 91 + 30 >= t THEN NULL
                WHEN csmcp.seed_rand(sd.i || 'late') < 0.10 AND q = 0 THEN sd.start_date + q * 91 + 30 + 12
                ELSE sd.start_date + q * 91 + 20 END
    FROM sd CROSS JOIN generate_series(0, 3) q
    WHERE sd.start_date + q * 91 <= t AND NOT sd.churned;

    -- 90 days of daily usage (bulk mode: loaded without its indexes, key re-built right after).
    -- OFFSET 0 keeps the subquery: pulled up, its dau expression (three seed_rand_int mixes, float
    -- and numeric arithmetic) was evaluated four times per row - in the WHERE and in each of the
    -- three columns that use it (30,000 accounts: 8.7 s of CPU for the generation, 3.4 s with
    -- OFFSET 0). The row order stays (newest day first): later parts number rows from
    -- sequences in scan order (the same serial ids as before, checked per table).
    PERFORM csmcp.seed_bulk_off('usage_daily');
    INSERT INTO usage_daily (client_id, day, active_users, events, session_minutes)
    SELECT client_id, day, dau, dau * (5 + floor(csmcp.seed_rand_int(i, k, 2) * 10))::int,
           dau * (15 + floor(csmcp.seed_rand_int(i, k, 3) * 25))::int
    FROM (
        SELECT sd.i, k, sd.client_id, (t - k) AS day,
               greatest(0, round(sd.seats *
                   CASE sd.pattern WHEN 'growing' THEN sd.u0 * (0.6 + 0.4 * (89 - k) / 89.0)
                                   WHEN 'declining' THEN sd.u0 * (1.0 - 0.6 * (89 - k) / 89.0)
                                   ELSE sd.u0 END *
                   CASE WHEN extract(isodow FROM t - k) >= 6 THEN 0.25 ELSE 1.0 END *
                   (0.85 + 0.3 * csmcp.seed_rand_int(sd.i, k, 1))))::int AS dau
        FROM sd CROSS JOIN generate_series(0, 89) k
        WHERE (t - k) >= t - sd.age_days AND NOT (sd.churned AND k < 40)
        OFFSET 0
    ) u WHERE dau > 0;
    PERFORM csmcp.seed_bulk_on('usage_daily');

    -- Fresh bulk data has no statistics yet: without them the planner picks nested loops.
    ANALYZE accounts; ANALYZE contracts; ANALYZE usage_daily;

    -- Feature adoption and 30 days of per-feature usage.
    INSERT INTO feature_adoption (client_id, feature_id, first_used_on)
    SELECT sd.client_id, f.feature_id,
           least(t, (t - sd.age_days) + (f.ord * 7 + floor(csmcp.seed_rand(sd.i || f.feature_id) * 20))::int)
    FROM sd CROSS JOIN (SELECT feature_id, row_number() OVER (ORDER BY is_core DESC, feature_id) AS ord FROM features
                        WHERE feature_id IN ('dashboard', 'reports', 'search', 'alerts', 'api', 'slack_integration', 'salesforce_sync',
                                             'automation', 'custom_fields', 'analytics_studio', 'exports', 'mobile_app')) f
    WHERE f.ord <= 3 + floor(csmcp.seed_rand(sd.i || 'breadth') * (CASE sd.tier WHEN 'enterprise' THEN 10 WHEN 'professional' THEN 8 ELSE 6 END))
      AND EXISTS (SELECT 1 FROM usage_daily u WHERE u.client_id = sd.client_id);
    -- Statistics first: without them the planner took the per-account share subquery for 200 rows
    -- and read usage_daily by one index scan per account (55 of 200 s at 30,000 accounts).
    ANALYZE feature_adoption;
    PERFORM csmcp.seed_bulk_off('usage_feature_daily');
    -- events and quantity are the same numeric product: computed once (OFFSET 0 keeps the
    -- subquery; 30,000 accounts: 11.9 -> 8.8 s of CPU for the 5.2 million rows).
    INSERT INTO usage_feature_daily (client_id, day, feature_id, events, users, quantity)
    SELECT client_id, day, feature_id, ev::int, us, ev
    FROM (SELECT u.client_id, u.day, fa.feature_id, greatest(1, round(u.events * w.share)) AS ev,
                 greatest(1, round(u.active_users * least(1, w.share * 2.5)))::int AS us
          FROM usage_daily u JOIN feature_adoption fa ON fa.client_id = u.client_id AND fa.first_used_on <= u.day
          JOIN (SELECT client_id, 1.0 / count(*) AS share FROM feature_adoption GROUP BY client_id) w ON w.client_id = u.client_id
          WHERE u.client_id LIKE 'demo\_%' AND u.day > t - 30
          OFFSET 0) x;
    PERFORM csmcp.seed_bulk_on('usage_feature_daily');

    -- Support tickets over the last 120 days (declining accounts open more).
    PERFORM csmcp.seed_bulk_off('support_tickets');
    INSERT INTO support_tickets (ticket_id, client_id, subject, description, priority, category, status, requester_email, requester_name,
                                 assigned_agent, assigned_team, sla_first_response_minutes, sla_resolution_minutes,
                                 created_at, first_response_at, resolved_at, satisfaction_rating)
    SELECT 'TKT-' || (100000 + sd.i * 10 + k), sd.client_id,
           (ARRAY['Dashboard loads slowly', 'Cannot export report', 'API returns 500', 'How do I add users?', 'Invoice question',
                  'Slack alerts missing', 'Data looks wrong', 'Feature request: dark mode'])[1 + floor(csmcp.seed_rand(sd.i || 'sub' || k) * 8)::int],
           'Reported by the customer.',
           pr.p, (ARRAY['performance', 'technical_issue', 'bug_report', 'how_to_question', 'account_billing', 'integration_support',
                        'data_issue', 'feature_request'])[1 + floor(csmcp.seed_rand(sd.i || 'cat' || k) * 8)::int],
           CASE WHEN ts.c < now() - interval '5 days' THEN 'resolved' WHEN csmcp.seed_rand(sd.i || 'os' || k) < 0.5 THEN 'open' ELSE 'in_progress' END,
           csmcp.seed_contact_email(csmcp.seed_contact_name(sd.i, 1), sd.client_name), csmcp.seed_contact_name(sd.i, 1),
           ag.agent_id, ag.team,
           CASE pr.p WHEN 'P0' THEN 5 WHEN 'P1' THEN 15 WHEN 'P2' THEN 60 WHEN 'P3' THEN 240 ELSE 480 END,
           CASE pr.p WHEN 'P0' THEN 60 WHEN 'P1' THEN 240 WHEN 'P2' THEN 1440 WHEN 'P3' THEN 2880 ELSE 4320 END,
           ts.c, ts.c + interval '20 minutes',
           CASE WHEN ts.c < now() - interval '5 days' THEN ts.c + make_interval(hours => 2 + floor(csmcp.seed_rand(sd.i || 'rt' || k) * 60)::int) END,
           CASE WHEN ts.c < now() - interval '5 days' THEN 1 + floor(csmcp.seed_rand(sd.i || 'csat' || k) * 5)::int END
    FROM sd CROSS JOIN generate_series(1, 8) k
    -- the agent and its team (generated in final form: no UPDATE of every ticket afterwards)
    CROSS JOIN LATERAL (SELECT 'agt_0' || (1 + floor(csmcp.seed_rand(sd.i || 'ag' || k) * 8)::int) AS agent_id OFFSET 0) ag0
    LEFT JOIN support_agents ag ON ag.agent_id = ag0.agent_id
    CROSS JOIN LATERAL (SELECT now() - make_interval(days => floor(csmcp.seed_rand(sd.i || 'tc' || k) * 120)::int,
                                                     hours => floor(csmcp.seed_rand(sd.i || 'th' || k) * 24)::int) AS c OFFSET 0) ts
    CROSS JOIN LATERAL (SELECT CASE WHEN csmcp.seed_rand(sd.i || 'p' || k) < 0.03 THEN 'P0' WHEN csmcp.seed_rand(sd.i || 'p' || k) < 0.13 THEN 'P1'
                                    WHEN csmcp.seed_rand(sd.i || 'p' || k) < 0.43 THEN 'P2' WHEN csmcp.seed_rand(sd.i || 'p' || k) < 0.83 THEN 'P3'
                                    ELSE 'P4' END AS p OFFSET 0) pr
    WHERE k <= floor(csmcp.seed_rand(sd.i || 'nt') * CASE sd.pattern WHEN 'declining' THEN 9 ELSE 5 END)
      AND ts.c >= (t - sd.age_days)::timestamp AT TIME ZONE 'UTC';
    PERFORM csmcp.seed_bulk_on('support_tickets');
    INSERT INTO csat_responses (response_id, client_id, ticket_id, score, responded_at)
    SELECT 'CSAT-' || ticket_id, client_id, ticket_id, satisfaction_rating, resolved_at + interval '1 hour'
    FROM support_tickets WHERE client_id LIKE 'demo\_%' AND satisfaction_rating IS NOT NULL;

    -- NPS responses over the last 180 days; scores follow the usage pattern.
    INSERT INTO nps_responses (response_id, client_id, survey_id, respondent_email, score, reason, responded_at)
    SELECT 'NPS-' || sd.client_id || '-' || k, sd.client_id, 'srv_nps_relationship',
           csmcp.seed_contact_email(csmcp.seed_contact_name(sd.i, k), sd.client_name),
           CASE sd.pattern WHEN 'growing' THEN 7 + floor(csmcp.seed_rand(sd.i || 'nps' || k) * 4)
                           WHEN 'flat' THEN 5 + floor(csmcp.seed_rand(sd.i || 'nps' || k) * 6)
                           ELSE 1 + floor(csmcp.seed_rand(sd.i || 'nps' || k) * 8) END::int,
           NULL, now() - make_interval(days => floor(csmcp.seed_rand(sd.i || 'nd' || k) * 180)::int)
    FROM sd CROSS JOIN generate_series(1, 4) k
    WHERE k <= floor(csmcp.seed_rand(sd.i || 'nn') * 5) AND sd.age_days > 20;

    -- Communications over the last 90 days.
    INSERT INTO communications (client_id, channel, direction, subject, sent_by, occurred_at, status)
    SELECT sd.client_id, (ARRAY['email', 'call', 'meeting', 'in_app', 'email'])[1 + floor(csmcp.seed_rand(sd.i || 'ch' || k) * 5)::int],
           CASE WHEN csmcp.seed_rand(sd.i || 'dir' || k) < 0.3 THEN 'inbound' ELSE 'outbound' END,
           (ARRAY['Check-in', 'Quarterly review follow-up', 'New feature announcement', 'Renewal discussion', 'Training invitation'])
               [1 + floor(csmcp.seed_rand(sd.i || 'cs' || k) * 5)::int],
           sd.csm, now() - make_interval(days => floor(csmcp.seed_rand(sd.i || 'cd' || k) * 90)::int), 'sent'
    FROM sd CROSS JOIN generate_series(1, 6) k
    WHERE k <= 1 + floor(csmcp.seed_rand(sd.i || 'ncom') * 6) AND NOT sd.churned;

    -- Lifecycle history: registered -> onboarding; onboarding -> active after 45 days; -> current.
    INSERT INTO lifecycle_transitions (client_id, from_stage, to_stage, reason, changed_by, changed_at)
    SELECT client_id, NULL, 'onboarding', 'registered', 'seed', (t - age_days)::timestamp AT TIME ZONE 'UTC' FROM sd;
    INSERT INTO lifecycle_transitions (client_id, from_stage, to_stage, reason, changed_by, changed_at)
    SELECT client_id, 'onboarding', 'active', 'onboarding completed', 'seed', (t - age_days + 45)::timestamp AT TIME ZONE 'UTC'
    FROM sd WHERE stage <> 'onboarding' AND age_days >= 60;
    INSERT INTO lifecycle_transitions (client_id, from_stage, to_stage, reason, changed_by, changed_at)
    SELECT client_id, 'active', stage, 'seeded state', 'seed',
           (t - least(30, age_days - 46))::timestamp AT TIME ZONE 'UTC'
    FROM sd WHERE stage NOT IN ('onboarding', 'active') AND age_days >= 60;

    -- Onboarding plans for onboarding accounts, with milestones.
    INSERT INTO onboarding_plans (plan_id, client_id, name, product_tier, start_date, target_date, status)
    SELECT 'onb_' || client_id, client_id, 'Onboarding ' || client_name, tier, t - age_days, t - age_days + 120, 'in_progress'
    FROM sd WHERE stage = 'onboarding';
    INSERT INTO onboarding_milestones (milestone_id, plan_id, seq, name, week, estimated_hours, due_date, completed_on, status)
    SELECT 'onb_' || sd.client_id || '_m' || m.seq, 'onb_' || sd.client_id, m.seq, m.name, m.seq * 4, m.hours,
           (t - sd.age_days) + m.seq * 30,
           CASE WHEN (t - sd.age_days) + m.seq * 30 <= t THEN (t - sd.age_days) + m.seq * 30 END,
           CASE WHEN (t - sd.age_days) + m.seq * 30 <= t THEN 'completed'
                WHEN (t - sd.age_days) + (m.seq - 1) * 30 <= t THEN 'in_progress' ELSE 'not_started' END
    FROM sd CROSS JOIN (VALUES (1, 'Kickoff & Setup', 8), (2, 'Core Training', 12), (3, 'Integration & First Value', 16),
                               (4, 'Optimization & Success', 10)) m(seq, name, hours)
    WHERE sd.stage = 'onboarding';

    -- Activation happened before the 90 days of usage history: record it (manual confirmation).
    INSERT INTO adoption_milestones (client_id, milestone, achieved_on)
    SELECT client_id, 'm1', t - age_days + 2 FROM sd WHERE age_days > 92;

    ANALYZE feature_adoption; ANALYZE usage_feature_daily; ANALYZE support_tickets; ANALYZE nps_responses;
    ANALYZE invoices; ANALYZE health_scores; ANALYZE lifecycle_transitions; ANALYZE communications;

    timing := timing || jsonb_build_object('base', round(extract(epoch FROM clock_timestamp() - t0) * 1000));
    tp := clock_timestamp();
    -- A real health calculation for every demo account (stored as history): what
    -- calculate_health_score stores, computed for all accounts at once (seed/_lib.sql).
    n_scored := csmcp.seed_health_bulk(ARRAY(SELECT client_id FROM sd ORDER BY i), 'seed');
    UPDATE renewals SET status = CASE WHEN a.health_score >= 70 THEN 'on_track' WHEN a.health_score >= 50 THEN 'at_risk' ELSE 'high_risk' END,
                        probability = CASE WHEN a.health_score >= 85 THEN 0.92 WHEN a.health_score >= 70 THEN 0.80
                                           WHEN a.health_score >= 60 THEN 0.65 ELSE 0.40 END
    FROM accounts a WHERE a.client_id = renewals.client_id AND renewals.client_id LIKE 'demo\_%';

    result := jsonb_build_object(
        'accounts', n,
        'contacts', (SELECT count(*) FROM contacts WHERE client_id LIKE 'demo\_%'),
        'contracts', (SELECT count(*) FROM contracts WHERE client_id LIKE 'demo\_%'),
        'usage_days', (SELECT count(*) FROM usage_daily WHERE client_id LIKE 'demo\_%'),
        'tickets', (SELECT count(*) FROM support_tickets WHERE client_id LIKE 'demo\_%'),
        'nps_responses', (SELECT count(*) FROM nps_responses WHERE client_id LIKE 'demo\_%'),
        'invoices', (SELECT count(*) FROM invoices WHERE client_id LIKE 'demo\_%'),
        'health_scores', n_scored);
    timing := timing || jsonb_build_object('health', round(extract(epoch FROM clock_timestamp() - tp) * 1000));

    -- Each category's part: every csmcp.seed_part_<category>(n integer) RETURNS jsonb, in name
    -- order, its counts under the key <category>. Found in the catalog, so a category adds its
    -- part by adding db/functions/seed/<category>.sql and nothing else.
    FOR part IN
        SELECT p.proname, substr(p.proname, length('seed_part_') + 1) AS category
        FROM pg_proc p
        WHERE p.pronamespace = 'csmcp'::regnamespace AND p.proname LIKE 'seed\_part\_%'
          AND p.pronargs = 1 AND p.proargtypes[0] = 'integer'::regtype AND p.prorettype = 'jsonb'::regtype
        ORDER BY p.proname
    LOOP
        tp := clock_timestamp();
        EXECUTE format('SELECT csmcp.%I($1)', part.proname) INTO counts USING n;
        timing := timing || jsonb_build_object(part.category, round(extract(epoch FROM clock_timestamp() - tp) * 1000));
        result := result || jsonb_build_object(part.category, coalesce(counts, '{}'::jsonb));
    END LOOP;

    -- The portfolio totals and usage_cum from scratch (bulk mode: usage_cum without its indexes),
    -- then every dropped key, index and foreign key re-created.
    tp := clock_timestamp();
    PERFORM csmcp.seed_bulk_off('usage_cum');
    PERFORM csmcp.seed_bulk_off('usage_moments');   -- the usage analytics' moments (0143): the same
    PERFORM set_config('csmcp.portfolio_bulk', 'off', true);
    PERFORM csmcp.portfolio_rebuild();
    timing := timing || jsonb_build_object('rollups', round(extract(epoch FROM clock_timestamp() - tp) * 1000));
    tp := clock_timestamp();
    PERFORM csmcp.seed_bulk_end();
    timing := timing || jsonb_build_object('constraints', round(extract(epoch FROM clock_timestamp() - tp) * 1000));
    ANALYZE portfolio_counts;
    ANALYZE portfolio_usage;
    ANALYZE usage_moments; ANALYZE usage_feature_agg; ANALYZE usage_feature_pair; ANALYZE adoption_derived;
    ANALYZE usage_cum;
    -- Wall time of each phase in milliseconds (not data: the rows are the same on every run).
    RETURN result || jsonb_build_object('timing_ms', timing || jsonb_build_object(
        'total', round(extract(epoch FROM clock_timestamp() - t0) * 1000)));
END $$;

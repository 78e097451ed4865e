-- db/functions/seed/support.sql - demo data of the support & self-service category (issue 12),
-- called by csmcp.seed_demo after the base data. Deterministic: csmcp.seed_rand(key) only; times
-- relative to now() like the base seed.
--
--   * agents: ceil(n / 100) (at least 2) more agents (agt_09 ...) across the teams, each with 1-3
--     categories of expertise, a capacity of 6-15 and a quarter of them senior;
--   * tickets: every account gets one older ticket (30-360 days, closed, base slot 0); the base
--     seed's tickets (slots 1-8) get realistic states: first responses and resolutions spread
--     around their SLA targets (some breached), most older resolved tickets closed, ~60 % rated
--     (skewed to 4-5; csat_responses kept in step), ~6 % escalated, a few reopened; the open
--     ones are split between an unassigned queue and in_progress / waiting states, assigned
--     round-robin within capacity; teams follow the routing rule; comments: the system's
--     creation note, the agent's first response, a request for information, the resolution;
--   * knowledge base: 190 more articles (KB-1011 ... KB-1200) over the ticket categories, mostly
--     published (some draft, review, archived), with tags, views, votes and earlier versions;
--   * portal: settings for ~60 % of accounts (features, some branding), 8 downloads, portal KB
--     views and searches over 90 days (some searches find nothing: the search gaps).
-- Slot 9 of the base ticket range belongs to the retention seed and is left alone.
CREATE OR REPLACE FUNCTION csmcp.seed_part_support(n integer) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_now timestamptz := now();
    n_agents integer; n_tkt0 integer; n_upd integer; n_com integer; n_kb integer; n_ver integer;
    n_views integer; n_search integer; n_portal integer; n_res integer;
    teams constant text[] := ARRAY['Technical Support', 'Engineering Support', 'Billing Support', 'Customer Success', 'Integration Team',
                                   'Escalation Team', 'Product Support', 'Training Team', 'Data Support', 'General Support'];
    cats constant text[] := ARRAY['technical_issue', 'bug_report', 'feature_request', 'how_to_question', 'account_billing',
                                  'integration_support', 'training_request', 'data_issue', 'performance', 'other'];
    n_extra integer := greatest(2, ceil(n / 100.0)::integer);
    agents text[];
    caps integer[];
    published text[];
BEGIN
    -- Agents ------------------------------------------------------------------------------------
    INSERT INTO support_agents (agent_id, name, email, team, is_senior, max_tickets)
    SELECT 'agt_' || CASE WHEN k < 10 THEN '0' ELSE '' END || k, f || ' ' || l,
           lower(f) || '.' || lower(l) || '.' || k || '@agents.csmcp.test',
           teams[1 + floor(csmcp.seed_rand('sp_team' || k) * 10)::int], csmcp.seed_rand('sp_sen' || k) < 0.25,
           6 + floor(csmcp.seed_rand('sp_cap' || k) * 10)::int
    FROM generate_series(9, 8 + n_extra) k
    CROSS JOIN LATERAL (SELECT (ARRAY['Nora', 'Sam', 'Priya', 'Luca', 'Aisha', 'Ken', 'Marta', 'Yusuf', 'Elena', 'Tariq', 'Hana', 'Diego'])
                                   [1 + floor(csmcp.seed_rand('sp_fn' || k) * 12)::int] AS f,
                               (ARRAY['Nilsen', 'Costa', 'Iyer', 'Romano', 'Bello', 'Sato', 'Kowalski', 'Demir', 'Petrova', 'Aziz', 'Lee', 'Ortega'])
                                   [1 + floor(csmcp.seed_rand('sp_ln' || k) * 12)::int] AS l OFFSET 0) nm
    -- a re-seed also moves agents of an older seed off its placeholder domain
    ON CONFLICT (agent_id) DO UPDATE SET email = EXCLUDED.email
        WHERE support_agents.email IS DISTINCT FROM EXCLUDED.email;
    GET DIAGNOSTICS n_agents = ROW_COUNT;
    INSERT INTO support_agent_expertise (agent_id, category)
    SELECT DISTINCT 'agt_' || CASE WHEN k < 10 THEN '0' ELSE '' END || k, cats[1 + floor(csmcp.seed_rand('sp_exp' || k || '_' || j) * 10)::int]
    FROM generate_series(9, 8 + n_extra) k CROSS JOIN generate_series(1, 3) j
    WHERE j <= 1 + floor(csmcp.seed_rand('sp_nexp' || k) * 3)
    ON CONFLICT DO NOTHING;
    SELECT array_agg(agent_id ORDER BY agent_id), array_agg(max_tickets ORDER BY agent_id) INTO agents, caps
    FROM support_agents WHERE active AND agent_id ~ '^agt_[0-9]+$';

    -- One older, closed ticket per account (slot 0) --------------------------------------------------
    INSERT INTO support_tickets (ticket_id, client_id, subject, description, priority, category, status, requester_email, requester_name,
                                 assigned_agent, sla_first_response_minutes, sla_resolution_minutes, created_at)
    SELECT 'TKT-' || (100000 + s.i * 10), a.client_id,
           (ARRAY['Question about user permissions', 'Scheduled report did not arrive', 'CSV import rejected rows', 'Invoice shows the wrong seat count',
                  'Salesforce sync stopped', 'Request for an admin training', 'Dashboard widget shows no data', 'Webhook retries failing'])
               [1 + floor(csmcp.seed_rand(s.i || 'sp_s0') * 8)::int],
           'Reported by the customer through the portal.',
           pr.p, (ARRAY['how_to_question', 'technical_issue', 'data_issue', 'account_billing', 'integration_support', 'training_request',
                        'bug_report', 'integration_support'])[1 + floor(csmcp.seed_rand(s.i || 'sp_s0') * 8)::int],
           'open', coalesce(a.primary_contact_email, 'contact1@' || replace(a.client_id, '_', '-') || '.test'),
           coalesce(a.primary_contact_name, 'Contact One ' || s.i),
           agents[1 + (s.i % cardinality(agents))], csmcp.sup_sla_first(pr.p), csmcp.sup_sla_resolution(pr.p),
           v_now - make_interval(days => 30 + floor(csmcp.seed_rand(s.i || 'sp_c0') * 330)::int, hours => floor(csmcp.seed_rand(s.i || 'sp_h0') * 24)::int)
    FROM accounts a
    CROSS JOIN LATERAL (SELECT substr(a.client_id, 6)::integer AS i OFFSET 0) s
    CROSS JOIN LATERAL (SELECT CASE WHEN csmcp.seed_rand(s.i || 'sp_p0') < 0.05 THEN 'P1' WHEN csmcp.seed_rand(s.i || 'sp_p0') < 0.35 THEN 'P2'
                                    WHEN csmcp.seed_rand(s.i || 'sp_p0') < 0.85 THEN 'P3' ELSE 'P4' END AS p OFFSET 0) pr
    WHERE a.client_id ~ '^demo_[0-9]+$' AND a.created_at < v_now - interval '30 days'
    ON CONFLICT (ticket_id) DO NOTHING;
    GET DIAGNOSTICS n_tkt0 = ROW_COUNT;

    -- Realistic states for the demo tickets of slots 0-8 --------------------------------------------
    CREATE TEMP TABLE sp_t ON COMMIT DROP AS
    SELECT t.ticket_id, t.created_at, t.priority, t.category, t.sla_first_response_minutes AS fr, t.sla_resolution_minutes AS rs,
           substr(t.ticket_id, 5)::bigint AS num,
           -- resolved already, or older than its resolution target x 0.6-1.3 (a few open ones run late)
           (t.status IN ('resolved', 'closed')
            OR t.created_at < v_now - make_interval(mins => t.sla_resolution_minutes)
                                      * (0.6 + 0.7 * csmcp.seed_rand(t.ticket_id || 'sp_done'))) AS done,
           row_number() OVER (ORDER BY t.created_at, t.ticket_id) AS rn
    FROM support_tickets t
    WHERE t.client_id ~ '^demo_[0-9]+$' AND substr(t.ticket_id, 5)::bigint BETWEEN 100000 AND 20000000
      AND substr(t.ticket_id, 5)::bigint % 10 <> 9;
    UPDATE support_tickets t SET
        status = x.status, first_response_at = x.fra, resolved_at = x.ra, closed_at = x.ca,
        assigned_agent = x.agent,
        assigned_team = CASE WHEN x.esc THEN 'Escalation Team' ELSE csmcp.sup_team(t.priority, t.category) END,
        escalated = x.esc, escalated_at = CASE WHEN x.esc THEN least(coalesce(x.fra, t.created_at) + interval '2 hours', v_now) END,
        escalation_reason = CASE WHEN x.esc THEN (ARRAY['Customer asked for a manager', 'Business-critical workflow blocked', 'Second failed fix',
                                                        'Renewal at stake'])[1 + floor(csmcp.seed_rand(x.ticket_id || 'sp_er') * 4)::int] END,
        resolution_notes = CASE WHEN x.ra IS NOT NULL THEN (ARRAY['Configuration corrected and verified with the customer.',
                                'Fixed in the latest release; customer confirmed.', 'Explained the setting; linked the KB article.',
                                'Data re-imported after correcting the mapping.', 'Workaround provided; engineering ticket linked.'])
                                [1 + floor(csmcp.seed_rand(x.ticket_id || 'sp_rn') * 5)::int] END,
        satisfaction_rating = x.rating, rated_at = CASE WHEN x.rating IS NOT NULL THEN least(x.ra + make_interval(hours => 1 + floor(csmcp.seed_rand(x.ticket_id || 'sp_rh') * 47)::int), v_now) END,
        updated_at = greatest(t.created_at, coalesce(x.ca, x.ra, x.fra, t.created_at))
    FROM (
        SELECT s.ticket_id,
               CASE WHEN s.done AND u.reopen THEN 'reopened' WHEN s.done AND u.closed THEN 'closed' WHEN s.done THEN 'resolved'
                    WHEN u.young AND (u.q < 0.30 OR u.q >= 0.85) THEN 'open' WHEN u.q < 0.60 THEN 'in_progress'
                    WHEN u.q < 0.75 THEN 'waiting_on_customer' WHEN u.q < 0.85 THEN 'waiting_on_engineering' ELSE 'in_progress' END AS status,
               CASE WHEN NOT s.done AND u.young AND (u.q < 0.30 OR u.q >= 0.85) THEN NULL
                    ELSE least(s.created_at + make_interval(secs => s.fr * 60 * u.f), v_now - (v_now - s.created_at) / 2) END AS fra,
               CASE WHEN s.done AND NOT u.reopen THEN greatest(least(s.created_at + make_interval(secs => s.rs * 60 * u.g), v_now - interval '1 hour'),
                                                               s.created_at + make_interval(secs => s.fr * 60 * u.f) + interval '10 minutes') END AS ra,
               CASE WHEN s.done AND u.closed AND NOT u.reopen
                    THEN least(greatest(least(s.created_at + make_interval(secs => s.rs * 60 * u.g), v_now - interval '1 hour'),
                                        s.created_at + make_interval(secs => s.fr * 60 * u.f) + interval '10 minutes') + make_interval(days => 1 + floor(u.q * 3)::int),
                               v_now) END AS ca,
               CASE WHEN NOT s.done AND u.young AND u.q < 0.30 THEN NULL
                    WHEN NOT s.done THEN CASE WHEN s.rn_open <= cardinality(agents) * 6 THEN agents[1 + (s.rn_open % cardinality(agents))] END
                    ELSE agents[1 + floor(csmcp.seed_rand(s.ticket_id || 'sp_ag') * cardinality(agents))::int] END AS agent,
               u.esc,
               CASE WHEN s.done AND NOT u.reopen AND u.r < 0.60 THEN
                    CASE WHEN u.r2 < 0.45 THEN 5 WHEN u.r2 < 0.75 THEN 4 WHEN u.r2 < 0.87 THEN 3 WHEN u.r2 < 0.95 THEN 2 ELSE 1 END END AS rating
        FROM (SELECT sp_t.*, row_number() OVER (PARTITION BY done ORDER BY created_at, ticket_id) AS rn_open FROM sp_t) s
        CROSS JOIN LATERAL (SELECT csmcp.seed_rand(s.ticket_id || 'sp_q') AS q,
                                   -- not answered yet only while younger than 0.5-1.3 x its first-response target
                                   s.created_at > v_now - make_interval(mins => s.fr) * (0.5 + 0.8 * csmcp.seed_rand(s.ticket_id || 'sp_y')) AS young,
                                   0.1 + 1.2 * power(csmcp.seed_rand(s.ticket_id || 'sp_f'), 2) AS f,
                                   0.05 + 1.2 * power(csmcp.seed_rand(s.ticket_id || 'sp_g'), 2) AS g,
                                   s.created_at < v_now - interval '10 days' AND csmcp.seed_rand(s.ticket_id || 'sp_cl') < 0.75 AS closed,
                                   s.created_at > v_now - interval '20 days' AND csmcp.seed_rand(s.ticket_id || 'sp_ro') < 0.03 AS reopen,
                                   csmcp.seed_rand(s.ticket_id || 'sp_es') < 0.06 AS esc,
                                   csmcp.seed_rand(s.ticket_id || 'sp_r') AS r, csmcp.seed_rand(s.ticket_id || 'sp_r2') AS r2 OFFSET 0) u
    ) x
    WHERE t.ticket_id = x.ticket_id;
    GET DIAGNOSTICS n_upd = ROW_COUNT;
    -- Ticket CSAT responses follow the ticket ratings.
    DELETE FROM csat_responses c USING sp_t s WHERE c.ticket_id = s.ticket_id;
    INSERT INTO csat_responses (response_id, client_id, ticket_id, score, responded_at)
    SELECT 'CSAT-' || t.ticket_id, t.client_id, t.ticket_id, t.satisfaction_rating, t.rated_at
    FROM support_tickets t JOIN sp_t s USING (ticket_id) WHERE t.satisfaction_rating IS NOT NULL
    ON CONFLICT (response_id) DO UPDATE SET score = EXCLUDED.score, responded_at = EXCLUDED.responded_at;

    -- Comments ------------------------------------------------------------------------------------
    INSERT INTO ticket_comments (ticket_id, author_email, author_name, author_type, content, is_public, created_at)
    SELECT t.ticket_id, 'system', 'csmcp (seed)', 'system',
           format('Ticket created: priority %s, category %s, team %s; SLA first response %s min, resolution %s min',
                  t.priority, t.category, t.assigned_team, t.sla_first_response_minutes, t.sla_resolution_minutes), false, t.created_at
    FROM support_tickets t JOIN sp_t s USING (ticket_id);
    GET DIAGNOSTICS n_com = ROW_COUNT;
    INSERT INTO ticket_comments (ticket_id, author_email, author_name, author_type, content, is_public, created_at)
    SELECT t.ticket_id, a.email, a.name, 'agent', c.content, true, c.at
    FROM support_tickets t JOIN sp_t s USING (ticket_id) JOIN support_agents a ON a.agent_id = t.assigned_agent
    CROSS JOIN LATERAL (VALUES
        (t.first_response_at, 'Thanks for reaching out - I am looking into "' || t.subject || '" and will update you shortly.'),
        (CASE WHEN t.status = 'waiting_on_customer' THEN t.first_response_at + (v_now - t.first_response_at) / 2 END,
         'Could you send a screenshot and the time it happened, so we can reproduce it?'),
        (t.resolved_at, 'Resolved: ' || coalesce(t.resolution_notes, 'done') || ' Let us know if anything else comes up.')) c(at, content)
    WHERE c.at IS NOT NULL;
    GET DIAGNOSTICS n_views = ROW_COUNT;
    n_com := n_com + n_views;

    -- Knowledge base ------------------------------------------------------------------------------
    INSERT INTO kb_articles (article_id, title, summary, content, category, subcategory, status, author, version, view_count,
                             helpful_votes, not_helpful_votes, created_at, updated_at, published_at)
    SELECT 'KB-' || (1010 + k), x.title, x.summary, x.content, o.cat, o.sub, x.status,
           (ARRAY['docs-team', 'Maya Patel', 'Grace Kim', 'Omar Haddad', 'Ana Souza'])[1 + floor(csmcp.seed_rand('sp_kau' || k) * 5)::int],
           x.version, x.views, x.helpful, x.views_nh, x.created, x.created + make_interval(days => floor(csmcp.seed_rand('sp_kup' || k) * 25)::int),
           CASE WHEN x.status IN ('published', 'archived') THEN x.created + interval '1 day' END
    FROM generate_series(1, 190) k
    CROSS JOIN LATERAL (SELECT ((k - 1) / 6) + 1 AS oi, ((k - 1) % 6) + 1 AS ti OFFSET 0) ix
    JOIN (VALUES
        (1, 'single sign-on (SSO) login', 'technical_issue', 'authentication'), (2, 'password reset e-mails', 'technical_issue', 'authentication'),
        (3, 'two-factor authentication', 'technical_issue', 'authentication'), (4, 'browser cache and cookies', 'technical_issue', 'browser'),
        (5, 'slow dashboards', 'performance', 'dashboards'), (6, 'report generation timeouts', 'performance', 'reports'),
        (7, 'large data exports', 'performance', 'exports'), (8, 'bug reports with screenshots', 'bug_report', 'reporting'),
        (9, 'known issues in the latest release', 'bug_report', 'releases'), (10, 'feature requests', 'feature_request', 'roadmap'),
        (11, 'roadmap voting', 'feature_request', 'roadmap'), (12, 'user roles and permissions', 'how_to_question', 'administration'),
        (13, 'custom dashboards', 'how_to_question', 'dashboards'), (14, 'scheduled reports', 'how_to_question', 'reports'),
        (15, 'saved filters', 'how_to_question', 'search'), (16, 'invoices and receipts', 'account_billing', 'invoices'),
        (17, 'billing details and payment methods', 'account_billing', 'payments'), (18, 'plan changes', 'account_billing', 'plans'),
        (19, 'adding seats', 'account_billing', 'plans'), (20, 'the Salesforce sync', 'integration_support', 'salesforce'),
        (21, 'Slack notifications', 'integration_support', 'slack'), (22, 'REST API authentication', 'integration_support', 'api'),
        (23, 'webhooks', 'integration_support', 'api'), (24, 'onboarding webinars', 'training_request', 'webinars'),
        (25, 'the certification program', 'training_request', 'certification'), (26, 'CSV imports', 'data_issue', 'imports'),
        (27, 'duplicate records', 'data_issue', 'data quality'), (28, 'data retention settings', 'data_issue', 'retention'),
        (29, 'security and compliance (SOC 2)', 'other', 'security'), (30, 'contacting support', 'other', 'support'),
        (31, 'mobile app notifications', 'technical_issue', 'mobile'), (32, 'time zones in reports', 'how_to_question', 'reports')
    ) o(oi, obj, cat, sub) ON o.oi = ix.oi
    CROSS JOIN LATERAL (SELECT
        (ARRAY['How to configure ' || o.obj, 'Troubleshooting ' || o.obj, upper(left(o.obj, 1)) || substr(o.obj, 2) || ': frequently asked questions',
               'Best practices for ' || o.obj, 'Getting started with ' || o.obj, upper(left(o.obj, 1)) || substr(o.obj, 2) || ' explained'])[ix.ti] AS title,
        (ARRAY['Step-by-step set-up of ', 'Common problems with ', 'Answers to the questions we hear most about ', 'Recommendations for ',
               'A first walk-through of ', 'How '])[ix.ti] || o.obj || (ARRAY['.', ' and how to fix them.', '.', ' from our support team.', '.', ' works.'])[ix.ti] AS summary,
        'This article covers ' || o.obj || ' (' || replace(o.cat, '_', ' ') || ', ' || o.sub || '). ' ||
        (ARRAY['Open Settings, choose the ' || o.sub || ' section and follow the steps below. Save, then test with one user before rolling out.',
               'If ' || o.obj || ' does not behave as expected, check the status page, clear the browser cache, confirm the user''s role, and retry. Still failing? Open a ticket with the time and a screenshot.',
               'Who can change it? Admins. Does it cost extra? No. Where is it logged? In the audit log. How long does a change take? A few minutes.',
               'Keep the set-up simple, review it every quarter, document owners, and remove what nobody uses.',
               'Start here: the overview, the first configuration, and where to go next for ' || o.sub || '.',
               'The design behind ' || o.obj || ', its limits, and the settings that change its behaviour.'])[ix.ti] AS content,
        CASE WHEN csmcp.seed_rand('sp_kst' || k) < 0.85 THEN 'published' WHEN csmcp.seed_rand('sp_kst' || k) < 0.92 THEN 'draft'
             WHEN csmcp.seed_rand('sp_kst' || k) < 0.96 THEN 'review' ELSE 'archived' END AS status,
        1 + floor(power(csmcp.seed_rand('sp_kv' || k), 2) * 4)::int AS version,
        v_now - make_interval(days => 30 + floor(csmcp.seed_rand('sp_kc' || k) * 670)::int) AS created OFFSET 0) x0
    CROSS JOIN LATERAL (SELECT x0.*, CASE WHEN x0.status = 'published' THEN 40 + floor(power(csmcp.seed_rand('sp_kvw' || k), 2) * 3000)::int
                                          WHEN x0.status = 'archived' THEN 200 + floor(csmcp.seed_rand('sp_kvw' || k) * 500)::int ELSE 0 END AS views OFFSET 0) x1
    CROSS JOIN LATERAL (SELECT x1.*, floor(x1.views / 25.0 * (0.4 + 0.55 * csmcp.seed_rand('sp_kh' || k)))::int AS helpful,
                               floor(x1.views / 25.0 * (1 - (0.4 + 0.55 * csmcp.seed_rand('sp_kh' || k))))::int AS views_nh OFFSET 0) x
    ON CONFLICT (article_id) DO NOTHING;
    GET DIAGNOSTICS n_kb = ROW_COUNT;
    INSERT INTO kb_article_tags (article_id, tag)
    SELECT DISTINCT a.article_id, g
    FROM kb_articles a CROSS JOIN LATERAL unnest(ARRAY[a.category, lower(a.subcategory),
         (ARRAY['setup', 'troubleshooting', 'faq', 'best-practices', 'getting-started', 'concepts'])[((substr(a.article_id, 4)::int - 1011) % 6) + 1]]) g
    WHERE substr(a.article_id, 4)::int BETWEEN 1011 AND 1200 AND g IS NOT NULL
    ON CONFLICT DO NOTHING;
    INSERT INTO kb_article_versions (article_id, version, title, summary, content, category, subcategory, tags, status, saved_at, saved_by)
    SELECT a.article_id, v, a.title, a.summary, a.content || ' (wording of version ' || v || ')', a.category, a.subcategory,
           ARRAY[a.category], a.status, a.created_at + make_interval(days => v * 3), a.author
    FROM kb_articles a CROSS JOIN LATERAL generate_series(1, a.version - 1) v
    WHERE substr(a.article_id, 4)::int BETWEEN 1011 AND 1200
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS n_ver = ROW_COUNT;
    SELECT array_agg(article_id ORDER BY article_id) INTO published FROM kb_articles WHERE status = 'published';

    -- Portal: settings, downloads, views and searches -------------------------------------------------
    INSERT INTO portal_settings (client_id, features, branding, updated_at)
    SELECT a.client_id,
           ARRAY['tickets', 'kb'] || CASE WHEN csmcp.seed_rand(s.i || 'sp_fd') < 0.5 THEN ARRAY['downloads'] ELSE '{}' END
               || CASE WHEN a.tier IN ('professional', 'enterprise') AND csmcp.seed_rand(s.i || 'sp_fa') < 0.6 THEN ARRAY['api_access'] ELSE '{}' END
               || CASE WHEN csmcp.seed_rand(s.i || 'sp_fc') < 0.25 THEN ARRAY['chat'] ELSE '{}' END,
           CASE WHEN csmcp.seed_rand(s.i || 'sp_br') < 0.5 THEN jsonb_build_object('company_name', a.company_name,
                'primary_color', (ARRAY['#1F6FEB', '#D73A49', '#2DA44E', '#8250DF', '#BF8700', '#0A3069'])[1 + floor(csmcp.seed_rand(s.i || 'sp_col') * 6)::int])
                ELSE '{}' END,
           v_now - make_interval(days => floor(csmcp.seed_rand(s.i || 'sp_pu') * 200)::int)
    FROM accounts a CROSS JOIN LATERAL (SELECT substr(a.client_id, 6)::integer AS i OFFSET 0) s
    WHERE a.client_id ~ '^demo_[0-9]+$' AND csmcp.seed_rand(s.i || 'sp_portal') < 0.6
    ON CONFLICT (client_id) DO NOTHING;
    GET DIAGNOSTICS n_portal = ROW_COUNT;
    INSERT INTO portal_resources (resource_id, resource_type, title, description, url, created_at)
    SELECT 'RES-' || (1000 + k), 'downloads', d.title, d.descr, 'https://downloads.csmcp.test/' || d.file, v_now - make_interval(days => 20 * k)
    FROM (VALUES (1, 'Administrator guide (PDF)', 'Everything an admin configures, in one document', 'admin-guide.pdf'),
                 (2, 'Data import template (CSV)', 'The columns the CSV import expects', 'import-template.csv'),
                 (3, 'API client for Python', 'A small client for the REST API', 'csapi-python.zip'),
                 (4, 'Security whitepaper', 'How data is stored, encrypted and audited', 'security-whitepaper.pdf'),
                 (5, 'Onboarding checklist', 'The steps of the first 90 days', 'onboarding-checklist.pdf'),
                 (6, 'Desktop exporter for Windows', 'Scheduled exports to a local folder', 'exporter-setup.msi'),
                 (7, 'Release notes 2026', 'Every change of the year', 'release-notes-2026.pdf'),
                 (8, 'Brand kit', 'Logos and colours for internal announcements', 'brand-kit.zip')) d(k, title, descr, file)
    ON CONFLICT (resource_id) DO NOTHING;
    GET DIAGNOSTICS n_res = ROW_COUNT;
    INSERT INTO kb_article_views (article_id, client_id, viewed_at)
    SELECT published[1 + floor(csmcp.seed_rand(s.i || 'sp_va' || j) * cardinality(published))::int], a.client_id,
           v_now - make_interval(mins => floor(csmcp.seed_rand(s.i || 'sp_vt' || j) * 90 * 1440)::int)
    FROM accounts a CROSS JOIN LATERAL (SELECT substr(a.client_id, 6)::integer AS i OFFSET 0) s
    CROSS JOIN LATERAL generate_series(1, floor(power(csmcp.seed_rand(s.i || 'sp_nv'), 2) * 7)::int) j
    WHERE a.client_id ~ '^demo_[0-9]+$' AND cardinality(published) > 0;
    GET DIAGNOSTICS n_views = ROW_COUNT;
    INSERT INTO kb_searches (query, category, results, client_id, searched_at)
    WITH q AS MATERIALIZED (
        SELECT k, query, (SELECT count(*) FROM kb_articles a WHERE a.status = 'published' AND a.search_vector @@ csmcp.kb_query(query)) AS results
        FROM (VALUES (0, 'how to update billing'), (1, 'sso login error'), (2, 'export to csv'), (3, 'slack notifications not working'),
                     (4, 'add more seats'), (5, 'api token'), (6, 'scheduled report missing'), (7, 'duplicate contacts'),
                     (8, 'reset password'), (9, 'salesforce sync'), (10, 'sandbox environment'), (11, 'gdpr data processing agreement'),
                     (12, 'offline mode'), (13, 'dark mode'), (14, 'invoice'), (15, 'webhook retries'), (16, 'permissions for managers'),
                     (17, 'certification exam'), (18, 'audit log export'), (19, 'time zone')) v(k, query)
    )
    SELECT q.query, NULL, q.results, a.client_id, v_now - make_interval(mins => floor(csmcp.seed_rand(s.i || 'sp_st' || j) * 90 * 1440)::int)
    FROM accounts a CROSS JOIN LATERAL (SELECT substr(a.client_id, 6)::integer AS i OFFSET 0) s
    CROSS JOIN LATERAL generate_series(1, floor(csmcp.seed_rand(s.i || 'sp_ns') * 6)::int) j
    JOIN q ON q.k = floor(csmcp.seed_rand(s.i || 'sp_sq' || j) * 20)::int
    WHERE a.client_id ~ '^demo_[0-9]+$';
    GET DIAGNOSTICS n_search = ROW_COUNT;
    ANALYZE support_tickets; ANALYZE kb_articles; ANALYZE kb_article_views;

    RETURN jsonb_build_object('agents', n_agents, 'tickets_added', n_tkt0, 'tickets_shaped', n_upd, 'ticket_comments', n_com,
        'kb_articles', n_kb, 'kb_versions', n_ver, 'kb_views', n_views, 'kb_searches', n_search, 'portal_settings', n_portal,
        'portal_downloads', n_res);
END $$;

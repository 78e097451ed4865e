-- seed/expansion.sql - csmcp.seed_part_expansion(n): the expansion & revenue part of the demo
-- data (issue 14). Deterministic (csmcp.seed_rand), demo accounts only. After the base seed:
--   * the product catalogue (11 products in 6 families, prerequisites) and the products of every
--     demo contract: the base platform, then each add-on with a chance rising with the tier,
--     only when its prerequisites are on the contract;
--   * revenue history consistent with the contracts (the sum of an account's arr_delta is its
--     current ARR, 0 once churned): ~20 % of renewed accounts renewed smaller (previous year
--     1.15 x, a contraction at renewal instead of the base expansion); ~25 % of first-year
--     accounts added seats mid-term (the 'new' event smaller, an expansion later); ~10 % cut
--     seats mid-term (a contraction); every churned account a churn event on its churn date
--     (lifecycle transition to churned);
--   * a quarter of the accounts using >= 55 % of their seats (~6 % of all) get fewer seats than
--     they use (health recalculated), so user expansion has real candidates;
--   * open expansion opportunities: the three identification tools over all accounts, plus
--     professional services for onboarding accounts and usage expansion for growing ones;
--   * one renewal tracking and forecasting run (reminders and forecast history).
CREATE OR REPLACE FUNCTION csmcp.seed_part_expansion(n integer) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    t date := csmcp.today();
    n_cp integer;
    n_ctr integer := 0;
    n_mid integer := 0;
    n_cut integer := 0;
    n_churn integer := 0;
    n_ps integer := 0;
    n_ue integer := 0;
    n_full integer := 0;
    full_ids text[];
    up jsonb; cs jsonb; ex jsonb; tr jsonb; fc jsonb;
BEGIN
    INSERT INTO products (product_id, name, family, list_price, is_base) VALUES
        ('core_platform', 'Core platform', 'platform', 0, true),
        ('advanced_analytics', 'Advanced Analytics', 'analytics', 24000, false),
        ('predictive_insights', 'Predictive Insights', 'analytics', 18000, false),
        ('api_suite', 'API Suite', 'integration', 18000, false),
        ('salesforce_connector', 'Salesforce Connector', 'integration', 9000, false),
        ('slack_connector', 'Slack Connector', 'integration', 4000, false),
        ('workflow_automation', 'Workflow Automation', 'automation', 15000, false),
        ('ai_assistant', 'AI Assistant', 'automation', 12000, false),
        ('sso_security', 'SSO & Access Control', 'security', 8000, false),
        ('audit_compliance', 'Audit & Compliance', 'security', 14000, false),
        ('premium_support', 'Premium Support', 'services', 10000, false)
    ON CONFLICT (product_id) DO NOTHING;
    INSERT INTO product_prerequisites (product_id, requires) VALUES
        ('advanced_analytics', 'core_platform'), ('predictive_insights', 'advanced_analytics'),
        ('api_suite', 'core_platform'), ('salesforce_connector', 'api_suite'), ('slack_connector', 'core_platform'),
        ('workflow_automation', 'core_platform'), ('ai_assistant', 'workflow_automation'),
        ('sso_security', 'core_platform'), ('audit_compliance', 'sso_security'), ('premium_support', 'core_platform')
    ON CONFLICT DO NOTHING;

    -- Contract products: base first, then add-ons level by level (prerequisites on the contract).
    INSERT INTO contract_products (contract_id, product_id, added_on)
    SELECT contract_id, 'core_platform', start_date FROM contracts WHERE client_id LIKE 'demo\_%'
    ON CONFLICT DO NOTHING;
    FOR lvl IN 1..2 LOOP
        INSERT INTO contract_products (contract_id, product_id, added_on)
        SELECT k.contract_id, p.product_id, k.start_date
        FROM contracts k JOIN accounts a ON a.client_id = k.client_id
        CROSS JOIN products p
        WHERE k.client_id LIKE 'demo\_%' AND NOT p.is_base
          AND (SELECT count(*) FROM product_prerequisites pr WHERE pr.product_id = p.product_id
               AND pr.requires <> 'core_platform') = lvl - 1
          AND NOT EXISTS (SELECT 1 FROM product_prerequisites pr WHERE pr.product_id = p.product_id
                          AND NOT EXISTS (SELECT 1 FROM contract_products c2 WHERE c2.contract_id = k.contract_id
                                          AND c2.product_id = pr.requires))
          -- the same draw for an account's current and previous contract (the mix persists)
          AND csmcp.seed_rand(k.client_id || 'prod' || p.product_id)
              < CASE a.tier WHEN 'starter' THEN 0.15 WHEN 'standard' THEN 0.30 WHEN 'professional' THEN 0.45 ELSE 0.60 END
                * CASE p.family WHEN 'integration' THEN 1.3 WHEN 'analytics' THEN 1.1 WHEN 'services' THEN 0.8 ELSE 1.0 END
                * CASE WHEN lvl = 2 THEN 1.4 ELSE 1.0 END
        ON CONFLICT DO NOTHING;
    END LOOP;
    SELECT count(*) INTO n_cp FROM contract_products WHERE contract_id LIKE 'CTR-demo\_%';

    -- Renewed smaller: previous year 1.15 x the current ARR, contraction at renewal.
    WITH sel AS (
        SELECT p.client_id, p.contract_id, c.contract_value AS arr, c.start_date,
               round(c.contract_value * 1.15, -2) AS prev_arr
        FROM contracts p JOIN contracts c ON c.contract_id = 'CTR-' || p.client_id
        WHERE p.client_id LIKE 'demo\_%' AND p.contract_id = 'CTR-' || p.client_id || '-prev' AND c.status = 'active'
          AND csmcp.seed_rand(p.client_id || 'contr') < 0.20
    ),
    upd AS (UPDATE contracts k SET contract_value = sel.prev_arr FROM sel WHERE k.contract_id = sel.contract_id RETURNING 1),
    ev_new AS (UPDATE revenue_events e SET arr_delta = sel.prev_arr FROM sel
               WHERE e.client_id = sel.client_id AND e.kind = 'new' RETURNING 1),
    ev_del AS (DELETE FROM revenue_events e USING sel WHERE e.client_id = sel.client_id AND e.kind = 'expansion' RETURNING 1),
    ev_ins AS (INSERT INTO revenue_events (client_id, kind, arr_delta, occurred_on, note)
               SELECT client_id, 'contraction', arr - prev_arr, start_date, 'renewed with fewer seats' FROM sel RETURNING 1)
    SELECT count(*) INTO n_ctr FROM ev_ins;

    -- First-year accounts (one contract): seats added mid-term, or cut mid-term.
    WITH sel AS (
        SELECT c.client_id, c.contract_value AS arr, c.start_date, csmcp.seed_rand(c.client_id || 'mid') AS r,
               round(c.contract_value * (0.10 + 0.20 * csmcp.seed_rand(c.client_id || 'mids')::numeric), -2) AS x
        FROM contracts c
        WHERE c.client_id LIKE 'demo\_%' AND c.contract_id = 'CTR-' || c.client_id AND c.status = 'active'
          AND NOT EXISTS (SELECT 1 FROM contracts p WHERE p.contract_id = 'CTR-' || c.client_id || '-prev')
          AND t - c.start_date >= 30
    ),
    grow AS (SELECT * FROM sel WHERE r < 0.25 AND x > 0 AND x < arr),
    cut AS (SELECT * FROM sel WHERE r >= 0.25 AND r < 0.35 AND x > 0),
    g_new AS (UPDATE revenue_events e SET arr_delta = e.arr_delta - grow.x FROM grow
              WHERE e.client_id = grow.client_id AND e.kind = 'new' RETURNING 1),
    g_ins AS (INSERT INTO revenue_events (client_id, kind, arr_delta, occurred_on, note)
              SELECT client_id, 'expansion', x, start_date + 7 + floor(csmcp.seed_rand(client_id || 'midd') * (t - start_date - 7))::int,
                     'seats added mid-term' FROM grow RETURNING 1),
    c_new AS (UPDATE revenue_events e SET arr_delta = e.arr_delta + cut.x FROM cut
              WHERE e.client_id = cut.client_id AND e.kind = 'new' RETURNING 1),
    c_ins AS (INSERT INTO revenue_events (client_id, kind, arr_delta, occurred_on, note)
              SELECT client_id, 'contraction', -x, start_date + 7 + floor(csmcp.seed_rand(client_id || 'midd') * (t - start_date - 7))::int,
                     'seats removed mid-term' FROM cut RETURNING 1)
    SELECT (SELECT count(*) FROM g_ins), (SELECT count(*) FROM c_ins) INTO n_mid, n_cut;

    -- Churned accounts: their ARR leaves on their churn date (the lifecycle transition to
    -- churned, as the retention tools see it; without one, when usage stopped 40 days ago),
    -- never before their last revenue event.
    INSERT INTO revenue_events (client_id, kind, arr_delta, occurred_on, note)
    SELECT e.client_id, 'churn', -sum(e.arr_delta),
           least(t, greatest(coalesce((SELECT (max(l.changed_at) AT TIME ZONE 'UTC')::date FROM lifecycle_transitions l
                                       WHERE l.client_id = e.client_id AND l.to_stage = 'churned'), t - 40),
                             max(e.occurred_on) + 1)), 'contract cancelled'
    FROM revenue_events e JOIN contracts c ON c.contract_id = 'CTR-' || e.client_id AND c.status = 'cancelled'
    WHERE e.client_id LIKE 'demo\_%'
    GROUP BY e.client_id HAVING sum(e.arr_delta) > 0;
    GET DIAGNOSTICS n_churn = ROW_COUNT;
    ANALYZE products; ANALYZE contract_products; ANALYZE revenue_events;

    -- A quarter of the accounts using >= 55 % of their seats bought fewer than they use: seats become the
    -- 30-day average daily active users / (0.90..1.05), so user expansion has real candidates;
    -- their health is recalculated with the new seat count.
    WITH busy AS (
        SELECT u.client_id, u.contract_id,
               ceil(u.avg_dau / (0.90 + 0.15 * csmcp.seed_rand(u.client_id || 'full')::numeric))::integer AS seats
        FROM csmcp.exp_utilisation(NULL, t) u
        WHERE u.client_id LIKE 'demo\_%' AND u.utilisation >= 0.55 AND csmcp.seed_rand(u.client_id || 'tight') < 0.25
    ),
    upd AS (UPDATE contracts k SET licensed_seats = busy.seats FROM busy
            WHERE k.contract_id = busy.contract_id AND busy.seats > 0 RETURNING k.client_id)
    SELECT count(*), coalesce(array_agg(client_id), '{}') INTO n_full, full_ids FROM upd;
    PERFORM csmcp.seed_health_bulk(full_ids, 'seed');  -- = calculate_health_score per account (seed/_lib.sql)

    -- Opportunities found by the tools over the demo data.
    up := csmcp.tool_identify_upsell_opportunities('{"limit": 1}', 'seed');
    cs := csmcp.tool_identify_crosssell_opportunities('{"limit": 1}', 'seed');
    ex := csmcp.tool_identify_expansion_opportunities('{"limit": 1, "opportunity_types": ["user_expansion"]}', 'seed');
    -- Professional services for onboarding accounts (professional/enterprise): 10 % of ARR.
    INSERT INTO expansion_opportunities (opportunity_id, client_id, name, expansion_type, estimated_value, probability, stage,
                                         expected_close_date, opportunity_key, current_arr, details, identified_by)
    SELECT 'OPP-' || nextval('expansion_opportunity_seq'), a.client_id, 'Implementation acceleration package',
           'professional_services', round(c.contract_value * 0.10, -2), 0.50,
           (ARRAY['identified', 'qualified', 'proposal'])[1 + floor(csmcp.seed_rand(a.client_id || 'pss') * 3)::int],
           t + 30 + floor(csmcp.seed_rand(a.client_id || 'psd') * 60)::int, 'professional_services:implementation',
           c.contract_value, jsonb_build_object('basis', '10 % of ARR for an onboarding account'), 'seed'
    FROM accounts a JOIN contracts c ON c.client_id = a.client_id AND c.status = 'active'
    WHERE a.client_id LIKE 'demo\_%' AND a.lifecycle_stage = 'onboarding' AND a.tier IN ('professional', 'enterprise')
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS n_ps = ROW_COUNT;
    -- Usage expansion for accounts whose daily active users grew > 10 % (last 15 days vs the 15 before): 15 % of ARR.
    INSERT INTO expansion_opportunities (opportunity_id, client_id, name, expansion_type, estimated_value, probability, stage,
                                         expected_close_date, opportunity_key, current_arr, details, identified_by)
    SELECT 'OPP-' || nextval('expansion_opportunity_seq'), g.client_id, 'Usage volume add-on', 'usage_expansion',
           round(c.contract_value * 0.15, -2), 0.55,
           (ARRAY['identified', 'qualified'])[1 + floor(csmcp.seed_rand(g.client_id || 'ues') * 2)::int],
           t + 45, 'usage_expansion:volume', c.contract_value,
           jsonb_build_object('recent_dau_sum', g.recent, 'previous_dau_sum', g.before), 'seed'
    FROM (SELECT client_id, sum(active_users) FILTER (WHERE day > t - 15) AS recent,
                 sum(active_users) FILTER (WHERE day <= t - 15) AS before
          FROM usage_daily WHERE client_id LIKE 'demo\_%' AND day > t - 30 AND day <= t GROUP BY 1) g
    JOIN contracts c ON c.client_id = g.client_id AND c.status = 'active'
    WHERE g.before > 0 AND g.recent > g.before * 1.10
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS n_ue = ROW_COUNT;
    ANALYZE expansion_opportunities;

    tr := csmcp.tool_track_renewals('{"days_until_renewal": 90, "limit": 1}', 'seed');
    fc := csmcp.tool_forecast_renewals('{"forecast_period_days": 180, "limit": 1}', 'seed');

    RETURN jsonb_build_object(
        'products', (SELECT count(*) FROM products),
        'contract_products', n_cp,
        'renewal_contractions', n_ctr,
        'mid_term_expansions', n_mid,
        'mid_term_contractions', n_cut,
        'churn_events', n_churn,
        'seat_constrained_accounts', n_full,
        'upsell_opportunities', up #> '{opportunity_summary,total_opportunities}',
        'crosssell_opportunities', cs #> '{opportunity_summary,total_opportunities}',
        'user_expansion_opportunities', ex #> '{detection,found}',
        'professional_services_opportunities', n_ps,
        'usage_expansion_opportunities', n_ue,
        'renewal_reminders', (SELECT count(*) FROM renewal_reminders WHERE client_id LIKE 'demo\_%'),
        'renewal_forecasts', (SELECT count(*) FROM renewal_forecasts WHERE client_id LIKE 'demo\_%'));
END $$;

-- seed/scorecards.sql - csmcp.seed_part_scorecards(n): the scorecards part of the demo data
-- (issue 24). Deterministic (csmcp.seed_rand), demo accounts only:
--   * account hierarchies: the first enterprise account of each industry heads a group; ~6 % of
--     the other accounts of that industry are its children (group heads are never children, so
--     no cycle);
--   * manual overrides on ~2 % of the accounts: 15-35 points below the computed score, set 0-20
--     days ago for 5-45 days (some have expired already: history the effective score ignores);
--   * two example scorecards, created inactive (activating one changes calculate_health_score for
--     the accounts it matches; the demo's stored scores stay those of the default model).
CREATE OR REPLACE FUNCTION csmcp.seed_part_scorecards(n integer) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    n_parents integer;
    n_overrides integer;
    n_cards integer := 0;
BEGIN
    WITH heads AS (
        SELECT DISTINCT ON (industry) industry, client_id FROM accounts
         WHERE client_id LIKE 'demo\_%' AND tier = 'enterprise' ORDER BY industry, client_id
    )
    INSERT INTO account_parents (client_id, parent_id, set_by, set_at)
    SELECT a.client_id, h.client_id, 'seed', now() - make_interval(days => (csmcp.seed_rand('sc_parent_at:' || a.client_id) * 300)::integer)
      FROM accounts a JOIN heads h ON h.industry = a.industry
     WHERE a.client_id LIKE 'demo\_%' AND a.client_id NOT IN (SELECT client_id FROM heads)
       AND csmcp.seed_rand('sc_parent:' || a.client_id) < 0.06
    ON CONFLICT (client_id) DO NOTHING;
    GET DIAGNOSTICS n_parents = ROW_COUNT;

    WITH pick AS (
        SELECT a.client_id, a.health_score,
               now() - make_interval(secs => csmcp.seed_rand('sc_ov_at:' || a.client_id) * 20 * 86400) AS set_at,
               5 + csmcp.seed_rand('sc_ov_len:' || a.client_id) * 40 AS days
          FROM accounts a
         WHERE a.client_id LIKE 'demo\_%' AND csmcp.seed_rand('sc_override:' || a.client_id) < 0.02
           AND NOT EXISTS (SELECT 1 FROM health_overrides o WHERE o.client_id = a.client_id AND o.cleared_at IS NULL)
    )
    INSERT INTO health_overrides (client_id, score, reason, set_by, set_at, expires_at, cleared_at, cleared_by, clear_reason)
    SELECT p.client_id,
           greatest(0, p.health_score - 15 - (csmcp.seed_rand('sc_ov_pts:' || p.client_id) * 20)::integer),
           CASE WHEN csmcp.seed_rand('sc_ov_reason:' || p.client_id) < 0.5
                THEN 'Executive sponsor left; renewal at risk until the new sponsor is engaged'
                ELSE 'Open escalation on data quality; score held down until it is resolved' END,
           'seed', p.set_at, p.set_at + make_interval(secs => p.days * 86400),
           NULL, NULL, NULL
      FROM pick p;
    GET DIAGNOSTICS n_overrides = ROW_COUNT;

    IF NOT EXISTS (SELECT 1 FROM health_scorecards WHERE created_by = 'seed') THEN
        INSERT INTO health_scorecards (scorecard_id, version, name, weights, criteria, priority,
                                       missing_input_policy, grading, status, created_by)
        VALUES ('SC-' || nextval('health_scorecard_seq'), 1, 'Enterprise: adoption and support',
                '{"usage": 0.4, "engagement": 0.2, "support": 0.25, "satisfaction": 0.15}',
                '{"tier": "enterprise"}', 10, 'redistribute',
                '[{"min": 0, "max": 54, "label": "at risk", "color": "red"},
                  {"min": 55, "max": 74, "label": "watch", "color": "amber"},
                  {"min": 75, "max": 100, "label": "healthy", "color": "green"}]', 'inactive', 'seed'),
               ('SC-' || nextval('health_scorecard_seq'), 1, 'Onboarding: usage first',
                '{"usage": 0.6, "engagement": 0.4}', '{"lifecycle_stage": "onboarding"}', 20, 'neutral',
                '[{"min": 0, "max": 49, "label": "critical", "color": "red"},
                  {"min": 50, "max": 64, "label": "high", "color": "orange"},
                  {"min": 65, "max": 79, "label": "medium", "color": "yellow"},
                  {"min": 80, "max": 100, "label": "low", "color": "green"}]', 'inactive', 'seed');
        n_cards := 2;
    END IF;
    RETURN jsonb_build_object('account_parents', n_parents, 'health_overrides', n_overrides,
                              'scorecards', n_cards);
END $$;

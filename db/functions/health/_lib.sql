-- Per-account value used by segmentation: ARR of the active contract (0 without one).
CREATE OR REPLACE VIEW csmcp.account_values AS
    SELECT a.client_id, a.client_name, a.industry, a.tier, a.lifecycle_stage, a.status, a.health_score,
           coalesce(c.contract_value, 0) AS arr, c.licensed_seats
    FROM accounts a LEFT JOIN contracts c ON c.client_id = a.client_id AND c.status = 'active';

CREATE OR REPLACE FUNCTION csmcp.adoption_milestones_all()
RETURNS TABLE (client_id text, milestone text, name text, target_days integer, achieved_on date, acc_start date)
LANGUAGE sql STABLE AS $$
    WITH acc AS (
        SELECT a.client_id, coalesce(cs.s, (a.created_at AT TIME ZONE 'UTC')::date) AS acc_start, c.licensed_seats
        FROM accounts a
        LEFT JOIN (SELECT client_id, min(start_date) AS s FROM contracts GROUP BY 1) cs USING (client_id)
        LEFT JOIN contracts c ON c.client_id = a.client_id AND c.status = 'active'
        WHERE a.status <> 'churned'
    ),
    core AS (SELECT count(*) AS n FROM features WHERE is_core),
    -- m1 (first day with events) and m3 (first day with half the seats active) in one pass
    -- over usage_daily, joined to the small tables (the accounts of acc, their seats) so that the
    -- 860K usage rows are the probe side; only the accounts of acc are reported.
    um AS (
        SELECT u.client_id, min(u.day) FILTER (WHERE u.events > 0) AS m1,
               min(u.day) FILTER (WHERE u.active_users >= x.seats_half) AS m3
        FROM usage_daily u JOIN (
            -- the threshold of m3, an integer (ceil), compared as one: no numeric per usage row
            SELECT a.client_id, coalesce(ceil(c.licensed_seats * 0.5), 5)::integer AS seats_half
            FROM accounts a LEFT JOIN contracts c ON c.client_id = a.client_id AND c.status = 'active'
            WHERE a.status <> 'churned') x ON x.client_id = u.client_id
        GROUP BY 1
    ),
    d AS (
        SELECT client_id, 'm1' AS m, m1 AS d FROM um WHERE m1 IS NOT NULL
        UNION ALL
        SELECT client_id, 'm2', first_used_on FROM (
            SELECT client_id, first_used_on, row_number() OVER (PARTITION BY client_id ORDER BY first_used_on) AS rn
            FROM feature_adoption) x WHERE rn = 3
        UNION ALL
        SELECT client_id, 'm3', m3 FROM um WHERE m3 IS NOT NULL
        UNION ALL
        SELECT fa.client_id, 'm4', max(fa.first_used_on) FROM feature_adoption fa JOIN features f USING (feature_id)
        WHERE f.is_core GROUP BY 1 HAVING count(*) = (SELECT n FROM core) AND (SELECT n FROM core) > 0
        UNION ALL
        SELECT fa.client_id, CASE f.category WHEN 'integration' THEN 'm5' ELSE 'm6' END, min(fa.first_used_on)
        FROM feature_adoption fa JOIN features f USING (feature_id) WHERE f.category IN ('integration', 'advanced')
        GROUP BY 1, 2
        UNION ALL
        SELECT e.client_id, 'm7', min(e.completed_at)::date FROM executive_reviews e WHERE e.status = 'completed' GROUP BY 1
        UNION ALL
        SELECT v.client_id, 'm8', min(v.enrolled_at)::date FROM advocates v GROUP BY 1
    ),
    defs(m, name, target_days) AS (
        VALUES ('m1', 'Account Activated', 3), ('m2', 'First Value Achieved', 14), ('m3', 'Team Onboarded', 30),
               ('m4', 'Core Features Adopted', 60), ('m5', 'Integration Connected', 45),
               ('m6', 'Advanced Features Explored', 90), ('m7', 'Business Impact Measured', 120),
               ('m8', 'Champion Developed', 180)
    )
    SELECT acc.client_id, defs.m, defs.name, defs.target_days,
           CASE WHEN d.d IS NULL THEN am.achieved_on WHEN am.achieved_on IS NULL THEN d.d ELSE least(d.d, am.achieved_on) END,
           acc.acc_start
    FROM acc CROSS JOIN defs
    LEFT JOIN d ON d.client_id = acc.client_id AND d.m = defs.m
    LEFT JOIN adoption_milestones am ON am.client_id = acc.client_id AND am.milestone = defs.m
$$;

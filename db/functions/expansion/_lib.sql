-- Helpers shared by the expansion & revenue tools (issue 14). Every rule here is stated in the
-- "rules" array of the tools that use it (worker/tools/expansion/*.json -> docs/tools.md).

-- Renewal probability from the health score (reference §3.4): >= 85 -> 0.92, >= 70 -> 0.80,
-- >= 60 -> 0.65, else 0.40.
CREATE OR REPLACE FUNCTION csmcp.exp_renewal_probability(score integer) RETURNS numeric
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN score >= 85 THEN 0.92 WHEN score >= 70 THEN 0.80 WHEN score >= 60 THEN 0.65 ELSE 0.40 END::numeric
$$;

-- Forecast band of a renewal probability: >= 0.80 high, >= 0.60 medium, else at_risk.
CREATE OR REPLACE FUNCTION csmcp.exp_forecast_band(p numeric) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN p >= 0.80 THEN 'high' WHEN p >= 0.60 THEN 'medium' ELSE 'at_risk' END
$$;

-- Seats factor of a cross-sell value: <= 25 seats 0.5, <= 100 1.0, <= 250 1.5, more 2.0;
-- a contract without a seat count 1.0.
CREATE OR REPLACE FUNCTION csmcp.exp_seats_factor(seats integer) RETURNS numeric
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN seats IS NULL THEN 1.0 WHEN seats <= 25 THEN 0.5 WHEN seats <= 100 THEN 1.0
                WHEN seats <= 250 THEN 1.5 ELSE 2.0 END::numeric
$$;

-- A configured revenue figure (revenue_settings), or NULL when none is configured.
CREATE OR REPLACE FUNCTION csmcp.exp_setting(p_key text) RETURNS numeric
LANGUAGE sql STABLE AS $$ SELECT value FROM revenue_settings WHERE key = p_key $$;

-- The calendar period [start, end) of type monthly/quarterly/annual containing day d.
CREATE OR REPLACE FUNCTION csmcp.exp_period(p_type text, d date, OUT p_start date, OUT p_end date)
LANGUAGE sql IMMUTABLE AS $$
    SELECT s::date, (s + CASE p_type WHEN 'monthly' THEN interval '1 month' WHEN 'quarterly' THEN interval '3 months'
                                    ELSE interval '1 year' END)::date
    FROM (SELECT date_trunc(CASE p_type WHEN 'monthly' THEN 'month' WHEN 'quarterly' THEN 'quarter' ELSE 'year' END,
                            d::timestamp) AS s) x
$$;

-- ARR movement over [p_start, p_end) from revenue_events. The cohort is the accounts whose ARR
-- (sum of arr_delta before p_start) is > 0. For cohort accounts, events in the period are
-- classified by sign and kind: churn events -> churned; other negative deltas (contraction,
-- negative renewal) -> contraction; positive deltas (expansion, positive renewal, a 'new' event
-- of an existing account) -> expansion. Events of accounts outside the cohort are new business.
-- Amounts are positive numbers. NRR / GRR are computed by the callers.
CREATE OR REPLACE FUNCTION csmcp.exp_arr_movement(p_start date, p_end date)
RETURNS TABLE (starting_arr numeric, expansion_arr numeric, contraction_arr numeric, churned_arr numeric,
               new_arr numeric, ending_arr numeric, starting_accounts bigint, expanded_accounts bigint,
               contracted_accounts bigint, churned_accounts bigint, new_accounts bigint)
LANGUAGE sql STABLE AS $$
    WITH per AS (
        SELECT client_id,
               sum(arr_delta) FILTER (WHERE occurred_on < p_start) AS start_arr,
               sum(arr_delta) FILTER (WHERE occurred_on >= p_start AND arr_delta > 0) AS up,
               -sum(arr_delta) FILTER (WHERE occurred_on >= p_start AND arr_delta < 0 AND kind <> 'churn') AS down,
               -sum(arr_delta) FILTER (WHERE occurred_on >= p_start AND kind = 'churn') AS gone,
               sum(arr_delta) AS end_arr
        FROM revenue_events WHERE occurred_on < p_end
        GROUP BY client_id
    )
    SELECT coalesce(sum(start_arr) FILTER (WHERE start_arr > 0), 0),
           coalesce(sum(up) FILTER (WHERE start_arr > 0), 0),
           coalesce(sum(down) FILTER (WHERE start_arr > 0), 0),
           coalesce(sum(gone) FILTER (WHERE start_arr > 0), 0),
           coalesce(sum(coalesce(up, 0) - coalesce(down, 0) - coalesce(gone, 0))
                    FILTER (WHERE coalesce(start_arr, 0) <= 0), 0),
           coalesce(sum(end_arr), 0),
           count(*) FILTER (WHERE start_arr > 0),
           count(*) FILTER (WHERE start_arr > 0 AND up > 0),
           count(*) FILTER (WHERE start_arr > 0 AND down > 0),
           count(*) FILTER (WHERE start_arr > 0 AND gone > 0),
           count(*) FILTER (WHERE coalesce(start_arr, 0) <= 0 AND up > 0)
    FROM per
$$;

-- Seat utilisation of every active account with a seat count: average daily active users over
-- the 30 UTC days ending today (days without usage count as 0) / licensed seats of the active
-- contract. p_client NULL = all accounts.
CREATE OR REPLACE FUNCTION csmcp.exp_utilisation(p_client text, p_today date)
RETURNS TABLE (client_id text, contract_id text, seats integer, arr numeric, avg_dau numeric, utilisation numeric)
LANGUAGE sql STABLE AS $$
    SELECT c.client_id, c.contract_id, c.licensed_seats, c.contract_value,
           coalesce(u.s, 0)::numeric / 30, coalesce(u.s, 0)::numeric / 30 / c.licensed_seats
    FROM contracts c
    JOIN accounts a ON a.client_id = c.client_id AND a.status = 'active'
    LEFT JOIN (SELECT d.client_id, sum(d.active_users) AS s FROM usage_daily d
               WHERE d.day > p_today - 30 AND d.day <= p_today AND (p_client IS NULL OR d.client_id = p_client)
               GROUP BY d.client_id) u ON u.client_id = c.client_id
    WHERE c.status = 'active' AND c.licensed_seats IS NOT NULL AND (p_client IS NULL OR c.client_id = p_client)
$$;

-- Upserts identified opportunities (one open row per account and opportunity_key) from a jsonb
-- array of objects {client_id, key, name, type, value, probability, current_arr, product,
-- close_days, details}; logs each created or changed row with old and new values; returns the
-- number of rows created and changed. Unchanged rows are left alone (re-running is a no-op).
CREATE OR REPLACE FUNCTION csmcp.exp_upsert_opportunities(p_rows jsonb, p_actor text, p_tool text,
                                                          OUT created integer, OUT changed integer)
LANGUAGE plpgsql AS $$
BEGIN
    WITH src AS (
        SELECT x->>'client_id' AS client_id, x->>'key' AS okey, x->>'name' AS name, x->>'type' AS otype,
               (x->>'value')::numeric(14,2) AS value, (x->>'probability')::numeric(4,3) AS probability,
               (x->>'current_arr')::numeric(14,2) AS current_arr, x->>'product' AS product,
               csmcp.today() + (x->>'close_days')::integer AS close_date, coalesce(x->'details', '{}') AS details
        FROM jsonb_array_elements(p_rows) x
    ),
    old AS (
        SELECT o.* FROM expansion_opportunities o JOIN src ON src.client_id = o.client_id AND src.okey = o.opportunity_key
        WHERE o.stage NOT IN ('won', 'lost')
    ),
    up AS (
        INSERT INTO expansion_opportunities AS o
            (opportunity_id, client_id, name, expansion_type, estimated_value, probability, expected_close_date,
             product, opportunity_key, current_arr, details, identified_by)
        SELECT 'OPP-' || nextval('expansion_opportunity_seq'), client_id, name, otype, value, probability, close_date,
               product, okey, current_arr, details, p_tool
        FROM src
        ON CONFLICT (client_id, opportunity_key) WHERE stage NOT IN ('won', 'lost') DO UPDATE
            SET estimated_value = excluded.estimated_value, probability = excluded.probability,
                current_arr = excluded.current_arr, details = excluded.details, name = excluded.name,
                updated_at = now()
            WHERE (o.estimated_value, o.probability, o.current_arr, o.details, o.name)
                  IS DISTINCT FROM (excluded.estimated_value, excluded.probability, excluded.current_arr,
                                    excluded.details, excluded.name)
        RETURNING o.opportunity_id, o.client_id, o.opportunity_key, o.expansion_type, o.estimated_value, o.probability,
                  o.current_arr, o.details, (o.xmax = 0) AS inserted
    ),
    logged AS (
        INSERT INTO activity_log (client_id, actor, action, entity, entity_id, old_values, new_values)
        SELECT up.client_id, coalesce(nullif(p_actor, ''), 'anonymous'),
               CASE WHEN up.inserted THEN p_tool || ':create' ELSE p_tool || ':update' END,
               'expansion_opportunity', up.opportunity_id,
               CASE WHEN NOT up.inserted THEN jsonb_build_object('estimated_value', old.estimated_value,
                    'probability', old.probability, 'current_arr', old.current_arr, 'details', old.details) END,
               jsonb_build_object('opportunity_key', up.opportunity_key, 'expansion_type', up.expansion_type,
                    'estimated_value', up.estimated_value, 'probability', up.probability,
                    'current_arr', up.current_arr, 'details', up.details)
        FROM up LEFT JOIN old ON old.opportunity_id = up.opportunity_id
        RETURNING 1
    )
    SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) INTO created, changed FROM up;
END $$;

-- The open opportunity ids of (client_id, opportunity_key) pairs, read after an upsert (a new
-- snapshot, so rows a concurrent call created are seen).
CREATE OR REPLACE FUNCTION csmcp.exp_open_ids(p_rows jsonb)
RETURNS TABLE (client_id text, opportunity_key text, opportunity_id text)
LANGUAGE sql STABLE AS $$
    SELECT o.client_id, o.opportunity_key, o.opportunity_id
    FROM expansion_opportunities o
    JOIN (SELECT DISTINCT x->>'client_id' AS c, x->>'key' AS k FROM jsonb_array_elements(p_rows) x) s
      ON s.c = o.client_id AND s.k = o.opportunity_key
    WHERE o.stage NOT IN ('won', 'lost')
$$;

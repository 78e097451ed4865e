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
-- (work_mem: the per-account hash aggregate of 10,000 accounts spills at the default 4MB.)
CREATE OR REPLACE FUNCTION csmcp.exp_arr_movement(p_start date, p_end date)
RETURNS TABLE (starting_arr numeric, expansion_arr numeric, contraction_arr numeric, churned_arr numeric,
               new_arr numeric, ending_arr numeric, starting_accounts bigint, expanded_accounts bigint,
               contracted_accounts bigint, churned_accounts bigint, new_accounts bigint)
LANGUAGE sql STABLE SET work_mem = '32MB' AS $$
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
-- contract. p_client NULL = all accounts. exp_utilisation_of(ids) does the same for a given set
-- of accounts (an index range per account instead of the whole 30-day slice).
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
-- The planner cannot know how many rows a jsonb array holds (it assumes 100), and a nested loop
-- between two CTEs of thousands of rows is quadratic: nested loops are off here, so every join
-- is hashed (a portfolio-wide run upserts tens of thousands of rows).
CREATE OR REPLACE FUNCTION csmcp.exp_upsert_opportunities(p_rows jsonb, p_actor text, p_tool text,
                                                          OUT created integer, OUT changed integer)
LANGUAGE plpgsql SET enable_nestloop = off AS $$
BEGIN
    WITH x AS (
        SELECT e->>'client_id' AS client_id, e->>'key' AS okey, e->>'name' AS name, e->>'type' AS otype,
               (e->>'value')::numeric(14,2) AS value, (e->>'probability')::numeric(4,3) AS probability,
               (e->>'current_arr')::numeric(14,2) AS current_arr, e->>'product' AS product,
               csmcp.today() + (e->>'close_days')::integer AS close_date, coalesce(e->'details', '{}') AS details
        FROM jsonb_array_elements(p_rows) e
    ),
    src AS MATERIALIZED (
        SELECT x.*, o.opportunity_id AS old_id, o.estimated_value AS old_value, o.probability AS old_probability,
               o.current_arr AS old_arr, o.details AS old_details, o.name AS old_name,
               CASE WHEN o.opportunity_id IS NULL THEN 'OPP-' || nextval('expansion_opportunity_seq') END AS new_id
        FROM x LEFT JOIN expansion_opportunities o
          ON o.client_id = x.client_id AND o.opportunity_key = x.okey AND o.stage NOT IN ('won', 'lost')
    ),
    up AS (
        INSERT INTO expansion_opportunities AS o
            (opportunity_id, client_id, name, expansion_type, estimated_value, probability, expected_close_date,
             product, opportunity_key, current_arr, details, identified_by)
        SELECT coalesce(old_id, new_id), client_id, name, otype, value, probability, close_date,
               product, okey, current_arr, details, p_tool
        FROM src
        -- unchanged rows are not even attempted (a conflicting insert would lock each of them)
        WHERE old_id IS NULL
           OR (old_value, old_probability, old_arr, old_details, old_name)
              IS DISTINCT FROM (value, probability, current_arr, details, name)
        ON CONFLICT (client_id, opportunity_key) WHERE stage NOT IN ('won', 'lost') DO UPDATE
            SET estimated_value = excluded.estimated_value, probability = excluded.probability,
                current_arr = excluded.current_arr, details = excluded.details, name = excluded.name,
                updated_at = now()
            WHERE (o.estimated_value, o.probability, o.current_arr, o.details, o.name)
                  IS DISTINCT FROM (excluded.estimated_value, excluded.probability, excluded.current_arr,
                                    excluded.details, excluded.name)
        RETURNING o.opportunity_id, (o.xmax = 0) AS inserted
    ),
    logged AS (
        INSERT INTO activity_log (client_id, actor, action, entity, entity_id, old_values, new_values)
        SELECT src.client_id, coalesce(nullif(p_actor, ''), 'anonymous'),
               CASE WHEN old_id IS NULL THEN p_tool || ':create' ELSE p_tool || ':update' END,
               'expansion_opportunity', coalesce(old_id, new_id),
               CASE WHEN old_id IS NOT NULL THEN jsonb_build_object('estimated_value', old_value,
                    'probability', old_probability, 'current_arr', old_arr, 'details', old_details) END,
               jsonb_build_object('opportunity_key', okey, 'expansion_type', otype, 'estimated_value', value,
                    'probability', probability, 'current_arr', current_arr, 'details', details)
        FROM src JOIN up ON up.opportunity_id = coalesce(src.old_id, src.new_id)
        RETURNING 1
    )
    SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) INTO created, changed FROM up;
END $$;

-- Open opportunity ids of one type (and account) as a map "client_id|opportunity_key" -> id,
-- read after an upsert (a new snapshot: rows a concurrent call created are seen). A map lookup
-- per listed row instead of a join keeps large result sets linear.
DROP FUNCTION IF EXISTS csmcp.exp_open_ids(jsonb);
CREATE OR REPLACE FUNCTION csmcp.exp_open_id_map(p_type text, p_client text) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT coalesce(jsonb_object_agg(client_id || '|' || opportunity_key, opportunity_id), '{}')
    FROM expansion_opportunities
    WHERE stage NOT IN ('won', 'lost') AND expansion_type = p_type AND (p_client IS NULL OR client_id = p_client)
$$;

CREATE OR REPLACE FUNCTION csmcp.exp_utilisation_of(p_ids text[], p_today date)
RETURNS TABLE (client_id text, contract_id text, seats integer, arr numeric, avg_dau numeric, utilisation numeric)
LANGUAGE sql STABLE AS $$
    SELECT c.client_id, c.contract_id, c.licensed_seats, c.contract_value,
           coalesce(u.s, 0)::numeric / 30, coalesce(u.s, 0)::numeric / 30 / c.licensed_seats
    FROM contracts c
    JOIN accounts a ON a.client_id = c.client_id AND a.status = 'active'
    LEFT JOIN LATERAL (SELECT sum(d.active_users) AS s FROM usage_daily d
                       WHERE d.client_id = c.client_id AND d.day > p_today - 30 AND d.day <= p_today) u ON true
    WHERE c.status = 'active' AND c.licensed_seats IS NOT NULL AND c.client_id = ANY (p_ids)
$$;

-- The portfolio's churn over the 365 days ending p_today (cohort rules of exp_arr_movement):
-- starting and churned ARR, from revenue_rate_cache when its row of the day still matches the
-- events (count and highest id), else computed and stored.
CREATE OR REPLACE FUNCTION csmcp.exp_annual_churn(p_today date, OUT starting_arr numeric, OUT churned_arr numeric)
LANGUAGE plpgsql AS $$
DECLARE n bigint; mx bigint; m record;
BEGIN
    SELECT count(*), coalesce(max(event_id), 0) INTO n, mx FROM revenue_events;
    SELECT c.starting_arr, c.churned_arr INTO starting_arr, churned_arr
    FROM revenue_rate_cache c WHERE c.as_of = p_today AND c.n_events = n AND c.max_event_id = mx;
    IF FOUND THEN RETURN; END IF;
    SELECT * INTO m FROM csmcp.exp_arr_movement(p_today - 364, p_today + 1);
    starting_arr := m.starting_arr;
    churned_arr := m.churned_arr;
    INSERT INTO revenue_rate_cache (as_of, n_events, max_event_id, starting_arr, churned_arr)
    VALUES (p_today, n, mx, starting_arr, churned_arr)
    ON CONFLICT (as_of) DO UPDATE SET n_events = excluded.n_events, max_event_id = excluded.max_event_id,
        starting_arr = excluded.starting_arr, churned_arr = excluded.churned_arr, computed_at = now();
    DELETE FROM revenue_rate_cache WHERE as_of < p_today - 7;
END $$;

-- The same upsert as exp_upsert_opportunities, from typed parallel arrays (one element per
-- opportunity: client_id, opportunity_key, name, type, value, probability, current_arr, product,
-- close_days, details) instead of a jsonb array: a portfolio-wide run builds and parses no jsonb
-- document of every candidate (issue 21: that was most of identify_crosssell_opportunities).
CREATE OR REPLACE FUNCTION csmcp.exp_upsert_opportunity_arrays(
    p_client text[], p_key text[], p_name text[], p_type text[], p_value numeric[], p_prob numeric[], p_arr numeric[],
    p_product text[], p_close integer[], p_details jsonb[], p_actor text, p_tool text,
    OUT created integer, OUT changed integer)
-- (jit off: the one nested loop, the probe by key, carries the disabled-nestloop cost, which
-- would make every call compile the plan - ~2 s)
LANGUAGE plpgsql SET enable_nestloop = off SET jit = off AS $$
DECLARE
    v_types text[] := ARRAY(SELECT DISTINCT u FROM unnest(p_type) u);
BEGIN
    WITH x AS (
        SELECT u.client_id, u.okey, u.name, u.otype, u.value::numeric(14,2) AS value, u.probability::numeric(4,3) AS probability,
               u.current_arr::numeric(14,2) AS current_arr, u.product, csmcp.today() + u.close_days AS close_date,
               coalesce(u.details, '{}') AS details
        FROM unnest(p_client, p_key, p_name, p_type, p_value, p_prob, p_arr, p_product, p_close, p_details)
             u(client_id, okey, name, otype, value, probability, current_arr, product, close_days, details)
    ),
    -- The open rows of the same keys: first among the open rows of the candidates' types (the
    -- tools' keys carry their type: 'cross_sell:<product>' is a cross_sell row; a hash join with
    -- the rows of that type only, through the partial index, not with every open opportunity:
    -- issue 21), then, for a key not found there, by key in any type (index probe), so the
    -- result is the same as the join with every open row.
    typed AS MATERIALIZED (
        SELECT x.*, o.opportunity_id AS old_id, o.estimated_value AS old_value, o.probability AS old_probability,
               o.current_arr AS old_arr, o.details AS old_details, o.name AS old_name
        FROM x LEFT JOIN (SELECT * FROM expansion_opportunities o
                          WHERE o.stage NOT IN ('won', 'lost') AND o.expansion_type = ANY (v_types)) o
          ON o.client_id = x.client_id AND o.opportunity_key = x.okey
    ),
    src AS MATERIALIZED (
        SELECT t.client_id, t.okey, t.name, t.otype, t.value, t.probability, t.current_arr, t.product, t.close_date, t.details,
               coalesce(t.old_id, o.opportunity_id) AS old_id, coalesce(t.old_value, o.estimated_value) AS old_value,
               coalesce(t.old_probability, o.probability) AS old_probability, coalesce(t.old_arr, o.current_arr) AS old_arr,
               coalesce(t.old_details, o.details) AS old_details, coalesce(t.old_name, o.name) AS old_name,
               CASE WHEN t.old_id IS NULL AND o.opportunity_id IS NULL THEN 'OPP-' || nextval('expansion_opportunity_seq') END AS new_id
        FROM typed t LEFT JOIN LATERAL (
            SELECT * FROM expansion_opportunities o
            WHERE t.old_id IS NULL AND o.client_id = t.client_id AND o.opportunity_key = t.okey AND o.stage NOT IN ('won', 'lost')
            OFFSET 0) o   -- (not pulled up into a join with every open row: one probe per key not found)
          ON true
    ),
    up AS (
        INSERT INTO expansion_opportunities AS o
            (opportunity_id, client_id, name, expansion_type, estimated_value, probability, expected_close_date,
             product, opportunity_key, current_arr, details, identified_by)
        SELECT coalesce(old_id, new_id), client_id, name, otype, value, probability, close_date,
               product, okey, current_arr, details, p_tool
        FROM src
        WHERE old_id IS NULL
           OR (old_value, old_probability, old_arr, old_details, old_name)
              IS DISTINCT FROM (value, probability, current_arr, details, name)
        ON CONFLICT (client_id, opportunity_key) WHERE stage NOT IN ('won', 'lost') DO UPDATE
            SET estimated_value = excluded.estimated_value, probability = excluded.probability,
                current_arr = excluded.current_arr, details = excluded.details, name = excluded.name,
                updated_at = now()
            WHERE (o.estimated_value, o.probability, o.current_arr, o.details, o.name)
                  IS DISTINCT FROM (excluded.estimated_value, excluded.probability, excluded.current_arr,
                                    excluded.details, excluded.name)
        RETURNING o.opportunity_id, (o.xmax = 0) AS inserted
    ),
    logged AS (
        INSERT INTO activity_log (client_id, actor, action, entity, entity_id, old_values, new_values)
        SELECT src.client_id, coalesce(nullif(p_actor, ''), 'anonymous'),
               CASE WHEN old_id IS NULL THEN p_tool || ':create' ELSE p_tool || ':update' END,
               'expansion_opportunity', coalesce(old_id, new_id),
               CASE WHEN old_id IS NOT NULL THEN jsonb_build_object('estimated_value', old_value,
                    'probability', old_probability, 'current_arr', old_arr, 'details', old_details) END,
               jsonb_build_object('opportunity_key', okey, 'expansion_type', otype, 'estimated_value', value,
                    'probability', probability, 'current_arr', current_arr, 'details', details)
        FROM src JOIN up ON up.opportunity_id = coalesce(src.old_id, src.new_id)
        RETURNING 1
    )
    SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) INTO created, changed FROM up;
END $$;

-- exp_arr_movement from revenue_balance (migration 0174, issue 21 session 6): the same figures,
-- rules and NULL / scale behaviour. An account without events since p_start is one balance row
-- (its ARR at p_start and at p_end is its balance); for the others only their events from p_start
-- on are aggregated (the covering date index), and ARR at p_start = balance - those events, at
-- p_end = balance - the events from p_end on. An account whose every event is on or after p_end
-- is left out, as the reference leaves it out (its per-account start ARR would be NULL there,
-- 0.00 here: only compared with 0 and summed where > 0, so the same).
CREATE OR REPLACE FUNCTION csmcp.exp_arr_movement_rollup(p_start date, p_end date)
RETURNS TABLE (starting_arr numeric, expansion_arr numeric, contraction_arr numeric, churned_arr numeric,
               new_arr numeric, ending_arr numeric, starting_accounts bigint, expanded_accounts bigint,
               contracted_accounts bigint, churned_accounts bigint, new_accounts bigint)
LANGUAGE sql STABLE AS $$
    WITH ev AS (
        SELECT client_id,
               sum(arr_delta) AS since_start,
               count(*) FILTER (WHERE occurred_on >= p_end) AS n_after,
               sum(arr_delta) FILTER (WHERE occurred_on >= p_end) AS after_end,
               sum(arr_delta) FILTER (WHERE occurred_on < p_end AND arr_delta > 0) AS up,
               -sum(arr_delta) FILTER (WHERE occurred_on < p_end AND arr_delta < 0 AND kind <> 'churn') AS down,
               -sum(arr_delta) FILTER (WHERE occurred_on < p_end AND kind = 'churn') AS gone
        FROM revenue_events WHERE occurred_on >= p_start
        GROUP BY client_id
    ),
    per AS (
        SELECT b.balance AS start_arr, NULL::numeric AS up, NULL::numeric AS down, NULL::numeric AS gone, b.balance AS end_arr
        FROM revenue_balance b WHERE b.last_on < p_start
        UNION ALL
        SELECT b.balance - e.since_start, e.up, e.down, e.gone, b.balance - coalesce(e.after_end, 0)
        FROM ev e JOIN revenue_balance b ON b.client_id = e.client_id
        WHERE b.n_events > e.n_after
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

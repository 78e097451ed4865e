-- 0015_ingest_without_temp_tables.sql - csmcp.apply_usage_events without temporary tables.
--
-- The 0007 version created two temporary tables per call (CREATE TEMP TABLE ... ON COMMIT DROP,
-- TRUNCATE): catalog inserts and deletes on every ingest_usage_events call, about 5 of its
-- ~10 ms of PostgreSQL time for one event at 10,000 accounts (auto_explain: the statements
-- themselves summed to 4.5 ms), and the slowest tool of the scale mix after list_clients was
-- fixed (docs/scale.md §3.1). Same statements and results; the parsed events are a CTE and the
-- newly stored ones an array of csmcp.usage_event_row instead of tables.

CREATE TYPE csmcp.usage_event_row AS (
    event_id    text,
    client_id   text,
    day         date,
    user_id     text,
    feature_id  text,
    quantity    numeric,
    occurred_at timestamptz
);

-- Applies validated events; idempotent by event_id; rollups are updated incrementally.
CREATE OR REPLACE FUNCTION csmcp.apply_usage_events(events jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    n_in integer := jsonb_array_length(events);
    n_new integer;
    n_feat integer;
    fresh csmcp.usage_event_row[];
    res jsonb;
BEGIN
    WITH f AS (INSERT INTO features (feature_id, name)
               SELECT DISTINCT coalesce(e ->> 'feature', e ->> 'feature_id'), coalesce(e ->> 'feature', e ->> 'feature_id')
               FROM jsonb_array_elements(events) e
               ON CONFLICT DO NOTHING RETURNING 1)
    SELECT count(*) INTO n_feat FROM f;

    WITH ing_in AS (
        SELECT e ->> 'event_id' AS event_id, e ->> 'client_id' AS client_id,
               CASE WHEN e ->> 'occurred_at' ~ '(Z|[+-]\d{2}(:?\d{2})?)$' THEN (e ->> 'occurred_at')::timestamptz
                    ELSE (e ->> 'occurred_at')::timestamp AT TIME ZONE 'UTC' END AS occurred_at,
               coalesce(e ->> 'user_id', e ->> 'user') AS user_id, coalesce(e ->> 'feature', e ->> 'feature_id') AS feature_id,
               coalesce((e ->> 'quantity')::numeric, 1) AS quantity
        FROM jsonb_array_elements(events) e),
    ins AS (
        INSERT INTO usage_events (event_id, client_id, occurred_at, user_id, feature_id, quantity)
        SELECT event_id, client_id, occurred_at, user_id, feature_id, quantity FROM ing_in
        ON CONFLICT (event_id) DO NOTHING
        RETURNING event_id, client_id, (occurred_at AT TIME ZONE 'UTC')::date AS day, user_id, feature_id, quantity, occurred_at)
    SELECT coalesce(array_agg(ROW(event_id, client_id, day, user_id, feature_id, quantity, occurred_at)::csmcp.usage_event_row),
                    '{}')
    INTO fresh FROM ins;
    n_new := cardinality(fresh);

    WITH ing_new AS (SELECT * FROM unnest(fresh)),
    nu AS (
        INSERT INTO usage_daily_users (client_id, day, user_id)
        SELECT DISTINCT client_id, day, user_id FROM ing_new ON CONFLICT DO NOTHING RETURNING client_id, day),
    nuc AS (SELECT client_id, day, count(*) AS n FROM nu GROUP BY 1, 2),
    ev AS (SELECT client_id, day, count(*) AS n FROM ing_new GROUP BY 1, 2)
    INSERT INTO usage_daily (client_id, day, active_users, events)
    SELECT ev.client_id, ev.day, coalesce(nuc.n, 0), ev.n FROM ev LEFT JOIN nuc USING (client_id, day)
    ON CONFLICT (client_id, day) DO UPDATE SET active_users = usage_daily.active_users + EXCLUDED.active_users,
                                               events = usage_daily.events + EXCLUDED.events;

    WITH ing_new AS (SELECT * FROM unnest(fresh)),
    nu AS (
        INSERT INTO usage_feature_daily_users (client_id, day, feature_id, user_id)
        SELECT DISTINCT client_id, day, feature_id, user_id FROM ing_new ON CONFLICT DO NOTHING RETURNING client_id, day, feature_id),
    nuc AS (SELECT client_id, day, feature_id, count(*) AS n FROM nu GROUP BY 1, 2, 3),
    ev AS (SELECT client_id, day, feature_id, count(*) AS n, sum(quantity) AS q FROM ing_new GROUP BY 1, 2, 3)
    INSERT INTO usage_feature_daily (client_id, day, feature_id, events, users, quantity)
    SELECT ev.client_id, ev.day, ev.feature_id, ev.n, coalesce(nuc.n, 0), ev.q FROM ev LEFT JOIN nuc USING (client_id, day, feature_id)
    ON CONFLICT (client_id, day, feature_id) DO UPDATE SET events = usage_feature_daily.events + EXCLUDED.events,
                                                           users = usage_feature_daily.users + EXCLUDED.users,
                                                           quantity = usage_feature_daily.quantity + EXCLUDED.quantity;

    INSERT INTO feature_adoption (client_id, feature_id, first_used_on)
    SELECT client_id, feature_id, min(day) FROM unnest(fresh) GROUP BY 1, 2
    ON CONFLICT (client_id, feature_id) DO UPDATE SET first_used_on = least(feature_adoption.first_used_on, EXCLUDED.first_used_on);

    SELECT jsonb_build_object(
        'received', n_in,
        'inserted', n_new,
        'duplicates', n_in - n_new,
        'features_registered', n_feat,
        'accounts_affected', (SELECT count(DISTINCT client_id) FROM unnest(fresh)),
        'days_affected', (SELECT count(DISTINCT (client_id, day)) FROM unnest(fresh)),
        'first_event_at', (SELECT min(occurred_at) FROM unnest(fresh)),
        'last_event_at', (SELECT max(occurred_at) FROM unnest(fresh)))
    INTO res;
    RETURN res;
END $$;

-- ingest/_lib.sql - validate/apply pairs for usage events (tool ingest_usage_events and
-- `csmcpctl import usage`), contacts and NPS responses (`csmcpctl import contacts|nps`).
-- Each validate function returns one row per bad input row (index from 0, message) without
-- raising; callers validate everything first and apply only when there is no error, inside one
-- transaction: nothing is ever half-imported.

-- Usage event: {"event_id", "client_id", "occurred_at" (ISO 8601 timestamp; no zone = UTC),
-- "user_id" (or "user"), "feature" (or "feature_id"), "quantity" (optional, >= 0, default 1)}.
CREATE OR REPLACE FUNCTION csmcp.validate_usage_events(events jsonb)
RETURNS TABLE (idx integer, error text) LANGUAGE plpgsql STABLE AS $$
DECLARE
    e jsonb;
    i integer := -1;
    ts timestamptz;
    v text;
BEGIN
    IF events IS NULL OR jsonb_typeof(events) <> 'array' THEN
        idx := -1; error := 'events must be an array'; RETURN NEXT; RETURN;
    END IF;
    FOR e IN SELECT x FROM jsonb_array_elements(events) x LOOP
        i := i + 1;
        IF jsonb_typeof(e) <> 'object' THEN idx := i; error := 'event must be an object'; RETURN NEXT; CONTINUE; END IF;
        v := e ->> 'event_id';
        IF v IS NULL OR length(v) NOT BETWEEN 1 AND 200 THEN
            idx := i; error := 'event_id is required (1-200 characters)'; RETURN NEXT;
        END IF;
        v := e ->> 'client_id';
        IF v IS NULL OR v !~ '^[A-Za-z0-9_-]{1,100}$' THEN
            idx := i; error := 'client_id is missing or invalid'; RETURN NEXT;
        ELSIF NOT EXISTS (SELECT 1 FROM accounts WHERE client_id = v) THEN
            idx := i; error := 'client not found: ' || v; RETURN NEXT;
        END IF;
        v := coalesce(e ->> 'user_id', e ->> 'user');
        IF v IS NULL OR length(v) NOT BETWEEN 1 AND 200 THEN
            idx := i; error := 'user_id is required (1-200 characters)'; RETURN NEXT;
        END IF;
        v := coalesce(e ->> 'feature', e ->> 'feature_id');
        IF v IS NULL OR v !~ '^[A-Za-z0-9_.:-]{1,100}$' THEN
            idx := i; error := 'feature is missing or invalid (letters, digits, "_.:-", at most 100)'; RETURN NEXT;
        END IF;
        IF e ? 'quantity' AND e -> 'quantity' <> 'null'::jsonb AND
           (jsonb_typeof(e -> 'quantity') <> 'number' OR (e ->> 'quantity')::numeric < 0 OR (e ->> 'quantity')::numeric > 1e9) THEN
            idx := i; error := 'quantity must be a number between 0 and 1e9'; RETURN NEXT;
        END IF;
        v := e ->> 'occurred_at';
        ts := NULL;
        IF v IS NULL OR v !~ '^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}(:?\d{2})?)?$' THEN
            idx := i; error := 'occurred_at must be an ISO 8601 timestamp'; RETURN NEXT;
        ELSE
            BEGIN
                ts := CASE WHEN v ~ '(Z|[+-]\d{2}(:?\d{2})?)$' THEN v::timestamptz ELSE v::timestamp AT TIME ZONE 'UTC' END;
            EXCEPTION WHEN others THEN
                idx := i; error := 'occurred_at is not a valid timestamp: ' || v; RETURN NEXT;
            END;
            IF ts > now() + interval '1 day' THEN
                idx := i; error := 'occurred_at is in the future'; RETURN NEXT;
            ELSIF ts < now() - interval '5 years' THEN
                idx := i; error := 'occurred_at is more than 5 years old'; RETURN NEXT;
            END IF;
        END IF;
    END LOOP;
END $$;

-- Contacts: {"client_id", "name", "email", "title"?, "role"?, "is_primary"?}; upsert on (client_id, email).
CREATE OR REPLACE FUNCTION csmcp.validate_contacts(rows jsonb)
RETURNS TABLE (idx integer, error text) LANGUAGE plpgsql STABLE AS $$
DECLARE r jsonb; i integer := -1;
BEGIN
    FOR r IN SELECT x FROM jsonb_array_elements(rows) x LOOP
        i := i + 1;
        IF r ->> 'client_id' IS NULL OR NOT EXISTS (SELECT 1 FROM accounts WHERE client_id = r ->> 'client_id') THEN
            idx := i; error := 'client not found: ' || coalesce(r ->> 'client_id', '(missing)'); RETURN NEXT;
        END IF;
        IF coalesce(btrim(r ->> 'name'), '') = '' OR length(r ->> 'name') > 200 THEN
            idx := i; error := 'name is required (at most 200 characters)'; RETURN NEXT;
        END IF;
        IF coalesce(r ->> 'email', '') !~ '^[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\.[a-zA-Z]{2,}$' THEN
            idx := i; error := 'email is missing or invalid'; RETURN NEXT;
        END IF;
        IF r ->> 'role' IS NOT NULL AND r ->> 'role' NOT IN ('champion', 'executive_sponsor', 'decision_maker', 'admin', 'user', 'billing') THEN
            idx := i; error := 'role must be one of champion, executive_sponsor, decision_maker, admin, user, billing'; RETURN NEXT;
        END IF;
        IF r ->> 'is_primary' IS NOT NULL AND lower(r ->> 'is_primary') NOT IN ('true', 'false', '1', '0', 'yes', 'no') THEN
            idx := i; error := 'is_primary must be true or false'; RETURN NEXT;
        END IF;
    END LOOP;
END $$;

CREATE OR REPLACE FUNCTION csmcp.apply_contacts(rows jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE n_ins integer := 0; n_upd integer := 0; r jsonb; prim boolean; was boolean;
BEGIN
    FOR r IN SELECT x FROM jsonb_array_elements(rows) x LOOP
        prim := coalesce(lower(r ->> 'is_primary') IN ('true', '1', 'yes'), false);
        IF prim THEN
            UPDATE contacts SET is_primary = false WHERE client_id = r ->> 'client_id' AND is_primary AND email <> r ->> 'email';
        END IF;
        INSERT INTO contacts (client_id, name, email, title, role, is_primary)
        VALUES (r ->> 'client_id', btrim(r ->> 'name'), r ->> 'email', r ->> 'title', coalesce(r ->> 'role', 'user'), prim)
        ON CONFLICT (client_id, email) DO UPDATE SET name = EXCLUDED.name, title = coalesce(EXCLUDED.title, contacts.title),
                                                     role = EXCLUDED.role, is_primary = EXCLUDED.is_primary
        RETURNING (xmax = 0) INTO was;
        IF was THEN n_ins := n_ins + 1; ELSE n_upd := n_upd + 1; END IF;
    END LOOP;
    RETURN jsonb_build_object('received', jsonb_array_length(rows), 'inserted', n_ins, 'updated', n_upd);
END $$;

-- NPS: {"client_id", "score" 0-10, "respondent_email"?, "reason"?, "responded_at"?, "response_id"?};
-- without response_id the id is derived from the content, so a re-import is idempotent.
CREATE OR REPLACE FUNCTION csmcp.validate_nps(rows jsonb)
RETURNS TABLE (idx integer, error text) LANGUAGE plpgsql STABLE AS $$
DECLARE r jsonb; i integer := -1; ts timestamptz;
BEGIN
    FOR r IN SELECT x FROM jsonb_array_elements(rows) x LOOP
        i := i + 1;
        IF r ->> 'client_id' IS NULL OR NOT EXISTS (SELECT 1 FROM accounts WHERE client_id = r ->> 'client_id') THEN
            idx := i; error := 'client not found: ' || coalesce(r ->> 'client_id', '(missing)'); RETURN NEXT;
        END IF;
        IF coalesce(r ->> 'score', '') !~ '^\d{1,2}$' OR (r ->> 'score')::integer > 10 THEN
            idx := i; error := 'score must be an integer from 0 to 10'; RETURN NEXT;
        END IF;
        IF r ->> 'responded_at' IS NOT NULL THEN
            BEGIN
                ts := (r ->> 'responded_at')::timestamptz;
                IF ts > now() + interval '1 day' THEN idx := i; error := 'responded_at is in the future'; RETURN NEXT; END IF;
            EXCEPTION WHEN others THEN
                idx := i; error := 'responded_at is not a valid timestamp'; RETURN NEXT;
            END;
        END IF;
    END LOOP;
END $$;

CREATE OR REPLACE FUNCTION csmcp.apply_nps(rows jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE n integer;
BEGIN
    WITH ins AS (
        INSERT INTO nps_responses (response_id, client_id, respondent_email, score, reason, responded_at)
        SELECT coalesce(r ->> 'response_id',
                        'NPS-' || left(md5(concat_ws('|', r ->> 'client_id', r ->> 'respondent_email', r ->> 'responded_at', r ->> 'score')), 16)),
               r ->> 'client_id', r ->> 'respondent_email', (r ->> 'score')::integer, r ->> 'reason',
               coalesce((r ->> 'responded_at')::timestamptz, now())
        FROM jsonb_array_elements(rows) r
        ON CONFLICT (response_id) DO NOTHING RETURNING 1)
    SELECT count(*) INTO n FROM ins;
    RETURN jsonb_build_object('received', jsonb_array_length(rows), 'inserted', n, 'duplicates', jsonb_array_length(rows) - n);
END $$;

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

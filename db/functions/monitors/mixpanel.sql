-- mixpanel.sql - usage import from a Mixpanel-compatible raw export (NDJSON, one event per line:
-- {"event": name, "properties": {"time": unix seconds, "distinct_id": user, "$insert_id": id,
-- <client property>: account, "feature"?: feature, "quantity"?: n}}), pulled by the leading
-- monitor process every integrations.mixpanel_interval_s (docs/operations/integrations.md).
--
-- csmcp.mixpanel_window(backfill_days): the dates to pull now: from the last successful pull's
-- to_date (that day again: late events; the import is idempotent) or today - backfill_days, to
-- today (UTC).
-- csmcp.mixpanel_import(from, to, ndjson, client_property): one transaction: maps each line to a
-- usage event - event_id "mp:" + $insert_id (else "mp:" + md5 of the line), client_id =
-- properties[client_property], user_id = distinct_id, feature = properties.feature or the event
-- name lower-cased with runs of other characters than [a-z0-9_.:-] replaced by "_" (at most
-- 100), occurred_at = time, quantity = properties.quantity (default 1) - stores the valid ones
-- through csmcp.apply_usage_events (the ingest_usage_events path: duplicates by event_id skipped,
-- rollups updated) and counts the others by reason; records the pull in mixpanel_imports.
CREATE OR REPLACE FUNCTION csmcp.mixpanel_window(p_backfill_days integer, OUT from_date date, OUT to_date date)
LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT max(i.to_date) FROM mixpanel_imports i WHERE i.status = 'ok'), csmcp.today() - p_backfill_days),
           csmcp.today()
$$;

CREATE OR REPLACE FUNCTION csmcp.mixpanel_import(p_from date, p_to date, p_ndjson text, p_client_property text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v_events jsonb;
    v_lines integer;
    v_bad jsonb;
    v_skip jsonb;
    v_ok jsonb;
    res jsonb;
    v_id bigint;
BEGIN
    WITH l AS (
        SELECT line, n FROM regexp_split_to_table(coalesce(p_ndjson, ''), E'\n') WITH ORDINALITY AS t(line, n)
        WHERE btrim(line) <> ''
    ), p AS (
        SELECT n, line, CASE WHEN line ~ '^\s*\{' THEN csmcp.mixpanel_try_json(line) END AS j FROM l
    )
    SELECT count(*),
           coalesce(jsonb_agg(jsonb_build_object(
               'event_id', 'mp:' || coalesce(j->'properties'->>'$insert_id', md5(line)),
               'client_id', j->'properties'->>p_client_property,
               'user_id', j->'properties'->>'distinct_id',
               'feature', left(coalesce(j->'properties'->>'feature',
                                        btrim(regexp_replace(lower(j->>'event'), '[^a-z0-9_.:-]+', '_', 'g'), '_')), 100),
               'occurred_at', to_char(to_timestamp((j->'properties'->>'time')::double precision) AT TIME ZONE 'UTC',
                                      'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
               'quantity', coalesce(j->'properties'->'quantity', '1'::jsonb)) ORDER BY n)
               FILTER (WHERE j IS NOT NULL AND jsonb_typeof(j->'properties'->'time') = 'number'), '[]'),
           jsonb_build_object('unreadable line', count(*) FILTER (WHERE j IS NULL OR jsonb_typeof(j->'properties'->'time') IS DISTINCT FROM 'number'))
    INTO v_lines, v_events, v_skip FROM p;

    SELECT coalesce(jsonb_object_agg(reason, cnt), '{}') INTO v_bad FROM (
        SELECT regexp_replace(min(error), ': .*$', '') AS reason, count(*) AS cnt
        FROM (SELECT idx, string_agg(error, '; ' ORDER BY error) AS error FROM csmcp.validate_usage_events(v_events) GROUP BY idx) e
        GROUP BY regexp_replace(error, ': .*$', '')) x;
    SELECT coalesce(jsonb_agg(e ORDER BY i), '[]') INTO v_ok
    FROM jsonb_array_elements(v_events) WITH ORDINALITY AS t(e, i)
    WHERE NOT EXISTS (SELECT 1 FROM csmcp.validate_usage_events(jsonb_build_array(e)));
    res := CASE WHEN jsonb_array_length(v_ok) > 0 THEN csmcp.apply_usage_events(v_ok)
                ELSE jsonb_build_object('inserted', 0) END;
    v_skip := jsonb_strip_nulls(v_skip || v_bad);
    v_skip := (SELECT coalesce(jsonb_object_agg(k, v), '{}') FROM jsonb_each(v_skip) s(k, v) WHERE v <> '0');
    INSERT INTO mixpanel_imports (from_date, to_date, finished_at, status, lines, inserted, duplicates, skipped)
    VALUES (p_from, p_to, now(), 'ok', v_lines, (res->>'inserted')::integer,
            jsonb_array_length(v_ok) - (res->>'inserted')::integer, v_skip)
    RETURNING import_id INTO v_id;
    RETURN jsonb_build_object('import_id', v_id, 'from_date', p_from, 'to_date', p_to, 'lines', v_lines,
                              'inserted', (res->>'inserted')::integer,
                              'duplicates', jsonb_array_length(v_ok) - (res->>'inserted')::integer, 'skipped', v_skip);
END $$;

-- A failed pull (HTTP error, body too large) is recorded too.
CREATE OR REPLACE FUNCTION csmcp.mixpanel_failed(p_from date, p_to date, p_error text) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO mixpanel_imports (from_date, to_date, finished_at, status, error)
    VALUES (p_from, p_to, now(), 'failed', left(p_error, 500))
$$;

CREATE OR REPLACE FUNCTION csmcp.mixpanel_try_json(p text) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN p::jsonb;
EXCEPTION WHEN others THEN
    RETURN NULL;
END $$;

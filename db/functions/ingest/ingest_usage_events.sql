-- ingest/ingest_usage_events.sql - tool ingest_usage_events: validates every event first
-- (csmcp.validate_usage_events) and stores them only when none is bad (csmcp.apply_usage_events,
-- ingest/_lib.sql); duplicates by event_id are skipped.
CREATE OR REPLACE FUNCTION csmcp.tool_ingest_usage_events(args jsonb, principal text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    events jsonb := args -> 'events';
    errs text;
    n_err integer;
    res jsonb;
BEGIN
    IF events IS NULL OR jsonb_typeof(events) <> 'array' OR jsonb_array_length(events) = 0 THEN
        PERFORM csmcp.invalid('events must be a non-empty array');
    END IF;
    IF jsonb_array_length(events) > 1000 THEN
        PERFORM csmcp.invalid(format('at most 1000 events per call (got %s)', jsonb_array_length(events)));
    END IF;
    SELECT count(*), string_agg(format('events[%s]: %s', idx, error), '; ' ORDER BY idx) FILTER (WHERE rn <= 10)
    INTO n_err, errs FROM (SELECT v.*, row_number() OVER (ORDER BY idx) AS rn FROM csmcp.validate_usage_events(events) v) x;
    IF n_err > 0 THEN
        RAISE EXCEPTION '% invalid event(s), nothing was stored: %', n_err, errs USING ERRCODE = '22023';
    END IF;
    res := csmcp.apply_usage_events(events);
    IF (res ->> 'inserted')::integer > 0 THEN
        PERFORM csmcp.log_activity(NULL, principal, 'ingest_usage_events', 'usage_events', NULL, NULL,
                                   res - 'first_event_at' - 'last_event_at');
    END IF;
    RETURN res;
END $$;

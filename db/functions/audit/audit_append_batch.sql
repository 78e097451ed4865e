-- audit/audit_append_batch.sql - appends a JSON array of records to the hash chain under one
-- lock and one commit. Each element:
--   {"principal", "method", "tool"?, "args"?, "outcome", "latency_ms", "detail"?, "at_us"?,
--    "writer"?, "seq"?, "encoded"?}
-- at_us: the event time in microseconds since the epoch as measured by the worker (kept
-- exactly: created_at = epoch + at_us microseconds); missing or null -> clock_timestamp().
-- writer/seq/encoded (0120, issue 23): the worker process, its record number (1, 2, ...; a
-- missing number is a gap `csmcpctl audit verify` reports) and whether the record is the safe
-- form of one PostgreSQL refused. A row with a writer hashes them after the 0100 fields; a row
-- without one hashes byte-identically to audit_append's. The
-- records are unpacked once with jsonb_to_recordset, the canonical string of audit_canon is
-- built inline, and the rows go in with one INSERT ... SELECT (docs/performance.md).
CREATE OR REPLACE FUNCTION csmcp.audit_append_batch(p_rows jsonb)
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    h      record;
    r      record;
    v_id   bigint;
    v_prev text;
    v_us   bigint;
    v_f    text;
    v_x    text;
    ids    bigint[] := '{}';
    tss    timestamptz[] := '{}';
    hashes text[] := '{}';
BEGIN
    IF jsonb_typeof(p_rows) <> 'array' THEN
        RAISE EXCEPTION 'audit_append_batch: array expected' USING ERRCODE = '22023';
    END IF;
    SELECT last_id, last_hash INTO h FROM audit_head WHERE one FOR UPDATE;
    v_id := h.last_id;
    v_prev := h.last_hash;
    FOR r IN SELECT coalesce(x.principal, 'anonymous') AS principal, coalesce(x.method, '') AS method,
                    coalesce(x.tool, '') AS tool, coalesce(x.args, '{}'::jsonb)::text AS args,
                    coalesce(x.outcome, 'unknown') AS outcome, coalesce(x.latency_ms, 0) AS lat,
                    coalesce(x.detail, '') AS detail, x.at_us, x.writer, x.seq,
                    coalesce(x.encoded, false) AS encoded
               FROM jsonb_to_recordset(p_rows) AS x(principal text, method text, tool text,
                    args jsonb, outcome text, latency_ms integer, detail text, at_us bigint,
                    writer text, seq bigint, encoded boolean) LOOP
        v_id := v_id + 1;
        IF r.at_us IS NULL THEN
            v_us := (extract(epoch FROM date_trunc('microseconds', clock_timestamp())) * 1000000)::bigint;
        ELSE
            v_us := r.at_us;
        END IF;
        v_f := v_id::text;
        IF r.writer IS NULL THEN
            v_x := '';
        ELSE
            v_x := octet_length(r.writer) || ':' || r.writer ||
                   octet_length(r.seq::text) || ':' || r.seq::text ||
                   '1:' || CASE WHEN r.encoded THEN 't' ELSE 'f' END;
        END IF;
        v_prev := encode(sha256(convert_to(
            octet_length(v_f) || ':' || v_f ||
            octet_length(v_us::text) || ':' || v_us::text ||
            octet_length(r.principal) || ':' || r.principal ||
            octet_length(r.method) || ':' || r.method ||
            octet_length(r.tool) || ':' || r.tool ||
            octet_length(r.args) || ':' || r.args ||
            octet_length(r.outcome) || ':' || r.outcome ||
            octet_length(r.lat::text) || ':' || r.lat::text ||
            octet_length(r.detail) || ':' || r.detail ||
            octet_length(v_prev) || ':' || v_prev || v_x, 'UTF8')), 'hex');
        ids := ids || v_id;
        tss := tss || ('epoch'::timestamptz + v_us * interval '1 microsecond');
        hashes := hashes || v_prev;
    END LOOP;
    INSERT INTO audit_log (id, created_at, principal, method, tool, args, outcome, latency_ms,
                           detail, prev_hash, hash, writer, seq, encoded)
    SELECT ids[n], tss[n], coalesce(x.principal, 'anonymous'), coalesce(x.method, ''), x.tool,
           coalesce(x.args, '{}'::jsonb), coalesce(x.outcome, 'unknown'), coalesce(x.latency_ms, 0),
           x.detail, CASE WHEN n = 1 THEN h.last_hash ELSE hashes[n - 1] END, hashes[n],
           x.writer, x.seq, coalesce(x.encoded, false)
      FROM ROWS FROM (jsonb_to_recordset(p_rows) AS (principal text, method text, tool text,
           args jsonb, outcome text, latency_ms integer, detail text, at_us bigint,
           writer text, seq bigint, encoded boolean))
           WITH ORDINALITY AS x(principal, method, tool, args, outcome, latency_ms, detail, at_us,
                                writer, seq, encoded, n);
    UPDATE audit_head SET last_id = v_id, last_hash = v_prev WHERE one;
    RETURN v_id;
END;
$$;

-- Only the server's runtime role may append (no role has UPDATE/DELETE on audit_log).
REVOKE ALL ON FUNCTION csmcp.audit_append_batch(jsonb) FROM PUBLIC;
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'csmcp_app') THEN
        GRANT EXECUTE ON FUNCTION csmcp.audit_append_batch(jsonb) TO csmcp_app;
    END IF;
END;
$$;

-- 0103_audit_batch_fast.sql - audit_append_batch at half the PostgreSQL CPU per record.
--
-- Same contract, same rows and byte-identical hashes as 0101 (so `csmcpctl audit verify` and
-- existing chains are unchanged), but: the records are unpacked once with jsonb_to_recordset
-- instead of ->> per field, the canonical string of audit_canon (length:value for each field)
-- is built inline instead of through a SQL function call per row, and the rows go in with ONE
-- INSERT ... SELECT instead of one INSERT statement per row. Measured on 500-record batches
-- (docs/performance.md): ~2x less PostgreSQL time per record; at 20,000 audited tools/call per
-- second the audit trail was ~70 % of a core of PostgreSQL before this.
-- A record with "at_us": null is treated like one without at_us (0101 failed the batch).

CREATE OR REPLACE FUNCTION csmcp.audit_append_batch(p_rows jsonb)
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    h      record;
    r      record;
    v_id   bigint;
    v_prev text;
    v_us   bigint;
    v_args text;
    v_f    text;
    ids    bigint[] := '{}';
    tss    timestamptz[] := '{}';
    prevs  text[] := '{}';
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
                    coalesce(x.detail, '') AS detail, x.at_us
               FROM jsonb_to_recordset(p_rows) AS x(principal text, method text, tool text,
                    args jsonb, outcome text, latency_ms integer, detail text, at_us bigint) LOOP
        v_id := v_id + 1;
        IF r.at_us IS NULL THEN
            v_us := (extract(epoch FROM date_trunc('microseconds', clock_timestamp())) * 1000000)::bigint;
        ELSE
            v_us := r.at_us;
        END IF;
        v_f := v_id::text;
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
            octet_length(v_prev) || ':' || v_prev, 'UTF8')), 'hex');
        ids := ids || v_id;
        tss := tss || ('epoch'::timestamptz + v_us * interval '1 microsecond');
        hashes := hashes || v_prev;
    END LOOP;
    INSERT INTO audit_log (id, created_at, principal, method, tool, args, outcome, latency_ms,
                           detail, prev_hash, hash)
    SELECT ids[n], tss[n], coalesce(x.principal, 'anonymous'), coalesce(x.method, ''), x.tool,
           coalesce(x.args, '{}'::jsonb), coalesce(x.outcome, 'unknown'), coalesce(x.latency_ms, 0),
           x.detail, CASE WHEN n = 1 THEN h.last_hash ELSE hashes[n - 1] END, hashes[n]
      FROM ROWS FROM (jsonb_to_recordset(p_rows) AS (principal text, method text, tool text,
           args jsonb, outcome text, latency_ms integer, detail text, at_us bigint))
           WITH ORDINALITY AS x(principal, method, tool, args, outcome, latency_ms, detail, at_us, n);
    UPDATE audit_head SET last_id = v_id, last_hash = v_prev WHERE one;
    RETURN v_id;
END;
$$;

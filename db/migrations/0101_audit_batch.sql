-- 0101_audit_batch.sql - batched audit appends (owner: security).
--
-- One call appends a JSON array of records to the hash chain under a single lock and a single
-- commit, so the audit trail keeps up with thousands of tool calls per second (0100's
-- audit_append costs one serialised commit per row). Each element:
--   {"principal", "method", "tool"?, "args"?, "outcome", "latency_ms", "detail"?, "at_us"?}
-- at_us: the event time in microseconds since the epoch as measured by the worker (kept
-- exactly: created_at = epoch + at_us microseconds); missing -> clock_timestamp(). Row hashes
-- are computed exactly as in audit_append, so `csmcpctl audit verify` is unchanged.

CREATE FUNCTION csmcp.audit_append_batch(p_rows jsonb)
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    h      record;
    r      jsonb;
    v_id   bigint;
    v_prev text;
    v_ts   timestamptz;
    v_us   bigint;
    v_args jsonb;
    v_lat  integer;
    v_hash text;
BEGIN
    IF jsonb_typeof(p_rows) <> 'array' THEN
        RAISE EXCEPTION 'audit_append_batch: array expected' USING ERRCODE = '22023';
    END IF;
    SELECT last_id, last_hash INTO h FROM audit_head WHERE one FOR UPDATE;
    v_id := h.last_id;
    v_prev := h.last_hash;
    FOR r IN SELECT value FROM jsonb_array_elements(p_rows) LOOP
        v_id := v_id + 1;
        IF r ? 'at_us' THEN
            v_ts := 'epoch'::timestamptz + ((r->>'at_us')::bigint || ' microseconds')::interval;
        ELSE
            v_ts := date_trunc('microseconds', clock_timestamp());
        END IF;
        v_us := (extract(epoch FROM v_ts) * 1000000)::bigint;
        v_args := coalesce(r->'args', '{}'::jsonb);
        v_lat := coalesce((r->>'latency_ms')::integer, 0);
        v_hash := encode(sha256(convert_to(csmcp.audit_canon(v_id, v_us,
                    coalesce(r->>'principal', 'anonymous'), coalesce(r->>'method', ''),
                    r->>'tool', v_args::text, coalesce(r->>'outcome', 'unknown'), v_lat,
                    r->>'detail', v_prev), 'UTF8')), 'hex');
        INSERT INTO audit_log (id, created_at, principal, method, tool, args, outcome,
                               latency_ms, detail, prev_hash, hash)
        VALUES (v_id, v_ts, coalesce(r->>'principal', 'anonymous'), coalesce(r->>'method', ''),
                r->>'tool', v_args, coalesce(r->>'outcome', 'unknown'), v_lat, r->>'detail',
                v_prev, v_hash);
        v_prev := v_hash;
    END LOOP;
    UPDATE audit_head SET last_id = v_id, last_hash = v_prev WHERE one;
    RETURN v_id;
END;
$$;

REVOKE ALL ON FUNCTION csmcp.audit_append_batch(jsonb) FROM PUBLIC;
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'csmcp_app') THEN
        GRANT EXECUTE ON FUNCTION csmcp.audit_append_batch(jsonb) TO csmcp_app;
    END IF;
END;
$$;

-- audit/audit_append.sql - appends one record to the hash-chained audit_log (docs/security.md):
-- serialised on the audit_head row lock; hash = SHA-256(prev_hash || csmcp.audit_canon(row)).
CREATE OR REPLACE FUNCTION csmcp.audit_append(p_principal text, p_method text, p_tool text, p_args jsonb,
                                              p_outcome text, p_latency_ms integer, p_detail text)
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    h     record;
    v_id  bigint;
    v_ts  timestamptz := date_trunc('microseconds', clock_timestamp());
    v_us  bigint;
    v_hash text;
BEGIN
    SELECT last_id, last_hash INTO h FROM audit_head WHERE one FOR UPDATE;
    v_id := h.last_id + 1;
    v_us := (extract(epoch FROM v_ts) * 1000000)::bigint;
    v_hash := encode(sha256(convert_to(csmcp.audit_canon(v_id, v_us, p_principal, p_method,
                      p_tool, coalesce(p_args, '{}'::jsonb)::text, p_outcome, p_latency_ms,
                      p_detail, h.last_hash), 'UTF8')), 'hex');
    INSERT INTO audit_log (id, created_at, principal, method, tool, args, outcome, latency_ms,
                           detail, prev_hash, hash)
    VALUES (v_id, v_ts, p_principal, p_method, p_tool, coalesce(p_args, '{}'::jsonb), p_outcome,
            p_latency_ms, p_detail, h.last_hash, v_hash);
    UPDATE audit_head SET last_id = v_id, last_hash = v_hash WHERE one;
    RETURN v_id;
END;
$$;

-- Only the server's runtime role may append (no role has UPDATE/DELETE on audit_log).
REVOKE ALL ON FUNCTION csmcp.audit_append(text, text, text, jsonb, text, integer, text) FROM PUBLIC;
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'csmcp_app') THEN
        GRANT EXECUTE ON FUNCTION csmcp.audit_append(text, text, text, jsonb, text, integer, text) TO csmcp_app;
    END IF;
END;
$$;

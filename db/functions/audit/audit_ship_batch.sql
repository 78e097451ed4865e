-- audit/audit_ship_batch.sql - idempotent append (issue 26): the records of a JSON array (as
-- for csmcp.audit_append_batch) whose (writer, seq) is not yet in audit_log go into the hash
-- chain, in array order, byte-identically to audit_append_batch; the others are skipped. Used
-- for the leftovers of a dead worker's spool and for retries whose first attempt may have
-- committed. The audit_head row lock is taken first, so the check and the append are one step
-- for every writer. Returns the chain's last id (NULL when every record was already there).
CREATE OR REPLACE FUNCTION csmcp.audit_ship_batch(p_rows jsonb)
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    v_new jsonb;
BEGIN
    IF jsonb_typeof(p_rows) <> 'array' THEN
        RAISE EXCEPTION 'audit_ship_batch: array expected' USING ERRCODE = '22023';
    END IF;
    PERFORM 1 FROM audit_head WHERE one FOR UPDATE;
    SELECT jsonb_agg(e ORDER BY n) INTO v_new
      FROM jsonb_array_elements(p_rows) WITH ORDINALITY AS t(e, n)
     WHERE e->>'writer' IS NULL
        OR NOT EXISTS (SELECT 1 FROM audit_log a
                        WHERE a.writer = e->>'writer' AND a.seq = (e->>'seq')::bigint);
    IF v_new IS NULL THEN
        RETURN NULL;
    END IF;
    RETURN csmcp.audit_append_batch(v_new);
END;
$$;

REVOKE ALL ON FUNCTION csmcp.audit_ship_batch(jsonb) FROM PUBLIC;
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'csmcp_app') THEN
        GRANT EXECUTE ON FUNCTION csmcp.audit_ship_batch(jsonb) TO csmcp_app;
    END IF;
END;
$$;

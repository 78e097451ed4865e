-- gdpr/erase_client_data.sql - tool erase_client_data (csmcp.gdpr_erase).
-- Deletes every row about the account (children go by ON DELETE CASCADE / SET NULL, level-1
-- tables without a foreign key are deleted explicitly). Returns counts only: no personal data.
CREATE OR REPLACE FUNCTION csmcp.gdpr_erase(p_args jsonb, p_principal text)
RETURNS jsonb LANGUAGE plpgsql SET search_path = pg_catalog, public AS $$
DECLARE
    v_client text := p_args->>'client_id';
    v_before bigint;
    v_n      bigint;
    r        record;
BEGIN
    v_before := (csmcp.gdpr_export(p_args, p_principal)->>'row_count')::bigint;
    FOR r IN
        SELECT c.relname AS tbl
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'client_id' AND NOT a.attisdropped
         WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
           AND c.relname NOT IN ('api_keys', 'audit_log', 'audit_head', 'secrets', 'accounts')
    LOOP
        EXECUTE format('DELETE FROM %I WHERE client_id = $1', r.tbl) USING v_client;
    END LOOP;
    DELETE FROM accounts WHERE client_id = v_client;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN jsonb_build_object('client_id', v_client, 'erased', v_n = 1, 'rows_deleted', v_before);
END;
$$;

-- gdpr/export_client_data.sql - tool export_client_data (csmcp.gdpr_export): everything held
-- about an account, found through the catalog (every table with a client_id column, and their
-- direct children), so new domain tables are covered without editing this file.

-- Tables holding an account's data: level 1 has a client_id column; level 2 references a
-- level-1 table through a one-column foreign key and has no client_id of its own.
CREATE OR REPLACE FUNCTION csmcp.gdpr_export(p_args jsonb, p_principal text)
RETURNS jsonb LANGUAGE plpgsql STABLE SET search_path = pg_catalog, public AS $$
DECLARE
    v_client text := p_args->>'client_id';
    v_tables jsonb := '{}';
    v_rows   jsonb;
    v_total  bigint := 0;
    r        record;
BEGIN
    IF v_client IS NULL OR NOT EXISTS (SELECT 1 FROM accounts WHERE client_id = v_client) THEN
        RAISE EXCEPTION 'account % not found', coalesce(v_client, '(none)')
            USING ERRCODE = 'P0002';
    END IF;
    FOR r IN
        SELECT c.relname AS tbl
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'client_id' AND NOT a.attisdropped
         -- views too: segment_members (migration 0180) is the union of segment_member_rows and
         -- the member arrays, listed under its name in place of the rows table
         WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v')
           AND c.relname NOT IN ('api_keys', 'audit_log', 'audit_head', 'secrets', 'segment_member_rows')
         ORDER BY c.relname
    LOOP
        EXECUTE format('SELECT coalesce(jsonb_agg(to_jsonb(t)), ''[]'') FROM %I t WHERE client_id = $1',
                       r.tbl) INTO v_rows USING v_client;
        IF jsonb_array_length(v_rows) > 0 THEN
            v_tables := v_tables || jsonb_build_object(r.tbl, v_rows);
            v_total := v_total + jsonb_array_length(v_rows);
        END IF;
    END LOOP;
    FOR r IN
        SELECT ch.relname AS tbl, ca.attname AS fkcol, pa.relname AS parent, pk.attname AS pkcol
          FROM pg_constraint k
          JOIN pg_class ch ON ch.oid = k.conrelid
          JOIN pg_namespace n ON n.oid = ch.relnamespace
          JOIN pg_class pa ON pa.oid = k.confrelid
          JOIN pg_attribute ca ON ca.attrelid = k.conrelid AND ca.attnum = k.conkey[1]
          JOIN pg_attribute pk ON pk.attrelid = k.confrelid AND pk.attnum = k.confkey[1]
         WHERE k.contype = 'f' AND cardinality(k.conkey) = 1 AND n.nspname = 'public'
           AND EXISTS (SELECT 1 FROM pg_attribute x WHERE x.attrelid = pa.oid
                          AND x.attname = 'client_id' AND NOT x.attisdropped)
           AND pa.relname <> 'accounts'
           AND NOT EXISTS (SELECT 1 FROM pg_attribute x WHERE x.attrelid = ch.oid
                              AND x.attname = 'client_id' AND NOT x.attisdropped)
         ORDER BY ch.relname, ca.attname
    LOOP
        EXECUTE format('SELECT coalesce(jsonb_agg(to_jsonb(t)), ''[]'') FROM %I t WHERE t.%I IN '
                       '(SELECT p.%I FROM %I p WHERE p.client_id = $1)',
                       r.tbl, r.fkcol, r.pkcol, r.parent) INTO v_rows USING v_client;
        IF jsonb_array_length(v_rows) > 0 THEN
            v_tables := v_tables || jsonb_build_object(r.tbl,
                            coalesce(v_tables->r.tbl, '[]'::jsonb) || v_rows);
            v_total := v_total + jsonb_array_length(v_rows);
        END IF;
    END LOOP;
    RETURN jsonb_build_object('client_id', v_client,
                              'exported_at', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                              'row_count', v_total,
                              'tables', v_tables);
END;
$$;

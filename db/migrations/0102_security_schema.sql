-- 0102_security_schema.sql - puts the security tables in schema public (owner: security).
--
-- 0100 created api_keys, secrets, audit_log and audit_head without a schema name. When the
-- migrating role is called like an existing schema (role csmcp, schema csmcp: the usual set-up),
-- the default search_path "$user", public put them in schema csmcp, where the SECURITY DEFINER
-- functions (search_path pg_catalog, public) cannot see them. Move them (indexes, triggers and
-- grants move with them); a database where they already are in public is left alone.
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['api_keys', 'secrets', 'audit_log', 'audit_head'] LOOP
        IF to_regclass('csmcp.' || t) IS NOT NULL AND to_regclass('public.' || t) IS NULL THEN
            EXECUTE format('ALTER TABLE csmcp.%I SET SCHEMA public', t);
        END IF;
    END LOOP;
END;
$$;

-- audit/audit_refuse.sql - audit_log is append-only: UPDATE, DELETE and TRUNCATE are refused
-- for every role (rows are only written by csmcp.audit_append / audit_append_batch).
CREATE OR REPLACE FUNCTION csmcp.audit_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only (% refused)', TG_OP USING ERRCODE = '42501';
END;
$$;

CREATE OR REPLACE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION csmcp.audit_refuse();

CREATE OR REPLACE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.audit_refuse();

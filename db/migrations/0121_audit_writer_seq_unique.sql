-- 0121_audit_writer_seq_unique.sql - one row per audit record id (writer, seq) (owner: security;
-- issue 26). The local audit spool ships records that may already be in the chain (a worker
-- killed after PostgreSQL committed a batch but before its spool segment was deleted; a retry
-- after a commit whose answer was lost): csmcp.audit_ship_batch skips the ids present, and this
-- index makes a duplicate impossible. A table that already holds a duplicate (which
-- `csmcpctl audit verify` reports as BROKEN) gets a plain index instead, so the migration never
-- fails on old data; the shipper's lookup uses either.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM audit_log WHERE writer IS NOT NULL
                GROUP BY writer, seq HAVING count(*) > 1) THEN
        RAISE WARNING 'audit_log holds duplicate (writer, seq) records: creating a non-unique index';
        CREATE INDEX IF NOT EXISTS audit_log_writer_seq_key ON audit_log (writer, seq)
            WHERE writer IS NOT NULL;
    ELSE
        CREATE UNIQUE INDEX IF NOT EXISTS audit_log_writer_seq_key ON audit_log (writer, seq)
            WHERE writer IS NOT NULL;
    END IF;
END;
$$;

-- 0120_audit_writer_seq.sql - audit records carry their writer's sequence number, and records
-- that PostgreSQL cannot store as they are keep a safe form (owner: security; issue 23).
--
--   writer   the worker process that produced the record ("<pid>-<16 hex>", new per process)
--   seq      1, 2, 3 ... per writer, assigned when the record is made - before anything can
--            lose it - so a record that never reached the table (dropped buffer, failed batch)
--            leaves a gap that `csmcpctl audit verify` reports, even though the hash chain of
--            what was written is intact.
--   encoded  true when the record as made could not be stored (e.g. text PostgreSQL refuses)
--            and was stored in a safe form instead: its arguments hex-encoded
--            ({"_hex": "...", "_bytes": n}), other text fields as "hex:<hex>" when not valid
--            UTF-8. Never dropped.
-- Rows with a writer hash three more fields after the 0100 canonical text: writer, seq and
-- encoded ("t"/"f"), each length-prefixed. Older rows (writer NULL, e.g. from audit_append)
-- hash exactly as before, so existing chains still verify. The writer is
-- db/functions/audit/audit_append_batch.sql.

ALTER TABLE audit_log ADD COLUMN writer text, ADD COLUMN seq bigint,
    ADD COLUMN encoded boolean NOT NULL DEFAULT false,
    ADD CONSTRAINT audit_log_writer_seq CHECK ((writer IS NULL) = (seq IS NULL) AND
                                               (seq IS NULL OR seq >= 1));

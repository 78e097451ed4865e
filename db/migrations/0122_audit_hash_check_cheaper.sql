-- 0122_audit_hash_check_cheaper.sql - the same CHECK on audit_log.hash and prev_hash (exactly 64
-- lower-case hex digits), without a regular expression (owner: security; issue 21/26, the
-- audited hot path). The regex form cost PostgreSQL about 6 us of CPU per appended record of
-- the ~43 us an append cost (measured with 40 batches of 500 records: 43 -> 37 us); the
-- ltrim form accepts and refuses exactly the same strings ('^[0-9a-f]{64}$': 64 characters, all
-- from the set; they are ASCII, so 64 bytes). Hashes are unchanged: this touches no row.
ALTER TABLE audit_log
    DROP CONSTRAINT IF EXISTS audit_log_hash_check,
    DROP CONSTRAINT IF EXISTS audit_log_prev_hash_check,
    ADD CONSTRAINT audit_log_hash_check
        CHECK (octet_length(hash) = 64 AND ltrim(hash, '0123456789abcdef') = ''),
    ADD CONSTRAINT audit_log_prev_hash_check
        CHECK (octet_length(prev_hash) = 64 AND ltrim(prev_hash, '0123456789abcdef') = '');

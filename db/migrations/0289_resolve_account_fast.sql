-- 0289: resolve_account under 50 ms at 10,000 accounts (issue 24). The demo names share a small
-- vocabulary, so a common word ("foods") gave the 0280 trigram GIN indexes thousands of
-- candidates per query, each rechecked on the heap (lower() + trigram extraction of the text, for
-- % and for <%). GiST leaf entries hold each text's trigram array, so the index decides % exactly
-- (no heap recheck) and <% on a tight bound: same operators, same answers, 2-4x less work.
-- siglen=128: inner-page signatures of 1024 bits prune more than the 96-bit default.
CREATE INDEX IF NOT EXISTS accounts_client_name_trgm_gist ON accounts USING gist (lower(client_name) gist_trgm_ops(siglen=128));
CREATE INDEX IF NOT EXISTS accounts_company_name_trgm_gist ON accounts USING gist (lower(company_name) gist_trgm_ops(siglen=128));
CREATE INDEX IF NOT EXISTS accounts_client_id_trgm_gist ON accounts USING gist (lower(client_id) gist_trgm_ops(siglen=128));
CREATE INDEX IF NOT EXISTS accounts_contact_email_trgm_gist ON accounts USING gist (lower(primary_contact_email) gist_trgm_ops(siglen=128));
CREATE INDEX IF NOT EXISTS contacts_email_trgm_gist ON contacts USING gist (lower(email) gist_trgm_ops(siglen=128));
-- the GIN indexes only served resolve_account; with both, the planner may still pick GIN
DROP INDEX IF EXISTS accounts_client_name_trgm;
DROP INDEX IF EXISTS accounts_company_name_trgm;
DROP INDEX IF EXISTS accounts_client_id_trgm;
DROP INDEX IF EXISTS accounts_contact_email_trgm;
DROP INDEX IF EXISTS contacts_email_trgm;

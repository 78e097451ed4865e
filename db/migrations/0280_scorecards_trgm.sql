-- 0280: fuzzy account lookup (resolve_account, issue 24). pg_trgm is a trusted extension
-- (PostgreSQL 13+), so the database owner can create it; scripts/dev installs postgresql-contrib.
-- Trigram GIN indexes on the lower-cased texts resolve_account compares, so that its
-- similarity operators (% and <%) use an index at 10,000 accounts.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE INDEX IF NOT EXISTS accounts_client_name_trgm ON accounts USING gin (lower(client_name) gin_trgm_ops);
CREATE INDEX IF NOT EXISTS accounts_company_name_trgm ON accounts USING gin (lower(company_name) gin_trgm_ops);
CREATE INDEX IF NOT EXISTS accounts_client_id_trgm ON accounts USING gin (lower(client_id) gin_trgm_ops);
CREATE INDEX IF NOT EXISTS accounts_contact_email_trgm ON accounts USING gin (lower(primary_contact_email) gin_trgm_ops);
CREATE INDEX IF NOT EXISTS contacts_email_trgm ON contacts USING gin (lower(email) gin_trgm_ops);

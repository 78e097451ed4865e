-- 0285: exact e-mail / domain lookups of resolve_account (issue 24) without a scan.
CREATE INDEX IF NOT EXISTS contacts_email_lower_idx ON contacts (lower(email));
CREATE INDEX IF NOT EXISTS contacts_email_domain_idx ON contacts (split_part(lower(email), '@', 2));
CREATE INDEX IF NOT EXISTS accounts_contact_email_lower_idx ON accounts (lower(primary_contact_email));
CREATE INDEX IF NOT EXISTS accounts_contact_email_domain_idx ON accounts (split_part(lower(primary_contact_email), '@', 2));

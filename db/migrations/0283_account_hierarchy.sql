-- 0283: account hierarchies (manage_account_hierarchy, issue 24): an account's parent account.
-- Cycles are refused by the tool (under a transaction advisory lock); a self-parent by the CHECK.
CREATE TABLE account_parents (
    client_id  text PRIMARY KEY REFERENCES accounts ON DELETE CASCADE,
    parent_id  text NOT NULL REFERENCES accounts ON DELETE CASCADE,
    set_by     text NOT NULL,
    set_at     timestamptz NOT NULL DEFAULT now(),
    CHECK (parent_id <> client_id)
);
CREATE INDEX account_parents_parent_idx ON account_parents (parent_id);

-- 0182_account_search.sql - resolve_account's candidate structure (issue 21). The trigram indexes
-- on accounts/contacts (0280 GIN, 0289 GiST) could not keep resolve_account under 50 ms at 10,000
-- accounts: the demo names share a small vocabulary, so GIN returned thousands of candidates per
-- query, each rechecked by re-extracting the text's trigrams (~3 us each), and GiST read its
-- indexes almost whole (10 scans per call; 0.8-0.9 s at 100,000 accounts).
--
--   account_search: one row per searchable text of an account (src 1 client_name, 2 company_name,
--   3 client_id, 4 primary_contact_email, 5 a contact's e-mail; contact_id 0 for src 1-4): the
--   text, its pg_trgm trigrams as sorted integers (trg: each trigram's 3 bytes, exactly the
--   trigrams pg_trgm's similarity() compares), their number (ntrg) and keys = trg x 64 + the
--   text's size class (csmcp.search_keys). resolve_account takes the candidates by a GIN overlap on keys: a text of
--   m trigrams that matches shares at least k(m) of the query's n trigrams (similarity
--   s / (n + m - s) >= 0.3 needs s >= 0.3 (n + m) / 1.3; word_similarity >= 0.6 needs s >= 0.6 n),
--   so it holds one of the query's n - k(m) + 1 rarest trigrams (prefix filter), probed with the
--   size class; then it counts s by the integer intersection of trg with the query's (intarray's
--   &, ~20x cheaper than re-extracting the trigrams; keys would need the query in all 16 size
--   classes, and & sorts both arrays each time) and decides similarity() from it, word_similarity() (pg_trgm)
--   only for the few texts sharing ceil(0.6 n). The row is kept narrow (no lower-cased copy) and the rebuild writes the rows in text order (e-mails by domain), so
--   that the candidates of one word lie on few heap pages.
--   account_search_freq: how many texts hold each trigram, to pick the rarest. Refreshed by the
--   rebuild only: a stale count changes which trigrams are probed (speed), never the answer.
--
-- intarray goes into its own schema, outside every search_path: installed in public its
-- int[] operators (&&, @>, <@) would take precedence over the built-in ones for every int[]
-- expression in other queries, which then could not use the built-in GIN array indexes.
--
-- Invariants (db/functions/scorecards/account_search.sql): exact, maintained by row triggers on
-- accounts and contacts in the writing transaction; csmcp.account_search_check() compares it with
-- the texts from scratch; the function file fills it when it is empty and accounts exist.
CREATE SCHEMA IF NOT EXISTS csmcp_intarray;
CREATE EXTENSION IF NOT EXISTS intarray SCHEMA csmcp_intarray;

CREATE TABLE account_search (
    client_id text NOT NULL,
    src smallint NOT NULL CHECK (src BETWEEN 1 AND 5),
    contact_id bigint NOT NULL DEFAULT 0,
    val text NOT NULL,
    ntrg integer NOT NULL,
    trg integer[] NOT NULL,
    keys integer[] NOT NULL,
    PRIMARY KEY (client_id, src, contact_id)
);
-- the built-in array_ops (&& is exact there: no recheck of the row)
CREATE INDEX account_search_keys ON account_search USING gin (keys);
-- the rows of one contact (its triggers) without knowing its account
CREATE INDEX account_search_contact ON account_search (contact_id) WHERE contact_id <> 0;

CREATE TABLE account_search_freq (
    code integer PRIMARY KEY,
    n integer NOT NULL
);

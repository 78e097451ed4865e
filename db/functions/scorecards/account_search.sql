-- scorecards/account_search.sql - the searchable texts of accounts and contacts with their
-- trigrams (table account_search, migration 0182), resolve_account's candidate structure:
-- trigram codes, from-scratch rows, check, rebuild and the maintaining triggers.

-- pg_trgm's trigrams of t (show_trgm, i.e. generate_trgm: the words lower-cased, padded, unique)
-- as integers, sorted: each trigram's 3 bytes (show_trgm prints a trigram with a byte outside
-- ASCII letters, digits and space as "0x" and its 3 bytes in 6 hex digits, otherwise the 3
-- characters), so two texts share an integer exactly when pg_trgm counts a shared trigram.
CREATE OR REPLACE FUNCTION csmcp.trgm_codes(t text) RETURNS integer[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(array_agg(c ORDER BY c), '{}')
      FROM (SELECT CASE WHEN length(x) = 3
                        THEN (ascii(substr(x, 1, 1)) << 16) | (ascii(substr(x, 2, 1)) << 8) | ascii(substr(x, 3, 1))
                        ELSE ('x' || lpad(substr(x, 3), 8, '0'))::bit(32)::integer END AS c
              FROM unnest(show_trgm(t)) x) y
$$;

-- The size classes of account_search's keys: class i holds the texts of bounds[i] up to
-- bounds[i+1] - 1 trigrams (the last one, bounds[16] or more). Changing them changes the stored
-- keys: run csmcp.account_search_rebuild().
CREATE OR REPLACE FUNCTION csmcp.search_size_bounds() RETURNS integer[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT '{1,4,6,8,10,12,14,16,18,20,23,26,30,35,41,49}'::integer[]
$$;

-- The GIN keys of a text: each trigram tagged with the size class of the text (trigram x 64 +
-- class), so that a query probes each class with the trigrams its smallest size needs
-- (resolve_account). A text without trigrams has no keys.
CREATE OR REPLACE FUNCTION csmcp.search_keys(trg integer[]) RETURNS integer[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(array_agg(c * 64 + width_bucket(cardinality(trg), csmcp.search_size_bounds()) ORDER BY c), '{}')
      FROM unnest(trg) c
$$;

-- Every searchable text from scratch (src 1 client_name, 2 company_name, 3 client_id,
-- 4 primary_contact_email, 5 a contact's e-mail; NULL texts match nothing and are left out).
CREATE OR REPLACE FUNCTION csmcp.account_search_scratch()
RETURNS SETOF account_search LANGUAGE sql STABLE AS $$
    SELECT y.client_id, y.src, y.contact_id, y.val, cardinality(y.trg), y.trg, csmcp.search_keys(y.trg)
      FROM (SELECT x.*, csmcp.trgm_codes(lower(x.val)) AS trg
              FROM (SELECT a.client_id, v.src, 0::bigint AS contact_id, v.val
                      FROM accounts a
                     CROSS JOIN LATERAL (VALUES (1::smallint, a.client_name), (2::smallint, a.company_name),
                                                (3::smallint, a.client_id), (4::smallint, a.primary_contact_email)) v(src, val)
                     WHERE v.val IS NOT NULL
                    UNION ALL
                    SELECT c.client_id, 5::smallint, c.contact_id, c.email FROM contacts c WHERE c.email IS NOT NULL) x
             OFFSET 0) y   -- (not flattened: the trigrams once per text, not once per use)
$$;

-- Rows of account_search that differ from the from-scratch texts (empty = exact).
CREATE OR REPLACE FUNCTION csmcp.account_search_check()
RETURNS TABLE (client_id text, src smallint, contact_id bigint, stored text, scratch text) LANGUAGE sql STABLE AS $$
    SELECT coalesce(a.client_id, b.client_id), coalesce(a.src, b.src), coalesce(a.contact_id, b.contact_id),
           (a.val, a.ntrg, a.trg, a.keys)::text, (b.val, b.ntrg, b.trg, b.keys)::text
      FROM account_search a
      FULL JOIN csmcp.account_search_scratch() b
        ON a.client_id = b.client_id AND a.src = b.src AND a.contact_id = b.contact_id
     WHERE (a.val, a.ntrg, a.trg, a.keys) IS DISTINCT FROM (b.val, b.ntrg, b.trg, b.keys)
$$;

-- Recomputes the texts and the trigram frequencies. The SHARE locks wait for the account and
-- contact writers in flight and hold new ones until this transaction ends, so no trigger's rows
-- are both recomputed and applied.
CREATE OR REPLACE FUNCTION csmcp.account_search_rebuild() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    LOCK TABLE accounts, contacts IN SHARE MODE;
    DELETE FROM account_search;
    -- in text order, e-mails by domain: the texts that share a word (the candidates of a query)
    -- on few heap pages
    INSERT INTO account_search
    SELECT * FROM csmcp.account_search_scratch() s
     ORDER BY s.src = 5, split_part(lower(s.val), '@', 2), lower(s.val), s.client_id, s.src, s.contact_id;
    PERFORM csmcp.account_search_freq_refresh();
END $$;

-- How many texts hold each trigram (resolve_account probes the query's rarest trigrams). Only
-- the speed depends on it, so it is refreshed by the rebuild and may be called at any time.
CREATE OR REPLACE FUNCTION csmcp.account_search_freq_refresh() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM account_search_freq;
    INSERT INTO account_search_freq (code, n)
    SELECT c, count(*) FROM account_search s CROSS JOIN LATERAL unnest(s.trg) c GROUP BY c ORDER BY c;
END $$;

-- accounts: the four texts of the row (insert), replaced when one of them changes, removed with
-- the account (its contacts' rows go with the contacts' cascade, by their own trigger).
CREATE OR REPLACE FUNCTION csmcp.account_search_accounts_trg() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF csmcp.portfolio_bulk() THEN
        RETURN NULL;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        DELETE FROM account_search s WHERE s.client_id = OLD.client_id AND s.src BETWEEN 1 AND 4;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO account_search
        SELECT NEW.client_id, v.src, 0, v.val, cardinality(r.trg), r.trg, csmcp.search_keys(r.trg)
          FROM (VALUES (1::smallint, NEW.client_name), (2::smallint, NEW.company_name), (3::smallint, NEW.client_id),
                       (4::smallint, NEW.primary_contact_email)) v(src, val)
         CROSS JOIN LATERAL (SELECT csmcp.trgm_codes(lower(v.val)) AS trg OFFSET 0) r
         WHERE v.val IS NOT NULL;
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER account_search_accounts_ins AFTER INSERT ON accounts
    FOR EACH ROW EXECUTE FUNCTION csmcp.account_search_accounts_trg();
CREATE OR REPLACE TRIGGER account_search_accounts_upd
    AFTER UPDATE OF client_id, client_name, company_name, primary_contact_email ON accounts FOR EACH ROW
    WHEN (OLD.client_id IS DISTINCT FROM NEW.client_id OR OLD.client_name IS DISTINCT FROM NEW.client_name
          OR OLD.company_name IS DISTINCT FROM NEW.company_name
          OR OLD.primary_contact_email IS DISTINCT FROM NEW.primary_contact_email)
    EXECUTE FUNCTION csmcp.account_search_accounts_trg();
CREATE OR REPLACE TRIGGER account_search_accounts_del AFTER DELETE ON accounts
    FOR EACH ROW EXECUTE FUNCTION csmcp.account_search_accounts_trg();

-- contacts: one text per contact (its e-mail), keyed by contact_id.
CREATE OR REPLACE FUNCTION csmcp.account_search_contacts_trg() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF csmcp.portfolio_bulk() THEN
        RETURN NULL;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        DELETE FROM account_search s WHERE s.contact_id = OLD.contact_id AND s.contact_id <> 0;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.email IS NOT NULL THEN
        INSERT INTO account_search
        SELECT NEW.client_id, 5, NEW.contact_id, NEW.email, cardinality(r.trg), r.trg, csmcp.search_keys(r.trg)
          FROM (SELECT csmcp.trgm_codes(lower(NEW.email)) AS trg OFFSET 0) r;
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER account_search_contacts_ins AFTER INSERT ON contacts
    FOR EACH ROW EXECUTE FUNCTION csmcp.account_search_contacts_trg();
CREATE OR REPLACE TRIGGER account_search_contacts_upd AFTER UPDATE OF client_id, email, contact_id ON contacts FOR EACH ROW
    WHEN (OLD.client_id IS DISTINCT FROM NEW.client_id OR OLD.email IS DISTINCT FROM NEW.email
          OR OLD.contact_id IS DISTINCT FROM NEW.contact_id)
    EXECUTE FUNCTION csmcp.account_search_contacts_trg();
CREATE OR REPLACE TRIGGER account_search_contacts_del AFTER DELETE ON contacts
    FOR EACH ROW EXECUTE FUNCTION csmcp.account_search_contacts_trg();

CREATE OR REPLACE FUNCTION csmcp.account_search_trunc_trg() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- TRUNCATE accounts reaches contacts only by CASCADE: each table empties its own rows
    IF TG_TABLE_NAME = 'accounts' THEN
        DELETE FROM account_search WHERE src BETWEEN 1 AND 4;
    ELSE
        DELETE FROM account_search WHERE src = 5;
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER account_search_accounts_trunc AFTER TRUNCATE ON accounts
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.account_search_trunc_trg();
CREATE OR REPLACE TRIGGER account_search_contacts_trunc AFTER TRUNCATE ON contacts
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.account_search_trunc_trg();

-- Installing the triggers over existing accounts (a database migrated from before 0182): fill
-- the table in this same transaction, under the rebuild's locks.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM account_search) AND EXISTS (SELECT 1 FROM accounts) THEN
        PERFORM csmcp.account_search_rebuild();
    END IF;
END $$;

-- segment_members: the members of every stored segment (migration 0180). A view over the rows
-- written one by one (segment_member_rows, the former table) and the member arrays the
-- segmentation tools write once per segment (segment_member_sets), so readers see one relation
-- (segment_id, client_id) whichever way a segment was stored. The sets exist because one row per
-- account and call, with two foreign-key checks each, was most of segment_by_value_tier's and
-- segment_customers' time (seconds at 100,000 accounts, issue 21).
CREATE OR REPLACE VIEW segment_members AS
    SELECT r.segment_id, r.client_id FROM segment_member_rows r
    UNION ALL
    SELECT s.segment_id, m.client_id FROM segment_member_sets s CROSS JOIN LATERAL unnest(s.client_ids) m(client_id);

-- Rows inserted through the view land in segment_member_rows (its foreign keys check them).
CREATE OR REPLACE FUNCTION csmcp.segment_members_ins_trg() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO segment_member_rows (segment_id, client_id) VALUES (NEW.segment_id, NEW.client_id);
    RETURN NEW;
END $$;

CREATE OR REPLACE TRIGGER segment_members_ins INSTEAD OF INSERT ON segment_members
    FOR EACH ROW EXECUTE FUNCTION csmcp.segment_members_ins_trg();

-- Runs that store member arrays and deletions of accounts are serialised on the segments table
-- (not on segment_member_sets itself: a deletion's own UPDATE of the sets takes ROW EXCLUSIVE
-- there, which would make two deletions wait for each other): a run takes ROW EXCLUSIVE - it
-- inserts segments anyway, and runs do not wait for each other - before it reads the accounts;
-- a deletion takes SHARE (before the statement's cascades take their own locks), so it waits for the runs that may have read its accounts and then
-- removes them from their arrays, and a run waits for a deletion in flight and reads the
-- accounts after it (what the foreign key of the rows did).
CREATE OR REPLACE FUNCTION csmcp.segment_sets_lock() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    LOCK TABLE segments IN ROW EXCLUSIVE MODE;
END $$;

-- Deleted accounts leave every member array in the deleting transaction (the rows go by their
-- foreign key's cascade). Like the cascade into the rows (no index on their client_id), this
-- reads every stored set: deleting accounts is rare (erasure, re-seeding).
CREATE OR REPLACE FUNCTION csmcp.segment_sets_accounts_del_trg() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_ids text[];
BEGIN
    SELECT array_agg(client_id) INTO v_ids FROM ot;
    IF v_ids IS NULL THEN
        RETURN NULL;
    END IF;
    IF cardinality(v_ids) <= 64 THEN
        -- a few accounts (erasure): && and <> ALL compare each member with each of them
        UPDATE segment_member_sets s
           SET client_ids = ARRAY(SELECT u.x FROM unnest(s.client_ids) WITH ORDINALITY u(x, o)
                                  WHERE u.x <> ALL (v_ids) ORDER BY u.o)
         WHERE s.client_ids && v_ids;
    ELSE
        -- many (a re-seed): one hash join of every member against them
        UPDATE segment_member_sets s SET client_ids = n.ids
          FROM (SELECT s2.segment_id,
                       coalesce(array_agg(u.x ORDER BY u.o) FILTER (WHERE d.client_id IS NULL), '{}') AS ids
                  FROM segment_member_sets s2
                 CROSS JOIN LATERAL unnest(s2.client_ids) WITH ORDINALITY u(x, o)
                  LEFT JOIN ot d ON d.client_id = u.x
                 GROUP BY s2.segment_id HAVING count(d.client_id) > 0) n
         WHERE n.segment_id = s.segment_id;
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER segment_sets_accounts_del AFTER DELETE ON accounts REFERENCING OLD TABLE AS ot
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.segment_sets_accounts_del_trg();

-- The SHARE lock before any row is deleted: the cascades into other tables take locks of their
-- own (usage_daily's writer lock), and taking this one after them let a transaction holding
-- ROW EXCLUSIVE (a run, then a deletion) and a plain deletion wait for each other.
CREATE OR REPLACE FUNCTION csmcp.segment_sets_accounts_lock_trg() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    LOCK TABLE segments IN SHARE MODE;
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER segment_sets_accounts_lock BEFORE DELETE ON accounts
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.segment_sets_accounts_lock_trg();

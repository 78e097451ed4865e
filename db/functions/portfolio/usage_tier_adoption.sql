-- portfolio/usage_tier_adoption.sql - feature_adoption rows per (account tier, first-use day)
-- (table adoption_tier_daily, migration 0291: design and invariants there): delta rows written by
-- statement triggers on feature_adoption and accounts, the full rebuild (called by
-- csmcp.portfolio_rebuild) and the check; csmcp.portfolio_compact() merges the deltas.
--
-- Ordering: an adoption writer reads its accounts' tiers FOR SHARE (in client_id order, as the
-- portfolio usage trigger), so a concurrent tier change of one of them waits for its commit (and
-- then moves its rows too) or it for the tier change's (and then reads the new tier, READ
-- COMMITTED). A tier change takes no other lock: the usage writers' lock there deadlocked with
-- update_client_info (the account locked FOR UPDATE, then the lock, while ingest held the lock and
-- waited for the account).

-- The table from scratch.
CREATE OR REPLACE FUNCTION csmcp.adoption_tier_of()
RETURNS TABLE (tier text, day date, n bigint)
LANGUAGE sql STABLE AS $$
    SELECT a.tier, f.first_used_on, count(*)
    FROM feature_adoption f JOIN accounts a USING (client_id)
    GROUP BY 1, 2
$$;

-- Adoption rows inserted, updated or deleted: +1 per new row, -1 per old row, in the tier of the
-- row's account. An account that is not visible any more was deleted by this statement's cascade:
-- adoption_tier_acc_del subtracted its rows before the account row went, so they are skipped.
CREATE OR REPLACE FUNCTION csmcp.adoption_tier_trg() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    IF csmcp.portfolio_bulk() THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        WITH d AS (SELECT client_id, first_used_on AS day, count(*) AS k FROM nt GROUP BY 1, 2),
        acc AS (SELECT a.client_id, a.tier FROM accounts a
                WHERE a.client_id IN (SELECT client_id FROM d) ORDER BY a.client_id FOR SHARE)
        INSERT INTO adoption_tier_daily (tier, day, n)
        SELECT acc.tier, d.day, sum(d.k) FROM d JOIN acc USING (client_id) GROUP BY 1, 2;
    ELSIF TG_OP = 'UPDATE' THEN
        WITH d AS (SELECT client_id, day, sum(k) AS k
                   FROM (SELECT client_id, first_used_on AS day, 1 AS k FROM nt
                         UNION ALL SELECT client_id, first_used_on, -1 FROM ot) x
                   GROUP BY 1, 2 HAVING sum(k) <> 0),
        acc AS (SELECT a.client_id, a.tier FROM accounts a
                WHERE a.client_id IN (SELECT client_id FROM d) ORDER BY a.client_id FOR SHARE)
        INSERT INTO adoption_tier_daily (tier, day, n)
        SELECT acc.tier, d.day, sum(d.k) FROM d JOIN acc USING (client_id) GROUP BY 1, 2 HAVING sum(d.k) <> 0;
    ELSE
        WITH d AS (SELECT client_id, first_used_on AS day, count(*) AS k FROM ot GROUP BY 1, 2),
        acc AS (SELECT a.client_id, a.tier FROM accounts a
                WHERE a.client_id IN (SELECT client_id FROM d) ORDER BY a.client_id FOR SHARE)
        INSERT INTO adoption_tier_daily (tier, day, n)
        SELECT acc.tier, d.day, -sum(d.k) FROM d JOIN acc USING (client_id) GROUP BY 1, 2;
    END IF;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n > 0 THEN
        PERFORM csmcp.portfolio_after_write(currval('adoption_tier_daily_id_seq'), n);
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER adoption_tier_ins AFTER INSERT ON feature_adoption REFERENCING NEW TABLE AS nt
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.adoption_tier_trg();
CREATE OR REPLACE TRIGGER adoption_tier_upd AFTER UPDATE ON feature_adoption REFERENCING OLD TABLE AS ot NEW TABLE AS nt
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.adoption_tier_trg();
CREATE OR REPLACE TRIGGER adoption_tier_del AFTER DELETE ON feature_adoption REFERENCING OLD TABLE AS ot
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.adoption_tier_trg();

-- Accounts whose tier changed take their adoption rows from the old tier to the new one (read
-- after the accounts are locked by the update: every adoption writer holding one of them FOR
-- SHARE has committed).
CREATE OR REPLACE FUNCTION csmcp.adoption_tier_acc_trg() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    IF csmcp.portfolio_bulk() THEN
        RETURN NULL;
    END IF;
    INSERT INTO adoption_tier_daily (tier, day, n)
    SELECT m.tier, f.first_used_on, sum(m.k)
    FROM (SELECT o.client_id, o.tier, -1 AS k FROM ot o JOIN nt USING (client_id) WHERE nt.tier <> o.tier
          UNION ALL SELECT nt.client_id, nt.tier, 1 FROM ot o JOIN nt USING (client_id) WHERE nt.tier <> o.tier) m
    JOIN feature_adoption f USING (client_id)
    GROUP BY 1, 2 HAVING sum(m.k) <> 0;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n > 0 THEN
        PERFORM csmcp.portfolio_after_write(currval('adoption_tier_daily_id_seq'), n);
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER adoption_tier_acc_upd AFTER UPDATE ON accounts REFERENCING OLD TABLE AS ot NEW TABLE AS nt
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.adoption_tier_acc_trg();

-- An account about to be deleted: its adoption rows leave its tier now, while the account row
-- still gives the tier; the cascade that deletes them runs after the row is gone, and
-- adoption_tier_trg then skips them. (The row is locked here: adoption writers of the account
-- have committed, and new ones wait for the deletion and then fail their foreign key check.)
CREATE OR REPLACE FUNCTION csmcp.adoption_tier_acc_del_trg() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF csmcp.portfolio_bulk() THEN
        RETURN OLD;
    END IF;
    INSERT INTO adoption_tier_daily (tier, day, n)
    SELECT OLD.tier, f.first_used_on, -count(*) FROM feature_adoption f WHERE f.client_id = OLD.client_id GROUP BY 2;
    RETURN OLD;
END $$;

CREATE OR REPLACE TRIGGER adoption_tier_acc_del BEFORE DELETE ON accounts
    FOR EACH ROW EXECUTE FUNCTION csmcp.adoption_tier_acc_del_trg();

-- Everything from scratch (bulk loads; TRUNCATE of accounts goes through portfolio_rebuild). The
-- EXCLUSIVE lock waits for every transaction that has written deltas and blocks new ones until
-- this transaction ends.
CREATE OR REPLACE FUNCTION csmcp.adoption_tier_rebuild() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    LOCK TABLE adoption_tier_daily IN EXCLUSIVE MODE;
    DELETE FROM adoption_tier_daily;
    INSERT INTO adoption_tier_daily (tier, day, n) SELECT * FROM csmcp.adoption_tier_of();
END $$;

CREATE OR REPLACE FUNCTION csmcp.adoption_tier_trunc_trg() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM csmcp.adoption_tier_rebuild();
    RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER adoption_tier_trunc AFTER TRUNCATE ON feature_adoption
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.adoption_tier_trunc_trg();

-- (tier, day) keys whose summed deltas differ from a from-scratch count (none when exact).
CREATE OR REPLACE FUNCTION csmcp.adoption_tier_check()
RETURNS TABLE (tier text, day date, maintained numeric, actual numeric)
LANGUAGE sql STABLE AS $$
    WITH m AS (SELECT tier, day, sum(n) AS n FROM adoption_tier_daily GROUP BY 1, 2)
    SELECT coalesce(m.tier, a.tier), coalesce(m.day, a.day), coalesce(m.n, 0), coalesce(a.n, 0)
    FROM m FULL JOIN csmcp.adoption_tier_of() a ON a.tier = m.tier AND a.day = m.day
    WHERE coalesce(m.n, 0) <> coalesce(a.n, 0)
$$;

-- portfolio/triggers.sql - the triggers that keep portfolio_counts / portfolio_usage exact
-- (design and invariants: migration 0014_portfolio_totals.sql and docs/data.md). Every writer
-- of accounts, contracts and usage_daily is covered; csmcp.portfolio_bulk() = on skips them.
-- Active-user deltas of usage_daily rows (new minus old), counted in each account's current
-- group (account rows locked FOR SHARE, in key order).
CREATE OR REPLACE FUNCTION csmcp.portfolio_usage_trg() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    IF csmcp.portfolio_bulk() THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        WITH d AS (SELECT client_id, day, sum(active_users) AS au FROM nt GROUP BY 1, 2 HAVING sum(active_users) <> 0),
        acc AS (SELECT a.client_id, a.tier, a.lifecycle_stage FROM accounts a
                WHERE a.client_id IN (SELECT client_id FROM d) ORDER BY a.client_id FOR SHARE)
        INSERT INTO portfolio_usage (day, tier, lifecycle_stage, active_users)
        SELECT d.day, acc.tier, acc.lifecycle_stage, sum(d.au) FROM d JOIN acc USING (client_id)
        GROUP BY 1, 2, 3 HAVING sum(d.au) <> 0;
    ELSIF TG_OP = 'UPDATE' THEN
        WITH d AS (SELECT client_id, day, sum(au) AS au
                   FROM (SELECT client_id, day, active_users::bigint AS au FROM nt
                         UNION ALL SELECT client_id, day, -active_users::bigint FROM ot) x
                   GROUP BY 1, 2 HAVING sum(au) <> 0),
        acc AS (SELECT a.client_id, a.tier, a.lifecycle_stage FROM accounts a
                WHERE a.client_id IN (SELECT client_id FROM d) ORDER BY a.client_id FOR SHARE)
        INSERT INTO portfolio_usage (day, tier, lifecycle_stage, active_users)
        SELECT d.day, acc.tier, acc.lifecycle_stage, sum(d.au) FROM d JOIN acc USING (client_id)
        GROUP BY 1, 2, 3 HAVING sum(d.au) <> 0;
    ELSE
        WITH d AS (SELECT client_id, day, -sum(active_users) AS au FROM ot GROUP BY 1, 2 HAVING sum(active_users) <> 0),
        acc AS (SELECT a.client_id, a.tier, a.lifecycle_stage FROM accounts a
                WHERE a.client_id IN (SELECT client_id FROM d) ORDER BY a.client_id FOR SHARE)
        INSERT INTO portfolio_usage (day, tier, lifecycle_stage, active_users)
        SELECT d.day, acc.tier, acc.lifecycle_stage, sum(d.au) FROM d JOIN acc USING (client_id)
        GROUP BY 1, 2, 3 HAVING sum(d.au) <> 0;
    END IF;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n > 0 THEN
        PERFORM csmcp.portfolio_after_write(currval('portfolio_usage_id_seq'), n);
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER portfolio_usage_ins AFTER INSERT ON usage_daily REFERENCING NEW TABLE AS nt
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.portfolio_usage_trg();

CREATE OR REPLACE TRIGGER portfolio_usage_upd AFTER UPDATE ON usage_daily REFERENCING OLD TABLE AS ot NEW TABLE AS nt
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.portfolio_usage_trg();

CREATE OR REPLACE TRIGGER portfolio_usage_del AFTER DELETE ON usage_daily REFERENCING OLD TABLE AS ot
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.portfolio_usage_trg();

-- ARR deltas: the contract_value of rows that are (or were) the active contract.
CREATE OR REPLACE FUNCTION csmcp.portfolio_contracts_trg() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    IF csmcp.portfolio_bulk() THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        WITH d AS (SELECT client_id, sum(contract_value) AS v FROM nt WHERE status = 'active'
                   GROUP BY 1 HAVING sum(contract_value) <> 0),
        acc AS (SELECT a.client_id, a.tier, a.lifecycle_stage FROM accounts a
                WHERE a.client_id IN (SELECT client_id FROM d) ORDER BY a.client_id FOR SHARE)
        INSERT INTO portfolio_counts (tier, lifecycle_stage, accounts, health_sum, arr)
        SELECT acc.tier, acc.lifecycle_stage, 0, 0, sum(d.v) FROM d JOIN acc USING (client_id)
        GROUP BY 1, 2 HAVING sum(d.v) <> 0;
    ELSIF TG_OP = 'UPDATE' THEN
        WITH d AS (SELECT client_id, sum(v) AS v
                   FROM (SELECT client_id, contract_value AS v FROM nt WHERE status = 'active'
                         UNION ALL SELECT client_id, -contract_value FROM ot WHERE status = 'active') x
                   GROUP BY 1 HAVING sum(v) <> 0),
        acc AS (SELECT a.client_id, a.tier, a.lifecycle_stage FROM accounts a
                WHERE a.client_id IN (SELECT client_id FROM d) ORDER BY a.client_id FOR SHARE)
        INSERT INTO portfolio_counts (tier, lifecycle_stage, accounts, health_sum, arr)
        SELECT acc.tier, acc.lifecycle_stage, 0, 0, sum(d.v) FROM d JOIN acc USING (client_id)
        GROUP BY 1, 2 HAVING sum(d.v) <> 0;
    ELSE
        WITH d AS (SELECT client_id, -sum(contract_value) AS v FROM ot WHERE status = 'active'
                   GROUP BY 1 HAVING sum(contract_value) <> 0),
        acc AS (SELECT a.client_id, a.tier, a.lifecycle_stage FROM accounts a
                WHERE a.client_id IN (SELECT client_id FROM d) ORDER BY a.client_id FOR SHARE)
        INSERT INTO portfolio_counts (tier, lifecycle_stage, accounts, health_sum, arr)
        SELECT acc.tier, acc.lifecycle_stage, 0, 0, sum(d.v) FROM d JOIN acc USING (client_id)
        GROUP BY 1, 2 HAVING sum(d.v) <> 0;
    END IF;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n > 0 THEN
        PERFORM csmcp.portfolio_after_write(currval('portfolio_counts_id_seq'), n);
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER portfolio_contracts_ins AFTER INSERT ON contracts REFERENCING NEW TABLE AS nt
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.portfolio_contracts_trg();

CREATE OR REPLACE TRIGGER portfolio_contracts_upd AFTER UPDATE ON contracts REFERENCING OLD TABLE AS ot NEW TABLE AS nt
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.portfolio_contracts_trg();

CREATE OR REPLACE TRIGGER portfolio_contracts_del AFTER DELETE ON contracts REFERENCING OLD TABLE AS ot
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.portfolio_contracts_trg();

-- Accounts inserted or updated: count and health in the new group minus the old; an account
-- whose group changed takes its ARR and all its usage days along.
CREATE OR REPLACE FUNCTION csmcp.portfolio_accounts_trg() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
    m bigint := 0;
BEGIN
    IF csmcp.portfolio_bulk() THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        INSERT INTO portfolio_counts (tier, lifecycle_stage, accounts, health_sum, arr)
        SELECT tier, lifecycle_stage, count(*), sum(health_score), 0 FROM nt GROUP BY 1, 2;
        GET DIAGNOSTICS n = ROW_COUNT;
    ELSE
        WITH moved AS (
            SELECT o.client_id, o.tier AS o_tier, o.lifecycle_stage AS o_stage,
                   n.tier AS n_tier, n.lifecycle_stage AS n_stage
            FROM ot o JOIN nt n USING (client_id)
            WHERE o.tier <> n.tier OR o.lifecycle_stage <> n.lifecycle_stage),
        x AS (
            SELECT tier, lifecycle_stage, -1 AS k, -health_score::bigint AS h, 0::numeric AS v FROM ot
            UNION ALL SELECT tier, lifecycle_stage, 1, health_score::bigint, 0 FROM nt
            UNION ALL SELECT m.o_tier, m.o_stage, 0, 0, -c.contract_value
                      FROM moved m JOIN contracts c ON c.client_id = m.client_id AND c.status = 'active'
            UNION ALL SELECT m.n_tier, m.n_stage, 0, 0, c.contract_value
                      FROM moved m JOIN contracts c ON c.client_id = m.client_id AND c.status = 'active')
        INSERT INTO portfolio_counts (tier, lifecycle_stage, accounts, health_sum, arr)
        SELECT tier, lifecycle_stage, sum(k), sum(h), sum(v) FROM x GROUP BY 1, 2
        HAVING sum(k) <> 0 OR sum(h) <> 0 OR sum(v) <> 0;
        GET DIAGNOSTICS n = ROW_COUNT;
        IF n > 0 THEN
            PERFORM csmcp.portfolio_after_write(currval('portfolio_counts_id_seq'), n);
        END IF;
        WITH moved AS (
            SELECT o.client_id, o.tier AS o_tier, o.lifecycle_stage AS o_stage,
                   n.tier AS n_tier, n.lifecycle_stage AS n_stage
            FROM ot o JOIN nt n USING (client_id)
            WHERE o.tier <> n.tier OR o.lifecycle_stage <> n.lifecycle_stage),
        x AS (
            SELECT u.day, m.o_tier AS tier, m.o_stage AS lifecycle_stage, -u.active_users::bigint AS au
            FROM moved m JOIN usage_daily u ON u.client_id = m.client_id
            UNION ALL
            SELECT u.day, m.n_tier, m.n_stage, u.active_users::bigint
            FROM moved m JOIN usage_daily u ON u.client_id = m.client_id)
        INSERT INTO portfolio_usage (day, tier, lifecycle_stage, active_users)
        SELECT day, tier, lifecycle_stage, sum(au) FROM x GROUP BY 1, 2, 3 HAVING sum(au) <> 0;
        GET DIAGNOSTICS m = ROW_COUNT;
        IF m > 0 THEN
            PERFORM csmcp.portfolio_after_write(currval('portfolio_usage_id_seq'), m);
        END IF;
        RETURN NULL;
    END IF;
    IF n > 0 THEN
        PERFORM csmcp.portfolio_after_write(currval('portfolio_counts_id_seq'), n);
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER portfolio_accounts_ins AFTER INSERT ON accounts REFERENCING NEW TABLE AS nt
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.portfolio_accounts_trg();

CREATE OR REPLACE TRIGGER portfolio_accounts_upd AFTER UPDATE ON accounts REFERENCING OLD TABLE AS ot NEW TABLE AS nt
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.portfolio_accounts_trg();

-- An account about to be deleted: subtract it whole (its children still exist here; the
-- cascade that deletes them runs after this row is gone, and their triggers then skip it).
CREATE OR REPLACE FUNCTION csmcp.portfolio_accounts_del_trg() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF csmcp.portfolio_bulk() THEN
        RETURN OLD;
    END IF;
    INSERT INTO portfolio_counts (tier, lifecycle_stage, accounts, health_sum, arr)
    VALUES (OLD.tier, OLD.lifecycle_stage, -1, -OLD.health_score,
            -coalesce((SELECT sum(contract_value) FROM contracts
                       WHERE client_id = OLD.client_id AND status = 'active'), 0));
    INSERT INTO portfolio_usage (day, tier, lifecycle_stage, active_users)
    SELECT day, OLD.tier, OLD.lifecycle_stage, -sum(active_users) FROM usage_daily
    WHERE client_id = OLD.client_id GROUP BY day HAVING sum(active_users) <> 0;
    PERFORM csmcp.portfolio_after_write(currval('portfolio_counts_id_seq'), 1);
    RETURN OLD;
END $$;

CREATE OR REPLACE TRIGGER portfolio_accounts_del BEFORE DELETE ON accounts
    FOR EACH ROW EXECUTE FUNCTION csmcp.portfolio_accounts_del_trg();

CREATE OR REPLACE FUNCTION csmcp.portfolio_truncate_trg() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM csmcp.portfolio_rebuild();
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER portfolio_accounts_trunc AFTER TRUNCATE ON accounts
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.portfolio_truncate_trg();

CREATE OR REPLACE TRIGGER portfolio_contracts_trunc AFTER TRUNCATE ON contracts
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.portfolio_truncate_trg();

CREATE OR REPLACE TRIGGER portfolio_usage_trunc AFTER TRUNCATE ON usage_daily
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.portfolio_truncate_trg();

-- Accounts without any totals: the triggers did not exist until now (a database migrated from
-- before 0014, or restored data-only without these tables' rows). Compute the totals of the
-- data already there in this same transaction, so no write falls between the two.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM portfolio_counts) AND EXISTS (SELECT 1 FROM accounts) THEN
        PERFORM csmcp.portfolio_rebuild();
    END IF;
END $$;

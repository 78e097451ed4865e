-- expansion/rollups.sql - rollups of the revenue tools kept in the writing transaction (issue 21).
--
-- crosssell_own (migration 0171): per active account with an active contract, its tier,
-- industry, name, contract value and seats and the contract's products (the `own` rows of
-- identify_crosssell_opportunities). The triggers recompute the rows of the accounts a statement
-- touched (only when a column read here changed: accounts are updated on every health score),
-- with those accounts' rows locked to commit, so the recomputing statement sees every change a
-- concurrent writer of the same accounts committed (READ COMMITTED).
CREATE OR REPLACE FUNCTION csmcp.crosssell_own_compute(p_clients text[])
RETURNS SETOF crosssell_own LANGUAGE sql STABLE AS $$
    SELECT ac.client_id, ac.client_name, ac.tier, ac.industry, k.contract_id, k.contract_value, k.licensed_seats,
           coalesce((SELECT array_agg(x.product_id ORDER BY x.product_id) FROM contract_products x
                     WHERE x.contract_id = k.contract_id), '{}')
    FROM accounts ac JOIN contracts k ON k.client_id = ac.client_id AND k.status = 'active'
    WHERE ac.status = 'active' AND (p_clients IS NULL OR ac.client_id = ANY (p_clients))
$$;

CREATE OR REPLACE FUNCTION csmcp.crosssell_own_refresh(p_clients text[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF p_clients IS NULL OR cardinality(p_clients) = 0 THEN
        RETURN;
    END IF;
    -- The accounts' rows, locked in key order (FOR NO KEY UPDATE: as an UPDATE of the account
    -- holds; foreign-key checks are not blocked), serialize the writers of one account's row
    -- without a lock of their own that an account's writer could wait for while holding the row
    -- (a global advisory lock deadlocked with the FOR SHARE of the portfolio triggers).
    PERFORM 1 FROM accounts WHERE client_id = ANY (p_clients) ORDER BY client_id FOR NO KEY UPDATE;
    WITH q AS MATERIALIZED (SELECT * FROM csmcp.crosssell_own_compute(p_clients)),
    gone AS (DELETE FROM crosssell_own o WHERE o.client_id = ANY (p_clients)
                                           AND NOT EXISTS (SELECT 1 FROM q WHERE q.client_id = o.client_id))
    INSERT INTO crosssell_own AS o SELECT * FROM q ORDER BY client_id
    ON CONFLICT (client_id) DO UPDATE
        SET client_name = excluded.client_name, tier = excluded.tier, industry = excluded.industry,
            contract_id = excluded.contract_id, contract_value = excluded.contract_value,
            licensed_seats = excluded.licensed_seats, products = excluded.products
        WHERE (o.client_name, o.tier, o.industry, o.contract_id, o.contract_value, o.licensed_seats, o.products)
              IS DISTINCT FROM (excluded.client_name, excluded.tier, excluded.industry, excluded.contract_id,
                                excluded.contract_value, excluded.licensed_seats, excluded.products);
END $$;

CREATE OR REPLACE FUNCTION csmcp.crosssell_own_accounts_trg() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE c text[];
BEGIN
    IF csmcp.portfolio_bulk() THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        SELECT array_agg(client_id) INTO c FROM nt;
    ELSIF TG_OP = 'UPDATE' THEN
        SELECT array_agg(DISTINCT x) INTO c FROM (
            SELECT n.client_id AS x FROM nt n LEFT JOIN ot o ON o.client_id = n.client_id
            WHERE o.client_id IS NULL OR (o.status, o.tier, o.industry, o.client_name) IS DISTINCT FROM
                                         (n.status, n.tier, n.industry, n.client_name)
            UNION ALL
            SELECT o.client_id FROM ot o LEFT JOIN nt n ON n.client_id = o.client_id WHERE n.client_id IS NULL) d;
    ELSE
        SELECT array_agg(client_id) INTO c FROM ot;
    END IF;
    PERFORM csmcp.crosssell_own_refresh(c);
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION csmcp.crosssell_own_contracts_trg() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE c text[];
BEGIN
    IF csmcp.portfolio_bulk() THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        SELECT array_agg(DISTINCT client_id) INTO c FROM nt WHERE status = 'active';
    ELSIF TG_OP = 'UPDATE' THEN
        SELECT array_agg(DISTINCT x) INTO c FROM (
            SELECT n.client_id AS x FROM nt n LEFT JOIN ot o ON o.contract_id = n.contract_id
            WHERE (o.status = 'active' OR n.status = 'active')
              AND (o.contract_id IS NULL OR (o.client_id, o.status, o.contract_value, o.licensed_seats) IS DISTINCT FROM
                                             (n.client_id, n.status, n.contract_value, n.licensed_seats))
            UNION ALL
            SELECT o.client_id FROM ot o LEFT JOIN nt n ON n.contract_id = o.contract_id
            WHERE o.status = 'active' AND (n.contract_id IS NULL OR n.client_id <> o.client_id OR n.status <> 'active')) d;
    ELSE
        SELECT array_agg(DISTINCT client_id) INTO c FROM ot WHERE status = 'active';
    END IF;
    PERFORM csmcp.crosssell_own_refresh(c);
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION csmcp.crosssell_own_products_trg() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE c text[];
BEGIN
    IF csmcp.portfolio_bulk() THEN
        RETURN NULL;
    END IF;
    -- the accounts whose active contract is one of the contracts touched (a contract deleted by
    -- the same cascade is handled by the contracts trigger)
    IF TG_OP = 'INSERT' THEN
        SELECT array_agg(DISTINCT k.client_id) INTO c FROM contracts k
        WHERE k.status = 'active' AND k.contract_id IN (SELECT contract_id FROM nt);
    ELSIF TG_OP = 'UPDATE' THEN
        SELECT array_agg(DISTINCT k.client_id) INTO c FROM contracts k
        WHERE k.status = 'active' AND k.contract_id IN (SELECT contract_id FROM nt UNION SELECT contract_id FROM ot);
    ELSE
        SELECT array_agg(DISTINCT k.client_id) INTO c FROM contracts k
        WHERE k.status = 'active' AND k.contract_id IN (SELECT contract_id FROM ot);
    END IF;
    PERFORM csmcp.crosssell_own_refresh(c);
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER crosssell_own_accounts_ins AFTER INSERT ON accounts REFERENCING NEW TABLE AS nt
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.crosssell_own_accounts_trg();
CREATE OR REPLACE TRIGGER crosssell_own_accounts_upd AFTER UPDATE ON accounts REFERENCING OLD TABLE AS ot NEW TABLE AS nt
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.crosssell_own_accounts_trg();
CREATE OR REPLACE TRIGGER crosssell_own_accounts_del AFTER DELETE ON accounts REFERENCING OLD TABLE AS ot
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.crosssell_own_accounts_trg();
CREATE OR REPLACE TRIGGER crosssell_own_contracts_ins AFTER INSERT ON contracts REFERENCING NEW TABLE AS nt
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.crosssell_own_contracts_trg();
CREATE OR REPLACE TRIGGER crosssell_own_contracts_upd AFTER UPDATE ON contracts REFERENCING OLD TABLE AS ot NEW TABLE AS nt
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.crosssell_own_contracts_trg();
CREATE OR REPLACE TRIGGER crosssell_own_contracts_del AFTER DELETE ON contracts REFERENCING OLD TABLE AS ot
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.crosssell_own_contracts_trg();
CREATE OR REPLACE TRIGGER crosssell_own_products_ins AFTER INSERT ON contract_products REFERENCING NEW TABLE AS nt
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.crosssell_own_products_trg();
CREATE OR REPLACE TRIGGER crosssell_own_products_upd AFTER UPDATE ON contract_products REFERENCING OLD TABLE AS ot NEW TABLE AS nt
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.crosssell_own_products_trg();
CREATE OR REPLACE TRIGGER crosssell_own_products_del AFTER DELETE ON contract_products REFERENCING OLD TABLE AS ot
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.crosssell_own_products_trg();

CREATE OR REPLACE FUNCTION csmcp.crosssell_own_rebuild() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    LOCK TABLE crosssell_own IN EXCLUSIVE MODE;
    DELETE FROM crosssell_own;
    INSERT INTO crosssell_own SELECT * FROM csmcp.crosssell_own_compute(NULL);
END $$;

CREATE OR REPLACE FUNCTION csmcp.crosssell_own_trunc_trg() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM csmcp.crosssell_own_rebuild();
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER crosssell_own_accounts_trunc AFTER TRUNCATE ON accounts
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.crosssell_own_trunc_trg();
CREATE OR REPLACE TRIGGER crosssell_own_contracts_trunc AFTER TRUNCATE ON contracts
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.crosssell_own_trunc_trg();
CREATE OR REPLACE TRIGGER crosssell_own_products_trunc AFTER TRUNCATE ON contract_products
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.crosssell_own_trunc_trg();

-- Rows that differ from the from-scratch computation (empty when exact).
CREATE OR REPLACE FUNCTION csmcp.crosssell_own_check() RETURNS TABLE (client_id text, got text, want text)
LANGUAGE sql STABLE AS $$
    SELECT coalesce(o.client_id, w.client_id), row(o.*)::text, row(w.*)::text
    FROM crosssell_own o FULL JOIN csmcp.crosssell_own_compute(NULL) w ON w.client_id = o.client_id
    WHERE o.client_id IS NULL OR w.client_id IS NULL OR row(o.*)::text <> row(w.*)::text
$$;

-- Every rollup of this file (called by csmcp.portfolio_rebuild).
CREATE OR REPLACE FUNCTION csmcp.revenue_rollups_rebuild() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM csmcp.crosssell_own_rebuild();
END $$;

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM crosssell_own) AND EXISTS (SELECT 1 FROM contracts WHERE status = 'active') THEN
        PERFORM csmcp.crosssell_own_rebuild();
    END IF;
END $$;

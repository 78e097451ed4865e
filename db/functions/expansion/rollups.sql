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

-- identify_crosssell_opportunities' candidates and peer counts (migration 0150, issue 21).
-- crosssell_peers / crosssell_owners follow crosssell_own by deltas (old rows out, new rows in:
-- an account whose tier, industry and products stay the same locks no group row); crosssell_cand
-- holds, per account of crosssell_own, the products it may be offered (the eligibility of the
-- tool: active, not base, not owned, every prerequisite owned or base) with the estimated value.
-- A candidate is marked dirty (a new crosssell_cand_dirty_seq value) when its account's row
-- changed or an opportunity with its key was written by anything but the tool's own persisting
-- statement; the tool compares with the open opportunities only the dirty candidates and those of
-- groups whose peer counts moved since it last persisted them (crosssell_synced).
CREATE OR REPLACE FUNCTION csmcp.crosssell_cand_compute(p_clients text[])
RETURNS TABLE (client_id text, product_id text, tier text, industry text, value numeric)
LANGUAGE sql STABLE AS $$
    SELECT o.client_id, p.product_id, o.tier, o.industry, round(p.list_price * csmcp.exp_seats_factor(o.licensed_seats), 2)
    FROM crosssell_own o
    CROSS JOIN (SELECT coalesce(array_agg(b.product_id), '{}') AS ids FROM products b WHERE b.is_base AND b.active) base
    JOIN (SELECT p.product_id, p.list_price,
                 coalesce((SELECT array_agg(r.requires) FROM product_prerequisites r WHERE r.product_id = p.product_id), '{}') AS req
          FROM products p WHERE p.active AND NOT p.is_base) p
      ON NOT (p.product_id = ANY (o.products)) AND p.req <@ (o.products || base.ids)
    WHERE p_clients IS NULL OR o.client_id = ANY (p_clients)
$$;

-- The rows of crosssell_own a statement replaced (p_old) and wrote (p_new): the group counts by
-- delta, in key order (concurrent writers of one group queue on its row instead of deadlocking);
-- the touched accounts' candidates recomputed from crosssell_own as it is now, every one marked.
CREATE OR REPLACE FUNCTION csmcp.crosssell_cand_derive(p_old crosssell_own[], p_new crosssell_own[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE c text[];
BEGIN
    WITH d AS (SELECT o.tier, o.industry, -1 AS s FROM unnest(p_old) o
               UNION ALL SELECT n.tier, n.industry, 1 FROM unnest(p_new) n),
    g AS (SELECT tier, industry, sum(s)::integer AS n FROM d GROUP BY 1, 2 HAVING sum(s) <> 0)
    INSERT INTO crosssell_peers AS p (tier, industry, peers) SELECT * FROM g ORDER BY 1, 2
    ON CONFLICT (tier, industry) DO UPDATE SET peers = p.peers + excluded.peers;
    WITH d AS (SELECT o.tier, o.industry, x AS product_id, -1 AS s FROM unnest(p_old) o CROSS JOIN unnest(o.products) x
               UNION ALL SELECT n.tier, n.industry, x, 1 FROM unnest(p_new) n CROSS JOIN unnest(n.products) x),
    g AS (SELECT tier, industry, product_id, sum(s)::integer AS n FROM d GROUP BY 1, 2, 3 HAVING sum(s) <> 0)
    INSERT INTO crosssell_owners AS p (tier, industry, product_id, owning) SELECT * FROM g ORDER BY 1, 2, 3
    ON CONFLICT (tier, industry, product_id) DO UPDATE SET owning = p.owning + excluded.owning;

    SELECT array_agg(DISTINCT x) INTO c
    FROM (SELECT o.client_id AS x FROM unnest(p_old) o UNION ALL SELECT n.client_id FROM unnest(p_new) n) u;
    IF c IS NULL THEN
        RETURN;
    END IF;
    WITH q AS MATERIALIZED (SELECT * FROM csmcp.crosssell_cand_compute(c)),
    gone AS (DELETE FROM crosssell_cand x WHERE x.client_id = ANY (c)
                AND NOT EXISTS (SELECT 1 FROM q WHERE q.client_id = x.client_id AND q.product_id = x.product_id))
    INSERT INTO crosssell_cand AS x (client_id, product_id, tier, industry, value, dirty)
    SELECT q.*, nextval('crosssell_cand_dirty_seq') FROM q ORDER BY q.client_id, q.product_id
    ON CONFLICT (client_id, product_id) DO UPDATE
        SET tier = excluded.tier, industry = excluded.industry, value = excluded.value, dirty = excluded.dirty;
END $$;

-- (no portfolio_bulk() skip: crosssell_own is not written in a bulk seed but rebuilt at its end,
-- and that rebuild must reach these tables)
CREATE OR REPLACE FUNCTION csmcp.crosssell_cand_own_trg() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM csmcp.crosssell_cand_derive('{}', ARRAY(SELECT n::crosssell_own FROM nt n));
    ELSIF TG_OP = 'UPDATE' THEN
        PERFORM csmcp.crosssell_cand_derive(ARRAY(SELECT o::crosssell_own FROM ot o), ARRAY(SELECT n::crosssell_own FROM nt n));
    ELSE
        PERFORM csmcp.crosssell_cand_derive(ARRAY(SELECT o::crosssell_own FROM ot o), '{}');
    END IF;
    RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER crosssell_cand_own_ins AFTER INSERT ON crosssell_own REFERENCING NEW TABLE AS nt
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.crosssell_cand_own_trg();
CREATE OR REPLACE TRIGGER crosssell_cand_own_upd AFTER UPDATE ON crosssell_own REFERENCING OLD TABLE AS ot NEW TABLE AS nt
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.crosssell_cand_own_trg();
CREATE OR REPLACE TRIGGER crosssell_cand_own_del AFTER DELETE ON crosssell_own REFERENCING OLD TABLE AS ot
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.crosssell_cand_own_trg();

-- An opportunity keyed 'cross_sell:<product>' written (created, changed, closed, deleted) by
-- anything but the tool's persisting statement (csmcp.crosssell_sync on): its candidate is
-- marked, so the next portfolio call compares it again. Rows locked in key order first (as the
-- tool clears marks), so a writer and a call do not deadlock. In a bulk seed the rebuild at its
-- end marks every candidate anyway.
-- (plpgsql, not sql: its plan is cached per session - every upsert of any opportunity type fires
-- the statement trigger, mostly without a cross-sell key)
CREATE OR REPLACE FUNCTION csmcp.crosssell_cand_mark(p_keys text[], p_clients text[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM unnest(p_keys) k WHERE k LIKE 'cross\_sell:%') THEN
        RETURN;
    END IF;
    WITH k AS (SELECT DISTINCT u.c, substr(u.k, 12) AS p FROM unnest(p_clients, p_keys) u(c, k) WHERE u.k LIKE 'cross\_sell:%'),
    l AS (SELECT x.client_id, x.product_id FROM crosssell_cand x JOIN k ON x.client_id = k.c AND x.product_id = k.p
          ORDER BY 1, 2 FOR UPDATE OF x)
    UPDATE crosssell_cand x SET dirty = nextval('crosssell_cand_dirty_seq')
    FROM l WHERE x.client_id = l.client_id AND x.product_id = l.product_id;
END $$;

CREATE OR REPLACE FUNCTION csmcp.crosssell_cand_opp_trg() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF csmcp.portfolio_bulk() THEN
        RETURN NULL;
    END IF;
    IF coalesce(current_setting('csmcp.crosssell_sync', true), '') = 'on' THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        PERFORM csmcp.crosssell_cand_mark(ARRAY(SELECT opportunity_key FROM nt), ARRAY(SELECT client_id FROM nt));
    ELSIF TG_OP = 'UPDATE' THEN
        PERFORM csmcp.crosssell_cand_mark(ARRAY(SELECT opportunity_key FROM nt UNION ALL SELECT opportunity_key FROM ot),
                                          ARRAY(SELECT client_id FROM nt UNION ALL SELECT client_id FROM ot));
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM csmcp.crosssell_cand_mark(ARRAY(SELECT opportunity_key FROM ot), ARRAY(SELECT client_id FROM ot));
    ELSE   -- TRUNCATE
        UPDATE crosssell_cand SET dirty = nextval('crosssell_cand_dirty_seq') WHERE dirty IS NULL;
    END IF;
    RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER crosssell_cand_opp_ins AFTER INSERT ON expansion_opportunities REFERENCING NEW TABLE AS nt
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.crosssell_cand_opp_trg();
CREATE OR REPLACE TRIGGER crosssell_cand_opp_upd AFTER UPDATE ON expansion_opportunities REFERENCING OLD TABLE AS ot NEW TABLE AS nt
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.crosssell_cand_opp_trg();
CREATE OR REPLACE TRIGGER crosssell_cand_opp_del AFTER DELETE ON expansion_opportunities REFERENCING OLD TABLE AS ot
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.crosssell_cand_opp_trg();
CREATE OR REPLACE TRIGGER crosssell_cand_opp_trunc AFTER TRUNCATE ON expansion_opportunities
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.crosssell_cand_opp_trg();

-- From scratch: the counts from crosssell_own, every candidate recomputed and marked, no group
-- persisted. Also what a change of the catalogue (products, prerequisites: price, name, family,
-- eligibility of every account) does: rare, and it changes every candidate's details anyway.
CREATE OR REPLACE FUNCTION csmcp.crosssell_cand_rebuild() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    LOCK TABLE crosssell_peers, crosssell_owners, crosssell_cand, crosssell_synced IN EXCLUSIVE MODE;
    DELETE FROM crosssell_peers;
    INSERT INTO crosssell_peers SELECT tier, industry, count(*) FROM crosssell_own GROUP BY 1, 2;
    DELETE FROM crosssell_owners;
    INSERT INTO crosssell_owners SELECT o.tier, o.industry, x, count(*) FROM crosssell_own o CROSS JOIN unnest(o.products) x GROUP BY 1, 2, 3;
    DELETE FROM crosssell_cand;
    INSERT INTO crosssell_cand SELECT q.*, nextval('crosssell_cand_dirty_seq') FROM csmcp.crosssell_cand_compute(NULL) q;
    DELETE FROM crosssell_synced;
END $$;

CREATE OR REPLACE FUNCTION csmcp.crosssell_cand_catalogue_trg() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF csmcp.portfolio_bulk() THEN
        RETURN NULL;
    END IF;
    PERFORM csmcp.crosssell_cand_rebuild();
    RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER crosssell_cand_products AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON products
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.crosssell_cand_catalogue_trg();
CREATE OR REPLACE TRIGGER crosssell_cand_prerequisites AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON product_prerequisites
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.crosssell_cand_catalogue_trg();

-- Differences between the maintained tables and their computation from crosssell_own and the
-- catalogue (empty when exact; the marks are checked by the tool's equality with its _scratch).
CREATE OR REPLACE FUNCTION csmcp.crosssell_cand_check() RETURNS TABLE (tab text, k text, got text, want text)
LANGUAGE sql STABLE AS $$
    SELECT 'crosssell_peers', coalesce(g.tier || '|' || g.industry, w.tier || '|' || w.industry), g.peers::text, w.n::text
    FROM (SELECT * FROM crosssell_peers WHERE peers <> 0) g
    FULL JOIN (SELECT tier, industry, count(*) AS n FROM crosssell_own GROUP BY 1, 2) w ON w.tier = g.tier AND w.industry = g.industry
    WHERE g.peers IS DISTINCT FROM w.n::integer
    UNION ALL
    SELECT 'crosssell_owners', coalesce(g.tier || '|' || g.industry || '|' || g.product_id, w.tier || '|' || w.industry || '|' || w.x),
           g.owning::text, w.n::text
    FROM (SELECT * FROM crosssell_owners WHERE owning <> 0) g
    FULL JOIN (SELECT o.tier, o.industry, x, count(*) AS n FROM crosssell_own o CROSS JOIN unnest(o.products) x GROUP BY 1, 2, 3) w
      ON w.tier = g.tier AND w.industry = g.industry AND w.x = g.product_id
    WHERE g.owning IS DISTINCT FROM w.n::integer
    UNION ALL
    SELECT 'crosssell_cand', coalesce(g.client_id || '|' || g.product_id, w.client_id || '|' || w.product_id),
           row(g.tier, g.industry, g.value)::text, row(w.tier, w.industry, w.value)::text
    FROM crosssell_cand g FULL JOIN csmcp.crosssell_cand_compute(NULL) w ON w.client_id = g.client_id AND w.product_id = g.product_id
    WHERE row(g.tier, g.industry, g.value)::text IS DISTINCT FROM row(w.tier, w.industry, w.value)::text
$$;

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM crosssell_peers) AND EXISTS (SELECT 1 FROM crosssell_own) THEN
        PERFORM csmcp.crosssell_cand_rebuild();
    END IF;
END $$;

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

-- forecast_inputs (migration 0172): per active contract of an account that is not churned, what
-- forecast_renewals reads (name, computed health, open escalation, earliest unpaid due date).
-- Same scheme as crosssell_own: a statement touching an input recomputes the rows of the
-- accounts concerned with those accounts' rows locked to commit. The triggers are named so that
-- they fire before the portfolio triggers of the same table (alphabetical order): those take the
-- accounts' rows FOR SHARE, and a share lock held first could not be raised without deadlocking
-- two writers of one account.
CREATE OR REPLACE FUNCTION csmcp.forecast_inputs_compute(p_clients text[])
RETURNS SETOF forecast_inputs LANGUAGE sql STABLE AS $$
    SELECT c.contract_id, c.client_id, ac.client_name, c.end_date, c.contract_value, ac.health_score,
           EXISTS (SELECT 1 FROM escalations e WHERE e.client_id = c.client_id AND e.status IN ('open', 'in_progress')),
           (SELECT min(i.due_on) FROM invoices i WHERE i.contract_id = c.contract_id AND i.paid_on IS NULL)
    FROM contracts c JOIN accounts ac ON ac.client_id = c.client_id AND ac.status <> 'churned'
    WHERE c.status = 'active' AND (p_clients IS NULL OR (c.client_id = ANY (p_clients) AND ac.client_id = ANY (p_clients)))
$$;

CREATE OR REPLACE FUNCTION csmcp.forecast_inputs_refresh(p_clients text[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF p_clients IS NULL OR cardinality(p_clients) = 0 THEN
        RETURN;
    END IF;
    -- (the accounts' rows in key order, as crosssell_own_refresh: the next statement, a new
    -- snapshot, sees every change a writer of these accounts committed before us)
    PERFORM 1 FROM accounts WHERE client_id = ANY (p_clients) ORDER BY client_id FOR NO KEY UPDATE;
    WITH q AS MATERIALIZED (SELECT * FROM csmcp.forecast_inputs_compute(p_clients)),
    gone AS (DELETE FROM forecast_inputs f WHERE f.client_id = ANY (p_clients)
                                             AND NOT EXISTS (SELECT 1 FROM q WHERE q.contract_id = f.contract_id))
    INSERT INTO forecast_inputs AS f SELECT * FROM q ORDER BY contract_id
    ON CONFLICT (contract_id) DO UPDATE
        SET client_id = excluded.client_id, client_name = excluded.client_name, end_date = excluded.end_date,
            contract_value = excluded.contract_value, health_score = excluded.health_score,
            escalated = excluded.escalated, unpaid_due = excluded.unpaid_due
        WHERE (f.client_id, f.client_name, f.end_date, f.contract_value, f.health_score, f.escalated, f.unpaid_due)
              IS DISTINCT FROM (excluded.client_id, excluded.client_name, excluded.end_date, excluded.contract_value,
                                excluded.health_score, excluded.escalated, excluded.unpaid_due);
END $$;

-- accounts: the columns read (status, name, computed health); accounts are inserted without
-- contracts, so an insert has nothing to add.
CREATE OR REPLACE FUNCTION csmcp.forecast_inputs_accounts_trg() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE c text[];
BEGIN
    IF csmcp.portfolio_bulk() THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'UPDATE' THEN
        SELECT array_agg(DISTINCT x) INTO c FROM (
            SELECT n.client_id AS x FROM nt n LEFT JOIN ot o ON o.client_id = n.client_id
            WHERE o.client_id IS NULL OR (o.status, o.client_name, o.health_score) IS DISTINCT FROM
                                         (n.status, n.client_name, n.health_score)
            UNION ALL
            SELECT o.client_id FROM ot o LEFT JOIN nt n ON n.client_id = o.client_id WHERE n.client_id IS NULL) d;
    ELSE
        SELECT array_agg(client_id) INTO c FROM ot;
    END IF;
    -- only accounts with an active contract can have rows (or had them, before a status change)
    SELECT array_agg(DISTINCT x) INTO c FROM (
        SELECT k.client_id AS x FROM contracts k WHERE k.client_id = ANY (c) AND k.status = 'active'
        UNION ALL SELECT f.client_id FROM forecast_inputs f WHERE f.client_id = ANY (c)) d;
    PERFORM csmcp.forecast_inputs_refresh(c);
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION csmcp.forecast_inputs_contracts_trg() RETURNS trigger
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
              AND (o.contract_id IS NULL OR (o.client_id, o.status, o.end_date, o.contract_value) IS DISTINCT FROM
                                             (n.client_id, n.status, n.end_date, n.contract_value))
            UNION ALL
            SELECT o.client_id FROM ot o LEFT JOIN nt n ON n.contract_id = o.contract_id
            WHERE o.status = 'active' AND (n.contract_id IS NULL OR n.client_id <> o.client_id OR n.status <> 'active')) d;
    ELSE
        SELECT array_agg(DISTINCT client_id) INTO c FROM ot WHERE status = 'active';
    END IF;
    PERFORM csmcp.forecast_inputs_refresh(c);
    RETURN NULL;
END $$;

-- invoices: unpaid ones only (a paid invoice never counts); the account of the invoice's contract.
CREATE OR REPLACE FUNCTION csmcp.forecast_inputs_invoices_trg() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE c text[];
BEGIN
    IF csmcp.portfolio_bulk() THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        SELECT array_agg(DISTINCT k.client_id) INTO c FROM contracts k
        WHERE k.status = 'active' AND k.contract_id IN (SELECT contract_id FROM nt WHERE paid_on IS NULL);
    ELSIF TG_OP = 'UPDATE' THEN
        SELECT array_agg(DISTINCT k.client_id) INTO c FROM contracts k
        WHERE k.status = 'active' AND k.contract_id IN (
            SELECT n.contract_id FROM nt n JOIN ot o ON o.invoice_id = n.invoice_id
            WHERE (o.paid_on IS NULL OR n.paid_on IS NULL)
              AND (o.contract_id, o.due_on, o.paid_on) IS DISTINCT FROM (n.contract_id, n.due_on, n.paid_on)
            UNION
            SELECT o.contract_id FROM nt n JOIN ot o ON o.invoice_id = n.invoice_id
            WHERE o.paid_on IS NULL AND (o.contract_id, o.due_on, o.paid_on) IS DISTINCT FROM (n.contract_id, n.due_on, n.paid_on)
            UNION   -- (an update of the primary key: the rows are not paired)
            SELECT contract_id FROM nt WHERE paid_on IS NULL AND invoice_id NOT IN (SELECT invoice_id FROM ot)
            UNION
            SELECT contract_id FROM ot WHERE paid_on IS NULL AND invoice_id NOT IN (SELECT invoice_id FROM nt));
    ELSE
        SELECT array_agg(DISTINCT k.client_id) INTO c FROM contracts k
        WHERE k.status = 'active' AND k.contract_id IN (SELECT contract_id FROM ot WHERE paid_on IS NULL);
    END IF;
    PERFORM csmcp.forecast_inputs_refresh(c);
    RETURN NULL;
END $$;

-- escalations: open or in-progress ones (before or after the write) of accounts with an active contract.
CREATE OR REPLACE FUNCTION csmcp.forecast_inputs_escalations_trg() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE c text[];
BEGIN
    IF csmcp.portfolio_bulk() THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        SELECT array_agg(DISTINCT client_id) INTO c FROM nt WHERE status IN ('open', 'in_progress');
    ELSIF TG_OP = 'UPDATE' THEN
        SELECT array_agg(DISTINCT x) INTO c FROM (
            SELECT n.client_id AS x FROM nt n WHERE n.status IN ('open', 'in_progress')
            UNION ALL SELECT o.client_id FROM ot o WHERE o.status IN ('open', 'in_progress')) d;
        -- (an update that leaves an open escalation open on the same account changes nothing)
        SELECT array_agg(x) INTO c FROM unnest(c) x
        WHERE EXISTS (SELECT 1 FROM nt n FULL JOIN ot o ON o.escalation_id = n.escalation_id
                      WHERE x IN (n.client_id, o.client_id)
                        AND (n.escalation_id IS NULL OR o.escalation_id IS NULL OR n.client_id <> o.client_id
                             OR (n.status IN ('open', 'in_progress')) <> (o.status IN ('open', 'in_progress'))));
    ELSE
        SELECT array_agg(DISTINCT client_id) INTO c FROM ot WHERE status IN ('open', 'in_progress');
    END IF;
    SELECT array_agg(DISTINCT k.client_id) INTO c FROM contracts k WHERE k.client_id = ANY (c) AND k.status = 'active';
    PERFORM csmcp.forecast_inputs_refresh(c);
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER forecast_inputs_accounts_upd AFTER UPDATE ON accounts REFERENCING OLD TABLE AS ot NEW TABLE AS nt
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.forecast_inputs_accounts_trg();
CREATE OR REPLACE TRIGGER forecast_inputs_accounts_del AFTER DELETE ON accounts REFERENCING OLD TABLE AS ot
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.forecast_inputs_accounts_trg();
CREATE OR REPLACE TRIGGER forecast_inputs_contracts_ins AFTER INSERT ON contracts REFERENCING NEW TABLE AS nt
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.forecast_inputs_contracts_trg();
CREATE OR REPLACE TRIGGER forecast_inputs_contracts_upd AFTER UPDATE ON contracts REFERENCING OLD TABLE AS ot NEW TABLE AS nt
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.forecast_inputs_contracts_trg();
CREATE OR REPLACE TRIGGER forecast_inputs_contracts_del AFTER DELETE ON contracts REFERENCING OLD TABLE AS ot
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.forecast_inputs_contracts_trg();
CREATE OR REPLACE TRIGGER forecast_inputs_invoices_ins AFTER INSERT ON invoices REFERENCING NEW TABLE AS nt
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.forecast_inputs_invoices_trg();
CREATE OR REPLACE TRIGGER forecast_inputs_invoices_upd AFTER UPDATE ON invoices REFERENCING OLD TABLE AS ot NEW TABLE AS nt
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.forecast_inputs_invoices_trg();
CREATE OR REPLACE TRIGGER forecast_inputs_invoices_del AFTER DELETE ON invoices REFERENCING OLD TABLE AS ot
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.forecast_inputs_invoices_trg();
CREATE OR REPLACE TRIGGER forecast_inputs_escalations_ins AFTER INSERT ON escalations REFERENCING NEW TABLE AS nt
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.forecast_inputs_escalations_trg();
CREATE OR REPLACE TRIGGER forecast_inputs_escalations_upd AFTER UPDATE ON escalations REFERENCING OLD TABLE AS ot NEW TABLE AS nt
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.forecast_inputs_escalations_trg();
CREATE OR REPLACE TRIGGER forecast_inputs_escalations_del AFTER DELETE ON escalations REFERENCING OLD TABLE AS ot
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.forecast_inputs_escalations_trg();

CREATE OR REPLACE FUNCTION csmcp.forecast_inputs_rebuild() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    LOCK TABLE forecast_inputs IN EXCLUSIVE MODE;
    DELETE FROM forecast_inputs;
    INSERT INTO forecast_inputs SELECT * FROM csmcp.forecast_inputs_compute(NULL);
END $$;

CREATE OR REPLACE FUNCTION csmcp.forecast_inputs_trunc_trg() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM csmcp.forecast_inputs_rebuild();
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER forecast_inputs_accounts_trunc AFTER TRUNCATE ON accounts
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.forecast_inputs_trunc_trg();
CREATE OR REPLACE TRIGGER forecast_inputs_contracts_trunc AFTER TRUNCATE ON contracts
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.forecast_inputs_trunc_trg();
CREATE OR REPLACE TRIGGER forecast_inputs_invoices_trunc AFTER TRUNCATE ON invoices
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.forecast_inputs_trunc_trg();
CREATE OR REPLACE TRIGGER forecast_inputs_escalations_trunc AFTER TRUNCATE ON escalations
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.forecast_inputs_trunc_trg();

-- Rows that differ from the from-scratch computation (empty when exact).
CREATE OR REPLACE FUNCTION csmcp.forecast_inputs_check() RETURNS TABLE (contract_id text, got text, want text)
LANGUAGE sql STABLE AS $$
    SELECT coalesce(f.contract_id, w.contract_id), row(f.*)::text, row(w.*)::text
    FROM forecast_inputs f FULL JOIN csmcp.forecast_inputs_compute(NULL) w ON w.contract_id = f.contract_id
    WHERE f.contract_id IS NULL OR w.contract_id IS NULL OR row(f.*)::text <> row(w.*)::text
$$;

-- account_health_latest (migration 0173): per account, status, tier and the components of the
-- latest health score (calculated_at, then score_id: the order optimize_customer_lifetime_value
-- reads). Same scheme as crosssell_own (the accounts' rows locked, then recomputed).
CREATE OR REPLACE FUNCTION csmcp.account_health_latest_compute(p_clients text[])
RETURNS SETOF account_health_latest LANGUAGE sql STABLE AS $$
    SELECT ac.client_id, ac.status, ac.tier, h.usage_score, h.engagement_score, h.support_score, h.satisfaction_score,
           h.payment_score
    FROM accounts ac
    LEFT JOIN LATERAL (SELECT h.usage_score, h.engagement_score, h.support_score, h.satisfaction_score, h.payment_score
                       FROM health_scores h WHERE h.client_id = ac.client_id
                       ORDER BY h.calculated_at DESC, h.score_id DESC LIMIT 1) h ON true
    WHERE p_clients IS NULL OR ac.client_id = ANY (p_clients)
$$;

CREATE OR REPLACE FUNCTION csmcp.account_health_latest_refresh(p_clients text[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF p_clients IS NULL OR cardinality(p_clients) = 0 THEN
        RETURN;
    END IF;
    PERFORM 1 FROM accounts WHERE client_id = ANY (p_clients) ORDER BY client_id FOR NO KEY UPDATE;
    WITH q AS MATERIALIZED (SELECT * FROM csmcp.account_health_latest_compute(p_clients)),
    gone AS (DELETE FROM account_health_latest l WHERE l.client_id = ANY (p_clients)
                                                  AND NOT EXISTS (SELECT 1 FROM q WHERE q.client_id = l.client_id))
    INSERT INTO account_health_latest AS l SELECT * FROM q ORDER BY client_id
    ON CONFLICT (client_id) DO UPDATE
        SET status = excluded.status, tier = excluded.tier, usage_score = excluded.usage_score,
            engagement_score = excluded.engagement_score, support_score = excluded.support_score,
            satisfaction_score = excluded.satisfaction_score, payment_score = excluded.payment_score
        WHERE (l.status, l.tier, l.usage_score, l.engagement_score, l.support_score, l.satisfaction_score, l.payment_score)
              IS DISTINCT FROM (excluded.status, excluded.tier, excluded.usage_score, excluded.engagement_score,
                                excluded.support_score, excluded.satisfaction_score, excluded.payment_score);
END $$;

CREATE OR REPLACE FUNCTION csmcp.account_health_latest_accounts_trg() RETURNS trigger
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
            WHERE o.client_id IS NULL OR (o.status, o.tier) IS DISTINCT FROM (n.status, n.tier)
            UNION ALL
            SELECT o.client_id FROM ot o LEFT JOIN nt n ON n.client_id = o.client_id WHERE n.client_id IS NULL) d;
    ELSE
        SELECT array_agg(client_id) INTO c FROM ot;
    END IF;
    PERFORM csmcp.account_health_latest_refresh(c);
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION csmcp.account_health_latest_scores_trg() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE c text[];
BEGIN
    IF csmcp.portfolio_bulk() THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        SELECT array_agg(DISTINCT client_id) INTO c FROM nt;
    ELSIF TG_OP = 'UPDATE' THEN
        SELECT array_agg(DISTINCT x) INTO c FROM (SELECT client_id AS x FROM nt UNION ALL SELECT client_id FROM ot) d;
    ELSE
        SELECT array_agg(DISTINCT client_id) INTO c FROM ot;
    END IF;
    PERFORM csmcp.account_health_latest_refresh(c);
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER account_health_latest_accounts_ins AFTER INSERT ON accounts REFERENCING NEW TABLE AS nt
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.account_health_latest_accounts_trg();
CREATE OR REPLACE TRIGGER account_health_latest_accounts_upd AFTER UPDATE ON accounts REFERENCING OLD TABLE AS ot NEW TABLE AS nt
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.account_health_latest_accounts_trg();
CREATE OR REPLACE TRIGGER account_health_latest_accounts_del AFTER DELETE ON accounts REFERENCING OLD TABLE AS ot
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.account_health_latest_accounts_trg();
CREATE OR REPLACE TRIGGER account_health_latest_scores_ins AFTER INSERT ON health_scores REFERENCING NEW TABLE AS nt
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.account_health_latest_scores_trg();
CREATE OR REPLACE TRIGGER account_health_latest_scores_upd AFTER UPDATE ON health_scores REFERENCING OLD TABLE AS ot NEW TABLE AS nt
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.account_health_latest_scores_trg();
CREATE OR REPLACE TRIGGER account_health_latest_scores_del AFTER DELETE ON health_scores REFERENCING OLD TABLE AS ot
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.account_health_latest_scores_trg();

CREATE OR REPLACE FUNCTION csmcp.account_health_latest_rebuild() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    LOCK TABLE account_health_latest IN EXCLUSIVE MODE;
    DELETE FROM account_health_latest;
    INSERT INTO account_health_latest SELECT * FROM csmcp.account_health_latest_compute(NULL);
END $$;

CREATE OR REPLACE FUNCTION csmcp.account_health_latest_trunc_trg() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM csmcp.account_health_latest_rebuild();
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER account_health_latest_accounts_trunc AFTER TRUNCATE ON accounts
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.account_health_latest_trunc_trg();
CREATE OR REPLACE TRIGGER account_health_latest_scores_trunc AFTER TRUNCATE ON health_scores
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.account_health_latest_trunc_trg();

-- Rows that differ from the from-scratch computation (empty when exact).
CREATE OR REPLACE FUNCTION csmcp.account_health_latest_check() RETURNS TABLE (client_id text, got text, want text)
LANGUAGE sql STABLE AS $$
    SELECT coalesce(l.client_id, w.client_id), row(l.*)::text, row(w.*)::text
    FROM account_health_latest l FULL JOIN csmcp.account_health_latest_compute(NULL) w ON w.client_id = l.client_id
    WHERE l.client_id IS NULL OR w.client_id IS NULL OR row(l.*)::text <> row(w.*)::text
$$;

-- revenue_balance (migration 0174): per account with revenue events, their sum, count and latest
-- date. Same scheme as crosssell_own (the accounts' rows locked, then recomputed: a deleted or
-- moved event can lower the latest date, which a delta could not).
CREATE OR REPLACE FUNCTION csmcp.revenue_balance_compute(p_clients text[])
RETURNS SETOF revenue_balance LANGUAGE sql STABLE AS $$
    SELECT e.client_id, sum(e.arr_delta), count(*), max(e.occurred_on)
    FROM revenue_events e WHERE p_clients IS NULL OR e.client_id = ANY (p_clients)
    GROUP BY e.client_id
$$;

CREATE OR REPLACE FUNCTION csmcp.revenue_balance_refresh(p_clients text[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF p_clients IS NULL OR cardinality(p_clients) = 0 THEN
        RETURN;
    END IF;
    PERFORM 1 FROM accounts WHERE client_id = ANY (p_clients) ORDER BY client_id FOR NO KEY UPDATE;
    WITH q AS MATERIALIZED (SELECT * FROM csmcp.revenue_balance_compute(p_clients)),
    gone AS (DELETE FROM revenue_balance b WHERE b.client_id = ANY (p_clients)
                                            AND NOT EXISTS (SELECT 1 FROM q WHERE q.client_id = b.client_id))
    INSERT INTO revenue_balance AS b SELECT * FROM q ORDER BY client_id
    ON CONFLICT (client_id) DO UPDATE
        SET balance = excluded.balance, n_events = excluded.n_events, last_on = excluded.last_on
        -- (the text form: 5.00 and 5.0 are equal numbers but print differently)
        WHERE (b.balance::text, b.n_events, b.last_on) IS DISTINCT FROM (excluded.balance::text, excluded.n_events, excluded.last_on);
END $$;

CREATE OR REPLACE FUNCTION csmcp.revenue_balance_trg() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE c text[];
BEGIN
    IF csmcp.portfolio_bulk() THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        SELECT array_agg(DISTINCT client_id) INTO c FROM nt;
    ELSIF TG_OP = 'UPDATE' THEN
        SELECT array_agg(DISTINCT x) INTO c FROM (SELECT client_id AS x FROM nt UNION ALL SELECT client_id FROM ot) d;
    ELSE
        SELECT array_agg(DISTINCT client_id) INTO c FROM ot;
    END IF;
    PERFORM csmcp.revenue_balance_refresh(c);
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER revenue_balance_ins AFTER INSERT ON revenue_events REFERENCING NEW TABLE AS nt
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.revenue_balance_trg();
CREATE OR REPLACE TRIGGER revenue_balance_upd AFTER UPDATE ON revenue_events REFERENCING OLD TABLE AS ot NEW TABLE AS nt
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.revenue_balance_trg();
CREATE OR REPLACE TRIGGER revenue_balance_del AFTER DELETE ON revenue_events REFERENCING OLD TABLE AS ot
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.revenue_balance_trg();

CREATE OR REPLACE FUNCTION csmcp.revenue_balance_rebuild() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    LOCK TABLE revenue_balance IN EXCLUSIVE MODE;
    DELETE FROM revenue_balance;
    INSERT INTO revenue_balance SELECT * FROM csmcp.revenue_balance_compute(NULL);
END $$;

CREATE OR REPLACE FUNCTION csmcp.revenue_balance_trunc_trg() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM csmcp.revenue_balance_rebuild();
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER revenue_balance_trunc AFTER TRUNCATE ON revenue_events
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.revenue_balance_trunc_trg();

-- Rows that differ from the from-scratch computation (empty when exact).
CREATE OR REPLACE FUNCTION csmcp.revenue_balance_check() RETURNS TABLE (client_id text, got text, want text)
LANGUAGE sql STABLE AS $$
    SELECT coalesce(b.client_id, w.client_id), row(b.*)::text, row(w.*)::text
    FROM revenue_balance b FULL JOIN csmcp.revenue_balance_compute(NULL) w ON w.client_id = b.client_id
    WHERE b.client_id IS NULL OR w.client_id IS NULL OR row(b.*)::text <> row(w.*)::text
$$;

-- Every rollup of this file (called by csmcp.portfolio_rebuild).
CREATE OR REPLACE FUNCTION csmcp.revenue_rollups_rebuild() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM csmcp.crosssell_own_rebuild();
    PERFORM csmcp.forecast_inputs_rebuild();
    PERFORM csmcp.account_health_latest_rebuild();
    PERFORM csmcp.revenue_balance_rebuild();
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

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM forecast_inputs) AND EXISTS (SELECT 1 FROM contracts WHERE status = 'active') THEN
        PERFORM csmcp.forecast_inputs_rebuild();
    END IF;
END $$;

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM account_health_latest) AND EXISTS (SELECT 1 FROM accounts) THEN
        PERFORM csmcp.account_health_latest_rebuild();
    END IF;
END $$;

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM revenue_balance) AND EXISTS (SELECT 1 FROM revenue_events) THEN
        PERFORM csmcp.revenue_balance_rebuild();
    END IF;
END $$;

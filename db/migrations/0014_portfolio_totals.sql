-- 0014_portfolio_totals.sql - list_clients' portfolio summary without a pass over every account.
--
-- Before: every list_clients call recomputed its summary over the whole filtered set (a join of
-- all accounts with their contracts, an aggregate, and the 7-day active users of every account
-- from usage_daily): 180-430 ms per call at 10,000 accounts, linear in the number of accounts
-- (docs/scale.md §3.1). Now the summary of the portfolio, per (tier, lifecycle_stage), is kept
-- in two tables maintained by triggers on the base tables, so the summary of list_clients
-- without filters, or filtered by tier and/or lifecycle stage only, is a sum over at most
-- 24 groups (plus 7 days x 24 groups for active users), whatever the number of accounts.
--
--   portfolio_counts (tier, lifecycle_stage): accounts, sum of health_score, sum of the active
--                    contract's contract_value (ARR).
--   portfolio_usage  (day, tier, lifecycle_stage): sum of usage_daily.active_users.
--
-- Invariants:
--   * Both tables hold DELTA rows: the figure of a group is the SUM of its rows. Writers only
--     INSERT (no shared row is updated, so concurrent writers never wait on each other or
--     deadlock on a counter row); csmcp.portfolio_compact() merges the rows of each group,
--     started by a writer every ~256 delta rows.
--   * Exact, not cached: the deltas are written by the same transaction as the change, so any
--     snapshot sees base tables and totals that agree (csmcp.portfolio_check() compares them
--     with a from-scratch computation). Triggers cover every writer: the tools (register_client,
--     update_client_info, calculate_health_score, manage_lifecycle_stages, ingest_usage_events),
--     csmcpctl import, GDPR erasure, plain SQL, TRUNCATE (full rebuild).
--   * A row of usage_daily or contracts is counted in the group of its account's CURRENT
--     (tier, lifecycle_stage): an account that changes group moves its ARR and all its usage
--     days. The usage/contract triggers lock the account row FOR SHARE while they read its
--     group, so a concurrent change of the account's group waits for them (or they for it) and
--     nothing is counted in a stale group. This relies on READ COMMITTED (every tool and
--     csmcpctl run at the default level).
--   * An account deleted with its children (ON DELETE CASCADE) is subtracted whole by a BEFORE
--     DELETE row trigger; the cascaded child deletes then find no account and add nothing.
--   * csmcp.seed_demo sets csmcp.portfolio_bulk = on for its transaction (the triggers then do
--     nothing) and rebuilds the totals at the end: 860K usage rows are cheaper to sum once.

CREATE TABLE portfolio_counts (
    id              bigserial PRIMARY KEY,
    tier            text NOT NULL,
    lifecycle_stage text NOT NULL,
    accounts        bigint NOT NULL,
    health_sum      bigint NOT NULL,
    arr             numeric NOT NULL
);
CREATE TABLE portfolio_usage (
    id              bigserial PRIMARY KEY,
    day             date NOT NULL,
    tier            text NOT NULL,
    lifecycle_stage text NOT NULL,
    active_users    bigint NOT NULL
);
CREATE INDEX portfolio_usage_day_idx ON portfolio_usage (day);

-- Page of list_clients in index order (default sort, sort by health score, tier filter) instead
-- of sorting the whole filtered set.
CREATE INDEX IF NOT EXISTS accounts_tier_client_idx ON accounts (tier, client_id);
CREATE INDEX IF NOT EXISTS accounts_tier_health_idx ON accounts (tier, health_score, client_id);
CREATE INDEX IF NOT EXISTS accounts_health_client_idx ON accounts (health_score, client_id);

CREATE OR REPLACE FUNCTION csmcp.portfolio_bulk() RETURNS boolean
LANGUAGE sql STABLE AS $$ SELECT coalesce(current_setting('csmcp.portfolio_bulk', true), '') = 'on' $$;

-- Recomputes both tables from the base tables. The EXCLUSIVE locks wait for every transaction
-- that has written deltas and block new delta writers until this transaction ends, so no delta
-- is both deleted-and-recomputed or kept-and-recomputed.
CREATE OR REPLACE FUNCTION csmcp.portfolio_rebuild() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    LOCK TABLE portfolio_counts, portfolio_usage IN EXCLUSIVE MODE;
    DELETE FROM portfolio_counts;
    DELETE FROM portfolio_usage;
    INSERT INTO portfolio_counts (tier, lifecycle_stage, accounts, health_sum, arr)
    SELECT a.tier, a.lifecycle_stage, count(*), sum(a.health_score), coalesce(sum(c.contract_value), 0)
    FROM accounts a LEFT JOIN contracts c ON c.client_id = a.client_id AND c.status = 'active'
    GROUP BY 1, 2;
    INSERT INTO portfolio_usage (day, tier, lifecycle_stage, active_users)
    SELECT u.day, a.tier, a.lifecycle_stage, sum(u.active_users)
    FROM usage_daily u JOIN accounts a USING (client_id)
    GROUP BY 1, 2, 3 HAVING sum(u.active_users) <> 0;
END $$;

-- Merges the delta rows of each group into one. Correct under concurrency without any lock:
-- the DELETE ... RETURNING and the INSERT of the sums are one statement, and a row another
-- transaction deleted first is not returned here. The advisory lock only spares the work.
CREATE OR REPLACE FUNCTION csmcp.portfolio_compact() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtext('csmcp.portfolio_compact')) THEN
        RETURN;
    END IF;
    WITH k AS (SELECT tier, lifecycle_stage FROM portfolio_counts GROUP BY 1, 2 HAVING count(*) > 1),
    d AS (DELETE FROM portfolio_counts p USING k
          WHERE p.tier = k.tier AND p.lifecycle_stage = k.lifecycle_stage
          RETURNING p.tier, p.lifecycle_stage, p.accounts, p.health_sum, p.arr)
    INSERT INTO portfolio_counts (tier, lifecycle_stage, accounts, health_sum, arr)
    SELECT tier, lifecycle_stage, sum(accounts), sum(health_sum), sum(arr) FROM d GROUP BY 1, 2
    HAVING sum(accounts) <> 0 OR sum(health_sum) <> 0 OR sum(arr) <> 0;
    WITH k AS (SELECT day, tier, lifecycle_stage FROM portfolio_usage GROUP BY 1, 2, 3 HAVING count(*) > 1),
    d AS (DELETE FROM portfolio_usage p USING k
          WHERE p.day = k.day AND p.tier = k.tier AND p.lifecycle_stage = k.lifecycle_stage
          RETURNING p.day, p.tier, p.lifecycle_stage, p.active_users)
    INSERT INTO portfolio_usage (day, tier, lifecycle_stage, active_users)
    SELECT day, tier, lifecycle_stage, sum(active_users) FROM d GROUP BY 1, 2, 3
    HAVING sum(active_users) <> 0;
END $$;

-- Called by a writer after inserting n delta rows whose last id is last_id: compacts when the
-- ids crossed a multiple of 256 (so about every 256 deltas, without counting rows).
CREATE OR REPLACE FUNCTION csmcp.portfolio_after_write(last_id bigint, n bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF n > 0 AND (n >= 256 OR last_id % 256 < n) THEN
        PERFORM csmcp.portfolio_compact();
    END IF;
END $$;

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

CREATE OR REPLACE FUNCTION csmcp.portfolio_truncate_trg() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM csmcp.portfolio_rebuild();
    RETURN NULL;
END $$;

CREATE TRIGGER portfolio_accounts_ins AFTER INSERT ON accounts REFERENCING NEW TABLE AS nt
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.portfolio_accounts_trg();
CREATE TRIGGER portfolio_accounts_upd AFTER UPDATE ON accounts REFERENCING OLD TABLE AS ot NEW TABLE AS nt
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.portfolio_accounts_trg();
CREATE TRIGGER portfolio_accounts_del BEFORE DELETE ON accounts
    FOR EACH ROW EXECUTE FUNCTION csmcp.portfolio_accounts_del_trg();
CREATE TRIGGER portfolio_accounts_trunc AFTER TRUNCATE ON accounts
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.portfolio_truncate_trg();

CREATE TRIGGER portfolio_contracts_ins AFTER INSERT ON contracts REFERENCING NEW TABLE AS nt
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.portfolio_contracts_trg();
CREATE TRIGGER portfolio_contracts_upd AFTER UPDATE ON contracts REFERENCING OLD TABLE AS ot NEW TABLE AS nt
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.portfolio_contracts_trg();
CREATE TRIGGER portfolio_contracts_del AFTER DELETE ON contracts REFERENCING OLD TABLE AS ot
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.portfolio_contracts_trg();
CREATE TRIGGER portfolio_contracts_trunc AFTER TRUNCATE ON contracts
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.portfolio_truncate_trg();

CREATE TRIGGER portfolio_usage_ins AFTER INSERT ON usage_daily REFERENCING NEW TABLE AS nt
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.portfolio_usage_trg();
CREATE TRIGGER portfolio_usage_upd AFTER UPDATE ON usage_daily REFERENCING OLD TABLE AS ot NEW TABLE AS nt
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.portfolio_usage_trg();
CREATE TRIGGER portfolio_usage_del AFTER DELETE ON usage_daily REFERENCING OLD TABLE AS ot
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.portfolio_usage_trg();
CREATE TRIGGER portfolio_usage_trunc AFTER TRUNCATE ON usage_daily
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.portfolio_truncate_trg();

-- Differences between the maintained totals and a from-scratch computation (no rows = they
-- agree). For tests and operators; reads everything, so not for the request path.
CREATE OR REPLACE FUNCTION csmcp.portfolio_check() RETURNS TABLE (what text, key text, maintained numeric, actual numeric)
LANGUAGE sql STABLE AS $$
    WITH m AS (SELECT tier, lifecycle_stage, sum(accounts) AS n, sum(health_sum) AS h, sum(arr) AS v
               FROM portfolio_counts GROUP BY 1, 2),
    a AS (SELECT a.tier, a.lifecycle_stage, count(*)::numeric AS n, sum(a.health_score)::numeric AS h,
                 coalesce(sum(c.contract_value), 0) AS v
          FROM accounts a LEFT JOIN contracts c ON c.client_id = a.client_id AND c.status = 'active'
          GROUP BY 1, 2),
    j AS (SELECT coalesce(m.tier, a.tier) || '/' || coalesce(m.lifecycle_stage, a.lifecycle_stage) AS key,
                 coalesce(m.n, 0) AS mn, coalesce(a.n, 0) AS an, coalesce(m.h, 0) AS mh, coalesce(a.h, 0) AS ah,
                 coalesce(m.v, 0) AS mv, coalesce(a.v, 0) AS av
          FROM m FULL JOIN a ON a.tier = m.tier AND a.lifecycle_stage = m.lifecycle_stage),
    mu AS (SELECT day, tier, lifecycle_stage, sum(active_users) AS au FROM portfolio_usage GROUP BY 1, 2, 3),
    au AS (SELECT u.day, a.tier, a.lifecycle_stage, sum(u.active_users)::numeric AS au
           FROM usage_daily u JOIN accounts a USING (client_id) GROUP BY 1, 2, 3)
    SELECT 'accounts', key, mn, an FROM j WHERE mn <> an
    UNION ALL SELECT 'health_sum', key, mh, ah FROM j WHERE mh <> ah
    UNION ALL SELECT 'arr', key, mv, av FROM j WHERE mv <> av
    UNION ALL
    SELECT 'active_users', coalesce(mu.day, au.day) || '/' || coalesce(mu.tier, au.tier) || '/'
                           || coalesce(mu.lifecycle_stage, au.lifecycle_stage),
           coalesce(mu.au, 0), coalesce(au.au, 0)
    FROM mu FULL JOIN au ON au.day = mu.day AND au.tier = mu.tier AND au.lifecycle_stage = mu.lifecycle_stage
    WHERE coalesce(mu.au, 0) <> coalesce(au.au, 0)
$$;

-- The seed writes ~90 usage days per account in bulk: skip the per-statement deltas and
-- rebuild once at the end. (A later seed version replacing csmcp.seed_demo keeps the totals
-- correct through the triggers, only slower.)
ALTER FUNCTION csmcp.seed_demo(integer) RENAME TO seed_demo_rows;
CREATE FUNCTION csmcp.seed_demo(n integer) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    r jsonb;
BEGIN
    PERFORM set_config('csmcp.portfolio_bulk', 'on', true);
    r := csmcp.seed_demo_rows(n);
    PERFORM set_config('csmcp.portfolio_bulk', 'off', true);
    PERFORM csmcp.portfolio_rebuild();
    ANALYZE portfolio_counts;
    ANALYZE portfolio_usage;
    RETURN r;
END $$;

-- list_clients: filters, sorting and pagination; the summary covers the whole filtered set.
-- Summary: without filters, or with tier_filter / lifecycle_stage_filter only, from the
-- maintained totals above (cost independent of the number of accounts); with any other filter,
-- computed over the filtered set as before. Page: one query whose ORDER BY matches an index
-- for the common sorts, so only offset + limit rows are read; the ORDER BY text is chosen from
-- the constant strings below (never from the arguments), every value is a bound parameter.
CREATE OR REPLACE FUNCTION csmcp.tool_list_clients(args jsonb, principal text)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
    t date := csmcp.today();
    f_tier text := csmcp.arg_text(args, 'tier_filter', NULL, ARRAY['starter', 'standard', 'professional', 'enterprise']);
    f_stage text := csmcp.arg_text(args, 'lifecycle_stage_filter', NULL,
                                   ARRAY['onboarding', 'active', 'at_risk', 'churned', 'expansion', 'renewal']);
    f_min integer := csmcp.arg_int(args, 'health_score_min', NULL, 0, 100);
    f_max integer := csmcp.arg_int(args, 'health_score_max', NULL, 0, 100);
    f_industry text := csmcp.arg_text(args, 'industry_filter', NULL);
    f_csm text := csmcp.arg_text(args, 'csm_filter', NULL);
    f_search text := csmcp.arg_text(args, 'search', NULL);
    f_renew integer := csmcp.arg_int(args, 'renewal_within_days', NULL, 0, 3650);
    v_sort text := csmcp.arg_text(args, 'sort_by', 'client_id',
                                  ARRAY['client_id', 'client_name', 'health_score', 'contract_value', 'days_until_renewal']);
    v_desc boolean := csmcp.arg_text(args, 'sort_order', 'asc', ARRAY['asc', 'desc']) = 'desc';
    v_limit integer := csmcp.arg_int(args, 'limit', 50, 1, 1000);
    v_offset integer := csmcp.arg_int(args, 'offset', 0, 0, 100000000);
    v_order text;
    v_from text := 'accounts a';
    v_renew text := '';
    clients jsonb;
    n_page bigint;
    s record;
    users numeric;
BEGIN
    IF f_min IS NOT NULL AND f_max IS NOT NULL AND f_min > f_max THEN
        PERFORM csmcp.invalid('health_score_min must not exceed health_score_max');
    END IF;

    -- Ties are broken by client_id in the direction of the sort; NULL values sort last both ways.
    v_order := CASE v_sort
        WHEN 'client_id' THEN 'a.client_id ASC'
        WHEN 'client_name' THEN 'a.client_name ASC, a.client_id ASC'
        WHEN 'health_score' THEN 'a.health_score ASC, a.client_id ASC'
        WHEN 'contract_value' THEN 'c.contract_value ASC NULLS LAST, a.client_id ASC'
        ELSE 'c.end_date ASC NULLS LAST, a.client_id ASC' END;
    IF v_desc THEN
        v_order := replace(v_order, ' ASC', ' DESC');
    END IF;
    -- The contract is joined for the page's selection only when a sort or filter needs it.
    IF v_sort IN ('contract_value', 'days_until_renewal') OR f_renew IS NOT NULL THEN
        v_from := 'accounts a LEFT JOIN contracts c ON c.client_id = a.client_id AND c.status = ''active''';
    END IF;
    IF f_renew IS NOT NULL THEN
        v_renew := 'AND c.end_date IS NOT NULL AND c.end_date - $1 BETWEEN 0 AND $9';
    END IF;
    EXECUTE
        'WITH pg AS (
            SELECT a.client_id, row_number() OVER (ORDER BY ' || v_order || ') AS ord
            FROM ' || v_from || '
            WHERE ($2::text IS NULL OR a.tier = $2)
              AND ($3::text IS NULL OR a.lifecycle_stage = $3)
              AND ($4::integer IS NULL OR a.health_score >= $4)
              AND ($5::integer IS NULL OR a.health_score <= $5)
              AND ($6::text IS NULL OR lower(a.industry) = lower($6))
              AND ($7::text IS NULL OR a.csm_assigned = $7)
              AND ($8::text IS NULL OR a.client_name ILIKE ''%'' || $8 || ''%'' OR a.company_name ILIKE ''%'' || $8 || ''%'')
              ' || v_renew || '
            ORDER BY ' || v_order || ' LIMIT $10 OFFSET $11)
        SELECT coalesce(jsonb_agg(jsonb_build_object(
                ''client_id'', a.client_id, ''client_name'', a.client_name, ''company_name'', a.company_name, ''tier'', a.tier,
                ''industry'', a.industry, ''lifecycle_stage'', a.lifecycle_stage, ''health_score'', a.health_score,
                ''health_trend'', a.health_trend, ''contract_value'', c.contract_value,
                ''days_until_renewal'', c.end_date - $1, ''csm_assigned'', a.csm_assigned,
                ''active_users'', (SELECT round(coalesce(sum(u.active_users), 0)::numeric / 7, 1) FROM usage_daily u
                                   WHERE u.client_id = a.client_id AND u.day > $1 - 7 AND u.day <= $1),
                ''support_tickets_open'', (SELECT count(*) FROM support_tickets st WHERE st.client_id = a.client_id
                                           AND st.status NOT IN (''resolved'', ''closed''))) ORDER BY pg.ord), ''[]''::jsonb),
               count(*)
        FROM pg JOIN accounts a USING (client_id)
        LEFT JOIN contracts c ON c.client_id = a.client_id AND c.status = ''active'''
    INTO clients, n_page
    USING t, f_tier, f_stage, f_min, f_max, f_industry, f_csm, f_search, f_renew, v_limit, v_offset;

    IF f_min IS NULL AND f_max IS NULL AND f_industry IS NULL AND f_csm IS NULL AND f_search IS NULL
       AND f_renew IS NULL THEN
        SELECT coalesce(sum(p.accounts), 0)::bigint AS n,
               round(sum(p.health_sum)::numeric / nullif(sum(p.accounts), 0), 1) AS avg_health,
               coalesce(sum(p.arr), 0) AS arr,
               coalesce(sum(p.accounts) FILTER (WHERE p.lifecycle_stage = 'onboarding'), 0)::bigint AS s_onb,
               coalesce(sum(p.accounts) FILTER (WHERE p.lifecycle_stage = 'active'), 0)::bigint AS s_act,
               coalesce(sum(p.accounts) FILTER (WHERE p.lifecycle_stage = 'at_risk'), 0)::bigint AS s_risk,
               coalesce(sum(p.accounts) FILTER (WHERE p.lifecycle_stage = 'churned'), 0)::bigint AS s_churn,
               coalesce(sum(p.accounts) FILTER (WHERE p.lifecycle_stage = 'expansion'), 0)::bigint AS s_exp,
               coalesce(sum(p.accounts) FILTER (WHERE p.lifecycle_stage = 'renewal'), 0)::bigint AS s_ren,
               coalesce(sum(p.accounts) FILTER (WHERE p.tier = 'starter'), 0)::bigint AS t_st,
               coalesce(sum(p.accounts) FILTER (WHERE p.tier = 'standard'), 0)::bigint AS t_sd,
               coalesce(sum(p.accounts) FILTER (WHERE p.tier = 'professional'), 0)::bigint AS t_pr,
               coalesce(sum(p.accounts) FILTER (WHERE p.tier = 'enterprise'), 0)::bigint AS t_en
        INTO s
        FROM portfolio_counts p
        WHERE (f_tier IS NULL OR p.tier = f_tier) AND (f_stage IS NULL OR p.lifecycle_stage = f_stage);
        SELECT round(coalesce(sum(p.active_users), 0)::numeric / 7, 1) INTO users
        FROM portfolio_usage p
        WHERE p.day > t - 7 AND p.day <= t
          AND (f_tier IS NULL OR p.tier = f_tier) AND (f_stage IS NULL OR p.lifecycle_stage = f_stage);
    ELSE
        WITH filtered AS (
            SELECT a.client_id, a.tier, a.lifecycle_stage, a.health_score, c.contract_value
            FROM accounts a LEFT JOIN contracts c ON c.client_id = a.client_id AND c.status = 'active'
            WHERE (f_tier IS NULL OR a.tier = f_tier)
              AND (f_stage IS NULL OR a.lifecycle_stage = f_stage)
              AND (f_min IS NULL OR a.health_score >= f_min)
              AND (f_max IS NULL OR a.health_score <= f_max)
              AND (f_industry IS NULL OR lower(a.industry) = lower(f_industry))
              AND (f_csm IS NULL OR a.csm_assigned = f_csm)
              AND (f_search IS NULL OR a.client_name ILIKE '%' || f_search || '%' OR a.company_name ILIKE '%' || f_search || '%')
              AND (f_renew IS NULL OR (c.end_date IS NOT NULL AND c.end_date - t BETWEEN 0 AND f_renew))
        ),
        users_cte AS (
            SELECT round(coalesce(sum(u.active_users), 0)::numeric / 7, 1) AS total
            FROM usage_daily u JOIN filtered f USING (client_id) WHERE u.day > t - 7 AND u.day <= t
        )
        SELECT count(*) AS n, round(avg(health_score), 1) AS avg_health, coalesce(sum(contract_value), 0) AS arr,
               count(*) FILTER (WHERE lifecycle_stage = 'onboarding') AS s_onb,
               count(*) FILTER (WHERE lifecycle_stage = 'active') AS s_act,
               count(*) FILTER (WHERE lifecycle_stage = 'at_risk') AS s_risk,
               count(*) FILTER (WHERE lifecycle_stage = 'churned') AS s_churn,
               count(*) FILTER (WHERE lifecycle_stage = 'expansion') AS s_exp,
               count(*) FILTER (WHERE lifecycle_stage = 'renewal') AS s_ren,
               count(*) FILTER (WHERE tier = 'starter') AS t_st, count(*) FILTER (WHERE tier = 'standard') AS t_sd,
               count(*) FILTER (WHERE tier = 'professional') AS t_pr, count(*) FILTER (WHERE tier = 'enterprise') AS t_en,
               (SELECT total FROM users_cte) AS users
        INTO s FROM filtered;
        users := s.users;
    END IF;

    RETURN jsonb_build_object(
        'clients', clients,
        'pagination', jsonb_build_object('total_count', s.n, 'limit', v_limit, 'offset', v_offset,
                                         'returned_count', n_page, 'has_more', v_offset + n_page < s.n),
        'filters_applied', jsonb_strip_nulls(jsonb_build_object('tier_filter', f_tier, 'lifecycle_stage_filter', f_stage,
            'health_score_min', f_min, 'health_score_max', f_max, 'industry_filter', f_industry, 'csm_filter', f_csm,
            'search', f_search, 'renewal_within_days', f_renew, 'sort_by', v_sort, 'sort_order', CASE WHEN v_desc THEN 'desc' ELSE 'asc' END)),
        'summary', jsonb_build_object('total_clients', s.n, 'average_health_score', s.avg_health, 'total_arr', s.arr,
            'total_active_users', users,
            'lifecycle_breakdown', jsonb_build_object('onboarding', s.s_onb, 'active', s.s_act, 'at_risk', s.s_risk,
                                                      'churned', s.s_churn, 'expansion', s.s_exp, 'renewal', s.s_ren),
            'tier_breakdown', jsonb_build_object('starter', s.t_st, 'standard', s.t_sd, 'professional', s.t_pr, 'enterprise', s.t_en)));
END $$;

-- The totals of the data already there (the triggers above keep them from now on).
SELECT csmcp.portfolio_rebuild();
ANALYZE portfolio_counts;
ANALYZE portfolio_usage;

-- portfolio/engage_window.sql - analyze_engagement_patterns' per-account figures of a period
-- (usage_moments, migration 0143) and their day table engage_window (migration 0147: design and
-- invariants there): the rows of given accounts, the day table's fill, its maintenance (called by
-- csmcp.usage_moments_refresh in the usage writers' transaction) and the check.

-- Per account (the given ones, or all with p_all - a literal at every call, so that the planner
-- sees either an index lookup of a few accounts or whole day slices to hash-join) over the
-- period (p_t - p_days, p_t], from its running moments at p_t (m0/l0), the
-- middle (m1/l1) and the start (m2/l2): the entry of that exact day (index-only slice of
-- usage_moments_day_idx), else the account's last entry before the day (only where the account
-- has a gap there and its first row, usage_moments_first_idx, is earlier), else zeros. nr = rows,
-- a1 / a2 = active users of the first / second half, s1 / s2 = sum and sum of squares (float8 as
-- the from-scratch sums), mx / mn = running extremes up to p_t (bounds of the period's), e1..e7 =
-- events per ISO weekday; then the trend (first vs second half average, +/-10 %; an account
-- without rows in the period has no halves: 0, 'inactive'); cand = an anomaly candidate: the mean
-- and standard deviation over all p_days days (a missing day counts as 0) put the running maximum
-- or minimum 3 deviations away (loosened by 1 for the index probe), or the mean itself while days
-- are missing.
CREATE OR REPLACE FUNCTION csmcp.engage_window_rows(p_clients text[], p_all boolean, p_t date, p_days integer)
RETURNS TABLE (client_id text, nr bigint, a1 bigint, a2 bigint, s1 float8, s2 float8, mx integer, mn integer,
               e1 bigint, e2 bigint, e3 bigint, e4 bigint, e5 bigint, e6 bigint, e7 bigint,
               first_avg numeric, second_avg numeric, direction text, cand boolean)
LANGUAGE sql STABLE AS $$
    SELECT z.*, coalesce(x1, 0), coalesce(x2, 0),
           CASE WHEN coalesce(x1, 0) = 0 AND coalesce(x2, 0) = 0 THEN 'inactive' WHEN coalesce(x1, 0) = 0 THEN 'growing'
                WHEN (x2 - x1) / x1 > 0.10 THEN 'growing' WHEN (x2 - x1) / x1 < -0.10 THEN 'declining' ELSE 'flat' END,
           z.nr > 0 AND sd > 0 AND (z.mx >= mu + 3 * sd - 1 OR z.mn <= mu - 3 * sd + 1 OR (mu >= 3 * sd AND z.nr < p_days))
    FROM (
        SELECT e.client_id, coalesce(m0.cum_rows, l0.cum_rows, 0) - coalesce(m2.cum_rows, l2.cum_rows, 0) AS nr, coalesce(m1.cum_users, l1.cum_users, 0) - coalesce(m2.cum_users, l2.cum_users, 0) AS a1, coalesce(m0.cum_users, l0.cum_users, 0) - coalesce(m1.cum_users, l1.cum_users, 0) AS a2,
               (coalesce(m0.cum_users, l0.cum_users, 0) - coalesce(m2.cum_users, l2.cum_users, 0))::float8 AS s1, (coalesce(m0.cum_sq, l0.cum_sq, 0) - coalesce(m2.cum_sq, l2.cum_sq, 0))::float8 AS s2, coalesce(m0.cum_max, l0.cum_max) AS mx, coalesce(m0.cum_min, l0.cum_min) AS mn,
               coalesce(m0.cum_ev1, l0.cum_ev1, 0) - coalesce(m2.cum_ev1, l2.cum_ev1, 0),
           coalesce(m0.cum_ev2, l0.cum_ev2, 0) - coalesce(m2.cum_ev2, l2.cum_ev2, 0),
           coalesce(m0.cum_ev3, l0.cum_ev3, 0) - coalesce(m2.cum_ev3, l2.cum_ev3, 0),
           coalesce(m0.cum_ev4, l0.cum_ev4, 0) - coalesce(m2.cum_ev4, l2.cum_ev4, 0),
           coalesce(m0.cum_ev5, l0.cum_ev5, 0) - coalesce(m2.cum_ev5, l2.cum_ev5, 0),
           coalesce(m0.cum_ev6, l0.cum_ev6, 0) - coalesce(m2.cum_ev6, l2.cum_ev6, 0),
           coalesce(m0.cum_ev7, l0.cum_ev7, 0) - coalesce(m2.cum_ev7, l2.cum_ev7, 0)
        FROM accounts e
        LEFT JOIN usage_moments f0 ON f0.client_id = e.client_id AND f0.cum_rows = 1
        LEFT JOIN usage_moments m0 ON m0.client_id = e.client_id AND m0.day = p_t
        LEFT JOIN usage_moments m1 ON m1.client_id = e.client_id AND m1.day = p_t - p_days / 2
        LEFT JOIN usage_moments m2 ON m2.client_id = e.client_id AND m2.day = p_t - p_days
        LEFT JOIN LATERAL (SELECT * FROM usage_moments m WHERE m0.client_id IS NULL AND f0.day < p_t
                           AND m.client_id = e.client_id AND m.day < p_t ORDER BY m.day DESC LIMIT 1) l0 ON true
        LEFT JOIN LATERAL (SELECT * FROM usage_moments m WHERE m1.client_id IS NULL AND f0.day < p_t - p_days / 2
                           AND m.client_id = e.client_id AND m.day < p_t - p_days / 2 ORDER BY m.day DESC LIMIT 1) l1 ON true
        LEFT JOIN LATERAL (SELECT * FROM usage_moments m WHERE m2.client_id IS NULL AND f0.day < p_t - p_days
                           AND m.client_id = e.client_id AND m.day < p_t - p_days ORDER BY m.day DESC LIMIT 1) l2 ON true
        WHERE p_all OR e.client_id = ANY (p_clients)
    ) z
    CROSS JOIN LATERAL (SELECT CASE WHEN z.nr > 0 THEN z.a1::numeric / (p_days - p_days / 2) END AS x1,
                               CASE WHEN z.nr > 0 THEN z.a2::numeric / (p_days / 2) END AS x2) h
    CROSS JOIN LATERAL (SELECT z.s1 / p_days AS mu, sqrt(greatest(0, z.s2 / p_days - (z.s1 / p_days) ^ 2)) AS sd) st
$$;

-- The anomalies among the given candidates (mean mu and standard deviation sd of daily active
-- users over the period (p_t - p_days, p_t], running extremes mx / mn, rows nr): stored rows
-- deviating by 3 standard deviations, probed from the account's highest (lowest) daily active
-- users only where the running maximum (minimum) reaches that far (bound loosened by 1 for the
-- index, the exact test follows), and missing days (value 0) for accounts with fewer rows than
-- days whose mean is 3 deviations; z unrounded (the order of the answer).
CREATE OR REPLACE FUNCTION csmcp.engage_anomalies_of(p_clients text[], p_mu float8[], p_sd float8[], p_mx integer[], p_mn integer[],
                                                     p_nr bigint[], p_t date, p_days integer)
RETURNS TABLE (client_id text, day date, dau integer, mu float8, z float8)
LANGUAGE sql STABLE AS $$
    WITH stats AS (SELECT * FROM unnest(p_clients, p_mu, p_sd, p_mx, p_mn, p_nr) s(client_id, mu, sd, mx, mn, nr)),
    cand AS (
        SELECT s.client_id, u.day, u.active_users AS dau FROM stats s
        CROSS JOIN LATERAL (SELECT u.day, u.active_users FROM usage_daily u
                            WHERE u.client_id = s.client_id AND u.active_users >= floor(s.mu + 3 * s.sd)::bigint - 1
                              AND u.day > p_t - p_days AND u.day <= p_t) u
        WHERE s.sd > 0 AND s.mx >= s.mu + 3 * s.sd - 1
          AND abs(u.active_users - s.mu) >= 3 * s.sd AND u.active_users > s.mu
        UNION ALL
        SELECT s.client_id, u.day, u.active_users FROM stats s
        CROSS JOIN LATERAL (SELECT u.day, u.active_users FROM usage_daily u
                            WHERE u.client_id = s.client_id AND u.active_users <= ceil(s.mu - 3 * s.sd)::bigint + 1
                              AND u.day > p_t - p_days AND u.day <= p_t) u
        WHERE s.sd > 0 AND s.mn <= s.mu - 3 * s.sd + 1
          AND abs(u.active_users - s.mu) >= 3 * s.sd AND u.active_users < s.mu
        UNION ALL
        SELECT s.client_id, g.d, 0 FROM stats s
        CROSS JOIN LATERAL (SELECT g.d::date AS d FROM generate_series(p_t - p_days + 1, p_t, interval '1 day') g(d)
                            WHERE NOT EXISTS (SELECT 1 FROM usage_daily u WHERE u.client_id = s.client_id AND u.day = g.d::date)
                            OFFSET 0) g   -- not pulled up: primary key lookups of these accounts only
        WHERE s.sd > 0 AND s.mu >= 3 * s.sd AND s.nr < p_days
    )
    SELECT c.client_id, c.day, c.dau, s.mu, (c.dau - s.mu) / s.sd FROM cand c JOIN stats s USING (client_id)
$$;

-- The day table for (p_days, p_t) with every account's row (nr > 0 only: an account without rows
-- in the period is 'inactive' with zeros, which the reader derives). Filled once per UTC day and
-- period by the monitor process's prefill after UTC midnight (csmcp.engage_window_prefill) or,
-- failing that, by the first all-accounts call, under the usage writers' lock: a writer either committed
-- before (its rows are read here: the fill is a later statement than the lock) or writes after
-- the key is visible to it and maintains the rows itself (csmcp.engage_window_refresh). Only in
-- READ COMMITTED (a transaction snapshot taken before the lock could miss a writer's commit) and
-- for at most 4 periods per day (each costs a maintenance statement per usage write). Returns
-- whether the day table of (p_days, p_t) can be read.
CREATE OR REPLACE FUNCTION csmcp.engage_window_ensure(p_days integer, p_t date) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    -- the caller's period, noted once per day (a read first: no row lock, no WAL on the hot path)
    IF current_setting('transaction_read_only') = 'off'
       AND NOT EXISTS (SELECT 1 FROM engage_window_used WHERE v_days = p_days AND last_day >= p_t) THEN
        INSERT INTO engage_window_used AS u VALUES (p_days, p_t)
        ON CONFLICT (v_days) DO UPDATE SET last_day = excluded.last_day WHERE u.last_day < excluded.last_day;
    END IF;
    RETURN csmcp.engage_window_fill(p_days, p_t);
END $$;

-- The fill itself (csmcp.engage_window_ensure without noting the period).
CREATE OR REPLACE FUNCTION csmcp.engage_window_fill(p_days integer, p_t date) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM engage_window_key WHERE v_days = p_days AND t = p_t) THEN
        RETURN true;
    END IF;
    IF current_setting('transaction_isolation') <> 'read committed' OR current_setting('transaction_read_only') = 'on'
       OR (SELECT count(*) FROM engage_window_key WHERE t = p_t) >= 4 THEN
        RETURN false;
    END IF;
    PERFORM csmcp.usage_write_lock();
    IF EXISTS (SELECT 1 FROM engage_window_key WHERE v_days = p_days AND t = p_t) THEN   -- filled while we waited
        RETURN true;
    END IF;
    -- earlier days are never read again (the reader's day is csmcp.today())
    DELETE FROM engage_window WHERE t < p_t;
    DELETE FROM engage_window_key WHERE t < p_t;
    DELETE FROM engage_window_tot WHERE t < p_t;
    DELETE FROM engage_window_anom WHERE t < p_t;
    PERFORM csmcp.engage_window_put(p_days, p_t, NULL);
    INSERT INTO engage_window_anom
    SELECT p_days, p_t, x.* FROM (
        SELECT array_agg(w.client_id) AS c, array_agg(w.s1 / p_days) AS mu, array_agg(sqrt(greatest(0, w.s2 / p_days - (w.s1 / p_days) ^ 2))) AS sd,
               array_agg(w.mx) AS mx, array_agg(w.mn) AS mn, array_agg(w.nr) AS nr
        FROM engage_window w WHERE w.v_days = p_days AND w.t = p_t AND w.cand) a
    CROSS JOIN LATERAL csmcp.engage_anomalies_of(a.c, a.mu, a.sd, a.mx, a.mn, a.nr, p_t, p_days) x;
    INSERT INTO engage_window_key (v_days, t) VALUES (p_days, p_t);
    -- the day's rows replace the previous day's: statistics for the reader's plans (without
    -- them the 20 most declining accounts were a sort of all of them, not an index range)
    ANALYZE engage_window;
    RETURN true;
END $$;

-- The monitor process's prefill (worker/monitor.c, every tick while leading): fills the day table
-- of one period used by an all-accounts caller in the last 7 days (the most recently used first)
-- that today has none, within the 4 periods a day. So after UTC midnight the day tables exist
-- before the day's first caller, who no longer waits 9-14 s (100,000 accounts) for the fill; a
-- period never asked for is never kept (each kept table costs every usage write a maintenance
-- statement). One period per call: each fill is its own transaction, so the usage writers wait
-- for one fill at a time. Returns what it filled, or null (nothing to do: the common case, an
-- index probe).
CREATE OR REPLACE FUNCTION csmcp.engage_window_prefill() RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    d date := csmcp.today();
    p integer;
    t0 timestamptz;
BEGIN
    SELECT u.v_days INTO p FROM engage_window_used u
    WHERE u.last_day >= d - 7 AND NOT EXISTS (SELECT 1 FROM engage_window_key k WHERE k.v_days = u.v_days AND k.t = d)
    ORDER BY u.last_day DESC, u.v_days LIMIT 1;
    IF p IS NULL THEN
        RETURN NULL;
    END IF;
    t0 := clock_timestamp();
    IF NOT csmcp.engage_window_fill(p, d) THEN   -- 4 periods today already, or not READ COMMITTED
        RETURN NULL;
    END IF;
    RETURN jsonb_build_object('lookback_period_days', p, 'day', d,
                              'ms', round(extract(epoch FROM clock_timestamp() - t0) * 1000));
END $$;

-- Maintenance: the given accounts' rows of every day table still read (day >= the writer's
-- today: a writer that began before midnight also keeps the new day's tables), recomputed from
-- their moments. Called by csmcp.usage_moments_refresh after the moments, under the usage
-- writers' lock.
CREATE OR REPLACE FUNCTION csmcp.engage_window_refresh(p_clients text[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    k record;
BEGIN
    FOR k IN SELECT v_days, t FROM engage_window_key WHERE t >= csmcp.today() ORDER BY 1, 2 LOOP
        -- the accounts' old rows leave the sums, then the new ones enter them
        INSERT INTO engage_window_tot AS o
        SELECT k.v_days, k.t, w.direction, -count(*), -sum(w.nr), -sum(w.e1), -sum(w.e2), -sum(w.e3), -sum(w.e4), -sum(w.e5),
               -sum(w.e6), -sum(w.e7)
        FROM engage_window w WHERE w.v_days = k.v_days AND w.t = k.t AND w.client_id = ANY (p_clients) GROUP BY w.direction
        ON CONFLICT (v_days, t, direction) DO UPDATE SET k = o.k + excluded.k, nr = o.nr + excluded.nr, e1 = o.e1 + excluded.e1,
            e2 = o.e2 + excluded.e2, e3 = o.e3 + excluded.e3, e4 = o.e4 + excluded.e4, e5 = o.e5 + excluded.e5,
            e6 = o.e6 + excluded.e6, e7 = o.e7 + excluded.e7;
        DELETE FROM engage_window w WHERE w.v_days = k.v_days AND w.t = k.t AND w.client_id = ANY (p_clients);
        DELETE FROM engage_window_anom w WHERE w.v_days = k.v_days AND w.t = k.t AND w.client_id = ANY (p_clients);
        PERFORM csmcp.engage_window_put(k.v_days, k.t, p_clients);
        INSERT INTO engage_window_anom
        SELECT k.v_days, k.t, x.* FROM (
            SELECT array_agg(w.client_id) AS c, array_agg(w.s1 / k.v_days) AS mu,
                   array_agg(sqrt(greatest(0, w.s2 / k.v_days - (w.s1 / k.v_days) ^ 2))) AS sd,
                   array_agg(w.mx) AS mx, array_agg(w.mn) AS mn, array_agg(w.nr) AS nr
            FROM engage_window w WHERE w.v_days = k.v_days AND w.t = k.t AND w.client_id = ANY (p_clients) AND w.cand) a
        CROSS JOIN LATERAL csmcp.engage_anomalies_of(a.c, a.mu, a.sd, a.mx, a.mn, a.nr, k.t, k.v_days) x;
    END LOOP;
END $$;

-- The rows of the given accounts (null: all; none yet in the day table) into the day table and
-- its sums. (Two statements: one plan for a few accounts' index lookups, one for whole slices.)
CREATE OR REPLACE FUNCTION csmcp.engage_window_put(p_days integer, p_t date, p_clients text[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF p_clients IS NULL THEN
        INSERT INTO engage_window SELECT p_days, p_t, r.* FROM csmcp.engage_window_rows(NULL, true, p_t, p_days) r WHERE r.nr > 0;
        INSERT INTO engage_window_tot
        SELECT p_days, p_t, direction, count(*), sum(nr), sum(e1), sum(e2), sum(e3), sum(e4), sum(e5), sum(e6), sum(e7)
        FROM engage_window WHERE v_days = p_days AND t = p_t GROUP BY direction;
        RETURN;
    END IF;
    WITH i AS (
        INSERT INTO engage_window
        SELECT p_days, p_t, r.* FROM csmcp.engage_window_rows(p_clients, false, p_t, p_days) r WHERE r.nr > 0
        RETURNING direction, nr, e1, e2, e3, e4, e5, e6, e7)
    INSERT INTO engage_window_tot AS o
    SELECT p_days, p_t, direction, count(*), sum(nr), sum(e1), sum(e2), sum(e3), sum(e4), sum(e5), sum(e6), sum(e7) FROM i GROUP BY 1, 2, 3
    ON CONFLICT (v_days, t, direction) DO UPDATE SET k = o.k + excluded.k, nr = o.nr + excluded.nr, e1 = o.e1 + excluded.e1,
        e2 = o.e2 + excluded.e2, e3 = o.e3 + excluded.e3, e4 = o.e4 + excluded.e4, e5 = o.e5 + excluded.e5,
        e6 = o.e6 + excluded.e6, e7 = o.e7 + excluded.e7;
END $$;

-- Forgets every day table (the moments were rebuilt or emptied); the next call fills it again.
CREATE OR REPLACE FUNCTION csmcp.engage_window_clear() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM engage_window;
    DELETE FROM engage_window_tot;
    DELETE FROM engage_window_anom;
    DELETE FROM engage_window_key;
END $$;

-- Rows of the day tables still read that differ from a from-scratch computation over the
-- moments (none when exact).
CREATE OR REPLACE FUNCTION csmcp.engage_window_check()
RETURNS TABLE (v_days integer, t date, client_id text, maintained text, actual text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    k record;
BEGIN
    FOR k IN SELECT w.v_days, w.t FROM engage_window_key w WHERE w.t >= csmcp.today() ORDER BY 1, 2 LOOP
        RETURN QUERY
        SELECT k.v_days, k.t, coalesce(m.client_id, a.client_id), m.x, a.x
        FROM (SELECT w.client_id, concat_ws(',', w.nr, w.a1, w.a2, w.s1, w.s2, w.mx, w.mn, w.e1, w.e2, w.e3, w.e4, w.e5, w.e6, w.e7,
                                            w.first_avg, w.second_avg, w.direction, w.cand) AS x
              FROM engage_window w WHERE w.v_days = k.v_days AND w.t = k.t) m
        FULL JOIN (SELECT r.client_id, concat_ws(',', r.nr, r.a1, r.a2, r.s1, r.s2, r.mx, r.mn, r.e1, r.e2, r.e3, r.e4, r.e5, r.e6, r.e7,
                                                 r.first_avg, r.second_avg, r.direction, r.cand) AS x
                   FROM csmcp.engage_window_rows(NULL, true, k.t, k.v_days) r WHERE r.nr > 0) a
             ON a.client_id = m.client_id
        WHERE m.x IS DISTINCT FROM a.x;
        RETURN QUERY   -- the anomalies
        SELECT k.v_days, k.t, 'anomaly:' || coalesce(m.client_id, a.client_id) || '/' || coalesce(m.day, a.day), m.x, a.x
        FROM (SELECT w.client_id, w.day, concat_ws(',', w.dau, w.mu, w.z) AS x FROM engage_window_anom w
              WHERE w.v_days = k.v_days AND w.t = k.t) m
        FULL JOIN (SELECT y.client_id, y.day, concat_ws(',', y.dau, y.mu, y.z) AS x FROM (
                       SELECT array_agg(r.client_id) AS c, array_agg(r.s1 / k.v_days) AS mu,
                              array_agg(sqrt(greatest(0, r.s2 / k.v_days - (r.s1 / k.v_days) ^ 2))) AS sd,
                              array_agg(r.mx) AS mx, array_agg(r.mn) AS mn, array_agg(r.nr) AS nr
                       FROM csmcp.engage_window_rows(NULL, true, k.t, k.v_days) r WHERE r.cand) z
                   CROSS JOIN LATERAL csmcp.engage_anomalies_of(z.c, z.mu, z.sd, z.mx, z.mn, z.nr, k.t, k.v_days) y) a
             ON a.client_id = m.client_id AND a.day = m.day
        WHERE m.x IS DISTINCT FROM a.x;
        RETURN QUERY   -- the sums (zero sums count as absent)
        SELECT k.v_days, k.t, 'sum:' || coalesce(m.direction, a.direction), m.x, a.x
        FROM (SELECT o.direction, concat_ws(',', o.k, o.nr, o.e1, o.e2, o.e3, o.e4, o.e5, o.e6, o.e7) AS x FROM engage_window_tot o
              WHERE o.v_days = k.v_days AND o.t = k.t AND o.k <> 0) m
        FULL JOIN (SELECT w.direction, concat_ws(',', count(*), sum(w.nr), sum(w.e1), sum(w.e2), sum(w.e3), sum(w.e4), sum(w.e5),
                                                 sum(w.e6), sum(w.e7)) AS x
                   FROM engage_window w WHERE w.v_days = k.v_days AND w.t = k.t GROUP BY 1) a ON a.direction = m.direction
        WHERE m.x IS DISTINCT FROM a.x;
    END LOOP;
END $$;

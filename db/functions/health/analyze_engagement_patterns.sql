-- health/analyze_engagement_patterns.sql - tool analyze_engagement_patterns.
-- Per account, the usage figures of the period (t - n, t] come from three entries of the running
-- moments (usage_moments, migration 0143: today, the middle and the start of the period) instead
-- of every usage row: the trend halves, the mean and standard deviation of daily active users,
-- the weekday event totals; anomalies are probed (index usage_daily (client_id, active_users))
-- only for accounts whose running maximum / minimum reaches 3 standard deviations. Across all
-- accounts the feature part comes from the per-feature rollups (migration 0142) minus the
-- churned accounts' rows; for a segment or one account from those accounts' rows. Across all
-- accounts the per-account figures and anomalies come from the day table of (period, today)
-- (migration 0147) and communication / support from per-day counts and per-account last contact
-- / third-latest ticket (0146); for a segment or one account one scan each. All rollups are exact
-- (kept in the writing transaction; the day table is keyed by its day).
-- csmcp.analyze_engagement_patterns_scratch below is the from-scratch computation (the tool
-- before issue 21); the equality tests compare the two.
CREATE OR REPLACE FUNCTION csmcp.tool_analyze_engagement_patterns(args jsonb, principal text)
RETURNS jsonb LANGUAGE plpgsql SET work_mem = '16MB' SET jit = off AS $$ -- volatile: uses temporary work tables
DECLARE
    t date := csmcp.today();
    v_scope text := csmcp.arg_text(args, 'analysis_scope', 'all_customers', ARRAY['all_customers', 'segment', 'individual']);
    f jsonb := coalesce(args -> 'scope_filter', '{}');
    v_days integer := csmcp.arg_int(args, 'lookback_period_days', 90, 7, 365);
    v_anom boolean := csmcp.arg_bool(args, 'anomaly_detection', true);
    types text[];
    n integer;
    tot_rows bigint;
    dw numeric[];
    present integer[];
    temporal jsonb; feat jsonb; comm jsonb; supp jsonb; anomalies jsonb; patterns jsonb;
    src text;   -- the per-account figures: ep_st or the day table (a subquery)
    n_grow bigint; n_flat bigint; n_decl bigint; n_inact bigint;
    declining jsonb;
    acc_list text[];
    wk_days integer := v_days; wk_t date := t;   -- (the day table's key: its columns are named v_days, t)
    cut timestamptz := now() - make_interval(days => v_days);   -- the period of communications and tickets
    cd date := (cut AT TIME ZONE 'UTC')::date;   -- the cut's UTC day: read raw; later days from the rollups
    cd_end timestamptz := (cd + 1)::timestamp AT TIME ZONE 'UTC';
BEGIN
    IF args ? 'pattern_types' AND jsonb_typeof(args -> 'pattern_types') = 'array' AND jsonb_array_length(args -> 'pattern_types') > 0 THEN
        SELECT array_agg(x) INTO types FROM jsonb_array_elements_text(args -> 'pattern_types') x;
        IF NOT types <@ ARRAY['temporal', 'feature_usage', 'communication', 'support'] THEN
            PERFORM csmcp.invalid('pattern_types must be among: temporal, feature_usage, communication, support');
        END IF;
    ELSE
        types := ARRAY['temporal', 'feature_usage', 'communication', 'support'];
    END IF;
    IF v_scope = 'individual' THEN
        PERFORM csmcp.require_account(f ->> 'client_id');
    ELSIF v_scope = 'segment' AND f ->> 'segment_id' IS NOT NULL AND NOT EXISTS (SELECT 1 FROM segments WHERE segment_id = f ->> 'segment_id') THEN
        RAISE EXCEPTION 'segment not found: %', f ->> 'segment_id' USING ERRCODE = 'P0002';
    END IF;
    -- A read: the only writes of this transaction are the work tables' catalog entries, so its
    -- commit need not wait for a WAL flush (that wait was a visible share of a one-account call).
    PERFORM set_config('synchronous_commit', 'off', true);

    -- Work tables live as long as the session (emptied at every commit): creating and dropping
    -- them was most of a one-account call. Emptied here too, for a second call in one transaction.
    IF to_regclass('pg_temp.ep_anom') IS NULL THEN   -- (not IF NOT EXISTS: its notice on every call)
        CREATE TEMP TABLE IF NOT EXISTS ep_acc (client_id text PRIMARY KEY) ON COMMIT DELETE ROWS;
        CREATE TEMP TABLE IF NOT EXISTS ep_st (client_id text, nr bigint, a1 bigint, a2 bigint, s1 float8, s2 float8, mx integer,
                                 mn integer, e1 bigint, e2 bigint, e3 bigint, e4 bigint, e5 bigint, e6 bigint, e7 bigint,
                                 first_avg numeric, second_avg numeric, direction text, cand boolean) ON COMMIT DELETE ROWS;
        CREATE TEMP TABLE ep_cand2 (client_id text, mu float8, sd float8, mx integer, mn integer, nr bigint) ON COMMIT DELETE ROWS;
        CREATE TEMP TABLE IF NOT EXISTS ep_anom (client_id text, day date, dau integer, mu float8, z float8) ON COMMIT DELETE ROWS;
    END IF;
    DELETE FROM ep_acc;
    DELETE FROM ep_st;
    DELETE FROM ep_cand2;
    DELETE FROM ep_anom;

    -- The per-account figures of the period (csmcp.engage_window_rows: three entries of the
    -- running moments per account). Across all accounts from the day table of (v_days, today) -
    -- filled by the day's first call, then kept by the usage writers (migration 0147) - minus the
    -- churned accounts' rows; for a segment or one account computed here into ep_st.
    IF v_scope = 'all_customers' AND csmcp.engage_window_ensure(v_days, t) THEN
        n := (SELECT count(*) FROM accounts) - (SELECT count(*) FROM accounts WHERE status = 'churned');
        src := '(SELECT w.* FROM engage_window w WHERE w.v_days = $1 AND w.t = $2 AND NOT EXISTS ('
               'SELECT 1 FROM accounts a WHERE a.client_id = w.client_id AND a.status = ''churned''))';
    ELSE
        IF v_scope = 'individual' THEN
            INSERT INTO ep_acc VALUES (f ->> 'client_id');   -- require_account found it
        ELSIF v_scope = 'all_customers' THEN
            INSERT INTO ep_acc SELECT a.client_id FROM accounts a WHERE a.status <> 'churned';
        ELSE
            INSERT INTO ep_acc SELECT a.client_id FROM accounts a
            WHERE (f ->> 'segment_id' IS NULL OR a.client_id IN (SELECT client_id FROM segment_members WHERE segment_id = f ->> 'segment_id'))
              AND (f ->> 'tier' IS NULL OR a.tier = f ->> 'tier')
              AND (f ->> 'health_min' IS NULL OR a.health_score >= (f ->> 'health_min')::numeric)
              AND (f ->> 'health_max' IS NULL OR a.health_score <= (f ->> 'health_max')::numeric)
              AND a.status <> 'churned';
        END IF;
        SELECT count(*) INTO n FROM ep_acc;
        -- Without statistics a fresh table counts as 10 pages (thousands of rows): one account would
        -- get the hash joins over whole slices that the portfolio needs.
        ANALYZE ep_acc;
        acc_list := ARRAY(SELECT client_id FROM ep_acc);   -- (a variable, not a subquery argument: the function is inlined)
        INSERT INTO ep_st SELECT * FROM csmcp.engage_window_rows(acc_list, false, t, v_days);
        src := 'ep_st';
    END IF;
    -- One pass for the counts per trend (accounts without rows in the period are 'inactive': the
    -- rest of n), the period's rows and weekday events; then the 20 most declining accounts and
    -- the anomaly candidates: accounts whose running maximum / minimum reaches 3 standard
    -- deviations (bound loosened by 1 for the index probe below), or whose mean does while they
    -- miss days (a missing day counts as 0).
    IF src = 'ep_st' THEN
        SELECT count(*) FILTER (WHERE direction = 'growing'), count(*) FILTER (WHERE direction = 'flat'),
               count(*) FILTER (WHERE direction = 'declining'), coalesce(sum(nr), 0),
               ARRAY[sum(e1), sum(e2), sum(e3), sum(e4), sum(e5), sum(e6), sum(e7)]
        INTO n_grow, n_flat, n_decl, tot_rows, dw FROM ep_st;
    ELSE   -- the day table's sums minus the churned accounts' rows (primary key reads)
        SELECT coalesce(sum(k) FILTER (WHERE direction = 'growing'), 0), coalesce(sum(k) FILTER (WHERE direction = 'flat'), 0),
               coalesce(sum(k) FILTER (WHERE direction = 'declining'), 0), coalesce(sum(nr), 0),
               ARRAY[sum(e1), sum(e2), sum(e3), sum(e4), sum(e5), sum(e6), sum(e7)]
        INTO n_grow, n_flat, n_decl, tot_rows, dw FROM (
            SELECT o.direction, o.k, o.nr, o.e1, o.e2, o.e3, o.e4, o.e5, o.e6, o.e7 FROM engage_window_tot o
            WHERE o.v_days = wk_days AND o.t = wk_t AND o.k <> 0
            UNION ALL
            SELECT w.direction, -1, -w.nr, -w.e1, -w.e2, -w.e3, -w.e4, -w.e5, -w.e6, -w.e7
            FROM accounts a
            CROSS JOIN LATERAL (SELECT * FROM engage_window w WHERE w.v_days = wk_days AND w.t = wk_t AND w.client_id = a.client_id
                                OFFSET 0) w   -- (by key)
            WHERE a.status = 'churned') x;
    END IF;
    n_inact := n - n_grow - n_flat - n_decl;
    EXECUTE format('SELECT coalesce(jsonb_agg(jsonb_build_object(''client_id'', client_id, ''first_half_avg_dau'', round(first_avg, 2), '
                   '''second_half_avg_dau'', round(second_avg, 2)) ORDER BY (second_avg - first_avg) / first_avg, client_id), ''[]'') '
                   'FROM (SELECT * FROM %s d WHERE direction = ''declining'' ORDER BY (second_avg - first_avg) / first_avg, client_id LIMIT 20) d',
                   src)
    INTO declining USING v_days, t;
    IF v_anom AND src = 'ep_st' THEN
        INSERT INTO ep_cand2 SELECT client_id, s1 / v_days, sqrt(greatest(0, s2 / v_days - (s1 / v_days) ^ 2)), mx, mn, nr
        FROM ep_st WHERE cand;
    END IF;

    IF 'temporal' = ANY (types) THEN
        -- the weekdays as the from-scratch grouping sees them: only weekdays with rows in the
        -- period. A weekday without events cannot change the share or the busiest day unless no
        -- weekday (Monday-Friday) has events: then whether weekday rows exist decides 0 against
        -- null, so the weekdays with rows are read from the rows (rare).
        IF tot_rows = 0 THEN
            present := '{}';
        ELSIF coalesce(dw[1] + dw[2] + dw[3] + dw[4] + dw[5], 0) = 0 THEN
            SELECT coalesce(array_agg(DISTINCT extract(isodow FROM u.day)::int), '{}') INTO present
            FROM usage_daily u JOIN ep_acc USING (client_id) WHERE u.day > t - v_days AND u.day <= t;
            IF src <> 'ep_st' THEN   -- (from the day table: ep_acc is not filled)
                SELECT coalesce(array_agg(DISTINCT extract(isodow FROM u.day)::int), '{}') INTO present
                FROM usage_daily u JOIN accounts a USING (client_id) WHERE u.day > t - v_days AND u.day <= t AND a.status <> 'churned';
            END IF;
        ELSE
            SELECT coalesce(array_agg(d), '{}') INTO present FROM unnest(dw) WITH ORDINALITY x(ev, d) WHERE ev > 0;
        END IF;
        WITH dow AS (SELECT x.d::int AS d, x.ev FROM unnest(dw) WITH ORDINALITY x(ev, d) WHERE x.d = ANY (present))
        SELECT jsonb_build_object(
            'accounts_growing', n_grow,
            'accounts_flat', n_flat,
            'accounts_declining', n_decl,
            'accounts_inactive', n_inact,
            'weekday_share_of_events', (SELECT round(sum(ev) FILTER (WHERE d < 6)::numeric / nullif(sum(ev), 0), 3) FROM dow),
            'busiest_weekday', (SELECT (ARRAY['Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday', 'Sunday'])[d]
                                FROM dow ORDER BY ev DESC, d LIMIT 1))
        INTO temporal;
    END IF;
    IF 'feature_usage' = ANY (types) THEN
        IF v_scope = 'all_customers' THEN
            -- every account's pairs and events (rollups) minus those of the churned accounts
            WITH allf AS (
                SELECT a.feature_id, sum(a.last_pairs) AS lp, sum(a.events) AS ev FROM usage_feature_agg a
                WHERE a.day > t - v_days AND a.day <= t AND a.rows > 0 GROUP BY 1
            ),
            later AS (
                SELECT fp.feature_id, count(*) AS n FROM usage_feature_pair fp
                WHERE fp.last_day > t AND EXISTS (SELECT 1 FROM usage_feature_daily u WHERE u.client_id = fp.client_id
                                                  AND u.feature_id = fp.feature_id AND u.day > t - v_days AND u.day <= t)
                GROUP BY 1
            ),
            churned AS (   -- per churned account and feature (primary key range per account)
                SELECT x.feature_id, count(*) AS n, sum(x.ev) AS ev
                FROM accounts a CROSS JOIN LATERAL (
                    SELECT fd.feature_id, sum(fd.events) AS ev FROM usage_feature_daily fd
                    WHERE fd.client_id = a.client_id AND fd.day > t - v_days AND fd.day <= t GROUP BY 1) x
                WHERE a.status = 'churned' GROUP BY 1
            ),
            per AS (
                SELECT allf.feature_id, allf.lp + coalesce(later.n, 0) - coalesce(churned.n, 0) AS acc,
                       allf.ev - coalesce(churned.ev, 0) AS ev
                FROM allf LEFT JOIN later USING (feature_id) LEFT JOIN churned USING (feature_id)
            )
            SELECT jsonb_build_object(
                'avg_features_per_account', round((SELECT coalesce(sum(acc), 0) FROM per)::numeric / greatest(n, 1), 2),
                'top_features', (SELECT coalesce(jsonb_agg(jsonb_build_object('feature_id', feature_id, 'events', ev, 'accounts', acc)
                                                           ORDER BY ev DESC, feature_id), '[]')
                                 FROM (SELECT feature_id, ev, acc FROM per WHERE acc > 0 ORDER BY 2 DESC, 1 LIMIT 5) tf))
            INTO feat;
        ELSE
            WITH pairs AS (
                SELECT fd.feature_id, fd.client_id, sum(fd.events) AS ev
                FROM usage_feature_daily fd JOIN ep_acc USING (client_id) WHERE fd.day > t - v_days AND fd.day <= t
                GROUP BY 1, 2
            )
            SELECT jsonb_build_object(
                'avg_features_per_account', round((SELECT count(*) FROM pairs)::numeric / greatest(n, 1), 2),
                'top_features', (SELECT coalesce(jsonb_agg(jsonb_build_object('feature_id', feature_id, 'events', ev, 'accounts', acc)
                                                           ORDER BY ev DESC, feature_id), '[]')
                                 FROM (SELECT feature_id, sum(ev) AS ev, count(*) AS acc FROM pairs GROUP BY 1
                                       ORDER BY 2 DESC, 1 LIMIT 5) tf))
            INTO feat;
        END IF;
    END IF;
    -- Across all accounts: communications and tickets of the period from the per-day rollups
    -- (the days after the cut's UTC day) plus the raw rows of the cut's own day after the cut,
    -- minus the churned accounts' rows (their index ranges); the accounts contacted / with 3
    -- tickets from the per-account last contact / third-latest ticket (migration 0146).
    IF v_scope = 'all_customers' AND 'communication' = ANY (types) THEN
        WITH g AS (
            SELECT channel, direction, sum(k) AS k FROM (
                SELECT d.channel, d.direction, d.n AS k FROM comm_daily d WHERE d.day > cd
                UNION ALL
                SELECT c.channel, c.direction, 1 FROM communications c WHERE c.occurred_at > cut AND c.occurred_at < cd_end
                UNION ALL
                SELECT c.channel, c.direction, -1 FROM accounts a
                CROSS JOIN LATERAL (SELECT c.channel, c.direction FROM communications c WHERE c.client_id = a.client_id
                                    AND c.occurred_at > cut OFFSET 0) c   -- (index range per account, not a scan)
                WHERE a.status = 'churned') x
            GROUP BY 1, 2 HAVING sum(k) <> 0
        )
        SELECT jsonb_build_object(
            'communications', coalesce(sum(k), 0),
            'inbound', coalesce(sum(k) FILTER (WHERE direction = 'inbound'), 0),
            'outbound', coalesce(sum(k) FILTER (WHERE direction = 'outbound'), 0),
            'accounts_without_contact', n - (SELECT count(*) FROM comm_last l WHERE l.last_at > cut)
                                          + (SELECT count(*) FROM accounts a WHERE a.status = 'churned'
                                             AND (SELECT l.last_at FROM comm_last l WHERE l.client_id = a.client_id) > cut),
            'by_channel', (SELECT coalesce(jsonb_object_agg(channel, k), '{}') FROM (SELECT g3.channel, sum(g3.k) AS k FROM g g3 GROUP BY 1 HAVING sum(g3.k) <> 0) ch))
        INTO comm FROM g;
    ELSIF 'communication' = ANY (types) THEN
        WITH c AS (
            SELECT c.client_id, c.direction, c.channel FROM communications c JOIN ep_acc USING (client_id)
            WHERE c.occurred_at > now() - make_interval(days => v_days)
        )
        SELECT jsonb_build_object(
            'communications', count(*),
            'inbound', count(*) FILTER (WHERE c.direction = 'inbound'),
            'outbound', count(*) FILTER (WHERE c.direction = 'outbound'),
            'accounts_without_contact', n - count(DISTINCT c.client_id),
            'by_channel', (SELECT coalesce(jsonb_object_agg(channel, k), '{}') FROM (SELECT c3.channel, count(*) AS k FROM c c3 GROUP BY 1) ch))
        INTO comm FROM c;
    END IF;
    IF v_scope = 'all_customers' AND 'support' = ANY (types) THEN
        WITH g AS (
            SELECT priority, category, sum(k) AS k FROM (
                SELECT d.priority, d.category, d.n AS k FROM ticket_daily d WHERE d.day > cd
                UNION ALL
                SELECT s.priority, s.category, 1 FROM support_tickets s WHERE s.created_at > cut AND s.created_at < cd_end
                UNION ALL
                SELECT s.priority, s.category, -1 FROM accounts a
                CROSS JOIN LATERAL (SELECT s.priority, s.category FROM support_tickets s WHERE s.client_id = a.client_id
                                    AND s.created_at > cut OFFSET 0) s   -- (index range per account, not a scan)
                WHERE a.status = 'churned') x
            GROUP BY 1, 2 HAVING sum(k) <> 0
        )
        SELECT jsonb_build_object(
            'tickets', coalesce(sum(k), 0),
            'tickets_per_account', round(coalesce(sum(k), 0)::numeric / greatest(n, 1), 2),
            'critical_share', round((coalesce(sum(k) FILTER (WHERE priority IN ('P0', 'P1')), 0))::numeric / nullif(sum(k), 0), 3),
            'accounts_with_3_or_more_tickets', (SELECT count(*) FROM ticket_third l WHERE l.third_at > cut)
                                               - (SELECT count(*) FROM accounts a WHERE a.status = 'churned'
                                                  AND (SELECT l.third_at FROM ticket_third l WHERE l.client_id = a.client_id) > cut),
            'top_categories', (SELECT coalesce(jsonb_object_agg(category, k), '{}') FROM (SELECT g3.category, sum(g3.k) AS k FROM g g3
                               GROUP BY 1 HAVING sum(g3.k) <> 0) cat))
        INTO supp FROM g;
    ELSIF 'support' = ANY (types) THEN
        WITH s AS (
            SELECT s.client_id, s.priority, s.category FROM support_tickets s JOIN ep_acc USING (client_id)
            WHERE s.created_at > now() - make_interval(days => v_days)
        )
        SELECT jsonb_build_object(
            'tickets', count(*),
            'tickets_per_account', round(count(*)::numeric / greatest(n, 1), 2),
            'critical_share', round(count(*) FILTER (WHERE s.priority IN ('P0', 'P1'))::numeric / nullif(count(*), 0), 3),
            'accounts_with_3_or_more_tickets', (SELECT count(*) FROM (SELECT s2.client_id FROM s s2 GROUP BY 1 HAVING count(*) >= 3) h),
            'top_categories', (SELECT coalesce(jsonb_object_agg(category, k), '{}') FROM (SELECT s3.category, count(*) AS k FROM s s3
                               GROUP BY 1) cat))
        INTO supp FROM s;
    END IF;

    IF v_anom THEN
        -- Days whose daily active users deviate by 3 standard deviations from the account's mean
        -- over the period (csmcp.engage_anomalies_of, for the candidates only): across all
        -- accounts kept in the day table (engage_window_anom, filled and maintained with it).
        IF src = 'ep_st' THEN
            INSERT INTO ep_anom SELECT x.* FROM (SELECT array_agg(client_id) AS c, array_agg(mu) AS mu, array_agg(sd) AS sd,
                                                        array_agg(mx) AS mx, array_agg(mn) AS mn, array_agg(nr) AS nr FROM ep_cand2) a
            CROSS JOIN LATERAL csmcp.engage_anomalies_of(a.c, a.mu, a.sd, a.mx, a.mn, a.nr, t, v_days) x;
        ELSE
            INSERT INTO ep_anom SELECT w.client_id, w.day, w.dau, w.mu, w.z FROM engage_window_anom w
            WHERE w.v_days = wk_days AND w.t = wk_t
              AND NOT EXISTS (SELECT 1 FROM accounts a WHERE a.client_id = w.client_id AND a.status = 'churned');
        END IF;
        SELECT coalesce(jsonb_agg(jsonb_build_object('client_id', client_id, 'day', day, 'metric', 'daily_active_users',
                                                     'value', dau, 'expected', round(mu::numeric, 2), 'z_score', z,
                                                     'kind', CASE WHEN z > 0 THEN 'spike' ELSE 'drop' END)
                                  ORDER BY abs(z) DESC, client_id, day), '[]')
        INTO anomalies FROM (
            SELECT c.client_id, c.day, c.dau, c.mu, round(c.z::numeric, 2) AS z
            FROM ep_anom c ORDER BY abs(c.z) DESC, c.client_id, c.day LIMIT 50) a;
    END IF;

    SELECT jsonb_agg(jsonb_build_object('pattern', p, 'accounts', k, 'prevalence', round(k::numeric / greatest(n, 1), 3))
                     ORDER BY round(k::numeric / greatest(n, 1), 3) DESC, p)
    INTO patterns FROM (VALUES ('growing_usage', n_grow), ('declining_usage', n_decl), ('flat_usage', n_flat), ('inactive', n_inact)) x(p, k);

    RETURN jsonb_build_object(
        'analysis_scope', v_scope,
        'scope_filter', f,
        'lookback_period_days', v_days,
        'customers_analyzed', n,
        'identified_patterns', coalesce(patterns, '[]'),
        'declining_accounts', declining,
        'temporal_patterns', temporal,
        'feature_usage_patterns', feat,
        'communication_patterns', comm,
        'support_patterns', supp,
        'anomalies', anomalies);
END $$;

-- The from-scratch computation (one scan of the period's usage_daily rows with two grouping
-- sets, the feature rows, the communications and tickets), kept for the equality tests and for
-- operators: its answer must equal the tool's on every argument. Own work-table names, so that
-- both can run in one transaction.
CREATE OR REPLACE FUNCTION csmcp.analyze_engagement_patterns_scratch(args jsonb, principal text)
RETURNS jsonb LANGUAGE plpgsql SET work_mem = '16MB' SET jit = off AS $$ -- volatile: uses temporary work tables
DECLARE
    t date := csmcp.today();
    v_scope text := csmcp.arg_text(args, 'analysis_scope', 'all_customers', ARRAY['all_customers', 'segment', 'individual']);
    f jsonb := coalesce(args -> 'scope_filter', '{}');
    v_days integer := csmcp.arg_int(args, 'lookback_period_days', 90, 7, 365);
    v_anom boolean := csmcp.arg_bool(args, 'anomaly_detection', true);
    types text[];
    n integer;
    temporal jsonb; feat jsonb; comm jsonb; supp jsonb; anomalies jsonb; patterns jsonb;
BEGIN
    IF args ? 'pattern_types' AND jsonb_typeof(args -> 'pattern_types') = 'array' AND jsonb_array_length(args -> 'pattern_types') > 0 THEN
        SELECT array_agg(x) INTO types FROM jsonb_array_elements_text(args -> 'pattern_types') x;
        IF NOT types <@ ARRAY['temporal', 'feature_usage', 'communication', 'support'] THEN
            PERFORM csmcp.invalid('pattern_types must be among: temporal, feature_usage, communication, support');
        END IF;
    ELSE
        types := ARRAY['temporal', 'feature_usage', 'communication', 'support'];
    END IF;
    IF v_scope = 'individual' THEN
        PERFORM csmcp.require_account(f ->> 'client_id');
    ELSIF v_scope = 'segment' AND f ->> 'segment_id' IS NOT NULL AND NOT EXISTS (SELECT 1 FROM segments WHERE segment_id = f ->> 'segment_id') THEN
        RAISE EXCEPTION 'segment not found: %', f ->> 'segment_id' USING ERRCODE = 'P0002';
    END IF;

    CREATE TEMP TABLE IF NOT EXISTS eps_acc (client_id text PRIMARY KEY) ON COMMIT DROP;
    TRUNCATE eps_acc;
    INSERT INTO eps_acc SELECT a.client_id FROM accounts a
    WHERE CASE v_scope
            WHEN 'individual' THEN a.client_id = f ->> 'client_id'
            WHEN 'segment' THEN (f ->> 'segment_id' IS NULL OR a.client_id IN (SELECT client_id FROM segment_members WHERE segment_id = f ->> 'segment_id'))
                                AND (f ->> 'tier' IS NULL OR a.tier = f ->> 'tier')
                                AND (f ->> 'health_min' IS NULL OR a.health_score >= (f ->> 'health_min')::numeric)
                                AND (f ->> 'health_max' IS NULL OR a.health_score <= (f ->> 'health_max')::numeric)
                                AND a.status <> 'churned'
            ELSE a.status <> 'churned' END;
    SELECT count(*) INTO n FROM eps_acc;

    -- One pass over the window's usage_daily rows, two grouping sets: per account (the trend's
    -- two halves, the sums for mean and deviation, the extremes) and per ISO weekday (events).
    CREATE TEMP TABLE IF NOT EXISTS eps_sum (per_account boolean, client_id text, dow integer, a1 bigint, a2 bigint,
                                            s1 float8, s2 float8, mx integer, mn integer, ev bigint) ON COMMIT DROP;
    TRUNCATE eps_sum;
    ANALYZE eps_acc;
    INSERT INTO eps_sum
    SELECT GROUPING(u.client_id) = 0, u.client_id, extract(isodow FROM u.day)::int,
           sum(u.active_users) FILTER (WHERE u.day <= t - v_days / 2),
           sum(u.active_users) FILTER (WHERE u.day > t - v_days / 2),
           sum(u.active_users)::float8, sum(u.active_users::float8 * u.active_users),
           max(u.active_users), min(u.active_users), sum(u.events)
    FROM usage_daily u JOIN eps_acc USING (client_id) WHERE u.day > t - v_days AND u.day <= t
    GROUP BY GROUPING SETS ((u.client_id), (extract(isodow FROM u.day)::int));

    -- Per-account usage trend (first vs second half of the window).
    CREATE TEMP TABLE IF NOT EXISTS eps_trend (client_id text, first_avg numeric, second_avg numeric, direction text) ON COMMIT DROP;
    TRUNCATE eps_trend;
    INSERT INTO eps_trend
    SELECT e.client_id, coalesce(x.a1, 0), coalesce(x.a2, 0),
           CASE WHEN coalesce(x.a1, 0) = 0 AND coalesce(x.a2, 0) = 0 THEN 'inactive' WHEN coalesce(x.a1, 0) = 0 THEN 'growing'
                WHEN (x.a2 - x.a1) / x.a1 > 0.10 THEN 'growing' WHEN (x.a2 - x.a1) / x.a1 < -0.10 THEN 'declining' ELSE 'flat' END
    FROM eps_acc e LEFT JOIN (
        SELECT s.client_id, coalesce(s.a1, 0)::numeric / (v_days - v_days / 2) AS a1,
               coalesce(s.a2, 0)::numeric / (v_days / 2) AS a2
        FROM eps_sum s WHERE s.per_account) x USING (client_id);

    IF 'temporal' = ANY (types) THEN
        WITH dow AS (SELECT s.dow AS d, s.ev FROM eps_sum s WHERE NOT s.per_account)
        SELECT jsonb_build_object(
            'accounts_growing', (SELECT count(*) FROM eps_trend WHERE direction = 'growing'),
            'accounts_flat', (SELECT count(*) FROM eps_trend WHERE direction = 'flat'),
            'accounts_declining', (SELECT count(*) FROM eps_trend WHERE direction = 'declining'),
            'accounts_inactive', (SELECT count(*) FROM eps_trend WHERE direction = 'inactive'),
            'weekday_share_of_events', (SELECT round(sum(ev) FILTER (WHERE d < 6)::numeric / nullif(sum(ev), 0), 3) FROM dow),
            'busiest_weekday', (SELECT (ARRAY['Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday', 'Sunday'])[d]
                                FROM dow ORDER BY ev DESC, d LIMIT 1))
        INTO temporal;
    END IF;
    IF 'feature_usage' = ANY (types) THEN
        WITH pairs AS (
            SELECT fd.feature_id, fd.client_id, sum(fd.events) AS ev
            FROM usage_feature_daily fd JOIN eps_acc USING (client_id) WHERE fd.day > t - v_days AND fd.day <= t
            GROUP BY 1, 2
        )
        SELECT jsonb_build_object(
            'avg_features_per_account', round((SELECT count(*) FROM pairs)::numeric / greatest(n, 1), 2),
            'top_features', (SELECT coalesce(jsonb_agg(jsonb_build_object('feature_id', feature_id, 'events', ev, 'accounts', acc)
                                                       ORDER BY ev DESC, feature_id), '[]')
                             FROM (SELECT feature_id, sum(ev) AS ev, count(*) AS acc FROM pairs GROUP BY 1
                                   ORDER BY 2 DESC, 1 LIMIT 5) tf))
        INTO feat;
    END IF;
    IF 'communication' = ANY (types) THEN
        SELECT jsonb_build_object(
            'communications', count(c.*),
            'inbound', count(c.*) FILTER (WHERE c.direction = 'inbound'),
            'outbound', count(c.*) FILTER (WHERE c.direction = 'outbound'),
            'accounts_without_contact', (SELECT count(*) FROM eps_acc e WHERE NOT EXISTS (
                SELECT 1 FROM communications c2 WHERE c2.client_id = e.client_id AND c2.occurred_at > now() - make_interval(days => v_days))),
            'by_channel', (SELECT coalesce(jsonb_object_agg(channel, k), '{}') FROM (SELECT c3.channel, count(*) AS k FROM communications c3
                           JOIN eps_acc USING (client_id) WHERE c3.occurred_at > now() - make_interval(days => v_days) GROUP BY 1) ch))
        INTO comm FROM communications c JOIN eps_acc USING (client_id) WHERE c.occurred_at > now() - make_interval(days => v_days);
    END IF;
    IF 'support' = ANY (types) THEN
        SELECT jsonb_build_object(
            'tickets', count(s.*),
            'tickets_per_account', round(count(s.*)::numeric / greatest(n, 1), 2),
            'critical_share', round(count(s.*) FILTER (WHERE s.priority IN ('P0', 'P1'))::numeric / nullif(count(s.*), 0), 3),
            'accounts_with_3_or_more_tickets', (SELECT count(*) FROM (SELECT s2.client_id FROM support_tickets s2 JOIN eps_acc USING (client_id)
                                                WHERE s2.created_at > now() - make_interval(days => v_days) GROUP BY 1 HAVING count(*) >= 3) h),
            'top_categories', (SELECT coalesce(jsonb_object_agg(category, k), '{}') FROM (SELECT s3.category, count(*) AS k FROM support_tickets s3
                               JOIN eps_acc USING (client_id) WHERE s3.created_at > now() - make_interval(days => v_days) GROUP BY 1) cat))
        INTO supp FROM support_tickets s JOIN eps_acc USING (client_id) WHERE s.created_at > now() - make_interval(days => v_days);
    END IF;

    IF v_anom THEN
        -- Mean and standard deviation over all v_days days (days without a row count as 0),
        -- from the sums of the single pass above, so only stored rows are read; missing days can
        -- only be drops, and only accounts whose mean exceeds 3 standard deviations can have
        -- such a drop. A stored day can deviate by 3 standard deviations only if the account's
        -- maximum or minimum does, so only those accounts' days are read again.
        WITH stats AS MATERIALIZED (
            SELECT e.client_id, coalesce(s.s1, 0) / v_days AS mu,
                   sqrt(greatest(0, coalesce(s.s2, 0) / v_days - (coalesce(s.s1, 0) / v_days) ^ 2)) AS sd, s.mx, s.mn
            FROM eps_acc e LEFT JOIN (SELECT * FROM eps_sum WHERE per_account) s USING (client_id)
        ),
        cand AS (
            SELECT u.client_id, u.day, u.active_users AS dau FROM usage_daily u JOIN stats s USING (client_id)
            WHERE u.day > t - v_days AND u.day <= t AND s.sd > 0 AND abs(u.active_users - s.mu) >= 3 * s.sd
              AND (s.mx - s.mu >= 3 * s.sd OR s.mu - s.mn >= 3 * s.sd)
            UNION ALL
            SELECT s.client_id, g.d::date, 0 FROM stats s
            CROSS JOIN LATERAL generate_series(t - v_days + 1, t, interval '1 day') g(d)
            WHERE s.sd > 0 AND s.mu >= 3 * s.sd
              AND NOT EXISTS (SELECT 1 FROM usage_daily u WHERE u.client_id = s.client_id AND u.day = g.d::date)
        )
        SELECT coalesce(jsonb_agg(jsonb_build_object('client_id', client_id, 'day', day, 'metric', 'daily_active_users',
                                                     'value', dau, 'expected', round(mu::numeric, 2), 'z_score', z,
                                                     'kind', CASE WHEN z > 0 THEN 'spike' ELSE 'drop' END)
                                  ORDER BY abs(z) DESC, client_id, day), '[]')
        INTO anomalies FROM (
            SELECT c.client_id, c.day, c.dau, s.mu, round(((c.dau - s.mu) / s.sd)::numeric, 2) AS z
            FROM cand c JOIN stats s USING (client_id)
            ORDER BY abs((c.dau - s.mu) / s.sd) DESC, c.client_id, c.day LIMIT 50) a;
    END IF;

    SELECT jsonb_agg(p ORDER BY (p->>'prevalence')::numeric DESC, p->>'pattern') INTO patterns FROM (
        SELECT jsonb_build_object('pattern', 'growing_usage', 'accounts', count(*) FILTER (WHERE direction = 'growing'),
                                  'prevalence', round(count(*) FILTER (WHERE direction = 'growing')::numeric / greatest(n, 1), 3)) AS p FROM eps_trend
        UNION ALL
        SELECT jsonb_build_object('pattern', 'declining_usage', 'accounts', count(*) FILTER (WHERE direction = 'declining'),
                                  'prevalence', round(count(*) FILTER (WHERE direction = 'declining')::numeric / greatest(n, 1), 3)) FROM eps_trend
        UNION ALL
        SELECT jsonb_build_object('pattern', 'flat_usage', 'accounts', count(*) FILTER (WHERE direction = 'flat'),
                                  'prevalence', round(count(*) FILTER (WHERE direction = 'flat')::numeric / greatest(n, 1), 3)) FROM eps_trend
        UNION ALL
        SELECT jsonb_build_object('pattern', 'inactive', 'accounts', count(*) FILTER (WHERE direction = 'inactive'),
                                  'prevalence', round(count(*) FILTER (WHERE direction = 'inactive')::numeric / greatest(n, 1), 3)) FROM eps_trend) x;

    RETURN jsonb_build_object(
        'analysis_scope', v_scope,
        'scope_filter', f,
        'lookback_period_days', v_days,
        'customers_analyzed', n,
        'identified_patterns', coalesce(patterns, '[]'),
        'declining_accounts', (SELECT coalesce(jsonb_agg(jsonb_build_object('client_id', client_id, 'first_half_avg_dau', round(first_avg, 2),
                                                         'second_half_avg_dau', round(second_avg, 2)) ORDER BY (second_avg - first_avg) / first_avg, client_id), '[]')
                               FROM (SELECT * FROM eps_trend WHERE direction = 'declining'
                                     ORDER BY (second_avg - first_avg) / first_avg, client_id LIMIT 20) d),
        'temporal_patterns', temporal,
        'feature_usage_patterns', feat,
        'communication_patterns', comm,
        'support_patterns', supp,
        'anomalies', anomalies);
END $$;

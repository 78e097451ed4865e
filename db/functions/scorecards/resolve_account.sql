-- resolve_account: fuzzy account lookup by name, company, client id or contact e-mail/domain
-- (pg_trgm trigram similarity), best matches first. The trigram matches are decided on
-- account_search (scorecards/account_search.sql, migration 0182); tool_resolve_account_scratch
-- below is the previous SQL over the accounts/contacts trigram indexes, the reference of the
-- equality test (tests/integration/test_rollup_equality_resolve.py).
CREATE OR REPLACE FUNCTION csmcp.tool_resolve_account(args jsonb, principal text)
RETURNS jsonb LANGUAGE plpgsql STABLE
-- no JIT: at 100,000 accounts the plans' costs pass jit_above_cost and compiling took longer than
-- the query (issue 21: 1.5 s of a hierarchy rollup that runs in 70 ms)
SET jit = off
-- one generic plan: planned for the actual query text, the trigram selectivity estimates pick a
-- plan 3-6x slower at 10,000 accounts (measured: "cyberdyne foods 5" 116 ms custom, 19 ms generic)
SET plan_cache_mode = force_generic_plan
-- no parallel workers: a worker start costs more than the few hundred index matches it would
-- share, and under load it waited for a CPU (issue 21: Parallel Append + Gather Merge seen)
SET max_parallel_workers_per_gather = 0
-- the candidates by account_search's GIN index: with a generic plan the estimate of "keys &&
-- $1" may pick a sequential scan, where && compares every pair of elements (~70 us a row)
SET enable_seqscan = off AS $$
DECLARE
    v_query text := lower(btrim(regexp_replace(csmcp.arg_text(args, 'query', NULL), '\s+', ' ', 'g')));
    v_limit integer := csmcp.arg_int(args, 'limit', 5, 1, 25);
    v_matches jsonb;
    v_total integer;
    v_exact boolean := false;
    v_codes integer[];      -- the query's trigrams (csmcp.trgm_codes)
    v_n integer;
    v_ka integer;           -- ceil(0.3 n): the fewest shared trigrams of a similarity match
    v_kb integer;           -- ceil(0.6 n): the same for a word_similarity match
    v_rare integer[];       -- the query's trigrams, rarest first (account_search_freq)
    v_keys integer[];       -- the probed keys (trigram x 64 + size class)
BEGIN
    IF v_query IS NULL OR length(v_query) < 2 THEN
        PERFORM csmcp.invalid('query: at least 2 characters other than spaces');
    END IF;
    -- the thresholds of the indexed operators, pinned whatever the session has set
    PERFORM set_config('pg_trgm.similarity_threshold', '0.3', true);
    PERFORM set_config('pg_trgm.word_similarity_threshold', '0.6', true);
    -- an e-mail address or a domain some account has exactly: those accounts only (a shared
    -- domain would otherwise word-match every address at it through the trigram scan)
    IF v_query ~ '^[^ @]*@?[a-z0-9-]+(\.[a-z0-9-]+)+$' THEN
        v_exact := EXISTS (SELECT 1 FROM contacts c WHERE lower(c.email) = v_query
                                                      OR split_part(lower(c.email), '@', 2) = v_query)
                OR EXISTS (SELECT 1 FROM accounts a WHERE lower(a.primary_contact_email) = v_query
                                                      OR split_part(lower(a.primary_contact_email), '@', 2) = v_query);
    END IF;
    v_codes := csmcp.trgm_codes(v_query);
    v_n := cardinality(v_codes);
    v_ka := (3 * v_n + 9) / 10;
    v_kb := (6 * v_n + 9) / 10;
    IF NOT v_exact THEN
        -- A text of m trigrams that matches shares s >= k(m) of the query's n trigrams:
        -- similarity s / (n + m - s) >= 0.3 needs 13 s >= 3 (n + m), word_similarity >= 0.6 needs
        -- s >= 0.6 n (it is at most s / n); so it holds one of the query's n - k(m) + 1 rarest
        -- trigrams (any n - k + 1 of them meet every k of the n), found in account_search's keys
        -- as trigram x 64 + the size class of m (csmcp.search_keys), with k of the class's
        -- smallest size; a class whose largest size cannot share k is left out.
        SELECT array_agg(q.c ORDER BY coalesce(f.n, 0), q.c)
          INTO v_rare
          FROM unnest(v_codes) q(c) LEFT JOIN account_search_freq f ON f.code = q.c;
        SELECT array_agg(r.c * 64 + z.cls)
          INTO v_keys
          FROM (SELECT b.cls, b.lo, lead(b.lo, 1, 1000000) OVER (ORDER BY b.cls) - 1 AS hi
                  FROM unnest(csmcp.search_size_bounds()) WITH ORDINALITY b(lo, cls)) z
         CROSS JOIN LATERAL (SELECT least(v_kb, (3 * (v_n + z.lo) + 12) / 13) AS k) k
         CROSS JOIN LATERAL unnest(v_rare[1 : v_n - k.k + 1]) r(c)
         WHERE k.k <= least(v_n, z.hi);
    END IF;
    WITH cand AS (
        -- the exact e-mail or domain: its addresses only
        SELECT a.client_id, 4 AS fo, 'contact_email' AS field, a.primary_contact_email AS val,
               similarity(v_query, lower(a.primary_contact_email)) AS sim
          FROM accounts a
         WHERE v_exact
           AND (lower(a.primary_contact_email) = v_query OR split_part(lower(a.primary_contact_email), '@', 2) = v_query)
        UNION ALL
        SELECT c.client_id, 4, 'contact_email', c.email, similarity(v_query, lower(c.email))
          FROM contacts c WHERE v_exact AND (lower(c.email) = v_query OR split_part(lower(c.email), '@', 2) = v_query)
        UNION ALL
        -- "lval % v_query" (similarity >= 0.3) or "v_query <% lval" (word_similarity >= 0.6,
        -- which needs ceil(0.6 n) shared trigrams: pg_trgm computes it for those only);
        -- similarity() exactly as pg_trgm computes it: count / (len1 + len2 - count) in float4
        SELECT t.client_id, least(t.src, 4),
               (ARRAY['client_name', 'company_name', 'client_id', 'contact_email', 'contact_email'])[t.src],
               t.val, t.s::real / (v_n + t.ntrg - t.s)::real
          FROM (SELECT t.client_id, t.src, t.val, t.ntrg,
                       csmcp_intarray.icount(t.trg OPERATOR(csmcp_intarray.&) v_codes) AS s
                  FROM account_search t
                 WHERE NOT v_exact AND t.keys && v_keys
                -- (not flattened: the intersection counted once per candidate, not once per use)
                OFFSET 0) t
         WHERE t.s >= v_ka
           AND (t.s::real / (v_n + t.ntrg - t.s)::real >= 0.3::float8 OR (t.s >= v_kb AND v_query <% lower(t.val)))
    ), best AS (
        SELECT DISTINCT ON (client_id) client_id, field, val, sim
          FROM cand ORDER BY client_id, sim DESC, fo, val
    ), ranked AS (
        SELECT b.*, count(*) OVER () AS n,
               row_number() OVER (ORDER BY b.sim DESC, b.client_id) AS rk
          FROM best b
    )
    SELECT coalesce(jsonb_agg(jsonb_build_object(
               'client_id', a.client_id, 'client_name', a.client_name,
               'company_name', a.company_name, 'tier', a.tier,
               'lifecycle_stage', a.lifecycle_stage, 'status', a.status,
               'health_score', a.health_score, 'csm_assigned', a.csm_assigned,
               'matched_field', r.field, 'matched_value', r.val,
               'similarity', round(r.sim::numeric, 3)) ORDER BY r.rk), '[]'::jsonb),
           coalesce(max(r.n), 0)
      INTO v_matches, v_total
      FROM ranked r
      -- the listed accounts by primary key (OFFSET 0: not flattened into a hash join that
      -- read every account for the few listed ones)
      CROSS JOIN LATERAL (SELECT * FROM accounts x WHERE x.client_id = r.client_id OFFSET 0) a
     WHERE r.rk <= v_limit;
    RETURN jsonb_build_object(
        'query', v_query,
        'matches', v_matches,
        'total_matches', v_total,
        'summary', CASE WHEN v_total = 0 THEN format('no account resembles "%s"', v_query)
                        ELSE format('%s account(s) resemble "%s"; best: %s (%s, %s %s, similarity %s)',
                                    v_total, v_query, v_matches -> 0 ->> 'client_name',
                                    v_matches -> 0 ->> 'client_id', v_matches -> 0 ->> 'matched_field',
                                    v_matches -> 0 ->> 'matched_value', v_matches -> 0 ->> 'similarity')
                   END);
END $$;

-- The reference: the same answer from the accounts and contacts rows (trigram GiST indexes of
-- migration 0289), as before account_search.
CREATE OR REPLACE FUNCTION csmcp.tool_resolve_account_scratch(args jsonb, principal text)
RETURNS jsonb LANGUAGE plpgsql STABLE
-- no JIT: at 100,000 accounts the plans' costs pass jit_above_cost and compiling took longer than
-- the query (issue 21: 1.5 s of a hierarchy rollup that runs in 70 ms)
SET jit = off
-- one generic plan: planned for the actual query text, the trigram selectivity estimates pick a
-- plan 3-6x slower at 10,000 accounts (measured: "cyberdyne foods 5" 116 ms custom, 19 ms generic)
SET plan_cache_mode = force_generic_plan
-- no parallel workers: a worker start costs more than the few hundred index matches it would
-- share, and under load it waited for a CPU (issue 21: Parallel Append + Gather Merge seen)
SET max_parallel_workers_per_gather = 0 AS $$
DECLARE
    v_query text := lower(btrim(regexp_replace(csmcp.arg_text(args, 'query', NULL), '\s+', ' ', 'g')));
    v_limit integer := csmcp.arg_int(args, 'limit', 5, 1, 25);
    v_matches jsonb;
    v_total integer;
    v_exact boolean := false;
BEGIN
    IF v_query IS NULL OR length(v_query) < 2 THEN
        PERFORM csmcp.invalid('query: at least 2 characters other than spaces');
    END IF;
    -- the thresholds of the indexed operators, pinned whatever the session has set
    PERFORM set_config('pg_trgm.similarity_threshold', '0.3', true);
    PERFORM set_config('pg_trgm.word_similarity_threshold', '0.6', true);
    -- an e-mail address or a domain some account has exactly: those accounts only (a shared
    -- domain would otherwise word-match every address at it through the trigram scan)
    IF v_query ~ '^[^ @]*@?[a-z0-9-]+(\.[a-z0-9-]+)+$' THEN
        v_exact := EXISTS (SELECT 1 FROM contacts c WHERE lower(c.email) = v_query
                                                      OR split_part(lower(c.email), '@', 2) = v_query)
                OR EXISTS (SELECT 1 FROM accounts a WHERE lower(a.primary_contact_email) = v_query
                                                      OR split_part(lower(a.primary_contact_email), '@', 2) = v_query);
    END IF;
    IF v_exact THEN
        WITH cand AS (
            SELECT a.client_id, 4 AS fo, 'contact_email' AS field, a.primary_contact_email AS val
              FROM accounts a
             WHERE lower(a.primary_contact_email) = v_query OR split_part(lower(a.primary_contact_email), '@', 2) = v_query
            UNION ALL
            SELECT c.client_id, 4, 'contact_email', c.email
              FROM contacts c WHERE lower(c.email) = v_query OR split_part(lower(c.email), '@', 2) = v_query
        ), scored AS (
            SELECT client_id, fo, field, val,
                   similarity(v_query, lower(val)) AS sim
              FROM cand
        ), best AS (
            SELECT DISTINCT ON (client_id) client_id, field, val, sim
              FROM scored ORDER BY client_id, sim DESC, fo, val
        ), ranked AS (
            SELECT b.*, count(*) OVER () AS n,
                   row_number() OVER (ORDER BY b.sim DESC, b.client_id) AS rk
              FROM best b
        )
        SELECT coalesce(jsonb_agg(jsonb_build_object(
                   'client_id', a.client_id, 'client_name', a.client_name,
                   'company_name', a.company_name, 'tier', a.tier,
                   'lifecycle_stage', a.lifecycle_stage, 'status', a.status,
                   'health_score', a.health_score, 'csm_assigned', a.csm_assigned,
                   'matched_field', r.field, 'matched_value', r.val,
                   'similarity', round(r.sim::numeric, 3)) ORDER BY r.rk), '[]'::jsonb),
               coalesce(max(r.n), 0)
          INTO v_matches, v_total
          FROM ranked r
          -- the listed accounts by primary key (OFFSET 0: not flattened into a hash join that
          -- read every account for the few listed ones)
          CROSS JOIN LATERAL (SELECT * FROM accounts x WHERE x.client_id = r.client_id OFFSET 0) a
         WHERE r.rk <= v_limit;
    ELSE
        -- each field twice, disjointly: "% v_query" alone is decided exactly by the GiST index
        -- (migration 0289), with no recheck of the row; the "<%" rows it misses are few
        WITH cand AS (
            SELECT a.client_id, 1 AS fo, 'client_name' AS field, a.client_name AS val
              FROM accounts a WHERE lower(a.client_name) % v_query
            UNION ALL
            SELECT a.client_id, 1, 'client_name', a.client_name
              FROM accounts a WHERE v_query <% lower(a.client_name) AND NOT lower(a.client_name) % v_query
            UNION ALL
            SELECT a.client_id, 2, 'company_name', a.company_name
              FROM accounts a WHERE lower(a.company_name) % v_query
            UNION ALL
            SELECT a.client_id, 2, 'company_name', a.company_name
              FROM accounts a WHERE v_query <% lower(a.company_name) AND NOT lower(a.company_name) % v_query
            UNION ALL
            SELECT a.client_id, 3, 'client_id', a.client_id
              FROM accounts a WHERE lower(a.client_id) % v_query
            UNION ALL
            SELECT a.client_id, 3, 'client_id', a.client_id
              FROM accounts a WHERE v_query <% lower(a.client_id) AND NOT lower(a.client_id) % v_query
            UNION ALL
            SELECT a.client_id, 4, 'contact_email', a.primary_contact_email
              FROM accounts a WHERE lower(a.primary_contact_email) % v_query
            UNION ALL
            SELECT a.client_id, 4, 'contact_email', a.primary_contact_email
              FROM accounts a
             WHERE v_query <% lower(a.primary_contact_email) AND NOT lower(a.primary_contact_email) % v_query
            UNION ALL
            SELECT c.client_id, 4, 'contact_email', c.email
              FROM contacts c WHERE lower(c.email) % v_query
            UNION ALL
            SELECT c.client_id, 4, 'contact_email', c.email
              FROM contacts c WHERE v_query <% lower(c.email) AND NOT lower(c.email) % v_query
        ), scored AS (
            SELECT client_id, fo, field, val,
                   similarity(v_query, lower(val)) AS sim
              FROM cand
        ), best AS (
            SELECT DISTINCT ON (client_id) client_id, field, val, sim
              FROM scored ORDER BY client_id, sim DESC, fo, val
        ), ranked AS (
            SELECT b.*, count(*) OVER () AS n,
                   row_number() OVER (ORDER BY b.sim DESC, b.client_id) AS rk
              FROM best b
        )
        SELECT coalesce(jsonb_agg(jsonb_build_object(
                   'client_id', a.client_id, 'client_name', a.client_name,
                   'company_name', a.company_name, 'tier', a.tier,
                   'lifecycle_stage', a.lifecycle_stage, 'status', a.status,
                   'health_score', a.health_score, 'csm_assigned', a.csm_assigned,
                   'matched_field', r.field, 'matched_value', r.val,
                   'similarity', round(r.sim::numeric, 3)) ORDER BY r.rk), '[]'::jsonb),
               coalesce(max(r.n), 0)
          INTO v_matches, v_total
          FROM ranked r
          -- the listed accounts by primary key (OFFSET 0: not flattened into a hash join that
          -- read every account for the few listed ones)
          CROSS JOIN LATERAL (SELECT * FROM accounts x WHERE x.client_id = r.client_id OFFSET 0) a
         WHERE r.rk <= v_limit;
    END IF;
    RETURN jsonb_build_object(
        'query', v_query,
        'matches', v_matches,
        'total_matches', v_total,
        'summary', CASE WHEN v_total = 0 THEN format('no account resembles "%s"', v_query)
                        ELSE format('%s account(s) resemble "%s"; best: %s (%s, %s %s, similarity %s)',
                                    v_total, v_query, v_matches -> 0 ->> 'client_name',
                                    v_matches -> 0 ->> 'client_id', v_matches -> 0 ->> 'matched_field',
                                    v_matches -> 0 ->> 'matched_value', v_matches -> 0 ->> 'similarity')
                   END);
END $$;

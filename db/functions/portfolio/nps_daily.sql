-- portfolio/nps_daily.sql - NPS responses per UTC day (table nps_daily, migration 0156: design
-- and invariants there): maintenance by triggers on nps_responses, the portfolio counts of a
-- period the feedback tools read, the full rebuild (csmcp.portfolio_rebuild) and the check.

CREATE OR REPLACE FUNCTION csmcp.nps_daily_trg() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF csmcp.portfolio_bulk() THEN
        RETURN NULL;
    END IF;
    -- the statement's differences per day, applied in day order (one row lock per day)
    IF TG_OP = 'INSERT' THEN
        INSERT INTO nps_daily AS d (day, responses, promoters, detractors)
        SELECT (responded_at AT TIME ZONE 'UTC')::date, count(*), count(*) FILTER (WHERE score >= 9), count(*) FILTER (WHERE score <= 6)
        FROM nt GROUP BY 1 ORDER BY 1
        ON CONFLICT (day) DO UPDATE SET responses = d.responses + excluded.responses, promoters = d.promoters + excluded.promoters,
                                        detractors = d.detractors + excluded.detractors;
    ELSE
        INSERT INTO nps_daily AS d (day, responses, promoters, detractors)
        SELECT day, sum(n), sum(p), sum(q) FROM (
            SELECT (responded_at AT TIME ZONE 'UTC')::date AS day, -1 AS n, -(score >= 9)::int AS p, -(score <= 6)::int AS q FROM ot
            UNION ALL
            SELECT (responded_at AT TIME ZONE 'UTC')::date, 1, (score >= 9)::int, (score <= 6)::int FROM nt WHERE TG_OP = 'UPDATE') x
        GROUP BY 1 HAVING sum(n) <> 0 OR sum(p) <> 0 OR sum(q) <> 0 ORDER BY 1
        ON CONFLICT (day) DO UPDATE SET responses = d.responses + excluded.responses, promoters = d.promoters + excluded.promoters,
                                        detractors = d.detractors + excluded.detractors;
    END IF;
    RETURN NULL;
END $$;

-- (DELETE has no NEW TABLE: the trigger function reads nt only for UPDATE - a DELETE trigger
-- gets its own function below so that nt is never referenced where it does not exist)
CREATE OR REPLACE FUNCTION csmcp.nps_daily_del_trg() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF csmcp.portfolio_bulk() THEN
        RETURN NULL;
    END IF;
    INSERT INTO nps_daily AS d (day, responses, promoters, detractors)
    SELECT (responded_at AT TIME ZONE 'UTC')::date, -count(*), -count(*) FILTER (WHERE score >= 9), -count(*) FILTER (WHERE score <= 6)
    FROM ot GROUP BY 1 ORDER BY 1
    ON CONFLICT (day) DO UPDATE SET responses = d.responses + excluded.responses, promoters = d.promoters + excluded.promoters,
                                    detractors = d.detractors + excluded.detractors;
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER nps_daily_ins AFTER INSERT ON nps_responses REFERENCING NEW TABLE AS nt
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.nps_daily_trg();
CREATE OR REPLACE TRIGGER nps_daily_upd AFTER UPDATE ON nps_responses REFERENCING OLD TABLE AS ot NEW TABLE AS nt
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.nps_daily_trg();
CREATE OR REPLACE TRIGGER nps_daily_del AFTER DELETE ON nps_responses REFERENCING OLD TABLE AS ot
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.nps_daily_del_trg();

CREATE OR REPLACE FUNCTION csmcp.nps_daily_trunc_trg() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM nps_daily;
    RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER nps_daily_trunc AFTER TRUNCATE ON nps_responses
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.nps_daily_trunc_trg();

-- The portfolio's NPS counts over the UTC days [p_from, p_to] (every response with responded_at
-- in [p_from, p_to + 1) UTC): responses, promoters, passives, detractors.
CREATE OR REPLACE FUNCTION csmcp.nps_daily_sum(p_from date, p_to date,
                                               OUT responses bigint, OUT promoters bigint, OUT passives bigint, OUT detractors bigint)
LANGUAGE sql STABLE AS $$
    SELECT coalesce(sum(responses), 0)::bigint, coalesce(sum(promoters), 0)::bigint,
           coalesce(sum(responses - promoters - detractors), 0)::bigint, coalesce(sum(detractors), 0)::bigint
    FROM nps_daily WHERE day BETWEEN p_from AND p_to
$$;

-- Everything from scratch (bulk loads).
CREATE OR REPLACE FUNCTION csmcp.nps_daily_rebuild() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    LOCK TABLE nps_daily IN EXCLUSIVE MODE;
    DELETE FROM nps_daily;
    INSERT INTO nps_daily (day, responses, promoters, detractors)
    SELECT (responded_at AT TIME ZONE 'UTC')::date, count(*), count(*) FILTER (WHERE score >= 9), count(*) FILTER (WHERE score <= 6)
    FROM nps_responses GROUP BY 1;
END $$;

-- Days whose maintained counts differ from a from-scratch count (none when exact; a day with
-- all-zero counts left by deletions equals a day without responses).
CREATE OR REPLACE FUNCTION csmcp.nps_daily_check()
RETURNS TABLE (day date, maintained text, actual text)
LANGUAGE sql STABLE AS $$
    WITH a AS (SELECT (responded_at AT TIME ZONE 'UTC')::date AS day, count(*) AS n, count(*) FILTER (WHERE score >= 9) AS p,
                      count(*) FILTER (WHERE score <= 6) AS q
               FROM nps_responses GROUP BY 1)
    SELECT coalesce(m.day, a.day), concat_ws('/', m.responses, m.promoters, m.detractors), concat_ws('/', a.n, a.p, a.q)
    FROM nps_daily m FULL JOIN a ON a.day = m.day
    WHERE (coalesce(m.responses, 0), coalesce(m.promoters, 0), coalesce(m.detractors, 0))
          IS DISTINCT FROM (coalesce(a.n, 0), coalesce(a.p, 0), coalesce(a.q, 0))
$$;

-- portfolio/csat_daily.sql - CSAT and CES responses per UTC day (table csat_daily, migration
-- 0159: design and invariants there): maintenance by triggers on csat_responses, the portfolio
-- mean of a period track_cs_metrics reads, the full rebuild (csmcp.portfolio_rebuild), the check.

-- Adds the differences of a statement (rows of d: day, survey_type, responses, score_sum) in key order.
CREATE OR REPLACE FUNCTION csmcp.csat_daily_trg() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF csmcp.portfolio_bulk() THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        INSERT INTO csat_daily AS d (day, survey_type, responses, score_sum)
        SELECT (responded_at AT TIME ZONE 'UTC')::date, survey_type, count(*), sum(score) FROM nt GROUP BY 1, 2 ORDER BY 1, 2
        ON CONFLICT (day, survey_type) DO UPDATE SET responses = d.responses + excluded.responses,
                                                     score_sum = d.score_sum + excluded.score_sum;
    ELSE   -- UPDATE
        INSERT INTO csat_daily AS d (day, survey_type, responses, score_sum)
        SELECT day, survey_type, sum(n), sum(s) FROM (
            SELECT (responded_at AT TIME ZONE 'UTC')::date AS day, survey_type, -1 AS n, -score AS s FROM ot
            UNION ALL
            SELECT (responded_at AT TIME ZONE 'UTC')::date, survey_type, 1, score FROM nt) x
        GROUP BY 1, 2 HAVING sum(n) <> 0 OR sum(s) <> 0 ORDER BY 1, 2
        ON CONFLICT (day, survey_type) DO UPDATE SET responses = d.responses + excluded.responses,
                                                     score_sum = d.score_sum + excluded.score_sum;
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION csmcp.csat_daily_del_trg() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF csmcp.portfolio_bulk() THEN
        RETURN NULL;
    END IF;
    INSERT INTO csat_daily AS d (day, survey_type, responses, score_sum)
    SELECT (responded_at AT TIME ZONE 'UTC')::date, survey_type, -count(*), -sum(score) FROM ot GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (day, survey_type) DO UPDATE SET responses = d.responses + excluded.responses,
                                                 score_sum = d.score_sum + excluded.score_sum;
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER csat_daily_ins AFTER INSERT ON csat_responses REFERENCING NEW TABLE AS nt
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.csat_daily_trg();
CREATE OR REPLACE TRIGGER csat_daily_upd AFTER UPDATE ON csat_responses REFERENCING OLD TABLE AS ot NEW TABLE AS nt
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.csat_daily_trg();
CREATE OR REPLACE TRIGGER csat_daily_del AFTER DELETE ON csat_responses REFERENCING OLD TABLE AS ot
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.csat_daily_del_trg();

CREATE OR REPLACE FUNCTION csmcp.csat_daily_trunc_trg() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM csat_daily;
    RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER csat_daily_trunc AFTER TRUNCATE ON csat_responses
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.csat_daily_trunc_trg();

-- The portfolio's mean score of one survey type over the UTC days [p_from, p_to], rounded to 2
-- decimals (exactly round(avg(score), 2): avg is sum / count); NULL without responses.
CREATE OR REPLACE FUNCTION csmcp.csat_daily_mean(p_type text, p_from date, p_to date) RETURNS numeric
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN sum(responses) > 0 THEN round(sum(score_sum)::numeric / sum(responses), 2) END
    FROM csat_daily WHERE survey_type = p_type AND day BETWEEN p_from AND p_to
$$;

CREATE OR REPLACE FUNCTION csmcp.csat_daily_rebuild() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    LOCK TABLE csat_daily IN EXCLUSIVE MODE;
    DELETE FROM csat_daily;
    INSERT INTO csat_daily (day, survey_type, responses, score_sum)
    SELECT (responded_at AT TIME ZONE 'UTC')::date, survey_type, count(*), sum(score) FROM csat_responses GROUP BY 1, 2;
END $$;

-- Days whose maintained counts differ from a from-scratch count (none when exact).
CREATE OR REPLACE FUNCTION csmcp.csat_daily_check()
RETURNS TABLE (day date, survey_type text, maintained text, actual text)
LANGUAGE sql STABLE AS $$
    WITH a AS (SELECT (responded_at AT TIME ZONE 'UTC')::date AS day, survey_type, count(*) AS n, sum(score) AS s
               FROM csat_responses GROUP BY 1, 2)
    SELECT coalesce(m.day, a.day), coalesce(m.survey_type, a.survey_type), concat_ws('/', m.responses, m.score_sum), concat_ws('/', a.n, a.s)
    FROM csat_daily m FULL JOIN a ON a.day = m.day AND a.survey_type = m.survey_type
    WHERE (coalesce(m.responses, 0), coalesce(m.score_sum, 0)) IS DISTINCT FROM (coalesce(a.n, 0), coalesce(a.s, 0))
$$;

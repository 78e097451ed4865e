-- 0002_tool_helpers.sql - shared helpers for the tool functions (schema csmcp).
--
-- Conventions for every csmcp.tool_* function: (args jsonb, principal text) RETURNS jsonb, one
-- call = one transaction; invalid input raises SQLSTATE 22023 and a missing object P0002 with a
-- message written for the client (worker/tools/sqltool.c passes classes P0/22/23 through).
-- "Today" is the UTC calendar date; usage days are UTC days.
CREATE SCHEMA IF NOT EXISTS csmcp;

CREATE OR REPLACE FUNCTION csmcp.today() RETURNS date
LANGUAGE sql STABLE AS $$ SELECT (now() AT TIME ZONE 'UTC')::date $$;

CREATE OR REPLACE FUNCTION csmcp.invalid(msg text) RETURNS void
LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION '%', msg USING ERRCODE = '22023'; END $$;

-- The account row, or P0002 "client not found".
CREATE OR REPLACE FUNCTION csmcp.require_account(p_client_id text) RETURNS accounts
LANGUAGE plpgsql STABLE AS $$
DECLARE a accounts;
BEGIN
    IF p_client_id IS NULL OR p_client_id = '' THEN
        RAISE EXCEPTION 'client_id is required' USING ERRCODE = '22023';
    END IF;
    IF p_client_id !~ '^[A-Za-z0-9_-]{1,100}$' THEN
        RAISE EXCEPTION 'invalid client_id: only letters, digits, "_" and "-", at most 100 characters'
            USING ERRCODE = '22023';
    END IF;
    SELECT * INTO a FROM accounts WHERE client_id = p_client_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'client not found: %', p_client_id USING ERRCODE = 'P0002';
    END IF;
    RETURN a;
END $$;

-- Typed argument readers: NULL/absent -> default; wrong type -> 22023 naming the argument.
CREATE OR REPLACE FUNCTION csmcp.arg_int(args jsonb, key text, def integer, lo integer, hi integer)
RETURNS integer LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE v jsonb := args -> key; n numeric;
BEGIN
    IF v IS NULL OR v = 'null'::jsonb THEN RETURN def; END IF;
    IF jsonb_typeof(v) <> 'number' THEN
        RAISE EXCEPTION '% must be an integer', key USING ERRCODE = '22023';
    END IF;
    n := v::text::numeric;
    IF n <> trunc(n) THEN RAISE EXCEPTION '% must be an integer', key USING ERRCODE = '22023'; END IF;
    IF n < lo OR n > hi THEN
        RAISE EXCEPTION '% must be between % and %', key, lo, hi USING ERRCODE = '22023';
    END IF;
    RETURN n::integer;
END $$;

CREATE OR REPLACE FUNCTION csmcp.arg_num(args jsonb, key text, def numeric, lo numeric, hi numeric)
RETURNS numeric LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE v jsonb := args -> key; n numeric;
BEGIN
    IF v IS NULL OR v = 'null'::jsonb THEN RETURN def; END IF;
    IF jsonb_typeof(v) <> 'number' THEN
        RAISE EXCEPTION '% must be a number', key USING ERRCODE = '22023';
    END IF;
    n := v::text::numeric;
    IF n < lo OR n > hi THEN
        RAISE EXCEPTION '% must be between % and %', key, lo, hi USING ERRCODE = '22023';
    END IF;
    RETURN n;
END $$;

CREATE OR REPLACE FUNCTION csmcp.arg_text(args jsonb, key text, def text, choices text[] DEFAULT NULL)
RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE v jsonb := args -> key; t text;
BEGIN
    IF v IS NULL OR v = 'null'::jsonb THEN RETURN def; END IF;
    IF jsonb_typeof(v) <> 'string' THEN
        RAISE EXCEPTION '% must be a string', key USING ERRCODE = '22023';
    END IF;
    t := v #>> '{}';
    IF choices IS NOT NULL AND NOT (t = ANY (choices)) THEN
        RAISE EXCEPTION '% must be one of: %', key, array_to_string(choices, ', ') USING ERRCODE = '22023';
    END IF;
    RETURN t;
END $$;

CREATE OR REPLACE FUNCTION csmcp.arg_bool(args jsonb, key text, def boolean)
RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE v jsonb := args -> key;
BEGIN
    IF v IS NULL OR v = 'null'::jsonb THEN RETURN def; END IF;
    IF jsonb_typeof(v) <> 'boolean' THEN
        RAISE EXCEPTION '% must be true or false', key USING ERRCODE = '22023';
    END IF;
    RETURN v::text::boolean;
END $$;

CREATE OR REPLACE FUNCTION csmcp.arg_date(args jsonb, key text, def date)
RETURNS date LANGUAGE plpgsql STABLE AS $$
DECLARE t text := csmcp.arg_text(args, key, NULL);
BEGIN
    IF t IS NULL THEN RETURN def; END IF;
    IF t !~ '^\d{4}-\d{2}-\d{2}$' THEN
        RAISE EXCEPTION '% must be a date YYYY-MM-DD', key USING ERRCODE = '22023';
    END IF;
    BEGIN
        RETURN t::date;
    EXCEPTION WHEN others THEN
        RAISE EXCEPTION '% is not a valid date: %', key, t USING ERRCODE = '22023';
    END;
END $$;

-- Records one create/update a tool made (who, what, old and new values); returns its id.
CREATE OR REPLACE FUNCTION csmcp.log_activity(p_client_id text, p_actor text, p_action text, p_entity text,
                                              p_entity_id text, p_old jsonb, p_new jsonb)
RETURNS bigint LANGUAGE sql AS $$
    INSERT INTO activity_log (client_id, actor, action, entity, entity_id, old_values, new_values)
    VALUES (p_client_id, coalesce(nullif(p_actor, ''), 'anonymous'), p_action, p_entity, p_entity_id, p_old, p_new)
    RETURNING activity_id
$$;

-- The active contract of an account (at most one, enforced by contracts_one_active).
CREATE OR REPLACE FUNCTION csmcp.active_contract(p_client_id text) RETURNS contracts
LANGUAGE sql STABLE AS $$
    SELECT * FROM contracts WHERE client_id = p_client_id AND status = 'active'
$$;

-- Risk level and renewal probability from a health score (documented in docs/tools-preamble.md).
CREATE OR REPLACE FUNCTION csmcp.risk_level(score integer) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN score >= 80 THEN 'low' WHEN score >= 65 THEN 'medium' WHEN score >= 50 THEN 'high' ELSE 'critical' END
$$;

CREATE OR REPLACE FUNCTION csmcp.churn_probability(score integer) RETURNS numeric
LANGUAGE sql IMMUTABLE AS $$
    SELECT round(greatest(0.05, least(0.95, (100 - score)::numeric / 100)), 2)
$$;

-- Usage trend of an account: mean DAU of the last 15 days vs the 15 before.
CREATE OR REPLACE FUNCTION csmcp.usage_trend(p_client_id text, p_today date) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    WITH w AS (
        SELECT coalesce(sum(active_users) FILTER (WHERE day > p_today - 15), 0)::numeric / 15 AS recent,
               coalesce(sum(active_users) FILTER (WHERE day <= p_today - 15), 0)::numeric / 15 AS before
        FROM usage_daily WHERE client_id = p_client_id AND day > p_today - 30 AND day <= p_today
    )
    SELECT jsonb_build_object(
        'recent_avg_dau', round(recent, 2), 'previous_avg_dau', round(before, 2),
        'change_pct', CASE WHEN before > 0 THEN round((recent - before) / before * 100, 1) END,
        'direction', CASE WHEN before = 0 AND recent > 0 THEN 'growing'
                          WHEN before = 0 THEN 'flat'
                          WHEN (recent - before) / before > 0.10 THEN 'growing'
                          WHEN (recent - before) / before < -0.10 THEN 'declining'
                          ELSE 'flat' END)
    FROM w
$$;

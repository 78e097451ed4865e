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

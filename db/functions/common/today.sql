-- "Today" is the UTC calendar date; usage days are UTC days.
CREATE OR REPLACE FUNCTION csmcp.today() RETURNS date
LANGUAGE sql STABLE AS $$ SELECT (now() AT TIME ZONE 'UTC')::date $$;

-- Invalid input: SQLSTATE 22023 with a message written for the client (an isError result).
CREATE OR REPLACE FUNCTION csmcp.invalid(msg text) RETURNS void
LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION '%', msg USING ERRCODE = '22023'; END $$;

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

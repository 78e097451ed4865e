-- The active contract of an account (at most one, enforced by contracts_one_active).
CREATE OR REPLACE FUNCTION csmcp.active_contract(p_client_id text) RETURNS contracts
LANGUAGE sql STABLE AS $$
    SELECT * FROM contracts WHERE client_id = p_client_id AND status = 'active'
$$;

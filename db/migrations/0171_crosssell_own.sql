-- 0171_crosssell_own.sql - per account, what identify_crosssell_opportunities matches against the
-- catalogue (issue 21): every active account with an active contract, with its tier, industry,
-- name, the contract's value and seats and the contract's products as one array. The tool read
-- accounts x contracts and aggregated contract_products per contract on every call (an index
-- scan per contract: ~97,000 at 100,000 accounts), also for one account (its peers: the same tier
-- and industry). Kept in the writing transaction by statement triggers on accounts, contracts and
-- contract_products (db/functions/expansion/rollups.sql), which fill it when it is still empty.
-- No foreign keys (contract_products is created by 0220): a row goes when its account stops
-- qualifying (status, contract) or is deleted (the triggers of the cascade remove it).
CREATE TABLE crosssell_own (
    client_id text PRIMARY KEY,
    client_name text NOT NULL,
    tier text NOT NULL,
    industry text NOT NULL,
    contract_id text NOT NULL,
    contract_value numeric(14,2) NOT NULL,
    licensed_seats integer,
    products text[] NOT NULL   -- the product_ids of the active contract (any order)
);
CREATE INDEX crosssell_own_peers_idx ON crosssell_own (tier, industry);

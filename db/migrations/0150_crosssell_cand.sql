-- 0150_crosssell_cand.sql - identify_crosssell_opportunities without computing and comparing
-- every candidate on every call (issue 21: at 100,000 accounts a portfolio call computed and
-- compared ~53,500 candidates with their open opportunities, 5-6 s). Kept in the writing
-- transaction by statement triggers (db/functions/expansion/rollups.sql):
--   crosssell_peers / crosssell_owners: per (tier, industry) the accounts of crosssell_own, and
--     per (tier, industry, product) those owning the product: the fit's peer counts, one small
--     row per group, joined at read time (a product sold changes one row, not every candidate
--     of its group);
--   crosssell_cand: per active account with an active contract and product it may be offered
--     (active, not base, not owned, prerequisites owned), the estimated value; `dirty` set
--     (a sequence value) when the account's row or the candidate's open opportunity changed since
--     a portfolio call last persisted it;
--   crosssell_synced: per (tier, industry, product) the peer counts with which a portfolio call
--     last persisted every candidate of the group: counts that differ now make every candidate
--     of the group due for a compare.
-- No foreign keys (products and contracts come from 0220): the triggers of the sources remove
-- the rows.
CREATE TABLE crosssell_peers (
    tier text NOT NULL,
    industry text NOT NULL,
    peers integer NOT NULL,
    PRIMARY KEY (tier, industry)
);
CREATE TABLE crosssell_owners (
    tier text NOT NULL,
    industry text NOT NULL,
    product_id text NOT NULL,
    owning integer NOT NULL,
    PRIMARY KEY (tier, industry, product_id)
);
CREATE TABLE crosssell_cand (
    client_id text NOT NULL,
    product_id text NOT NULL,
    tier text NOT NULL,
    industry text NOT NULL,
    value numeric NOT NULL,   -- round(list_price x seats factor, 2), unconstrained: the tool's figure as is
    dirty bigint,             -- NULL: the open opportunity matched when a portfolio call last looked
    PRIMARY KEY (client_id, product_id)
);
CREATE INDEX crosssell_cand_group_idx ON crosssell_cand (tier, industry, product_id) INCLUDE (client_id, value);
-- the marked candidates of a group (a call finds them without reading the group's clean ones)
CREATE INDEX crosssell_cand_dirty_idx ON crosssell_cand (tier, industry, product_id) WHERE dirty IS NOT NULL;
CREATE SEQUENCE crosssell_cand_dirty_seq;
CREATE TABLE crosssell_synced (
    tier text NOT NULL,
    industry text NOT NULL,
    product_id text NOT NULL,
    peers integer NOT NULL,
    owning integer NOT NULL,
    PRIMARY KEY (tier, industry, product_id)
);

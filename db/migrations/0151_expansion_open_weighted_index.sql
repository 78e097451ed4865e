-- 0151_expansion_open_weighted_index.sql - the open opportunities in the order
-- identify_expansion_opportunities lists them (weighted value descending, then id): its first
-- `limit` rows are read from the index instead of sorting every open opportunity (~90,000 wide
-- rows at 100,000 accounts) per portfolio call (issue 21).
CREATE INDEX expansion_open_weighted_idx ON expansion_opportunities ((estimated_value * probability) DESC, opportunity_id)
    WHERE stage NOT IN ('won', 'lost');

-- 0170_expansion_open_value_index.sql - open opportunities by type with the figures the pipeline
-- of track_revenue_expansion sums (count, distinct accounts, value, weighted value): read
-- index-only in one pass instead of two scans of the wide rows (details jsonb) (issue 21).
CREATE INDEX expansion_open_type_value_idx ON expansion_opportunities (expansion_type, client_id)
    INCLUDE (estimated_value, probability) WHERE stage NOT IN ('won', 'lost');

-- Churn probability from a health score: (100 - score) / 100, clamped to [0.05, 0.95].
CREATE OR REPLACE FUNCTION csmcp.churn_probability(score integer) RETURNS numeric
LANGUAGE sql IMMUTABLE AS $$
    SELECT round(greatest(0.05, least(0.95, (100 - score)::numeric / 100)), 2)
$$;

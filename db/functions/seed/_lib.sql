-- seed/_lib.sql - csmcp.seed_rand(key): a deterministic number in [0, 1) from md5(key); every
-- seed value derives from it (never random()), so the same N gives the same rows anywhere.
CREATE OR REPLACE FUNCTION csmcp.seed_rand(k text) RETURNS double precision
LANGUAGE sql IMMUTABLE AS $$
    SELECT ('x' || substr(md5(k), 1, 8))::bit(32)::bigint / 4294967296.0
$$;

-- 0281: manual health score overrides with expiry (override_health_score, issue 24).
-- An override is active while cleared_at IS NULL AND expires_at > now(): expiry needs no writer,
-- every reader computes the effective score at read time (csmcp.health_override_active).
CREATE TABLE health_overrides (
    override_id  bigserial PRIMARY KEY,
    client_id    text NOT NULL REFERENCES accounts ON DELETE CASCADE,
    score        integer NOT NULL CHECK (score BETWEEN 0 AND 100),
    reason       text NOT NULL CHECK (length(btrim(reason)) BETWEEN 3 AND 1000),
    set_by       text NOT NULL,
    set_at       timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    cleared_at   timestamptz,
    cleared_by   text,
    clear_reason text,
    CHECK (expires_at > set_at AND expires_at <= set_at + interval '180 days'),
    CHECK (cleared_at IS NULL OR cleared_at >= set_at)
);
-- at most one uncleared override per account (a new set clears the previous one first)
CREATE UNIQUE INDEX health_overrides_one_open ON health_overrides (client_id) WHERE cleared_at IS NULL;
CREATE INDEX health_overrides_client_idx ON health_overrides (client_id, set_at DESC);

-- 0286: the scorecards clock (issue 24). Override expiry is decided at read time against
-- csmcp.sc_now() = now() + health_clock.offset_by (db/functions/scorecards/_lib.sql). The table is
-- empty in production (offset 0); tests insert an offset to move "now" past an expiry without
-- sleeping and without touching the override or the account. At most one row.
CREATE TABLE health_clock (
    one       boolean PRIMARY KEY DEFAULT true CHECK (one),
    offset_by interval NOT NULL,
    set_at    timestamptz NOT NULL DEFAULT now()
);

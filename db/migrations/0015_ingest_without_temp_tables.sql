-- 0015_ingest_without_temp_tables.sql - csmcp.apply_usage_events without temporary tables.
--
-- The 0007 version created two temporary tables per call (CREATE TEMP TABLE ... ON COMMIT DROP,
-- TRUNCATE): catalog inserts and deletes on every ingest_usage_events call, about 5 of its
-- ~10 ms of PostgreSQL time for one event at 10,000 accounts (auto_explain: the statements
-- themselves summed to 4.5 ms), and the slowest tool of the scale mix after list_clients was
-- fixed (docs/scale.md §3.1). Same statements and results; the parsed events are a CTE and the
-- newly stored ones an array of csmcp.usage_event_row instead of tables.
--
-- Rewritten when code moved out of migrations: the functions, views and triggers this file
-- defined now live in db/functions/ (applied by `csmcpctl migrate` after the migrations).
-- A database that applied the original is accepted through db/migrations/REWRITTEN.

CREATE TYPE csmcp.usage_event_row AS (
    event_id    text,
    client_id   text,
    day         date,
    user_id     text,
    feature_id  text,
    quantity    numeric,
    occurred_at timestamptz
);

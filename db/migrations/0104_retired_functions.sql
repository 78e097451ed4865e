-- 0104_retired_functions.sql - drops functions that no file in db/functions defines any more,
-- so a database migrated from before db/functions and a new one hold the same functions.
--
--   csmcp.seed_demo_rows(integer)  0014 renamed the seed of 0011 to this and wrapped it; the
--                                  whole seed is csmcp.seed_demo again (db/functions/seed/).
--
-- A function that leaves db/functions later is dropped the same way: a migration with
-- DROP FUNCTION IF EXISTS (a new database never had it).
DROP FUNCTION IF EXISTS csmcp.seed_demo_rows(integer);

-- 0002_tool_helpers.sql - shared helpers for the tool functions (schema csmcp).
--
-- Conventions for every csmcp.tool_* function: (args jsonb, principal text) RETURNS jsonb, one
-- call = one transaction; invalid input raises SQLSTATE 22023 and a missing object P0002 with a
-- message written for the client (worker/tools/sqltool.c passes classes P0/22/23 through).
-- "Today" is the UTC calendar date; usage days are UTC days.
--
-- Rewritten when code moved out of migrations: the functions, views and triggers this file
-- defined now live in db/functions/ (applied by `csmcpctl migrate` after the migrations).
-- A database that applied the original is accepted through db/migrations/REWRITTEN.

CREATE SCHEMA IF NOT EXISTS csmcp;

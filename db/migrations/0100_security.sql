-- 0100_security.sql - security tables and functions (owner: security).
--
--   api_keys   Bearer API keys "csk_<key_id>_<secret>": only SHA-256(token) is stored; the
--              token is printed once by `csmcpctl key create`.
--   secrets    integration credentials sealed with AES-256-GCM under a PBKDF2-SHA256
--              (600,000 iterations) key derived from the vault key, per-secret salt and nonce
--              (format "v1$iter$salt$nonce$ct||tag", see common/crypto.h). The vault key never
--              reaches the database.
--   audit_log  append-only, hash-chained record of every tool call. Rows are only written by
--              csmcp.audit_append() (SECURITY DEFINER, serialised on the audit_head row lock);
--              UPDATE, DELETE and TRUNCATE are refused by triggers for every role. Each row's
--              hash = SHA-256 of its length-prefixed fields and the previous row's hash, so
--              `csmcpctl audit verify` detects an edited row, a deleted row (id gap or broken
--              link) and a truncated tail (audit_head disagrees).
--   GDPR       csmcp.gdpr_export() / csmcp.gdpr_erase(): everything held about an account, found
--              through the catalog (every table with a client_id column, and their direct
--              children), so new domain tables are covered without editing this file.
--
-- The server's runtime role should not own these objects: when a role named csmcp_app exists it
-- gets SELECT on api_keys and audit_log, and EXECUTE on the functions (granted in
-- db/functions/audit/) - nothing else.
--
-- Rewritten when code moved out of migrations: the functions, views and triggers this file
-- defined now live in db/functions/ (applied by `csmcpctl migrate` after the migrations).
-- A database that applied the original is accepted through db/migrations/REWRITTEN.

CREATE SCHEMA IF NOT EXISTS csmcp;

CREATE TABLE api_keys (
    key_id       text PRIMARY KEY CHECK (key_id ~ '^[a-z0-9]{8,32}$'),
    name         text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 200),
    token_hash   text NOT NULL CHECK (token_hash ~ '^[0-9a-f]{64}$'),
    scopes       text[] NOT NULL CHECK (scopes <@ ARRAY['read', 'write', 'admin']::text[]
                                        AND cardinality(scopes) >= 1),
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz,
    revoked_at   timestamptz
);

CREATE TABLE secrets (
    name        text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9_.:-]{1,128}$'),
    sealed      text NOT NULL CHECK (sealed LIKE 'v1$%'),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE audit_log (
    id          bigint PRIMARY KEY,
    created_at  timestamptz NOT NULL,
    principal   text NOT NULL,
    method      text NOT NULL,
    tool        text,
    args        jsonb NOT NULL DEFAULT '{}',
    outcome     text NOT NULL,
    latency_ms  integer NOT NULL,
    detail      text,
    prev_hash   text NOT NULL CHECK (prev_hash ~ '^[0-9a-f]{64}$'),
    hash        text NOT NULL CHECK (hash ~ '^[0-9a-f]{64}$')
);
CREATE INDEX audit_log_principal_idx ON audit_log (principal, created_at);
CREATE INDEX audit_log_tool_idx ON audit_log (tool, created_at);

-- The chain head: its row lock serialises appenders across workers and hosts, and it records
-- the last id/hash so a deleted tail is detected.
CREATE TABLE audit_head (
    one        boolean PRIMARY KEY DEFAULT true CHECK (one),
    last_id    bigint NOT NULL,
    last_hash  text NOT NULL
);
INSERT INTO audit_head VALUES (true, 0, repeat('0', 64));

REVOKE ALL ON api_keys, secrets, audit_log, audit_head FROM PUBLIC;
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'csmcp_app') THEN
        GRANT USAGE ON SCHEMA csmcp TO csmcp_app;
        GRANT SELECT ON api_keys, audit_log TO csmcp_app;
    END IF;
END;
$$;

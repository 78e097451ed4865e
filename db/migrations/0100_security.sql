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
-- gets SELECT on api_keys and audit_log, and EXECUTE on the functions - nothing else.

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

CREATE FUNCTION csmcp.audit_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only (% refused)', TG_OP USING ERRCODE = '42501';
END;
$$;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION csmcp.audit_refuse();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION csmcp.audit_refuse();

-- Canonical text of a row: every field as "<octet length>:<value>", so no choice of field
-- contents can make two different rows hash alike. csmcpctl audit verify recomputes it in C.
CREATE FUNCTION csmcp.audit_canon(p_id bigint, p_us bigint, p_principal text, p_method text,
                                  p_tool text, p_args text, p_outcome text, p_latency integer,
                                  p_detail text, p_prev text)
RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT string_agg(octet_length(f)::text || ':' || f, '' ORDER BY n)
      FROM unnest(ARRAY[p_id::text, p_us::text, p_principal, p_method, coalesce(p_tool, ''),
                        p_args, p_outcome, p_latency::text, coalesce(p_detail, ''), p_prev])
           WITH ORDINALITY AS t(f, n)
$$;

CREATE FUNCTION csmcp.audit_append(p_principal text, p_method text, p_tool text, p_args jsonb,
                                   p_outcome text, p_latency_ms integer, p_detail text)
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    h     record;
    v_id  bigint;
    v_ts  timestamptz := date_trunc('microseconds', clock_timestamp());
    v_us  bigint;
    v_hash text;
BEGIN
    SELECT last_id, last_hash INTO h FROM audit_head WHERE one FOR UPDATE;
    v_id := h.last_id + 1;
    v_us := (extract(epoch FROM v_ts) * 1000000)::bigint;
    v_hash := encode(sha256(convert_to(csmcp.audit_canon(v_id, v_us, p_principal, p_method,
                      p_tool, coalesce(p_args, '{}'::jsonb)::text, p_outcome, p_latency_ms,
                      p_detail, h.last_hash), 'UTF8')), 'hex');
    INSERT INTO audit_log (id, created_at, principal, method, tool, args, outcome, latency_ms,
                           detail, prev_hash, hash)
    VALUES (v_id, v_ts, p_principal, p_method, p_tool, coalesce(p_args, '{}'::jsonb), p_outcome,
            p_latency_ms, p_detail, h.last_hash, v_hash);
    UPDATE audit_head SET last_id = v_id, last_hash = v_hash WHERE one;
    RETURN v_id;
END;
$$;

-- Tables holding an account's data: level 1 has a client_id column; level 2 references a
-- level-1 table through a one-column foreign key and has no client_id of its own.
CREATE FUNCTION csmcp.gdpr_export(p_args jsonb, p_principal text)
RETURNS jsonb LANGUAGE plpgsql STABLE SET search_path = pg_catalog, public AS $$
DECLARE
    v_client text := p_args->>'client_id';
    v_tables jsonb := '{}';
    v_rows   jsonb;
    v_total  bigint := 0;
    r        record;
BEGIN
    IF v_client IS NULL OR NOT EXISTS (SELECT 1 FROM accounts WHERE client_id = v_client) THEN
        RAISE EXCEPTION 'account % not found', coalesce(v_client, '(none)')
            USING ERRCODE = 'P0002';
    END IF;
    FOR r IN
        SELECT c.relname AS tbl
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'client_id' AND NOT a.attisdropped
         WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
           AND c.relname NOT IN ('api_keys', 'audit_log', 'audit_head', 'secrets')
         ORDER BY c.relname
    LOOP
        EXECUTE format('SELECT coalesce(jsonb_agg(to_jsonb(t)), ''[]'') FROM %I t WHERE client_id = $1',
                       r.tbl) INTO v_rows USING v_client;
        IF jsonb_array_length(v_rows) > 0 THEN
            v_tables := v_tables || jsonb_build_object(r.tbl, v_rows);
            v_total := v_total + jsonb_array_length(v_rows);
        END IF;
    END LOOP;
    FOR r IN
        SELECT ch.relname AS tbl, ca.attname AS fkcol, pa.relname AS parent, pk.attname AS pkcol
          FROM pg_constraint k
          JOIN pg_class ch ON ch.oid = k.conrelid
          JOIN pg_namespace n ON n.oid = ch.relnamespace
          JOIN pg_class pa ON pa.oid = k.confrelid
          JOIN pg_attribute ca ON ca.attrelid = k.conrelid AND ca.attnum = k.conkey[1]
          JOIN pg_attribute pk ON pk.attrelid = k.confrelid AND pk.attnum = k.confkey[1]
         WHERE k.contype = 'f' AND cardinality(k.conkey) = 1 AND n.nspname = 'public'
           AND EXISTS (SELECT 1 FROM pg_attribute x WHERE x.attrelid = pa.oid
                          AND x.attname = 'client_id' AND NOT x.attisdropped)
           AND pa.relname <> 'accounts'
           AND NOT EXISTS (SELECT 1 FROM pg_attribute x WHERE x.attrelid = ch.oid
                              AND x.attname = 'client_id' AND NOT x.attisdropped)
         ORDER BY ch.relname, ca.attname
    LOOP
        EXECUTE format('SELECT coalesce(jsonb_agg(to_jsonb(t)), ''[]'') FROM %I t WHERE t.%I IN '
                       '(SELECT p.%I FROM %I p WHERE p.client_id = $1)',
                       r.tbl, r.fkcol, r.pkcol, r.parent) INTO v_rows USING v_client;
        IF jsonb_array_length(v_rows) > 0 THEN
            v_tables := v_tables || jsonb_build_object(r.tbl,
                            coalesce(v_tables->r.tbl, '[]'::jsonb) || v_rows);
            v_total := v_total + jsonb_array_length(v_rows);
        END IF;
    END LOOP;
    RETURN jsonb_build_object('client_id', v_client,
                              'exported_at', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                              'row_count', v_total,
                              'tables', v_tables);
END;
$$;

-- Deletes every row about the account (children go by ON DELETE CASCADE / SET NULL, level-1
-- tables without a foreign key are deleted explicitly). Returns counts only: no personal data.
CREATE FUNCTION csmcp.gdpr_erase(p_args jsonb, p_principal text)
RETURNS jsonb LANGUAGE plpgsql SET search_path = pg_catalog, public AS $$
DECLARE
    v_client text := p_args->>'client_id';
    v_before bigint;
    v_n      bigint;
    r        record;
BEGIN
    v_before := (csmcp.gdpr_export(p_args, p_principal)->>'row_count')::bigint;
    FOR r IN
        SELECT c.relname AS tbl
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'client_id' AND NOT a.attisdropped
         WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
           AND c.relname NOT IN ('api_keys', 'audit_log', 'audit_head', 'secrets', 'accounts')
    LOOP
        EXECUTE format('DELETE FROM %I WHERE client_id = $1', r.tbl) USING v_client;
    END LOOP;
    DELETE FROM accounts WHERE client_id = v_client;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN jsonb_build_object('client_id', v_client, 'erased', v_n = 1, 'rows_deleted', v_before);
END;
$$;

REVOKE ALL ON api_keys, secrets, audit_log, audit_head FROM PUBLIC;
REVOKE ALL ON FUNCTION csmcp.audit_append(text, text, text, jsonb, text, integer, text) FROM PUBLIC;
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'csmcp_app') THEN
        GRANT USAGE ON SCHEMA csmcp TO csmcp_app;
        GRANT SELECT ON api_keys, audit_log TO csmcp_app;
        GRANT EXECUTE ON FUNCTION csmcp.audit_append(text, text, text, jsonb, text, integer, text)
            TO csmcp_app;
    END IF;
END;
$$;

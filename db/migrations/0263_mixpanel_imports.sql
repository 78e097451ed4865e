-- 0263_mixpanel_imports.sql - usage pulled from a Mixpanel-compatible raw export by the monitor
-- process (integrations.mixpanel_*; db/functions/monitors/mixpanel.sql). One row per pull.
CREATE TABLE mixpanel_imports (
    import_id   bigserial PRIMARY KEY,
    from_date   date NOT NULL,
    to_date     date NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    status      text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'ok', 'failed')),
    lines       integer NOT NULL DEFAULT 0,
    inserted    integer NOT NULL DEFAULT 0,
    duplicates  integer NOT NULL DEFAULT 0,
    skipped     jsonb NOT NULL DEFAULT '{}',
    error       text,
    CHECK (to_date >= from_date)
);
CREATE INDEX mixpanel_imports_done_idx ON mixpanel_imports (to_date DESC) WHERE status = 'ok';

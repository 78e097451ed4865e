-- 0999_pkgtest_next.sql - test-only migration of the "version N+1" build (tests/package):
-- an expand-only change, declared compatible in COMPAT.add. The upgrade test applies it on
-- upgrade and then proves the claim: release N (which does not know it) serves the SDK data
-- workflow and the load against the migrated schema after `csmcp-release rollback`.
-- Never part of db/migrations (number 0999 is outside every reserved range).
ALTER TABLE accounts ADD COLUMN IF NOT EXISTS pkgtest_segment text;
ALTER TABLE contracts ADD COLUMN IF NOT EXISTS pkgtest_billing_day integer NOT NULL DEFAULT 1;
CREATE TABLE IF NOT EXISTS pkgtest_release_notes (
    version text PRIMARY KEY,
    noted_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO pkgtest_release_notes (version) VALUES ('next') ON CONFLICT DO NOTHING;

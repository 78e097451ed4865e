"""Regression: `csmcpctl migrate` run again by the usual role "csmcp" (same name as the schema
csmcp that migration 0002 creates) must not start a second, empty set of tables in schema csmcp.
Before the fix the second migrate created csmcp.schema_migrations and re-applied 0001 there, and
every unqualified table name then resolved to the new empty tables (0 accounts)."""
import os
import subprocess
import unittest
import urllib.parse

import lib

PSQL = sorted(p for p in (os.path.join("/usr/lib/postgresql", v, "bin", "psql")
                          for v in os.listdir("/usr/lib/postgresql")) if os.path.exists(p))[-1]


def psql(url, sql):
    return subprocess.run([PSQL, url, "-qAt", "-v", "ON_ERROR_STOP=1", "-c", sql],
                          capture_output=True, text=True, timeout=60, check=True).stdout.strip()


class MigrateAsSchemaNamedRole(unittest.TestCase):
    def test_second_migrate_keeps_data_and_schema(self):
        admin = lib.need_env("CSMCP_PG_ADMIN_URL")
        app = urllib.parse.urlparse(lib.database_url())
        name = "csmcp_migrate_twice"
        psql(admin, "DROP DATABASE IF EXISTS %s WITH (FORCE)" % name)
        psql(admin, "CREATE DATABASE %s OWNER csmcp" % name)
        url = app._replace(path="/" + name).geturl()
        env = lib.clean_env()
        env["CSMCP_DATABASE_URL"] = url
        try:
            def ctl(*args):
                r = subprocess.run([lib.CSMCPCTL] + list(args), env=env, capture_output=True,
                                   text=True, timeout=300)
                self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
                return r.stdout
            ctl("migrate")
            ctl("seed", "--accounts", "3")
            out = ctl("migrate")
            self.assertIn(" 0 applied", out)
            self.assertEqual(psql(url, "SELECT count(*) FROM accounts"), "3")
            self.assertEqual(psql(url, "SELECT count(*) FROM information_schema.tables "
                                       "WHERE table_schema = 'csmcp' AND table_type = 'BASE TABLE'"),
                             "0")
        finally:
            psql(admin, "DROP DATABASE IF EXISTS %s WITH (FORCE)" % name)

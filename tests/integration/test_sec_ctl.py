"""csmcpctl key | secret | audit against a scratch database holding the security schema.

Each test names the rule it proves; removing the rule makes it fail."""
import hashlib
import os

import lib
import sec_util as su


class KeyCommands(lib.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.db = su.ScratchDb()

    @classmethod
    def tearDownClass(cls):
        cls.db.drop()

    def test_create_prints_token_once_and_stores_only_its_hash(self):
        r = su.ctl(self.db.url, "key", "create", "--name", "ops laptop", "--scopes", "read,write")
        self.assertEqual(r.returncode, 0, r.stderr)
        token = r.stdout.strip()
        self.assertRegex(token, r"^csk_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$")
        key_id = token.split("_")[1]
        row = self.db.sql("SELECT token_hash, array_to_string(scopes, ',') FROM api_keys "
                          "WHERE key_id = '%s'" % key_id).strip().split("|")
        self.assertEqual(row[0], hashlib.sha256(token.encode()).hexdigest())
        self.assertEqual(row[1], "read,write")
        secret_part = token.split("_", 2)[2]
        dump = self.db.sql("SELECT row_to_json(k)::text FROM api_keys k")
        self.assertNotIn(secret_part, dump)
        listing = su.ctl(self.db.url, "key", "list")
        self.assertEqual(listing.returncode, 0)
        self.assertIn(key_id, listing.stdout)
        self.assertIn("ops laptop", listing.stdout)
        self.assertNotIn(secret_part, listing.stdout + listing.stderr)
        # a second key has a different id and secret
        t2 = su.ctl(self.db.url, "key", "create", "--name", "b").stdout.strip()
        self.assertNotEqual(t2.split("_")[1], key_id)

    def test_scopes_are_validated(self):
        r = su.ctl(self.db.url, "key", "create", "--name", "x", "--scopes", "read,root")
        self.assertEqual(r.returncode, 2)
        self.assertIn("unknown scope", r.stderr)
        r = su.ctl(self.db.url, "key", "create", "--scopes", "read")
        self.assertEqual(r.returncode, 2)

    def test_revoke(self):
        token = su.ctl(self.db.url, "key", "create", "--name", "to revoke").stdout.strip()
        key_id = token.split("_")[1]
        r = su.ctl(self.db.url, "key", "revoke", key_id)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.db.sql("SELECT revoked_at IS NOT NULL FROM api_keys WHERE key_id='%s'"
                                     % key_id).strip(), "t")
        self.assertIn("revoked", su.ctl(self.db.url, "key", "list").stdout)
        r = su.ctl(self.db.url, "key", "revoke", key_id)
        self.assertEqual(r.returncode, 1)  # already revoked
        r = su.ctl(self.db.url, "key", "revoke", "nosuchkey1")
        self.assertEqual(r.returncode, 1)


class SecretCommands(lib.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.db = su.ScratchDb()
        cls.vault = {"CSMCP_VAULT_KEY": su.strong_key()}

    @classmethod
    def tearDownClass(cls):
        cls.db.drop()

    def test_roundtrip_and_encrypted_at_rest(self):
        value = "sf-token-%s" % os.urandom(8).hex()
        r = su.ctl(self.db.url, "secret", "set", "salesforce.token", env=self.vault,
                   stdin=value + "\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        sealed = self.db.sql("SELECT sealed FROM secrets WHERE name='salesforce.token'").strip()
        self.assertTrue(sealed.startswith("v1$600000$"), sealed)  # PBKDF2 600,000 iterations
        self.assertNotIn(value, sealed)
        self.assertNotIn(value, r.stdout + r.stderr)
        fields = sealed.split("$")
        self.assertEqual(len(fields), 5)
        g = su.ctl(self.db.url, "secret", "get", "salesforce.token", env=self.vault)
        self.assertEqual(g.returncode, 0, g.stderr)
        self.assertEqual(g.stdout.strip(), value)
        # same value again: fresh salt and nonce
        su.ctl(self.db.url, "secret", "set", "salesforce.token", env=self.vault, stdin=value)
        sealed2 = self.db.sql("SELECT sealed FROM secrets WHERE name='salesforce.token'").strip()
        self.assertNotEqual(sealed2.split("$")[2], fields[2])
        self.assertNotEqual(sealed2.split("$")[3], fields[3])
        self.assertIn("salesforce.token", su.ctl(self.db.url, "secret", "list").stdout)
        d = su.ctl(self.db.url, "secret", "delete", "salesforce.token")
        self.assertEqual(d.returncode, 0)
        self.assertNotIn("salesforce.token", su.ctl(self.db.url, "secret", "list").stdout)

    def test_wrong_key_or_moved_ciphertext_fails(self):
        su.ctl(self.db.url, "secret", "set", "a.token", env=self.vault, stdin="alpha")
        su.ctl(self.db.url, "secret", "set", "b.token", env=self.vault, stdin="bravo")
        g = su.ctl(self.db.url, "secret", "get", "a.token",
                   env={"CSMCP_VAULT_KEY": su.strong_key()})
        self.assertEqual(g.returncode, 1)
        self.assertNotIn("alpha", g.stdout)
        # the name is authenticated data: a ciphertext copied under another name does not open
        self.db.sql("UPDATE secrets SET sealed = (SELECT sealed FROM secrets WHERE name='a.token') "
                    "WHERE name='b.token'")
        g = su.ctl(self.db.url, "secret", "get", "b.token", env=self.vault)
        self.assertEqual(g.returncode, 1)
        self.assertIn("tampered", g.stderr)

    def test_weak_vault_key_refused(self):
        for weak in ("changeme", "a" * 64, "0123456789" * 2):
            r = su.ctl(self.db.url, "secret", "set", "x.token", env={"CSMCP_VAULT_KEY": weak},
                       stdin="v")
            self.assertEqual(r.returncode, 1, weak)
            self.assertIn("refused", r.stderr)
            self.assertNotIn(weak, r.stderr)

    def test_vault_key_from_credentials_directory(self):
        d = su.Pki()  # just for a temp dir
        try:
            p = d.path("vault.key")
            with open(p, "w") as f:
                f.write(su.strong_key() + "\n")
            os.chmod(p, 0o600)
            env = {"CREDENTIALS_DIRECTORY": d.dir, "CSMCP_VAULT_KEY": ""}
            r = su.ctl(self.db.url, "secret", "set", "c.token", env=env, stdin="charlie")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(su.ctl(self.db.url, "secret", "get", "c.token", env=env)
                             .stdout.strip(), "charlie")
            os.chmod(p, 0o644)  # readable by others: refused
            r = su.ctl(self.db.url, "secret", "get", "c.token", env=env)
            self.assertEqual(r.returncode, 1)
            self.assertIn("chmod 600", r.stderr)
        finally:
            d.cleanup()


class AuditChain(lib.TestCase):
    def setUp(self):
        self.db = su.ScratchDb()
        for i in range(5):
            self.db.sql("SELECT csmcp.audit_append('key:k%d', 'tools/call', 'tool_%d', "
                        "'{\"n\": %d, \"s\": \"x|y:z\"}', 'ok', %d, NULL)" % (i, i, i, i))

    def tearDown(self):
        self.db.drop()

    def verify(self):
        return su.ctl(self.db.url, "audit", "verify")

    def test_intact_chain_verifies(self):
        r = self.verify()
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("5 rows verified", r.stdout)

    def test_append_only_for_everyone(self):
        for stmt in ("UPDATE audit_log SET outcome = 'error' WHERE id = 2",
                     "DELETE FROM audit_log WHERE id = 2", "TRUNCATE audit_log"):
            r = self.db.sql(stmt, check=False)
            self.assertNotEqual(r.returncode, 0, stmt)
            self.assertIn("append-only", r.stderr)
        self.assertEqual(self.verify().returncode, 0)

    def tamper(self, sql):
        self.db.sql("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update; %s; "
                    "ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_update;" % sql)

    def test_edited_row_detected(self):
        self.tamper("UPDATE audit_log SET args = '{\"n\": 99}' WHERE id = 3")
        r = self.verify()
        self.assertEqual(r.returncode, 1)
        self.assertIn("row 3", r.stdout)
        self.assertIn("edited", r.stdout)

    def test_edit_with_recomputed_hash_detected(self):
        # an attacker who recomputes the row's own hash still breaks the next link
        self.tamper("UPDATE audit_log SET outcome = 'error', hash = encode(sha256(convert_to("
                    "csmcp.audit_canon(id, (extract(epoch FROM created_at) * 1000000)::bigint, "
                    "principal, method, tool, args::text, 'error', latency_ms, detail, prev_hash),"
                    " 'UTF8')), 'hex') WHERE id = 2")
        r = self.verify()
        self.assertEqual(r.returncode, 1)
        self.assertIn("row 3", r.stdout)

    def test_deleted_row_detected(self):
        self.tamper("DELETE FROM audit_log WHERE id = 2")
        r = self.verify()
        self.assertEqual(r.returncode, 1)
        self.assertIn("deleted", r.stdout)

    def test_deleted_tail_detected(self):
        self.tamper("DELETE FROM audit_log WHERE id = 5")
        r = self.verify()
        self.assertEqual(r.returncode, 1)
        self.assertIn("end", r.stdout)

    def test_concurrent_appends_form_one_chain(self):
        procs = [su.subprocess.Popen([su.tool("psql"), "-X", "-q", "-d", self.db.url, "-c",
                                      "SELECT csmcp.audit_append('key:c%d', 'tools/call', NULL, "
                                      "'{}', 'ok', 1, NULL) FROM generate_series(1, 50)" % i],
                                     stdout=su.subprocess.DEVNULL)
                 for i in range(4)]
        for p in procs:
            self.assertEqual(p.wait(60), 0)
        r = self.verify()
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertIn("205 rows verified", r.stdout)


class ServerRole(lib.TestCase):
    """The server's runtime role (csmcp_app) can append to the audit trail only through the
    SECURITY DEFINER functions and read it, nothing else: no UPDATE/DELETE, no direct INSERT,
    no disabling the triggers. Needs the cluster admin URL that `scripts/dev test` exports."""

    @classmethod
    def setUpClass(cls):
        cls.admin = lib.need_env("CSMCP_PG_ADMIN_URL")
        su.psql(cls.admin, "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = "
                "'csmcp_app') THEN CREATE ROLE csmcp_app LOGIN; END IF; END $$;")
        cls.name = "csmcp_sec_role_%s" % os.urandom(4).hex()
        su.psql(cls.admin, 'CREATE DATABASE "%s";' % cls.name)
        cls.owner_url = su.with_db(cls.admin, cls.name)
        su.apply_security_schema(cls.owner_url)
        u = su.urllib.parse.urlsplit(cls.owner_url)
        host = u.netloc.split("@", 1)[-1]
        cls.app_url = su.urllib.parse.urlunsplit((u.scheme, "csmcp_app@" + host, u.path, u.query,
                                                  ""))

    @classmethod
    def tearDownClass(cls):
        su.psql(su.with_db(cls.admin, "postgres"),
                'DROP DATABASE IF EXISTS "%s" WITH (FORCE);' % cls.name, check=False)

    def app(self, sql):
        return su.psql(self.app_url, sql, check=False)

    def test_append_and_read_allowed(self):
        r = self.app("SELECT csmcp.audit_append_batch('[{\"principal\":\"key:x\",\"method\":"
                     "\"tools/call\",\"outcome\":\"ok\",\"latency_ms\":1}]')")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.app("SELECT count(*) FROM audit_log")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.app("SELECT count(*) FROM api_keys")
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_everything_else_refused(self):
        self.app("SELECT csmcp.audit_append_batch('[{\"principal\":\"key:y\",\"method\":\"m\","
                 "\"outcome\":\"ok\",\"latency_ms\":1}]')")
        for stmt in ("UPDATE audit_log SET outcome = 'x'", "DELETE FROM audit_log",
                     "TRUNCATE audit_log", "ALTER TABLE audit_log DISABLE TRIGGER ALL",
                     "INSERT INTO audit_log (id, created_at, principal, method, outcome, "
                     "latency_ms, prev_hash, hash) VALUES (999, now(), 'a', 'b', 'c', 0, "
                     "repeat('0', 64), repeat('0', 64))",
                     "UPDATE audit_head SET last_id = 0", "INSERT INTO api_keys VALUES "
                     "('abcdefgh', 'n', repeat('0', 64), '{admin}')",
                     "UPDATE api_keys SET scopes = '{admin}'", "SELECT * FROM secrets"):
            r = self.app(stmt)
            self.assertNotEqual(r.returncode, 0, stmt)
            self.assertRegex(r.stderr, "permission denied|must be owner|append-only", stmt)

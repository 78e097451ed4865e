"""Start-up secrets: the session HMAC key comes from the environment, a file or systemd
credentials ($CREDENTIALS_DIRECTORY); a weak or world-readable key stops the worker with a clear
message that never quotes the key."""
import os
import re
import shutil
import tempfile

import lib
import sec_util as su


def start_failing(env=None, conf=None):
    d = lib.Csmcpd(workers=1, env=env, conf=conf)
    d.start(wait_ready=False)
    return d


class SessionSecret(lib.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="csmcp-sec-cred-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def expect_refusal(self, d, pattern, secret):
        try:
            lib.wait_until(lambda: re.search(pattern, open(d.log_path, "rb").read()), 20,
                           what=pattern.decode())
            st = None
            try:
                st = d.admin("/ready")[0]
            except OSError:
                pass
            self.assertNotEqual(st, 200)
            self.assertNotIn(secret.encode(), open(d.log_path, "rb").read())
        finally:
            d.stop()

    def test_weak_key_from_environment_refused(self):
        for weak in ("changeme-changeme-changeme-changeme", "a" * 64):
            d = start_failing(env={"CSMCP_SESSION_SECRET": weak})
            self.expect_refusal(d, rb"session secret.*(too predictable|too short|refused)", weak)

    def test_short_key_refused(self):
        d = start_failing(env={"CSMCP_SESSION_SECRET": "s3cr3t"})
        self.expect_refusal(d, rb"session secret.*too short", "s3cr3t")

    def test_world_readable_file_refused(self):
        p = os.path.join(self.dir, "session.key")
        key = su.strong_key()
        with open(p, "w") as f:
            f.write(key)
        os.chmod(p, 0o644)
        d = start_failing(env={"CSMCP_SESSION_SECRET": ""},
                          conf={"mcp": {"session_secret_file": p}})
        self.expect_refusal(d, rb"chmod 600", key)

    def test_key_from_credentials_directory(self):
        p = os.path.join(self.dir, "session.key")
        with open(p, "w") as f:
            f.write(su.strong_key() + "\n")
        os.chmod(p, 0o600)
        d = lib.Csmcpd(workers=1, env={"CSMCP_SESSION_SECRET": "",
                                       "CREDENTIALS_DIRECTORY": self.dir},
                       conf={"mcp": {"session_secret_file": "session.key"}})
        with d:
            s = d.session()
            self.assertTrue(s.session_id)
            s.close()

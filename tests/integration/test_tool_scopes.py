"""Scopes and rate-limit classes of a tool whose "action" mixes reads and writes
(TOOLS.md: the scope of the action actually requested is checked, not the strongest one), through
csmcpd with API keys, using the fixture tool test_action_scopes (worker/tools/fixtures/
test_action_scopes.json: scope write, action_scopes read_op read, admin_op admin)."""
import lib
import sec_util as su

TOOL = "test_action_scopes"


class ActionScopes(lib.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = lib.Csmcpd(workers=2, auth=True, fixtures=True, conf={"ratelimit": {
            "key_per_minute": 1000, "tool_per_minute": 4, "write_per_minute": 2}})
        cls.d.start()

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()

    def call(self, token, action, n=1):
        s = lib.McpSession(self.d.port, token=token)
        try:
            return [s.request_raw("tools/call", {"name": TOOL, "arguments": {"action": action}})
                    for _ in range(n)]
        finally:
            s.close()

    def assert_ok(self, r, action):
        st, _, msgs = r
        self.assertEqual(st, 200, msgs)
        self.assertEqual(msgs[-1]["result"]["structuredContent"], {"action": action})

    def assert_refused(self, r, scope):
        st, h, _ = r
        self.assertEqual(st, 403)
        www = h.get("www-authenticate", "")
        self.assertIn('error="insufficient_scope"', www)
        self.assertIn('scope="%s"' % scope, www)

    def test_read_key_may_run_only_the_read_action(self):
        tok = su.create_key(self.d.conf_path, "read", "act-read")
        self.assert_ok(self.call(tok, "read_op")[0], "read_op")
        self.assert_refused(self.call(tok, "write_op")[0], "write")
        self.assert_refused(self.call(tok, "admin_op")[0], "admin")

    def test_write_key_is_refused_the_admin_action(self):
        tok = su.create_key(self.d.conf_path, "write", "act-write")
        self.assert_ok(self.call(tok, "read_op")[0], "read_op")
        self.assert_ok(self.call(tok, "write_op")[0], "write_op")
        self.assert_refused(self.call(tok, "admin_op")[0], "admin")

    def test_rate_class_follows_the_action(self):
        # read_op is in the read class (tool_per_minute 4), write_op in the write class (2)
        tok = su.create_key(self.d.conf_path, "read,write", "act-rl-read")
        self.assertEqual([x[0] for x in self.call(tok, "read_op", 5)], [200] * 4 + [429])
        tok = su.create_key(self.d.conf_path, "read,write", "act-rl-write")
        r = self.call(tok, "write_op", 3)
        self.assertEqual([x[0] for x in r], [200, 200, 429])
        self.assertEqual(r[-1][2][0]["error"]["data"]["limit_per_minute"], 2)

"""Issue 21 / TOOLS.md: a tool that mixes reads and writes checks the scope of the call actually
requested, never the strongest one (listing needs read).

Walks every tool declaration (worker/tools/<category>/*.json, the registry's source):
  * static: every value of an "action" enum whose name says it only reads (get*, list*, search,
    recommend, analytics, children, rollup, measure_*) needs read; action_scopes and
    argument_scopes name real actions/arguments; a tool whose write is selected by an argument
    (manage_lifecycle_stages' new_stage) declares it with argument_scopes;
  * live, against a real csmcpd with auth: a read key calling each action with {"action": a} is
    refused with HTTP 403 exactly when the declared scope of that action is above read, and for
    argument_scopes, exactly when the argument is passed; a write key may run the write.
"""
import glob
import json
import os
import re

import lib
import sec_util as su

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LEVEL = {"read": 0, "write": 1, "admin": 2}
READ_NAMES = re.compile(r"^(get|list|search|recommend|analytics|children|rollup|measure)(_|$)")


def declarations():
    out = []
    for path in sorted(glob.glob(os.path.join(ROOT, "worker", "tools", "*", "*.json"))):
        if os.path.basename(os.path.dirname(path)) == "fixtures":
            continue
        with open(path) as f:
            d = json.load(f)
        if "name" in d and not d.get("fixture"):
            out.append(d)
    return out


def action_enum(d):
    a = d["inputSchema"].get("properties", {}).get("action")
    return a.get("enum") if isinstance(a, dict) else None


def need(d, action):
    return (d.get("action_scopes") or {}).get(action, d["scope"])


class ActionScopesDeclared(lib.TestCase):
    def test_read_named_actions_need_read(self):
        checked = 0
        for d in declarations():
            for a in action_enum(d) or []:
                if READ_NAMES.match(a):
                    checked += 1
                    self.assertEqual(need(d, a), "read", "%s action %s reads but needs %s" %
                                     (d["name"], a, need(d, a)))
        self.assertGreater(checked, 20)

    def test_scope_maps_are_consistent(self):
        for d in declarations():
            enum = action_enum(d) or []
            for a in d.get("action_scopes") or {}:
                self.assertIn(a, enum, d["name"])
            for arg, sc in (d.get("argument_scopes") or {}).items():
                self.assertIn(arg, d["inputSchema"]["properties"], d["name"])
                self.assertGreater(LEVEL[sc], LEVEL[d["scope"]], d["name"])

    def test_lifecycle_listing_is_a_read(self):
        d = [x for x in declarations() if x["name"] == "manage_lifecycle_stages"][0]
        self.assertEqual(d["scope"], "read")
        self.assertEqual(d["argument_scopes"], {"new_stage": "write"})


class ActionScopesLive(lib.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = lib.Csmcpd(workers=1, auth=True, conf={"ratelimit": {"enabled": False}}).start()
        cls.read = su.create_key(cls.d.conf_path, "read", "act-read")
        cls.write = su.create_key(cls.d.conf_path, "read,write", "act-write")
        cls.client = lib.psql(lib.database_url(), "SELECT min(client_id) FROM accounts WHERE "
                                                "lifecycle_stage <> 'churned'")

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()

    def status(self, token, name, args):
        s = lib.McpSession(self.d.port, token=token)
        try:
            st, _, msgs = s.request_raw("tools/call", {"name": name, "arguments": args})
            return st, msgs
        finally:
            s.close()

    def test_every_action_is_checked_by_its_own_scope(self):
        calls = 0
        for d in declarations():
            enum = action_enum(d)
            if not enum:
                continue
            for a in enum:
                st, msgs = self.status(self.read, d["name"], {"action": a})
                calls += 1
                if need(d, a) == "read":
                    self.assertEqual(st, 200, "%s %s needs read: %s" % (d["name"], a, msgs))
                else:
                    self.assertEqual(st, 403, "%s %s needs %s but a read key got %s" %
                                     (d["name"], a, need(d, a), st))
        self.assertGreater(calls, 60)

    def test_lifecycle_report_with_read_transition_with_write(self):
        st, msgs = self.status(self.read, "manage_lifecycle_stages", {})
        self.assertEqual(st, 200, msgs)
        res = [m for m in msgs if "result" in m][0]["result"]
        self.assertFalse(res.get("isError"), res)
        st, _ = self.status(self.read, "manage_lifecycle_stages", {"client_id": self.client})
        self.assertEqual(st, 200)
        stage = lib.psql(lib.database_url(), "SELECT lifecycle_stage FROM accounts WHERE client_id = '%s'"
                         % self.client)
        st, _ = self.status(self.read, "manage_lifecycle_stages",
                            {"client_id": self.client, "new_stage": "at_risk" if stage != "at_risk" else "active",
                             "reason": "read key must not move it"})
        self.assertEqual(st, 403)
        self.assertEqual(lib.psql(lib.database_url(), "SELECT lifecycle_stage FROM accounts WHERE client_id = '%s'"
                                  % self.client), stage)
        # a write key moves it (and back), so the write path is really behind the check
        other = "at_risk" if stage != "at_risk" else "active"
        for to in (other, stage):
            st, msgs = self.status(self.write, "manage_lifecycle_stages",
                                   {"client_id": self.client, "new_stage": to, "reason": "scope test"})
            self.assertEqual(st, 200, msgs)
            res = [m for m in msgs if "result" in m][0]["result"]
            self.assertFalse(res.get("isError"), res)
            self.assertEqual(lib.psql(lib.database_url(), "SELECT lifecycle_stage FROM accounts WHERE "
                                      "client_id = '%s'" % self.client), to)

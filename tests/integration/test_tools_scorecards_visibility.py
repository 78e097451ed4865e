"""Tool visibility (issue 24): tools/list shows a principal only the tools its scopes allow (a tool
with action_scopes when any of its actions is allowed), and mcp.read_only hides every tool without
a read call and refuses calls needing write or admin before they run.

The expected sets are computed here from the declarations (worker/tools/<category>/*.json), not
from the server: a read key sees exactly the tools with a read call, a write key those with a read
or write call, an admin key all; under mcp.read_only even an admin key sees only the tools with a
read call."""
import glob
import json
import os

import lib
import sec_util as su

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LEVEL = {"read": 0, "write": 1, "admin": 2}


def declared_needs():
    """{tool name: set of scopes its calls can need} from the JSON declarations (no fixtures)."""
    out = {}
    for path in glob.glob(os.path.join(ROOT, "worker", "tools", "*", "*.json")):
        if os.path.basename(os.path.dirname(path)) == "fixtures":
            continue
        with open(path) as f:
            d = json.load(f)
        if "name" not in d or d.get("fixture"):
            continue
        acts = d.get("action_scopes")
        if not acts:
            out[d["name"]] = {d["scope"]}
            continue
        schema = d["inputSchema"]
        enum = schema.get("properties", {}).get("action", {}).get("enum")
        needs = set()
        if not enum or "action" not in schema.get("required", []):
            needs.add(d["scope"])
        for a in enum or []:
            needs.add(acts.get(a, d["scope"]))
        out[d["name"]] = needs
    return out


def allowed(granted, need):
    return LEVEL[granted] >= LEVEL[need]


def listed(session):
    names, cursor = [], None
    while True:
        r = session.request("tools/list", {"cursor": cursor} if cursor else {})
        names += [t["name"] for t in r["tools"]]
        cursor = r.get("nextCursor")
        if not cursor:
            return names


class ToolVisibility(lib.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.needs = declared_needs()
        # a small page so that the filtered list spans several pages
        cls.d = lib.Csmcpd(workers=1, auth=True, conf={"mcp": {"page_size": 7}}).start()
        cls.keys = {s: su.create_key(cls.d.conf_path, s, "vis-" + s)
                    for s in ("read", "write", "admin")}

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()

    def expected(self, granted, read_only=False):
        return {n for n, needs in self.needs.items()
                if any(allowed(granted, k) and (not read_only or k == "read") for k in needs)}

    def test_each_scope_sees_exactly_its_tools(self):
        seen = {}
        for granted, tok in self.keys.items():
            s = self.d.session(token=tok)
            try:
                names = listed(s)
            finally:
                s.close()
            self.assertEqual(len(names), len(set(names)), "a tool listed twice across pages")
            self.assertEqual(set(names), self.expected(granted), granted)
            seen[granted] = set(names)
        self.assertLess(len(seen["read"]), len(seen["write"]))
        self.assertLess(len(seen["write"]), len(seen["admin"]))
        self.assertEqual(seen["admin"], set(self.needs))
        # spot checks: a write-only tool, an admin-only tool, a mixed tool with a read action
        self.assertEqual(self.needs["register_client"], {"write"})
        self.assertNotIn("register_client", seen["read"])
        self.assertIn("register_client", seen["write"])
        self.assertEqual(self.needs["erase_client_data"], {"admin"})
        self.assertNotIn("erase_client_data", seen["write"])
        self.assertIn("erase_client_data", seen["admin"])
        self.assertIn("read", self.needs["handle_support_ticket"])
        self.assertIn("write", self.needs["handle_support_ticket"])
        self.assertIn("handle_support_ticket", seen["read"])


class ReadOnlyServer(lib.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.needs = declared_needs()
        cls.d = lib.Csmcpd(workers=1, auth=True, conf={"mcp": {"read_only": True}}).start()
        cls.admin = su.create_key(cls.d.conf_path, "read,write,admin", "vis-ro-admin")
        cls.s = cls.d.session(token=cls.admin)

    @classmethod
    def tearDownClass(cls):
        cls.s.close()
        cls.d.stop()

    def test_admin_key_sees_only_tools_with_a_read_call(self):
        names = listed(self.s)
        self.assertEqual(set(names), {n for n, k in self.needs.items() if "read" in k})
        self.assertNotIn("register_client", names)
        self.assertNotIn("erase_client_data", names)
        self.assertIn("handle_support_ticket", names)
        self.assertIn("get_client_overview", names)

    def test_write_tool_refused_at_dispatch(self):
        with self.assertRaises(lib.McpError) as cm:
            self.s.call_tool("register_client", {"client_name": "RO Test", "company_name": "RO"})
        e = cm.exception
        self.assertEqual(e.status, 200)
        self.assertEqual(e.code, -32602)
        self.assertEqual(e.message, "Tool register_client is not available: this server is "
                                    "read-only (mcp.read_only = true) and the call needs the "
                                    "write scope")
        self.assertEqual(e.data, {"tool": "register_client", "read_only": True,
                                  "required_scope": "write"})

    def test_write_action_of_mixed_tool_refused_read_action_served(self):
        with self.assertRaises(lib.McpError) as cm:
            self.s.call_tool("handle_support_ticket", {"action": "create"})
        self.assertEqual(cm.exception.code, -32602)
        self.assertIn("handle_support_ticket (action create) is not available: this server is "
                      "read-only", cm.exception.message)
        r = self.s.call_tool("handle_support_ticket", {"action": "list"})
        self.assertNotIn("read-only", json.dumps(r))

    def test_read_tool_served(self):
        r = self.s.call_tool("list_clients", {"limit": 1})
        self.assertFalse(r.get("isError"), r)


class ScorecardsScopes(lib.TestCase):
    """The scorecards tools' own scopes: a read key may resolve and explain, not override."""

    @classmethod
    def setUpClass(cls):
        cls.d = lib.Csmcpd(workers=1, auth=True).start()
        cls.keys = {"read": su.create_key(cls.d.conf_path, "read", "vis-sc-read")}

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()

    def test_read_key_refused_override(self):
        s = self.d.session(token=self.keys["read"])
        try:
            st, _, _ = s.request_raw("tools/call", {"name": "override_health_score", "arguments": {
                "action": "clear", "client_id": "nobody"}})
            self.assertEqual(st, 403)
            r = s.call_tool("resolve_account", {"query": "zzqvxkpw"})
            self.assertFalse(r.get("isError"), r)
        finally:
            s.close()

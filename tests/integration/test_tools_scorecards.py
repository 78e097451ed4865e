"""The scorecards category (issue 24) through csmcpd over MCP on hand-computed fixtures:
resolve_account (pg_trgm fuzzy lookup: typos, partial names, e-mail domains, ranking, limit,
validation). The expected similarities are computed here from the trigram definition (the
rules in the tool's JSON), independently of PostgreSQL."""
import re

import data_util as du
import lib


def trigrams(s):
    out = set()
    for w in re.findall(r"[a-z0-9]+", s.lower()):
        w = "  " + w + " "
        out.update(w[i:i + 3] for i in range(len(w) - 2))
    return out


def similarity(a, b):
    ta, tb = trigrams(a), trigrams(b)
    return round(len(ta & tb) / len(ta | tb), 3)


class ScorecardsTest(lib.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.url = lib.database_url()
        cls.p = du.prefix()
        p = cls.p
        du.psql(cls.url, (
            "INSERT INTO accounts (client_id, client_name, company_name, tier, lifecycle_stage, "
            "primary_contact_email, csm_assigned, health_score) VALUES "
            "('{p}_1', 'Quandrix Widgets', 'Quandrix Widgets Ltd', 'enterprise', 'active', "
            " 'ops@quandrix.test', 'Sc Csm', 71), "
            "('{p}_2', 'Quandrix Holdings', 'Quandrix Holdings plc', 'starter', 'at_risk', "
            " NULL, NULL, 35), "
            "('{p}_3', 'Vellmora Foods', 'Vellmora Foods Inc', 'standard', 'active', "
            " 'jo@vellmora.test', 'Sc Csm', 60);"
            "INSERT INTO contacts (client_id, name, email) VALUES "
            "('{p}_3', 'Sam Brightpath', 'sam@brightpathx.test');").format(p=p))
        cls.d = lib.Csmcpd(workers=1).start()
        cls.s = cls.d.session()
        cls.schemas, cursor = {}, None
        while True:
            r = cls.s.request("tools/list", {"cursor": cursor} if cursor else {})
            cls.schemas.update({t["name"]: t.get("outputSchema") for t in r["tools"]})
            cursor = r.get("nextCursor")
            if not cursor:
                break

    @classmethod
    def tearDownClass(cls):
        cls.s.close()
        cls.d.stop()
        du.psql(cls.url, "DELETE FROM accounts WHERE client_id LIKE '%s\\_%%'" % cls.p)

    def cid(self, k):
        return "%s_%s" % (self.p, k)

    def call(self, name, args):
        out = self.s.call_ok(name, args)
        self.assertEqual(du.schema_errors(self.schemas[name], out), [],
                         "%s output does not match its outputSchema" % name)
        self.assertIsInstance(out.get("summary"), str)
        return out

    def fail_text(self, name, args):
        r = self.s.call_tool(name, args)
        self.assertTrue(r.get("isError"), "%s(%s) should fail: %s" % (name, args, r))
        return r["content"][0]["text"]

    def invalid(self, name, args, where=None):
        try:
            r = self.s.call_tool(name, args)
        except lib.McpError as e:
            self.assertEqual(e.code, -32602, "%s(%s)" % (name, args))
            return
        self.assertTrue(r.get("isError"), "%s(%s) should be rejected: %s" % (name, args, r))
        text = r["content"][0]["text"]
        self.assertIn("Invalid arguments for tool %s" % name, text)
        if where:
            self.assertIn("arguments." + where, text)

    # ------------------------------------------------------------ resolve_account

    def test_resolve_typo_finds_the_account_first(self):
        out = self.call("resolve_account", {"query": "  Quandrix   Widgts "})
        self.assertEqual(out["query"], "quandrix widgts")
        m = out["matches"]
        self.assertEqual(m[0]["client_id"], self.cid(1))
        self.assertEqual(m[0]["matched_field"], "client_name")
        self.assertEqual(m[0]["matched_value"], "Quandrix Widgets")
        self.assertEqual(m[0]["similarity"], similarity("quandrix widgts", "quandrix widgets"))
        self.assertEqual(m[0]["similarity"], 0.737)  # 14 shared of 19 trigrams
        self.assertEqual(m[0]["tier"], "enterprise")
        self.assertEqual(m[0]["health_score"], 71)
        self.assertEqual(m[0]["csm_assigned"], "Sc Csm")
        # the sibling account shares "quandrix": second, with its own similarity
        self.assertEqual(m[1]["client_id"], self.cid(2))
        self.assertEqual(m[1]["similarity"], similarity("quandrix widgts", "quandrix holdings"))
        self.assertEqual(out["total_matches"], 2)
        self.assertIn("best: Quandrix Widgets (%s, client_name Quandrix Widgets, similarity "
                      "0.737)" % self.cid(1), out["summary"])

    def test_resolve_partial_name_ranks_by_similarity(self):
        out = self.call("resolve_account", {"query": "quandrix"})
        got = [(x["client_id"], x["matched_value"], x["similarity"]) for x in out["matches"]]
        self.assertEqual(got, [
            (self.cid(1), "Quandrix Widgets", similarity("quandrix", "quandrix widgets")),
            (self.cid(2), "Quandrix Holdings", similarity("quandrix", "quandrix holdings"))])
        self.assertEqual(got[0][2], 0.529)  # 9 / 17
        self.assertEqual(got[1][2], 0.5)    # 9 / 18
        self.assertEqual(out["total_matches"], 2)
        out = self.call("resolve_account", {"query": "quandrix", "limit": 1})
        self.assertEqual([x["client_id"] for x in out["matches"]], [self.cid(1)])
        self.assertEqual(out["total_matches"], 2)

    def test_resolve_by_contact_email_domain(self):
        out = self.call("resolve_account", {"query": "brightpathx.test"})
        self.assertEqual(out["total_matches"], 1)
        m = out["matches"][0]
        self.assertEqual((m["client_id"], m["matched_field"], m["matched_value"]),
                         (self.cid(3), "contact_email", "sam@brightpathx.test"))
        self.assertEqual(m["similarity"], similarity("brightpathx.test", "sam@brightpathx.test"))
        out = self.call("resolve_account", {"query": "jo@vellmora.test"})
        m = out["matches"][0]
        self.assertEqual((m["client_id"], m["matched_field"], m["similarity"]),
                         (self.cid(3), "contact_email", 1.0))

    def test_resolve_no_match(self):
        out = self.call("resolve_account", {"query": "zzqvxkpw"})
        self.assertEqual(out["matches"], [])
        self.assertEqual(out["total_matches"], 0)
        self.assertEqual(out["summary"], 'no account resembles "zzqvxkpw"')

    def test_resolve_validation(self):
        self.invalid("resolve_account", {}, None)
        self.invalid("resolve_account", {"query": "a"}, "query")
        self.invalid("resolve_account", {"query": "acme", "limit": 26}, "limit")
        self.invalid("resolve_account", {"query": "acme", "limit": 0}, "limit")
        self.invalid("resolve_account", {"query": "acme", "fuzzy": True})
        self.assertIn("query: at least 2 characters",
                      self.fail_text("resolve_account", {"query": " a  "}))

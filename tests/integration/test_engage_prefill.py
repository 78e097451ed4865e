"""Issue 21: the monitor process fills analyze_engagement_patterns' day tables ahead of the
day's first caller (csmcp.engage_window_prefill, docs/monitors.md section 1).

  * an all-accounts call notes its period once per UTC day (engage_window_used), also when the
    day table already exists; a read-only transaction notes and fills nothing;
  * the prefill fills, one period per call, the periods used in the last 7 days that today has
    no table for, most recently used first; a period last used 8 days ago is not kept; once all
    are filled it answers null; the filled tables equal the from-scratch computation
    (engage_window_check) and the tool's answer equals its _scratch reference;
  * the monitor's leader runs it: with every monitor disabled, today's table of a period used
    yesterday appears within seconds of the monitor process starting, and /metrics counts it."""
import json

import data_util as du
import lib


class EngagePrefill(lib.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.url = lib.database_url()

    def q(self, sql):
        return du.psql(self.url, sql)

    def keys_today(self):
        return self.q("SELECT coalesce(string_agg(v_days::text, ',' ORDER BY v_days), '') FROM engage_window_key "
                      "WHERE t = csmcp.today()")

    def reset(self, used):
        self.q("SELECT csmcp.engage_window_clear(); DELETE FROM engage_window_used; " + "".join(
            "INSERT INTO engage_window_used VALUES (%d, csmcp.today() - %d);" % u for u in used))

    def test_prefill_fills_recently_used_periods(self):
        self.reset([(90, 1), (30, 3), (14, 8)])
        first = json.loads(self.q("SELECT csmcp.engage_window_prefill()"))
        self.assertEqual(first["lookback_period_days"], 90)   # the most recently used first
        self.assertEqual(self.keys_today(), "90")
        second = json.loads(self.q("SELECT csmcp.engage_window_prefill()"))
        self.assertEqual(second["lookback_period_days"], 30)
        self.assertEqual(self.q("SELECT csmcp.engage_window_prefill() IS NULL"), "t")   # 14: 8 days ago
        self.assertEqual(self.keys_today(), "30,90")
        self.assertEqual(self.q("SELECT count(*) FROM csmcp.engage_window_check()"), "0")
        for days in (90, 30):
            a = json.dumps({"lookback_period_days": days})
            self.assertEqual(self.q("SELECT csmcp.tool_analyze_engagement_patterns('%s', 't') = "
                                    "csmcp.analyze_engagement_patterns_scratch('%s', 't')" % (a, a)), "t")
        # a caller notes its period (once a day) and fills what is missing
        self.q("SELECT csmcp.tool_analyze_engagement_patterns('{\"lookback_period_days\": 45}', 't')")
        self.assertEqual(self.q("SELECT last_day = csmcp.today() FROM engage_window_used WHERE v_days = 45"), "t")
        self.assertEqual(self.keys_today(), "30,45,90")
        # ... also when the table already exists (90 was last used yesterday)
        self.q("SELECT csmcp.tool_analyze_engagement_patterns('{}', 't')")
        self.assertEqual(self.q("SELECT last_day = csmcp.today() FROM engage_window_used WHERE v_days = 90"), "t")
        self.assertEqual(self.q("SELECT csmcp.engage_window_prefill() IS NULL"), "t")
        # in a read-only transaction nothing is noted or filled (the caller computes without it)
        out = self.q("BEGIN READ ONLY; SELECT csmcp.engage_window_ensure(21, csmcp.today()); COMMIT")
        self.assertIn("f", out.split())
        self.assertEqual(self.q("SELECT count(*) FROM engage_window_used WHERE v_days = 21"), "0")
        self.assertEqual(self.keys_today(), "30,45,90")

    def test_prefill_respects_the_four_periods_a_day(self):
        self.reset([(10, 1), (11, 1), (12, 1), (13, 1), (15, 1)])
        filled = [json.loads(self.q("SELECT csmcp.engage_window_prefill()"))["lookback_period_days"] for _ in range(4)]
        self.assertEqual(filled, [10, 11, 12, 13])
        self.assertEqual(self.q("SELECT csmcp.engage_window_prefill() IS NULL"), "t")
        self.assertEqual(self.keys_today(), "10,11,12,13")
        self.assertEqual(self.q("SELECT count(*) FROM csmcp.engage_window_check()"), "0")

    def test_monitor_leader_prefills(self):
        saved = self.q("SELECT json_agg(json_build_object('name', name, 'enabled', enabled)) FROM monitors")
        self.q("UPDATE monitors SET enabled = false")
        self.reset([(90, 1)])
        d = lib.Csmcpd(workers=1, conf={"monitor": {"enabled": True, "tick_ms": 200}}).start()
        try:
            lib.wait_until(lambda: self.keys_today() == "90", 20, what="the monitor's prefill of today's 90-day table")
            self.assertEqual(self.q("SELECT count(*) FROM csmcp.engage_window_check()"), "0")
            lib.wait_until(lambda: 'csmcp_engage_prefill_total{result="filled"}' in
                           lib.http_request(d.admin_port, "GET", "/metrics")[2].decode(), 15, what="prefill metric")
        finally:
            d.stop()
            self.q("UPDATE monitors m SET enabled = (x->>'enabled')::boolean FROM json_array_elements('%s'::json) x "
                   "WHERE m.name = x->>'name'" % saved.replace("'", "''"))
            self.q("SELECT csmcp.engage_window_clear(); DELETE FROM engage_window_used")


if __name__ == "__main__":
    lib.main()

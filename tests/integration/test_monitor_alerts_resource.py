"""The monitors' alerts as MCP resources (issue 18 §4): resources/read of csmcp://alerts and
csmcp://alerts/<client_id>, and a session subscribed to them receiving
notifications/resources/updated on its standalone GET stream when a run on another session (and
worker) opens an alert for that account, within one monitor tick."""
import json
import time

import data_util as du
import lib


class AlertsResourceTest(lib.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.url = lib.database_url()
        cls.p = du.prefix()
        cls.saved = du.psql(cls.url, "SELECT json_agg(json_build_object('name', name, 'enabled', enabled)) FROM monitors")
        du.psql(cls.url, "UPDATE monitors SET enabled = false")
        du.psql(cls.url, "INSERT INTO accounts (client_id, client_name, company_name, health_score, lifecycle_stage) VALUES "
                         "('%s_a', 'Alert A', 'Alert A Inc', 80, 'active'), ('%s_b', 'Alert B', 'Alert B Inc', 80, 'active')"
                         % (cls.p, cls.p))
        cls.d = lib.Csmcpd(workers=2, conf={"monitor": {"enabled": True, "tick_ms": 200}}).start()
        lib.wait_until(lambda: du.psql(cls.url, "SELECT csmcp.monitor_leader_info()->>'up'") == "true", 15,
                       what="a monitor leader")

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()
        du.psql(cls.url, "UPDATE monitors m SET enabled = (x->>'enabled')::boolean FROM json_array_elements('%s'::json) x "
                         "WHERE m.name = x->>'name'" % cls.saved.replace("'", "''"))
        du.psql(cls.url, "DELETE FROM accounts WHERE client_id LIKE '%s_%%'" % cls.p)

    def test_subscribe_read_and_notify(self):
        a, b = self.p + "_a", self.p + "_b"
        s = self.d.session()
        s.request("resources/subscribe", {"uri": "csmcp://alerts/" + a})
        s.request("resources/subscribe", {"uri": "csmcp://alerts"})
        st = lib.SseStream(self.d.port, "GET", dict(s.headers(), Accept="text/event-stream"), timeout=15)
        self.assertEqual(st.status, 200)
        st.next_event()  # priming event
        other = self.d.session()
        try:
            # a's health falls: churn_risk_monitor opens an alert for a (run on the other session)
            du.psql(self.url, "UPDATE accounts SET health_score = 40 WHERE client_id = '%s'" % a)
            t0 = time.monotonic()
            out = other.call_ok("trigger_worker_now", {"worker_name": "churn_risk_monitor"})
            self.assertEqual(du.psql(self.url, "SELECT alert_id = ANY (ARRAY(SELECT jsonb_array_elements_text('%s'::jsonb)::bigint)) "
                                               "FROM monitor_alerts WHERE client_id = '%s' AND resolved_at IS NULL"
                                     % (json.dumps(out["data"]["opened_alert_ids"]), a)), "t")
            got = set()
            msgs, _ = st.messages_until(lambda m: m.get("method") == "notifications/resources/updated" and
                                        got.add(m["params"]["uri"]) is None and len(got) == 2, 5)
            took = time.monotonic() - t0
            self.assertEqual(got, {"csmcp://alerts", "csmcp://alerts/" + a}, msgs)
            self.assertLess(took, 2.0, "notified %.2f s after the run" % took)
            # read both resources
            r = s.request("resources/read", {"uri": "csmcp://alerts/" + a})
            c = r["contents"][0]
            self.assertEqual((c["uri"], c["mimeType"]), ("csmcp://alerts/" + a, "application/json"))
            body = json.loads(c["text"])
            self.assertEqual([(x["monitor"], x["kind"], x["severity"]) for x in body["alerts"]],
                             [("churn_risk_monitor", "critical_risk", "critical")])
            allr = json.loads(s.request("resources/read", {"uri": "csmcp://alerts"})["contents"][0]["text"])
            self.assertIn(a, [x["client_id"] for x in allr["alerts"]])
            self.assertEqual(allr["open_alerts"], int(du.psql(self.url, "SELECT count(*) FROM monitor_alerts WHERE resolved_at IS NULL")))
            # an account without alerts reads empty; an unknown one is not found
            self.assertEqual(json.loads(s.request("resources/read", {"uri": "csmcp://alerts/" + b})["contents"][0]["text"])["alerts"], [])
            with self.assertRaises(lib.McpError) as e:
                s.request("resources/read", {"uri": "csmcp://alerts/%s_nope" % self.p})
            self.assertEqual(e.exception.code, -32002)
            # the same run again opens nothing: no new notification for a
            du.psql(self.url, "UPDATE accounts SET health_score = 45 WHERE client_id = '%s'" % a)
            other.call_ok("trigger_worker_now", {"worker_name": "churn_risk_monitor"})
            msgs, _ = st.messages_until(lambda m: False, 1.5)
            self.assertNotIn("csmcp://alerts/" + a, [m["params"]["uri"] for m in msgs
                                                     if m.get("method") == "notifications/resources/updated"])
            print("\n    subscribed session notified %.2f s after the triggered run" % took)
        finally:
            st.close()
            other.close()
            s.close()


if __name__ == "__main__":
    lib.main()

"""Usage import from a Mixpanel-compatible raw export (issue 18 §6), pulled by the leading monitor
process from a local fake export server: events mapped to usage events (event id "mp:" +
$insert_id, account from the client property, feature from properties.feature or the event
name), stored through the ingest path (usage_daily rollups), unmappable lines counted by reason,
and the next pull - which starts at the last pull's end date - stores nothing twice."""
import base64
import http.server
import json
import os
import tempfile
import threading
import time
import urllib.parse

import data_util as du
import lib


class MixpanelImportTest(lib.TestCase):
    def test_pull_maps_stores_and_is_idempotent(self):
        url = lib.database_url()
        p = du.prefix()
        acc = p + "_mp"
        du.psql(url, "INSERT INTO accounts (client_id, client_name, company_name) VALUES ('%s', 'MP', 'MP Inc')" % acc)
        now = int(time.time())
        lines = [
            {"event": "Report Viewed", "properties": {"time": now - 60, "distinct_id": "u1", "$insert_id": p + "A", "client_id": acc}},
            {"event": "Anything", "properties": {"time": now - 30, "distinct_id": "u2", "$insert_id": p + "B", "client_id": acc,
                                                 "feature": "search", "quantity": 3}},
            {"event": "Report Viewed", "properties": {"time": now, "distinct_id": "u1", "$insert_id": p + "C", "client_id": p + "_nobody"}},
            {"event": "Report Viewed", "properties": {"time": now - 60, "distinct_id": "u1", "$insert_id": p + "A", "client_id": acc}},
        ]
        body = ("\n".join(json.dumps(l) for l in lines[:3]) + "\nnot json\n" + json.dumps(lines[3]) + "\n").encode()
        seen = []

        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                u = urllib.parse.urlparse(self.path)
                seen.append((u.path, dict(urllib.parse.parse_qsl(u.query)), self.headers.get("Authorization")))
                self.send_response(200)
                self.send_header("Content-Type", "application/x-ndjson")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        sec = tempfile.mkdtemp(prefix="csmcp-mp-")
        path = os.path.join(sec, "mixpanel")
        with open(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            f.write("mpsecret-%s\n" % p)
        first = int(du.psql(url, "SELECT coalesce(max(import_id), 0) FROM mixpanel_imports"))
        d = lib.Csmcpd(workers=1, conf={"monitor": {"enabled": True, "tick_ms": 200},
                                        "integrations": {"mixpanel_export_url": "http://127.0.0.1:%d/api/2.0/export" % srv.server_address[1],
                                                         "mixpanel_secret_file": path, "mixpanel_interval_s": 1}}).start()
        try:
            lib.wait_until(lambda: int(du.psql(url, "SELECT count(*) FROM mixpanel_imports WHERE import_id > %d AND status = 'ok'"
                                                    % first)) >= 2, 30, what="two pulls")
        finally:
            d.stop()
            srv.shutdown()
        rows = du.psql(url, "SELECT from_date, to_date, lines, inserted, duplicates, skipped FROM mixpanel_imports "
                            "WHERE import_id > %d AND status = 'ok' ORDER BY import_id LIMIT 2" % first).split("\n")
        r1, r2 = [r.split("|") for r in rows]
        self.assertEqual(r1[2:5], ["5", "2", "1"])   # A, B stored; A's repeat in the same export
        self.assertEqual(json.loads(r1[5]), {"client not found": 1, "unreadable line": 1})
        self.assertEqual(r2[2:5], ["5", "0", "3"])   # the next pull: nothing twice
        self.assertEqual(r2[0], r1[1], "the next pull starts at the last pull's end date")
        # the requests: the window and the API secret as the basic-auth user
        path0, q0, auth0 = seen[0]
        self.assertEqual(path0, "/api/2.0/export")
        self.assertEqual((q0["from_date"], q0["to_date"]), (r1[0], r1[1]))
        self.assertEqual(auth0, "Basic " + base64.b64encode(("mpsecret-%s:" % p).encode()).decode())
        ev = du.psql(url, "SELECT string_agg(event_id || ':' || user_id || ':' || feature_id || ':' || quantity, ',' ORDER BY event_id) "
                          "FROM usage_events WHERE client_id = '%s'" % acc)
        self.assertEqual(ev, "mp:%sA:u1:report_viewed:1.000,mp:%sB:u2:search:3.000" % (p, p))
        self.assertEqual(du.psql(url, "SELECT sum(events) || '|' || sum(active_users) FROM usage_daily WHERE client_id = '%s'" % acc),
                         "2|2")
        du.psql(url, "DELETE FROM accounts WHERE client_id = '%s'" % acc)


if __name__ == "__main__":
    lib.main()

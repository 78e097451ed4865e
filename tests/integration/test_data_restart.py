"""PostgreSQL restarted under load (a private cluster): in-flight and new calls fail with a clear
retryable error, never anything else; the pool reconnects by itself within seconds; no
acknowledged write is lost; no worker crashes."""
import datetime
import threading
import time

import lib

LOAD_SECONDS_BEFORE = 2.0
LOAD_SECONDS_AFTER = 5.0
THREADS = 4


class DataRestartTest(lib.TestCase):
    def test_postgres_restart_under_load(self):
        pg = lib.ScratchPostgres(databases=["csmcp"]).start()
        d = None
        try:
            r = lib.ctl_db(pg.url("csmcp"), "migrate")
            self.assertEqual(r.returncode, 0, r.stderr)
            lib.psql(pg.url("csmcp"), "INSERT INTO accounts (client_id, client_name, company_name) "
                    "VALUES ('rs_a', 'Restart', 'Restart Co')")
            d = lib.Csmcpd(workers=2, conf={
                "database": {"url": pg.url("csmcp"), "pool_size": 3, "queue_timeout_ms": 2000},
                "ratelimit": {"enabled": False}}).start()
            pids = lib.worker_pids(d.proc.pid)
            self.assertEqual(len(pids), 2)

            acked, errors, unexpected = [], [], []
            successes = []  # (monotonic time, thread)
            stop = threading.Event()
            lock = threading.Lock()

            def load(k):
                s = d.session()
                i = 0
                deadline = time.monotonic() + 60
                while not stop.is_set() and time.monotonic() < deadline:
                    i += 1
                    eid = "rs-%d-%d" % (k, i)
                    ts = datetime.datetime.now(datetime.timezone.utc).isoformat()
                    try:
                        if i % 3:
                            res = s.call_tool("ingest_usage_events", {"events": [{
                                "event_id": eid, "client_id": "rs_a", "occurred_at": ts,
                                "user_id": "u%d" % k, "feature": "restart"}]})
                        else:
                            res = s.call_tool("get_client_overview", {"client_id": "rs_a"})
                    except Exception as e:  # protocol error or HTTP failure: never acceptable
                        with lock:
                            unexpected.append(repr(e))
                        time.sleep(0.05)
                        continue
                    with lock:
                        if res.get("isError"):
                            errors.append(res["content"][0]["text"])
                        else:
                            successes.append(time.monotonic())
                            sc = res.get("structuredContent") or {}
                            if i % 3 and sc.get("inserted") == 1:
                                acked.append(eid)
                    time.sleep(0.005)
                s.close()

            threads = [threading.Thread(target=load, args=(k,)) for k in range(THREADS)]
            for t in threads:
                t.start()
            time.sleep(LOAD_SECONDS_BEFORE)
            pg.pg_ctl("restart", "-m", "fast")
            restarted = time.monotonic()
            time.sleep(LOAD_SECONDS_AFTER)
            stop.set()
            for t in threads:
                t.join(30)

            self.assertEqual(unexpected, [], "calls must fail as tool errors, not protocol errors")
            self.assertGreater(len(errors), 0, "the restart should have failed some calls")
            for e in errors:
                self.assertIn("temporarily unavailable, retry", e)
            after = [t for t in successes if t > restarted]
            self.assertTrue(after, "no successful call after the restart")
            self.assertLess(after[0] - restarted, 5.0, "pool took too long to recover")
            print("\n    restart: %d calls ok, %d failed (retryable), first success %.3f s after "
                  "pg_ctl restart returned, %d acknowledged writes" %
                  (len(successes), len(errors), after[0] - restarted, len(acked)))
            # Every acknowledged write is in the database.
            stored = set(lib.psql(pg.url("csmcp"), "SELECT event_id FROM usage_events").split())
            lost = [e for e in acked if e not in stored]
            self.assertEqual(lost, [])
            self.assertGreater(len(acked), 20)
            # Rollups agree with the raw events.
            self.assertEqual(lib.psql(pg.url("csmcp"), "SELECT sum(events) FROM usage_daily"),
                             str(len(stored)))
            # The workers survived (same processes) and report ready.
            self.assertEqual(lib.worker_pids(d.proc.pid), pids)
            st, _, _ = d.admin("/ready")
            self.assertEqual(st, 200)
        finally:
            if d:
                d.stop()
            pg.stop()


class DataStalledBackendTest(lib.TestCase):
    def test_stalled_backend_detected(self):
        """A backend that stops answering (SIGSTOP: a vanished host as seen from the worker)
        fails the call as retryable after statement_timeout + 5 s, and the pool reconnects."""
        import os
        import signal
        pg = lib.ScratchPostgres(databases=["csmcp"]).start()
        d = None
        stopped = []
        try:
            r = lib.ctl_db(pg.url("csmcp"), "migrate")
            self.assertEqual(r.returncode, 0, r.stderr)
            lib.psql(pg.url("csmcp"), "INSERT INTO accounts (client_id, client_name, company_name) "
                    "VALUES ('st_a', 'Stall', 'Stall Co')")
            d = lib.Csmcpd(workers=1, conf={
                "database": {"url": pg.url("csmcp"), "pool_size": 1, "statement_timeout_ms": 1000},
                "ratelimit": {"enabled": False}}).start()
            s = d.session()
            s.call_ok("get_client_overview", {"client_id": "st_a"})
            pids = lib.psql(pg.url("csmcp"), "SELECT pid FROM pg_stat_activity WHERE application_name "
                           "= 'csmcp-worker'").split()
            self.assertEqual(len(pids), 1)
            os.kill(int(pids[0]), signal.SIGSTOP)
            stopped.append(int(pids[0]))
            t0 = time.monotonic()
            res = s.call_tool("get_client_overview", {"client_id": "st_a"})
            took = time.monotonic() - t0
            self.assertTrue(res.get("isError"))
            self.assertIn("temporarily unavailable, retry", res["content"][0]["text"])
            self.assertGreater(took, 5.5)
            self.assertLess(took, 10)
            ok = lib.wait_until(lambda: not s.call_tool(
                "get_client_overview", {"client_id": "st_a"}).get("isError"), 5,
                interval=0.2, what="a successful call on a new connection")
            self.assertTrue(ok)
            s.close()
        finally:
            for pid in stopped:
                try:
                    os.kill(pid, signal.SIGCONT)
                except OSError:
                    pass
            if d:
                d.stop()
            pg.stop()

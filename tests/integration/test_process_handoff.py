"""Reloads hand idle keep-alive connections to the new generation instead of closing them
(worker/http.c http_drain_handoff, HANDOFF messages with SCM_RIGHTS through csmcpd), so a client
that never resends loses nothing across reloads:

- idle connections with MCP sessions, opened on generation g, are answered on the very same
  sockets after the whole of generation g has exited (so by generation g+1), with no reconnect;
- clients sending in a tight loop with idle pauses across several reloads, with no retry of
  any kind, see 0 failures;
- with TLS on csmcpd (state that cannot move) idle connections keep the grace close.
Without the handoff, a draining worker closes idle connections after a 1 s grace and both tests
fail (EOF on the old sockets; requests crossing the close are lost)."""
import http.client
import os
import random
import ssl
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib  # noqa: E402
import sec_util  # noqa: E402
import sup_util as su  # noqa: E402

FAST = {"server": {"worker_timeout": 3, "kill_grace": 1, "heartbeat_ms": 100,
                   "drain_timeout": 10, "backoff_min_ms": 100, "ready_timeout": 10},
        # the clients share one (anonymous) principal: limits no test reaches
        "ratelimit": {"key_per_minute": 10000000, "tool_per_minute": 10000000,
                      "write_per_minute": 10000000}}


def say(*a):
    print("   ", *a, flush=True)


class HandoffCase(lib.TestCase):
    workers = 2

    def setUp(self):
        self.srv = lib.Csmcpd(workers=self.workers, conf=FAST).start(timeout=30)
        self.addCleanup(self.srv.stop, 15)

    def gen_gone(self, gen):
        return not any(w["gen"] == gen for w in su.workers(self.srv))

    def reload(self):
        r = self.srv.ctl("reload", "--wait", "--timeout", "20")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr + self.srv.log_tail())


class TestIdleConnectionsSurviveReload(HandoffCase):
    def test_same_sockets_answered_by_new_generation(self):
        srv = self.srv
        n = 40
        sessions = [srv.session() for _ in range(n)]
        self.addCleanup(lambda: [s.conn.close() for s in sessions])
        for s in sessions:
            s.request("ping")
        socks = [s.conn.sock for s in sessions]
        names = [s.getsockname() for s in socks]
        old = {w["pid"] for w in su.workers(srv)}
        m0 = su.metrics(srv)
        # csmcpd's own fds, without the transient ones of csmctl/admin requests
        sup_fds0 = min((su.fd_targets(srv.proc.pid) for _ in range(5) if not time.sleep(0.05)),
                       key=len)
        self.reload()
        # every process of generation 1 has exited: whatever answers now is generation 2
        lib.wait_for(lambda: self.gen_gone(1) and not any(su.pid_alive(p) for p in old), 15)
        # the adopters' counters arrive with their next heartbeat
        m1, _ = lib.wait_for_timed(lambda: (lambda m: m if su.metric_sum(
            m, "csmcp_http_connections_adopted_total") >= n else None)(su.metrics(srv)), 5)
        fwd = (m1['csmcp_supervisor_handoff_connections_total{result="forwarded"}'] -
               m0['csmcp_supervisor_handoff_connections_total{result="forwarded"}'])
        adopted = su.metric_sum(m1, "csmcp_http_connections_adopted_total")
        say("handed off %d connections, adopted %d, dropped %d" %
            (fwd, adopted, m1['csmcp_supervisor_handoff_connections_total{result="dropped"}']))
        ok = 0
        errors = []
        for i, s in enumerate(sessions):
            try:
                s.request("ping")
                ok += 1
            except (http.client.HTTPException, OSError, lib.McpError) as e:
                errors.append("%d: %r" % (i, e))
            # no reconnect: http.client reopens on its own only after a close; the socket
            # object and its local address must be the ones from before the reload
            self.assertIs(s.conn.sock, socks[i], "session %d reconnected" % i)
            self.assertEqual(s.conn.sock.getsockname(), names[i])
        say("%d/%d idle sockets answered after the reload" % (ok, n))
        self.assertEqual(errors, [])
        self.assertEqual(ok, n)
        self.assertGreaterEqual(fwd, n)
        self.assertGreaterEqual(adopted, n)
        self.assertEqual(m1['csmcp_supervisor_handoff_connections_total{result="dropped"}'], 0)
        new = {w["pid"] for w in su.workers(srv)}
        self.assertFalse(new & old)
        # csmcpd passed 40 client sockets on and kept none of them
        try:
            lib.wait_for(lambda: len(su.fd_targets(srv.proc.pid)) <= len(sup_fds0), 3)
        except AssertionError:
            self.fail("csmcpd fds: %s -> %s" % (sorted(sup_fds0.items()),
                                                sorted(su.fd_targets(srv.proc.pid).items())))
        # a second reload moves them again (adopted connections are handed off in turn)
        self.reload()
        lib.wait_for(lambda: self.gen_gone(2), 15)
        for i, s in enumerate(sessions):
            s.request("ping")
            self.assertIs(s.conn.sock, socks[i], "session %d reconnected" % i)


class TestNoLossAcrossReloads(HandoffCase):
    def test_tight_loop_no_retry_zero_failures(self):
        srv = self.srv
        stop = threading.Event()
        lock = threading.Lock()
        st = {"ok": 0, "fail": 0, "reconnects": 0, "errors": []}

        def client(seed):
            rnd = random.Random(seed)
            s = srv.session()
            try:
                while not stop.is_set():
                    sock = s.conn.sock
                    try:
                        s.request("ping")
                        with lock:
                            st["ok"] += 1
                    except (http.client.HTTPException, OSError, lib.McpError) as e:
                        # no retry: a request lost is a failure
                        with lock:
                            st["fail"] += 1
                            st["errors"].append("%.3f %r" % (time.monotonic(), e))
                        s.conn.close()
                    if s.conn.sock is not sock:
                        with lock:
                            st["reconnects"] += 1  # the server said Connection: close
                    r = rnd.random()
                    # mostly back to back, sometimes idle across a drain
                    time.sleep(0 if r < 0.5 else rnd.uniform(0, 0.02) if r < 0.9
                               else rnd.uniform(0.2, 1.5))
            finally:
                s.conn.close()

        threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(12)]
        for t in threads:
            t.start()
        t0 = time.monotonic()
        m0 = su.metrics(srv)
        reloads = 6
        for i in range(reloads):
            time.sleep(max(0.0, t0 + 1.2 * (i + 1) - time.monotonic()))
            self.reload()
        time.sleep(1.0)
        stop.set()
        for t in threads:
            t.join(10)
        m1 = su.metrics(srv)
        key = 'csmcp_supervisor_handoff_connections_total{result="%s"}'
        fwd = m1.get(key % "forwarded", 0) - m0.get(key % "forwarded", 0)
        say("%d reloads in %.1f s: ok=%d failed=%d reconnects(Connection: close)=%d "
            "handed off=%d dropped=%d idle closed by drain=%d" %
            (reloads, time.monotonic() - t0, st["ok"], st["fail"], st["reconnects"], fwd,
             m1.get(key % "dropped", 0), su.metric_sum(m1, "csmcp_http_drain_idle_closed_total")))
        self.assertEqual(st["fail"], 0, st["errors"][:10])
        self.assertGreater(st["ok"], 300)
        self.assertGreater(fwd, 0)
        self.assertEqual(m1[key % "dropped"], 0)
        self.assertEqual(m1["csmcp_supervisor_generation"], 1 + reloads)


class TestTlsKeepsGraceClose(lib.TestCase):
    """TLS state cannot move between processes: TLS workers do not offer to adopt, a reload's
    drain gives their idle connections the 1 s grace and closes them (docs/architecture.md §4)."""

    def test_tls_idle_connection_closed_not_handed_off(self):
        pki = sec_util.Pki()
        self.addCleanup(pki.cleanup)
        crt, key = pki.cert()
        srv = lib.Csmcpd(workers=1, conf=dict(FAST, tls={"enabled": True, "cert_file": crt,
                                                          "key_file": key})).start(timeout=30)
        self.addCleanup(srv.stop, 15)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(crt)
        ctx.check_hostname = False
        conn = http.client.HTTPSConnection("127.0.0.1", srv.port, timeout=10, context=ctx)
        self.addCleanup(conn.close)
        conn.request("GET", "/health")
        r = conn.getresponse()
        r.read()
        self.assertEqual(r.status, 200)
        sock = conn.sock
        rc = srv.ctl("reload", "--wait", "--timeout", "20")
        self.assertEqual(rc.returncode, 0, rc.stderr)
        lib.wait_for(lambda: not any(w["gen"] == 1 for w in su.workers(srv)), 15)
        # the idle TLS connection was closed by the draining worker (EOF, or close_notify)
        sock.settimeout(5)
        try:
            data = sock.recv(1)
        except (ssl.SSLError, OSError):
            data = b""
        self.assertEqual(data, b"")
        m, _ = lib.wait_for_timed(lambda: (lambda m: m if su.metric_sum(
            m, "csmcp_http_drain_idle_closed_total") >= 1 else None)(su.metrics(srv)), 5)
        self.assertEqual(su.metric_sum(m, "csmcp_http_connections_handed_off_total"), 0)
        self.assertEqual(
            m['csmcp_supervisor_handoff_connections_total{result="forwarded"}'], 0)
        say("TLS: idle connection closed by the drain, 0 handed off")

"""The systemd contract of csmcpd, exercised without a running systemd.

- sd_notify through a fake NOTIFY_SOCKET (a datagram socket this test binds, exactly what PID 1
  provides): READY=1 once all workers are READY, WATCHDOG=1 at half of WATCHDOG_USEC,
  RELOADING=1 + MONOTONIC_USEC then READY=1 around a reload (SIGHUP and `csmcpctl reload
  --wait`, which is ExecReload=: READY=1 must be sent before it returns), a refused reload
  still ending in READY=1 with the reason in STATUS=, STOPPING=1 on SIGTERM and nothing after.
- Socket activation through `systemd-socket-activate` (LISTEN_FDS/LISTEN_PID/LISTEN_FDNAMES):
  the connection that triggers the start is served, and server.listen is ignored.
- A supervisor restart under load losing no connection: this test plays the part of
  csmcp.socket (PID 1 holding the listening socket). It binds the socket once and starts
  csmcpd with it as fd 3 (LISTEN_FDS=1), then stops csmcpd (SIGTERM, and SIGKILL as a crash)
  and starts a new one on the same socket while clients keep connecting. Connections made
  while no csmcpd runs wait in the kernel backlog; every request must succeed.
Ports: 18500-18999 (ops range).
"""
import fcntl
import os
import re
import signal
import socket
import subprocess
import threading
import time
import unittest

import lib
import ops_util as ou

PORT_ACTIVATE = 18510
PORT_HELD = 18520
PORT_UNUSED = 18530


def monotonic_usec():
    return int(time.clock_gettime(time.CLOCK_MONOTONIC) * 1e6)


def one_request(port, timeout=20.0):
    """GET /health on a new connection with Connection: close. Returns (ok, seconds, error)."""
    t0 = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        ok = data.startswith(b"HTTP/1.1 200")
        return ok, time.monotonic() - t0, None if ok else data[:80]
    except OSError as e:
        return False, time.monotonic() - t0, repr(e)


class Load:
    """n client threads issuing one_request in a loop until stopped (bounded by max_s)."""

    def __init__(self, port, n=4, max_s=90):
        self.port, self.stop_ev = port, threading.Event()
        self.results, self.lock = [], threading.Lock()
        self.deadline = time.monotonic() + max_s
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(n)]

    def run(self):
        while not self.stop_ev.is_set() and time.monotonic() < self.deadline:
            r = one_request(self.port)
            with self.lock:
                self.results.append((time.monotonic(),) + r)
            time.sleep(0.005)

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop_ev.set()
        for t in self.threads:
            t.join(30)

    def count(self):
        with self.lock:
            return len(self.results)

    def failures(self):
        with self.lock:
            return [r for r in self.results if not r[1]]


class TestSdNotify(unittest.TestCase):
    def setUp(self):
        self.n = ou.NotifySocket()
        self.d = lib.Csmcpd(workers=2, env={"NOTIFY_SOCKET": self.n.path,
                                            "WATCHDOG_USEC": "2000000"})

    def tearDown(self):
        self.d.stop()
        self.n.close()

    def kv(self, i):
        return self.n.messages[i][1]

    def test_notify_sequence_start_reload_stop(self):
        d, n = self.d, self.n
        d.start(wait_ready=False)
        i_ready = n.wait_for("READY", "1", timeout=30)
        # READY=1 means every worker of the first generation is READY: the server answers.
        st, _, _ = d.admin("/ready")
        self.assertEqual(st, 200)
        self.assertEqual(lib.http_request(d.port, "GET", "/health")[0], 200)
        self.assertNotIn("STOPPING", [k for m in n.messages for k in m[1]])
        self.assertTrue(any("STATUS" in m[1] for m in n.messages[:i_ready + 2]))
        if "MAINPID" in self.kv(i_ready):
            self.assertEqual(int(self.kv(i_ready)["MAINPID"]), d.proc.pid)

        # Watchdog: WATCHDOG_USEC=2 s -> a ping about every second.
        start = len(n.messages)
        n.poll(3.2)
        pings = [m[0] for m in n.messages[start:] if m[1].get("WATCHDOG") == "1"]
        self.assertGreaterEqual(len(pings), 2, "WATCHDOG=1 every WATCHDOG_USEC/2")
        gaps = [b - a for a, b in zip(pings, pings[1:])]
        self.assertTrue(all(g < 2.0 for g in gaps), gaps)  # systemd acts after WATCHDOG_USEC

        # SIGHUP reload: RELOADING=1 with a current MONOTONIC_USEC, then READY=1.
        start = len(n.messages)
        before = monotonic_usec()
        d.signal(signal.SIGHUP)
        i_rel = n.wait_for("RELOADING", "1", timeout=10, start=start)
        mono = int(self.kv(i_rel).get("MONOTONIC_USEC", "0"))
        self.assertTrue(before - 1000000 <= mono <= monotonic_usec(),
                        "MONOTONIC_USEC must be CLOCK_MONOTONIC now (systemd >= 253 needs it)")
        i_r2 = n.wait_for("READY", "1", timeout=30, start=i_rel + 1)
        self.assertNotIn("failed", self.kv(i_r2).get("STATUS", ""))

        # ExecReload= path: `csmcpctl reload --wait` returns only after READY=1 was sent.
        n.poll(0.3)  # take in the pings and STATUS= queued so far
        start = len(n.messages)
        r = d.ctl("reload", "--wait", "--timeout", "60")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        n.drain()  # only what csmcpd had sent before csmcpctl returned
        i_rel = n.wait_for("RELOADING", "1", timeout=0, start=start)
        n.wait_for("READY", "1", timeout=0, start=i_rel + 1)

        # A refused reload (invalid config): RELOADING=1, then READY=1 with the reason; the
        # old generation keeps serving and ExecReload= fails.
        d.rewrite_conf({"server": {"workers": 0}})
        start = len(n.messages)
        r = d.ctl("reload", "--wait", "--timeout", "30")
        self.assertNotEqual(r.returncode, 0)
        i_rel = n.wait_for("RELOADING", "1", timeout=5, start=start)
        i_r4 = n.wait_for("READY", "1", timeout=5, start=i_rel + 1)
        self.assertIn("server.workers", self.kv(i_r4).get("STATUS", ""))
        self.assertEqual(lib.http_request(d.port, "GET", "/health")[0], 200)
        d.rewrite_conf({"server": {"workers": 2}})

        # SIGTERM: STOPPING=1, exit 0, and no READY=1 afterwards.
        start = len(n.messages)
        d.signal(signal.SIGTERM)
        i_stop = n.wait_for("STOPPING", "1", timeout=10, start=start)
        self.assertEqual(d.proc.wait(30), 0)
        n.poll(0.3)
        self.assertEqual([m for m in n.messages[i_stop + 1:] if "READY" in m[1]], [])
        order = [k for m in n.messages for k in m[1] if k in ("READY", "RELOADING", "STOPPING")]
        print("    notify order: %s" % " ".join(order))
        # NotifyAccess=main: every message must come from csmcpd itself, none from a worker.
        self.assertEqual(set(n.senders), {d.proc.pid},
                         "sd_notify from a process other than the main PID")
        self.assertEqual(order, ["READY", "RELOADING", "READY", "RELOADING", "READY",
                                 "RELOADING", "READY", "STOPPING"])

    def test_crash_loop_is_reported_and_never_ready(self):
        """Workers that die at once: STATUS= says CRASH LOOP, READY=1 is never sent (systemd
        then fails the start after TimeoutStartSec=), and SIGTERM still stops cleanly."""
        self.d.rewrite_conf({"server": {"worker_binary": "/bin/false", "backoff_min_ms": 20,
                                        "backoff_max_ms": 200, "crash_limit": 3}})
        self.d.start(wait_ready=False)
        i = self.n.wait_for("STATUS", timeout=10)
        lib.wait_until(lambda: any("CRASH LOOP" in m[1].get("STATUS", "")
                                   for m in self.n.messages) or self.n.poll(0.2), 10,
                       what="STATUS=... CRASH LOOP")
        self.n.poll(1.0)
        self.assertEqual([m for m in self.n.messages[i:] if "READY" in m[1]], [])
        self.d.signal(signal.SIGTERM)
        self.n.wait_for("STOPPING", "1", timeout=10)
        self.assertEqual(self.d.proc.wait(30), 0)

    def test_no_watchdog_pings_without_watchdog_usec(self):
        self.d.env.pop("WATCHDOG_USEC", None)
        self.d.start(wait_ready=False)
        self.n.wait_for("READY", "1", timeout=30)
        self.n.poll(1.5)
        self.assertEqual([m for m in self.n.messages if "WATCHDOG" in m[1]], [])


class TestSocketActivation(unittest.TestCase):
    def test_systemd_socket_activate(self):
        tool = lib.need_tool("systemd-socket-activate", "systemd")
        self.assertTrue(lib.port_free(PORT_ACTIVATE) and lib.port_free(PORT_UNUSED))
        d = lib.Csmcpd(workers=2, conf={"server": {"listen": ["127.0.0.1:%d" % PORT_UNUSED]}})
        logf = open(d.log_path, "ab")
        p = subprocess.Popen([tool, "-l", "127.0.0.1:%d" % PORT_ACTIVATE, "--fdname=mcp",
                              "-E", "CSMCP_SESSION_SECRET", lib.CSMCPD, "-c", d.conf_path],
                             env=d.env, stdout=logf, stderr=subprocess.STDOUT,
                             start_new_session=True)
        d.proc = p
        d.logf = logf
        try:
            lib.wait_until(lambda: not lib.port_free(PORT_ACTIVATE), 10, what="activation socket")
            # The first connection triggers the exec of csmcpd and must itself be served.
            ok, secs, err = one_request(PORT_ACTIVATE, timeout=30)
            self.assertTrue(ok, "%s\n%s" % (err, d.log_tail()))
            for _ in range(20):
                self.assertTrue(one_request(PORT_ACTIVATE)[0])
            self.assertTrue(lib.port_free(PORT_UNUSED), "server.listen must be ignored")
            self.assertIn("socket activation", d.log_tail(200))
            # The supervisor is the process systemd-socket-activate exec'ed (LISTEN_PID).
            with open("/proc/%d/cmdline" % p.pid, "rb") as f:
                self.assertIn(b"csmcpd", f.read())
        finally:
            d.stop()


class TestLoadBalancerReadiness(unittest.TestCase):
    """The admin /ready is the load balancer's health check (deploy.md): it stays 200 through
    a reload and fails as soon as a stop begins, while in-flight work still drains."""

    def test_ready_through_reload_and_not_ready_when_stopping(self):
        d = lib.Csmcpd(workers=2, conf={"server": {"drain_timeout": 5}})
        try:
            d.start()
            def generation():
                body = d.admin("/metrics")[2].decode()
                return int(float(re.search(r"^csmcp_supervisor_generation (\S+)$", body,
                                           re.M).group(1)))
            gen = generation()
            d.signal(signal.SIGHUP)
            codes, t0 = [], time.monotonic()
            while time.monotonic() - t0 < 2.0:
                codes.append(d.admin("/ready")[0])
                time.sleep(0.01)
            self.assertEqual(set(codes), {200}, "a reload must not take the host out of rotation")
            lib.wait_until(lambda: generation() > gen, 10, what="the reload to finish")
            # An idle keep-alive connection keeps the drain going for a moment.
            s = socket.create_connection(("127.0.0.1", d.port), timeout=10)
            s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            self.assertTrue(s.recv(4096).startswith(b"HTTP/1.1 200"))
            d.signal(signal.SIGTERM)

            def not_ready():
                try:
                    return d.admin("/ready")[0] != 200
                except OSError:
                    return True
            lib.wait_until(not_ready, 3.0, interval=0.02, what="/ready to fail after SIGTERM")
            s.close()
            self.assertEqual(d.proc.wait(30), 0)
        finally:
            d.stop()


class HeldSocket:
    """Plays csmcp.socket: owns the listening socket, (re)starts csmcpd with it as fd 3."""

    def __init__(self, d, port):
        self.d = d
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(4096)
        # A copy at fd >= 10, so that moving it to fd 3 in the child never clobbers itself.
        self.fd = fcntl.fcntl(self.sock.fileno(), fcntl.F_DUPFD_CLOEXEC, 10)
        self.starts = 0

    def start(self):
        fd = self.fd
        # LISTEN_PID must be csmcpd's own PID: bash's $$ survives the exec.
        cmd = 'exec 3<&%d %d<&-; LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=mcp exec "$@"' % (fd, fd)
        self.d.logf = self.d.logf or open(self.d.log_path, "ab")
        self.d.proc = subprocess.Popen(["bash", "-c", cmd, "bash", lib.CSMCPD, "-c", self.d.conf_path],
                                       env=self.d.env, pass_fds=(fd,), stdout=self.d.logf,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        self.starts += 1
        self.d.wait_ready(30)

    def close(self):
        os.close(self.fd)
        self.sock.close()


class TestRestartUnderLoad(unittest.TestCase):
    def test_connections_made_while_no_csmcpd_runs_are_served(self):
        """The socket-unit half of the contract alone: with csmcpd fully stopped, clients
        connect and send their requests (the kernel queues them on the held socket); the next
        csmcpd serves every one."""
        self.assertTrue(lib.port_free(PORT_HELD + 1))
        d = lib.Csmcpd(workers=2, conf={"server": {"listen": ["127.0.0.1:%d" % PORT_UNUSED]}})
        held = HeldSocket(d, PORT_HELD + 1)
        results = []
        try:
            held.start()
            os.kill(d.proc.pid, signal.SIGTERM)
            self.assertEqual(d.proc.wait(30), 0)
            threads = [threading.Thread(target=lambda: results.append(one_request(PORT_HELD + 1)))
                       for _ in range(20)]
            for th in threads:
                th.start()
            time.sleep(1.0)  # they are all waiting in the backlog now
            self.assertEqual(results, [], "answered while no csmcpd ran?")
            held.start()
            for th in threads:
                th.join(30)
            self.assertEqual(len(results), 20)
            self.assertEqual([r for r in results if not r[0]], [])
            self.assertGreater(min(r[1] for r in results), 0.9)
        finally:
            d.stop()
            held.close()

    def test_supervisor_restart_loses_no_connection(self):
        self.assertTrue(lib.port_free(PORT_HELD))
        d = lib.Csmcpd(workers=2, conf={"server": {"listen": ["127.0.0.1:%d" % PORT_UNUSED],
                                                   "drain_timeout": 5}})
        held = HeldSocket(d, PORT_HELD)
        try:
            held.start()
            phases = []
            with Load(PORT_HELD, n=4) as load:
                time.sleep(1.0)
                for how in (signal.SIGTERM, signal.SIGKILL, signal.SIGTERM):
                    before = load.count()
                    old = d.proc.pid
                    workers = lib.worker_pids(old)
                    phases.append(("kill %s" % how.name, time.monotonic()))
                    os.kill(old, how)
                    d.proc.wait(30)
                    if how == signal.SIGKILL:
                        # The orphaned workers see EOF on their control channel and drain.
                        lib.wait_until(lambda: all(not os.path.exists("/proc/%d" % w) or
                                                   open("/proc/%d/stat" % w).read().split()[2] == "Z"
                                                   for w in workers), 15,
                                       what="orphaned workers to exit")
                    # Nobody accepts now: new connections queue in the backlog.
                    time.sleep(0.5)
                    phases.append(("start", time.monotonic()))
                    held.start()
                    self.assertNotEqual(d.proc.pid, old)
                    lib.wait_until(lambda: load.count() > before + 20, 20,
                                   what="requests on the new csmcpd")
                time.sleep(1.0)
            fails = load.failures()
            total = load.count()
            slow = max(r[2] for r in load.results)
            print("    %d requests across %d supervisor starts (SIGTERM, SIGKILL, SIGTERM), "
                  "%d failed, slowest %.2fs (queued in the backlog)" % (total, held.starts,
                                                                       len(fails), slow))
            t0 = phases[0][1]
            self.assertEqual(fails, [], "connections lost during restarts (times relative to the "
                             "first kill; phases %s):\n%s" % (
                                 ", ".join("%s at %+.3fs" % (p, t - t0) for p, t in phases),
                                 "\n".join("  ended %+.3fs after %.3fs: %r" % (r[0] - t0, r[2], r[3])
                                           for r in fails)))
            self.assertGreater(total, 100)
            self.assertGreater(slow, 0.4, "no request waited in the backlog: the test did not "
                               "exercise a gap")
        finally:
            d.stop()
            held.close()


if __name__ == "__main__":
    unittest.main()

"""The process model, proven on the real binaries (csmcpd + csmcp-worker, real PostgreSQL and
Redis): crash restart, stuck-worker watchdog, zero-downtime reloads under load, broken-config
and failed-READY reloads, graceful SIGTERM under load, fd hygiene, supervisor death.
Figures are printed on stdout so the run log carries them."""
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib  # noqa: E402
import sup_util as su  # noqa: E402

FAST = {"server": {"worker_timeout": 2, "kill_grace": 1, "heartbeat_ms": 200,
                   "drain_timeout": 5, "backoff_min_ms": 100, "ready_timeout": 10}}


def say(*a):
    print("   ", *a, flush=True)


class SupervisorCase(lib.TestCase):
    workers = 4

    def setUp(self):
        self.srv = lib.Csmcpd(workers=self.workers, conf=FAST).start(timeout=30)
        self.addCleanup(self._cleanup)

    def _cleanup(self):
        try:
            self.srv.stop(timeout=15)
        finally:
            try:
                os.killpg(self.srv.proc.pid, signal.SIGKILL)
            except OSError:
                pass

    def wait_generation(self, gen, old_pids, timeout=10):
        def done():
            cur = [w for w in su.workers(self.srv) if w["current"] == "yes"]
            if len(cur) != self.workers:
                return None
            if any(w["gen"] != gen or w["state"] != "READY" for w in cur):
                return None
            return {w["slot"]: w["pid"] for w in cur}
        pids, dt = lib.wait_for_timed(done, timeout)
        self.assertFalse(set(pids.values()) & set(old_pids),
                         "a worker PID survived the reload: %s vs %s" % (pids, old_pids))
        return pids, dt


class TestCrashAndWatchdog(SupervisorCase):
    def test_kill9_respawn_within_1s_counters_monotonic(self):
        srv = self.srv
        before = su.current(srv)
        self.assertEqual(sorted(before), [0, 1, 2, 3])
        load = su.Load(srv.port, clients=4, pause_s=0.005, max_s=30).start()
        self.addCleanup(load.stop)
        time.sleep(1.0)
        samples = [su.metric_sum(su.metrics(srv), "csmcp_http_requests_total")]
        ok_at_kill = load.ok
        victim = before[1]
        os.kill(victim, signal.SIGKILL)
        t0 = time.monotonic()
        new, dt = lib.wait_for_timed(
            lambda: (lambda c: c if c.get(1) not in (None, victim) else None)(su.current(srv)),
            1.0, interval=0.01)
        say("kill -9 slot 1: new worker READY in %.3f s (pid %d -> %d)" % (dt, victim, new[1]))
        self.assertLess(dt, 1.05)
        for s in (0, 2, 3):
            self.assertEqual(new[s], before[s], "slot %d was disturbed" % s)
        for _ in range(10):
            samples.append(su.metric_sum(su.metrics(srv), "csmcp_http_requests_total"))
            time.sleep(0.1)
        load.stop()
        say("requests_total samples:", [int(x) for x in samples], load.summary())
        self.assertEqual(samples, sorted(samples), "a counter went backwards")
        self.assertGreater(samples[-1], samples[0])
        self.assertGreater(load.ok, ok_at_kill, "the other workers stopped serving")
        # only connections that the killed worker held may break (at most one per client)
        self.assertLessEqual(load.conn_errors, load.clients)
        self.assertEqual(load.bad_status, 0)
        m = su.metrics(srv)
        self.assertEqual(m["csmcp_worker_crashes_total"], 1)
        self.assertEqual(m['csmcp_slot_restarts_total{slot="1"}'], 1)
        self.assertFalse(su.pid_alive(victim))

    def test_kill_stop_replaced_within_timeout_plus_2s(self):
        srv = self.srv
        before = su.current(srv)
        victim = before[2]
        os.kill(victim, signal.SIGSTOP)
        limit = FAST["server"]["worker_timeout"] + 2
        new, dt = lib.wait_for_timed(
            lambda: (lambda c: c if c.get(2) not in (None, victim) else None)(su.current(srv)),
            limit, interval=0.05)
        say("kill -STOP slot 2: replaced and READY in %.2f s (limit %d s)" % (dt, limit))
        self.assertFalse(su.pid_alive(victim))
        m = su.metrics(srv)
        self.assertEqual(m["csmcp_worker_timeouts_total"], 1)
        for s in (0, 1, 3):
            self.assertEqual(new[s], before[s])
        st, _, _ = srv.get("/health")
        self.assertEqual(st, 200)
        self.assertIn("no heartbeat", srv.log_tail(200))


class TestWatchdogEscalation(SupervisorCase):
    workers = 2

    def setUp(self):
        # workers that ignore SIGABRT (ignored dispositions survive exec): only SIGKILL works
        d = lib.tempfile.mkdtemp(prefix="csmcp-it-")
        self.wrapper = os.path.join(d, "abrt-proof-worker")
        with open(self.wrapper, "w") as f:
            f.write("#!/bin/sh\ntrap '' ABRT\nexec %s \"$@\"\n" % lib.WORKER)
        os.chmod(self.wrapper, 0o755)
        conf = {g: dict(kv) for g, kv in FAST.items()}
        conf["server"]["worker_binary"] = self.wrapper
        self.srv = lib.Csmcpd(workers=self.workers, conf=conf).start(timeout=30)
        self.addCleanup(self._cleanup)

    def test_abrt_ignored_then_sigkill(self):
        srv = self.srv
        before = su.current(srv)
        victim = before[0]
        os.kill(victim, signal.SIGSTOP)
        t0 = time.monotonic()
        limit = FAST["server"]["worker_timeout"] + FAST["server"]["kill_grace"] + 2
        new, dt = lib.wait_for_timed(
            lambda: (lambda c: c if c.get(0) not in (None, victim) else None)(su.current(srv)),
            limit, interval=0.05)
        say("stuck worker ignoring SIGABRT: SIGKILLed and replaced in %.2f s" % dt)
        log = srv.log_tail(300)
        self.assertIn("no heartbeat for", log)
        self.assertIn("after signal, SIGKILL", log)
        self.assertIn("pid %d: READY -> EXITED: killed by signal 9" % victim, log)
        self.assertGreater(time.monotonic() - t0,
                           FAST["server"]["worker_timeout"] + FAST["server"]["kill_grace"] - 0.5)
        self.assertEqual(new[1], before[1])


class TestCrashLoop(lib.TestCase):
    def test_crash_loop_reported_backoff_bounded_then_fixed_by_reload(self):
        srv = lib.Csmcpd(workers=2, conf={"server": {"worker_binary": "/bin/false",
                                                     "backoff_min_ms": 100, "crash_limit": 3,
                                                     "crash_window": 60}})
        self.addCleanup(srv.stop)
        srv.start(wait_ready=False)
        time.sleep(3.2)
        self.assertIsNone(srv.proc.poll(), "csmcpd gave up")
        m = su.metrics(srv)
        spawns = m["csmcp_worker_spawns_total"]
        say("3.2 s of workers that exit at once: %d spawns, %d crashes, crash_loop %d" %
            (spawns, m["csmcp_worker_crashes_total"], m["csmcp_crash_loop"]))
        # 2 slots, delays 100, 200, 400, 800, 1600 ms (+-20%): at most 6 spawns per slot
        self.assertLessEqual(spawns, 12)
        self.assertGreaterEqual(spawns, 6)
        self.assertEqual(m["csmcp_crash_loop"], 1)
        self.assertEqual(srv.admin("/ready")[0], 503)
        r = srv.ctl("status")
        self.assertIn("crash loop: YES", r.stdout)
        # a slot waits for its backoff most of the time, but not at every instant (both may be
        # SPAWNING just then)
        lib.wait_for(lambda: "WAITING" in srv.ctl("status").stdout, 5,
                     what="a slot WAITING for its respawn in csmcpctl status")
        self.assertIn("crash loop:", srv.log_tail(100))
        srv.rewrite_conf({"server": {"worker_binary": lib.WORKER}})
        r = srv.ctl("reload", "--wait", "--timeout", "30")
        self.assertEqual(r.returncode, 0, r.stderr)
        srv.wait_ready(10)
        self.assertEqual(su.metrics(srv)["csmcp_crash_loop"], 0)
        self.assertIn("crash loop: no", srv.ctl("status").stdout)


class TestHostileWorker(lib.TestCase):
    """A worker that breaks the control protocol is killed and replaced; csmcpd carries on."""

    def run_fake(self, behaviour):
        d = lib.tempfile.mkdtemp(prefix="csmcp-it-")
        fake = os.path.join(d, "fake-worker")
        with open(fake, "w") as f:
            f.write("""#!/usr/bin/python3
import os, struct, sys, time
fd = int(sys.argv[sys.argv.index("--ctl-fd") + 1])
slot = int(sys.argv[sys.argv.index("--slot") + 1])
gen = int(sys.argv[sys.argv.index("--generation") + 1])
mode = %r
if mode == "garbage":
    os.write(fd, b"\\x07not a control message at all")
elif mode == "wrong_pid":
    hello = struct.pack("=iiIIQ", os.getpid() + 1, slot, gen, 0, 0)
    os.write(fd, struct.pack("=BBHIII", 1, 1, 0, len(hello), 1, gen) + hello)
elif mode == "oversized_ready":
    os.write(fd, struct.pack("=BBHIII", 1, 2, 0, 4000, 1, gen) + bytes(4000))
time.sleep(30)
""" % behaviour)
        os.chmod(fake, 0o755)
        srv = lib.Csmcpd(workers=1, conf={"server": {"worker_binary": fake,
                                                     "backoff_min_ms": 200}})
        self.addCleanup(lambda: os.killpg(srv.proc.pid, signal.SIGKILL)
                        if srv.proc and srv.proc.poll() is None else None)
        self.addCleanup(srv.stop)
        srv.start(wait_ready=False)
        lib.wait_for(lambda: su.metrics(srv)["csmcp_worker_crashes_total"] >= 2, 10)
        self.assertIsNone(srv.proc.poll())
        self.assertEqual(srv.admin("/health")[0], 200)
        return srv.log_tail(200)

    def test_garbage_message(self):
        log = self.run_fake("garbage")
        self.assertIn("bad control message: protocol version mismatch; killing it", log)
        self.assertIn("killed by signal 9", log)

    def test_hello_with_wrong_pid(self):
        log = self.run_fake("wrong_pid")
        self.assertIn("HELLO does not match the spawned worker", log)

    def test_wrong_payload_size(self):
        log = self.run_fake("oversized_ready")
        self.assertIn("bad control message: wrong payload size", log)


class TestReload(SupervisorCase):
    def test_10_sighup_reloads_under_keepalive_load(self):
        srv = self.srv
        pids = su.current(srv)
        load = su.Load(srv.port, clients=8, pause_s=0.002, max_s=40).start()
        self.addCleanup(load.stop)
        t_start = time.monotonic()
        times = []
        for i in range(10):
            time.sleep(max(0.0, t_start + 2.0 * i + 0.5 - time.monotonic()))
            srv.signal(signal.SIGHUP)
            pids, dt = self.wait_generation(2 + i, list(pids.values()))
            times.append(dt)
        time.sleep(max(0.0, t_start + 20.0 - time.monotonic()))
        load.stop()
        dur = time.monotonic() - t_start
        say("10 reloads in %.1f s, reload-to-all-new-READY %.2f..%.2f s" %
            (dur, min(times), max(times)))
        say("load: %s (%.0f req/s)" % (load.summary(), load.ok / dur))
        self.assertGreaterEqual(dur, 20.0)
        self.assertEqual(load.conn_errors, 0, load.errors)
        self.assertEqual(load.bad_status, 0, load.errors)
        # Draining workers answer the request in progress with "Connection: close" and hand
        # idle keep-alive connections to the new generation instead of closing them under the
        # client (test_process_handoff.py): no request needs a retry.
        self.assertEqual(load.reused_fail, 0, load.errors)
        self.assertGreater(load.ok, 1000)
        m = su.metrics(srv)
        say("handoff: %d connections passed to the new generation, %d dropped" % (
            m['csmcp_supervisor_handoff_connections_total{result="forwarded"}'],
            m['csmcp_supervisor_handoff_connections_total{result="dropped"}']))
        self.assertEqual(m['csmcp_supervisor_handoff_connections_total{result="dropped"}'], 0)
        self.assertEqual(m['csmcp_reloads_total{result="ok"}'], 10)
        self.assertEqual(m["csmcp_supervisor_generation"], 11)
        self.assertEqual(m["csmcp_worker_crashes_total"], 0)

    def test_broken_config_keeps_old_generation(self):
        srv = self.srv
        before = su.current(srv)
        good = open(srv.conf_path).read()
        with open(srv.conf_path, "w") as f:
            f.write(good + "\nserver = { workers = 0; };\n")  # duplicate group, bad value
        r = srv.ctl("reload", "--wait", "--timeout", "20")
        say("broken config: exit %d, stderr: %s" % (r.returncode, r.stderr.strip()))
        self.assertNotEqual(r.returncode, 0)
        self.assertTrue(r.stderr.strip(), "no reason printed")
        self.assertIn(os.path.basename(srv.conf_path), r.stderr)
        # the old generation still serves, untouched
        for _ in range(20):
            st, _, _ = srv.get("/health")
            self.assertEqual(st, 200)
        self.assertEqual(su.current(srv), before)
        st, _, _ = srv.admin("/ready")
        self.assertEqual(st, 200)
        m = su.metrics(srv)
        self.assertEqual(m["csmcp_supervisor_generation"], 1)
        self.assertEqual(m['csmcp_reloads_total{result="failed"}'], 1)
        # a crash while the file on disk is broken: the slot restarts from generation 1's
        # private copy of the config
        victim = before[0]
        os.kill(victim, signal.SIGKILL)
        new, dt = lib.wait_for_timed(
            lambda: (lambda c: c if c.get(0) not in (None, victim) else None)(su.current(srv)),
            2.0, interval=0.01)
        say("crash with a broken file on disk: slot 0 READY again in %.2f s" % dt)
        before = new
        snaps = [f for f in os.listdir(srv.dir) if f.startswith(".csmcpd-")]
        self.assertEqual(len(snaps), 1, snaps)
        self.assertEqual(os.stat(os.path.join(srv.dir, snaps[0])).st_mode & 0o777, 0o600)
        # a fixed config reloads fine
        with open(srv.conf_path, "w") as f:
            f.write(good)
        r = srv.ctl("reload", "--wait", "--timeout", "20")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("generation 2", r.stdout)
        self.assertFalse(set(su.current(srv).values()) & set(before.values()))

    def test_new_generation_failing_ready_is_rolled_back(self):
        srv = self.srv
        before = su.current(srv)
        srv.rewrite_conf({"server": {"worker_binary": "/bin/false"}})
        t0 = time.monotonic()
        r = srv.ctl("reload", "--wait", "--timeout", "20")
        say("failing generation: exit %d in %.2f s, stderr: %s" %
            (r.returncode, time.monotonic() - t0, r.stderr.strip()))
        self.assertEqual(r.returncode, 1)
        self.assertIn("exited with status 1", r.stderr)
        self.assertIn("before READY", r.stderr)
        self.assertEqual(su.current(srv), before)
        st, _, _ = srv.get("/health")
        self.assertEqual(st, 200)
        # overlapping reloads are refused: start one that cannot finish quickly, then another
        srv.rewrite_conf({"server": {"worker_binary": lib.WORKER}})
        r1 = srv.ctl("reload")
        r2 = srv.ctl("reload")
        self.assertEqual(r1.returncode, 0, r1.stderr)
        if r2.returncode == 0:
            self.fail("second reload accepted while the first was running: " + r2.stdout)
        self.assertIn("in progress", r2.stderr)


    def test_sighup_during_reload_coalesces_into_one_more(self):
        srv = self.srv
        slow = os.path.join(srv.dir, "slow-worker")
        with open(slow, "w") as f:
            f.write("#!/bin/sh\nsleep 1.5\nexec %s \"$@\"\n" % lib.WORKER)
        os.chmod(slow, 0o755)
        srv.rewrite_conf({"server": {"worker_binary": slow}})
        for _ in range(3):
            srv.signal(signal.SIGHUP)
            time.sleep(0.1)
        _, dt = lib.wait_for_timed(lambda: su.metrics(srv)['csmcp_reloads_total{result="ok"}'] == 2,
                            15, interval=0.1)
        time.sleep(2.5)  # no third reload follows
        m = su.metrics(srv)
        say("3 SIGHUPs within 0.3 s during a 1.5 s reload: %d reloads, generation %d (%.1f s)" %
            (m['csmcp_reloads_total{result="ok"}'], m["csmcp_supervisor_generation"], dt))
        self.assertEqual(m['csmcp_reloads_total{result="ok"}'], 2)
        self.assertEqual(m["csmcp_supervisor_generation"], 3)

    def test_slow_generation_timeout_then_long_wait(self):
        srv = self.srv
        before = su.current(srv)
        slow = os.path.join(srv.dir, "slow-worker")
        with open(slow, "w") as f:
            f.write("#!/bin/sh\nsleep $(cat %s.secs)\nexec %s \"$@\"\n" % (slow, lib.WORKER))
        os.chmod(slow, 0o755)
        # ready_timeout 2 s, workers need 4 s: rolled back at the deadline
        with open(slow + ".secs", "w") as f:
            f.write("4")
        srv.rewrite_conf({"server": {"worker_binary": slow, "ready_timeout": 2}})
        t0 = time.monotonic()
        r = subprocess.run([lib.CSMCPCTL, "-s", srv.socket, "reload", "--wait"],
                           capture_output=True, text=True, timeout=30)
        dt = time.monotonic() - t0
        say("ready_timeout 2 s, slow workers: exit %d after %.2f s: %s" %
            (r.returncode, dt, r.stderr.strip()))
        self.assertEqual(r.returncode, 1)
        self.assertIn("not READY within 2 s", r.stderr)
        self.assertLess(dt, 4.0)
        self.assertEqual(su.current(srv), before)
        # a reload longer than the control socket's 10 s idle limit still answers
        with open(slow + ".secs", "w") as f:
            f.write("11")
        srv.rewrite_conf({"server": {"ready_timeout": 30}})
        t0 = time.monotonic()
        r = subprocess.run([lib.CSMCPCTL, "-s", srv.socket, "reload", "--wait", "--timeout",
                            "40"], capture_output=True, text=True, timeout=60)
        dt = time.monotonic() - t0
        say("slow workers (11 s): reload --wait exit %d after %.1f s: %s" %
            (r.returncode, dt, (r.stdout + r.stderr).strip()))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertGreater(dt, 10.5)
        self.assertIn("generation 2", r.stdout)


class TestShutdown(SupervisorCase):
    def test_sigterm_under_load_drains_and_exits_0(self):
        srv = self.srv
        load = su.Load(srv.port, clients=8, pause_s=0.001, max_s=30, reconnect=False).start()
        self.addCleanup(load.stop)
        # requests truly in flight at SIGTERM: headers half sent, completed after the signal
        partial = []
        for _ in range(6):
            sk = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
            sk.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            partial.append(sk)
        time.sleep(1.0)
        pids = list(su.current(srv).values())
        ok_before = load.ok
        t0 = time.monotonic()
        srv.signal(signal.SIGTERM)
        time.sleep(0.5)
        answers = []
        for sk in partial:
            sk.sendall(b"X-Late: 1\r\n\r\n")
            data = b""
            while True:
                chunk = sk.recv(65536)
                if not chunk:
                    break
                data += chunk
            sk.close()
            answers.append(data)
        rc = srv.proc.wait(timeout=FAST["server"]["drain_timeout"] + 5)
        dt = time.monotonic() - t0
        load.stop()
        for a in answers:
            self.assertTrue(a.startswith(b"HTTP/1.1 200"), a[:200])
            self.assertIn(b"connection: close", a.lower())
        say("%d half-sent requests completed after SIGTERM with Connection: close" %
            len(answers))
        say("SIGTERM: exit %d in %.2f s (drain_timeout %d s); load %s" %
            (rc, dt, FAST["server"]["drain_timeout"], load.summary()))
        self.assertEqual(rc, 0)
        self.assertLess(dt, FAST["server"]["drain_timeout"])
        self.assertGreater(ok_before, 0)
        self.assertEqual(load.conn_errors, 0, load.errors)
        self.assertEqual(load.bad_status, 0)
        for p in pids:
            self.assertFalse(su.pid_alive(p))
        self.assertFalse(os.path.exists(srv.socket), "control socket left behind")
        self.assertEqual([f for f in os.listdir(srv.dir) if f.startswith(".csmcpd-")], [])

    def test_stuck_client_bounded_by_drain_timeout_second_sigterm_fast(self):
        srv = self.srv
        stuck = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        stuck.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")  # never finished
        time.sleep(0.3)
        t0 = time.monotonic()
        srv.signal(signal.SIGTERM)
        time.sleep(1.0)
        self.assertIsNone(srv.proc.poll(), "csmcpd did not wait for the request in progress")
        srv.signal(signal.SIGTERM)  # the second one is fast
        rc = srv.proc.wait(5)
        dt = time.monotonic() - t0
        say("stuck request: still draining after 1 s; second SIGTERM -> exit %d at %.2f s" %
            (rc, dt))
        self.assertEqual(rc, 0)
        self.assertLess(dt, 1.0 + FAST["server"]["kill_grace"] + 0.5)
        stuck.close()

    def test_stuck_client_graceful_exit_within_drain_timeout(self):
        srv = self.srv
        stuck = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        stuck.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        time.sleep(0.3)
        t0 = time.monotonic()
        srv.signal(signal.SIGTERM)
        rc = srv.proc.wait(FAST["server"]["drain_timeout"] + 5)
        dt = time.monotonic() - t0
        say("stuck request, one SIGTERM: exit %d after %.2f s (drain_timeout %d s)" %
            (rc, dt, FAST["server"]["drain_timeout"]))
        self.assertEqual(rc, 0)
        self.assertLess(dt, FAST["server"]["drain_timeout"] + 0.5)
        self.assertGreater(dt, FAST["server"]["drain_timeout"] - 1.5)
        stuck.close()

    def test_supervisor_killed_workers_exit(self):
        srv = self.srv
        pids = list(su.current(srv).values())
        srv.proc.send_signal(signal.SIGKILL)
        srv.proc.wait(5)
        _, dt = lib.wait_for_timed(lambda: not any(su.pid_alive(p) for p in pids), 5)
        say("supervisor SIGKILLed: all %d workers gone in %.2f s" % (len(pids), dt))


class TestFdHygiene(SupervisorCase):
    workers = 2

    def sockets(self, pid):
        return {su.socket_inode(t) for t in su.fd_targets(pid).values()} - {None}

    def test_workers_hold_only_their_fds(self):
        srv = self.srv
        sup_pid = srv.proc.pid
        time.sleep(0.3)  # let the harness's /ready connection close
        fds0 = su.fd_targets(sup_pid)
        sup_fds0 = len(fds0)
        cur = su.current(srv)
        a, b = cur[0], cur[1]
        sup_socks = self.sockets(sup_pid)
        shared_a = self.sockets(a) & sup_socks
        shared_b = self.sockets(b) & sup_socks
        # exactly the listening socket is shared with the supervisor: no admin listener, no
        # control socket, no channel end of another worker, no libevent pipe
        self.assertEqual(len(shared_a), 1, su.fd_targets(a))
        self.assertEqual(shared_a, shared_b)
        self.assertEqual(self.sockets(a) & self.sockets(b), shared_a)
        pipes_sup = {t for t in su.fd_targets(sup_pid).values() if t.startswith("pipe:")}
        for w in (a, b):
            pipes_w = {t for t in su.fd_targets(w).values() if t.startswith("pipe:")}
            self.assertFalse(pipes_w & pipes_sup, "worker %d holds a supervisor pipe" % w)
        n_a = len(su.fd_targets(a))
        say("worker fds: %d %s" % (n_a, sorted(su.fd_targets(a).items())))
        # after reloads and a crash, the new workers hold as many fds, the supervisor no more
        for i in range(3):
            r = srv.ctl("reload", "--wait", "--timeout", "20")
            self.assertEqual(r.returncode, 0, r.stderr)
        os.kill(su.current(srv)[0], signal.SIGKILL)
        lib.wait_for(lambda: len(su.current(srv)) == 2 and
                    all(w["state"] == "READY" for w in su.workers(srv)
                        if w["current"] == "yes") and
                    len(su.workers(srv)) == 2, 10)
        for w in su.current(srv).values():
            lib.wait_for(lambda: len(su.fd_targets(w)) == n_a, 3)
        try:
            lib.wait_for(lambda: len(su.fd_targets(sup_pid)) == sup_fds0, 3)
        except AssertionError:
            self.fail("supervisor fds changed: %s -> %s" % (sorted(fds0.items()),
                                                             sorted(su.fd_targets(sup_pid).items())))
        say("supervisor fds: %d before, %d after 3 reloads and a crash" %
            (sup_fds0, len(su.fd_targets(sup_pid))))


class TestOperatorInterfaces(SupervisorCase):
    workers = 2

    def test_csmcpctl_and_admin_endpoints(self):
        srv = self.srv
        r = srv.ctl("status")
        self.assertEqual(r.returncode, 0, r.stderr)
        say("csmcpctl status:\n" + "\n".join("      " + l for l in r.stdout.splitlines()))
        self.assertIn("generation 1  workers 2/2 ready  state running", r.stdout)
        self.assertIn("crash loop: no", r.stdout)
        rows = [l.split() for l in r.stdout.splitlines() if l[:1].isdigit()]
        self.assertEqual(sorted(int(x[0]) for x in rows), [0, 1])
        self.assertTrue(all(x[3] == "READY" for x in rows), rows)
        cur = su.current(srv)
        self.assertEqual(sorted(int(x[2]) for x in rows), sorted(cur.values()))
        for _ in range(5):
            self.assertEqual(srv.get("/health")[0], 200)
        # a heartbeat carries the counts
        r = lib.wait_for(lambda: (lambda r: r if "# TYPE csmcp_http_requests_total counter"
                                  in r.stdout else None)(srv.ctl("metrics")),
                         5, what="the workers' counters in csmcpctl metrics")
        self.assertEqual(r.returncode, 0)
        nfam = su.check_prometheus_text(r.stdout)
        if shutil.which("promtool"):
            p = subprocess.run(["promtool", "check", "metrics"], input=r.stdout,
                               capture_output=True, text=True, timeout=20)
            say("promtool check metrics: rc %d %s" % (p.returncode,
                                                     (p.stdout + p.stderr).strip()[:300]))
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        say("/metrics: %d families, %d lines" % (nfam, len(r.stdout.splitlines())))
        self.assertIn("# TYPE csmcp_http_requests_total counter", r.stdout)
        self.assertIn('csmcp_build_info{version="', r.stdout)
        self.assertIn("csmcp_workers_configured 2", r.stdout)
        # per-worker series carry slot and pid
        self.assertIn('csmcp_worker_http_connections_open{slot="0",pid="%d"}' % cur[0],
                      r.stdout)
        self.assertEqual(srv.ctl("bogus").returncode, 2)
        r = subprocess.run([lib.CSMCPCTL, "-s", os.path.join(srv.dir, "nope.sock"), "status"],
                           capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 3)
        self.assertIn("is csmcpd running", r.stderr)
        self.assertEqual(srv.admin("/health")[0], 200)
        self.assertEqual(srv.admin("/ready")[0], 200)
        self.assertEqual(srv.admin("/nope")[0], 404)
        st, _, _ = lib.http_request(srv.admin_port, "POST", "/metrics")
        self.assertEqual(st, 405)
        # a raw client that never sends its line is dropped, csmcpd keeps answering
        idle = socket.socket(socket.AF_UNIX)
        idle.connect(srv.socket)
        self.assertEqual(srv.ctl("ping").stdout.strip(), "pong")
        idle.close()
        # /ready turns 503 while stopping
        r = srv.ctl("stop")
        self.assertEqual(r.returncode, 0)
        self.assertEqual(srv.proc.wait(10), 0)


class TestConfigCheck(lib.TestCase):
    def test_t_reports_file_line_key(self):
        d = lib.tempfile.mkdtemp(prefix="csmcp-it-")
        p = os.path.join(d, "bad.conf")
        with open(p, "w") as f:
            f.write("server = {\n  workers = 0;\n};\n")
        r = subprocess.run([lib.CSMCPD, "-t", "-c", p], capture_output=True, text=True,
                           timeout=10)
        self.assertEqual(r.returncode, 1)
        self.assertIn("%s:2: server.workers:" % p, r.stderr + r.stdout)
        with open(p, "w") as f:
            f.write("server = {\n  workers = 3;\n};\n")
        r = subprocess.run([lib.CSMCPD, "-t", "-c", p], capture_output=True, text=True,
                           timeout=10)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = subprocess.run([lib.CSMCPD, "--print-keys"], capture_output=True, text=True,
                           timeout=10)
        self.assertEqual(r.returncode, 0)
        self.assertIn("worker_timeout", r.stdout)


if __name__ == "__main__":
    import unittest
    unittest.main()

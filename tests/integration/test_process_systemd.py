"""systemd integration of csmcpd without systemd: sd_notify messages (READY, RELOADING with
MONOTONIC_USEC, STATUS, STOPPING, WATCHDOG) captured on a NOTIFY_SOCKET of our own, and socket
activation through systemd-socket-activate (LISTEN_FDS)."""
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


class Notify:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.1)
        self.msgs = []

    def drain(self):
        while True:
            try:
                self.msgs.append(self.sock.recv(4096).decode())
            except (socket.timeout, BlockingIOError):
                return self.msgs

    def wait(self, needle, timeout=10):
        def seen():
            return any(needle in m for m in self.drain())
        lib.wait_for(seen, timeout)


class TestSdNotify(lib.TestCase):
    def test_ready_reloading_stopping_watchdog(self):
        d = lib.tempfile.mkdtemp(prefix="csmcp-it-")
        n = Notify(os.path.join(d, "notify"))
        srv = lib.Csmcpd(workers=2, env={"NOTIFY_SOCKET": os.path.join(d, "notify"),
                                         "WATCHDOG_USEC": "400000"},
                         conf={"server": {"heartbeat_ms": 200}})
        srv.start()
        try:
            n.wait("READY=1")
            ready_idx = len(n.msgs)
            n.wait("WATCHDOG=1", 3)
            # workers must not inherit NOTIFY_SOCKET: only csmcpd talks to systemd
            for pid in su.current(srv).values():
                with open("/proc/%d/environ" % pid, "rb") as f:
                    self.assertNotIn(b"NOTIFY_SOCKET", f.read())
            srv.signal(signal.SIGHUP)
            n.wait("RELOADING=1")
            lib.wait_for(lambda: any("READY=1" in m for m in n.drain()[ready_idx + 1:]), 10)
            rel = [m for m in n.msgs if "RELOADING=1" in m][0]
            self.assertIn("MONOTONIC_USEC=", rel)
            self.assertTrue(any(m.startswith("STATUS=generation 2") or "STATUS=generation 2" in m
                                for m in n.drain()), n.msgs)
            srv.signal(signal.SIGTERM)
            self.assertEqual(srv.proc.wait(15), 0)
            n.drain()
            self.assertTrue(any("STOPPING=1" in m for m in n.msgs), n.msgs)
            print("    notify messages:", [m.replace("\n", "|") for m in n.msgs][:12], flush=True)
        finally:
            srv.stop()


class TestSocketActivation(lib.TestCase):
    def test_listen_fds_adopted(self):
        tool = shutil.which("systemd-socket-activate")
        self.assertIsNotNone(tool, "systemd-socket-activate (package systemd) is required")
        srv = lib.Csmcpd(workers=2)
        port = lib.free_port()
        logf = open(srv.log_path, "ab")
        # systemd-socket-activate does not pass its environment on: hand it over with -E
        setenv = []
        for k, v in srv.env.items():
            if k.startswith(("CSMCP_", "ASAN_", "UBSAN_", "LSAN_")) or k == "PATH":
                setenv += ["-E", "%s=%s" % (k, v)]
        srv.proc = subprocess.Popen([tool, "-l", "127.0.0.1:%d" % port] + setenv +
                                    [lib.CSMCPD, "-c", srv.conf_path], env=srv.env, stdout=logf,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        srv.logf = logf
        try:
            # systemd-socket-activate binds, then execs csmcpd on the first connection
            lib.wait_for(lambda: socket.create_connection(("127.0.0.1", port), timeout=1), 5)
            st, _, body = lib.http_request(port, "GET", "/health", timeout=20)
            self.assertEqual(st, 200)
            srv.wait_ready(30)
            self.assertIn("socket activation", srv.log_tail(200))
            # the configured server.listen port was not bound
            with self.assertRaises(OSError):
                socket.create_connection(("127.0.0.1", srv.port), timeout=1).close()
            for pid in su.current(srv).values():
                with open("/proc/%d/environ" % pid, "rb") as f:
                    self.assertNotIn(b"LISTEN_FDS", f.read())
            for _ in range(20):
                st, _, _ = lib.http_request(port, "GET", "/health")
                self.assertEqual(st, 200)
        finally:
            srv.stop()
            try:
                os.killpg(srv.proc.pid, signal.SIGKILL)
            except OSError:
                pass


if __name__ == "__main__":
    import unittest
    unittest.main()

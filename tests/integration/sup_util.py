"""Helpers for the process-model tests (supervisor engineer): a bounded keep-alive load
generator, csmcpctl output parsing, Prometheus text parsing, /proc fd inspection."""
import http.client
import os
import socket
import threading
import time


class Load:
    """Keep-alive GET load on 127.0.0.1:port path from `clients` threads, bounded in rate
    (pause_s between requests per client) and in time (stop() or max_s).

    Counting, per request:
      ok            200 with a complete body
      bad_status    any other status
      conn_errors   connect() failed, or a fresh connection failed before a response
      reused_fail   retries: the connection was closed by the server before any response
                    byte (a draining worker closing a connection it saw idle: the race of
                    RFC 9112 9.3.1); the request is retried on a new connection, up to 3
                    attempts in all, as HTTP clients do for idempotent requests; a request
                    failing 3 times counts as a conn_error
      closes        responses that carried Connection: close (the client reconnects)
    With reconnect=False a client stops after its first Connection: close (shutdown tests,
    where the listener stays open but nobody accepts any more).
    """

    def __init__(self, port, path="/health", clients=8, pause_s=0.002, max_s=60,
                 reconnect=True, timeout=10):
        self.port, self.path, self.clients = port, path, clients
        self.pause_s, self.max_s, self.reconnect, self.timeout = pause_s, max_s, reconnect, timeout
        self.lock = threading.Lock()
        self.ok = self.bad_status = self.conn_errors = self.reused_fail = self.closes = 0
        self.errors = []
        self.inflight = 0
        self.stop_ev = threading.Event()
        self.threads = []

    def _err(self, what):
        with self.lock:
            self.conn_errors += 1
            if len(self.errors) < 20:
                self.errors.append("%.3f %s" % (time.monotonic(), what))

    def _one(self, conn):
        conn.request("GET", self.path)
        r = conn.getresponse()
        body = r.read()
        return r.status, (r.getheader("Connection") or "").lower(), body

    def _run(self):
        deadline = time.monotonic() + self.max_s
        conn, used = None, 0
        while not self.stop_ev.is_set() and time.monotonic() < deadline:
            with self.lock:
                self.inflight += 1
            try:
                # A connection closed by the server before any response byte (a draining worker
                # closing an idle connection) is retried on a new connection, at most 3
                # attempts, as HTTP clients do for idempotent requests (RFC 9112 9.3.1).
                for attempt in range(3):
                    if conn is None:
                        conn = http.client.HTTPConnection("127.0.0.1", self.port,
                                                          timeout=self.timeout)
                        used = 0
                    try:
                        status, connhdr, _ = self._one(conn)
                        break
                    except (http.client.RemoteDisconnected, ConnectionResetError,
                            BrokenPipeError):
                        conn.close()
                        conn = None
                        if attempt == 2 or not self.reconnect:
                            if used and not self.reconnect:
                                with self.lock:
                                    self.reused_fail += 1
                                return
                            raise
                        with self.lock:
                            self.reused_fail += 1
                used += 1
                with self.lock:
                    if status == 200:
                        self.ok += 1
                    else:
                        self.bad_status += 1
                        if len(self.errors) < 20:
                            self.errors.append("status %d" % status)
                if connhdr == "close":
                    with self.lock:
                        self.closes += 1
                    conn.close()
                    conn = None
                    if not self.reconnect:
                        return
            except Exception as e:  # noqa: BLE001 - every failure is counted
                self._err("%s: %s" % (type(e).__name__, e))
                if conn is not None:
                    conn.close()
                conn = None
                if not self.reconnect:
                    return
                time.sleep(0.01)
            finally:
                with self.lock:
                    self.inflight -= 1
            if self.pause_s:
                time.sleep(self.pause_s)
        if conn is not None:
            conn.close()

    def start(self):
        for _ in range(self.clients):
            t = threading.Thread(target=self._run, daemon=True)
            t.start()
            self.threads.append(t)
        return self

    def stop(self, join_s=15):
        self.stop_ev.set()
        for t in self.threads:
            t.join(join_s)

    def alive(self):
        return sum(1 for t in self.threads if t.is_alive())

    def summary(self):
        return ("ok=%d bad_status=%d conn_errors=%d retried_after_idle_close=%d closes=%d "
                "errors=%s"
                % (self.ok, self.bad_status, self.conn_errors, self.reused_fail, self.closes,
                   self.errors[:5]))


def workers(srv):
    """csmcpctl workers -> list of dicts (slot, gen, pid ints; state, current strings)."""
    r = srv.ctl("workers", timeout=10)
    if r.returncode != 0:
        raise AssertionError("csmcpctl workers failed: %s %s" % (r.stdout, r.stderr))
    out = []
    for line in r.stdout.splitlines():
        d = dict(kv.split("=", 1) for kv in line.split())
        for k in ("slot", "gen", "pid", "restarts"):
            d[k] = int(d[k])
        out.append(d)
    return out


def current(srv):
    """{slot: pid} of READY current-generation workers."""
    return {w["slot"]: w["pid"] for w in workers(srv)
            if w["current"] == "yes" and w["state"] == "READY"}


def metrics(srv):
    """Admin /metrics -> {series text (name{labels}): float}."""
    st, _, body = srv.admin("/metrics")
    if st != 200:
        raise AssertionError("/metrics returned %d" % st)
    out = {}
    for line in body.decode().splitlines():
        if not line or line.startswith("#"):
            continue
        k, v = line.rsplit(" ", 1)
        out[k] = float(v)
    return out


def metric_sum(m, name):
    """Sum of every series of exactly this metric name (any labels)."""
    return sum(v for k, v in m.items() if k == name or k.startswith(name + "{"))


def fd_targets(pid):
    d = "/proc/%d/fd" % pid
    out = {}
    for fd in os.listdir(d):
        try:
            out[int(fd)] = os.readlink(os.path.join(d, fd))
        except OSError:
            pass
    return out


def socket_inode(target):
    """'socket:[123]' -> 123, else None."""
    if target.startswith("socket:["):
        return int(target[8:-1])
    return None


def pid_alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def check_prometheus_text(text):
    """Validates the exposition format rules csmcpd must keep: one # TYPE per family, before
    its samples; a family's samples contiguous; every sample line "name{labels} value"."""
    import re
    sample = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^\n]*\})? (\S+)$')
    typed, seen_family, current = {}, set(), None
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            if name in typed:
                raise AssertionError("second TYPE line for %s" % name)
            typed[name] = kind
            current = name
            continue
        if not line or line.startswith("#"):
            continue
        m = sample.match(line)
        if not m:
            raise AssertionError("malformed sample line: %r" % line)
        name = m.group(1)
        family = name
        for suffix in ("_bucket", "_sum", "_count"):
            if name.endswith(suffix) and typed.get(name[:-len(suffix)]) == "histogram":
                family = name[:-len(suffix)]
        if family != current:
            raise AssertionError("sample %r outside its family block (current %s)" %
                                 (line, current))
        float(m.group(3))
        seen_family.add(family)
    return len(seen_family)

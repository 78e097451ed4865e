"""Helpers for the operations tests (tests/integration/test_ops_*.py). Stdlib only.

- NotifySocket: a fake systemd NOTIFY_SOCKET (AF_UNIX datagram) that records sd_notify
  messages with their arrival time.
- promtool, run, libconfig/unit-file readers, install_tree.
Scratch PostgreSQL clusters, psql and need_tool are in lib.py (lib.ScratchPostgres(55434) and
up for the ops tests). Ports used by the ops tests: 18500-18999.
"""
import os
import shutil
import socket
import subprocess
import tempfile
import time

import lib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


class NotifySocket:
    """A fake NOTIFY_SOCKET: records every datagram as (monotonic time, {key: value}, raw)."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="csmcp-ops-notify-")
        self.path = os.path.join(self.dir, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        # Like PID 1: learn each sender's PID from SCM_CREDENTIALS (NotifyAccess=main drops
        # messages whose sender is not the main PID).
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.settimeout(0.1)
        self.messages = []
        self.senders = []

    def _recv(self):
        import struct
        data, anc, _, _ = self.sock.recvmsg(65536, socket.CMSG_SPACE(12))
        pid = None
        for level, typ, val in anc:
            if level == socket.SOL_SOCKET and typ == socket.SCM_CREDENTIALS:
                pid = struct.unpack("iII", val[:12])[0]
        kv = dict(l.split("=", 1) for l in data.decode(errors="replace").split("\n") if "=" in l)
        self.messages.append((time.monotonic(), kv, data))
        self.senders.append(pid)
        return data

    def poll(self, duration=0.0):
        """Reads whatever arrives within duration seconds (at least one non-blocking pass)."""
        deadline = time.monotonic() + duration
        while True:
            try:
                data = self._recv()
            except socket.timeout:
                data = None
            if data is not None:
                continue
            if time.monotonic() >= deadline:
                return

    def drain(self):
        """Reads only what is queued right now (never waits)."""
        self.sock.setblocking(False)
        try:
            while True:
                try:
                    self._recv()
                except (BlockingIOError, InterruptedError):
                    return
        finally:
            self.sock.settimeout(0.1)

    def wait_for(self, key, value=None, timeout=30.0, start=0):
        """Waits for a message (index >= start) carrying key (=value); returns its index."""
        deadline = time.monotonic() + timeout
        while True:
            for i in range(start, len(self.messages)):
                kv = self.messages[i][1]
                if key in kv and (value is None or kv[key] == value):
                    return i
            if time.monotonic() >= deadline:
                raise AssertionError("no %s%s from csmcpd within %.0fs; got: %r" % (
                    key, "=" + value if value else "", timeout,
                    [m[2] for m in self.messages]))
            self.poll(0.2)

    def close(self):
        self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def promtool():
    return lib.need_tool("promtool", "prometheus")


def run(argv, timeout=120, **kw):
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)


def read_libconfig(path):
    """Parses the subset of libconfig our example files use: groups of `key = value;` with
    strings, integers, booleans and lists of strings. Returns {"group": {"key": value}}."""
    import json
    import re
    out, group = {}, None
    with open(path) as f:
        for raw in f:
            line = raw.split("#", 1)[0].strip() if '"' not in raw else raw.strip()
            if line.startswith("#") or not line:
                continue
            m = re.match(r"^(\w+)\s*=\s*\{$", line)
            if m:
                group = out.setdefault(m.group(1), {})
                continue
            if line == "};":
                group = None
                continue
            m = re.match(r"^(\w+)\s*=\s*(.*);$", line)
            if not m or group is None:
                raise AssertionError("%s: cannot parse line: %r" % (path, raw))
            key, val = m.group(1), m.group(2).strip()
            if val in ("true", "false"):
                v = val == "true"
            elif re.match(r"^-?\d+$", val):
                v = int(val)
            else:
                v = json.loads(val) if val.startswith(("[", '"')) else val
            group[key] = v
    return out


def read_unit(path):
    """Parses a systemd unit file into {section: [(key, value), ...]} (repeated keys kept)."""
    out, sec = {}, None
    with open(path) as f:
        for raw in f:
            line = raw.strip()
            if not line or line.startswith(("#", ";")):
                continue
            if line.startswith("[") and line.endswith("]"):
                sec = out.setdefault(line[1:-1], [])
                continue
            k, v = line.split("=", 1)
            sec.append((k.strip(), v.strip()))
    return out


def unit_get(unit, section, key):
    vals = [v for k, v in unit.get(section, []) if k == key]
    return vals


def install_tree(build_dir):
    """`meson install --destdir` of build_dir into a temp root; returns (root, prefix)."""
    import json
    root = tempfile.mkdtemp(prefix="csmcp-ops-root-")
    r = run(["meson", "install", "-C", build_dir, "--destdir", root, "--no-rebuild",
             "--quiet"], timeout=300)
    if r.returncode != 0:
        raise AssertionError("meson install failed:\n%s%s" % (r.stdout, r.stderr))
    with open(os.path.join(build_dir, "meson-info", "intro-buildoptions.json")) as f:
        opts = {o["name"]: o["value"] for o in json.load(f)}
    return root, opts

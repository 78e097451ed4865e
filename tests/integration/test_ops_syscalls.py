"""The units' SystemCallFilter= allows every system call csmcp really makes.

A too-tight filter is the classic way hardening breaks a service in production only (EPERM from
a syscall nobody expected, e.g. during a reload). Without a booted systemd we cannot run the
service under its real seccomp filter, so this test does the next best thing: it records
every system call made by csmcpd, its workers and csmcpctl (start, /health, /ready, MCP
initialize + tools/list, SIGHUP reload, `csmcpctl reload --wait`, status, SIGTERM drain) and by
the backup and restore scripts (bash, psql, pg_dump, pg_restore, sha256sum, flock) with
`strace -f`, and checks each against the allow-list the unit declares, expanded by
`systemd-analyze syscall-filter` (systemd's own group definitions): @default (always allowed)
+ @system-service - @privileged.
"""
import os
import re
import shutil
import signal
import subprocess
import tempfile
import unittest

import lib
import ops_util as ou


def syscall_groups():
    out = ou.run(["systemd-analyze", "syscall-filter", "--no-pager"]).stdout
    groups, cur = {}, None
    for line in out.splitlines():
        if line.startswith("@"):
            cur = groups.setdefault(line.strip(), set())
        elif cur is not None and line.strip() and not line.strip().startswith("#"):
            cur.add(line.strip())
    return groups


def expand(groups, name, seen=None):
    seen = seen if seen is not None else set()
    if name in seen:
        return set()
    seen.add(name)
    out = set()
    for m in groups.get(name, ()):
        out |= expand(groups, m, seen) if m.startswith("@") else {m}
    return out


def allowed_by(unit_path):
    """The syscall allow-list of a unit's SystemCallFilter= lines (allow, then ~deny)."""
    groups = syscall_groups()
    allow, deny = set(), set()
    for v in ou.unit_get(ou.read_unit(unit_path), "Service", "SystemCallFilter"):
        target = deny if v.startswith("~") else allow
        for item in v.lstrip("~").split():
            target |= expand(groups, item) if item.startswith("@") else {item}
    return (allow | expand(groups, "@default")) - deny


def socket_families(path):
    """Address families passed to socket()/socketpair() in `strace -C` output."""
    with open(path) as f:
        return set(re.findall(r"\bsocket(?:pair)?\((AF_[A-Z0-9]+)", f.read()))


def strace_summary(path):
    """Syscall names from the summary table of `strace -c`/`-C` output."""
    names = set()
    with open(path) as f:
        for line in f:
            m = re.match(r"^\s*[\d.]+\s+[\d.]+\s+\d+\s+\d+\s+(?:\d+\s+)?(\w+)\s*$", line)
            if m and m.group(1) != "total":
                names.add(m.group(1))
    return names


class TestSyscallFilter(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.strace = lib.need_tool("strace", "strace")
        lib.need_tool("systemd-analyze", "systemd")
        cls.tmp = tempfile.mkdtemp(prefix="csmcp-ops-strace-")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def traced(self, name, argv, **kw):
        out = os.path.join(self.tmp, name + ".strace")
        # -C: the per-call trace (for socket families) and the summary table (for names).
        return out, subprocess.Popen([self.strace, "-f", "-qq", "-C", "-e", "signal=none",
                                      "-o", out] + argv, **kw)

    def check(self, used, unit):
        allowed = allowed_by(os.path.join(ou.ROOT, "systemd", unit))
        self.assertGreater(len(allowed), 200)
        self.assertGreater(len(used), 30, "strace recorded too little: %s" % sorted(used))
        denied = sorted(used - allowed)
        print("    %s: %d distinct syscalls used, all within the filter" % (unit, len(used))
              if not denied else "")
        self.assertEqual(denied, [], "%s's SystemCallFilter= would deny these" % unit)

    def test_csmcpd_and_workers(self):
        d = lib.Csmcpd(workers=2)
        used = set()
        out, p = self.traced("csmcpd-t", [lib.CSMCPD, "-t", "-c", d.conf_path], env=d.env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.assertEqual(p.wait(60), 0)
        used |= strace_summary(out)
        d.logf = open(d.log_path, "ab")
        out, d.proc = self.traced("csmcpd", [lib.CSMCPD, "-c", d.conf_path], env=d.env,
                                  stdout=d.logf, stderr=subprocess.STDOUT,
                                  start_new_session=True)
        try:
            d.wait_ready(60)
            for _ in range(5):
                self.assertEqual(d.get("/health")[0], 200)
            d.get("/ready")
            s = d.session()
            s.request("tools/list")
            s.close()
            # SIGHUP to csmcpd itself (strace's child): sent to strace, it never reached csmcpd
            # (the sleep that stood here hid that the reload never happened).
            for pid in lib.worker_pids(d.proc.pid):
                os.kill(pid, signal.SIGHUP)
            lib.wait_for(lambda: (lambda out: "generation 2 " in out and "state running" in out)(
                d.ctl("status").stdout), 60, what="the SIGHUP reload to finish")
            cout, c = self.traced("csmcpctl", [lib.CSMCPCTL, "-s", d.socket, "reload", "--wait",
                                               "--timeout", "60"], env=d.env,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            self.assertEqual(c.wait(90), 0, c.stdout.read())
            used |= strace_summary(cout)
            self.assertEqual(d.ctl("status").returncode, 0)
        finally:
            # SIGTERM to csmcpd itself (strace's child), not to strace, which would detach.
            for pid in lib.worker_pids(d.proc.pid):
                os.kill(pid, signal.SIGTERM)
            try:
                d.proc.wait(60)
            finally:
                if d.proc.poll() is None:
                    os.killpg(d.proc.pid, signal.SIGKILL)
                    d.proc.wait(10)
                d.logf.close()
        used |= strace_summary(out)
        families = socket_families(out) | socket_families(cout)
        allowed_af = set(ou.unit_get(ou.read_unit(os.path.join(ou.ROOT, "systemd", "csmcp.service")),
                                     "Service", "RestrictAddressFamilies")[0].split())
        self.assertIn("AF_INET", families)
        self.assertEqual(sorted(families - allowed_af), [],
                         "RestrictAddressFamilies= would refuse these socket families")
        # The workers were traced too (fork+exec, the control socketpair, accepting clients).
        for sc in ("execve", "socketpair", "accept4", "clone"):
            self.assertIn(sc, used)
        self.check(used, "csmcp.service")

    def test_backup_and_restore_scripts(self):
        pg = lib.ScratchPostgres(55454).start()
        try:
            pg.psql("CREATE DATABASE b")
            pg.psql("CREATE TABLE t (x int); INSERT INTO t SELECT generate_series(1, 100)", db="b")
            env = dict(os.environ, PATH=pg.bindir + ":" + os.environ.get("PATH", ""))
            bdir = os.path.join(self.tmp, "backups")
            out, p = self.traced("backup", [os.path.join(ou.ROOT, "scripts", "backup"), "--url",
                                            pg.url("b").replace("127.0.0.1", "localhost"), "--dir", bdir, "--verify"], env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            self.assertEqual(p.wait(300), 0, p.stdout.read())
            self.check(strace_summary(out), "csmcp-backup.service")
            allowed_af = set(ou.unit_get(ou.read_unit(os.path.join(
                ou.ROOT, "systemd", "csmcp-backup.service")), "Service",
                "RestrictAddressFamilies")[0].split())
            self.assertEqual(sorted(socket_families(out) - allowed_af), [])
        finally:
            pg.stop()


if __name__ == "__main__":
    unittest.main()

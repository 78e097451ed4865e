#!/usr/bin/env python3
"""tests/package/compat_proof.py PREVIOUS.deb [NEW.deb] - proves the `compatible` claims of
db/migrations/COMPAT for every migration NEW has and PREVIOUS lacks: the previous release's
binaries and SQL functions serve on the schema NEW migrated.

  1. fresh database; NEW's `csmcpctl migrate` (every migration, NEW's functions);
  2. PREVIOUS's `csmcpctl migrate` (no migration runs: its SQL functions come back, as after
     `csmcp-release rollback`);
  3. PREVIOUS's csmcpd started (a fresh start, not a reload: releases with different
     configuration key tables cannot be reloaded into each other), the SDK data workflow
     (smoke), and 20 s of keep-alive load (list_clients + register_client): 0 failed requests.
Prints the migrations crossed and their declarations; exit 0 when everything passed.
NEW defaults to the newest dist/csmcp_*.deb. Needs the test PostgreSQL/Redis (pkg_util).
Not part of CI (it needs the previous release's .deb): run it before tagging a release.
"""
import os
import re
import shutil
import sys
import time

import pkg_util as pu
from pkg_util import lib

RELEASE = os.path.join(pu.ROOT, "scripts", "release")


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    prev_deb = sys.argv[1]
    new_deb = sys.argv[2] if len(sys.argv) == 3 else pu.deb_under_test()
    tmp = pu.tmpdir("csmcp-compat-")
    root = os.path.join(tmp, "tree")
    vers = []
    for deb in (prev_deb, new_deb):
        vers.append(pu.run([RELEASE, "--root", root, "unpack", deb], check=True).stdout.strip())
    prev, new = vers
    rel = os.path.join(root, "usr", "lib", "csmcp", "releases")

    def migs(v):
        d = os.path.join(rel, v, "share", "csmcp", "migrations")
        return sorted(f for f in os.listdir(d) if re.match(r"^[0-9]{4}_.*\.sql$", f))
    crossed = sorted(set(migs(new)) - set(migs(prev)))
    compat = {}
    with open(os.path.join(rel, new, "share", "csmcp", "migrations", "COMPAT")) as f:
        for ln in f:
            if ln.strip() and not ln.startswith("#"):
                compat[ln.split()[0]] = ln.split("#", 1)[0].split()[1]
    print("previous %s -> new %s: %d migration(s) crossed" % (prev, new, len(crossed)))
    for m in crossed:
        print("  %s: %s" % (m, compat.get(m[:4], "UNDECLARED")))
    claimed = [m for m in crossed if compat.get(m[:4]) == "compatible"]

    db = "csmcp_pkg_compat"
    url = pu.fresh_database(db)
    conf = os.path.join(tmp, "csmcp.conf")
    port, admin = lib.free_port(), lib.free_port()
    pu.write_conf(conf, port, admin, os.path.join(tmp, "ctl.sock"), url, pu.redis_url(10),
                  pu.secret_file(tmp),
                  worker_binary=os.path.join(rel, prev, "libexec", "csmcp", "csmcp-worker"))
    # NEW's configuration keys may be unknown to PREVIOUS: the file only uses keys both know.
    ok = True
    srv = None
    try:
        pu.run([os.path.join(rel, new, "bin", "csmcpctl"), "-c", conf, "migrate"], check=True)
        r = pu.run([os.path.join(rel, prev, "bin", "csmcpctl"), "-c", conf, "migrate"], check=True)
        print("previous release's migrate: " + " / ".join(l for l in r.stdout.splitlines()
                                                          if l.startswith(("migrate:", "functions:"))))
        srv = pu.Server(os.path.join(rel, prev, "sbin", "csmcpd"), conf, admin,
                        os.path.join(tmp, "csmcpd.log")).start()
        exes = srv.worker_exes()
        assert exes and all("/releases/%s/" % prev in e for e in exes), exes
        sok, out = pu.sdk_workflow(port)
        print("previous release's SDK workflow on the new schema: %s"
              % out.strip().splitlines()[-1])
        ok &= sok
        load = pu.Load(port, sessions=4, write_every=5, max_seconds=20).start()
        time.sleep(20)
        load.stop()
        print("previous release under load on the new schema: %s" % load.summary())
        ok &= load.failed == 0 and load.ok > 0
    finally:
        if srv is not None:
            srv.stop()
        pu.drop_database(db)
        shutil.rmtree(tmp, ignore_errors=True)
    print("compatible claims %s: %s" % ("PROVEN" if ok else "NOT proven",
                                        ", ".join(m[:4] for m in claimed) or "none"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

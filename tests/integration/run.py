#!/usr/bin/env python3
"""Runs every tests/integration/test_*.py (or the modules named on the command line) and
prints the closing line "N passed, N failed". Exit 1 on any failure or error, and when no test
ran at all.

--jobs 2 (what `scripts/dev test` uses): the modules run in two groups at once, each against
its own database and its own Redis (group 2 uses CSMCP_TEST_DATABASE_URL_B and
CSMCP_TEST_REDIS_URL_B, which `scripts/dev test` prepares: a copy of the seeded database and a
second redis-server), so that one group's waits (restarts, timeouts, heartbeats) overlap the
other's work. Modules that set RUN_ALONE = True (they stop the shared PostgreSQL, or measure
throughput) run afterwards, one at a time, with nothing else running. Without the _B variables
--jobs is ignored and everything runs in one process, as before."""
import os
import re
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

# Seconds per module in a clean-clone CI run with both groups at once on a loaded 2-core machine
# (ASan, per-test times plus an allowance for a set-up that migrates and seeds its own
# database): only used to balance the two groups (longest first onto the lighter group);
# unknown modules count 3.
WEIGHTS = {
    "test_sec_ctl": 223, "test_data_portfolio": 205, "test_process_supervisor": 165,
    "test_sec_issue23": 108, "test_ops_backup": 97, "test_sec_audit_durable": 83,
    "test_tools_support": 79, "test_tools_communication_workflows": 78,
    "test_tools_autonomous": 65, "test_monitor_process": 62, "test_rollup_engage": 59, "test_engage_prefill": 12,
    "test_data_functions": 53, "test_monitor_outbox": 47, "test_data_ctl": 36,
    "test_seed_determinism": 55,
    "test_cluster_sentinel": 35, "test_oauth_jwks": 33, "test_oauth_e2e": 32,
    "test_sec_hostile": 32, "test_tools_scorecards_review": 31, "test_monitor_alerts_resource": 30,
    "test_ops_systemd_contract": 30, "test_data_restart": 29, "test_rollup_equality": 27,
    "test_process_handoff": 25, "test_ops_syscalls": 24, "test_tools_onboarding": 23,
    "test_tools_feedback": 23, "test_platform_add_tool": 22, "test_sec_ratelimit": 21,
    "test_migrate_role": 20, "test_tools_communication": 18, "test_ops_monitoring": 17,
    "test_tool_registry_gen": 17, "test_tools_retention": 17, "test_ops_runbooks": 17,
    "test_data_sdk_workflow": 16, "test_sec_auth": 15, "test_tools_scorecards_sdk": 15,
    "test_tools_communication_bulk": 15, "test_cluster_replica": 14, "test_tools_scorecards": 13,
    "test_tools_onboarding_sdk": 13, "test_tools_autonomous_sdk": 12,
    "test_tools_feedback_sdk": 12, "test_tools_expansion": 12, "test_tools_communication_sdk": 12,
    "test_mcp_fuzz": 10, "test_data_tools": 10, "test_expansion_sdk_workflow": 10,
    "test_tools_retention_sdk": 10, "test_mcp_sessions": 9, "test_rollup_equality_portf": 45,
    "test_rollup_equality_segments": 70,
    "test_rollup_equality_resolve": 30,
    "test_rollup_equality_revenue": 75,
    "test_build_cycles": 9,
}


class Result(unittest.TextTestResult):
    def startTest(self, test):
        self._t0 = time.monotonic()
        super().startTest(test)

    def addSuccess(self, test):
        super().addSuccess(test)
        self.stream.write("    (%.1fs)\n" % (time.monotonic() - self._t0))


def run_here(names):
    """Runs the modules (all when names is empty) in this process; returns (passed, failed)."""
    loader = unittest.TestLoader()
    if names:
        suite = unittest.TestSuite(loader.loadTestsFromName(n.replace(".py", "")) for n in names)
    else:
        suite = loader.discover(HERE, pattern="test_*.py", top_level_dir=HERE)
    runner = unittest.TextTestRunner(verbosity=2, resultclass=Result, stream=sys.stdout)
    res = runner.run(suite)
    failed = len(res.failures) + len(res.errors) + len(res.unexpectedSuccesses)
    skipped = len(res.skipped)
    passed = max(0, res.testsRun - failed - skipped)
    # A skipped test is a failure here: CI must provide every dependency.
    failed += skipped
    if res.testsRun == 0:
        failed += 1
    return passed, failed


def runs_alone(name):
    with open(os.path.join(HERE, name + ".py"), encoding="utf-8") as f:
        return re.search(r"^RUN_ALONE = True\b", f.read(), re.M) is not None


def split(names):
    """Two groups of about equal weight (longest first onto the lighter group)."""
    groups, load = ([], []), [0, 0]
    for n in sorted(names, key=lambda n: (-WEIGHTS.get(n, 3), n)):
        i = 0 if load[0] <= load[1] else 1
        groups[i].append(n)
        load[i] += WEIGHTS.get(n, 3)
    return groups


def group_env(i):
    env = dict(os.environ)
    if i == 1:
        for k in ("DATABASE_URL", "REDIS_URL"):
            env["CSMCP_TEST_" + k] = os.environ["CSMCP_TEST_%s_B" % k]
            env["CSMCP_" + k] = os.environ["CSMCP_TEST_%s_B" % k]
    return env


def run_parallel(names):
    alone = [n for n in names if runs_alone(n)]
    groups = split([n for n in names if n not in alone])
    t0 = time.monotonic()
    logs, procs = [], []
    for i, g in enumerate(groups):
        log = tempfile.TemporaryFile("w+", encoding="utf-8")
        print("group %d (%d modules, ~%d s): %s" % (i + 1, len(g), sum(WEIGHTS.get(n, 3)
              for n in g), " ".join(g)), flush=True)
        procs.append(subprocess.Popen([sys.executable, "-u", __file__] + g, stdout=log,
                                      stderr=subprocess.STDOUT, env=group_env(i), cwd=HERE))
        logs.append(log)
    passed = failed = 0
    rerun = []
    for i, (p, log) in enumerate(zip(procs, logs)):
        rc = p.wait()
        log.seek(0)
        out = log.read()
        log.close()
        print("\n---------------- group %d (exit %d, %.0f s after start) ----------------"
              % (i + 1, rc, time.monotonic() - t0))
        print(out, end="", flush=True)
        m = re.search(r"^integration: (\d+) passed, (\d+) failed$", out, re.M)
        ids = failed_ids(out)
        if m is None or (rc != 0 and not ids):
            failed += 1 + len(ids)  # the group died before its summary, or failed unnamed
        else:
            passed += int(m.group(1))
            failed += max(0, int(m.group(2)) - len(ids))  # e.g. skipped: not re-run
            rerun += ids
    if alone:
        print("\n---------------- run alone: %s ----------------" % " ".join(alone), flush=True)
        p, f = run_here(alone)
        passed += p
        failed += f
    if rerun:
        # A test that failed while the other group ran is run again alone, once: it counts as
        # passed only if it passes with nothing else running, and it is named in the summary
        # so that a flaky test stays visible.
        print("\n---------------- failed in parallel, run again alone: %s ----------------"
              % " ".join(rerun), flush=True)
        p, f = run_here(rerun)
        passed += p
        failed += f
        print("PASSED ONLY WHEN RUN ALONE: %d of %d (%s)" % (p, len(rerun), " ".join(rerun)))
    return passed, failed


def failed_ids(out):
    """unittest's FAIL:/ERROR: lines as loadable names (module.Class.test, or module.Class for
    a setUpClass error, or the module for a setUpModule/import error)."""
    ids = []
    for kind, what in re.findall(r"^(FAIL|ERROR): (.+)$", out, re.M):
        m = re.match(r"(\w+) \(([\w.]+)\)", what)
        if m is None:
            continue
        name = m.group(2)
        if m.group(1) == "setUpModule" or m.group(1) == "tearDownModule":
            name = name.split(".")[0]
        if name not in ids:
            ids.append(name)
    return ids


def main():
    args = sys.argv[1:]
    jobs = 1
    if "--jobs" in args:
        k = args.index("--jobs")
        jobs = int(args[k + 1])
        del args[k:k + 2]
    names = [a.replace(".py", "") for a in args if not a.startswith("-")]
    parallel = (jobs > 1 and os.environ.get("CSMCP_TEST_DATABASE_URL_B")
                and os.environ.get("CSMCP_TEST_REDIS_URL_B"))
    if parallel:
        if not names:
            names = sorted(f[:-3] for f in os.listdir(HERE)
                           if f.startswith("test_") and f.endswith(".py"))
        passed, failed = run_parallel(names)
    else:
        passed, failed = run_here(names)
    print("integration: %d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()

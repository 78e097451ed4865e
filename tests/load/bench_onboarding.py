#!/usr/bin/python3
"""bench_onboarding.py - per-tool latency of the onboarding & training tools (issue 15).

Starts csmcpd (auth and rate limits off) on the database of CSMCP_DATABASE_URL (seed it first:
`csmcpctl seed --accounts 10000`), opens one MCP session, and calls each tool/action --n times in
turn (sequential: the latency of one call, not throughput), printing p50/p99 per line. Writes are
real and go to demo accounts: plans created and cancelled on one account without an open plan, a
task of an open plan blocked and unblocked, training sessions recorded, a certification issued
and revoked for a user who passed the basic modules.

usage: CSMCP_DATABASE_URL=... CSMCP_REDIS_URL=... tests/load/bench_onboarding.py [--n 200]
"""
import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import data_util as du  # noqa: E402
import lib  # noqa: E402


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def one(url, q):
    return du.psql(url, q).split("\n")[0].split("|")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200)
    a = ap.parse_args()
    n = max(5, min(a.n, 5000))
    url = os.environ["CSMCP_DATABASE_URL"]
    # an account with an open plan (progress, activation, task toggling), one without (create/cancel),
    # a certified user (issue/revoke)
    open_c, open_p = one(url, "SELECT client_id, plan_id FROM onboarding_plans WHERE status = 'in_progress' AND "
                              "client_id LIKE 'demo\\_%' ORDER BY plan_id LIMIT 1")
    task, task_state = one(url, "SELECT k.task_id, k.status FROM onboarding_tasks k JOIN onboarding_milestones m "
                                "USING (milestone_id) WHERE m.plan_id = '%s' AND k.status IN ('open', 'blocked') "
                                "ORDER BY k.task_id LIMIT 1" % open_p)
    free_c = one(url, "SELECT a.client_id FROM accounts a WHERE a.client_id LIKE 'demo\\_%' AND a.lifecycle_stage = 'active' "
                      "AND NOT EXISTS (SELECT 1 FROM onboarding_plans p WHERE p.client_id = a.client_id AND p.status IN "
                      "('draft', 'scheduled', 'in_progress', 'delayed')) ORDER BY 1 LIMIT 1")[0]
    # training sessions go to another account, so that the read tools measure a typical account
    train_c = one(url, "SELECT client_id FROM onboarding_plans WHERE status = 'in_progress' AND client_id LIKE 'demo\\_%' "
                       "ORDER BY plan_id DESC LIMIT 1")[0]
    cert_c, cert_u, cert_id = one(url, "SELECT client_id, user_email, certification_id FROM certifications WHERE level = 'basic' "
                                       "AND revoked_at IS NULL AND client_id LIKE 'demo\\_%' ORDER BY 1, 2 LIMIT 1")
    d = lib.Csmcpd(workers=2, conf={"ratelimit": {"enabled": False}}).start()
    s = d.session()
    state = {"task": task_state, "plan": None, "cert": cert_id}
    try:
        def create():
            r = s.call_ok("create_onboarding_plan", {"client_id": free_c, "customer_goals": ["Bench goal"],
                                                     "technical_complexity": "high", "timeline_weeks": 6})
            state["plan"] = r["onboarding_plan"]["plan_id"]

        def cancel():
            s.call_ok("update_onboarding_progress", {"client_id": free_c, "plan_id": state["plan"], "plan_status": "cancelled"})

        def toggle_task():
            nxt = "blocked" if state["task"] == "open" else "open"
            args = {"client_id": open_c, "plan_id": open_p, "task_id": int(task), "task_status": nxt}
            if nxt == "blocked":
                args["blocker"] = "bench"
            s.call_ok("update_onboarding_progress", args)
            state["task"] = nxt

        def issue():
            r = s.call_ok("manage_certification_program", {"client_id": cert_c, "action": "issue",
                                                           "certification_level": "basic", "user_email": cert_u})
            state["cert"] = r["result"]["certification_id"]

        def revoke():
            s.call_ok("manage_certification_program", {"client_id": cert_c, "action": "revoke",
                                                        "certification_id": state["cert"], "reason": "bench"})
        cases = [
            ("create_onboarding_plan (6 milestones)", create, cancel),
            ("update_onboarding_progress plan cancel", cancel, create),
            ("update_onboarding_progress task toggle", toggle_task, None),
            ("activate_onboarding_automation (re-activate)", lambda: s.call_ok("activate_onboarding_automation", {
                "client_id": open_c, "plan_id": open_p}), None),
            ("deliver_training_session (5 attendees)", lambda: s.call_ok("deliver_training_session", {
                "client_id": train_c, "training_module_id": "mod_fundamentals", "attendees": [
                    {"email": "bench%d@bench.example.com" % i, "assessment_score": 0.5 + i / 10, "rating": 4} for i in range(5)]}), None),
            ("manage_certification_program list", lambda: s.call_ok("manage_certification_program", {"client_id": cert_c}), None),
            ("manage_certification_program track", lambda: s.call_ok("manage_certification_program", {
                "client_id": cert_c, "action": "track"}), None),
            ("manage_certification_program revoke", revoke, issue),
            ("manage_certification_program issue", issue, revoke),
            ("track_onboarding_progress", lambda: s.call_ok("track_onboarding_progress", {"client_id": open_c}), None),
            ("optimize_time_to_value", lambda: s.call_ok("optimize_time_to_value", {"client_id": open_c}), None),
            ("map_customer_journey", lambda: s.call_ok("map_customer_journey", {"client_id": open_c}), None),
            ("optimize_onboarding_process (90 days)", lambda: s.call_ok("optimize_onboarding_process", {}), None),
            ("optimize_onboarding_process (365 days)", lambda: s.call_ok("optimize_onboarding_process", {
                "analysis_period_days": 365}), None),
        ]
        print("accounts: %s" % du.psql(url, "SELECT count(*) FROM accounts"))
        print("%-48s %8s %8s %8s" % ("tool / action", "n", "p50 ms", "p99 ms"))
        for name, fn, after in cases:
            if name.endswith(" issue"):
                revoke()  # the user holds the certification after the revoke case
            fn()  # warm-up
            if after:
                after()
            xs = []
            for _ in range(n if "process" not in name else max(5, n // 4)):
                t0 = time.perf_counter()
                fn()
                xs.append((time.perf_counter() - t0) * 1000)
                if after:
                    after()
            print("%-48s %8d %8.1f %8.1f" % (name, len(xs), pct(xs, 50), pct(xs, 99)), flush=True)
    finally:
        if state["plan"]:
            du.psql(url, "UPDATE onboarding_plans SET status = 'cancelled', cancelled_on = csmcp.today() "
                         "WHERE plan_id = '%s' AND status = 'draft'" % state["plan"])
        s.close()
        d.stop()


if __name__ == "__main__":
    main()

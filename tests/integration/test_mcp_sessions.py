"""Sessions across worker processes (owner: core): 4 workers behind one listening socket, every
request on a fresh connection so consecutive requests of a session land on different workers.

Proves: a session works on every worker; DELETE -> 404 on every worker; a worker crash and a
reload do not end sessions; sampling/elicitation answers reach the waiting worker wherever they
land; a stream closed mid-call resumes with Last-Event-ID on any worker; cancellation and the
session's log level cross workers.
"""
import json
import os
import signal
import time
import unittest

import lib
from lib import (assert_no_crash, mcp_initialize as initialize, mcp_headers,
                 mcp_post as post, mcp_rpc as rpc, SseStream)


def slots_serving(d, route="/mcp", status="200"):
    """{slot: count} of csmcp_worker_http_requests_total for route/status (admin /metrics)."""
    st, _, body = d.admin("/metrics")
    out = {}
    for line in body.decode().splitlines():
        if line.startswith("csmcp_worker_http_requests_total{") and \
                'route="%s"' % route in line and 'status="%s"' % status in line:
            slot = line.split('slot="')[1].split('"')[0]
            out[slot] = out.get(slot, 0) + float(line.rsplit(" ", 1)[1])
    return out


def metric_total(d, name):
    """Sum of every series of a counter on the admin /metrics page."""
    st, _, body = d.admin("/metrics")
    total = 0.0
    for line in body.decode().splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            total += float(line.rsplit(" ", 1)[1])
    return total


def grown_slots(d, before, status="200"):
    """Slots whose count of /mcp answers with status grew since before (slots_serving)."""
    after = slots_serving(d, status=status)
    return [s for s in after if after[s] > before.get(s, 0)]


class McpSessions(lib.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = lib.Csmcpd(workers=4, fixtures=True, auth=False,
                           conf={"server": {"heartbeat_ms": 200}})
        cls.d.start()
        cls.port = cls.d.port

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()
        assert_no_crash(cls.d)

    def test_session_spans_workers(self):
        sid, _ = initialize(self.port)
        before = slots_serving(self.d)
        for i in range(40):
            st, _, msgs, raw = rpc(self.port, "ping", sid=sid, id=i)
            self.assertEqual(st, 200, raw)
            self.assertEqual(msgs[0], {"jsonrpc": "2.0", "id": i, "result": {}})
        # heartbeats carry the per-worker counters to the supervisor
        lib.wait_for(lambda: len(grown_slots(self.d, before)) >= 2, 5,
                     what="pings counted on 2 or more workers (before: %r)" % before)

    def test_delete_is_404_on_every_worker(self):
        sid, _ = initialize(self.port)
        # every worker has checked the session recently (mcp.session_cache_ms): a DELETE must
        # still be 404 everywhere at once, not after the cache period
        hits0 = metric_total(self.d, "csmcp_session_cache_hits_total")
        for i in range(40):
            self.assertEqual(rpc(self.port, "ping", sid=sid, id=i)[0], 200)
        st, _, _ = lib.http_request(self.port, "DELETE", "/mcp", headers=mcp_headers(sid))
        self.assertEqual(st, 200)
        before = slots_serving(self.d, status="404")
        for _ in range(40):
            st, _, _, _ = rpc(self.port, "tools/list", sid=sid)
            self.assertEqual(st, 404)
        lib.wait_for(lambda: len(grown_slots(self.d, before, "404")) >= 2, 5,
                     what="404s counted on 2 or more workers (before: %r)" % before)
        # the 40 pings were mostly answered from the cache (a miss per worker per period); the
        # supervisor's /metrics holds the counters of each worker's last heartbeat, so wait for the
        # heartbeat that carries them (a clone CI run read 18 one heartbeat early)
        lib.wait_for(lambda: metric_total(self.d, "csmcp_session_cache_hits_total") - hits0 > 20, 5,
                     what="more than 20 session cache hits for the 40 pings")

    def test_delete_races_requests_on_other_workers(self):
        # 5 rounds: warm every worker's cache, DELETE, then at once 8 requests on 8 fresh
        # connections: not one may be served
        for r in range(5):
            sid, _ = initialize(self.port)
            for i in range(12):
                self.assertEqual(rpc(self.port, "ping", sid=sid, id=i)[0], 200)
            st, _, _ = lib.http_request(self.port, "DELETE", "/mcp", headers=mcp_headers(sid))
            self.assertEqual(st, 200)
            for _ in range(8):
                self.assertEqual(rpc(self.port, "ping", sid=sid)[0], 404, "round %d" % r)

    def test_worker_crash_and_reload_keep_sessions(self):
        sid, _ = initialize(self.port)
        pids = lib.worker_pids(self.d.proc.pid)
        self.assertEqual(len(pids), 4)
        os.kill(pids[0], signal.SIGKILL)
        for i in range(30):
            st, _, msgs, raw = rpc(self.port, "tools/call",
                                   {"name": "test_simple_text", "arguments": {}}, sid=sid, id=i)
            self.assertEqual(st, 200, raw)
        lib.wait_until(lambda: len(lib.worker_pids(self.d.proc.pid)) == 4 and
                       pids[0] not in lib.worker_pids(self.d.proc.pid), 10, what="respawn")
        old = set(lib.worker_pids(self.d.proc.pid))
        self.d.signal(signal.SIGHUP)
        lib.wait_until(lambda: not (set(lib.worker_pids(self.d.proc.pid)) & old) and
                       len(lib.worker_pids(self.d.proc.pid)) == 4, 30, what="reload")
        for i in range(20):
            st, _, msgs, raw = rpc(self.port, "ping", sid=sid, id=i)
            self.assertEqual(st, 200, raw)

    def _call_answering(self, sid, tool, args, answer):
        """Calls tool on an SSE stream; answers the server's request on fresh connections."""
        s = SseStream(self.port, "POST", mcp_headers(sid), {
            "jsonrpc": "2.0", "id": 5, "method": "tools/call",
            "params": {"name": tool, "arguments": args}})
        try:
            self.assertEqual(s.status, 200)
            msgs, _ = s.messages_until(lambda m: "method" in m and "id" in m)
            req = msgs[-1]
            self.assertTrue(str(req["id"]).startswith("srv-"), req)
            st, _, _, raw = post(self.port, {"jsonrpc": "2.0", "id": req["id"], "result": answer},
                                 sid, lib.PROTOCOL)
            self.assertEqual(st, 202, raw)
            msgs, _ = s.messages_until(lambda m: m.get("id") == 5)
            self.assertEqual(msgs[-1].get("id"), 5, msgs)
            return req, msgs[-1]["result"]
        finally:
            s.close()

    def test_sampling_and_elicitation_answers_cross_workers(self):
        sid, _ = initialize(self.port, capabilities={"sampling": {}, "elicitation": {}})
        for i in range(6):
            req, res = self._call_answering(
                sid, "test_sampling", {"prompt": "p%d" % i},
                {"role": "assistant", "content": {"type": "text", "text": "hi%d" % i},
                 "model": "m", "stopReason": "endTurn"})
            self.assertEqual(req["method"], "sampling/createMessage")
            self.assertEqual(req["params"]["messages"][0]["content"]["text"], "p%d" % i)
            self.assertEqual(res["content"][0]["text"], "LLM response: hi%d" % i)
        req, res = self._call_answering(sid, "test_elicitation", {"message": "who?"},
                                        {"action": "accept",
                                         "content": {"username": "u", "email": "e@x.io"}})
        self.assertEqual(req["method"], "elicitation/create")
        self.assertIn("action=accept", res["content"][0]["text"])
        self.assertIn("e@x.io", res["content"][0]["text"])

    def test_sampling_without_capability_is_tool_error(self):
        sid, _ = initialize(self.port)
        st, _, msgs, _ = rpc(self.port, "tools/call", {"name": "test_sampling",
                                                       "arguments": {"prompt": "x"}}, sid=sid)
        self.assertTrue(msgs[-1]["result"]["isError"])

    def test_resume_after_stream_closed_mid_call(self):
        sid, _ = initialize(self.port)
        for i in range(3):
            s = SseStream(self.port, "POST", mcp_headers(sid), {
                "jsonrpc": "2.0", "id": 40 + i, "method": "tools/call",
                "params": {"name": "test_reconnection", "arguments": {}}})
            first = s.next_event()
            msgs, ids = s.messages_until(lambda m: False, deadline_s=5)
            s.close()
            self.assertIn("retry", first)
            self.assertEqual(first.get("data", ""), "")
            self.assertEqual(msgs, [])  # closed before the result
            last = ids[-1] if ids else first["id"]
            g = SseStream(self.port, "GET", mcp_headers(sid, accept="text/event-stream",
                                                        extra={"Last-Event-ID": last}))
            try:
                self.assertEqual(g.status, 200)
                msgs, ids = g.messages_until(lambda m: m.get("id") == 40 + i)
                self.assertEqual(msgs[-1]["id"], 40 + i, msgs)
                self.assertIn("Reconnection test completed", msgs[-1]["result"]["content"][0]["text"])
                # ids of one stream, strictly after the one we resumed from
                self.assertTrue(all(x.split("_")[0] == last.split("_")[0] for x in ids), ids)
            finally:
                g.close()

    def test_replay_of_a_finished_stream(self):
        sid, _ = initialize(self.port)
        s = SseStream(self.port, "POST", mcp_headers(sid), {
            "jsonrpc": "2.0", "id": 9, "method": "tools/call",
            "params": {"name": "test_tool_with_progress", "arguments": {},
                       "_meta": {"progressToken": 77}}})
        first = s.next_event()
        msgs, ids = s.messages_until(lambda m: m.get("id") == 9)
        s.close()
        progress = [m["params"]["progress"] for m in msgs if m.get("method") ==
                    "notifications/progress"]
        self.assertEqual(progress, [0, 50, 100])
        self.assertTrue(all(m["params"]["progressToken"] == 77 for m in msgs if "params" in m))
        g = SseStream(self.port, "GET", mcp_headers(sid, accept="text/event-stream",
                                                    extra={"Last-Event-ID": ids[1]}))
        try:
            replay, _ = g.messages_until(lambda m: m.get("id") == 9)
        finally:
            g.close()
        self.assertEqual(replay, msgs[2:])

    def test_cancellation_crosses_workers(self):
        sid, _ = initialize(self.port)
        s = SseStream(self.port, "POST", mcp_headers(sid), {
            "jsonrpc": "2.0", "id": "c1", "method": "tools/call",
            "params": {"name": "test_tool_with_progress", "arguments": {},
                       "_meta": {"progressToken": "t"}}})
        try:
            msgs, _ = s.messages_until(lambda m: m.get("method") == "notifications/progress")
            self.assertTrue(msgs)
            st, _, _, _ = post(self.port, {"jsonrpc": "2.0", "method": "notifications/cancelled",
                                           "params": {"requestId": "c1", "reason": "test"}},
                               sid, lib.PROTOCOL)
            self.assertEqual(st, 202)
            rest, _ = s.messages_until(lambda m: "id" in m, deadline_s=5)
            self.assertFalse([m for m in rest if m.get("id") == "c1"], rest)
        finally:
            s.close()

    def test_log_level_is_session_state(self):
        sid, _ = initialize(self.port)

        def logs():
            s = SseStream(self.port, "POST", mcp_headers(sid), {
                "jsonrpc": "2.0", "id": 3, "method": "tools/call",
                "params": {"name": "test_tool_with_logging", "arguments": {}}})
            try:
                if not s.headers.get("content-type", "").startswith("text/event-stream"):
                    return [json.loads(s.resp.read())]
                msgs, _ = s.messages_until(lambda m: m.get("id") == 3)
                return msgs
            finally:
                s.close()

        for i in range(12):  # cached in every worker with the default level
            self.assertEqual(rpc(self.port, "ping", sid=sid, id=i)[0], 200)
        st, _, msgs, _ = rpc(self.port, "logging/setLevel", {"level": "error"}, sid=sid)
        self.assertEqual(msgs[0]["result"], {})
        msgs = logs()
        self.assertEqual([m for m in msgs if m.get("method") == "notifications/message"], [])
        rpc(self.port, "logging/setLevel", {"level": "debug"}, sid=sid)
        msgs = logs()
        notes = [m for m in msgs if m.get("method") == "notifications/message"]
        self.assertEqual(len(notes), 3, msgs)
        self.assertEqual(notes[0]["params"]["level"], "info")
        self.assertEqual(msgs[-1]["id"], 3)


class StuckWorkerInvalidation(lib.TestCase):
    """A worker that cannot acknowledge an invalidation (stopped) delays a DELETE by the bounded
    wait only, and drops the session as soon as it runs again."""

    def test_delete_with_a_stopped_worker(self):
        d = lib.Csmcpd(workers=2, fixtures=True, auth=False,
                       conf={"server": {"heartbeat_ms": 200, "worker_timeout": 10}})
        with d:
            sid, _ = initialize(d.port)
            for i in range(12):  # both workers have the session in their cache
                self.assertEqual(rpc(d.port, "ping", sid=sid, id=i)[0], 200)
            pids = lib.worker_pids(d.proc.pid)
            self.assertEqual(len(pids), 2, pids)
            os.kill(pids[1], signal.SIGSTOP)  # cannot accept, cannot acknowledge
            try:
                t0 = time.monotonic()
                st, _, _ = lib.http_request(d.port, "DELETE", "/mcp", headers=mcp_headers(sid))
                waited = time.monotonic() - t0
            finally:
                os.kill(pids[1], signal.SIGCONT)
            self.assertEqual(st, 200)
            self.assertGreaterEqual(waited, 0.25)  # waited for the stopped worker's ack ...
            self.assertLess(waited, 3.0)  # ... but only for the bounded time
            time.sleep(0.2)  # the resumed worker reads the invalidation queued while stopped
            for _ in range(8):
                self.assertEqual(rpc(d.port, "ping", sid=sid)[0], 404)
            lib.wait_until(lambda: metric_total(d, "csmcp_session_invalidation_timeouts_total")
                           >= 1, 5, what="timeout counted")
        assert_no_crash(d)


if __name__ == "__main__":
    unittest.main()

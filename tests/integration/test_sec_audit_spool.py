"""Issue 26: the local audit spool. With audit.on_failure = refuse and audit.spool_dir set (the
default), a tool call is answered once its record is fsynced in the worker's spool (or committed
in PostgreSQL); the records move into the hash chain in order; the segments a killed worker
leaves are shipped by the other workers, idempotent by (writer, seq); a torn tail is ignored.
Each case on a scratch database; audit_head's row lock held by another transaction stalls every
audit commit (test_sec_audit_durable.Stall)."""
import collections
import glob
import hashlib
import json
import os
import struct
import time

import lib
import sec_util as su
from test_sec_audit_durable import Base, Stall, pg_ctl, PG_DATA
from test_sec_issue23 import metric_sum

# run.py --jobs runs this module alone: it stops the shared test PostgreSQL
RUN_ALONE = True

MAGIC = b"CSMCPAUDITSPOOL1"


def _crc_table():
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        t.append(c)
    return t


CRC_T = _crc_table()


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = (c >> 8) ^ CRC_T[(c ^ b) & 0xFF]
    return c ^ 0xFFFFFFFF


def frame(rec):
    payload = json.dumps(rec, separators=(",", ":")).encode()
    return struct.pack("<II", len(payload), crc32c(payload)) + payload


def segment(url, frames):
    hdr = MAGIC + hashlib.sha256(url.encode()).hexdigest()[:32].encode()
    hdr += b"\0" * (64 - len(hdr))
    return hdr + b"".join(frames)


def record(writer, seq, marker):
    return {"principal": "key:spooltest", "method": "tools/call", "tool": "list_clients",
            "args": {"search": "%s_%d" % (marker, seq)}, "outcome": "ok", "latency_ms": 1,
            "at_us": 1764000000000000 + seq, "writer": writer, "seq": seq}


class Spool(Base):
    def spool_dir(self):
        return self.d.groups["audit"]["spool_dir"]

    def metrics(self):
        return self.d.admin("/metrics")[2].decode()

    def test_answer_after_spool_fsync_record_reaches_the_chain_later(self):
        self.start()
        m = self.metrics()
        self.assertEqual(metric_sum(m, "csmcp_audit_spool_active"), 1, m)
        self.assertTrue(glob.glob(os.path.join(self.spool_dir(), "audit-*.spool")))
        marker = "sp_%d" % int(time.time() * 1000)
        st = Stall(self.url, 4)
        t0 = time.monotonic()
        for i in range(5):
            self.s.call_ok("list_clients", {"search": "%s_%d" % (marker, i)})
        elapsed = time.monotonic() - t0
        # acknowledged from the spool while no commit was possible; not in the table yet
        self.assertLess(elapsed, 2.5, "the spool did not acknowledge")
        self.assertEqual(self.rows("args->>'search' LIKE '%s_%%'" % marker), 0)
        # the lag gauge is refreshed once a second and reaches the supervisor with a heartbeat:
        # wait (bounded, the lock is held 4 s) instead of reading at a fixed instant
        lib.wait_until(lambda: metric_sum(self.metrics(), "csmcp_audit_ship_lag_seconds") > 0.5
                       or None, 2.5, interval=0.1, what="ship lag over 0.5 s")
        m = self.metrics()
        self.assertGreaterEqual(metric_sum(m, "csmcp_audit_spool_records"), 5, m)
        self.assertGreater(metric_sum(m, "csmcp_audit_ship_lag_seconds"), 0.5, m)
        self.assertGreater(metric_sum(m, "csmcp_audit_spool_bytes"), 64, m)
        st.wait()
        lib.wait_until(lambda: self.rows("args->>'search' LIKE '%s_%%'" % marker) == 5 or None,
                       20, interval=0.2, what="the spooled records in the chain")
        v = self.d.ctl_db("audit", "verify")
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)
        st2 = self.d.ctl("status")
        self.assertIn("fsynced in the local spool", st2.stdout)
        print("\n    5 calls acknowledged in %.2f s with audit_head locked; committed after" %
              elapsed)

    def test_leftover_reship_is_idempotent_and_torn_tail_ignored(self):
        self.start()
        marker = "rs_%d" % int(time.time() * 1000)
        writer = "424242-%s" % marker[-12:].rjust(16, "0")
        recs = [record(writer, i, marker) for i in range(1, 11)]
        # 1..6 already in the chain (the dead worker's batch committed before it died)
        su.psql(self.url, "SELECT csmcp.audit_append_batch('%s'::jsonb)" %
                json.dumps(recs[:6]).replace("'", "''"))
        # its spool: 1..10, then a torn frame (length says 400, 37 bytes present) after a frame
        # with a bad CRC
        bad = bytearray(frame(record(writer, 11, marker)))
        bad[10] ^= 0xFF
        torn = struct.pack("<II", 400, 0) + b"x" * 37
        data = segment(self.url, [frame(r) for r in recs]) + bytes(bad) + torn
        path = os.path.join(self.spool_dir(), "audit-%s-000001.spool" % writer)
        with open(path + ".tmp", "wb") as f:
            f.write(data)
        os.rename(path + ".tmp", path)
        lib.wait_until(lambda: not os.path.exists(path) or None, 20, interval=0.2,
                       what="the leftover segment shipped and deleted")
        n, nd, lo, hi = su.psql(self.url, "SELECT count(*), count(DISTINCT seq), min(seq), "
                                "max(seq) FROM audit_log WHERE writer = '%s'" % writer
                                ).strip().split("|")
        self.assertEqual((int(n), int(nd), int(lo), int(hi)), (10, 10, 1, 10))
        # the same segment again (e.g. a shipper killed before it deleted the file): no duplicate
        with open(path + ".tmp", "wb") as f:
            f.write(segment(self.url, [frame(r) for r in recs]))
        os.rename(path + ".tmp", path)
        lib.wait_until(lambda: not os.path.exists(path) or None, 20, interval=0.2,
                       what="the re-shipped segment deleted")
        self.assertEqual(int(su.psql(self.url, "SELECT count(*) FROM audit_log WHERE writer = "
                                     "'%s'" % writer).strip()), 10)
        v = self.d.ctl_db("audit", "verify")
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)
        time.sleep(1.2)
        m = self.metrics()
        self.assertGreaterEqual(metric_sum(m, "csmcp_audit_spool_torn_total"), 1)
        self.assertGreaterEqual(metric_sum(m, "csmcp_audit_spool_recovered_total"), 20)
        self.assertIn("ends in", self.d.log_tail(300))
        # a segment written for another database is not ours to ship
        other = os.path.join(self.spool_dir(), "audit-777-00000000000000aa-000001.spool")
        with open(other, "wb") as f:
            f.write(segment(self.url + "?x", [frame(record("777-00000000000000aa", 1, marker))]))
        time.sleep(2.5)
        self.assertTrue(os.path.exists(other))
        self.assertEqual(self.rows("writer = '777-00000000000000aa'"), 0)

    def test_kill_9_with_records_only_in_the_spool(self):
        """Calls acknowledged while no commit is possible (their records only in the spool),
        then kill -9 of the worker: after the restart, every one is in the chain."""
        self.start(workers=1)
        marker = "k9_%d" % int(time.time() * 1000)
        st = Stall(self.url, 6)
        answered, errors, stop, ts = self.steady_clients(marker)
        time.sleep(2.5)
        pids = lib.worker_pids(self.d.proc.pid)
        os.kill(pids[0], 9)
        stop.set()
        for t in ts:
            t.join(60)
        n_killed = len(answered)
        self.assertGreater(n_killed, 10)
        self.assertEqual(self.rows("args->>'search' LIKE '%s_%%'" % marker), 0,
                         "the stall did not hold: records were committed before the kill")
        st.wait()
        lib.wait_until(lambda: len(lib.worker_pids(self.d.proc.pid)) == 1 or None, 30,
                       what="the restarted worker")
        v = self.assert_all_recorded(marker, answered)
        lib.wait_until(lambda: not glob.glob(os.path.join(
            self.spool_dir(), "audit-%d-*.spool" % pids[0])) or None, 20, interval=0.3,
            what="the dead worker's segments deleted after shipping")
        # kill -9 cannot tear a write (completed write()s are in the page cache): the zero-filled
        # extension after the last frame is the clean end of the segment, not a torn tail
        time.sleep(1.2)
        m = self.d.admin("/metrics")[2].decode()
        self.assertEqual(metric_sum(m, "csmcp_audit_spool_torn_total"), 0, m)
        self.assertGreaterEqual(metric_sum(m, "csmcp_audit_spool_recovered_total"), n_killed)
        print("\n    %d calls acknowledged from the spool alone, worker killed, all %d in the "
              "chain after the restart; verify: %s" % (n_killed, n_killed, v[:40]))


class SpoolDatabaseOutage(Base):
    """PostgreSQL stopped for 10 s under steady calls: with the spool, calls go on being
    acknowledged during the outage, and every one is in the chain after recovery. Stops the
    test cluster of `scripts/dev services test` (var/test/pg): run alone."""

    def test_calls_acknowledged_through_the_outage_all_recorded_after(self):
        if not os.path.isdir(PG_DATA):
            raise AssertionError("no local test cluster at %s (scripts/dev services test)" %
                                 PG_DATA)
        self.start(workers=2)
        marker = "so_%d" % int(time.time() * 1000)
        answered, errors, stop, ts = self.steady_clients(marker)
        time.sleep(2)
        r = pg_ctl("stop", "-m", "fast", "-w")
        self.assertEqual(r.returncode, 0, r.stderr)
        down_at = time.monotonic()
        before = len(answered)
        try:
            time.sleep(10)
        finally:
            during = len(answered) - before
            r = pg_ctl("start", "-w", "-l", os.path.join(PG_DATA, "server.log"))
            self.assertEqual(r.returncode, 0, r.stderr)
        up_at = time.monotonic()
        time.sleep(5)
        stop.set()
        for t in ts:
            t.join(90)
        # list_clients reads the database: during the outage its calls fail (isError results
        # are acknowledged calls too, and audited); what matters is that each has its record
        self.assertGreater(during, 20, "nothing was acknowledged during the outage")
        v = self.assert_all_recorded(marker, answered)
        m = self.d.admin("/metrics")[2].decode()
        self.assertEqual(metric_sum(m, "csmcp_audit_dropped_total"), 0)
        kinds = collections.Counter(
            (e[0], (e[1] or {}).get("code") if isinstance(e[1], dict) else str(e[1])[:40])
            for e in errors)
        print("\n    PostgreSQL down %.1f s: %d calls acknowledged during it, %d in all, every "
              "one with its record after recovery; %d not acknowledged %s; verify: %s" % (
                  up_at - down_at, during, len(answered), len(errors),
                  dict(kinds.most_common(3)), v[:40]))

"""Helpers for the data and tool tests (test_data_*.py, test_tools_*.py): id prefixes, a
deterministic fixture with hand-computed expectations, and a small JSON Schema checker for
structuredContent against a tool's outputSchema. psql, scratch clusters and csmcpctl are in
lib.py. Stdlib only."""
import threading
import uuid

import lib

# psql, csmcpctl and scratch clusters live in lib.py (one implementation each). These names
# stay so that tests written against data_util keep working; new tests use lib.* directly.
psql = lib.psql
psql_json = lib.psql_json
ctl_db = lib.ctl_db
PGBIN = lib.pg_bindir()


class PrivatePostgres(lib.ScratchPostgres):
    """lib.ScratchPostgres with a database csmcp, which url() names by default."""

    def __init__(self):
        super().__init__(databases=["csmcp"])

    def url(self, db="csmcp", user="postgres"):
        return super().url(db, user)


def run_writers(writer, seeds, timeout):
    """The rollup-equality tests' concurrent writers: writer(seed, errors) once per seed, all at
    once in threads; returns the errors they appended, plus one for every writer still running
    after `timeout` seconds (the checks must not run while a writer is mid-way)."""
    errors = []
    threads = [threading.Thread(target=writer, args=(seed, errors)) for seed in seeds]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=timeout)
    errors += ["writer %d still running after %d s" % (i, timeout)
               for i, th in enumerate(threads) if th.is_alive()]
    return errors


def prefix():
    """A fresh id prefix so tests never collide with each other or with seeded data."""
    return "dt" + uuid.uuid4().hex[:8]


# ---------------------------------------------------------------- the fixture

def fixture_sql(p):
    """Accounts <p>_a, <p>_b, <p>_c (industry 'Industry <p>') with data whose health
    components are computed by hand in FIXTURE_EXPECT. Dates are relative to today (UTC)."""
    return """
DO $fx$
DECLARE t date := csmcp.today();
BEGIN
INSERT INTO features (feature_id, name, category, is_core) VALUES
  ('{p}_dash', 'Fixture dashboard', 'core', false), ('{p}_rep', 'Fixture reports', 'core', false)
  ON CONFLICT DO NOTHING;
INSERT INTO accounts (client_id, client_name, company_name, industry, tier, lifecycle_stage, created_at)
VALUES ('{p}_a', 'Alpha {p}', 'Alpha Co', 'Industry {p}', 'professional', 'active', now() - interval '100 days'),
       ('{p}_b', 'Beta {p}', 'Beta Co', 'Industry {p}', 'starter', 'active', now() - interval '400 days'),
       ('{p}_c', 'Gamma {p}', 'Gamma Co', 'Industry {p}', 'standard', 'onboarding', now() - interval '10 days');
-- A: 10 seats, renewal in 265 days, one invoice paid late, none overdue.
INSERT INTO contracts (contract_id, client_id, tier, contract_value, licensed_seats, start_date, end_date)
VALUES ('CTR-{p}_a', '{p}_a', 'professional', 50000, 10, t - 100, t + 265),
       ('CTR-{p}_b', '{p}_b', 'starter', 8000, 20, t - 345, t + 20);
INSERT INTO invoices VALUES ('INV-{p}_a1', 'CTR-{p}_a', '{p}_a', 12500, t - 100, t - 70, t - 60),
                            ('INV-{p}_a2', 'CTR-{p}_a', '{p}_a', 12500, t - 10, t + 20, NULL),
                            ('INV-{p}_b1', 'CTR-{p}_b', '{p}_b', 2000, t - 40, t - 10, NULL);
-- A: 8 daily active users and 40 events on each of the last 90 days, except a spike of 40
-- users 45 days ago (an anomaly); feature rows: dash every day of 30, rep on 15 of them.
INSERT INTO usage_daily (client_id, day, active_users, events, session_minutes)
SELECT '{p}_a', t - k, CASE WHEN k = 45 THEN 40 ELSE 8 END, 40, 160 FROM generate_series(0, 89) k;
INSERT INTO usage_feature_daily (client_id, day, feature_id, events, users)
SELECT '{p}_a', t - k, '{p}_dash', 30, 8 FROM generate_series(0, 29) k;
INSERT INTO usage_feature_daily (client_id, day, feature_id, events, users)
SELECT '{p}_a', t - k, '{p}_rep', 10, 3 FROM generate_series(0, 14) k;
INSERT INTO feature_adoption VALUES ('{p}_a', '{p}_dash', t - 89), ('{p}_a', '{p}_rep', t - 14);
-- B: 2 users on 10 days (t-20 .. t-11): last usage 11 days ago.
INSERT INTO usage_daily (client_id, day, active_users, events)
SELECT '{p}_b', t - k, 2, 5 FROM generate_series(11, 20) k;
-- Tickets: A two in the lookback (one P1), B twelve (three P0), plus old ones outside it.
INSERT INTO support_tickets (ticket_id, client_id, subject, description, priority, requester_email, requester_name,
                             sla_first_response_minutes, sla_resolution_minutes, created_at)
VALUES ('TKT-{n}01', '{p}_a', 'Slow dashboard', 'd', 'P1', 'x@y.io', 'X', 15, 240, now() - interval '2 days'),
       ('TKT-{n}02', '{p}_a', 'Export question', 'd', 'P3', 'x@y.io', 'X', 240, 2880, now() - interval '3 days'),
       ('TKT-{n}03', '{p}_a', 'Old issue', 'd', 'P0', 'x@y.io', 'X', 5, 60, now() - interval '60 days');
INSERT INTO support_tickets (ticket_id, client_id, subject, description, priority, requester_email, requester_name,
                             sla_first_response_minutes, sla_resolution_minutes, created_at)
SELECT 'TKT-{n}' || (10 + k), '{p}_b', 'Problem ' || k, 'd', CASE WHEN k <= 3 THEN 'P0' ELSE 'P3' END, 'x@y.io', 'X',
       5, 60, now() - make_interval(days => k)
FROM generate_series(1, 12) k;
UPDATE support_tickets SET status = 'resolved', resolved_at = created_at + interval '1 hour'
WHERE ticket_id = 'TKT-{n}03';
-- NPS: A 10, 9, 7, 3 in the lookback (NPS 25) and a 0 outside it; B only outside it.
INSERT INTO nps_responses (response_id, client_id, score, responded_at)
VALUES ('NPS-{p}-1', '{p}_a', 10, now() - interval '1 day'), ('NPS-{p}-2', '{p}_a', 9, now() - interval '5 days'),
       ('NPS-{p}-3', '{p}_a', 7, now() - interval '6 days'), ('NPS-{p}-4', '{p}_a', 3, now() - interval '7 days'),
       ('NPS-{p}-5', '{p}_a', 0, now() - interval '45 days'), ('NPS-{p}-6', '{p}_b', 10, now() - interval '40 days');
-- B's previous stored score 60 (its next calculation is declining).
INSERT INTO health_scores (client_id, calculated_at, usage_score, engagement_score, support_score, satisfaction_score,
                           payment_score, overall_score, trend, risk_level, churn_probability, lookback_days)
VALUES ('{p}_b', now() - interval '7 days', 60, 60, 60, 60, 60, 60, 'stable', 'high', 0.40, 30);
INSERT INTO communications (client_id, channel, subject, occurred_at)
VALUES ('{p}_a', 'email', 'Kickoff recap', now() - interval '4 days');
END $fx$;
""".format(p=p, n=str(int(p[2:], 16) % 10 ** 7).zfill(7))


# Expected health components (lookback 30 days), computed by hand from fixture_sql:
#  A usage round(100*min(1, 8/10)) = 80; engagement (last usage today) 95; support
#    100 - min(30, 3*2) - min(20, 10*1) = 84; satisfaction (25 + 100)/2 = 62.5;
#    payment 100 - 20 (late invoice) = 80
#    score round(.35*80 + .25*95 + .15*84 + .15*62.5 + .10*80) = round(81.725) = 82
#  B usage round(100 * (2*10/30) / 20) = 3; engagement (11 days) 60; support
#    100 - min(30, 36) - min(20, 30) = 50; satisfaction (none in lookback) 70; payment
#    100 - 40 (overdue) - 10 (renewal in 20 days) = 50
#    score round(1.05 + 15 + 7.5 + 10.5 + 5) = 39; previous 60 -> change -21, declining
#  C no contract: usage 50, payment 85; never used: engagement 50; support 100; satisfaction 70
#    score round(17.5 + 12.5 + 15 + 10.5 + 8.5) = 64
FIXTURE_EXPECT = {
    "a": {"components": {"usage": 80, "engagement": 95, "support": 84, "satisfaction": 62.5,
                         "payment": 80}, "score": 82, "risk": "low", "churn": 0.18},
    "b": {"components": {"usage": 3, "engagement": 60, "support": 50, "satisfaction": 70,
                         "payment": 50}, "score": 39, "risk": "critical", "churn": 0.61},
    "c": {"components": {"usage": 50, "engagement": 50, "support": 100, "satisfaction": 70,
                         "payment": 85}, "score": 64, "risk": "high", "churn": 0.36},
}


# ---------------------------------------------------------------- schema check

_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "integer": lambda v: (isinstance(v, int) and not isinstance(v, bool)) or
    (isinstance(v, float) and v.is_integer()),
}


def schema_errors(schema, value, path="structuredContent"):
    """The subset of JSON Schema the data tools' output schemas use: type (incl. lists), const,
    enum, required, properties, items, minimum, maximum. Returns a list of error strings."""
    errs = []
    t = schema.get("type")
    if t is not None:
        types = t if isinstance(t, list) else [t]
        if not any(_TYPES[x](value) for x in types):
            return ["%s: expected %s, got %r" % (path, t, value)]
    if "const" in schema and value != schema["const"]:
        errs.append("%s: expected const %r" % (path, schema["const"]))
    if "enum" in schema and value not in schema["enum"]:
        errs.append("%s: %r not in %r" % (path, value, schema["enum"]))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            errs.append("%s: %r < minimum" % (path, value))
        if "maximum" in schema and value > schema["maximum"]:
            errs.append("%s: %r > maximum" % (path, value))
    if isinstance(value, dict):
        for k in schema.get("required", []):
            if k not in value:
                errs.append("%s: missing %s" % (path, k))
        for k, sub in schema.get("properties", {}).items():
            if k in value:
                errs.extend(schema_errors(sub, value[k], "%s.%s" % (path, k)))
    if isinstance(value, list) and "items" in schema:
        for i, x in enumerate(value):
            errs.extend(schema_errors(schema["items"], x, "%s[%d]" % (path, i)))
    return errs


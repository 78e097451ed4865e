"""The expansion workflow through the official TypeScript SDK client (pinned in tests/client):
seats nearly full -> identify_upsell_opportunities -> track_renewals -> forecast_renewals ->
negotiate_renewals, exact values, structuredContent validated against outputSchema by the SDK
(expansion_sdk_workflow.mjs)."""
import importlib.util
import os
import subprocess

import data_util as du
import lib

CLIENT_DIR = os.path.join(lib.ROOT, "tests", "client")

FIXTURE = """
DO $fx$
DECLARE t date := csmcp.today();
BEGIN
INSERT INTO accounts (client_id, client_name, company_name, industry, tier, lifecycle_stage, health_score)
VALUES ('{c}', 'SDK workflow {c}', 'SDK Co', 'SDK {c}', 'standard', 'active', 88);
INSERT INTO contracts (contract_id, client_id, contract_type, tier, contract_value, licensed_seats, start_date, end_date)
VALUES ('CTR-{c}', '{c}', 'annual', 'standard', 40000, 20, t - 335, t + 30);
INSERT INTO usage_daily (client_id, day, active_users, events) SELECT '{c}', t - d, 19, 50 FROM generate_series(0, 29) d;
END $fx$;
"""


class ExpansionSdkWorkflowTest(lib.TestCase):
    def test_workflow_through_typescript_sdk(self):
        spec = importlib.util.spec_from_file_location("csmcp_client_run",
                                                      os.path.join(CLIENT_DIR, "run.py"))
        client_run = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(client_run)
        client_run.npm_install()
        sdk = os.path.join(CLIENT_DIR, "node_modules", "@modelcontextprotocol", "sdk", "dist",
                           "esm")
        url = lib.database_url()
        cid = du.prefix() + "_sdk"
        du.psql(url, FIXTURE.format(c=cid))
        try:
            with lib.Csmcpd(workers=2) as d:
                p = subprocess.run([client_run.NODE,
                                    os.path.join(os.path.dirname(__file__), "expansion_sdk_workflow.mjs"),
                                    "http://127.0.0.1:%d/mcp" % d.port, sdk, cid],
                                   capture_output=True, text=True, timeout=120)
        finally:
            du.psql(url, "DELETE FROM accounts WHERE client_id = '%s'" % cid)
        out = p.stdout + p.stderr
        self.assertEqual(p.returncode, 0, out)
        self.assertIn("5 passed, 0 failed", out)


if __name__ == "__main__":
    lib.main()

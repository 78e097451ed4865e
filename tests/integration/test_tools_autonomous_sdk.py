"""The autonomous monitors through the official TypeScript SDK client (pinned in tests/client):
list, configuration, resources/subscribe on csmcp://alerts/<client_id>, trigger_worker_now, the
notifications/resources/updated it causes, resources/read, status."""
import data_util as du
import lib


class AutonomousSdkWorkflowTest(lib.TestCase):
    def test_workflow_through_typescript_sdk(self):
        url = lib.database_url()
        p = du.prefix()
        saved = du.psql(url, "SELECT json_agg(json_build_object('name', name, 'enabled', enabled)) FROM monitors")
        du.psql(url, "UPDATE monitors SET enabled = false")
        du.psql(url, "INSERT INTO accounts (client_id, client_name, company_name, health_score, lifecycle_stage) "
                     "VALUES ('%s_sdk', 'SDK', 'SDK Inc', 40, 'active')" % p)
        try:
            rc, out = lib.run_sdk_workflow("autonomous_sdk_workflow.mjs", p + "_sdk",
                                           conf={"monitor": {"enabled": True, "tick_ms": 200}})
        finally:
            du.psql(url, "UPDATE monitors m SET enabled = (x->>'enabled')::boolean FROM json_array_elements('%s'::json) x "
                         "WHERE m.name = x->>'name'" % saved.replace("'", "''"))
            du.psql(url, "DELETE FROM accounts WHERE client_id = '%s_sdk'" % p)
        self.assertEqual(rc, 0, out)
        self.assertIn("5 passed, 0 failed", out)
        print("\n" + "\n".join(l for l in out.splitlines() if "notified" in l))


if __name__ == "__main__":
    lib.main()

"""Issue 16: the base demo seed (csmcp.seed_demo) gives contacts real-looking, never-deliverable
addresses: first.last@<slug of the account's name>.test (RFC 2606), no placeholder domain.
Runs the seed for 20 accounts inside a transaction that is rolled back."""
import data_util as du
import lib


class SeedContactsTest(lib.TestCase):
    def test_demo_contacts_on_test_tld(self):
        url = lib.database_url()
        out = du.psql(url, (
            "BEGIN; SELECT count(*) >= 0 FROM (SELECT csmcp.seed_demo(20)) s; "
            "SELECT concat_ws('|', count(*), count(*) FILTER (WHERE c.email = csmcp.seed_contact_email(c.name, a.client_name)), "
            "count(*) FILTER (WHERE c.email NOT LIKE '%.test' OR c.email LIKE '%example%' OR c.name LIKE 'Contact %'), "
            "count(DISTINCT c.email)) FROM contacts c JOIN accounts a USING (client_id) WHERE a.client_id LIKE 'demo\\_%'; "
            "SELECT count(*) FROM accounts WHERE client_id LIKE 'demo\\_%' AND primary_contact_email NOT IN "
            "(SELECT email FROM contacts c WHERE c.client_id = accounts.client_id AND c.is_primary); "
            "SELECT count(*) FROM support_tickets WHERE client_id LIKE 'demo\\_%' AND requester_email LIKE '%example.com'; "
            "SELECT count(*) FROM nps_responses WHERE response_id LIKE 'NPS-demo%' AND respondent_email NOT LIKE '%.test'; "
            "SELECT csmcp.seed_contact_email('Oscar García', 'Aperture Media 3'); "
            "SELECT count(*) FROM support_agents WHERE agent_id BETWEEN 'agt_01' AND 'agt_08' AND email LIKE '%example.com'; "
            "ROLLBACK;"))
        lines = [x for x in out.split("\n") if x not in ("BEGIN", "ROLLBACK", "t")]
        total, derived, bad, distinct = map(int, lines[0].split("|"))
        self.assertGreater(total, 20)
        self.assertEqual((derived, bad, distinct), (total, 0, total))
        self.assertEqual(lines[1:], ["0", "0", "0", "oscar.garcia@aperture-media-3.test", "0"])

    def test_no_placeholder_address_in_any_seeded_row(self):
        """Every seed part (support, retention, onboarding, feedback, ...): no row the seed
        writes holds an example.com/.org/.net address or URL (TOOLS.md: no placeholders). Rows
        are told apart by xmin = this transaction, so other tests' fixtures do not count."""
        out = du.psql(lib.database_url(), r"""
BEGIN;
CREATE FUNCTION pg_temp.placeholders() RETURNS text LANGUAGE plpgsql AS $$
DECLARE r record; n bigint; found text := '';
BEGIN
  FOR r IN SELECT c.table_name, c.column_name FROM information_schema.columns c
           JOIN information_schema.tables t USING (table_schema, table_name)
           WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE'
             AND c.data_type IN ('text', 'character varying', 'jsonb', 'json')
  LOOP
    EXECUTE format('SELECT count(*) FROM %I WHERE xmin::text = (txid_current() %% 4294967296)::text '
                   'AND %I::text ~* %L', r.table_name, r.column_name, 'example\.(com|org|net)')
      INTO n;
    IF n > 0 THEN found := found || r.table_name || '.' || r.column_name || '=' || n || ' '; END IF;
  END LOOP;
  RETURN found;
END $$;
SELECT count(*) >= 0 FROM (SELECT csmcp.seed_demo(20)) s;
SELECT 'placeholders:' || pg_temp.placeholders();
ROLLBACK;""", timeout=600)
        line = [x for x in out.split("\n") if x.startswith("placeholders:")][0]
        self.assertEqual(line, "placeholders:")

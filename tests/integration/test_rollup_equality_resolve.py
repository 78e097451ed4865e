"""Issue 21, helper "seg2": resolve_account decides its trigram matches on account_search
(migration 0182: one row per searchable text of an account or contact, its pg_trgm trigrams as
integers, kept by row triggers on accounts and contacts), and every answer must equal the
previous SQL's over the accounts/contacts trigram indexes (csmcp.tool_resolve_account_scratch).

  * the integer trigrams give pg_trgm's similarity() exactly, also for texts with letters outside
    ASCII (show_trgm prints those trigrams as hex codes);
  * fixture: 24 accounts and their contacts named from a small vocabulary of the test's own
    (shared words, numbers, misspellings, e-mail domains), so that queries match many of them;
  * 4 concurrent psql writers x 40 random transactions: renames (name, company, primary e-mail
    to NULL or another), new accounts with contacts (some deleted again), contacts added, moved to
    another account, re-addressed and deleted, multi-row renames, no-op updates;
  * then csmcp.account_search_check() is empty and, for many queries and limits, the tool and its
    scratch reference in one REPEATABLE READ snapshot give the same answer;
  * with a maintaining trigger disabled (rolled back) one rename makes the check report it and the
    answer differ from the reference - so the test can fail.
"""
import json
import random

import data_util as du
import lib

WORDS = ["quandrix", "zelvora", "brantic", "oxilum", "pemberly"]
KINDS = ["widgets", "analytics", "foods", "labs"]
PEOPLE = ["anna berg", "jörg müller", "zoë quist", "li wei", "omar haddad"]


def email(person, company):
    return "%s@%s.test" % (person.replace(" ", ".").replace("ö", "o").replace("ü", "u").replace("ë", "e"),
                           company.lower().replace(" ", "-"))


def queries(p):
    """Queries of every kind: names with and without typos, single shared words, numbers, ids,
    e-mail addresses, domains and their parts, words of no account."""
    return ["quandrix widgets 12", "quandrix widgts", "zelvora", "brantic foods 7", "oxilum labs",
            "pemberly analytics 3", "labs", "widgets 1", "12", "%s_3" % p, p, "%s_1" % p,
            "anna berg", "jörg", "zoe quist", "quandrix-widgets-12.test", "li.wei@zelvora-foods-4.test",
            "brantic-labs", "nothing like it", "qu", "pemberly anlytics", "oxilum labs 21 ltd"]


def both(url, q, limit):
    """The tool and its scratch reference in one snapshot."""
    a = json.dumps({"query": q, "limit": limit}).replace("'", "''")
    out = du.psql(url, """
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT jsonb_build_object('new', csmcp.tool_resolve_account('{a}'::jsonb, 'test'),
                          'old', csmcp.tool_resolve_account_scratch('{a}'::jsonb, 'test'));
ROLLBACK;""".format(a=a))
    got = json.loads(out.strip().split("\n")[-1])
    return got["new"], got["old"]


class AccountSearchEquality(lib.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.url = lib.database_url()
        cls.p = du.prefix()
        cls.clients = ["%s_%d" % (cls.p, i) for i in range(24)]
        stmts = []
        for i, c in enumerate(cls.clients):
            name = "%s %s %d" % (WORDS[i % 5].capitalize(), KINDS[i % 4].capitalize(), i)
            person = PEOPLE[i % 5]
            stmts.append("INSERT INTO accounts (client_id, client_name, company_name, tier, lifecycle_stage, "
                         "primary_contact_email) VALUES ('%s', '%s', '%s Ltd', 'standard', 'active', '%s');"
                         % (c, name, name, email(person, name)))
            for k in range(i % 3):
                stmts.append("INSERT INTO contacts (client_id, name, email) VALUES ('%s', '%s', '%s');"
                             % (c, PEOPLE[(i + k + 1) % 5], email(PEOPLE[(i + k + 1) % 5], name)))
        du.psql(cls.url, "".join(stmts))

    @classmethod
    def tearDownClass(cls):
        du.psql(cls.url, "DELETE FROM accounts WHERE client_id LIKE '%s\\_%%'" % cls.p)

    def test_integer_trigrams_give_pg_trgm_similarity(self):
        texts = ["Quandrix Widgets 12", "quandrix widgts", "jörg.müller@zelvora-labs-3.test", "Zoë Quist",
                 "naïve café", "straße 12", "東京 株式会社", "a", "--", "x_y_z", "ÅÄÖ åäö", "emoji 🙂 co"]
        sql = ("SELECT count(*) FROM unnest(%s) a CROSS JOIN unnest(%s) b "
               "CROSS JOIN LATERAL (SELECT csmcp.trgm_codes(lower(a)) x, csmcp.trgm_codes(lower(b)) y) c "
               "WHERE similarity(lower(a), lower(b)) IS DISTINCT FROM "
               "CASE WHEN cardinality(c.x) = 0 OR cardinality(c.y) = 0 THEN 0::real ELSE "
               "csmcp_intarray.icount(c.x OPERATOR(csmcp_intarray.&) c.y)::real / (cardinality(c.x) + cardinality(c.y) "
               "- csmcp_intarray.icount(c.x OPERATOR(csmcp_intarray.&) c.y))::real END")
        arr = "ARRAY[%s]" % ",".join("'%s'" % t for t in texts)
        self.assertEqual(du.psql(self.url, sql % (arr, arr)), "0")

    def writer(self, seed, errors):
        rnd = random.Random(seed)
        stmts = []
        mine = []
        for k in range(40):
            c = rnd.choice(self.clients)
            op = rnd.random()
            name = "%s %s %d" % (rnd.choice(WORDS).capitalize(), rnd.choice(KINDS), rnd.randrange(0, 40))
            if op < 0.15:
                stmts.append("UPDATE accounts SET client_name = '%s' WHERE client_id = '%s';" % (name, c))
            elif op < 0.25:
                stmts.append("UPDATE accounts SET company_name = %s, primary_contact_email = %s WHERE client_id = '%s';"
                             % ("'%s GmbH'" % name,
                                rnd.choice(["NULL", "'%s'" % email(rnd.choice(PEOPLE), name)]), c))
            elif op < 0.4:   # a new account with contacts, sometimes deleted again
                n = "%s_w%d_%d" % (self.p, seed, k)
                stmts.append("INSERT INTO accounts (client_id, client_name, company_name, tier, lifecycle_stage, "
                             "primary_contact_email) VALUES ('%s', '%s', '%s Inc', 'standard', 'active', '%s');"
                             "INSERT INTO contacts (client_id, name, email) VALUES ('%s', 'W', '%s'), ('%s', 'V', '%s');"
                             % (n, name, name, email(PEOPLE[0], name), n, email(PEOPLE[1], name), n,
                                email(PEOPLE[2], name)))
                if rnd.random() < 0.5:
                    stmts.append("SELECT pg_sleep(0.01); DELETE FROM accounts WHERE client_id = '%s';" % n)
                else:
                    mine.append(n)
            elif op < 0.55:
                stmts.append("INSERT INTO contacts (client_id, name, email) VALUES ('%s', 'C', '%s') "
                             "ON CONFLICT DO NOTHING;" % (c, email(rnd.choice(PEOPLE), name)))
            elif op < 0.65:   # a contact re-addressed or moved to another account
                stmts.append("UPDATE contacts SET email = '%s' WHERE contact_id = (SELECT min(contact_id) FROM contacts "
                             "WHERE client_id = '%s' AND NOT is_primary);" % (email(rnd.choice(PEOPLE), name), c))
                if mine:
                    stmts.append("UPDATE contacts SET client_id = '%s' WHERE contact_id = (SELECT max(contact_id) "
                                 "FROM contacts WHERE client_id = '%s') AND NOT EXISTS (SELECT 1 FROM contacts x "
                                 "WHERE x.client_id = '%s' AND x.email = contacts.email);" % (c, mine[-1], c))
            elif op < 0.75:
                stmts.append("DELETE FROM contacts WHERE contact_id = (SELECT max(contact_id) FROM contacts "
                             "WHERE client_id = '%s');" % c)
            elif op < 0.85:   # several accounts in one statement, and an update that changes nothing
                stmts.append("UPDATE accounts SET client_name = client_name || ' x' WHERE client_id LIKE '%s\\_1%%' "
                             "AND length(client_name) < 40;" % self.p)
                stmts.append("UPDATE accounts SET client_name = client_name, health_score = health_score "
                             "WHERE client_id = '%s';" % c)
            elif mine:
                stmts.append("DELETE FROM accounts WHERE client_id = '%s';" % mine.pop())
            else:
                stmts.append("UPDATE accounts SET client_name = upper(client_name) WHERE client_id = '%s';" % c)
        r = lib.psql_run(self.url, "\n".join(stmts), timeout=600)
        if r.returncode != 0:
            errors.append(r.stderr)

    def test_concurrent_writes_then_answers_equal_scratch(self):
        self.assertEqual(du.run_writers(self.writer, [1820 + n for n in range(4)], timeout=600), [])
        self.assertEqual(du.psql(self.url, "SELECT count(*) FROM csmcp.account_search_check()"), "0")
        matched = 0
        for q in queries(self.p):
            for limit in (5, 25):
                new, old = both(self.url, q, limit)
                self.assertEqual(new, old, (q, limit))
                matched += new["total_matches"]
        self.assertGreater(matched, 100)
        # stale trigram frequencies change only which trigrams are probed, never the answer
        du.psql(self.url, "BEGIN; UPDATE account_search_freq SET n = 1000000 - n;"
                          "CREATE TEMP TABLE r AS SELECT csmcp.tool_resolve_account('{\"query\": \"quandrix widgets 12\", "
                          "\"limit\": 25}', 't') a, csmcp.tool_resolve_account_scratch('{\"query\": \"quandrix widgets 12\", "
                          "\"limit\": 25}', 't') b; SELECT 1/(a = b)::int FROM r; ROLLBACK;")

    def test_check_and_answer_fail_without_trigger(self):
        c = self.clients[5]
        q = json.dumps({"query": "Vexmoor Quintal", "limit": 25})
        out = du.psql(self.url, "BEGIN; ALTER TABLE accounts DISABLE TRIGGER account_search_accounts_upd;"
                                "UPDATE accounts SET client_name = 'Vexmoor Quintal' WHERE client_id = '%s';"
                                "SELECT count(*) FROM csmcp.account_search_check();"
                                "SELECT csmcp.tool_resolve_account('%s', 't') = csmcp.tool_resolve_account_scratch('%s', 't');"
                                "ROLLBACK;" % (c, q, q))
        self.assertEqual(out.split("\n")[-2:], ["1", "f"])
        out = du.psql(self.url, "BEGIN; ALTER TABLE contacts DISABLE TRIGGER account_search_contacts_ins;"
                                "INSERT INTO contacts (client_id, name, email) VALUES ('%s', 'N', 'vexmoor@quintal.test');"
                                "SELECT count(*) FROM csmcp.account_search_check(); ROLLBACK;" % c)
        self.assertEqual(out.split("\n")[-1], "1")
        # with the triggers, the same writes are found at once
        out = du.psql(self.url, "BEGIN; UPDATE accounts SET client_name = 'Vexmoor Quintal' WHERE client_id = '%s';"
                                "SELECT count(*) FROM csmcp.account_search_check();"
                                "SELECT csmcp.tool_resolve_account('%s', 't') ->> 'total_matches'; ROLLBACK;" % (c, q))
        self.assertEqual(out.split("\n")[-2:], ["0", "1"])


if __name__ == "__main__":
    lib.main()

"""Issue 21: the seed is deterministic at two sizes and on both paths, over every table.

csmcp.seed_demo(n) runs twice in one transaction (savepoints; the same now(), the sequences reset
to the same values before each run): every public table's rows, every column, are identical.
The bulk path (csmcp.seed_bulk = on: foreign keys, keys and indexes dropped and re-created,
tables loaded without indexes) gives the same rows as the per-row path, except for values drawn
from sequences (serial ids and what embeds them), since the insertion order may differ."""
import data_util as du
import lib

# pg_temp.seed_fp(with_serials): one md5 per public table over the text of every row (sorted),
# leaving out, unless with_serials, the columns whose default is a sequence, the columns
# referencing such a column, and the ids built from sequence values (advocates from contact ids,
# OPP-<n> opportunity ids of the expansion tools, REN-<n> renewal ids that forecast_renewals
# creates for contracts other tests left in the shared database, and the activity log entries
# naming them).
FP = r"""
CREATE OR REPLACE FUNCTION pg_temp.seed_fp(with_serials boolean) RETURNS TABLE (tab text, fp text)
LANGUAGE plpgsql AS $$
DECLARE r record; cols text;
BEGIN
    FOR r IN SELECT c.oid, c.relname FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r'
             ORDER BY c.relname LOOP
        SELECT string_agg(format('%I', a.attname), ', ' ORDER BY a.attnum) INTO cols
        FROM pg_attribute a
        WHERE a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
          AND (with_serials OR NOT (
                coalesce(pg_get_expr((SELECT d.adbin FROM pg_attrdef d WHERE d.adrelid = r.oid AND d.adnum = a.attnum), r.oid), '')
                    LIKE 'nextval(%'
                OR a.attidentity <> ''
                OR EXISTS (SELECT 1 FROM pg_constraint f JOIN pg_attrdef d ON d.adrelid = f.confrelid AND d.adnum = f.confkey[1]
                           WHERE f.contype = 'f' AND f.conrelid = r.oid AND f.conkey = ARRAY[a.attnum]
                             AND pg_get_expr(d.adbin, d.adrelid) LIKE 'nextval(%')
                OR (r.relname LIKE 'advocate%' AND a.attname = 'advocate_id')
                OR (r.relname = 'expansion_opportunities' AND a.attname = 'opportunity_id')
                OR (r.relname IN ('renewals', 'renewal_forecasts') AND a.attname = 'renewal_id')
                OR (r.relname = 'activity_log' AND a.attname IN ('entity_id', 'old_values', 'new_values'))));
        IF cols IS NULL THEN CONTINUE; END IF;
        tab := r.relname;
        EXECUTE format('SELECT md5(coalesce(string_agg(x, E''\n'' ORDER BY x), '''')) FROM (SELECT (%s)::text AS x FROM %I) s',
                       CASE WHEN cols LIKE '%,%' THEN 'ROW(' || cols || ')' ELSE cols END, r.relname) INTO fp;
        RETURN NEXT;
    END LOOP;
END $$;
"""

# The sequences back to where they are now before each run. A sequence never called restarts at
# its start value (setval(seq, 1, false) would make the next value 1: migration 0210's
# escalation_seq starts at 1001, and esc_1 then appeared in the shared test database).
RESET = ("SELECT string_agg(format('SELECT setval(%L, %s, %L);', format('%I.%I', schemaname, sequencename), "
         "coalesce(last_value, start_value), last_value IS NOT NULL), ' ') "
         "FROM pg_sequences WHERE schemaname = 'public'")


class SeedDeterminismTest(lib.TestCase):
    def two_runs(self, n, first_bulk, second_bulk, with_serials):
        """Rows of every table after seed_demo(n) twice in one transaction: {table: (fp1, fp2)}."""
        url = lib.database_url()
        reset = du.psql(url, RESET) or ""
        def run(tag, bulk):
            return ("SAVEPOINT s; %s %s SET LOCAL csmcp.seed_bulk = '%s'; SELECT count(*) > 0 FROM (SELECT csmcp.seed_demo(%d)) x; "
                    "SELECT '%s|' || tab || '|' || fp FROM pg_temp.seed_fp(%s); ROLLBACK TO SAVEPOINT s;"
                    % (reset, "SELECT csmcp.seed_bulk_possible();" if bulk else "", "on" if bulk else "off", n, tag,
                       "true" if with_serials else "false"))
        out = du.psql(url, FP + "BEGIN; " + run("a", first_bulk) + run("b", second_bulk) + " ROLLBACK;")
        lines = [x.split("|") for x in out.split("\n") if x.startswith(("a|", "b|"))]
        a = {t: f for tag, t, f in lines if tag == "a"}
        b = {t: f for tag, t, f in lines if tag == "b"}
        self.assertGreater(len(a), 50)
        self.assertEqual(set(a), set(b))
        self.assertNotIn("f", [x for x in out.split("\n") if x in ("t", "f")], "the test role owns the tables (bulk path)")
        return a, b

    def assertSame(self, a, b):
        diff = sorted(t for t in a if a[t] != b[t])
        self.assertEqual(diff, [], "tables whose rows differ between the two runs")

    def test_deterministic_small(self):
        a, b = self.two_runs(12, False, False, False)
        self.assertSame(a, b)

    def test_deterministic_bulk_larger(self):
        a, b = self.two_runs(40, True, True, False)
        self.assertSame(a, b)

    def test_bulk_path_equals_per_row_path(self):
        a, b = self.two_runs(30, False, True, False)
        self.assertSame(a, b)

    def test_seed_rand_float8_equals_numeric_division(self):
        """csmcp.seed_rand divides in float8 (issue 21, session 7: cheaper per call); its values
        must be those of the former numeric division (x / 4294967296.0 cast to float8), or every
        seeded table would change: checked on md5-derived keys and on the extreme x, then end to
        end: seed_demo(40) on the bulk path with the former seed_rand gives every table's rows."""
        url = lib.database_url()
        out = du.psql(url, "SELECT 'keys|' || count(*) FILTER (WHERE csmcp.seed_rand(k) IS DISTINCT FROM "
                      "(('x' || substr(md5(k), 1, 8))::bit(32)::bigint / 4294967296.0)::float8) "
                      "FROM (SELECT i || 'tc' || (i % 7) AS k FROM generate_series(1, 200000) i) s; "
                      "SELECT 'x|' || count(*) FILTER (WHERE x::float8 / 4294967296.0::float8 <> (x / 4294967296.0)::float8) "
                      "FROM (SELECT g AS x FROM generate_series(0, 200000) g "
                      "UNION ALL SELECT 4294967295 - g FROM generate_series(0, 200000) g) s;")
        self.assertIn("keys|0", out.split("\n"))
        self.assertIn("x|0", out.split("\n"))
        url = lib.database_url()
        reset = du.psql(url, RESET) or ""
        old = ("CREATE OR REPLACE FUNCTION csmcp.seed_rand(k text) RETURNS double precision LANGUAGE sql IMMUTABLE AS "
               "$f$ SELECT ('x' || substr(md5(k), 1, 8))::bit(32)::bigint / 4294967296.0 $f$;")
        def run(tag, pre):
            return ("SAVEPOINT s; %s %s SET LOCAL csmcp.seed_bulk = 'on'; SELECT count(*) > 0 FROM (SELECT csmcp.seed_demo(40)) x; "
                    "SELECT '%s|' || tab || '|' || fp FROM pg_temp.seed_fp(false); ROLLBACK TO SAVEPOINT s;" % (reset, pre, tag))
        out = du.psql(url, FP + "BEGIN; " + run("a", "") + run("b", old) + " ROLLBACK;")
        lines = [x.split("|") for x in out.split("\n") if x.startswith(("a|", "b|"))]
        a = {t: f for tag, t, f in lines if tag == "a"}
        b = {t: f for tag, t, f in lines if tag == "b"}
        self.assertGreater(len(a), 50)
        self.assertEqual(set(a), set(b))
        self.assertSame(a, b)

    def test_bulk_path_restores_triggers_and_rollups(self):
        """The bulk path drops the rollup triggers while it loads (csmcp.seed_bulk_begin) and
        rebuilds the rollups once: afterwards every trigger is back and enabled (the same set as
        before), and the maintained rollups equal a from-scratch computation
        (csmcp.portfolio_check() empty). Then a write after the seed maintains the rollups."""
        url = lib.database_url()
        trg = ("SELECT 'trg|' || coalesce(string_agg(tgrelid::regclass || '.' || tgname || '=' || tgenabled::text, ',' "
               "ORDER BY tgrelid::regclass::text, tgname), '') FROM pg_trigger WHERE NOT tgisinternal;")
        out = du.psql(url, "BEGIN; " + trg + " SET LOCAL csmcp.seed_bulk = 'on'; SELECT csmcp.seed_bulk_possible(); "
                      "SELECT count(*) > 0 FROM (SELECT csmcp.seed_demo(40)) x; " + trg +
                      " SELECT 'check|' || count(*) FROM csmcp.portfolio_check(); "
                      "UPDATE usage_daily SET active_users = active_users + 1 WHERE client_id = 'demo_00007' "
                      "AND day = (SELECT max(day) FROM usage_daily WHERE client_id = 'demo_00007'); "
                      "INSERT INTO nps_responses (response_id, client_id, score, responded_at) "
                      "VALUES ('NPS-bulktest', 'demo_00003', 9, now()); "
                      "INSERT INTO lifecycle_transitions (client_id, from_stage, to_stage, changed_at) "
                      "VALUES ('demo_00005', 'active', 'at_risk', now() - interval '2 days'); "
                      "SELECT 'after|' || count(*) FROM csmcp.portfolio_check(); ROLLBACK;")
        lines = out.split("\n")
        self.assertNotIn("f", [x for x in lines if x in ("t", "f")], "the test role owns the tables (bulk path)")
        trgs = [x for x in lines if x.startswith("trg|")]
        self.assertEqual(len(trgs), 2)
        self.assertEqual(trgs[0], trgs[1], "the triggers after a bulk seed are those before it")
        self.assertNotIn("=D", trgs[1])
        self.assertIn("check|0", lines, "rollups consistent after the bulk seed")
        self.assertIn("after|0", lines, "rollups maintained by the triggers after the bulk seed")

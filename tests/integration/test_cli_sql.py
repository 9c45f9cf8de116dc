"""The operator CLI's schema and key commands: `boxofficectl migrate` on
databases of their own (fresh, upgraded from the earlier layout, and with a
migration whose record fails) and `boxofficectl keygen`.

Each migrate test works in a scratch database of the stack's primary,
dropped afterwards, so the database the other tests use is not touched.
"""

import os
import re
import resource
import shutil
import signal
import subprocess
import tempfile
import unittest

from harness import StackTest, stackmod

SCRATCH_DB = "it_cli_sql"

# The layout before sql/functions/: six migrations, each function defined
# in the migration that last changed it. A database made by these must
# migrate to the schema a new database gets.
OLD_LAYOUT_COMMIT = "971c006"
# The last release without tickets: its payments become tickets (010).
BEFORE_TICKETS_COMMIT = "5adb2dd"
OLD_MIGRATIONS = ["001_schema.sql", "002_demo_data.sql", "003_booking.sql",
                  "004_fast_writes.sql", "005_seat_map_freshness.sql", "006_hold_indexes.sql"]


class MigrateTest(StackTest):
    """A scratch database with a settings file that points boxofficectl at it."""

    def setUp(self):
        s = self.stack
        self.tmp = tempfile.mkdtemp(prefix="it-cli-sql-", dir=s.dir)
        self.dbs = []
        self.conf = self.scratch_db(SCRATCH_DB)

    def tearDown(self):
        for db in self.dbs:
            self.stack.psql("DROP DATABASE IF EXISTS %s WITH (FORCE)" % db, db="postgres")
        shutil.rmtree(self.tmp, ignore_errors=True)

    def scratch_db(self, name):
        """Create an empty database owned by the application role; returns a
        settings file whose primary_dsn names it."""
        s = self.stack
        s.psql("DROP DATABASE IF EXISTS %s WITH (FORCE)" % name, db="postgres")
        s.psql("CREATE DATABASE %s OWNER %s" % (name, stackmod.APP_ROLE), db="postgres")
        self.dbs.append(name)
        conf = os.path.join(self.tmp, "%s.conf" % name)
        with open(conf, "w") as f:
            f.write(s.render_config({("database", "primary_dsn"):
                                     s.dsn("primary", db=name, socket=True)}))
        return conf

    def migrate(self, conf, sql_dir=None):
        s = self.stack
        return s._run([s.ctl_bin, "-c", conf, "migrate", "--sql-dir",
                       sql_dir or os.path.join(s.srcdir, "sql")],
                      timeout=120, check=False)

    def q(self, sql, db=SCRATCH_DB):
        return self.stack.psql(sql, db=db)

    def schema_of(self, db):
        """pg_dump --schema-only of db, without its random \\restrict key."""
        res = subprocess.run([os.path.join(stackmod.PG_BIN, "pg_dump"), "--schema-only",
                              "-h", "127.0.0.1", "-p", str(self.stack.ports["primary"]),
                              "-U", stackmod.PG_SUPERUSER, db],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        self.assertEqual(res.returncode, 0, res.stderr)
        text = res.stdout.decode()
        return re.sub(r"(?m)^\\(un)?restrict .*$", "", text)


class TestMigrate(MigrateTest):

    def test_fresh_database_gets_schema_functions_and_demo_data(self):
        rc, out = self.migrate(self.conf)
        self.assertEqual(rc, 0, out)
        self.assertIn("applied 001_schema.sql", out)
        self.assertRegex(out, r"functions: \d+ files applied")
        rc, out = self.migrate(self.conf)
        self.assertEqual(rc, 0, out)
        self.assertIn("migrations: 0 applied", out)
        rc, out = self.stack._run([self.stack.ctl_bin, "-c", self.conf, "seed", "--users", "3"],
                                  check=False)
        self.assertEqual(rc, 0, out)
        self.assertEqual(self.q("SELECT count(*), sum(balance) FROM users"), [["3", "1500000"]])
        # every constraint has the name the schema gives it
        generated = self.q("SELECT conname FROM pg_constraint WHERE connamespace = "
                           "'public'::regnamespace AND conname ~ '_(check|key)[0-9]*$'")
        self.assertEqual(generated, [])
        fk = self.q("SELECT confrelid::regclass FROM pg_constraint "
                    "WHERE conname = 'seats_reservation_fkey'")
        self.assertEqual(fk, [["reservations"]])

    def test_migration_whose_record_fails_is_not_reported_applied(self):
        # A migration written for a tool that records its own version: the
        # migrator's record of it then fails, the transaction is aborted,
        # and its COMMIT rolls everything back.
        sql_dir = os.path.join(self.tmp, "sql")
        shutil.copytree(os.path.join(self.stack.srcdir, "sql"), sql_dir)
        os.chmod(sql_dir, 0o755)    # the source tree may be read-only (distcheck)
        with open(os.path.join(sql_dir, "900_records_itself.sql"), "w") as f:
            f.write("CREATE TABLE it_self_recorded (v integer);\n"
                    "INSERT INTO schema_migrations (version) VALUES ('900_records_itself.sql');\n")
        rc, out = self.migrate(self.conf, sql_dir)
        self.assertNotEqual(rc, 0, out)
        self.assertNotIn("applied 900_records_itself.sql", out)
        self.assertIn("900_records_itself.sql failed", out)
        self.assertEqual(self.q("SELECT to_regclass('it_self_recorded') IS NULL"), [["t"]])
        self.assertEqual(self.q("SELECT count(*) FROM schema_migrations "
                                "WHERE version = '900_records_itself.sql'"), [["0"]])
        # what came before it stays applied
        self.assertEqual(self.q("SELECT count(*) FROM schema_migrations "
                                "WHERE version = '001_schema.sql'"), [["1"]])

    def test_database_of_the_old_layout_upgrades_to_the_fresh_schema(self):
        s = self.stack
        old = []
        for name in OLD_MIGRATIONS:
            res = subprocess.run(["git", "-C", s.srcdir, "show",
                                  "%s:sql/%s" % (OLD_LAYOUT_COMMIT, name)],
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            if res.returncode != 0:
                self.skipTest("needs the git history of a checkout (%s)" % OLD_LAYOUT_COMMIT)
            old.append(res.stdout.decode())
        rc, out = self.migrate(self.conf)
        self.assertEqual(rc, 0, out)

        upgraded = "it_cli_sql_upgraded"
        conf = self.scratch_db(upgraded)
        # what the earlier boxofficectl migrate left: the six migrations,
        # their records, and a sale under way
        s.psql("CREATE TABLE schema_migrations (version text PRIMARY KEY,"
               " applied_at timestamptz NOT NULL DEFAULT now())",
               db=upgraded, user=stackmod.APP_ROLE)
        for name, text in zip(OLD_MIGRATIONS, old):
            s.psql("BEGIN;" + text + ";INSERT INTO schema_migrations (version) VALUES ('%s');"
                   "COMMIT" % name, db=upgraded, user=stackmod.APP_ROLE)
        s.psql("SELECT boxoffice_seed(1, 1, 5, 2);"
               "SELECT * FROM boxoffice_hold(1, 1, 1, boxoffice_user_uuid(1), 600, 4);"
               "SELECT * FROM boxoffice_hold(1, 1, 2, boxoffice_user_uuid(2), 600, 4);"
               "SELECT * FROM boxoffice_pay(boxoffice_user_uuid(2),"
               " (SELECT reservation_id FROM seats WHERE number = 2), 1, 'k1')",
               db=upgraded, user=stackmod.APP_ROLE)
        rc, out = self.migrate(conf)
        self.assertEqual(rc, 0, out)
        self.assertIn("applied 007_named_constraints.sql", out)
        self.assertEqual(self.schema_of(upgraded), self.schema_of(SCRATCH_DB))
        # the sale goes on: the replay of the payment's key, a new hold
        rows = s.psql("SELECT code FROM boxoffice_pay(boxoffice_user_uuid(2),"
                      " ARRAY[(SELECT reservation_id FROM seats WHERE number = 2)], 1, 'k1',"
                      " false)", db=upgraded)
        self.assertEqual(rows, [["REPLAY"]])
        rows = s.psql("SELECT code FROM boxoffice_hold(1, 1, 3, boxoffice_user_uuid(2), 600, 4,"
                      " 4)", db=upgraded)
        self.assertEqual(rows, [["OK"]])
        self.assertBackfilled(upgraded, 1)

    def test_database_before_tickets_gets_a_ticket_per_payment(self):
        s = self.stack
        old = os.path.join(self.tmp, "before-tickets")
        os.makedirs(old)
        res = subprocess.run("git -C %s archive %s sql | tar -x -C %s"
                             % (s.srcdir, BEFORE_TICKETS_COMMIT, old), shell=True,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if res.returncode != 0:
            self.skipTest("needs the git history of a checkout (%s)" % BEFORE_TICKETS_COMMIT)
        rc, out = self.migrate(self.conf)
        self.assertEqual(rc, 0, out)
        upgraded = "it_cli_sql_tickets"
        conf = self.scratch_db(upgraded)
        rc, out = self.migrate(conf, os.path.join(old, "sql"))
        self.assertEqual(rc, 0, out)
        # a sale under way: three seats paid (two in one payment), one held
        s.psql("SELECT boxoffice_seed(1, 1, 6, 2);"
               "SELECT (boxoffice_hold(1, 1, n, boxoffice_user_uuid(1), 600, 4, 4)).code"
               " FROM generate_series(1, 2) n;"
               "SELECT (boxoffice_hold(1, 1, n, boxoffice_user_uuid(2), 600, 4, 4)).code"
               " FROM generate_series(3, 4) n;"
               "SELECT * FROM boxoffice_pay(boxoffice_user_uuid(1), ARRAY(SELECT reservation_id"
               " FROM seats WHERE number IN (1, 2) ORDER BY number), 1, 'k1', true);"
               "SELECT * FROM boxoffice_pay(boxoffice_user_uuid(2), ARRAY(SELECT reservation_id"
               " FROM seats WHERE number = 3), 1, 'k2', false)",
               db=upgraded, user=stackmod.APP_ROLE)
        rc, out = self.migrate(conf)
        self.assertEqual(rc, 0, out)
        self.assertIn("applied 010_tickets.sql", out)
        self.assertEqual(self.schema_of(upgraded), self.schema_of(SCRATCH_DB))
        self.assertBackfilled(upgraded, 3)
        # the seat held before stays held, and is paid with a ticket of its own
        rows = s.psql("SELECT code FROM boxoffice_pay(boxoffice_user_uuid(2), ARRAY(SELECT"
                      " reservation_id FROM seats WHERE number = 4), 1, NULL, false)",
                      db=upgraded)
        self.assertEqual(rows, [["OK"]])
        self.assertEqual(self.q("SELECT count(*) FROM tickets", db=upgraded), [["4"]])

    def assertBackfilled(self, db, payments):
        """Every payment of db has its VALID ticket, the payment's own, and a
        refund of one of them works."""
        self.assertEqual(self.q(
            "SELECT count(*), count(DISTINCT t.code), count(*) FILTER (WHERE t.status = 'VALID'"
            " AND t.user_id = p.user_id AND t.schedule_id = p.schedule_id"
            " AND t.seat_number = p.seat_number AND t.price = p.amount"
            " AND t.paid_at = p.created_at AND length(t.code) = 20)"
            " FROM payments p JOIN tickets t ON t.payment_id = p.id", db=db),
            [[str(payments)] * 3])
        self.assertEqual(self.q("SELECT count(*) FROM payments", db=db), [[str(payments)]])
        rows = self.q("SELECT r.code, (r.body::json)->>'state' FROM (SELECT * FROM tickets"
                      " ORDER BY seat_number LIMIT 1) t"
                      " CROSS JOIN LATERAL boxoffice_refund(t.id, t.user_id, 0) r", db=db)
        self.assertEqual(rows, [["OK", "REFUNDED"]])
        self.assertEqual(self.q("SELECT count(*) FROM seats WHERE status = 'SOLD'", db=db),
                         [[str(payments - 1)]])


class TestKeygen(StackTest):

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="it-keygen-", dir=self.stack.dir)

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def keygen(self, path, preexec_fn=None):
        res = subprocess.run([self.stack.ctl_bin, "keygen", path], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, timeout=30, preexec_fn=preexec_fn)
        return res.returncode, res.stdout.decode("utf-8", "replace")

    def test_key_is_32_random_bytes_mode_0600_and_never_overwrites(self):
        a, b = os.path.join(self.tmp, "a.key"), os.path.join(self.tmp, "b.key")
        for path in (a, b):
            rc, out = self.keygen(path)
            self.assertEqual(rc, 0, out)
            self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)
            self.assertEqual(os.path.getsize(path), 32)
        with open(a, "rb") as fa, open(b, "rb") as fb:
            key_a = fa.read()
            self.assertNotEqual(key_a, fb.read())
        rc, out = self.keygen(a)
        self.assertNotEqual(rc, 0, out)
        with open(a, "rb") as f:
            self.assertEqual(f.read(), key_a)
        self.assertEqual(sorted(os.listdir(self.tmp)), ["a.key", "b.key"])

    def test_key_that_cannot_be_written_whole_leaves_no_file(self):
        # A file system with room for half a key: writes past 16 bytes fail
        # (EFBIG instead of the signal that would end the process).
        def half_a_key():
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (16, 16))

        path = os.path.join(self.tmp, "token.key")
        rc, out = self.keygen(path, preexec_fn=half_a_key)
        self.assertNotEqual(rc, 0, out)
        self.assertIn("token.key", out)
        self.assertEqual(os.listdir(self.tmp), [], "no key file, whole or partial")


if __name__ == "__main__":
    unittest.main()

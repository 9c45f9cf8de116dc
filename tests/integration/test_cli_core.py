"""boxofficectl against the real servers: `cache warm`.

`cache warm` fills the read cache (concert list, every on-sale concert's
schedules) and the known-users set after Redis comes back. An operator
trusts its exit status, so every query and every write must have worked
for it to report success; a failure says what failed and exits non-zero.
Each test that breaks something (a database function or table, Redis
writes) puts it back and leaves a warm, healthy stack.
"""

import unittest

from harness import SEED, StackTest


class TestCacheWarm(StackTest):

    def warm(self):
        return self.stack.ctl("cache", "warm", timeout=120, check=False)

    def assertWarmed(self):
        rc, out = self.warm()
        self.assertEqual(rc, 0, out)
        self.assertIn("cache warmed: concert list, %d schedule lists, %d known users"
                      % (SEED["concerts"], SEED["users"]), out)

    def assertWarmFailed(self, what):
        rc, out = self.warm()
        self.assertNotEqual(rc, 0, "cache warm reported success: %s" % out)
        self.assertNotIn("cache warmed", out)
        self.assertIn("cache warm", out)
        self.assertIn(what, out)
        return out

    def test_warm_fills_concerts_schedules_and_known_users(self):
        r = self.stack.redis_cli
        keys = ["c:concerts"] + ["c:schedules:%d" % c for c in range(1, SEED["concerts"] + 1)]
        r("DEL", *keys)
        self.assertWarmed()
        self.assertEqual(r("EXISTS", *keys).split()[-1], str(len(keys)))
        self.assertEqual(r("SCARD", "users:known").split()[-1], str(SEED["users"]))

    def test_warm_fails_when_schedules_cannot_be_read(self):
        s = self.stack
        s.psql("ALTER FUNCTION boxoffice_schedules_json(bigint) "
               "RENAME TO boxoffice_schedules_json_away")
        try:
            self.assertWarmFailed("schedules")
        finally:
            s.psql("ALTER FUNCTION boxoffice_schedules_json_away(bigint) "
                   "RENAME TO boxoffice_schedules_json")
        self.assertWarmed()

    def test_warm_fails_when_users_cannot_be_read(self):
        s = self.stack
        s.psql("ALTER TABLE users RENAME TO users_away")
        try:
            self.assertWarmFailed("users")
        finally:
            s.psql("ALTER TABLE users_away RENAME TO users")
        self.assertWarmed()

    def test_warm_fails_when_redis_refuses_writes(self):
        """A Redis that answers but refuses writes (here: it wants a replica
        to write to) is a failure too, not a warm cache."""
        r = self.stack.redis_cli
        r("CONFIG", "SET", "min-replicas-to-write", "1")
        try:
            self.assertWarmFailed("NOREPLICAS")
        finally:
            r("CONFIG", "SET", "min-replicas-to-write", "0")
        self.assertWarmed()


if __name__ == "__main__":
    unittest.main()

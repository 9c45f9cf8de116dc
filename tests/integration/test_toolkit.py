"""The toolkit the tests stand on (tools/boxoffice_dev): the Redis client
and the redis-cli text it still offers, the order in which the runner runs
destructive tests, and the settings file it renders.
"""

import shutil
import subprocess
import unittest

from boxoffice_dev import redis as redisc
from boxoffice_dev import runner
from boxoffice_dev.render import render_ini
from harness import StackTest, destructive

KEY = "toolkit:test"


class TestRedisClient(StackTest):

    def setUp(self):
        self.keys = [KEY, KEY + ":list", KEY + ":hash", KEY + ":none"]
        self.stack.redis("DEL", *self.keys)
        self.addCleanup(self.stack.redis, "DEL", *self.keys)

    def test_replies_are_typed_and_an_error_keeps_the_connection(self):
        r = self.redis()
        self.assertEqual(r("SET", KEY, 'a\nb"c\x01'), "OK")
        self.assertEqual(r("GET", KEY), 'a\nb"c\x01')
        self.assertIsNone(r("GET", KEY + ":none"))
        self.assertEqual(r("RPUSH", KEY + ":list", "x", "y z", ""), 3)
        self.assertEqual(r("LRANGE", KEY + ":list", 0, -1), ["x", "y z", ""])
        self.assertEqual(r("HGETALL", KEY + ":none"), [])
        with self.assertRaises(redisc.RedisError):
            r("INCR", KEY)
        self.assertEqual(r("PING"), "PONG")
        self.assertEqual(self.stack.redis("EXISTS", *self.keys), 2)

    def test_redis_cli_text_is_what_redis_cli_prints(self):
        cli = shutil.which("redis-cli")
        self.assertIsNotNone(cli, "redis-cli (redis-tools, with redis-server) is missing")
        r = self.redis()
        r("SET", KEY, 'a\nb"c\x01\\')
        r("RPUSH", KEY + ":list", "x", "y z", *["n%d" % i for i in range(10)])
        r("HSET", KEY + ":hash", "f", "1")
        for cmd in (("GET", KEY), ("GET", KEY + ":none"), ("EXISTS", KEY, KEY + ":list"),
                    ("LRANGE", KEY + ":list", 0, -1), ("HGETALL", KEY + ":hash"),
                    ("HGETALL", KEY + ":none"), ("PING",)):
            res = subprocess.run([cli, "-h", "127.0.0.1", "-p", str(self.stack.ports["redis"]),
                                  "--no-raw"] + [str(a) for a in cmd], stdout=subprocess.PIPE,
                                 timeout=10)
            want = res.stdout.decode().strip()
            if len(want) >= 2 and want[0] == want[-1] == '"' and "\n" not in want:
                want = want[1:-1]      # a lone value comes without its quotes
            self.assertEqual(self.stack.redis_cli(*cmd), want, cmd)


class TestRunnerOrder(unittest.TestCase):

    def test_destructive_tests_run_after_the_others_in_their_order(self):
        class A(unittest.TestCase):
            def test_1(self):
                pass

            @destructive
            def test_2(self):
                pass

            def test_3(self):
                pass

        @destructive
        class B(unittest.TestCase):
            def test_1(self):
                pass

        class C(unittest.TestCase):
            def test_1(self):
                pass

        loader = unittest.TestLoader()
        suite = unittest.TestSuite(loader.loadTestsFromTestCase(c) for c in (A, B, C))
        got = [(type(t).__name__, t._testMethodName)
               for t in runner.ordered(runner.flatten(suite))]
        self.assertEqual(got, [("A", "test_1"), ("A", "test_3"), ("C", "test_1"),
                               ("A", "test_2"), ("B", "test_1")])


class TestRenderIni(unittest.TestCase):

    def test_overrides_replace_repeat_remove_and_add(self):
        template = ("# head\n[database]\nprimary_dsn = x\nreplica_dsn = a\n"
                    "replica_dsn = b\n; note\n[http]\nworkers = 4\n")
        got = render_ini(template, {
            ("database", "replica_dsn"): ["r1", "r2", "r3"],
            ("database", "primary_dsn"): None,
            ("http", "workers"): "8",
            ("http", "maintenance"): "1",
            ("queue", "max_active"): "5"})
        self.assertEqual(got, "# head\n[database]\nreplica_dsn = r1\nreplica_dsn = r2\n"
                              "replica_dsn = r3\n; note\n[http]\nworkers = 8\n"
                              "maintenance = 1\n\n[queue]\nmax_active = 5\n")

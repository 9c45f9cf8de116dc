"""Shared stack and helpers for the integration tests.

The runner (tests/integration/run) puts tools/ on sys.path, starts ONE
stack for all test modules and hands it over with set_stack(). A test
module needs only

    from harness import StackTest, user_uuid      # and SEED, destructive, ...

StackTest gives self.stack (a boxoffice_dev.fixture.TestStack: http(),
psql(), psql_value(), redis(), redis_cli(), ctl(), reload(), stop_server(),
pause_server(), ...), self.http/get and the assertions of the API
contract. `stackmod` is boxoffice_dev.stack (StackError, free_port, NGINX,
lighttpd_check, ...); `destructive` marks a test class or method that
stops or breaks a server: the runner runs those after all the others;
`heavy` marks a load or statistics test that the sanitizer build skips
(BOXOFFICE_SKIP_HEAVY=1).

Run without the runner (PYTHONPATH=tools python3 -m unittest ...), the
first test starts its own stack and stops it at exit.

Tests that stop or pause a server must bring it back (see
StackTest.restore_server) so that later tests find a healthy stack.
"""

import atexit
import concurrent.futures
import os
import re
import shutil
import sys
import tempfile
import time
import unittest

from boxoffice_dev import redis as redisc
from boxoffice_dev import runner
from boxoffice_dev import stack as stackmod
from boxoffice_dev.runner import builddir, destructive, heavy, srcdir  # noqa: F401

sys.dont_write_bytecode = True

# Demo data size of the test stack (boxofficectl seed).
SEED = {"concerts": 5, "schedules": 4, "seats": 50, "users": 1000}
WORKERS = int(os.environ.get("BOXOFFICE_TEST_WORKERS", "4"))

Redis = redisc.Redis
RedisError = redisc.RedisError

_STACK = None


def user_uuid(i):
    """The demo user i's UUID (deterministic demo data)."""
    return "00000000-0000-4000-8000-%012d" % i


def new_stack(directory, log=None):
    return runner.test_stack(directory, workers=WORKERS, seed=SEED, log=log)


def set_stack(s):
    global _STACK
    _STACK = s


def get_stack():
    """The shared stack; started here if no runner provided one."""
    global _STACK
    if _STACK is None:
        d = tempfile.mkdtemp(prefix="boxoffice-it-")
        s = new_stack(d)
        s.owner_pid = os.getpid()

        def _down():
            try:
                s.stop()
            finally:
                shutil.rmtree(d, ignore_errors=True)
        atexit.register(_down)
        s.start()
        _STACK = s
    return _STACK


class StackTest(unittest.TestCase):
    """Base class: self.stack, self.http, and assertions for the API contract."""

    @classmethod
    def setUpClass(cls):
        cls.stack = get_stack()

    def http(self, method, path, body=None, headers=None, **kw):
        return self.stack.http(method, path, body=body, headers=headers, **kw)

    def get(self, path, **kw):
        return self.http("GET", path, **kw)

    def redis(self):
        """A connection to the stack's Redis, closed when the test ends."""
        r = Redis(self.stack.ports["redis"])
        self.addCleanup(r.close)
        return r

    def assertJsonError(self, resp, status, code=None):
        """resp is an error answer: that status and {"error":{"code","message"}}."""
        st, hdr, body = resp
        self.assertEqual(st, status, "want %d, got %d: %r" % (status, st, body))
        self.assertIn("json", hdr.get("content-type", ""), "not JSON: %r" % (hdr,))
        self.assertIsInstance(body, dict, "error body is not a JSON object: %r" % (body,))
        self.assertIn("error", body, body)
        err = body["error"]
        self.assertIsInstance(err, dict, body)
        self.assertIsInstance(err.get("code"), str, body)
        self.assertTrue(re.match(r"^[A-Z][A-Z0-9_]*$", err["code"]),
                        "code is not a stable machine code: %r" % err["code"])
        self.assertIsInstance(err.get("message"), str, body)
        self.assertTrue(err["message"], body)
        if code is not None:
            self.assertEqual(err["code"], code, body)
        return err

    def restore_server(self, which):
        """Make sure `which` runs again and the stack is healthy."""
        s = self.stack
        s.resume_server(which)
        if not s.server_pid(which):
            s.start_server(which)
        if which in ("primary", "replica"):
            s.wait_streaming(timeout=60)
        s.wait_healthy(timeout=60)

    def concurrently(self, fn, n, threads=20):
        """Run fn(i) for i in range(n) on `threads` threads; returns results
        (an exception raised by fn is returned in its place)."""
        def safe(i):
            try:
                return fn(i)
            except Exception as e:  # reported by the caller
                return e
        with concurrent.futures.ThreadPoolExecutor(max_workers=threads) as ex:
            return list(ex.map(safe, range(n)))

    def wait_for(self, predicate, timeout=10, interval=0.05, msg="condition"):
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            last = predicate()
            if last:
                return last
            time.sleep(interval)
        self.fail("timed out after %ss waiting for %s (last: %r)" % (timeout, msg, last))

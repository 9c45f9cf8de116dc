"""The worker pools (bulkheads): queue, sign-in and booking workers apart.

Next to the shared stack's undivided workers, each test class starts one
small set of workers per pool (`boxoffice -p POOL`, spawn-fcgi + multiwatch
on a socket of its own, with a settings file of its own so their shared
counters are theirs) and a second nginx whose three upstreams point at
them, as a divided deployment runs. Then:

- every class of route reaches its own pool through nginx: no answer is
  WRONG_POOL and the pools' wrong-pool counter stays 0;
- a worker sent another pool's route (straight over FastCGI, as a
  misconfigured proxy would) answers 500 WRONG_POOL and counts it, while
  ping answers in every pool;
- /metrics (served by the queue pool) shows every pool's workers by state
  and its size, and a reload moves a worker to standby;
- with every booking worker frozen (SIGSTOP: a pool that hangs), queue
  polls, progress, sign-in and /metrics still answer at once, from many
  clients at a time.
"""

import json
import os
import re
import signal
import subprocess
import time

from boxoffice_dev import http as httpc

from harness import StackTest, user_uuid

POOLS = ("queue", "signin", "booking")
PER_POOL = 2


def fcgi(sock, method, path, addr="127.0.0.1", headers=None):
    """One request straight to a worker socket: (status, body)."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "REQUEST_METHOD": method,
           "REQUEST_URI": path, "SCRIPT_NAME": path, "REMOTE_ADDR": addr,
           "SERVER_PROTOCOL": "HTTP/1.1", "GATEWAY_INTERFACE": "CGI/1.1"}
    for k, v in (headers or {}).items():
        env["HTTP_" + k.upper().replace("-", "_")] = v
    out = subprocess.run(["cgi-fcgi", "-bind", "-connect", sock], env=env,
                         stdin=subprocess.DEVNULL, capture_output=True, timeout=20,
                         check=True).stdout
    head, _, body = out.partition(b"\r\n\r\n")
    m = re.search(rb"(?im)^Status:\s*(\d{3})", head)
    try:
        body = json.loads(body)
    except ValueError:
        body = body.decode("utf-8", "replace")
    return (int(m.group(1)) if m else 200), body


class PoolTest(StackTest):
    """Three pools of PER_POOL workers each, behind their own nginx."""

    sizes = {"queue": PER_POOL, "signin": PER_POOL, "booking": PER_POOL}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.sockets, cls.port = cls.stack.start_side_pools(cls.sizes, name="pools")
        cls.conf = cls.stack.side_conf("pools")

    @classmethod
    def tearDownClass(cls):
        cls.stack.stop_side_pools("pools")

    def pooled(self, method, path, body=None, headers=None):
        """A request through the pools' nginx."""
        return self.stack.http(method, path, body=body, headers=headers, port=self.port)

    def metrics(self):
        st, _, body = self.pooled("GET", "/metrics")
        self.assertEqual(st, 200, body)
        text = body if isinstance(body, str) else body.decode()
        out = {}
        for m in re.finditer(r'^(boxoffice_(?:pool_workers|pool_size|wrong_pool_total))'
                             r'(?:\{([^}]*)\})? (\d+)$', text, re.M):
            out[(m.group(1), m.group(2) or "")] = int(m.group(3))
        return out

    def wrong_pool(self):
        return self.metrics()[("boxoffice_wrong_pool_total", "")]


class TestPools(PoolTest):

    def test_each_route_class_reaches_its_own_pool(self):
        s = self.stack
        before = self.wrong_pool()
        uid = user_uuid(7)
        # queue: join (signed in), status with its token, the public progress
        r = self.pooled("POST", "/api/queues/token", body={"concertId": 1, "userId": uid},
                        headers=s.as_user(uid))
        self.assertIn(r[0], (200, 201), r)
        token = r[2]["token"]
        r = self.pooled("GET", "/api/queues/status",
                        headers={"Authorization": "Bearer " + token})
        self.assertEqual(r[0], 200, r)
        r = self.pooled("GET", "/api/queues/1/progress")
        self.assertEqual(r[0], 200, r)
        # sign-in: the session page (no session: 401), a sign-in (wrong password)
        r = self.pooled("GET", "/api/sessions")
        self.assertJsonError(r, 401)
        r = self.pooled("POST", "/api/sessions", body={"email": "nobody@example.org",
                                                       "password": "not the one 1234"})
        self.assertJsonError(r, 401)
        # booking: public reads, a balance, an unknown route (404 from booking)
        for path in ("/api/concerts", "/api/concerts/1/schedules", "/api/nope"):
            r = self.pooled("GET", path)
            self.assertNotEqual(r[0], 500, (path, r))
        r = self.pooled("GET", "/api/users/%s/balance" % uid, headers=s.as_user(uid))
        self.assertEqual(r[0], 200, r)
        # ping and health: booking's upstream (the /api/ default), served by any pool
        self.assertEqual(self.pooled("GET", "/api/ping")[0], 200)
        self.assertEqual(self.wrong_pool(), before,
                         "nginx sent a route to a pool that does not serve it")

    def test_a_route_of_another_pool_is_refused_wrong_pool(self):
        before = self.wrong_pool()
        cases = [("queue", "GET", "/api/concerts", "booking"),
                 ("queue", "POST", "/api/sessions", "signin"),
                 ("signin", "GET", "/api/queues/status", "queue"),
                 ("signin", "GET", "/api/me/balance", "booking"),
                 ("booking", "GET", "/api/queues/1/progress", "queue"),
                 ("booking", "DELETE", "/api/sessions", "signin")]
        for pool, method, path, owner in cases:
            st, body = fcgi(self.sockets[pool], method, path)
            self.assertEqual(st, 500, (pool, path, body))
            self.assertEqual(body["error"]["code"], "WRONG_POOL", (pool, path, body))
            self.assertIn(pool, body["error"]["message"])
            self.assertIn(owner, body["error"]["message"])
        self.assertEqual(self.wrong_pool(), before + len(cases))
        # the routes every pool serves, and each pool's own
        for pool in POOLS:
            self.assertEqual(fcgi(self.sockets[pool], "GET", "/api/ping")[0], 200, pool)
        self.assertEqual(fcgi(self.sockets["queue"], "GET", "/api/queues/1/progress")[0], 200)
        self.assertEqual(fcgi(self.sockets["booking"], "GET", "/api/concerts")[0], 200)
        self.assertEqual(fcgi(self.sockets["signin"], "GET", "/api/sessions")[0], 401)
        # the undivided workers serve everything, as before
        self.assertEqual(fcgi(self.stack.socket_path, "GET", "/api/queues/1/progress")[0], 200)
        self.assertEqual(fcgi(self.stack.socket_path, "GET", "/api/concerts")[0], 200)

    def test_metrics_per_pool_and_a_reload_resizes_a_pool(self):
        m = self.metrics()
        for p in POOLS:
            self.assertEqual(m[("boxoffice_pool_size", 'pool="%s"' % p)], PER_POOL, m)
            # the scraping worker counts as idle: nothing else is in flight
            self.assertEqual(m[("boxoffice_pool_workers", 'pool="%s",state="idle"' % p)],
                             PER_POOL, m)
            self.assertEqual(m[("boxoffice_pool_workers", 'pool="%s",state="busy"' % p)], 0)
            self.assertEqual(m[("boxoffice_pool_workers", 'pool="%s",state="standby"' % p)],
                             0)
        # these workers have a settings file of their own: no undivided pool there
        self.assertNotIn(("boxoffice_pool_size", 'pool="all"'), m)
        try:
            self.stack.reload_side_pools("pools", dict(self.sizes, booking=1))
            want = ('pool="booking",state="standby"', 1)

            def moved():
                # the standby worker takes the reload within its 1 s nap; the
                # other on its next request
                self.pooled("GET", "/api/ping")
                self.pooled("GET", "/api/concerts")
                m = self.metrics()
                return m.get(("boxoffice_pool_workers", want[0])) == want[1] and m
            m = self.wait_for(moved, timeout=10, msg="a booking worker on standby")
            self.assertEqual(m[("boxoffice_pool_size", 'pool="booking"')], 1)
            self.assertEqual(m[("boxoffice_pool_workers", 'pool="booking",state="idle"')], 1)
            # the one active booking worker serves every booking request
            for _ in range(10):
                self.assertEqual(self.pooled("GET", "/api/concerts/1/schedules")[0], 200)
        finally:
            self.stack.reload_side_pools("pools", self.sizes)

    def test_worker_refuses_an_unknown_pool(self):
        r = subprocess.run([self.stack.worker_bin, "-p", "tickets", "-c", self.conf],
                           capture_output=True, timeout=10)
        self.assertEqual(r.returncode, 2)
        self.assertIn(b"unknown pool", r.stderr)

    def test_a_hung_pool_holds_only_its_own_routes(self):
        s = self.stack
        uid = user_uuid(9)
        r = self.pooled("POST", "/api/queues/token", body={"concertId": 2, "userId": uid},
                        headers=s.as_user(uid))
        self.assertIn(r[0], (200, 201), r)
        auth = {"Authorization": "Bearer " + r[2]["token"]}
        # nginx's cache lock makes concurrent first readers of an empty
        # progress entry wait up to 500 ms: fill it first
        self.assertEqual(self.pooled("GET", "/api/queues/2/progress")[0], 200)
        frozen = s.side_pids("pools", "booking")
        self.assertEqual(len(frozen), PER_POOL)
        for pid in frozen:
            os.kill(pid, signal.SIGSTOP)
        try:
            # booking requests now wait for a worker that does not come
            stuck = self.concurrently(lambda i: httpc.probe(
                self.port, "GET", "/api/concerts/%d/schedules/1/seats" % (i + 1),
                timeout=1.5), 4, threads=4)
            self.assertEqual([a.status for a in stuck], ["timeout"] * 4)
            t0 = time.monotonic()
            calls = [("GET", "/api/queues/status", auth, 200),
                     ("GET", "/api/queues/2/progress", None, 200),
                     ("GET", "/api/sessions", None, 401),
                     ("GET", "/metrics", None, 200)]
            answers = self.concurrently(lambda i: httpc.probe(
                self.port, calls[i % 4][0], calls[i % 4][1], headers=calls[i % 4][2],
                timeout=3), 80, threads=16)
            took = time.monotonic() - t0
            for i, a in enumerate(answers):
                self.assertEqual(a.status, calls[i % 4][3], (calls[i % 4][1], a))
                self.assertLess(a.latency, 0.5, (calls[i % 4][1], a.latency))
            self.assertLess(took, 5, "80 requests of the other pools took %.1f s" % took)
        finally:
            for pid in frozen:
                os.kill(pid, signal.SIGCONT)
        # thawed, the booking pool answers again
        self.wait_for(lambda: self.pooled("GET", "/api/concerts/1/schedules")[0] == 200,
                      timeout=10, msg="booking answering after SIGCONT")

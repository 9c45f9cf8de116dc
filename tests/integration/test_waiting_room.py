"""The waiting room (docs/design.md): waiters read only the cached progress
document, admission runs from it, admitted users claim their turn within
queue.claim_window, and a pre-queue is drawn at the sale's opening.

  - a crowd: 10,000 waiters put in the queue directly through Redis (one
    script, the fast path), a crowd of threads reading the progress
    document through nginx for WR_SECONDS (default 15 s in CI; the target
    is 60) while admission runs at 20/s; every admitted waiter the document
    reaches claims with one status call and gets ACTIVE, one in ten never
    claims and its turn is dropped after the claim window, its place going
    to the next. The workers' request count (/metrics) stays within a few
    per admitted user plus about one a second; admission is in order.
  - the pre-queue: 1,000 joins before the opening get PRE_QUEUE and no
    number; at the opening the order is one uniform shuffle (chi-squared
    on where early and late joiners land), later joins come after all of
    them in arrival order, boxofficectl queue dump/restore keeps the seed
    and the order exactly and queue audit verifies it; joins after the
    sale closed are 409 SALE_CLOSED.

Concerts 5 (the crowd) and 2 (the pre-queue). Users 1..1010 (1001..1010
added for the test).
"""

import os
import re
import tempfile
import threading
import time
import uuid

from boxoffice_dev import tokens
from boxoffice_dev.http import Session as Client
from boxoffice_dev.redis import Redis, pairs
from harness import user_uuid
import test_queue
from test_progress import requests_by_route
from test_queue import QueueTest, parse_iso_ms, qkey

WR_SECONDS = float(os.environ.get("WR_SECONDS", "15"))

# The fast path: n waiters numbered after the queue's last number.
FILL_LUA = """
local n, base = tonumber(ARGV[1]), tonumber(redis.call('GET', KEYS[1]) or '0')
for k = 1, n do
  local u = ARGV[1 + k]
  redis.call('HSET', KEYS[2], u, base + k)
  redis.call('ZADD', KEYS[3], base + k, u)
end
redis.call('SET', KEYS[1], base + n)
return base
"""


def progress_path(concert):
    return "/api/queues/%d/progress" % concert


class TestWaitingRoom(QueueTest):

    ensure_users = test_queue.TestFairness.ensure_users

    def worker_requests(self):
        """Requests the workers answered, every route but /metrics."""
        return sum(n for route, n in requests_by_route(self).items() if route != "/metrics")

    def set_sale(self, concert, opens_sql, closes_sql):
        self.s.psql("UPDATE concerts SET sale_opens_at = %s, sale_closes_at = %s WHERE id = %d"
                    % (opens_sql, closes_sql, concert))
        self.s.wait_replica_caught_up()
        self.s.redis("DEL", "q:{%d}:sale" % concert)

    # ------------------------------------------------------------------
    def test_crowd_reads_the_document_admission_runs_and_claims_work(self):
        C, N, RATE, CLAIM = 5, 10000, 20, 3
        s = self.s
        self.reset_queue(C)
        self.settings(max_active=40, admit_per_second=RATE, claim_window=CLAIM, active_ttl=600)
        with open(s.key_file, "rb") as f:
            key = f.read()
        users = [str(uuid.UUID(int=(0x5 << 124) | k, version=4)) for k in range(1, N + 1)]
        r = self.redis()
        sha = r("SCRIPT", "LOAD", FILL_LUA)
        t0 = time.time()
        for i in range(0, N, 2000):
            part = users[i:i + 2000]
            r("EVALSHA", sha, 3, qkey(C, "seq"), qkey(C, "num"), qkey(C, "wait"),
              len(part), *part)
        t_fill = time.time() - t0
        now = int(time.time())
        tok = {k: tokens.sign(key, "w", users[k - 1], C, k, now, now + 3600)
               for k in range(1, N + 1)}
        skip = {k for k in range(1, N + 1) if k % 10 == 7}     # never claim

        # nginx may still hold the document of an earlier queue of this
        # concert for a second or two: start from one read after the fill
        self.wait_for(lambda: parse_iso_ms(self.get(progress_path(C))[2]["updatedAt"]) > t0,
                      timeout=5, interval=0.2, msg="a fresh progress document")
        before = self.worker_requests()
        stop = threading.Event()
        problems, reads, serving = [], [0], [0]
        claimed, lock = {}, threading.Lock()

        def crowd(i):
            cl = Client(s.ports["http"])
            try:
                while not stop.is_set():
                    st, b = cl.get(progress_path(C))
                    if st != 200:
                        problems.append(("progress", st, b))
                        continue
                    with lock:
                        reads[0] += 1
                        serving[0] = max(serving[0], b["nowServing"])
                    time.sleep(0.01)
            except Exception as e:
                problems.append(("crowd %d" % i, repr(e)))
            finally:
                cl.close()

        def claimer():
            """Every admitted number the document shows claims (one status
            call), then pays at once (ends the turn, as a payment does)."""
            cl = Client(s.ports["http"])
            rc = Redis(s.ports["redis"])
            nxt = 1
            try:
                while not stop.is_set():
                    while nxt <= serving[0]:
                        if nxt not in skip:
                            st, b = cl.get("/api/queues/status", tok[nxt])
                            claimed[nxt] = (st, b.get("status") if isinstance(b, dict) else b)
                            rc("ZREM", qkey(C, "active"), users[nxt - 1])
                        nxt += 1
                    time.sleep(0.05)
            except Exception as e:
                problems.append(("claimer", repr(e)))
            finally:
                cl.close()
                rc.close()

        threads = [threading.Thread(target=crowd, args=(i,)) for i in range(12)]
        threads.append(threading.Thread(target=claimer))
        t_start = time.time()
        for t in threads:
            t.start()
        time.sleep(WR_SECONDS)
        stop.set()
        for t in threads:
            t.join(30)
        elapsed = time.time() - t_start
        after = self.worker_requests()
        self.assertEqual(problems[:5], [])

        stats = dict(pairs(r("HGETALL", qkey(C, "stats"))))
        admitted = int(stats.get("admitted", 0))
        dropped = int(stats.get("abandoned", 0))
        served = int(r("GET", qkey(C, "served")) or 0)
        # the queue moved with nobody polling their place: ~RATE a second,
        # capped by max_active while unclaimed turns wait out their window
        self.assertGreaterEqual(admitted, RATE * elapsed / 4, stats)
        self.assertLessEqual(admitted, RATE * (elapsed + 1), stats)
        # everyone who claimed got ACTIVE
        bad = {k: v for k, v in claimed.items() if v != (200, "ACTIVE")}
        self.assertEqual(list(bad.items())[:5], [])
        self.assertGreater(len(claimed), admitted / 2)
        # unclaimed turns were dropped and their places went to the next
        self.assertGreater(dropped, 0, stats)
        self.assertGreater(served, 40)
        # admission in queue order: admission times follow numbers
        adm = sorted((int(n), float(t)) for n, t in
                     pairs(r("ZRANGE", qkey(C, "admits"), 0, -1, "WITHSCORES")))
        self.assertEqual([n for n, _ in adm], list(range(1, len(adm) + 1)))
        self.assertEqual([a for a in zip(adm, adm[1:]) if a[1][1] < a[0][1]], [])
        # the cost: per admitted user one claim, plus the document ~1/s
        work = after - before - 1
        budget = 3 * admitted + 2 * elapsed + 20
        self.assertLessEqual(work, budget, "%d worker requests for %d admitted in %.0fs "
                             "(%d document reads)" % (work, admitted, elapsed, reads[0]))
        print("\n  %d waiters filled in %.2fs; %.0fs: %d document reads, %d admitted, "
              "%d claimed, %d dropped unclaimed, %d worker requests"
              % (N, t_fill, elapsed, reads[0], admitted, len(claimed), dropped, work), end=" ")

    # ------------------------------------------------------------------
    def test_pre_queue_is_drawn_once_uniformly_and_kept_by_dump_restore(self):
        C, N, LATE = 2, 1000, 10
        s = self.s
        self.ensure_users(N + LATE)
        self.reset_queue(C)
        self.settings(max_active=5, admit_per_second=1000, claim_window=60)
        self.addCleanup(self.set_sale, C, "NULL", "NULL")
        self.set_sale(C, "now() + interval '12 seconds'", "NULL")
        probe = self.wait_for(lambda: (lambda r: r if r[2].get("status") == "PRE_QUEUE"
                                       else None)(self.join(C, 1)),
                              timeout=5, interval=0.2, msg="PRE_QUEUE")
        st, _, b = probe
        self.assertEqual(st, 201, b)
        self.assertIsNone(b["queueNumber"], b)
        self.assertIsInstance(b["opensAt"], str, b)
        opens = parse_iso_ms(b["opensAt"])
        res = self.concurrently(lambda i: self.join(C, i + 2), N - 1, threads=32)
        bad = [r if isinstance(r, Exception) else (r[0], r[2]) for r in res
               if isinstance(r, Exception) or r[2].get("status") != "PRE_QUEUE"]
        self.assertEqual(bad[:3], [])
        self.assertLess(time.time(), opens, "the joins took past the opening")
        tok = {user_uuid(i + 2): r[2]["token"] for i, r in enumerate(res)}
        tok[user_uuid(1)] = b["token"]
        st, _, p = self.get(progress_path(C))
        self.assertEqual((p["saleState"], p["preQueued"], p["nowServing"]),
                         ("UPCOMING", N, 0), p)
        self.assertEqual(self.polled_pre(tok[user_uuid(5)])["status"], "PRE_QUEUE")
        self.assertEqual(s.redis("EXISTS", qkey(C, "seq")), 0)
        rc, out = s.ctl("queue", "stats", C, check=False)
        self.assertEqual(rc, 0, out)
        self.assertIn("pre_queued %d" % N, out)

        # the opening: the first document read after it draws
        time.sleep(max(0, opens - time.time()))
        self.wait_for(lambda: self.get(progress_path(C))[2]["saleState"] == "ON_SALE",
                      timeout=5, interval=0.3, msg="ON_SALE")
        arrival = [u for u, _ in pairs(self.redis()("ZRANGE", qkey(C, "pre"), 0, -1,
                                                    "WITHSCORES"))]
        drawn = {u: int(n) for u, n in pairs(self.redis()("ZRANGE", qkey(C, "draw"), 0, -1,
                                                          "WITHSCORES"))}
        self.assertEqual(len(arrival), N)
        self.assertEqual(sorted(drawn.values()), list(range(1, N + 1)))
        self.assertEqual(set(drawn), set(arrival))
        pos = [drawn[u] for u in arrival]
        self.assertNotEqual(pos, list(range(1, N + 1)), "the draw kept the join order")
        seed = s.redis("GET", qkey(C, "seed"))
        self.assertTrue(re.match(r"^[0-9a-f]{64}$", seed or ""), seed)
        # uniform: where the first and the last 200 joiners land, in 10
        # bands of 100 numbers (chi-squared, 9 degrees of freedom; 27.88
        # is the p = 0.001 bound)
        for name, group in (("early", pos[:200]), ("late", pos[-200:])):
            bands = [0] * 10
            for n in group:
                bands[(n - 1) // 100] += 1
            chi2 = sum((c - 20) ** 2 / 20.0 for c in bands)
            self.assertLess(chi2, 27.88, "%s joiners not uniform: %r" % (name, bands))
        # a pre-queue token now reads the drawn place
        u = next(u for u in arrival if drawn[u] > 10)
        st = self.polled_pre(tok[u])
        self.assertEqual((st["status"], st["queueNumber"]), ("WAITING", drawn[u]), st)

        # later joins: after every pre-queue joiner, in arrival order
        later = [self.joined(C, N + 1 + i) for i in range(LATE)]
        self.assertEqual([x["queueNumber"] for x in later], list(range(N + 1, N + LATE + 1)))

        # dump and restore keep the pre-queue, the seed and the order exactly
        parts = ("seq", "num", "wait", "pre", "seed", "draw")
        before = self.queue_state(C, parts)
        with tempfile.TemporaryDirectory(prefix="it-wr-dump-", dir=s.dir) as d:
            path = os.path.join(d, "queue-%d.json" % C)
            rc, out = s.ctl("queue", "dump", C, path, check=False)
            self.assertEqual(rc, 0, out)
            s.redis("DEL", *[qkey(C, p) for p in parts])
            rc, out = s.ctl("queue", "restore", path, check=False)
            self.assertEqual(rc, 0, out)
        self.assertEqual(self.queue_state(C, parts), before)
        rc, out = s.ctl("queue", "audit", C, check=False)
        self.assertEqual(rc, 0, out)
        self.assertIn("seed " + seed, out)
        self.assertIn("draw verified", out)
        first = min(drawn, key=drawn.get)
        self.assertIn("1 %s" % first, out)
        # a tampered order is caught
        a, b2 = arrival[0], arrival[1]
        s.redis("ZADD", qkey(C, "draw"), drawn[b2], a, drawn[a], b2)
        rc, out = s.ctl("queue", "audit", C, check=False)
        self.assertNotEqual(rc, 0, out)
        self.assertIn("MISMATCH", out)

        # the sale closes: joins are refused, the document says so
        self.set_sale(C, "NULL", "now() - interval '1 second'")
        self.assertJsonError(self.join(C, N + LATE), 409, "SALE_CLOSED")
        self.wait_for(lambda: self.get(progress_path(C))[2].get("saleState") == "CLOSED",
                      timeout=4, interval=0.3, msg="CLOSED")

    def polled_pre(self, token):
        st, _, b = self.status(token)
        self.assertEqual(st, 200, b)
        return b

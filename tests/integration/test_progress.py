"""A concert's public progress document, GET /api/queues/{concertId}/progress
(docs/api.md): its numbers follow the queue, nginx keeps it one second, and
a crowd of waiters polling it costs the workers about one request per
second per concert.

  - nowServing is the highest queue number admitted, waiting the number
    still waiting (so nowServing + waiting is the last number given while
    nobody left the queue), admittedPerSecond the admissions of the last
    10 s over 10, all read against the queue in Redis itself;
  - saleState ON_SALE, PAUSED in maintenance mode; pollAfterMs is
    queue.progress_poll_ms; an unknown concert is 404 and not cached;
  - X-Cache says HIT for a repeat within the second, with the same body;
  - the cost: 2,000 simulated waiters (asyncio, one keep-alive connection
    each) poll two concerts' documents every second for 20 s while
    admission runs; the route's request counter in /metrics grows by
    about one per second per concert while nginx answers tens of
    thousands;
  - Redis down: 503 QUEUE_UNAVAILABLE, not a cached answer (destructive).

Concerts 3 (the numbers), 4 and 5 (the crowd), users 101..399; each test
empties its concerts' queues before and after and puts back the settings
it changed.
"""

import asyncio
import random
import re
import threading
import time

from harness import destructive, heavy, user_uuid
from test_queue import QueueTest, qkey

U_NUMBERS = 100       # 101..
U_CROWD = 200         # 201.. (concert 4), 301.. (concert 5)
ROUTE = "/api/queues/{concertId}/progress"
FIELDS = {"concertId", "nowServing", "admittedPerSecond", "waiting", "preQueued",
          "saleState", "saleOpensAt", "claimWindowSeconds", "updatedAt", "pollAfterMs"}


def progress_path(concert):
    return "/api/queues/%d/progress" % concert


class ProgressTest(QueueTest):
    """Helpers: the document as a worker wrote it just now, the counter."""

    def fresh(self, concert, timeout=6):
        """The progress document of a worker answer made after this call
        (X-Cache MISS or EXPIRED, not nginx's copy): (headers, body)."""
        deadline = time.time() + timeout
        while True:
            st, hdr, b = self.get(progress_path(concert))
            self.assertEqual(st, 200, b)
            if hdr.get("x-cache") in ("MISS", "EXPIRED"):
                return hdr, b
            self.assertLess(time.time(), deadline, "no fresh progress answer: %r" % (hdr,))
            time.sleep(0.15)

    def worker_count(self):
        """Progress requests the workers answered (every status), from /metrics."""
        return requests_by_route(self).get(ROUTE, 0)

    def queue_truth(self, concert):
        """(highest admitted number, waiting count, last number given,
        admissions in the last 10 s) read from Redis."""
        q = self.queue_state(concert)
        num = {u: int(n) for u, n in q["num"].items()}
        admitted = [num[u] for u, _ in q["active"] + q["claim"] if u in num]
        now_ms = time.time() * 1000
        recent = [n for n, at in q["admits"] if float(at) > now_ms - 10000]
        return (max(admitted) if admitted else 0, len(q["wait"]), int(q["seq"] or 0),
                len(recent))

    def maintenance(self, on):
        over = {("http", "maintenance"): "1"} if on else None
        if not on:
            self.s.overrides.pop(("http", "maintenance"), None)
        self._reload(over)


def requests_by_route(test):
    """{route: requests the workers answered, every status}, read from
    the stack's /metrics through test (a StackTest)."""
    st, _, text = test.get("/metrics")
    test.assertEqual(st, 200)
    if isinstance(text, bytes):
        text = text.decode()
    counts = {}
    for m in re.finditer(r'(?m)^boxoffice_http_requests_total\{route="([^"]*)",.*\} (\d+)$', text):
        counts[m.group(1)] = counts.get(m.group(1), 0) + int(m.group(2))
    return counts


class TestProgress(ProgressTest):

    def test_document_follows_the_queue(self):
        C = 3
        self.reset_queue(C)
        self.settings(max_active=1000, admit_per_second=2)

        # an empty queue
        hdr, b = self.fresh(C)
        self.assertEqual(set(b), FIELDS, b)
        self.assertEqual(hdr.get("cache-control"), "public, max-age=1")
        self.assertEqual((b["concertId"], b["nowServing"], b["waiting"], b["saleState"],
                          b["pollAfterMs"], b["admittedPerSecond"]), (C, 0, 0, "ON_SALE", 2000, 0))
        self.assertTrue(re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", b["updatedAt"]),
                        b["updatedAt"])

        # 12 join: two go straight in (2 a second), the rest wait
        tokens = []
        for i in range(1, 13):
            st, _, j = self.s.join(C, user_uuid(U_NUMBERS + i))
            self.assertEqual(st, 201, j)
            tokens.append(j["token"])
        # the document's read runs admission too: the truth is read after it
        _, b = self.fresh(C)
        served, waiting, last, recent = self.queue_truth(C)
        self.assertEqual(last, 12)
        self.assertGreaterEqual(served, 2)
        self.assertEqual((b["nowServing"], b["waiting"]), (served, waiting), b)
        self.assertEqual(b["nowServing"] + b["waiting"], 12, b)
        self.assertEqual(b["admittedPerSecond"], round(recent / 10.0, 1), b)
        self.assertGreater(b["admittedPerSecond"], 0, b)

        # the last waiter polls its status for 3 s: admission moves on, at
        # 2 a second, and the document with it
        t_end = time.time() + 3
        while time.time() < t_end:
            self.assertEqual(self.status(tokens[-1])[0], 200)
            time.sleep(0.1)
        _, b = self.fresh(C)
        served2, waiting2, _, recent2 = self.queue_truth(C)
        self.assertGreaterEqual(served2, served + 4, "admission did not run")
        self.assertEqual((b["nowServing"], b["waiting"]), (served2, waiting2), b)
        self.assertEqual(b["nowServing"] + b["waiting"], 12, b)
        self.assertEqual(b["admittedPerSecond"], round(recent2 / 10.0, 1), b)
        # Redis keeps it as a part of the queue
        self.assertEqual(int(self.s.redis("GET", qkey(C, "served"))), served2)

        # the setting, and maintenance mode
        self.settings(progress_poll_ms=3500)
        self.assertEqual(self.fresh(C)[1]["pollAfterMs"], 3500)
        self.addCleanup(self.maintenance, False)
        self.maintenance(True)
        # in maintenance nobody can claim: the document admits nobody
        served3 = self.queue_truth(C)[0]
        time.sleep(1.1)
        _, b = self.fresh(C)
        self.assertEqual(b["saleState"], "PAUSED", b)
        self.assertEqual(b["nowServing"], served3, b)
        self.assertEqual(self.queue_truth(C)[0], served3)
        self.maintenance(False)
        self.assertEqual(self.fresh(C)[1]["saleState"], "ON_SALE")

    def test_unknown_concert_is_404_and_not_cached(self):
        for _ in range(2):
            resp = self.get(progress_path(987654))
            self.assertJsonError(resp, 404, "CONCERT_NOT_FOUND")
            self.assertNotEqual(resp[1].get("x-cache"), "HIT")
            self.assertNotIn("public", resp[1].get("cache-control", ""))
        # other spellings are the workers' (400), never the cache's
        st, hdr, _ = self.get("/api/queues/03/progress")
        self.assertEqual(st, 400)
        self.assertIsNone(hdr.get("x-cache"))

    def test_repeat_within_a_second_is_a_cache_hit(self):
        C = 3
        hits = 0
        for _ in range(5):
            _, first = self.fresh(C)
            st, hdr, again = self.get(progress_path(C))
            self.assertEqual(st, 200)
            if hdr.get("x-cache") == "HIT":
                hits += 1
                self.assertEqual(again, first)
        # the repeat follows at once; an entry may expire in between only
        # when the second turns over at that instant
        self.assertGreaterEqual(hits, 4, "repeats within a second were not cache hits")


# ----------------------------------------------------------------- crowd
async def poller(port, path, until, period, counts):
    """One waiter: a keep-alive connection, GET path every period seconds."""
    await asyncio.sleep(random.random() * period)
    reader = writer = None
    req = ("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json\r\n\r\n"
           % path).encode()
    while time.time() < until:
        t0 = time.time()
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(req)
            head = await reader.readuntil(b"\r\n\r\n")
            m = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
            await reader.readexactly(int(m.group(1)) if m else 0)
            status = int(head.split(b" ", 2)[1])
            xc = re.search(rb"(?i)\r\nx-cache: *(\w+)", head)
            key = (status, xc.group(1).decode() if xc else "-")
            counts[key] = counts.get(key, 0) + 1
            if re.search(rb"(?i)\r\nconnection: *close", head):
                writer.close()
                writer = None
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                ValueError) as e:
            counts[type(e).__name__] = counts.get(type(e).__name__, 0) + 1
            if writer is not None:
                writer.close()
            writer = None
        await asyncio.sleep(max(0.0, period - (time.time() - t0)))
    if writer is not None:
        writer.close()


async def crowd(port, paths, n, seconds, period):
    counts = {}
    until = time.time() + seconds
    await asyncio.gather(*(poller(port, paths[i % len(paths)], until, period, counts)
                           for i in range(n)))
    return counts


class TestProgressCost(ProgressTest):

    WAITERS = 2000
    SECONDS = 20

    @heavy
    def test_a_crowd_polling_progress_costs_one_worker_request_a_second(self):
        concerts = (4, 5)
        self.reset_queue(*concerts)
        self.settings(max_active=1000, admit_per_second=3)
        # a queue in each concert; one waiter per concert polls its status
        # (a worker request and a script each), so admission runs meanwhile
        last = {}
        for k, C in enumerate(concerts):
            for i in range(1, 41):
                st, _, j = self.s.join(C, user_uuid(U_CROWD + 100 * k + i))
                self.assertEqual(st, 201, j)
                last[C] = j["token"]
        served_before = {C: self.fresh(C)[1]["nowServing"] for C in concerts}
        stop = threading.Event()

        def drive():
            while not stop.is_set():
                for C in concerts:
                    self.status(last[C])
                stop.wait(0.5)
        driver = threading.Thread(target=drive, daemon=True)
        before = self.worker_count()
        driver.start()
        t0 = time.time()
        try:
            counts = asyncio.run(crowd(self.s.ports["http"],
                                       [progress_path(C) for C in concerts],
                                       self.WAITERS, self.SECONDS, 1.0))
        finally:
            stop.set()
            driver.join(10)
        elapsed = time.time() - t0
        worker = self.worker_count() - before
        answered = sum(v for k, v in counts.items() if isinstance(k, tuple) and k[0] == 200)
        hits = sum(v for k, v in counts.items() if k in ((200, "HIT"), (200, "UPDATING")))
        print("\n  %d waiters, %.0fs: nginx answered %d (%d from its cache), the workers %d "
              "(%.2f a second per concert); %r" % (
                  self.WAITERS, elapsed, answered, hits, worker,
                  worker / elapsed / len(concerts), counts), end=" ")
        self.assertEqual([k for k in counts if not isinstance(k, tuple) or k[0] != 200], [],
                         "failed polls: %r" % counts)
        self.assertGreaterEqual(answered, 10000, "the crowd did not poll as planned")
        # the workers did answer the misses (the counter is read right)
        misses = sum(v for k, v in counts.items() if k in ((200, "MISS"), (200, "EXPIRED")))
        self.assertGreaterEqual(worker, misses)
        # about one a second per concert, plus a small margin (the test's
        # own fresh reads and the seconds at either end)
        self.assertLessEqual(worker, len(concerts) * (elapsed + 3),
                             "the workers answered %d of %d polls" % (worker, answered))
        # admission ran meanwhile, and the document followed it
        for C in concerts:
            b = self.fresh(C)[1]
            self.assertGreater(b["nowServing"], served_before[C], b)
            self.assertEqual(b["nowServing"] + b["waiting"], 40, b)


# ----------------------------------------------------------------- redis
@destructive
class TestProgressRedisDown(ProgressTest):

    def test_redis_down_is_503_queue_unavailable_not_cached(self):
        C = 3
        self.fresh(C)
        self.s.stop_server("redis")
        try:
            time.sleep(2.1)       # past nginx's copy
            for _ in range(3):
                resp = self.get(progress_path(C), timeout=10)
                self.assertJsonError(resp, 503, "QUEUE_UNAVAILABLE")
                self.assertNotEqual(resp[1].get("x-cache"), "HIT")
                self.assertNotIn("public", resp[1].get("cache-control", ""))
        finally:
            self.restore_server("redis")
        self.wait_for(lambda: self.get(progress_path(C))[0] == 200 or None,
                      timeout=20, interval=0.3, msg="progress answering again")

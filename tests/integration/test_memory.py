"""Memory: one worker answers 100,000 requests and its resident memory
stays flat.

The pool-size lever (stack.set_workers(1)) leaves exactly one of the
started worker processes taking requests; the test finds it from the
access log, warms it up with 5,000 requests, reads its VmRSS from
/proc/PID/status, sends the other 95,000 and reads it again: growth must
stay under 2 MiB. The requests are a fixed mix of cheap answers that
allocate on every path a worker has (the ping, bad JSON of several kinds,
a body too large, wrong media type, unknown routes and methods, forged
tokens, reads with a genuine token that reach PostgreSQL, and the concert
list and schedules, which nginx micro-caches, so that only their refreshes
reach the worker and they are sent on top of the 100,000), none of which
changes anything. They go through nginx over keep-alive connections from
several client threads, so the run takes seconds, not minutes. The worker
pool is put back to 4 at the end.

In a build with AddressSanitizer (the sanitizers stage of ./dev test) the
allocator keeps freed memory in quarantine, so RSS says nothing about
leaks there (LeakSanitizer reports them when the workers exit): the test
then sends 20,000 requests, checks the answers and the worker, and skips
the RSS bound.

Data used: demo user 990 (reads only).
"""

import os
import re
import socket
import threading
import time
import uuid

from harness import StackTest, user_uuid

TOTAL = 100000              # requests that reach the worker
WARMUP = 5000
CHUNKS = 5                  # RSS samples after the warm-up
THREADS = 8
DEPTH = 1                   # requests per round trip (no pipelining: nginx
                            # stalls pipelined cache hits behind misses)
LIMIT_KB = 2048
SANITIZED_TOTAL = 20000

USER = user_uuid(990)


def get(path, token=None):
    auth = b"Authorization: Bearer %s\r\n" % token.encode() if token else b""
    return b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n" % (path.encode(), auth)


def post(path, body, ctype=b"application/json", token=None):
    auth = b"Authorization: Bearer %s\r\n" % token.encode() if token else b""
    return (b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: %s\r\n%s"
            b"Content-Length: %d\r\n\r\n%s" % (path.encode(), ctype, auth, len(body), body))


def mix(token):
    """(name, raw request, expected status, weight, nginx-cached): 100
    requests a round."""
    u = USER.encode()
    return [
        ("ping", get("/api/ping"), 200, 40, False),
        ("concerts", get("/api/concerts"), 200, 2, True),
        ("schedules", get("/api/concerts/4/schedules"), 200, 2, True),
        ("bad JSON", post("/api/queues/token", b'{"concertId": 4, "userId": '), 400, 12, False),
        ("not an object", post("/api/queues/token", b"[1,2,3]"), 400, 2, False),
        ("invalid field", post("/api/queues/token",
                               b'{"concertId":"4","userId":"%s"}' % u), 400, 4, False),
        ("deep JSON", post("/api/queues/token", b"[" * 2000), 400, 2, False),
        ("invalid UTF-8", post("/api/queues/token", b'{"userId":"\xff\xfe"}'), 400, 2, False),
        ("NUL", post("/api/queues/token", b'{"concertId":4}\x00'), 400, 1, False),
        ("too large", post("/api/queues/token", b'{"pad":"' + b"x" * 8300 + b'"}'),
         413, 1, False),
        ("media type", post("/api/queues/token", b"{}", ctype=b"text/plain"), 415, 2, False),
        ("no route", get("/api/nothing/here"), 404, 12, False),
        ("method", get("/api/reservations"), 405, 3, False),
        ("forged token", get("/api/users/%s/balance" % USER,
                             token=token[:-4] + ("AAAA" if token[-4:] != "AAAA" else "BBBB")),
         401, 5, False),
        ("balance", get("/api/users/%s/balance" % USER, token=token), 200, 4, False),
        ("no reservation", get("/api/reservations/%s" % uuid.UUID(int=990), token=token),
         404, 3, False),
        ("wrong kind", get("/api/queues/status", token=token), 403, 3, False),
    ]


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for %d" % pid)


class Load:
    """Keep-alive, pipelined clients; counts answers per request kind."""

    def __init__(self, port, kinds):
        self.port = port
        # one round: each kind as often as its weight, spread out evenly
        # (smooth weighted round robin)
        weights = [k[3] for k in kinds]
        cur, order = [0] * len(kinds), []
        for _ in range(sum(weights)):
            for i, w in enumerate(weights):
                cur[i] += w
            j = max(range(len(kinds)), key=lambda i: cur[i])
            cur[j] -= sum(weights)
            order.append(j)
        self.order = order
        self.kinds = kinds
        self.lock = threading.Lock()
        self.answers = {}               # (kind, status) -> count
        self.errors = []

    def _connect(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s, s.makefile("rb")

    @staticmethod
    def _read(f):
        """One answer: (status, server closes after it)."""
        line = f.readline()
        if not line:
            raise ConnectionError("connection closed")
        status = int(line.split()[1])
        length, close = 0, False
        while True:
            h = f.readline()
            if h in (b"\r\n", b""):
                break
            k, _, v = h.partition(b":")
            k = k.strip().lower()
            if k == b"content-length":
                length = int(v)
            elif k == b"connection" and v.strip().lower() == b"close":
                close = True
        if length:
            f.read(length)
        return status, close

    def _client(self, start, n):
        local = {}
        s = f = None
        i = 0
        try:
            while i < n:
                batch = [self.order[(start + i + j) % len(self.order)]
                         for j in range(min(DEPTH, n - i))]
                if s is None:
                    s, f = self._connect()
                s.sendall(b"".join(self.kinds[k][1] for k in batch))
                done = 0
                try:
                    for k in batch:
                        st, close = self._read(f)
                        local[(k, st)] = local.get((k, st), 0) + 1
                        done += 1
                        if close:
                            break
                except (ConnectionError, OSError):
                    pass
                if done < len(batch):       # server closed: resend the rest
                    f.close()
                    s.close()
                    s = f = None
                    if done == 0:
                        raise ConnectionError("no answer from nginx")
                i += done
        except Exception as e:
            with self.lock:
                self.errors.append(repr(e))
        finally:
            if s is not None:
                f.close()
                s.close()
        with self.lock:
            for key, c in local.items():
                self.answers[key] = self.answers.get(key, 0) + c

    def run(self, n, threads=THREADS):
        per = n // threads
        ts = [threading.Thread(target=self._client, args=(t * 13, per + (t < n % threads)))
              for t in range(threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()

    def total(self):
        return sum(self.answers.values())

    def wrong(self):
        """Answers of another status than expected, by kind."""
        out = {}
        for (k, st), c in self.answers.items():
            name, want = self.kinds[k][0], self.kinds[k][2]
            if st != want:
                out["%s -> %d" % (name, st)] = c
        return out


class TestMemory(StackTest):

    def setUp(self):
        self.s = self.stack
        rc, out = self.s.ctl("token", USER, 3600)
        self.token = out.strip().splitlines()[-1]

    def _restore_pool(self):
        s = self.s
        s.set_workers(4)
        # busy workers take the setting with their next request, idle ones
        # within a second
        for _ in range(4 * s.processes):
            s.http("GET", "/api/ping")
        time.sleep(1.2)

    def _pids_in_log(self, start, needle):
        with open(self.s.access_log, errors="replace") as f:
            f.seek(start)
            return [int(m) for m in re.findall(r"pid=(\d+) [^\n]*%s" % re.escape(needle),
                                               f.read())]

    def _the_one_worker(self):
        """The pid of the only worker that takes requests once the pool is 1."""
        s = self.s
        deadline = time.time() + 20
        last = None
        while time.time() < deadline:
            # every worker still in the old pool takes one more request,
            # reloads, and leaves the pool
            self.concurrently(lambda i: s.http("GET", "/api/ping"), 4 * s.processes,
                              threads=8)
            tag = "/api/memory-probe-%s" % uuid.uuid4().hex
            start = os.path.getsize(s.access_log)
            res = self.concurrently(lambda i: s.http("GET", tag)[0], 40, threads=8)
            self.assertEqual(res, [404] * 40, res)
            time.sleep(0.2)
            last = set(self._pids_in_log(start, tag + " "))
            if len(last) == 1:
                return last.pop()
            time.sleep(0.5)
        self.fail("more than one worker still takes requests with the pool at 1: %s" % last)

    @staticmethod
    def _sanitized(pid):
        try:
            with open("/proc/%d/maps" % pid) as f:
                return "libasan" in f.read()
        except OSError:
            return False

    def test_one_worker_rss_stays_flat_over_100000_requests(self):
        s = self.s
        self.addCleanup(self._restore_pool)
        s.set_workers(1)
        pid = self._the_one_worker()
        workers = s.worker_pids()
        self.assertIn(pid, workers)
        sanitized = self._sanitized(pid)
        total = SANITIZED_TOTAL if sanitized else TOTAL

        kinds = mix(self.token)
        load = Load(s.http_port, kinds)
        # requests to send so that n of them reach the worker (nginx answers
        # most of the micro-cached ones itself)
        weights = sum(k[3] for k in kinds)
        uncached = sum(k[3] for k in kinds if not k[4])

        def sent_for(n):                # a little more: threads start apart
            return -(-n * weights // uncached) + 100
        log_start = os.path.getsize(s.access_log)
        t0 = time.time()
        load.run(sent_for(WARMUP))
        base = rss_kb(pid)
        samples = [base]
        rest = sent_for(total) - sent_for(WARMUP)
        for k in range(CHUNKS):
            load.run(rest // CHUNKS + (k < rest % CHUNKS))
            samples.append(rss_kb(pid))
        elapsed = time.time() - t0
        print("\n  %d requests (%d for the worker) through worker %d in %.1fs (%.0f/s); VmRSS "
              "kB after the warm-up and each fifth: %s" % (load.total(), total, pid, elapsed,
                                                          load.total() / elapsed, samples))

        self.assertEqual(load.errors, [], "client errors")
        self.assertEqual(load.total(), sent_for(total), "answers received")
        self.assertEqual(load.wrong(), {}, "answers other than expected (kind -> status)")
        self.assertEqual(s.worker_pids(), workers, "a worker restarted")
        # every request went to that one worker
        time.sleep(0.3)
        with open(s.access_log, errors="replace") as f:
            f.seek(log_start)
            pids = {}
            for m in re.finditer(r"pid=(\d+) ", f.read()):
                pids[int(m.group(1))] = pids.get(int(m.group(1)), 0) + 1
        self.assertEqual(set(pids), {pid}, "requests answered by other workers: %s" % pids)
        uncached_sent = sum(c for (k, st), c in load.answers.items() if not kinds[k][4])
        self.assertGreaterEqual(uncached_sent, total)
        self.assertGreaterEqual(pids[pid], uncached_sent)
        if sanitized:
            self.skipTest("AddressSanitizer build: RSS is not a leak measure here "
                          "(%d requests answered right; LeakSanitizer checks leaks)" % total)
        growth = samples[-1] - base
        self.assertLess(growth, LIMIT_KB, "worker %d grew by %d kB over %d requests after "
                        "the warm-up (samples %s)" % (pid, growth, total - WARMUP, samples))


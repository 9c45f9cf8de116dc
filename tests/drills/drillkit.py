"""Load generation, reporting and checks shared by the failure drills.

A drill runs a bounded load of concurrent clients (threads, one fresh HTTP
connection per request, 127.0.0.1 only) through nginx while it breaks
something, then prints what the clients saw: counts by status, latency
percentiles and recovery times, and fails on a lost write or a broken
invariant.

    ctx = Ctx(stack)
    load = Load(ctx.port)
    load.clients("schedules", 12, lambda c: c.get("/api/concerts/1/schedules"))
    with load.running(max_seconds=20):
        load.mark("replica stopped"); ...
    load.table()
"""

import collections
import math
import os
import random
import threading
import time
import uuid

from boxoffice_dev import http as httpc
from boxoffice_dev.redis import pairs
from boxoffice_dev.stack import demo_email

# Every request of a drill gives up after this long: a hung request shows
# as "timeout", never as a stuck drill.
CLIENT_TIMEOUT = 2.0


def user_uuid(i):
    """Demo user i (from 1)."""
    return "00000000-0000-4000-8000-%012d" % i


def schedule_of(concert, k=0, per_concert=4):
    """The id of concert's k-th schedule (demo data: (c-1)*4 + s)."""
    return (concert - 1) * per_concert + 1 + k


class DrillFailure(AssertionError):
    pass


# ------------------------------------------------------------------ http
Resp = httpc.Answer


def request(port, method, path, body=None, headers=None, timeout=CLIENT_TIMEOUT):
    """One request on a fresh connection (boxoffice_dev.http.probe). Never
    raises for network trouble: status is then "timeout" or "error"."""
    return httpc.probe(port, method, path, body=body, headers=headers, timeout=timeout)


# -------------------------------------------------------------- recorder
class Recorder:
    """Every request of a drill: (start, end, label, status)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.samples = []          # (t_start, t_end, label, status, code)
        self.marks = []            # (t, name)
        self.t0 = time.monotonic()

    def add(self, label, t_start, resp):
        with self.lock:
            self.samples.append((t_start - self.t0, t_start + resp.latency - self.t0,
                                 label, resp.status, resp.code()))

    def now(self):
        return time.monotonic() - self.t0

    def mark(self, name):
        t = self.now()
        with self.lock:
            self.marks.append((t, name))
        print("  [%6.2fs] %s" % (t, name), flush=True)
        return t

    def select(self, label=None, t_from=None, t_to=None):
        with self.lock:
            s = list(self.samples)
        out = []
        for x in s:
            if label is not None and not _label_match(label, x[2]):
                continue
            if t_from is not None and x[0] < t_from:
                continue
            if t_to is not None and x[0] >= t_to:
                continue
            out.append(x)
        return out

    def stats(self, label=None, t_from=None, t_to=None):
        s = self.select(label, t_from, t_to)
        lats = sorted(x[1] - x[0] for x in s)
        st = collections.Counter(x[3] for x in s)
        codes = collections.Counter(x[4] for x in s if x[4])
        return {"n": len(s), "status": st, "codes": codes,
                "p50": pct(lats, 50), "p99": pct(lats, 99),
                "max": lats[-1] if lats else 0.0}

    def recovery(self, label, since, good=lambda st: st == 200):
        """Seconds from `since` until the answers of `label` are good for
        good: the end of the first good request started after the last bad
        one. 0 if nothing went bad; None if it never recovered."""
        s = self.select(label, t_from=since)
        bad = [x for x in s if not good(x[3])]
        if not bad:
            return 0.0
        last_bad = max(x[0] for x in bad)
        after = [x[1] for x in s if x[0] > last_bad and good(x[3])]
        if not after:
            return None
        return max(0.0, min(after) - since)

    def bad_window(self, label, good=lambda st: st == 200):
        """(first, last) start time of the bad answers of label, or None."""
        bad = [x[0] for x in self.select(label) if not good(x[3])]
        return (min(bad), max(bad)) if bad else None


def _label_match(want, label):
    if isinstance(want, (list, tuple, set)):
        return label in want
    if want.endswith("*"):
        return label.startswith(want[:-1])
    return label == want


def pct(sorted_vals, p):
    if not sorted_vals:
        return 0.0
    k = max(0, min(len(sorted_vals) - 1, int(math.ceil(p / 100.0 * len(sorted_vals))) - 1))
    return sorted_vals[k]


def fmt_status(counter):
    def key(k):
        return (0, k) if isinstance(k, int) else (1, 0)
    return " ".join("%s:%d" % (k, counter[k]) for k in sorted(counter, key=key))


# ------------------------------------------------------------------ load
class Client:
    """One simulated user: requests recorded under a label."""

    def __init__(self, load, idx, label):
        self.load, self.idx, self.label = load, idx, label
        self.rng = random.Random(idx * 7919 + 17)
        self.state = {}

    def req(self, method, path, body=None, headers=None, label=None, timeout=CLIENT_TIMEOUT):
        t0 = time.monotonic()
        r = request(self.load.port, method, path, body=body, headers=headers, timeout=timeout)
        self.load.rec.add(label or self.label, t0, r)
        return r

    def get(self, path, **kw):
        return self.req("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.req("POST", path, body=body, **kw)

    @property
    def stopping(self):
        return self.load.stop_event.is_set()


class Load:
    """Concurrent clients, each looping over one step function until the
    load is stopped, its time is up or it has run max_steps times."""

    def __init__(self, port, rec=None):
        self.port = port
        self.rec = rec or Recorder()
        self.groups = []           # (label, n, step, think)
        self.stop_event = threading.Event()
        self.threads = []
        self.errors = []
        self.steps = collections.Counter()

    def clients(self, label, n, step, think=0.02, max_steps=5000):
        self.groups.append((label, n, step, think, max_steps))
        return self

    def mark(self, name):
        return self.rec.mark(name)

    def _loop(self, client, step, think, max_steps, deadline):
        i = 0
        while not self.stop_event.is_set() and time.monotonic() < deadline and i < max_steps:
            try:
                step(client)
            except Exception as e:          # a bug in the drill itself
                self.errors.append("%s: %r" % (client.label, e))
                if len(self.errors) > 50:
                    return
                time.sleep(0.1)
            i += 1
            self.steps[client.label] += 1
            if think:
                self.stop_event.wait(think * (0.5 + client.rng.random()))

    def start(self, max_seconds=30):
        deadline = time.monotonic() + max_seconds
        idx = 0
        for label, n, step, think, max_steps in self.groups:
            for _ in range(n):
                c = Client(self, idx, label)
                idx += 1
                t = threading.Thread(target=self._loop, args=(c, step, think, max_steps,
                                                                deadline), daemon=True)
                self.threads.append(t)
        for t in self.threads:
            t.start()
        return self

    def stop(self):
        self.stop_event.set()
        for t in self.threads:
            t.join(CLIENT_TIMEOUT + 5)

    def running(self, max_seconds=30):
        load = self

        class _Ctx:
            def __enter__(self):
                return load.start(max_seconds)

            def __exit__(self, *exc):
                load.stop()
                return False
        return _Ctx()

    def table(self, labels=None, t_from=None, t_to=None, title=None):
        """Print n, statuses and latency per label (and all together)."""
        if labels is None:
            labels = []
            for x in self.rec.select(t_from=t_from, t_to=t_to):
                if x[2] not in labels:
                    labels.append(x[2])
        if title:
            print("  %s" % title)
        print("    %-18s %6s %8s %8s %8s  %s" % ("requests", "n", "p50 ms", "p99 ms", "max ms",
                                                  "statuses"))
        for lb in labels:
            s = self.rec.stats(lb, t_from, t_to)
            if not s["n"]:
                continue
            codes = ""
            if s["codes"]:
                codes = "  [" + " ".join("%s:%d" % kv for kv in sorted(s["codes"].items())) + "]"
            print("    %-18s %6d %8.1f %8.1f %8.1f  %s%s" % (
                lb, s["n"], s["p50"] * 1000, s["p99"] * 1000, s["max"] * 1000,
                fmt_status(s["status"]), codes))
        if self.errors:
            print("    drill client errors: %d, first: %s" % (len(self.errors), self.errors[0]))


# --------------------------------------------------------------- context
class Ctx:
    """What a drill gets: the stack, checks, figures, settings, helpers."""

    def __init__(self, stack, baseline=None):
        self.stack = stack
        self.port = stack.ports["http"]
        self.baseline = dict(baseline or {})
        self.failures = []
        self.figures = collections.OrderedDict()
        self.name = None

    # ---- outcome
    def check(self, cond, msg):
        if not cond:
            self.failures.append(msg)
            print("  FAIL: %s" % msg, flush=True)
        return bool(cond)

    def require(self, cond, msg):
        if not cond:
            raise DrillFailure(msg)

    def figure(self, key, value, fmt="%s"):
        self.figures[key] = value
        print("  figure %s = %s" % (key, fmt % value if value is not None else "n/a"),
              flush=True)

    def say(self, msg):
        print("  " + msg, flush=True)

    # ---- http
    def http(self, method, path, body=None, headers=None, timeout=CLIENT_TIMEOUT):
        return request(self.port, method, path, body=body, headers=headers, timeout=timeout)

    def get(self, path, **kw):
        return self.http("GET", path, **kw)

    def wait_for(self, pred, timeout, interval=0.1, what="condition"):
        """Poll pred() until truthy (bounded); returns (value, seconds) or
        raises DrillFailure."""
        t0 = time.monotonic()
        deadline = t0 + timeout
        last = None
        while time.monotonic() < deadline:
            last = pred()
            if last:
                return last, time.monotonic() - t0
            time.sleep(interval)
        raise DrillFailure("timed out after %.0fs waiting for %s (last: %r)"
                           % (timeout, what, last))

    def is_waiting_page(self, r):
        """r is the static waiting page (www/waiting.html) with a 503 and
        Retry-After, as nginx serves it to browsers when the queue is shut."""
        if not hasattr(self, "_waiting_html"):
            with open(os.path.join(self.stack.srcdir, "www", "waiting.html"), "rb") as f:
                self._waiting_html = f.read()
        return (r.status == 503 and "text/html" in r.headers.get("content-type", "")
                and r.raw == self._waiting_html and bool(r.headers.get("retry-after")))

    # ---- metrics
    def metrics(self):
        r = self.get("/metrics", timeout=5)
        out = {}
        if r.status != 200 or not isinstance(r.body, bytes):
            return out
        for line in r.body.decode("utf-8", "replace").splitlines():
            if not line or line.startswith("#"):
                continue
            try:
                name, val = line.rsplit(" ", 1)
                out[name] = float(val)
            except ValueError:
                continue
        return out

    def metric(self, name, default=0.0):
        return self.metrics().get(name, default)

    def health(self):
        r = self.get("/api/health", timeout=5)
        return r.body if isinstance(r.body, dict) else {}

    def health_all(self, pred, n=12):
        """n health answers in a row (several workers) all satisfy pred."""
        for _ in range(n):
            if not pred(self.health()):
                return False
        return True

    # ---- settings
    def reload(self, overrides, settle=True):
        """Change settings and make sure every worker took them."""
        s = self.stack
        log = s.path("logs", "worker.log")
        start = os.path.getsize(log) if os.path.exists(log) else 0
        pids = s.reload(overrides)
        if settle:
            time.sleep(0.2)
            for _ in range(3 * max(1, len(pids))):
                self.get("/api/ping")
            time.sleep(1.1)          # workers outside the pool look every second
        with open(log, errors="replace") as f:
            f.seek(start)
            refused = [line for line in f if "refused" in line]
        self.require(not refused, "the workers refused %r: %s" % (overrides, refused[:1]))

    def restore_settings(self):
        """Back to the runner's baseline settings."""
        s = self.stack
        for k in list(s.overrides):
            if k not in self.baseline:
                s.overrides.pop(k)
        s.overrides.update(self.baseline)
        s.workers = int(self.baseline.get(("http", "workers"), s.workers))
        self.reload({})

    # ---- servers
    def ensure_up(self, which):
        """which runs again (resumed or started)."""
        s = self.stack
        s.resume_server(which)
        if not s.server_pid(which):
            s.start_server(which)

    def ensure_all_up(self):
        for w in ("primary", "replica", "redis"):
            self.ensure_up(w)
        try:
            self.stack.wait_streaming(timeout=30)
        except Exception as e:
            print("  (replica not streaming: %s)" % e)

    # ---- credentials: made before a load starts, never in its measured part
    def auth(self, user):
        """Demo user's Authorization header: an operator's user token, signed
        here with the stack's key (no request, no process)."""
        return {"Authorization": "Bearer " + self.stack.user_token(user_uuid(user))}

    def auths(self, users):
        """{user: Authorization header} for each demo user of users."""
        return {u: self.auth(u) for u in users}

    def session(self, user):
        """Demo user's Authorization header with a real session: a sign-in
        with the demo password (an Argon2 check: for a few users only)."""
        return {"Authorization": "Bearer " + self.stack.sign_in(demo_email(user))}

    # ---- the queue
    def join(self, concert, user, accept=None, auth=None):
        """Demo user joins concert's queue with auth (their Authorization
        header; a user token made here if None)."""
        h = dict(auth or self.auth(user))
        if accept:
            h["Accept"] = accept
        return self.http("POST", "/api/queues/token", body={"concertId": concert}, headers=h)

    def status(self, token):
        return self.http("GET", "/api/queues/status",
                         headers={"Authorization": "Bearer " + token})

    def active_token(self, concert, user, timeout=10):
        """Join and poll until ACTIVE; returns the ACTIVE token."""
        r = self.join(concert, user)
        self.require(r.status == 201, "join of user %d to concert %d: %r" % (user, concert, r))
        if r.body.get("status") == "ACTIVE":
            return r.body["token"]
        tok = r.body["token"]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            s = self.status(tok)
            if s.status == 200 and s.body.get("status") == "ACTIVE":
                return s.body["token"]
            if s.status == 200 and s.body.get("token"):
                tok = s.body["token"]
            time.sleep(0.05)
        raise DrillFailure("user %d never became ACTIVE in concert %d" % (user, concert))

    def redis_queue(self, concert, parts=("seq", "num", "wait", "claim", "active", "admits",
                                          "stats")):
        """The exact state of a concert's queue, read from Redis."""
        out = {}
        for p in parts:
            k = "q:{%d}:%s" % (concert, p)
            if p == "seq":
                out[p] = self.stack.redis("GET", k)
            elif p in ("num", "stats"):
                out[p] = dict(pairs(self.stack.redis("HGETALL", k)))
            else:
                out[p] = pairs(self.stack.redis("ZRANGE", k, 0, -1, "WITHSCORES"))
        return out

    def reset_queue(self, concert):
        keys = ["q:{%d}:%s" % (concert, p) for p in
                ("seq", "num", "wait", "claim", "active", "admits", "stats", "tick",
                 "served", "pre", "seed", "draw")]
        self.stack.redis("DEL", *keys)

    def user_token(self, user, seconds=3600):
        """A user token (balance and charges) from the operator CLI."""
        _, out = self.stack.ctl("token", user_uuid(user), seconds, timeout=30)
        return out.strip().splitlines()[-1].strip()

    # ---- the database
    def sql(self, q):
        return self.stack.psql(q)

    def sql_value(self, q):
        return self.stack.psql_value(q)


# ------------------------------------------------------------ invariants
def invariants(ctx):
    """Money and seats, straight from the primary. Returns a list of
    problems (empty when everything holds)."""
    probs = []
    q = ctx.sql_value
    n = q("""SELECT count(*) FROM users u WHERE u.balance <>
               COALESCE((SELECT sum(amount) FROM ledger l WHERE l.user_id = u.id), 0)""")
    if n != "0":
        probs.append("%s users whose balance differs from the sum of their ledger" % n)
    n = q("SELECT count(*) FROM users WHERE balance < 0")
    if n != "0":
        probs.append("%s negative balances" % n)
    n = q("SELECT count(*) FROM ledger WHERE balance_after < 0")
    if n != "0":
        probs.append("%s ledger rows leaving a negative balance" % n)
    # A refunded seat may be sold again: one VALID ticket per seat at a time.
    n = q("""SELECT count(*) FROM (SELECT schedule_id, seat_number FROM tickets
               WHERE status = 'VALID' GROUP BY 1, 2 HAVING count(*) > 1) x""")
    if n != "0":
        probs.append("%s seats with more than one VALID ticket" % n)
    n = q("""SELECT count(*) FROM payments p WHERE NOT EXISTS
               (SELECT 1 FROM tickets t WHERE t.payment_id = p.id)""")
    if n != "0":
        probs.append("%s payments without their ticket" % n)
    n = q("""SELECT count(*) FROM seats s WHERE s.status = 'SOLD' AND NOT EXISTS
               (SELECT 1 FROM tickets t WHERE t.schedule_id = s.schedule_id
                AND t.seat_number = s.number AND t.status = 'VALID')""")
    if n != "0":
        probs.append("%s SOLD seats without a VALID ticket" % n)
    n = q("""SELECT count(*) FROM tickets t JOIN payments p ON p.id = t.payment_id
               JOIN seats s ON s.schedule_id = t.schedule_id AND s.number = t.seat_number
             WHERE t.status = 'VALID' AND (s.status <> 'SOLD'
                OR s.reservation_id IS DISTINCT FROM p.reservation_id)""")
    if n != "0":
        probs.append("%s VALID tickets whose seat is not SOLD to that reservation" % n)
    n = q("""SELECT count(*) FROM payments p WHERE NOT EXISTS
               (SELECT 1 FROM ledger l WHERE l.payment_id = p.id AND l.amount = -p.amount)
             AND p.amount > 0""")
    if n != "0":
        probs.append("%s payments without their ledger entry" % n)
    n = q("""SELECT count(*) FROM reservations r WHERE r.status = 'PAID' AND NOT EXISTS
               (SELECT 1 FROM payments p WHERE p.reservation_id = r.id)""")
    if n != "0":
        probs.append("%s PAID reservations without a payment" % n)
    return probs


def new_key():
    return uuid.uuid4().hex


# ---------------------------------------------------------------- writes
class Writes:
    """Every charge and payment sent, by Idempotency-Key, with its answers."""

    def __init__(self):
        self.lock = threading.Lock()
        self.charges = {}       # key -> {user, amount, token, answers}
        # key -> {user, reservation, token, answers}; reservation is one id,
        # or a list of ids paid together (reservationIds)
        self.payments = {}

    def charge(self, c, user, token, amount, key=None, label="charge"):
        key = key or new_key()
        with self.lock:
            rec = self.charges.setdefault(key, {"user": user, "amount": amount,
                                                "token": token, "answers": []})
        r = c.req("POST", "/api/users/%s/balance/charge" % user_uuid(user),
                  body={"amount": amount}, label=label,
                  headers={"Authorization": "Bearer " + token, "Idempotency-Key": key})
        with self.lock:
            rec["answers"].append(r)
        return r

    def pay(self, c, user, token, reservation, key=None, label="pay"):
        key = key or new_key()
        with self.lock:
            rec = self.payments.setdefault(key, {"user": user, "reservation": reservation,
                                                 "token": token, "answers": []})
        body = ({"reservationIds": reservation} if isinstance(reservation, list)
                else {"reservationId": reservation})
        r = c.req("POST", "/api/payments", body=body, label=label,
                  headers={"Authorization": "Bearer " + token, "Idempotency-Key": key})
        with self.lock:
            rec["answers"].append(r)
        return r

    @staticmethod
    def done(rec):
        return any(a.ok for a in rec["answers"])

    def pending(self):
        with self.lock:
            return ([(k, v) for k, v in self.charges.items() if not self.done(v)],
                    [(k, v) for k, v in self.payments.items() if not self.done(v)])

    def retry_pending(self, ctx, timeout=20):
        """Retry every unanswered write with its own key until it gets an
        answer that is not 5xx or a network error (bounded)."""
        class C:
            def req(self_, *a, **kw):
                kw.pop("label", None)
                return request(ctx.port, *a, **kw)
        c = C()
        deadline = time.monotonic() + timeout
        retried = 0
        while time.monotonic() < deadline:
            pc, pp = self.pending()
            unanswered = [("c", k, v) for k, v in pc if not _final(v)] + \
                         [("p", k, v) for k, v in pp if not _final(v)]
            if not unanswered:
                break
            for kind, k, v in unanswered:
                retried += 1
                if kind == "c":
                    self.charge(c, v["user"], v["token"], v["amount"], key=k)
                else:
                    self.pay(c, v["user"], v["token"], v["reservation"], key=k)
            time.sleep(0.2)
        return retried


def _final(rec):
    """The last answer settles the request: 2xx, or a 4xx (the request
    itself was refused, nothing moved)."""
    last = rec["answers"][-1] if rec["answers"] else None
    return last is not None and isinstance(last.status, int) and last.status < 500


def check_writes(ctx, writes, ledger_from, users):
    """Every Idempotency-Key moved money exactly once; every answered
    payment exists."""
    pc, pp = writes.pending()
    ctx.check(not [1 for _, v in pc if not _final(v)] and
              not [1 for _, v in pp if not _final(v)],
              "writes still unanswered after retries: %d charges, %d payments"
              % (len(pc), len(pp)))
    # Charges: the ledger has one CHARGE row per key, for the key's amount.
    want = {}
    refused = 0
    for k, v in writes.charges.items():
        if writes.done(v):
            want.setdefault(v["user"], []).append(v["amount"])
            ok = [a for a in v["answers"] if a.ok]
            for a in ok:
                if not (isinstance(a.body, dict) and a.body.get("charged") == v["amount"]):
                    ctx.check(False, "charge %s answered %r for amount %d" % (k, a.body,
                                                                             v["amount"]))
        else:
            refused += 1
    rows = ctx.sql("SELECT user_id, count(*), COALESCE(sum(amount), 0) FROM ledger WHERE "
                   "kind = 'CHARGE' AND id > %d GROUP BY user_id" % ledger_from)
    got = {r[0]: (int(r[1]), int(r[2])) for r in rows}
    lost = dup = 0
    for u in users:
        amounts = want.get(u, [])
        g = got.get(user_uuid(u), (0, 0))
        if g != (len(amounts), sum(amounts)):
            if g[0] < len(amounts):
                lost += 1
            else:
                dup += 1
            ctx.check(False, "user %d: ledger has %d charges summing %d, the clients were "
                      "told of %d summing %d" % (u, g[0], g[1], len(amounts), sum(amounts)))
    keys = ctx.sql_value("SELECT count(*) FROM idempotency_keys WHERE scope = 'charge' AND "
                         "key IN (%s)" % ",".join("'%s'" % k for k in writes.charges
                                                   if writes.done(writes.charges[k]))
                         ) if want else "0"
    n_done = sum(len(v) for v in want.values())
    ctx.check(int(keys) == n_done, "idempotency records %s for %d answered charges"
              % (keys, n_done))
    # Payments: every 2xx answer names payments that exist, one per seat
    # paid; a payment of several holds refused in the end paid none of them.
    pays_ok = groups_ok = groups_refused = 0
    for k, v in writes.payments.items():
        group = isinstance(v["reservation"], list)
        resv = v["reservation"] if group else [v["reservation"]]
        ids = {_payment_ids(a.body, group) for a in v["answers"]
               if a.ok and isinstance(a.body, dict)}
        if not ids:
            if group and _final(v):
                groups_refused += 1
                n = ctx.sql_value("SELECT count(*) FROM payments WHERE reservation_id IN (%s)"
                                  % ",".join("'%s'" % x for x in resv))
                ctx.check(n == "0", "payment key %s was refused (%s) but paid %s of its %d "
                          "holds" % (k, v["answers"][-1].status, n, len(resv)))
            continue
        pays_ok += 1
        groups_ok += group
        ctx.check(len(ids) == 1, "payment key %s answered with different payments %r"
                  % (k, ids))
        pids = ids.pop()
        ctx.check(len(pids) == len(resv), "payment key %s: %d payments answered for %d holds"
                  % (k, len(pids), len(resv)))
        n = ctx.sql_value("SELECT count(*) FROM payments WHERE (id, reservation_id) IN (%s)"
                          % ",".join("('%s'::uuid, '%s'::uuid)" % pr
                                     for pr in zip(pids, resv)))
        ctx.check(n == str(len(resv)), "payment key %s answered 2xx for %d seats but %s of "
                  "them are in the database" % (k, len(resv), n))
    return {"charges": len(writes.charges), "charges_applied": n_done,
            "charges_refused": refused, "payments": len(writes.payments),
            "payments_ok": pays_ok, "group_payments_ok": groups_ok,
            "group_payments_refused": groups_refused, "lost": lost, "duplicated": dup}


def _payment_ids(body, group):
    """The payment ids of a 2xx answer, in the order of the holds sent."""
    if not group:
        return (body.get("id"),)
    return tuple(p.get("id") for p in body.get("payments") or [])


def ledger_top(ctx):
    return int(ctx.sql_value("SELECT COALESCE(max(id), 0) FROM ledger"))


def mixed_gets(load, n=16, think=0.02):
    """n clients of public GETs: schedules 60 %, the concert list 30 %,
    ping 10 %."""
    def step(c):
        x = c.rng.random()
        if x < 0.6:
            c.get("/api/concerts/%d/schedules" % c.rng.randint(1, 5), label="schedules")
        elif x < 0.9:
            c.get("/api/concerts", label="concerts")
        else:
            c.get("/api/ping", label="ping")
    load.clients("get", n, step, think=think)


def chargers(ctx, load, writes, users, think=0.05):
    """One client per user, charging small amounts with a fresh
    Idempotency-Key each time (user tokens from the operator CLI)."""
    toks = {u: ctx.user_token(u) for u in users}
    it = iter(users)
    lock = threading.Lock()

    def charge(c):
        if "user" not in c.state:
            with lock:
                c.state["user"] = next(it)
        u = c.state["user"]
        writes.charge(c, u, toks[u], c.rng.randint(1, 999))
    load.clients("charge", len(users), charge, think=think)

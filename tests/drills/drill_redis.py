"""Drills 2 and 3: Redis killed under load; Redis restarted from its AOF,
and a queue put back with `queue restore` after FLUSHALL.
"""

import concurrent.futures
import os
import signal
import time

from drillkit import Load, new_key, schedule_of, user_uuid

CONCERT_BOOK = 2        # ACTIVE users book here while Redis is down
CONCERT_JOIN = 5        # queue joins during the outage
CONCERT_AOF = 4         # the queue that survives a restart


def _is_queue_unavailable(r):
    return (r.status == 503 and "json" in r.headers.get("content-type", "")
            and r.code() == "QUEUE_UNAVAILABLE" and r.headers.get("retry-after") is not None)


def _book(ctx, user, token, schedule, seat):
    """Hold one seat and pay it with an ACTIVE token. Returns (hold, pay, key)."""
    auth = {"Authorization": "Bearer " + token}
    h = ctx.http("POST", "/api/reservations", body={"scheduleId": schedule, "seatNumber": seat},
                 headers=auth)
    if h.status != 201:
        return h, None, None
    key = new_key()
    p = ctx.http("POST", "/api/payments", body={"reservationId": h.body["id"]},
                 headers=dict(auth, **{"Idempotency-Key": key}))
    return h, p, key


def drill_redis_killed(ctx):
    s = ctx.stack
    # Users admitted before Redis dies; they must keep booking without it.
    users = list(range(101, 113))
    tokens = {u: ctx.active_token(CONCERT_BOOK, u) for u in users}
    load = Load(ctx.port)
    joiners = iter(range(900, 1001))
    auths = ctx.auths(range(900, 1001))

    def schedules(c):
        c.get("/api/concerts/%d/schedules" % c.rng.randint(1, 5))

    def concerts(c):
        c.get("/api/concerts")

    def join_json(c):
        u = next(joiners, None) or c.rng.randint(900, 1000)
        c.post("/api/queues/token", body={"concertId": CONCERT_JOIN}, headers=auths[u])

    not_waiting_page = []

    def join_html(c):
        u = c.rng.randint(900, 1000)
        r = c.post("/api/queues/token", body={"concertId": CONCERT_JOIN},
                   headers=dict(auths[u], Accept="text/html,application/xhtml+xml"))
        if r.status != 201 and not ctx.is_waiting_page(r):
            not_waiting_page.append(r)

    load.clients("schedules", 12, schedules, think=0.02)
    load.clients("concerts", 4, concerts, think=0.02)
    load.clients("join", 2, join_json, think=0.1)
    load.clients("join-html", 1, join_html, think=0.2)
    seen_html = []
    seen_json = []
    with load.running(max_seconds=50):
        time.sleep(3)
        h0 = ctx.metric("boxoffice_cache_hits_total")
        t_kill = load.mark("SIGKILL redis")
        os.kill(s.server_pid("redis"), signal.SIGKILL)
        ctx.wait_for(lambda: not s.server_pid("redis"), timeout=5, what="redis gone")
        _, dt = ctx.wait_for(lambda: ctx.health().get("redis") == "down", timeout=10,
                             what="health: redis down")
        ctx.figure("health_shows_redis_down_s", round(dt, 2))
        time.sleep(1)
        # Admitted users hold and pay on their signed tokens.
        load.mark("admitted users hold and pay")
        with concurrent.futures.ThreadPoolExecutor(len(users)) as ex:
            res = list(ex.map(lambda i: _book(ctx, users[i], tokens[users[i]],
                                              schedule_of(CONCERT_BOOK, i % 4), 1 + i),
                              range(len(users))))
        load.mark("bookings done")
        holds = sum(1 for h, p, k in res if h.status == 201)
        pays = [(h, p, k) for h, p, k in res if p is not None and p.status == 201]
        ctx.figure("bookings_during_outage", "%d holds, %d payments of %d users"
                   % (holds, len(pays), len(users)))
        for u, (h, p, k) in zip(users, res):
            ctx.check(h.status == 201, "user %d could not hold with Redis down: %r" % (u, h))
            if p is not None:
                ctx.check(p.status == 201, "user %d could not pay with Redis down: %r" % (u, p))
        # The queue: JSON 503 for API clients, the waiting page for browsers.
        r = ctx.join(CONCERT_JOIN, 950, auth=auths[950])
        seen_json.append(r)
        r = ctx.join(CONCERT_JOIN, 951, accept="text/html", auth=auths[951])
        seen_html.append(r)
        time.sleep(2)
        t_start = load.mark("starting redis")
        s.start_server("redis")
        load.mark("redis answers PING")
        # The breakers close (each worker's) and joins work again.
        _, dt = ctx.wait_for(lambda: ctx.health_all(
            lambda h: h.get("redis") == "up" and h.get("breaker") == "closed"),
            timeout=20, interval=0.2, what="health: redis up, breaker closed in every answer")
        t_closed = load.mark("health: redis up, breakers closed")
        ctx.figure("breaker_closed_after_redis_start_s", round(t_closed - t_start, 2))
        _, dt = ctx.wait_for(lambda: ctx.join(CONCERT_JOIN, 999).status == 201, timeout=15,
                             what="a queue join answering 201")
        load.mark("queue joins answer 201 again")
        # Paying ends the turn, but the revocation needs Redis: were the
        # turns of those who paid during the outage ended afterwards?
        still = 0
        for u, (h, p, k) in zip(users, res):
            if p is not None and p.status == 201:
                r = ctx.get("/api/concerts/%d/schedules/%d/seats" % (
                    CONCERT_BOOK, schedule_of(CONCERT_BOOK, 0)),
                    headers={"Authorization": "Bearer " + tokens[u]})
                still += r.status == 200
        ctx.figure("turns_still_active_after_paying_in_outage", "%d of %d" % (still, len(pays)))
        m1 = ctx.metrics()
        _, out = s.ctl("cache", "warm", timeout=60)
        ctx.say("boxofficectl cache warm: %s" % out.strip().splitlines()[-1])
        # (one call: the keys live cache_ttl_ms, one second)
        warm = s.redis("EXISTS", "c:concerts", *["c:schedules:%d" % c for c in range(1, 6)])
        ctx.check(warm == 6, "cache warm left keys out: EXISTS says %r" % warm)
        time.sleep(2.5)
        m2 = ctx.metrics()

        def d(name):
            return int(m2.get(name, 0) - m1.get(name, 0))
        hits, misses = d("boxoffice_cache_hits_total"), d("boxoffice_cache_misses_total")
        bypasses = d("boxoffice_cache_bypasses_total")
        load.mark("cache hits %d -> %d -> %d" % (h0, m1.get("boxoffice_cache_hits_total", 0),
                                                  m2.get("boxoffice_cache_hits_total", 0)))
        # The workers use the cache again: no bypass, reads and fills.
        ctx.check(bypasses == 0 and hits + misses > 0, "the cache is not in use again after "
                  "Redis came back: hits +%d, misses +%d, bypasses +%d"
                  % (hits, misses, bypasses))
        ctx.figure("cache_after_warm_2_5s", "hits +%d, misses +%d, bypasses +%d"
                   % (hits, misses, bypasses))
        time.sleep(1)
    load.table(title="what clients saw, whole drill:")
    load.table(t_from=t_kill, t_to=t_start, title="while Redis was down:")
    load.table(t_from=t_closed, title="after the breakers closed:")

    # Payments made without Redis are in the database.
    for h, p, k in pays:
        n = ctx.sql_value("SELECT count(*) FROM payments WHERE id = '%s' AND reservation_id = "
                          "'%s'" % (p.body["id"], h.body["id"]))
        ctx.check(n == "1", "payment %s answered 201 but is not in the database" % p.body["id"])
    for label in ("schedules", "concerts"):
        st = load.rec.stats(label)
        ctx.check(st["status"].get(200, 0) == st["n"], "%s: not all 200: %s"
                  % (label, dict(st["status"])))
        down = load.rec.stats(label, t_kill, t_start)
        ctx.figure("%s_redis_down_p99_ms" % label, round(down["p99"] * 1000, 1))
        ctx.check(down["p99"] < 1.0, "%s p99 %.0f ms with Redis down (limit 1 s)"
                  % (label, down["p99"] * 1000))
    # Joins while Redis was down: every one 503, JSON or the waiting page.
    jd = load.rec.select("join", t_kill + 0.2, t_start)
    hd = load.rec.select("join-html", t_kill + 0.2, t_start)
    ctx.check(jd and all(x[3] == 503 and x[4] == "QUEUE_UNAVAILABLE" for x in jd),
              "joins with Redis down: want all 503 QUEUE_UNAVAILABLE, got %s"
              % load.rec.stats("join", t_kill + 0.2, t_start)["status"])
    ctx.check(hd and all(x[3] == 503 for x in hd),
              "browser joins with Redis down: want all 503, got %s"
              % load.rec.stats("join-html", t_kill + 0.2, t_start)["status"])
    ctx.check(all(_is_queue_unavailable(r) for r in seen_json),
              "join (API client) with Redis down: %r %r" % (seen_json, [r.headers
                                                                       for r in seen_json]))
    bad = [r for r in seen_html if not ctx.is_waiting_page(r)] + not_waiting_page
    ctx.figure("browser_joins_not_shown_the_waiting_page", len(bad))
    ctx.check(not bad, "browser joins (Accept: text/html) that got something else than the "
              "waiting page: %d, e.g. %r %r" % (len(bad), bad[0], bad[0].headers) if bad else "")
    jr = load.rec.recovery("join", t_start, good=lambda st: st == 201)
    ctx.figure("joins_recovered_after_redis_start_s", None if jr is None else round(jr, 2))
    ctx.figure("joins_answered_503_while_down", len(jd) + len(hd))
    ctx.check(not load.errors, "drill client errors: %s" % load.errors[:3])
    ctx.reset_queue(CONCERT_JOIN)


def _diff(a, b):
    out = []
    for k in a:
        if a[k] != b.get(k):
            out.append("%s: %r != %r" % (k, a[k] if len(str(a[k])) < 200 else "...",
                                         b.get(k) if len(str(b.get(k))) < 200 else "..."))
    return out


def drill_redis_aof_restart_and_restore(ctx):
    s = ctx.stack
    C = CONCERT_AOF
    ctx.reload({("queue", "max_active"): "5", ("queue", "admit_per_second"): "5"})
    ctx.reset_queue(C)
    users = list(range(201, 231))
    tokens = {}
    for u in users:
        r = ctx.join(C, u)
        ctx.require(r.status == 201, "join of user %d: %r" % (u, r))
        tokens[u] = (r.body["token"], r.body["queueNumber"])
    load = Load(ctx.port)
    load.clients("schedules", 8, lambda c: c.get("/api/concerts/%d/schedules"
                                                 % c.rng.randint(1, 5)), think=0.02)
    with load.running(max_seconds=40):
        time.sleep(1)
        before = ctx.redis_queue(C)
        ctx.say("queue %d: %d active, %d waiting, last number %s" % (
            C, len(before["active"]), len(before["wait"]), before["seq"]))
        ctx.check(len(before["active"]) == 5 and len(before["wait"]) == 25,
                  "queue setup: %d active, %d waiting" % (len(before["active"]),
                                                          len(before["wait"])))
        time.sleep(1.1)      # appendfsync everysec: the AOF has it all
        t_kill = load.mark("SIGKILL redis (no shutdown save)")
        os.kill(s.server_pid("redis"), signal.SIGKILL)
        ctx.wait_for(lambda: not s.server_pid("redis"), timeout=5, what="redis gone")
        s.start_server("redis")
        t_up = load.mark("redis restarted")
        ctx.figure("redis_restart_s", round(t_up - t_kill, 2))
        after = ctx.redis_queue(C)
        d = _diff(before, after)
        ctx.check(not d, "queue after the restart differs: %s" % "; ".join(d))
        ctx.say("after the restart: %d active, %d waiting, order %s" % (
            len(after["active"]), len(after["wait"]),
            "identical" if after["wait"] == before["wait"] else "CHANGED"))
        # Every waiting user still sees the same number and position. A
        # poll answered 503 is tried again shortly, as the waiting page does:
        # a worker whose breaker opened while Redis was away waits
        # breaker_open_s before it tries Redis again.
        order = [m for m, _ in after["wait"]]
        bad = []
        first_503 = [0]
        last_503 = [t_up]

        def status(tok):
            for i in range(40):
                r = ctx.status(tok)
                if r.status != 503:
                    return r
                first_503[0] += 1
                last_503[0] = load.rec.now()
                time.sleep(0.25)
            return r
        for u in users:
            tok, num = tokens[u]
            r = status(tok)
            if user_uuid(u) in order:
                want = ("WAITING", order.index(user_uuid(u)), num)
            else:
                want = ("ACTIVE", 0, num)
            got = (r.body.get("status"), r.body.get("position"), r.body.get("queueNumber")) \
                if r.status == 200 else (r.status, r.code(), None)
            if got != want:
                bad.append("user %d: %r != %r" % (u, got, want))
        ctx.check(not bad, "places after the restart: %s" % bad[:5])
        ctx.figure("polls_answered_503_after_redis_was_back", first_503[0])
        ctx.figure("queue_answering_again_after_restart_s", round(last_503[0] - t_up, 2))
        # Snapshot, lose everything, restore.
        dump = s.path("queue-%d.json" % C)
        s.ctl("queue", "dump", C, dump, timeout=30)
        snap = ctx.redis_queue(C)
        t_flush = load.mark("FLUSHALL")
        s.redis("FLUSHALL")
        gone = ctx.redis_queue(C)
        ctx.check(not gone["wait"] and not gone["active"], "FLUSHALL left the queue: %r" % gone)
        _, out = s.ctl("queue", "restore", dump, timeout=30)
        t_rest = load.mark("queue restore: %s" % out.strip().splitlines()[-1])
        ctx.figure("flushall_to_restored_s", round(t_rest - t_flush, 2))
        restored = ctx.redis_queue(C)
        d = _diff(snap, restored)
        ctx.check(not d, "queue after restore differs from the dump: %s" % "; ".join(d))
        ctx.check([m for m, _ in restored["wait"]] == order,
                  "waiting order after restore differs")
        ctx.say("after restore: %d active, %d waiting, order %s" % (
            len(restored["active"]), len(restored["wait"]),
            "identical" if [m for m, _ in restored["wait"]] == order else "CHANGED"))
        s.ctl("cache", "warm", timeout=60)
        # The restored queue moves on in the old order: free the active
        # places and watch who is admitted next.
        s.redis("DEL", "q:{%d}:active" % C)
        time.sleep(1.1)      # admit_per_second: a fresh second
        admitted = []
        for u in users:
            r = status(tokens[u][0])
            if r.status == 200 and r.body.get("status") == "ACTIVE" and \
                    user_uuid(u) in order:
                admitted.append(user_uuid(u))
        ctx.check(admitted == order[:5], "after restore the next admitted are not the next "
                  "in line: %r, want %r" % (admitted, order[:5]))
        ctx.figure("admitted_in_order_after_restore", "%d of 5" % sum(
            1 for a, b in zip(admitted, order[:5]) if a == b))
    load.table(title="what clients saw (reads during restart and restore):")
    st = load.rec.stats("schedules")
    ctx.check(st["status"].get(200, 0) == st["n"], "schedules: not all 200: %s"
              % dict(st["status"]))
    ctx.reset_queue(C)


DRILLS = [drill_redis_killed, drill_redis_aof_restart_and_restore]

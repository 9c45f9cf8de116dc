"""Drill 7: the maintenance switch, on and off, under load.

While on, queue joins and polls answer 503 (JSON for API clients, the
static waiting page for browsers) and reads keep working; when off, joins
work again and every waiting user kept the place (same number, position
unchanged or better).
"""

import threading
import time

from drillkit import Load

C = 5
WAITING = range(701, 721)        # in the queue before the switch
NEWCOMERS = range(721, 800)      # join during the drill


def drill_maintenance_switch(ctx):
    ctx.reload({("queue", "max_active"): "3", ("queue", "admit_per_second"): "3"})
    ctx.reset_queue(C)
    places = {}
    auths = ctx.auths(list(WAITING) + list(NEWCOMERS))
    # a few join signed in with the demo password, the rest with user tokens
    for u in WAITING[:3]:
        auths[u] = ctx.session(u)
    for u in WAITING:
        r = ctx.join(C, u, auth=auths[u])
        ctx.require(r.status == 201, "join of user %d: %r" % (u, r))
        places[u] = {"token": r.body["token"], "number": r.body["queueNumber"],
                     "before": None, "after": None, "bad": []}
    lock = threading.Lock()
    phase = {"name": "before"}
    load = Load(ctx.port)
    load.clients("schedules", 8, lambda c: c.get("/api/concerts/%d/schedules"
                                                 % c.rng.randint(1, 5)), think=0.02)
    load.clients("concerts", 2, lambda c: c.get("/api/concerts"), think=0.02)
    users = iter(WAITING)
    newcomers = iter(NEWCOMERS)

    def poll(c):
        if "u" not in c.state:
            with lock:
                c.state["u"] = next(users)
        p = places[c.state["u"]]
        r = c.get("/api/queues/status", headers={"Authorization": "Bearer " + p["token"]},
                  label="status")
        if r.status != 200:
            return
        b = r.body
        with lock:
            ph = phase["name"]
            if b.get("queueNumber") != p["number"] or b.get("status") == "EXPIRED":
                p["bad"].append((ph, b))
                return
            p["token"] = b.get("token") or p["token"]
            pos = b.get("position") if b.get("status") == "WAITING" else -1
            if ph == "before":
                p["before"] = pos
            elif ph == "after" and p["after"] is None:
                p["after"] = pos

    def join(c):
        with lock:
            u = next(newcomers, None)
        if u is not None:
            c.post("/api/queues/token", body={"concertId": C}, headers=auths[u], label="join")

    not_waiting_page = []

    def join_html(c):
        u = c.rng.choice(list(WAITING))
        r = c.post("/api/queues/token", body={"concertId": C},
                   headers=dict(auths[u], Accept="text/html"), label="join-html")
        if r.status != 201 and not ctx.is_waiting_page(r):
            not_waiting_page.append(r)

    load.clients("status", len(WAITING), poll, think=0.3)
    load.clients("join", 1, join, think=0.3)
    load.clients("join-html", 1, join_html, think=0.3)
    with load.running(max_seconds=40):
        time.sleep(3)
        t_on0 = load.mark("maintenance on (./dev maintenance on)")
        with lock:
            phase["name"] = "switching"
        ctx.reload({("http", "maintenance"): "1"})
        t_on = load.mark("every worker has maintenance on")
        h = ctx.health()
        ctx.check(h.get("maintenance") is True, "health does not show maintenance: %r" % h)
        time.sleep(4)
        t_off0 = load.mark("maintenance off")
        ctx.reload({("http", "maintenance"): "0"})
        with lock:
            phase["name"] = "after"
        t_off = load.mark("every worker has maintenance off")
        time.sleep(4)
        load.mark("load stops")
    load.table(title="what clients saw, whole drill:")
    load.table(t_from=t_on, t_to=t_off0, title="while maintenance was on:")
    # How long the switch takes: the last queue answer of the old setting.
    ok_after = [x[1] for x in load.rec.select("status", t_on0) if x[3] == 200 and x[0] < t_off0]
    ctx.figure("switch_on_took_s", round(max(ok_after) - t_on0, 2) if ok_after else 0.0)
    for label in ("status", "join"):
        on = load.rec.select(label, t_on, t_off0)
        codes = load.rec.stats(label, t_on, t_off0)["codes"]
        ctx.check(on and all(x[3] == 503 for x in on),
                  "%s during maintenance: want all 503, got %s" % (
                      label, dict(load.rec.stats(label, t_on, t_off0)["status"])))
        ctx.check(set(codes) <= {"QUEUE_UNAVAILABLE", "MAINTENANCE"},
                  "%s during maintenance: codes %s" % (label, dict(codes)))
        ctx.figure("%s_during_maintenance" % label, "%d x 503 %s" % (len(on), dict(codes)))
    ctx.figure("browser_joins_not_shown_the_waiting_page", len(not_waiting_page))
    ctx.check(not not_waiting_page, "browser joins (Accept: text/html) that got something "
              "else than the waiting page: %d, e.g. %r %r" % (
                  len(not_waiting_page), not_waiting_page[0], not_waiting_page[0].headers)
              if not_waiting_page else "")
    html = load.rec.select("join-html", t_on, t_off0)
    ctx.check(html and all(x[3] == 503 and x[4] is None for x in html),
              "browser joins during maintenance: %s" % dict(
                  load.rec.stats("join-html", t_on, t_off0)["status"]))
    for label in ("schedules", "concerts"):
        st = load.rec.stats(label)
        ctx.check(st["status"].get(200, 0) == st["n"], "%s: not all 200: %s"
                  % (label, dict(st["status"])))
        on = load.rec.stats(label, t_on, t_off0)
        ctx.figure("%s_during_maintenance_p99_ms" % label, round(on["p99"] * 1000, 1))
    after = load.rec.select("join", t_off)
    ctx.check(after and all(x[3] == 201 for x in after),
              "joins after maintenance: %s" % dict(load.rec.stats("join", t_off)["status"]))
    rec = load.rec.recovery("join", t_off0, good=lambda st: st == 201)
    ctx.figure("joins_back_after_switch_off_s", None if rec is None else round(rec, 2))
    lost = [(u, p["bad"][:1]) for u, p in places.items() if p["bad"]]
    ctx.check(not lost, "users lost their place: %r" % lost[:3])
    worse = [(u, p["before"], p["after"]) for u, p in places.items()
             if p["before"] is None or p["after"] is None or
             (p["after"] != -1 and p["after"] > p["before"])]
    ctx.check(not worse, "positions before/after maintenance (user, before, after): %r"
              % worse[:5])
    same = sum(1 for p in places.values() if p["after"] == p["before"])
    ctx.figure("waiting_users_kept_place", "%d of %d (%d unchanged, %d advanced)" % (
        len(places) - len(lost), len(places), same, len(places) - len(lost) - same))
    ctx.check(not load.errors, "drill client errors: %s" % load.errors[:3])
    ctx.reset_queue(C)


DRILLS = [drill_maintenance_switch]

"""Drills 4 and 6: the primary restarted under load, and the primary stalled
(SIGSTOP) under load.

Writes are charges and payments carrying an Idempotency-Key; in the restart
drill every third buyer pays 2 or 3 seats in one payment, which must be
all or nothing. A write that
got no 2xx (503, timeout) is retried with the same key once the primary is
back, as clients are told to; then every key must have moved money exactly
once, every answered payment must exist, and the money and seat
invariants must hold.
"""

import threading
import time

from drillkit import (Load, Writes, chargers, check_writes, invariants, ledger_top,
                      schedule_of)

CONCERT = 3                     # bookings of the restart drill
BOOKERS = range(501, 701)       # one payment per user
CHARGERS_RESTART = range(401, 407)
CHARGERS_STALL = range(407, 411)
QUEUE_CONCERT = 1
QUEUE_POLLERS = range(811, 815)


def _reads(load):
    load.clients("schedules", 8, lambda c: c.get("/api/concerts/%d/schedules"
                                                 % c.rng.randint(1, 5)), think=0.02)
    load.clients("concerts", 2, lambda c: c.get("/api/concerts"), think=0.02)


class Seats:
    """The seats of one concert, handed out at random; sold ones leave."""

    def __init__(self, concert, schedules=4, seats=50):
        self.lock = threading.Lock()
        self.free = [(schedule_of(concert, k), n) for k in range(schedules)
                     for n in range(1, seats + 1)]

    def pick(self, rng):
        with self.lock:
            return rng.choice(self.free) if self.free else None

    def gone(self, seat):
        with self.lock:
            if seat in self.free:
                self.free.remove(seat)


def _bookers(load, writes, n, concert, users, auths, group_every=0):
    """Each client: join (with the user's header in auths), poll until
    ACTIVE, hold a seat, pay it; one payment per user, then the next user.
    With group_every k, every k-th user holds 2 or 3 seats and pays them
    in one payment (reservationIds)."""
    seats = Seats(concert)
    it = iter(users)
    lock = threading.Lock()

    def step(c):
        st = c.state
        if "user" not in st:
            with lock:
                st["user"] = next(it, None)
            st.pop("token", None)
        u = st["user"]
        if u is None:
            return
        if "token" not in st:
            r = c.post("/api/queues/token", body={"concertId": concert}, headers=auths[u],
                       label="join")
            if r.status != 201:
                return
            tok = r.body["token"]
            for _ in range(40):
                if r.body.get("status") == "ACTIVE":
                    break
                time.sleep(0.05)
                r = c.get("/api/queues/status", headers={"Authorization": "Bearer " + tok},
                          label="status")
                if r.status != 200:
                    return
            if r.body.get("status") != "ACTIVE":
                return
            st["token"] = r.body["token"]
        want = 2 + u % 2 if group_every and u % group_every == 0 else 1
        held = st.setdefault("held", [])
        auth = {"Authorization": "Bearer " + st["token"]}
        while len(held) < want:
            seat = seats.pick(c.rng)
            if seat is None:
                break
            h = c.post("/api/reservations", body={"scheduleId": seat[0],
                                                  "seatNumber": seat[1]},
                       headers=auth, label="hold")
            if h.status == 409:
                seats.gone(seat)
                continue
            if h.status in (401, 403):
                st.pop("token", None)
                st.pop("held", None)
                return
            if h.status != 201:
                return          # this step ends; the holds stay for the next one
            seats.gone(seat)
            held.append(h.body["id"])
        if not held:
            return
        st.pop("held")
        writes.pay(c, u, st["token"], held if want > 1 else held[0],
                   label="pay group" if want > 1 else "pay")
        # Paid or not, this user is done; a lost answer is retried later.
        st.pop("user", None)
    load.clients("book", n, step, think=0.15)


def _max_latency(load, t_from, t_to):
    s = load.rec.select(None, t_from, t_to)
    return max((x[1] - x[0] for x in s), default=0.0)


def drill_primary_restarted(ctx):
    s = ctx.stack
    writes = Writes()
    ledger_from = ledger_top(ctx)
    load = Load(ctx.port)
    _reads(load)
    chargers(ctx, load, writes, CHARGERS_RESTART)
    _bookers(load, writes, 3, CONCERT, BOOKERS, ctx.auths(BOOKERS), group_every=3)
    with load.running(max_seconds=45):
        time.sleep(4)
        t_stop = load.mark("stopping the primary (pg_ctl stop -m fast)")
        s.stop_server("primary")
        load.mark("primary stopped")
        _, dt = ctx.wait_for(lambda: ctx.health().get("primary") == "down", timeout=10,
                             what="health: primary down")
        ctx.figure("health_shows_primary_down_s", round(dt, 2))
        time.sleep(3)
        load.mark("starting the primary")
        s.start_server("primary")
        t_up = load.mark("primary accepts connections")
        ctx.figure("primary_down_s", round(t_up - t_stop, 2))
        ctx.wait_for(lambda: load.rec.select("charge", t_up) and
                     load.rec.select("charge", t_up)[-1][3] == 200, timeout=15,
                     interval=0.1, what="charges answering 200 again")
        time.sleep(4)
        load.mark("load stops")
    load.table(title="what clients saw, whole drill:")
    load.table(t_from=t_stop, t_to=t_up, title="while the primary was down:")
    t_end = load.rec.now()
    # Nothing hangs: every request answered within 1 s (the client gives up
    # at 2 s and would show "timeout").
    mx = _max_latency(load, 0, t_end)
    mx_down = _max_latency(load, t_stop, t_up + 1)
    ctx.figure("max_latency_ms", round(mx * 1000, 1))
    ctx.figure("max_latency_during_outage_ms", round(mx_down * 1000, 1))
    ctx.check(mx < 1.0, "a request took %.0f ms (limit 1 s)" % (mx * 1000))
    timeouts = [x for x in load.rec.select() if x[3] in ("timeout", "error")]
    ctx.check(not timeouts, "%d requests timed out or failed on the network" % len(timeouts))
    for label in ("schedules", "concerts"):
        st = load.rec.stats(label)
        ctx.check(st["status"].get(200, 0) == st["n"], "%s: not all 200 while the primary "
                  "restarted: %s" % (label, dict(st["status"])))
    for label, good in (("charge", lambda st: st == 200),):
        rec = load.rec.recovery(label, t_up, good=good)
        ctx.figure("%s_recovered_after_primary_up_s" % label,
                   None if rec is None else round(rec, 2))
        ctx.check(rec is not None and rec < 5, "%s did not recover within 5 s of the primary "
                  "coming back (%r)" % (label, rec))
    down = load.rec.stats("charge", t_stop, t_up)
    ctx.figure("charges_while_down", "%d (%s)" % (down["n"], " ".join(
        "%s:%d" % kv for kv in sorted(down["status"].items(), key=str))))
    # Clients retry what got no answer, with the same key.
    rp0 = ctx.metric("boxoffice_idempotent_replays_total")
    retried = writes.retry_pending(ctx)
    rp1 = ctx.metric("boxoffice_idempotent_replays_total")
    ctx.figure("writes_retried_with_same_key", retried)
    # A replay on retry: the write had committed although its answer was lost.
    ctx.figure("retries_that_found_the_write_done", int(rp1 - rp0))
    res = check_writes(ctx, writes, ledger_from, list(CHARGERS_RESTART) + list(BOOKERS))
    ctx.figure("writes", "%(charges)d charges (%(charges_applied)d applied), "
               "%(payments_ok)d of %(payments)d payments (%(group_payments_ok)d of several "
               "seats; %(group_payments_refused)d of several refused, none of their seats "
               "paid), lost %(lost)d, duplicated %(duplicated)d" % res)
    for p in invariants(ctx):
        ctx.check(False, p)
    ctx.check(res["payments_ok"] > 0, "no payment went through at all")
    ctx.check(res["group_payments_ok"] > 0, "no payment of several seats went through")
    ctx.check(not load.errors, "drill client errors: %s" % load.errors[:3])


def drill_primary_stalled(ctx):
    s = ctx.stack
    writes = Writes()
    ledger_from = ledger_top(ctx)
    load = Load(ctx.port)
    load.clients("schedules", 10, lambda c: c.get("/api/concerts/%d/schedules"
                                                  % c.rng.randint(1, 5)), think=0.02)
    load.clients("concerts", 4, lambda c: c.get("/api/concerts"), think=0.02)
    chargers(ctx, load, writes, CHARGERS_STALL)
    # Queue polls need only Redis: measured, not required, during the stall.
    qtok = [ctx.join(QUEUE_CONCERT, u).body["token"] for u in QUEUE_POLLERS]
    load.clients("status", 2, lambda c: c.get("/api/queues/status", headers={
        "Authorization": "Bearer " + c.rng.choice(qtok)}), think=0.1)
    with load.running(max_seconds=40):
        time.sleep(3)
        t_stop = load.mark("SIGSTOP the primary")
        s.pause_server("primary")
        time.sleep(4)
        t_cont = load.mark("SIGCONT the primary")
        s.resume_server("primary")
        ctx.wait_for(lambda: load.rec.select("charge", t_cont) and
                     load.rec.select("charge", t_cont)[-1][3] == 200, timeout=15,
                     interval=0.1, what="charges answering 200 again")
        time.sleep(3)
        load.mark("load stops")
    load.table(title="what clients saw, whole drill:")
    load.table(t_from=t_stop, t_to=t_cont, title="while the primary was stalled:")
    for label in ("schedules", "concerts"):
        st = load.rec.stats(label, t_stop, t_cont)
        ctx.figure("%s_stalled_p99_ms" % label, round(st["p99"] * 1000, 1))
        ctx.figure("%s_stalled_max_ms" % label, round(st["max"] * 1000, 1))
        ctx.check(st["status"].get(200, 0) == st["n"], "%s: not all 200 while the primary "
                  "was stalled: %s" % (label, dict(st["status"])))
        ctx.check(st["p99"] < 1.0, "%s p99 %.0f ms while the primary was stalled (limit "
                  "1 s)" % (label, st["p99"] * 1000))
    # The longest time in which no read at all was answered: a worker pool
    # whose every worker waits on the stalled primary answers nothing.
    ends = sorted(x[1] for x in load.rec.select(("schedules", "concerts"), t_stop - 1,
                                                 t_cont + 1))
    gap = max((b - a for a, b in zip(ends, ends[1:])), default=0.0)
    ctx.figure("reads_longest_silence_ms", round(gap * 1000, 1))
    q = load.rec.stats("status", t_stop, t_cont)
    ctx.figure("queue_polls_while_stalled", "%d, p99 %.0f ms, max %.0f ms (%s)" % (
        q["n"], q["p99"] * 1000, q["max"] * 1000, " ".join(
            "%s:%d" % kv for kv in sorted(q["status"].items(), key=str))))
    ch = load.rec.stats("charge", t_stop, t_cont)
    ctx.figure("charges_while_stalled", "%d (%s), max %.0f ms" % (
        ch["n"], " ".join("%s:%d" % kv for kv in sorted(ch["status"].items(), key=str)),
        ch["max"] * 1000))
    ctx.check(ch["max"] < 1.6, "a charge waited %.0f ms for the stalled primary (deadline "
              "statement_timeout + 250 ms)" % (ch["max"] * 1000))
    rec = load.rec.recovery("charge", t_cont)
    ctx.figure("charges_recovered_after_sigcont_s", None if rec is None else round(rec, 2))
    rp0 = ctx.metric("boxoffice_idempotent_replays_total")
    retried = writes.retry_pending(ctx)
    rp1 = ctx.metric("boxoffice_idempotent_replays_total")
    ctx.figure("writes_retried_with_same_key", retried)
    # A replay on retry: the write had committed although its answer was lost.
    ctx.figure("retries_that_found_the_write_done", int(rp1 - rp0))
    res = check_writes(ctx, writes, ledger_from, list(CHARGERS_STALL))
    ctx.figure("writes", "%(charges)d charges (%(charges_applied)d applied), lost %(lost)d, "
               "duplicated %(duplicated)d" % res)
    for p in invariants(ctx):
        ctx.check(False, p)
    ctx.check(not load.errors, "drill client errors: %s" % load.errors[:3])


DRILLS = [drill_primary_restarted, drill_primary_stalled]

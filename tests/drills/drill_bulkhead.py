"""Drill: the bulkheads. The primary stalled (SIGSTOP, 10 s) under a mixed
load of queue status polls, queue progress polls and balance charges.

With the worker pools apart (queue 2, sign-in 1, booking 2 workers, beside
the stack's own, behind an nginx of their own), the charges hold the
booking workers only: queue status and progress must stay fast (p99 under
50 ms) and never fail, while charges fail fast as documented (503 within
statement_timeout_ms + 250 ms, then fast for 0.5 s) and all recover after
SIGCONT. Every charge not answered 2xx is retried with its key afterwards:
none lost, none applied twice.

BOXOFFICE_DRILL_POOLS=off runs the same load and the same checks against
the stack's undivided workers (as many in all: 5), which fails: there the
charges take every worker and the queue waits with them.
"""

import os
import time

from drillkit import Load, Writes, chargers, check_writes, invariants, ledger_top

SIZES = {"queue": 2, "signin": 1, "booking": 2}
CHARGERS = range(421, 427)          # 6 charging clients: more than booking workers
QUEUE_CONCERT = 1
POLLERS = range(821, 829)
STALL_S = 10
QUEUE_P99_S = 0.050


def drill_bulkhead(ctx):
    s = ctx.stack
    pools = os.environ.get("BOXOFFICE_DRILL_POOLS", "on") != "off"
    if pools:
        _, port = s.start_side_pools(SIZES, name="bulkhead", overrides=ctx.baseline)
        ctx.say("pools apart: %s, nginx on port %d" % (SIZES, port))
    else:
        ctx.reload({("http", "workers"): str(sum(SIZES.values()))})
        port = ctx.port
        ctx.say("one undivided pool of %d workers" % sum(SIZES.values()))
    try:
        _run(ctx, port, "pools" if pools else "undivided")
    finally:
        if pools:
            s.stop_side_pools("bulkhead")


def _run(ctx, port, mode):
    s = ctx.stack
    writes = Writes()
    ledger_from = ledger_top(ctx)
    qtok = [ctx.join(QUEUE_CONCERT, u).body["token"] for u in POLLERS]
    load = Load(port)
    load.clients("status", 4, lambda c: c.get("/api/queues/status", headers={
        "Authorization": "Bearer " + c.rng.choice(qtok)}), think=0.05)
    load.clients("progress", 4, lambda c: c.get("/api/queues/%d/progress" % QUEUE_CONCERT),
                 think=0.05)
    chargers(ctx, load, writes, CHARGERS, think=0.05)
    with load.running(max_seconds=STALL_S + 30):
        time.sleep(3)
        t_stop = load.mark("SIGSTOP the primary")
        s.pause_server("primary")
        time.sleep(STALL_S)
        t_cont = load.mark("SIGCONT the primary")
        s.resume_server("primary")
        ctx.wait_for(lambda: load.rec.select("charge", t_cont) and
                     load.rec.select("charge", t_cont)[-1][3] == 200, timeout=15,
                     interval=0.1, what="charges answering 200 again")
        time.sleep(3)
        t_end = load.mark("load stops")
    load.table(title="what clients saw, whole drill (%s):" % mode)
    load.table(t_from=t_stop, t_to=t_cont, title="while the primary was stalled (%s):" % mode)
    for label in ("status", "progress"):
        st = load.rec.stats(label, t_stop, t_cont)
        ctx.figure("%s_%s_stalled" % (mode, label), "%d, p50 %.1f ms, p99 %.1f ms, max %.0f ms "
                   "(%s)" % (st["n"], st["p50"] * 1000, st["p99"] * 1000, st["max"] * 1000,
                             " ".join("%s:%d" % kv for kv in sorted(st["status"].items(),
                                                                    key=str))))
        ctx.check(st["n"] > 0 and st["status"].get(200, 0) == st["n"],
                  "%s: a queue request failed while the primary was stalled: %s"
                  % (label, dict(st["status"])))
        ctx.check(st["p99"] < QUEUE_P99_S, "%s: p99 %.0f ms while the primary was stalled "
                  "(limit %.0f ms)" % (label, st["p99"] * 1000, QUEUE_P99_S * 1000))
        after = load.rec.stats(label, t_cont, t_end)
        ctx.check(after["n"] > 0 and after["status"].get(200, 0) == after["n"],
                  "%s after SIGCONT: %s" % (label, dict(after["status"])))
    ch = load.rec.stats("charge", t_stop, t_cont)
    ctx.figure("%s_charges_stalled" % mode, "%d, p50 %.0f ms, max %.0f ms (%s)" % (
        ch["n"], ch["p50"] * 1000, ch["max"] * 1000,
        " ".join("%s:%d" % kv for kv in sorted(ch["status"].items(), key=str))))
    # Failing fast: every charge is answered (never a client timeout), a
    # refused one with 503 UNAVAILABLE.
    bad = {k: v for k, v in ch["status"].items() if k not in (200, 201, 503)}
    ctx.check(not bad, "charges while stalled answered other than 2xx/503: %s" % bad)
    ctx.check(ch["max"] < 1.6, "a charge waited %.0f ms for the stalled primary (deadline "
              "statement_timeout + 250 ms)" % (ch["max"] * 1000))
    ctx.check(ch["codes"].get("UNAVAILABLE", 0) > 0,
              "no charge was refused 503 UNAVAILABLE while the primary was stalled: %s"
              % dict(ch["codes"]))
    rec = load.rec.recovery("charge", t_cont)
    ctx.figure("%s_charges_recovered_after_sigcont_s" % mode,
               None if rec is None else round(rec, 2))
    ctx.check(rec is not None, "charges never answered 200 again after SIGCONT")
    retried = writes.retry_pending(ctx)
    ctx.figure("%s_writes_retried_with_same_key" % mode, retried)
    res = check_writes(ctx, writes, ledger_from, list(CHARGERS))
    ctx.figure("%s_writes" % mode, "%(charges)d charges (%(charges_applied)d applied), "
               "lost %(lost)d, duplicated %(duplicated)d" % res)
    for p in invariants(ctx):
        ctx.check(False, p)
    ctx.check(not load.errors, "drill client errors: %s" % load.errors[:3])


DRILLS = [drill_bulkhead]

"""Drill 5: workers SIGKILLed repeatedly under load.

multiwatch respawns them; nginx retries the idempotent requests whose
worker died on another connection, so GETs keep answering 200. The
killer aims at workers in the middle of a request (seat maps and health
checks keep them busy with the databases), or nginx would never notice.
"""

import os
import random
import signal
import time

from drillkit import (Load, Writes, chargers, check_writes, invariants, ledger_top,
                      mixed_gets, schedule_of)

CONCERT = 1
SEATMAP_USERS = range(801, 805)
CHARGERS = range(413, 415)


def _wchan(pid):
    try:
        with open("/proc/%d/wchan" % pid) as f:
            return f.read().strip()
    except OSError:
        return ""


def _busy(pid):
    """A worker inside a request: neither waiting in accept() nor sleeping
    outside the pool."""
    w = _wchan(pid)
    return bool(w) and "skb_wait_for_more_packets" not in w and "accept" not in w \
        and "nanosleep" not in w


def _idle_in_pool(pid):
    w = _wchan(pid)
    return "skb_wait_for_more_packets" in w or "accept" in w


def _age_s(pid):
    """Seconds since pid started (0 if it is gone)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            start = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as f:
            up = float(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 0.0
    return up - start / os.sysconf("SC_CLK_TCK")


# A respawned worker still starting up (reading its settings, before it
# counts its start and joins the pool) is neither idle nor inside a
# request, and killing it proves nothing; on a loaded machine start-up can
# take a while, so only workers this old are targets.
MIN_TARGET_AGE_S = 2.0


def _targets(s):
    return [p for p in s.worker_pids() if _age_s(p) >= MIN_TARGET_AGE_S]


def drill_workers_killed(ctx):
    s = ctx.stack
    tokens = [ctx.active_token(CONCERT, u) for u in SEATMAP_USERS]
    starts0 = ctx.metric("boxoffice_worker_starts_total")
    nginx_log = s.path("logs", "boxoffice-error.log")
    log0 = os.path.getsize(nginx_log) if os.path.exists(nginx_log) else 0
    load = Load(ctx.port)
    mixed_gets(load, 12)

    def seatmap(c):
        c.get("/api/concerts/%d/schedules/%d/seats" % (CONCERT, schedule_of(
            CONCERT, c.rng.randint(0, 3))), label="seats",
            headers={"Authorization": "Bearer " + c.rng.choice(tokens)})
    load.clients("seats", 6, seatmap, think=0.02)
    load.clients("health", 2, lambda c: c.get("/api/health", label="health"), think=0.05)
    writes = Writes()
    ledger_from = ledger_top(ctx)
    chargers(ctx, load, writes, CHARGERS, think=0.05)
    killed, mid_request = [], 0
    rng = random.Random(5)
    with load.running(max_seconds=40):
        time.sleep(2)
        t_kill = load.mark("SIGKILL a worker every 0.3 s for 10 s, busy ones first")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(killed) < 60:
            pid, busy = None, False
            for _ in range(100):                 # look for one inside a request
                cand = [p for p in _targets(s) if _busy(p)]
                if cand:
                    pid, busy = rng.choice(cand), True
                    break
                time.sleep(0.001)
            if pid is None:
                cand = [p for p in _targets(s) if _idle_in_pool(p)]
                pid = rng.choice(cand) if cand else None
            if pid is not None:
                try:
                    s.kill_worker(pid, signal.SIGKILL)
                    killed.append(pid)
                    mid_request += busy
                except OSError:
                    pass
            time.sleep(0.3)
        t_end = load.mark("stopped killing (%d workers killed, %d inside a request)"
                          % (len(killed), mid_request))
        _, dt = ctx.wait_for(lambda: len(s.worker_pids()) == s.processes, timeout=20,
                             what="every worker respawned")
        load.mark("all %d workers running again" % s.processes)
        ctx.figure("respawn_complete_s", round(dt, 2))
        time.sleep(2)
    load.table(title="what clients saw, whole drill:")
    load.table(t_from=t_kill, t_to=t_end, title="while workers were being killed:")
    pids = s.wait_workers(count=s.processes, exclude=killed, timeout=20)
    starts1 = ctx.metric("boxoffice_worker_starts_total")
    with open(nginx_log, errors="replace") as f:
        f.seek(log0)
        upstream_errors = sum(1 for line in f if "upstream" in line)
    ctx.figure("workers_killed", "%d (%d inside a request)" % (len(killed), mid_request))
    ctx.figure("worker_starts_counted", int(starts1 - starts0))
    ctx.figure("nginx_upstream_errors_logged", upstream_errors)
    ctx.check(starts1 - starts0 >= len(killed), "boxoffice_worker_starts_total rose by %d for "
              "%d kills" % (starts1 - starts0, len(killed)))
    ctx.check(len(pids) == s.processes, "workers after the drill: %r" % pids)
    ctx.check(mid_request > 0, "no kill hit a worker inside a request: the drill proved "
              "nothing about nginx's retries")
    gets = ("schedules", "concerts", "ping", "seats", "health")
    st = load.rec.stats(gets, t_kill, t_end)
    non200 = st["n"] - st["status"].get(200, 0)
    ctx.figure("gets_while_killing", st["n"])
    ctx.figure("gets_not_200", "%d (%s)" % (non200, " ".join(
        "%s:%d" % kv for kv in sorted(st["status"].items(), key=str) if kv[0] != 200)))
    ctx.figure("gets_p99_while_killing_ms", round(st["p99"] * 1000, 1))
    # nginx retries a GET whose worker died on another connection.
    ctx.check(non200 <= max(1, st["n"] // 1000), "%d of %d GETs were not 200 while workers "
              "were killed (nginx should retry them)" % (non200, st["n"]))
    # A POST is not retried by nginx: the client retries with its key.
    ch = load.rec.stats("charge", t_kill, t_end)
    ctx.figure("charges_while_killing", "%d (%s)" % (ch["n"], " ".join(
        "%s:%d" % kv for kv in sorted(ch["status"].items(), key=str))))
    rp0 = ctx.metric("boxoffice_idempotent_replays_total")
    retried = writes.retry_pending(ctx)
    rp1 = ctx.metric("boxoffice_idempotent_replays_total")
    ctx.figure("charges_retried_with_same_key", "%d (%d had been applied)"
               % (retried, rp1 - rp0))
    res = check_writes(ctx, writes, ledger_from, list(CHARGERS))
    ctx.figure("writes", "%(charges)d charges (%(charges_applied)d applied), lost %(lost)d, "
               "duplicated %(duplicated)d" % res)
    for p in invariants(ctx):
        ctx.check(False, p)
    ctx.check(not load.errors, "drill client errors: %s" % load.errors[:3])


DRILLS = [drill_workers_killed]

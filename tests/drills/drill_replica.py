"""Drill 1: the replica stops under load, then comes back.

Concert and schedule reads must stay 200 (served by the primary within the
same request), /api/health must show the replica down, and once the
replica is back the reads must return to it: the fallback counter stops
growing and the replica serves the workers' connections again.
"""

import time

from drillkit import Load


def _reads(load):
    def schedules(c):
        c.get("/api/concerts/%d/schedules" % c.rng.randint(1, 5))

    def concerts(c):
        c.get("/api/concerts")
    load.clients("schedules", 12, schedules, think=0.02)
    load.clients("concerts", 4, concerts, think=0.02)


def _replica_commits(ctx):
    v = ctx.stack.psql_value("SELECT xact_commit FROM pg_stat_database "
                             "WHERE datname = 'boxoffice'", which="replica")
    return int(v or 0)


def _replica_conns(ctx):
    v = ctx.stack.psql_value("SELECT count(*) FROM pg_stat_activity "
                             "WHERE application_name = 'boxoffice'", which="replica")
    return int(v or 0)


def _fallbacks(ctx):
    return ctx.metric("boxoffice_replica_fallbacks_total")


def _settled(ctx, series, window=2.0, timeout=20.0):
    """Wait until series() stops growing for `window` seconds; returns the
    seconds it took (from the call)."""
    t0 = time.monotonic()
    last, since = series(), time.monotonic()
    while time.monotonic() - t0 < timeout:
        time.sleep(0.25)
        v = series()
        if v != last:
            last, since = v, time.monotonic()
        elif time.monotonic() - since >= window:
            return since - t0
    return None


def drill_replica_stopped(ctx):
    s = ctx.stack
    load = Load(ctx.port)
    _reads(load)
    with load.running(max_seconds=45):
        time.sleep(3)
        f0 = _fallbacks(ctx)
        t_stop = load.mark("stopping the replica")
        s.stop_server("replica")
        load.mark("replica stopped")
        _, dt = ctx.wait_for(lambda: ctx.health().get("replica") == "down", timeout=10,
                             interval=0.1, what="health: replica down")
        ctx.figure("health_shows_replica_down_s", round(dt, 2))
        h = ctx.health()
        ctx.check(h.get("status") == "degraded" and h.get("primary") == "up",
                  "health while the replica is down: %r" % h)
        time.sleep(4)
        f1 = _fallbacks(ctx)
        ctx.figure("fallbacks_while_down", int(f1 - f0))
        ctx.check(f1 > f0, "no read fell back to the primary while the replica was down "
                  "(boxoffice_replica_fallbacks_total %d -> %d)" % (f0, f1))
        t_start = load.mark("starting the replica")
        s.start_server("replica")
        s.wait_streaming(timeout=30)
        t_up = load.mark("replica up and streaming")
        ctx.figure("replica_start_s", round(t_up - t_start, 2))
        # Reads return to the replica: every worker of the pool connects to
        # it again (each retries a failed replica after replica_retry_s),
        # then the fallback counter stops growing.
        pool = int(s.overrides.get(("http", "workers"), s.workers))
        _, took = ctx.wait_for(lambda: _replica_conns(ctx) >= pool, timeout=20, interval=0.2,
                               what="every worker connected to the replica again")
        ctx.figure("workers_back_on_replica_s", round(took, 2))
        settle = _settled(ctx, lambda: _fallbacks(ctx), window=1.5, timeout=10)
        ctx.check(settle is not None, "replica fallbacks kept growing after every worker "
                  "had reconnected")
        c0 = _replica_commits(ctx)
        time.sleep(2.5)
        c1 = _replica_commits(ctx)
        conns = _replica_conns(ctx)
        f2 = _fallbacks(ctx)
        ctx.figure("replica_commits_in_2_5s", c1 - c0)
        ctx.figure("worker_connections_on_replica", conns)
        ctx.check(conns >= 1, "no boxoffice connection on the replica after it came back")
        # two of those commits are this drill's own look-ups
        ctx.check(c1 - c0 > 3, "the replica served no reads after it came back "
                  "(xact_commit %d -> %d)" % (c0, c1))
        time.sleep(1)
        ctx.check(_fallbacks(ctx) == f2, "reads still fall back to the primary")
        _, dt = ctx.wait_for(lambda: ctx.health().get("replica") == "up", timeout=15,
                             interval=0.2, what="health: replica up")
        load.mark("health shows the replica up")
    load.table(title="what clients saw, whole drill:")
    load.table(t_from=t_stop, t_to=t_start, title="while the replica was down:")
    for label in ("schedules", "concerts"):
        st = load.rec.stats(label)
        ctx.check(st["n"] > 0 and st["status"].get(200, 0) == st["n"],
                  "%s: not all 200: %s" % (label, dict(st["status"])))
        down = load.rec.stats(label, t_stop, t_start)
        ctx.figure("%s_while_down_n" % label, down["n"])
        ctx.figure("%s_while_down_p99_ms" % label, round(down["p99"] * 1000, 1))
    ctx.check(not load.errors, "drill client errors: %s" % load.errors[:3])


DRILLS = [drill_replica_stopped]

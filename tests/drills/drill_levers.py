"""The operator's levers pulled under load: the pool size (http.workers
4 -> 2 -> 4), the read cache off and on, read routing to the primary and
back. None of them may cost a request; each must do what it says.
"""

import calendar
import collections
import re
import time

from drillkit import Load, Writes, chargers, check_writes, ledger_top, mixed_gets

LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.(\d{3})Z pid=(\d+) ")
CHARGERS = range(411, 413)


def _pids_in_log(path, t_from, t_to):
    """Distinct worker pids in the access log between two wall-clock times."""
    out = collections.Counter()
    with open(path, errors="replace") as f:
        for line in f:
            m = LINE.match(line)
            if not m:
                continue
            t = calendar.timegm(time.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S")) + \
                int(m.group(2)) / 1000.0
            if t_from <= t < t_to:
                out[int(m.group(3))] += 1
    return out


def _all_ok(ctx, load, writes, ledger_from):
    st = load.rec.stats()
    ctx.check(st["status"].get(200, 0) == st["n"], "requests not 200 while the lever moved: "
              "%s" % dict(st["status"]))
    res = check_writes(ctx, writes, ledger_from, list(CHARGERS))
    ctx.check(res["lost"] == 0 and res["duplicated"] == 0, "charges: %r" % res)
    ctx.check(not load.errors, "drill client errors: %s" % load.errors[:3])


def drill_pool_size_lever(ctx):
    s = ctx.stack
    writes = Writes()
    ledger_from = ledger_top(ctx)
    load = Load(ctx.port)
    mixed_gets(load, 16)
    chargers(ctx, load, writes, CHARGERS, think=0.1)
    wall = {}
    with load.running(max_seconds=40):
        time.sleep(2)
        t4 = load.mark("4 workers")
        wall["a"] = time.time()
        time.sleep(3)
        wall["b"] = time.time()
        t_lo = load.mark("./dev workers 2")
        s.set_workers(2)
        time.sleep(1.5)           # in-flight requests finish, idle ones look again
        t2 = load.mark("2 workers take requests")
        wall["c"] = time.time()
        time.sleep(3)
        wall["d"] = time.time()
        t_hi = load.mark("./dev workers 4")
        s.set_workers(4)
        time.sleep(1.5)
        t4b = load.mark("4 workers take requests")
        wall["e"] = time.time()
        time.sleep(3)
        wall["f"] = time.time()
        t_end = load.mark("load stops")
    load.table(title="what clients saw, whole drill:")
    phases = (("4 workers", t4, t_lo, "a", "b"), ("2 workers", t2, t_hi, "c", "d"),
              ("4 again", t4b, t_end, "e", "f"))
    for name, a, b, wa, wb in phases:
        st = load.rec.stats(None, a, b)
        pids = _pids_in_log(s.access_log, wall[wa], wall[wb])
        rate = st["n"] / max(0.001, b - a)
        print("    %-10s %6.0f req/s  p99 %6.1f ms  workers answering %d" % (
            name, rate, st["p99"] * 1000, len(pids)))
        key = name.replace(" ", "_")
        ctx.figure("pool_%s" % key, "%d req/s, p99 %.1f ms, %d workers answering"
                   % (rate, st["p99"] * 1000, len(pids)))
        if name == "2 workers":
            ctx.check(len(pids) <= 2, "%d workers answered with http.workers = 2: %r"
                      % (len(pids), dict(pids)))
        else:
            ctx.check(len(pids) >= 3, "only %d workers answered with http.workers = 4: %r"
                      % (len(pids), dict(pids)))
    _all_ok(ctx, load, writes, ledger_from)


def drill_cache_off_and_routing_primary(ctx):
    """./dev cache off|on and ./dev routing primary|replica under load."""
    writes = Writes()
    ledger_from = ledger_top(ctx)
    load = Load(ctx.port)
    mixed_gets(load, 16)
    chargers(ctx, load, writes, CHARGERS, think=0.1)

    def counters():
        m = ctx.metrics()
        return {"hits": m.get("boxoffice_cache_hits_total", 0),
                "misses": m.get("boxoffice_cache_misses_total", 0),
                "bypasses": m.get("boxoffice_cache_bypasses_total", 0),
                "replica": m.get('boxoffice_db_query_duration_seconds_count{target="replica"}',
                                 0),
                "primary": m.get('boxoffice_db_query_duration_seconds_count{target="primary"}',
                                 0),
                "fallbacks": m.get("boxoffice_replica_fallbacks_total", 0)}

    def delta(a, b):
        return {k: int(b[k] - a[k]) for k in a}
    phases = []
    with load.running(max_seconds=40):
        time.sleep(2)
        for name, over in (("cache off", {("redis", "cache"): "off"}),
                           ("cache on", {("redis", "cache"): "on"}),
                           ("routing primary", {("database", "read_routing"): "primary"}),
                           ("routing replica", {("database", "read_routing"): "replica"})):
            load.mark("./dev %s" % name)
            ctx.reload(over)
            t_a = load.mark("%s in force" % name)
            c0 = counters()
            time.sleep(2.5)
            c1 = counters()
            t_b = load.rec.now()
            d = delta(c0, c1)
            phases.append((name, t_a, t_b, d))
            print("    %-16s cache hits +%d, bypasses +%d, replica queries +%d, primary "
                  "queries +%d, fallbacks +%d" % (name, d["hits"], d["bypasses"], d["replica"],
                                                   d["primary"], d["fallbacks"]))
        load.mark("load stops")
    load.table(title="what clients saw, whole drill:")
    for name, a, b, d in phases:
        st = load.rec.stats(("schedules", "concerts"), a, b)
        ctx.figure(name.replace(" ", "_"), "reads p99 %.1f ms; cache hits +%d, bypasses +%d, "
                   "replica queries +%d, primary queries +%d" % (
                       st["p99"] * 1000, d["hits"], d["bypasses"], d["replica"], d["primary"]))
        if name == "cache off":
            ctx.check(d["hits"] == 0 and d["bypasses"] > 0,
                      "cache off: hits +%d, bypasses +%d" % (d["hits"], d["bypasses"]))
        elif name == "cache on":
            ctx.check(d["bypasses"] == 0 and d["hits"] + d["misses"] > 0,
                      "cache on: hits +%d, misses +%d, bypasses +%d"
                      % (d["hits"], d["misses"], d["bypasses"]))
        elif name == "routing primary":
            ctx.check(d["replica"] == 0 and d["primary"] > 0,
                      "routing primary: replica queries +%d, primary +%d"
                      % (d["replica"], d["primary"]))
        elif name == "routing replica":
            ctx.check(d["replica"] > 0, "routing replica: no replica queries")
    _all_ok(ctx, load, writes, ledger_from)


DRILLS = [drill_pool_size_lever, drill_cache_off_and_routing_primary]

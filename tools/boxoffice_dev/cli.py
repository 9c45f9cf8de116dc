"""The local stack's command line, as ./dev calls it.

    python3 -m boxoffice_dev up      --dir DIR [--http-port P] [--pg-port P]
                     [--replica-port P] [--redis-port P] [--workers N]
                     [--seed C,S,N,U] [--set section.key=value ...]
                     [--rate-limits on|off] [--pools on|off]
    python3 -m boxoffice_dev down    --dir DIR
    python3 -m boxoffice_dev status  --dir DIR
    python3 -m boxoffice_dev reload  --dir DIR [--set section.key=value ...]
    python3 -m boxoffice_dev psql    --dir DIR [-- psql args]
    python3 -m boxoffice_dev logs    --dir DIR [--lines N] [--follow]
    python3 -m boxoffice_dev workers|routing|cache|maintenance --dir DIR ARG
    python3 -m boxoffice_dev lighttpd-check --dir DIR   render and `lighttpd -tt`

(with tools/ on PYTHONPATH). A port of 0 means "pick a free one".
"""

import argparse
import os
import signal
import sys

from .errors import StackError
from .render import parse_overrides
from .stack import (APP_DB, DEFAULT_SRCDIR, PG_BIN, PG_SUPERUSER, POOLS, Stack,
                    lighttpd_check, parse_pools)


def _cli_stack(args, load=True):
    d = os.path.abspath(args.dir)
    if load and os.path.exists(os.path.join(d, "stack.json")):
        return Stack.load(d)
    return None


def main(argv=None):
    ap = argparse.ArgumentParser(prog="boxoffice_dev", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)

    def common(p):
        p.add_argument("--dir", default=os.environ.get("BOXOFFICE_STACK_DIR", "var"))
        return p

    up = common(sub.add_parser("up", help="start the stack"))
    up.add_argument("--srcdir", default=DEFAULT_SRCDIR)
    up.add_argument("--builddir", default=None)
    up.add_argument("--http-port", type=int, default=8080)
    up.add_argument("--pg-port", type=int, default=15432)
    up.add_argument("--replica-port", type=int, default=15433)
    up.add_argument("--redis-port", type=int, default=16379)
    up.add_argument("--workers", type=int, default=16)
    up.add_argument("--max-workers", type=int, default=16,
                    help="processes started; `workers` of them take requests")
    up.add_argument("--nginx-workers", default="1")
    up.add_argument("--pools", choices=("on", "off"), default="on",
                    help="on: queue, sign-in and booking workers apart (the "
                         "bulkheads), --workers split among them; off: one pool")
    up.add_argument("--seed", default="5,4,50,1000",
                    help="concerts,schedules,seats,users")
    up.add_argument("--no-seed", action="store_true")
    up.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    up.add_argument("--rate-limits", choices=("on", "off"), default="off")
    common(sub.add_parser("down", help="stop the stack"))
    common(sub.add_parser("status", help="show what runs"))
    rl = common(sub.add_parser("reload", help="rewrite boxoffice.conf, SIGHUP the workers"))
    rl.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    rl.add_argument("--signal", default="HUP", choices=("HUP", "USR2"))
    ps = common(sub.add_parser("psql", help="psql on the primary"))
    ps.add_argument("--replica", action="store_true")
    ps.add_argument("args", nargs=argparse.REMAINDER)
    wk = common(sub.add_parser("workers", help="pool size: how many workers take requests"))
    wk.add_argument("n", nargs="+", metavar="N | POOL=N",
                    help="N (split among the pools), or queue=N signin=N booking=N")
    rt = common(sub.add_parser("routing", help="read routing: replica or primary"))
    rt.add_argument("mode", choices=("replica", "primary"))
    ca = common(sub.add_parser("cache", help="read cache: on, off or bypass"))
    ca.add_argument("mode", choices=("on", "off", "bypass"))
    mt = common(sub.add_parser("maintenance", help="waiting page for everyone: on or off"))
    mt.add_argument("mode", choices=("on", "off"))
    lg = common(sub.add_parser("logs", help="show the logs"))
    lg.add_argument("--lines", type=int, default=40)
    lg.add_argument("--follow", "-f", action="store_true")
    lc = common(sub.add_parser("lighttpd-check", help="lighttpd -tt on the rendered config"))
    lc.add_argument("--srcdir", default=DEFAULT_SRCDIR)
    args = ap.parse_args(argv)

    try:
        if args.cmd == "up":
            return _cmd_up(args)
        if args.cmd == "lighttpd-check":
            ok, out = lighttpd_check(args.dir, args.srcdir)
            print(out, end="")
            print("lighttpd config OK" if ok else "lighttpd config FAILED")
            return 0 if ok else 1
        st = _cli_stack(args)
        if st is None:
            print("no stack in %s (start one with ./dev up)" % os.path.abspath(args.dir))
            return 0 if args.cmd in ("down", "status") else 1
        if args.cmd == "down":
            st.stop()
            print("stack stopped (data kept in %s)" % st.dir)
        elif args.cmd == "status":
            for line in st.status_lines():
                print(line)
            run = st.running()
            if not all(run.values()):
                print("(not everything runs: ./dev up starts what is missing)")
        elif args.cmd == "reload":
            sig = signal.SIGHUP if args.signal == "HUP" else signal.SIGUSR2
            pids = st.reload(parse_overrides(args.set), sig=sig)
            print("reloaded %d workers (%s)" % (len(pids), " ".join(map(str, pids))))
        elif args.cmd == "workers":
            if st.pools:
                st.set_pools(parse_pools(args.n))
                print("%s take requests (of %s processes started)" % (
                    ", ".join("%s %d" % (p, st.pools[p]) for p in POOLS),
                    ", ".join("%s %d" % (p, st.pool_processes[p]) for p in POOLS)))
            else:
                if len(args.n) != 1 or not args.n[0].isdigit():
                    raise StackError("this stack runs one undivided pool: ./dev workers N")
                st.set_workers(int(args.n[0]))
                print("%s of %d workers take requests" % (args.n[0], st.processes))
        elif args.cmd in ("routing", "cache", "maintenance"):
            key = {"routing": ("database", "read_routing"), "cache": ("redis", "cache"),
                   "maintenance": ("http", "maintenance")}[args.cmd]
            value = {"on": "1", "off": "0"}.get(args.mode, args.mode) \
                if args.cmd == "maintenance" else args.mode
            st.reload({key: value})
            print("%s.%s = %s (workers reloaded)" % (key[0], key[1], value))
        elif args.cmd == "psql":
            which = "replica" if args.replica else "primary"
            extra = [a for a in args.args if a != "--"] if args.args[:1] == ["--"] else args.args
            argv = [os.path.join(PG_BIN, "psql"), "-h", "127.0.0.1", "-p",
                    str(st.ports[which]), "-U", PG_SUPERUSER, "-d", APP_DB] + extra
            os.execv(argv[0], argv)
        elif args.cmd == "logs":
            if args.follow:
                files = [f for f in st.log_files() if os.path.exists(f)]
                os.execvp("tail", ["tail", "-n", str(args.lines), "-F"] + files)
            print(st.tail_logs(args.lines))
        return 0
    except StackError as e:
        print("error: %s" % e, file=sys.stderr)
        return 1


def _cmd_up(args):
    d = os.path.abspath(args.dir)
    old = None
    if os.path.exists(os.path.join(d, "stack.json")):
        old = Stack.load(d)
        run = old.running()
        if all(run.values()):
            print("already running in %s" % d)
            for line in old.status_lines():
                print("  " + line)
            print()
            for u in old.urls():
                print("  " + u)
            return 0
        if any(run.values()):
            print("partly running (%s); restarting it" % ", ".join(
                k for k, v in run.items() if v))
            old.stop()
    sizes = [int(x) for x in args.seed.split(",")]
    if len(sizes) != 4:
        raise StackError("--seed wants concerts,schedules,seats,users")
    overrides = {}
    if old:
        overrides.update(old.overrides)
    overrides.update(parse_overrides(args.set))
    st = Stack(d, srcdir=args.srcdir, builddir=args.builddir,
               http_port=args.http_port, pg_port=args.pg_port,
               replica_port=args.replica_port, redis_port=args.redis_port,
               workers=args.workers, max_workers=args.max_workers, overrides=overrides,
               seed=dict(zip(("concerts", "schedules", "seats", "users"), sizes)),
               rate_limits=args.rate_limits == "on", nginx_workers=args.nginx_workers,
               pools=args.pools == "on")
    st.start(seed=not args.no_seed)
    print()
    print("boxoffice is up (%s)" % d)
    for u in st.urls():
        print("  " + u)
    print()
    print("  ./dev status | ./dev logs | ./dev psql | ./dev reload | ./dev down")
    print("  levers: ./dev workers N | routing replica|primary | cache on|off|bypass"
          " | maintenance on|off")
    return 0


if __name__ == "__main__":
    sys.exit(main())
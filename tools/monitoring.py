#!/usr/bin/env python3
"""Start and stop Prometheus and the PostgreSQL and Redis exporters for a
boxoffice stack, in one directory, on loopback.

Used by `./dev monitoring` (directory ./var/monitoring, fixed ports, the
stack of ./var) and by tests/integration/test_monitoring.py (a directory
inside the test stack's, free ports, a 1 s scrape interval). Python 3
standard library only; tools/boxoffice_dev provides the process helpers.

What runs, all bound to 127.0.0.1:

    prometheus                     conf/prometheus/prometheus.yml rendered
                                   with the targets below, the alert rules
                                   of conf/prometheus/alerts.yml
    prometheus-postgres-exporter   one for the primary (role="primary")
    prometheus-postgres-exporter   one for the replica (role="replica")
    prometheus-redis-exporter      Redis

and what it writes:

    DIR/monitoring.json   ports, pids and targets (read by down/status)
    DIR/prometheus.yml    the rendered configuration
    DIR/data/             Prometheus's storage
    DIR/logs/             prometheus.log, postgres-exporter-*.log,
                          redis-exporter.log

Command line:

    monitoring.py up     --dir DIR --stack-dir SDIR [--prometheus-port P]
                         [--pg-exporter-port P] [--replica-exporter-port P]
                         [--redis-exporter-port P] [--scrape-interval 5s]
                         [--retention 2d]
    monitoring.py down   --dir DIR
    monitoring.py status --dir DIR
    monitoring.py url    --dir DIR          the Prometheus URL
    monitoring.py query  --dir DIR EXPR     one instant query, as JSON
    monitoring.py render --out FILE --boxoffice HOST:PORT[,HOST:PORT...]
                         --pg-primary-exporter HOST:PORT
                         --pg-replica-exporter HOST:PORT
                         --redis-exporter HOST:PORT --prometheus HOST:PORT
                         [--rules-dir DIR] [--scrape-interval 15s]
    monitoring.py check                     promtool check rules + test rules

A port of 0 means "pick a free one". `up` on a directory whose processes
run already re-renders the configuration and reloads Prometheus.
"""

import argparse
import ctypes
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

from boxoffice_dev import procs
from boxoffice_dev import stack as stackmod

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_SRCDIR = os.path.dirname(HERE)

PROMETHEUS = os.environ.get("BOXOFFICE_PROMETHEUS", "/usr/bin/prometheus")
PROMTOOL = os.environ.get("BOXOFFICE_PROMTOOL", "/usr/bin/promtool")
PG_EXPORTER = os.environ.get("BOXOFFICE_PG_EXPORTER", "/usr/bin/prometheus-postgres-exporter")
REDIS_EXPORTER = os.environ.get("BOXOFFICE_REDIS_EXPORTER",
                                "/usr/bin/prometheus-redis-exporter")
# The Debian packages of all four.
PACKAGES = ("prometheus", "prometheus-postgres-exporter", "prometheus-redis-exporter")

# The database user the postgres exporters connect as. The local stack's
# servers trust loopback connections (initdb -A trust); in production use a
# role with the pg_monitor privilege (docs/monitoring.md).
PG_MONITOR_USER = os.environ.get("BOXOFFICE_PG_MONITOR_USER", stackmod.PG_SUPERUSER)

# ./dev's fixed ports (the usual ones of each program).
DEV_PORTS = {"prometheus": 9090, "pg_exporter": 9187, "replica_exporter": 9188,
             "redis_exporter": 9121}

COMPONENTS = ("pg_exporter", "replica_exporter", "redis_exporter", "prometheus")


class MonitoringError(Exception):
    """Prometheus or an exporter could not be started or reached."""


def _log_default(msg):
    print(msg, file=sys.stderr, flush=True)


def missing_binaries(with_exporters=True):
    """The programs this needs that are not installed (paths)."""
    need = [PROMETHEUS, PROMTOOL] + ([PG_EXPORTER, REDIS_EXPORTER] if with_exporters else [])
    return [p for p in need if not (os.path.isfile(p) and os.access(p, os.X_OK))]


def seconds(duration):
    """'1s', '500ms', '2m' -> seconds (float)."""
    m = re.match(r"^(\d+(?:\.\d+)?)(ms|s|m|h)$", str(duration).strip())
    if not m:
        raise MonitoringError("not a duration: %r (e.g. 1s, 15s, 1m)" % (duration,))
    return float(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[m.group(2)]


def render_config(srcdir, out, boxoffice, pg_primary_exporter, pg_replica_exporter,
                  redis_exporter, prometheus, rules_dir=None, scrape_interval="15s",
                  evaluation_interval=None):
    """Render conf/prometheus/prometheus.yml into `out`. Targets are
    'host:port' strings; boxoffice may be a list of them."""
    if isinstance(boxoffice, str):
        boxoffice = [boxoffice]
    interval = seconds(scrape_interval)
    timeout = "%gs" % min(interval, 10.0)
    mapping = {
        "SCRAPE_INTERVAL": scrape_interval,
        "SCRAPE_TIMEOUT": timeout,
        "EVALUATION_INTERVAL": evaluation_interval or scrape_interval,
        "BOXOFFICE_TARGETS": ", ".join("'%s'" % t for t in boxoffice),
        "PG_PRIMARY_EXPORTER": pg_primary_exporter,
        "PG_REPLICA_EXPORTER": pg_replica_exporter,
        "REDIS_EXPORTER": redis_exporter,
        "PROMETHEUS": prometheus,
        "RULES_DIR": os.path.abspath(rules_dir or os.path.join(srcdir, "conf", "prometheus")),
    }
    try:
        return stackmod.render_file(os.path.join(srcdir, "conf", "prometheus", "prometheus.yml"),
                                    out, mapping)
    except stackmod.StackError as e:
        raise MonitoringError(str(e)) from e


def promtool(*args, timeout=60, input=None):
    """Run promtool; returns (exit code, output)."""
    res = subprocess.run([PROMTOOL] + list(args), stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, timeout=timeout, input=input)
    return res.returncode, res.stdout.decode("utf-8", "replace")


def _die_with_parent():
    """preexec_fn: SIGTERM this child when the process that started it dies
    (a test run killed with SIGKILL leaves nothing behind)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)          # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class Monitoring(stackmod.Managed):
    """Prometheus and the exporters for one stack, in one directory.

    Monitoring(dir, targets...).start() brings them up; stop() stops them
    (also a context manager). Monitoring.for_stack(stack, dir) takes the
    targets from a boxoffice_dev Stack; Monitoring.load(dir) attaches to
    one started by another process.
    """

    def __init__(self, directory, boxoffice_port, primary_port, replica_port, redis_port,
                 srcdir=None, ports=None, scrape_interval="15s", evaluation_interval=None,
                 retention="2d", die_with_parent=False, log=_log_default):
        self.dir = os.path.abspath(directory)
        self.srcdir = os.path.abspath(srcdir or DEFAULT_SRCDIR)
        self.stack_ports = {"http": int(boxoffice_port), "primary": int(primary_port),
                            "replica": int(replica_port), "redis": int(redis_port)}
        self.ports = {k: 0 for k in COMPONENTS}
        self.ports.update({k: int(v) for k, v in (ports or {}).items()})
        self.scrape_interval = scrape_interval
        self.evaluation_interval = evaluation_interval or scrape_interval
        self.retention = retention
        self.die_with_parent = die_with_parent
        self.log = log
        self.pids = {}
        self._procs = {}

    @classmethod
    def for_stack(cls, stack, directory=None, **kw):
        """Monitoring of a boxoffice_dev Stack (default directory:
        STACKDIR/monitoring)."""
        return cls(directory or stack.path("monitoring"), stack.ports["http"],
                   stack.ports["primary"], stack.ports["replica"], stack.ports["redis"],
                   srcdir=kw.pop("srcdir", stack.srcdir), **kw)

    # ------------------------------------------------------------ paths
    @property
    def state_file(self):
        return self.path("monitoring.json")

    @property
    def config_file(self):
        return self.path("prometheus.yml")

    @property
    def rules_dir(self):
        return os.path.join(self.srcdir, "conf", "prometheus")

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.ports["prometheus"]

    def exporter_url(self, which):
        return "http://127.0.0.1:%d/metrics" % self.ports[which]

    @property
    def boxoffice_target(self):
        return "127.0.0.1:%d" % self.stack_ports["http"]

    # ------------------------------------------------------------ state
    def save_state(self):
        state = {"dir": self.dir, "srcdir": self.srcdir, "ports": self.ports,
                 "stack_ports": self.stack_ports, "pids": self.pids,
                 "scrape_interval": self.scrape_interval,
                 "evaluation_interval": self.evaluation_interval,
                 "retention": self.retention, "updated": time.time()}
        tmp = self.state_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump(state, f, indent=2, sort_keys=True)
        os.replace(tmp, self.state_file)

    @classmethod
    def load(cls, directory, log=_log_default):
        with open(os.path.join(os.path.abspath(directory), "monitoring.json")) as f:
            st = json.load(f)
        sp = st["stack_ports"]
        m = cls(st["dir"], sp["http"], sp["primary"], sp["replica"], sp["redis"],
                srcdir=st.get("srcdir"), ports=st["ports"],
                scrape_interval=st.get("scrape_interval", "15s"),
                evaluation_interval=st.get("evaluation_interval"),
                retention=st.get("retention", "2d"), log=log)
        m.pids = {k: int(v) for k, v in st.get("pids", {}).items()
                  if v and m._pid_is_ours(k, int(v))}
        return m

    def _pid_is_ours(self, key, pid):
        """After a reboot a recorded pid may belong to someone else."""
        if not procs.alive(pid):
            return False
        cmd = procs.cmdline(pid)
        if key == "prometheus":
            return os.path.basename(PROMETHEUS) in cmd and self.config_file in cmd
        binary = PG_EXPORTER if key in ("pg_exporter", "replica_exporter") else REDIS_EXPORTER
        return (os.path.basename(binary) in cmd
                and ("127.0.0.1:%d" % self.ports.get(key, 0)) in cmd)

    def running(self):
        return {k: bool(self.pids.get(k) and procs.alive(self.pids[k])) for k in COMPONENTS}

    # ------------------------------------------------------------ start
    def render(self):
        os.makedirs(self.dir, exist_ok=True)
        return render_config(
            self.srcdir, self.config_file, [self.boxoffice_target],
            "127.0.0.1:%d" % self.ports["pg_exporter"],
            "127.0.0.1:%d" % self.ports["replica_exporter"],
            "127.0.0.1:%d" % self.ports["redis_exporter"],
            "127.0.0.1:%d" % self.ports["prometheus"],
            rules_dir=self.rules_dir, scrape_interval=self.scrape_interval,
            evaluation_interval=self.evaluation_interval)

    def _pick_ports(self):
        used = set(v for v in self.stack_ports.values() if v)
        used.update(v for v in self.ports.values() if v)
        for name in COMPONENTS:
            if self.pids.get(name):
                continue
            if not self.ports[name]:
                self.ports[name] = procs.free_port(exclude=used)
                used.add(self.ports[name])
            else:
                try:
                    procs.wait_bindable(self.ports[name], timeout=20, log=self.log)
                except stackmod.StackError as e:
                    raise MonitoringError("%s (%s)" % (e, name)) from e

    def _spawn(self, name, argv, env=None):
        logf = open(self.path("logs", "%s.log" % name.replace("_", "-")), "a")
        try:
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf,
                                 stderr=subprocess.STDOUT, cwd=self.dir, env=env,
                                 start_new_session=True,
                                 preexec_fn=_die_with_parent if self.die_with_parent else None)
        except FileNotFoundError as e:
            raise MonitoringError("not found: %s (apt-get install %s)"
                                  % (argv[0], " ".join(PACKAGES))) from e
        finally:
            logf.close()
        self._procs[name] = p
        self.pids[name] = p.pid
        self.save_state()
        return p

    def _pg_exporter_env(self, which):
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["DATA_SOURCE_NAME"] = (
            "postgresql://%s@127.0.0.1:%d/postgres?sslmode=disable&connect_timeout=2"
            % (PG_MONITOR_USER, self.stack_ports[which]))
        return env

    def start(self, timeout=30):
        """Start what does not run yet, (re)render the configuration, wait
        until Prometheus is ready. On failure what was started is stopped."""
        missing = missing_binaries()
        if missing:
            raise MonitoringError("not installed: %s (apt-get install %s)"
                                  % (", ".join(missing), " ".join(PACKAGES)))
        for d in ("", "logs", "data"):
            os.makedirs(self.path(d), exist_ok=True)
        self.pids = {k: v for k, v in self.pids.items() if procs.alive(v)}
        started = []
        try:
            self._pick_ports()
            self.render()
            rc, out = promtool("check", "config", self.config_file)
            if rc != 0:
                raise MonitoringError("promtool check config %s failed:\n%s"
                                      % (self.config_file, out))
            for name, which in (("pg_exporter", "primary"), ("replica_exporter", "replica")):
                if not self.pids.get(name):
                    self._spawn(name, [PG_EXPORTER, "--web.listen-address=127.0.0.1:%d"
                                       % self.ports[name], "--log.level=warn"],
                                env=self._pg_exporter_env(which))
                    started.append(name)
            if not self.pids.get("redis_exporter"):
                self._spawn("redis_exporter", [
                    REDIS_EXPORTER, "-redis.addr",
                    "redis://127.0.0.1:%d" % self.stack_ports["redis"],
                    "-web.listen-address", "127.0.0.1:%d" % self.ports["redis_exporter"],
                    "-connection-timeout", "2s"])
                started.append("redis_exporter")
            if self.pids.get("prometheus"):
                self.reload()
            else:
                self._spawn("prometheus", [
                    PROMETHEUS, "--config.file=%s" % self.config_file,
                    "--storage.tsdb.path=%s" % self.path("data"),
                    "--storage.tsdb.retention.time=%s" % self.retention,
                    "--web.listen-address=127.0.0.1:%d" % self.ports["prometheus"],
                    "--web.enable-lifecycle", "--log.level=warn"])
                started.append("prometheus")
            self.wait_ready(timeout)
            for name in started:
                if name != "prometheus":
                    self._wait_listening(name, timeout)
        except BaseException:
            for name in started:
                procs.terminate(self.pids.pop(name, None), signal.SIGTERM, timeout=5,
                                   group=False)
            if os.path.isdir(self.dir):
                self.save_state()
            raise
        self.save_state()
        return self

    def _wait_listening(self, name, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if not procs.alive(self.pids.get(name)):
                raise MonitoringError("%s exited; see %s\n%s" % (
                    name, self.path("logs", name.replace("_", "-") + ".log"),
                    self.tail_log(name)))
            if procs.port_in_use(self.ports[name]):
                return
            time.sleep(0.05)
        raise MonitoringError("%s does not listen on 127.0.0.1:%d" % (name, self.ports[name]))

    def wait_ready(self, timeout=30):
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            if not procs.alive(self.pids.get("prometheus")):
                raise MonitoringError("prometheus exited; see %s\n%s" % (
                    self.path("logs", "prometheus.log"), self.tail_log("prometheus")))
            try:
                with urllib.request.urlopen(self.url + "/-/ready", timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError) as e:
                last = e
            time.sleep(0.1)
        raise MonitoringError("prometheus not ready on %s after %ss (%s)"
                              % (self.url, timeout, last))

    def reload(self):
        """Re-render the configuration and make Prometheus re-read it (and
        the rule files)."""
        self.render()
        req = urllib.request.Request(self.url + "/-/reload", method="POST")
        try:
            with urllib.request.urlopen(req, timeout=10):
                pass
        except (urllib.error.URLError, OSError) as e:
            raise MonitoringError("prometheus reload failed: %s" % e) from e

    # ------------------------------------------------------------- stop
    def stop(self):
        """Stop everything this directory runs (safe to call more than once)."""
        for name in reversed(COMPONENTS):
            procs.terminate(self.pids.pop(name, None), signal.SIGTERM, timeout=10,
                               group=False)
            p = self._procs.pop(name, None)
            if p is not None:
                try:
                    p.wait(timeout=1)
                except subprocess.TimeoutExpired:
                    pass
        if os.path.isdir(self.dir):
            self.save_state()

    # -------------------------------------------------------------- API
    def api(self, path, params=None, timeout=10):
        """GET /api/v1/<path>; returns the "data" member."""
        url = "%s/api/v1/%s" % (self.url, path)
        if params:
            url += "?" + urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(url, timeout=timeout) as r:
                doc = json.loads(r.read().decode("utf-8"))
        except urllib.error.HTTPError as e:
            body = e.read().decode("utf-8", "replace")
            raise MonitoringError("prometheus %s: HTTP %d %s" % (path, e.code, body)) from e
        except (urllib.error.URLError, OSError, ValueError) as e:
            raise MonitoringError("prometheus %s: %s" % (path, e)) from e
        if doc.get("status") != "success":
            raise MonitoringError("prometheus %s: %r" % (path, doc))
        return doc["data"]

    def query(self, expr, at=None):
        """Instant query; returns the result list ([{metric, value}, ...])."""
        params = {"query": expr}
        if at is not None:
            params["time"] = "%.3f" % at
        return self.api("query", params)["result"]

    def value(self, expr, at=None, default=None):
        """The single number an instant query returns (default if empty)."""
        res = self.query(expr, at)
        if not res:
            return default
        if len(res) > 1:
            raise MonitoringError("%s: %d series, wanted one" % (expr, len(res)))
        return float(res[0]["value"][1])

    def targets(self):
        """[{job, instance, role, health, lastError, lastScrape}] of the active targets."""
        out = []
        for t in self.api("targets", {"state": "active"})["activeTargets"]:
            labels = t.get("labels", {})
            out.append({"job": labels.get("job"), "instance": labels.get("instance"),
                        "role": labels.get("role"), "health": t.get("health"),
                        "lastError": t.get("lastError", ""),
                        "lastScrape": t.get("lastScrape")})
        return out

    def wait_targets_up(self, timeout=30):
        """Wait until every target has been scraped successfully."""
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            try:
                last = self.targets()
                if last and all(t["health"] == "up" for t in last):
                    return last
            except MonitoringError as e:
                last = e
            time.sleep(0.2)
        raise MonitoringError("targets not all up after %ss: %r" % (timeout, last))

    # ----------------------------------------------------------- reports
    def tail_log(self, name, lines=20):
        try:
            with open(self.path("logs", name.replace("_", "-") + ".log"), "rb") as f:
                f.seek(0, 2)
                f.seek(max(0, f.tell() - 200 * lines))
                return "\n".join(f.read().decode("utf-8", "replace").splitlines()[-lines:])
        except OSError:
            return ""

    def urls(self):
        p = self.ports
        return [
            "Prometheus        %s/  (alerts %s/alerts, targets %s/targets)"
            % (self.url, self.url, self.url),
            "boxoffice         http://%s/metrics" % self.boxoffice_target,
            "postgres primary  http://127.0.0.1:%d/metrics  (exporter)" % p["pg_exporter"],
            "postgres replica  http://127.0.0.1:%d/metrics  (exporter)" % p["replica_exporter"],
            "redis             http://127.0.0.1:%d/metrics  (exporter)" % p["redis_exporter"],
            "Grafana           import conf/grafana/dashboards/boxoffice.json "
            "(docs/monitoring.md)",
        ]

    def status_lines(self):
        run = self.running()
        names = {"prometheus": "prometheus", "pg_exporter": "pg-primary",
                 "replica_exporter": "pg-replica", "redis_exporter": "redis-exp"}
        return ["%-11s %-5s 127.0.0.1:%-5d pid %s" % (
            names[k], "up" if run[k] else "down", self.ports[k], self.pids.get(k, "-"))
            for k in ("prometheus", "pg_exporter", "replica_exporter", "redis_exporter")]


# -------------------------------------------------------------------- CLI

def check_rules(srcdir=DEFAULT_SRCDIR):
    """promtool check rules and test rules on conf/prometheus; (ok, output)."""
    conf = os.path.join(srcdir, "conf", "prometheus")
    rc1, out1 = promtool("check", "rules", os.path.join(conf, "alerts.yml"))
    # promtool test rules finds alerts.yml relative to the test file
    rc2, out2 = promtool("test", "rules", os.path.join(conf, "alerts_test.yml"))
    return rc1 == 0 and rc2 == 0, out1 + out2


def _load(args):
    d = os.path.abspath(args.dir)
    if not os.path.exists(os.path.join(d, "monitoring.json")):
        return None
    return Monitoring.load(d)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="monitoring.py", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)

    def common(p):
        p.add_argument("--dir", default=os.environ.get("BOXOFFICE_MONITORING_DIR",
                                                       os.path.join("var", "monitoring")))
        return p

    up = common(sub.add_parser("up", help="start Prometheus and the exporters"))
    up.add_argument("--stack-dir", default=os.environ.get("BOXOFFICE_STACK_DIR", "var"))
    up.add_argument("--srcdir", default=DEFAULT_SRCDIR)
    up.add_argument("--prometheus-port", type=int, default=DEV_PORTS["prometheus"])
    up.add_argument("--pg-exporter-port", type=int, default=DEV_PORTS["pg_exporter"])
    up.add_argument("--replica-exporter-port", type=int, default=DEV_PORTS["replica_exporter"])
    up.add_argument("--redis-exporter-port", type=int, default=DEV_PORTS["redis_exporter"])
    up.add_argument("--scrape-interval", default="5s")
    up.add_argument("--retention", default="2d")
    common(sub.add_parser("down", help="stop them"))
    common(sub.add_parser("status", help="show what runs"))
    common(sub.add_parser("url", help="print the Prometheus URL"))
    q = common(sub.add_parser("query", help="one instant PromQL query"))
    q.add_argument("expr")
    rd = sub.add_parser("render", help="render prometheus.yml for given targets")
    rd.add_argument("--out", required=True)
    rd.add_argument("--srcdir", default=DEFAULT_SRCDIR)
    rd.add_argument("--boxoffice", required=True, help="host:port[,host:port...] of nginx")
    rd.add_argument("--pg-primary-exporter", required=True)
    rd.add_argument("--pg-replica-exporter", required=True)
    rd.add_argument("--redis-exporter", required=True)
    rd.add_argument("--prometheus", required=True)
    rd.add_argument("--rules-dir", default=None)
    rd.add_argument("--scrape-interval", default="15s")
    ck = sub.add_parser("check", help="promtool check rules and test rules")
    ck.add_argument("--srcdir", default=DEFAULT_SRCDIR)
    args = ap.parse_args(argv)

    try:
        if args.cmd == "up":
            return _cmd_up(args)
        if args.cmd == "render":
            path = render_config(args.srcdir, args.out, args.boxoffice.split(","),
                                 args.pg_primary_exporter, args.pg_replica_exporter,
                                 args.redis_exporter, args.prometheus, args.rules_dir,
                                 args.scrape_interval)
            print(path)
            return 0
        if args.cmd == "check":
            ok, out = check_rules(args.srcdir)
            print(out, end="")
            return 0 if ok else 1
        m = _load(args)
        if m is None:
            print("no monitoring in %s (start it with ./dev monitoring)"
                  % os.path.abspath(args.dir))
            return 0 if args.cmd in ("down", "status") else 1
        if args.cmd == "down":
            m.stop()
            print("monitoring stopped (data kept in %s)" % m.dir)
        elif args.cmd == "status":
            for line in m.status_lines():
                print(line)
        elif args.cmd == "url":
            print(m.url)
        elif args.cmd == "query":
            print(json.dumps(m.query(args.expr), indent=2))
        return 0
    except (MonitoringError, stackmod.StackError) as e:
        print("error: %s" % e, file=sys.stderr)
        return 1


def _cmd_up(args):
    sdir = os.path.abspath(args.stack_dir)
    if not os.path.exists(os.path.join(sdir, "stack.json")):
        raise MonitoringError("no stack in %s (start one with ./dev up)" % sdir)
    st = stackmod.Stack.load(sdir)
    ports = {"prometheus": args.prometheus_port, "pg_exporter": args.pg_exporter_port,
             "replica_exporter": args.replica_exporter_port,
             "redis_exporter": args.redis_exporter_port}
    d = os.path.abspath(args.dir)
    m = None
    if os.path.exists(os.path.join(d, "monitoring.json")):
        m = Monitoring.load(d)
        same = (m.stack_ports == {k: st.ports[k] for k in m.stack_ports}
                and all(not v or m.ports[k] == v for k, v in ports.items())
                and m.scrape_interval == args.scrape_interval
                and m.retention == args.retention)
        if not same:
            m.stop()        # other ports or settings: start again
            m = None
        elif not any(m.running().values()):
            m = None
    if m is None:
        m = Monitoring.for_stack(st, d, srcdir=args.srcdir, ports=ports,
                                 scrape_interval=args.scrape_interval,
                                 retention=args.retention)
    m.start()
    try:
        m.wait_targets_up(timeout=15)
    except MonitoringError as e:
        print("note: %s" % e, file=sys.stderr)
    print()
    print("monitoring is up (%s)" % m.dir)
    for u in m.urls():
        print("  " + u)
    print()
    print("  ./dev monitoring status | ./dev monitoring down")
    return 0


if __name__ == "__main__":
    sys.exit(main())

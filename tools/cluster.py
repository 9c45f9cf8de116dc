#!/usr/bin/env python3
"""Run boxoffice on several machines, each one a Linux network namespace.

`./dev cluster` uses it (./var/cluster), the cluster drills
(tests/cluster/run) with a directory and namespace prefix of their own.
Needs root (ip netns). Python 3 standard library only.

Hosts, each a network namespace PREFIX-HOST with one address on a private
/24 that exists only inside these namespaces (a bridge in the namespace
PREFIX-sw joins them; there is no default route, no NAT, nothing outside
is reachable and nothing outside can reach in):

    lb      .10  nginx (static site, micro-cache, FastCGI over TCP to the
                 app hosts), the third Redis Sentinel
    app1    .21  boxoffice workers, one spawn-fcgi + multiwatch per pool:
                 booking on :9000, queue :9001, sign-in :9002 (nginx has
                 an upstream per pool), the sweeper
    app2    .22  boxoffice workers (the same three pools)
    db1-3   .31-.33  etcd member (:2379/:2380), Patroni (:8008) managing
                 PostgreSQL 15 (:5432), synchronous_mode on
    cache1  .41  Redis (:6379, first master) and a Sentinel (:26379)
    cache2  .42  Redis (replica) and a Sentinel
    client  .100 no server: where the drills and `./dev cluster` talk from

Everything they write lives in DIR/<host>/ (data, configuration, logs).

    cluster.py up        [--dir DIR] [--prefix P] [--seed C,S,N,U] [--async]
    cluster.py down      [--dir DIR]
    cluster.py status    [--dir DIR]
    cluster.py kill      HOST [--dir DIR]   every process of HOST killed at
                                            once, its link cut (a dead machine)
    cluster.py partition HOST [--dir DIR]   link cut, processes alive
    cluster.py heal      HOST [--dir DIR]   link back, stopped servers started
    cluster.py exec      HOST -- CMD...     run CMD inside HOST's namespace

`up` always starts a fresh cluster (the directory is wiped); `down` stops
every process, removes every namespace, veth and the bridge, and the
directory.
"""

import argparse
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import types

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def _toolkit():
    """The stack tool's process and template helpers: from the toolkit
    package (tools/boxoffice_dev) where there is one, else tools/stack.py."""
    try:
        from boxoffice_dev import procs, render, stack
        from boxoffice_dev.errors import StackError
    except ImportError:
        import stack
        return stack
    return types.SimpleNamespace(
        alive=procs.alive, children=procs.children, terminate=procs.terminate,
        _signal=procs.send_signal, _wait_dead=procs.wait_dead, _reap=procs.reap,
        _cmdline=procs.cmdline, render_text=render.render_text,
        render_file=render.render_file, render_ini=render.render_ini,
        StackError=StackError, PG_BIN=stack.PG_BIN, NGINX=stack.NGINX,
        REDIS_SERVER=stack.REDIS_SERVER, SPAWN_FCGI=stack.SPAWN_FCGI,
        MULTIWATCH=stack.MULTIWATCH)


stackmod = _toolkit()

PG_BIN = stackmod.PG_BIN
ETCD = os.environ.get("BOXOFFICE_ETCD", "/usr/bin/etcd")
PATRONI = os.environ.get("BOXOFFICE_PATRONI", "/usr/bin/patroni")
PATRONICTL = os.environ.get("BOXOFFICE_PATRONICTL", "/usr/bin/patronictl")
REDIS_SENTINEL = os.environ.get("BOXOFFICE_REDIS_SENTINEL", "/usr/bin/redis-sentinel")

SUBNET = "10.213.0"
HOSTS = {"lb": 10, "app1": 21, "app2": 22, "db1": 31, "db2": 32, "db3": 33,
         "cache1": 41, "cache2": 42, "client": 100}
DB_HOSTS = ("db1", "db2", "db3")
APP_HOSTS = ("app1", "app2")
CACHE_HOSTS = ("cache1", "cache2")
SENTINEL_HOSTS = ("cache1", "cache2", "lb")
# What runs where, in start order.
SERVICES = {
    "lb": ("sentinel", "nginx"),
    "app1": ("workers", "workers-queue", "workers-signin", "sweeper"),
    "app2": ("workers", "workers-queue", "workers-signin"),
    "db1": ("etcd", "patroni"), "db2": ("etcd", "patroni"), "db3": ("etcd", "patroni"),
    "cache1": ("redis", "sentinel"), "cache2": ("redis", "sentinel"),
    "client": (),
}
PG_PORT, PATRONI_PORT, ETCD_PORT, ETCD_PEER_PORT = 5432, 8008, 2379, 2380
REDIS_PORT, SENTINEL_PORT, FCGI_PORT, HTTP_PORT = 6379, 26379, 9000, 80
# The worker pools on each app host (the bulkheads), each its own
# spawn-fcgi on its own port and its own nginx upstream: the service
# "workers" is the booking pool on FCGI_PORT, "workers-queue" and
# "workers-signin" the others.
POOL_SERVICES = {"booking": "workers", "queue": "workers-queue", "signin": "workers-signin"}
POOL_PORTS = {"booking": FCGI_PORT, "queue": FCGI_PORT + 1, "signin": FCGI_PORT + 2}
MASTER_NAME = "boxoffice"
SCOPE = "boxoffice"
WORKERS_PER_HOST = 4
# Processes per pool on each app host: booking WORKERS_PER_HOST, the queue
# (Redis only, fast) and sign-in fewer.
POOL_PROCESSES = {"booking": WORKERS_PER_HOST, "queue": 2, "signin": 1}

# Failover timing (Patroni's rule: loop_wait + 2 * retry_timeout <= ttl).
# The leader key lives ttl seconds; a dead primary's key runs out at most
# ttl seconds after its host died, then a synchronous standby takes it.
PATRONI_TTL, PATRONI_LOOP_WAIT, PATRONI_RETRY_TIMEOUT = 8, 1, 3
SENTINEL_DOWN_AFTER_MS = 2000


class ClusterError(Exception):
    pass


def log(msg):
    print("cluster: %s" % msg, file=sys.stderr, flush=True)


def addr(host):
    return "%s.%d" % (SUBNET, HOSTS[host])


def run(argv, check=True, timeout=60, capture=True, env=None):
    res = subprocess.run(argv, stdout=subprocess.PIPE if capture else None,
                         stderr=subprocess.STDOUT if capture else None,
                         timeout=timeout, env=env)
    out = res.stdout.decode("utf-8", "replace") if capture and res.stdout else ""
    if check and res.returncode != 0:
        raise ClusterError("failed (exit %d): %s\n%s" % (res.returncode, " ".join(argv),
                                                         out[-3000:]))
    return res.returncode, out


class Cluster:
    def __init__(self, directory, prefix="bo", srcdir=None, builddir=None,
                 seed=(5, 4, 50, 1000), sync=True):
        self.dir = os.path.abspath(directory)
        self.prefix = prefix
        self.srcdir = os.path.abspath(srcdir or os.path.dirname(HERE))
        self.builddir = os.path.abspath(builddir or self.srcdir)
        self.seed = tuple(int(x) for x in seed)
        self.sync = sync
        self.secrets = {}
        self.overrides = {}       # "section.key" -> value, over worker_conf()'s own
        self.pids = {}            # host -> {service: pid}
        self.in_client = False    # this process runs in the client namespace

    # ------------------------------------------------------------ state
    @property
    def state_file(self):
        return os.path.join(self.dir, "cluster.json")

    def save(self):
        data = {"prefix": self.prefix, "srcdir": self.srcdir, "builddir": self.builddir,
                "seed": list(self.seed), "sync": self.sync, "secrets": self.secrets,
                "overrides": self.overrides, "pids": self.pids}
        tmp = self.state_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump(data, f, indent=1)
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.state_file)

    @classmethod
    def load(cls, directory):
        path = os.path.join(os.path.abspath(directory), "cluster.json")
        with open(path) as f:
            d = json.load(f)
        c = cls(directory, d["prefix"], d["srcdir"], d["builddir"], d["seed"], d["sync"])
        c.secrets, c.pids, c.overrides = d["secrets"], d["pids"], d.get("overrides", {})
        return c

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def ns(self, host):
        return "%s-%s" % (self.prefix, host)

    @property
    def switch(self):
        return "%s-sw" % self.prefix

    # ---------------------------------------------------------- network
    def _netns_list(self):
        _, out = run(["ip", "netns", "list"], check=False)
        return [line.split()[0] for line in out.splitlines() if line.strip()]

    def make_network(self):
        have = set(self._netns_list())
        for name in [self.switch] + [self.ns(h) for h in HOSTS]:
            if name in have:
                raise ClusterError("network namespace %s exists: ./dev cluster down first"
                                   % name)
        run(["ip", "netns", "add", self.switch])
        sw = ["ip", "-n", self.switch]
        run(sw + ["link", "set", "lo", "up"])
        run(sw + ["link", "add", "br0", "type", "bridge"])
        run(sw + ["link", "set", "br0", "up"])
        for h in HOSTS:
            n = self.ns(h)
            run(["ip", "netns", "add", n])
            run(sw + ["link", "add", "v-" + h, "type", "veth", "peer", "name", "eth0",
                      "netns", n])
            run(sw + ["link", "set", "v-" + h, "master", "br0", "up"])
            hn = ["ip", "-n", n]
            run(hn + ["link", "set", "lo", "up"])
            run(hn + ["addr", "add", addr(h) + "/24", "dev", "eth0"])
            run(hn + ["link", "set", "eth0", "up"])

    def link(self, host, up):
        run(["ip", "-n", self.switch, "link", "set", "v-" + host, "up" if up else "down"])

    def link_up(self, host):
        _, out = run(["ip", "-n", self.switch, "-o", "link", "show", "v-" + host], check=False)
        return "state UP" in out or ",UP" in out.split(">")[0]

    def ns_pids(self, host):
        """Processes in host's namespace, but never this one (a drill
        runner lives in the client namespace)."""
        _, out = run(["ip", "netns", "pids", self.ns(host)], check=False)
        return [int(x) for x in out.split() if x.isdigit() and int(x) != os.getpid()]

    def exec_argv(self, host, argv):
        if host == "client" and self.in_client:
            return list(argv)
        return ["ip", "netns", "exec", self.ns(host)] + list(argv)

    def nsrun(self, host, argv, **kw):
        return run(self.exec_argv(host, argv), **kw)

    # -------------------------------------------------------- processes
    def spawn(self, host, service, argv, user=None, cwd=None):
        """Start argv in host's namespace, in a session of its own, logging
        to DIR/host/logs/service.log. Returns the pid."""
        logdir = self.path(host, "logs")
        os.makedirs(logdir, exist_ok=True)
        if user:
            argv = ["setpriv", "--reuid=" + user, "--regid=" + user, "--init-groups"] + argv
        logf = open(os.path.join(logdir, service + ".log"), "a")
        p = subprocess.Popen(self.exec_argv(host, argv), stdin=subprocess.DEVNULL,
                             stdout=logf, stderr=subprocess.STDOUT, cwd=cwd or self.dir,
                             start_new_session=True)
        logf.close()
        self.pids.setdefault(host, {})[service] = p.pid
        self.save()
        return p.pid

    def service_alive(self, host, service):
        return stackmod.alive(self.pids.get(host, {}).get(service))

    def kill_host(self, host):
        """A machine dies: its link goes first (no FIN or RST leaves it),
        then every process in its namespace gets SIGKILL at once."""
        self.link(host, False)
        pids = self.ns_pids(host)
        for p in pids:
            stackmod._signal(p, signal.SIGSTOP)
        for p in pids:
            stackmod._signal(p, signal.SIGKILL)
        stackmod._wait_dead(pids, 10)
        for p in pids:
            stackmod._reap(p)
        return pids

    def stop_host_processes(self, host, sig=signal.SIGTERM, timeout=15):
        pids = self.ns_pids(host)
        for p in pids:
            stackmod._signal(p, signal.SIGCONT)
            stackmod._signal(p, sig)
        if not stackmod._wait_dead(pids, timeout):
            for p in self.ns_pids(host):
                stackmod._signal(p, signal.SIGKILL)
            stackmod._wait_dead(pids, 5)

    # ------------------------------------------------------------ files
    def _pg_owner(self):
        import pwd
        pw = pwd.getpwnam("postgres")
        return pw.pw_uid, pw.pw_gid

    def _traversable(self, path):
        """postgres must reach its data directory through every parent."""
        p = os.path.abspath(path)
        while p != "/":
            st = os.stat(p)
            if not st.st_mode & 0o001:
                os.chmod(p, st.st_mode | 0o001)
            p = os.path.dirname(p)

    def prepare(self):
        if os.path.exists(self.dir):
            shutil.rmtree(self.dir)
        os.makedirs(self.dir)
        os.chmod(self.dir, 0o755)
        self._traversable(self.dir)
        for h in HOSTS:
            os.makedirs(self.path(h, "logs"), exist_ok=True)
            os.chmod(self.path(h), 0o755)
            os.chmod(self.path(h, "logs"), 0o777)
        self.secrets = {k: secrets.token_hex(16) for k in
                        ("superuser", "replicator", "app")}
        os.makedirs(self.path("conf"), mode=0o755)
        key = self.path("conf", "token.key")
        fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(32))
        self.save()

    # ------------------------------------------------------------- etcd
    def etcd_argv(self, host):
        members = ",".join("%s=http://%s:%d" % (h, addr(h), ETCD_PEER_PORT) for h in DB_HOSTS)
        return [ETCD, "--name", host, "--data-dir", self.path(host, "etcd"),
                "--listen-client-urls", "http://%s:%d,http://127.0.0.1:%d"
                % (addr(host), ETCD_PORT, ETCD_PORT),
                "--advertise-client-urls", "http://%s:%d" % (addr(host), ETCD_PORT),
                "--listen-peer-urls", "http://%s:%d" % (addr(host), ETCD_PEER_PORT),
                "--initial-advertise-peer-urls", "http://%s:%d" % (addr(host), ETCD_PEER_PORT),
                "--initial-cluster", members, "--initial-cluster-token", self.prefix,
                "--initial-cluster-state", "new",
                "--heartbeat-interval", "100", "--election-timeout", "1000",
                # A member back from a partition has campaigned alone and
                # carries a higher term: without a pre-vote it would depose
                # the working leader and stall Patroni's every read.
                "--pre-vote"]

    # ---------------------------------------------------------- patroni
    def patroni_conf(self, host):
        tmpl = os.path.join(self.srcdir, "conf", "patroni", "patroni.yml")
        with open(tmpl) as f:
            text = f.read()
        data = self.path(host, "pg")
        text = stackmod.render_text(text, {
            "NAME": host, "ADDR": addr(host), "SUBNET": SUBNET + ".0/24",
            "ETCD_HOSTS": ",".join("%s:%d" % (addr(h), ETCD_PORT) for h in DB_HOSTS),
            "DATA_DIR": data, "RUN_DIR": self.path(host, "run"),
            "PGPASS": self.path(host, "run", "pgpass"), "PG_BIN": PG_BIN,
            "TTL": PATRONI_TTL, "LOOP_WAIT": PATRONI_LOOP_WAIT,
            "RETRY_TIMEOUT": PATRONI_RETRY_TIMEOUT,
            "SYNCHRONOUS_MODE": "true" if self.sync else "false",
            "SUPERUSER_PASSWORD": self.secrets["superuser"],
            "REPLICATION_PASSWORD": self.secrets["replicator"],
            "LOG_DIR": self.path(host, "logs")}, name=tmpl)
        path = self.path(host, "patroni.yml")
        with open(path, "w") as f:
            f.write(text)
        uid, gid = self._pg_owner()
        os.chown(path, uid, gid)
        os.chmod(path, 0o600)
        for d in ("run",):
            os.makedirs(self.path(host, d), exist_ok=True)
            os.chown(self.path(host, d), uid, gid)
        if not os.path.exists(data):
            os.makedirs(data, mode=0o700)
            os.chown(data, uid, gid)
        return path

    def patroni_api(self, host, path="/patroni", timeout=2):
        """GET on host's Patroni REST API from the client namespace:
        (status, parsed JSON or None)."""
        rc, out = self.nsrun("client", ["curl", "-s", "-m", str(timeout), "-o", "/dev/stdout",
                                        "-w", "\n%{http_code}",
                                        "http://%s:%d%s" % (addr(host), PATRONI_PORT, path)],
                             check=False, timeout=timeout + 5)
        body, _, code = out.rpartition("\n")
        try:
            doc = json.loads(body) if body.strip() else None
        except ValueError:
            doc = None
        return (int(code) if code.strip().isdigit() else 0), doc

    def views(self):
        """Patroni's view of the cluster from every db host that answers:
        {host: [{name, role, state, lag, timeline}, ...]}."""
        out = {}
        for h in DB_HOSTS:
            if not self.link_up(h):
                continue
            st, doc = self.patroni_api(h, "/cluster", timeout=3)
            if st == 200 and doc:
                out[h] = doc.get("members", [])
        return out

    def _majority_view(self):
        """The view that a majority of the db hosts share about who leads,
        or [] when there is no such majority. A member just back from a
        partition reports its stale view, in which it still leads, until
        its Patroni reaches etcd again; alone it must never decide."""
        views = self.views()

        def leader_of(ms):
            return next((m["name"] for m in ms if m.get("role") == "leader"
                         and m.get("state") == "running"), None)
        votes = {}
        for ms in views.values():
            votes[leader_of(ms)] = votes.get(leader_of(ms), 0) + 1
        best = max(votes, key=votes.get) if votes else None
        if best is None or votes[best] < len(DB_HOSTS) // 2 + 1:
            return []
        return next(ms for ms in views.values() if leader_of(ms) == best)

    def members(self):
        """[{name, role, state, lag, timeline}, ...] as the majority sees it."""
        return self._majority_view()

    def leader(self):
        """The db host that is the running leader as a majority of the
        Patroni members sees it, provided it also answers /primary (holds
        the lock and runs read-write); None while that is not settled."""
        for m in self.members():
            if m.get("role") == "leader" and m.get("state") == "running":
                if self.patroni_api(m["name"], "/primary", timeout=3)[0] == 200:
                    return m["name"]
        return None

    def primary_by_probe(self):
        """The db hosts whose Patroni answers 200 on /primary (it holds the
        leader lock and runs read-write)."""
        return [h for h in DB_HOSTS if self.link_up(h) and
                self.patroni_api(h, "/primary")[0] == 200]

    def sync_standby(self):
        for m in self.members():
            if m.get("role") == "sync_standby":
                return m["name"]
        return None

    def wait_leader(self, timeout=90, exclude=()):
        deadline = time.time() + timeout
        while time.time() < deadline:
            lead = self.leader()
            if lead and lead not in exclude:
                return lead
            for h in DB_HOSTS:
                if h not in self.pids or "patroni" not in self.pids[h]:
                    continue
                if self.link_up(h) and not self.service_alive(h, "patroni"):
                    with open(self.path(h, "logs", "patroni.log")) as f:
                        tail = f.read()[-2000:]
                    raise ClusterError("Patroni on %s exited:\n%s" % (h, tail))
            time.sleep(0.3)
        raise ClusterError("no PostgreSQL leader after %ds; members: %s"
                           % (timeout, self.members()))

    def wait_members(self, count=3, timeout=120, sync=None):
        """Wait until count members run (streaming replicas included), one
        alone is the leader (an old primary back from a partition reports
        itself leader until its Patroni has demoted it) and, in synchronous
        mode, one is the synchronous standby."""
        sync = self.sync if sync is None else sync
        deadline = time.time() + timeout
        ms = []
        while time.time() < deadline:
            ms = self.members()
            running = [m for m in ms if m.get("state") in ("running", "streaming")]
            leaders = [m for m in ms if m.get("role") == "leader"]
            if len(running) >= count and len(leaders) == 1 and (
                    not sync or any(m.get("role") == "sync_standby" for m in ms)):
                return ms
            time.sleep(0.5)
        raise ClusterError("PostgreSQL members did not settle: %s" % ms)

    def psql(self, sql, host=None, db="boxoffice", timeout=30, user="postgres"):
        """psql -At on host (the leader by default) from the client
        namespace; rows as lists of strings."""
        if host is None:
            # The leader may change under our feet (a drill): ask again.
            for attempt in range(5):
                try:
                    return self.psql(sql, self.wait_leader(timeout=60), db, timeout, user)
                except ClusterError:
                    if attempt == 4:
                        raise
                    time.sleep(1)
        env = dict(os.environ, PGPASSWORD=self.secrets["superuser"] if user == "postgres"
                   else self.secrets["app"], PGCONNECT_TIMEOUT="3")
        argv = self.exec_argv("client", [
            os.path.join(PG_BIN, "psql"), "-X", "-q", "-At", "-F", "\x1f",
            "-v", "ON_ERROR_STOP=1", "-h", addr(host), "-p", str(PG_PORT), "-U", user,
            "-d", db, "-c", sql])
        res = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             timeout=timeout, env=env)
        if res.returncode != 0:
            raise ClusterError("psql on %s failed: %s\n%s" % (
                host, sql[:200], res.stderr.decode("utf-8", "replace")))
        return [line.split("\x1f") for line in
                res.stdout.decode("utf-8", "replace").splitlines() if line != ""]

    def psql_value(self, sql, **kw):
        rows = self.psql(sql, **kw)
        return rows[0][0] if rows and rows[0] else None

    def patroni_edit(self, settings):
        """Change the dynamic configuration in the DCS (patronictl)."""
        lead = self.leader() or DB_HOSTS[0]
        argv = [PATRONICTL, "-c", self.path(lead, "patroni.yml"), "edit-config", "--force"]
        for k, v in settings.items():
            argv += ["-s", "%s=%s" % (k, v)]
        # etcd may time out a request on a busy machine: try again.
        for attempt in range(5):
            try:
                return self.nsrun(lead, argv, timeout=30)
            except (ClusterError, subprocess.TimeoutExpired):
                if attempt == 4:
                    raise
                time.sleep(1)

    # ------------------------------------------------------------ redis
    def redis_conf(self, host):
        d = self.path(host, "redis")
        os.makedirs(d, exist_ok=True)
        conf = os.path.join(d, "redis.conf")
        if os.path.exists(conf):
            # Sentinel may have rewritten it (replicaof): keep what it knows.
            return conf
        stackmod.render_file(os.path.join(self.srcdir, "conf", "redis.conf"), conf, {
            "PORT": REDIS_PORT, "DIR": d, "SOCKET": os.path.join(d, "redis.sock"),
            "PIDFILE": os.path.join(d, "redis.pid"),
            "LOGFILE": self.path(host, "logs", "redis.log")})
        with open(conf, "a") as f:
            f.write("\n# cluster: reachable from the other hosts of the private network\n"
                    "bind %s 127.0.0.1\nprotected-mode no\n" % addr(host))
            if host != CACHE_HOSTS[0]:
                f.write("replicaof %s %d\n" % (addr(CACHE_HOSTS[0]), REDIS_PORT))
        return conf

    def sentinel_conf(self, host):
        d = self.path(host, "sentinel")
        os.makedirs(d, exist_ok=True)
        conf = os.path.join(d, "sentinel.conf")
        if os.path.exists(conf):
            return conf          # Sentinel keeps its state in this file
        tmpl = os.path.join(self.srcdir, "conf", "redis", "sentinel.conf")
        stackmod.render_file(tmpl, conf, {
            "ADDR": addr(host), "PORT": SENTINEL_PORT, "DIR": d,
            "MASTER_NAME": MASTER_NAME, "MASTER_ADDR": addr(CACHE_HOSTS[0]),
            "MASTER_PORT": REDIS_PORT, "QUORUM": 2,
            "DOWN_AFTER_MS": SENTINEL_DOWN_AFTER_MS,
            "LOGFILE": self.path(host, "logs", "sentinel.log")})
        return conf

    def redis_cli(self, host, *args, port=REDIS_PORT, timeout=5):
        rc, out = self.nsrun("client", ["redis-cli", "-h", addr(host), "-p", str(port)]
                             + [str(a) for a in args], check=False, timeout=timeout + 5)
        if rc != 0 or out.startswith("Could not connect"):
            raise ClusterError("redis-cli %s on %s failed: %s" % (args, host, out))
        return out.strip()

    def redis_master(self):
        """The master's host as the Sentinels that answer agree on it."""
        votes = {}
        for h in SENTINEL_HOSTS:
            if not self.link_up(h):
                continue
            try:
                out = self.redis_cli(h, "SENTINEL", "get-master-addr-by-name", MASTER_NAME,
                                     port=SENTINEL_PORT, timeout=2).split()
            except (ClusterError, subprocess.TimeoutExpired):
                continue
            if out:
                votes[out[0]] = votes.get(out[0], 0) + 1
        if not votes:
            return None
        ip = max(votes, key=votes.get)
        return next((h for h in HOSTS if addr(h) == ip), None)

    def redis_role(self, host):
        try:
            return self.redis_cli(host, "ROLE", timeout=2).split("\n")[0]
        except (ClusterError, subprocess.TimeoutExpired):
            return None

    def wait_redis(self, timeout=60):
        """Master known to all Sentinels, replica linked, each Sentinel
        seeing the other two."""
        deadline = time.time() + timeout
        info = ""
        while time.time() < deadline:
            try:
                m = self.redis_master()
                ok = m is not None and self.redis_role(m) == "master"
                if ok:
                    info = self.redis_cli(m, "INFO", "replication")
                    ok = "connected_slaves:1" in info and "state=online" in info
                if ok:
                    for h in SENTINEL_HOSTS:
                        s = self.redis_cli(h, "SENTINEL", "master", MASTER_NAME,
                                           port=SENTINEL_PORT)
                        lines = s.splitlines()
                        kv = dict(zip(lines[::2], lines[1::2]))
                        if int(kv.get("num-other-sentinels", 0)) < len(SENTINEL_HOSTS) - 1:
                            ok = False
                if ok:
                    return m
            except (ClusterError, subprocess.TimeoutExpired) as e:
                info = str(e)
            time.sleep(0.3)
        raise ClusterError("Redis and its Sentinels did not settle: %s" % info)

    # ---------------------------------------------------------- workers
    def worker_conf(self, overrides=None):
        """The workers' boxoffice.conf: the shipped file with the cluster's
        addresses (every app host reads the same one)."""
        pw = self.secrets["app"]
        base = "port=%d dbname=boxoffice user=boxoffice password=%s" % (PG_PORT, pw)
        vals = {
            ("database", "primary_dsn"): "host=%s %s target_session_attrs=read-write"
            % (",".join(addr(h) for h in DB_HOSTS), base),
            ("database", "replica_dsn"): ["host=%s %s target_session_attrs=standby"
                                          % (addr(h), base) for h in DB_HOSTS],
            ("redis", "host"): addr(CACHE_HOSTS[0]),
            ("redis", "port"): str(REDIS_PORT),
            ("redis", "sentinels"): ",".join("%s:%d" % (addr(h), SENTINEL_PORT)
                                             for h in SENTINEL_HOSTS),
            ("redis", "master_name"): MASTER_NAME,
            ("token", "key_file"): self.path("conf", "token.key"),
            ("http", "access_log"): "-",
            ("http", "workers"): str(WORKERS_PER_HOST),
            ("pools", "booking"): str(WORKERS_PER_HOST),
            ("pools", "queue"): str(POOL_PROCESSES["queue"]),
            ("pools", "signin"): str(POOL_PROCESSES["signin"]),
            # The drills admit everyone at once unless they narrow it.
            ("queue", "max_active"): "100000",
            ("queue", "admit_per_second"): "100000",
        }
        for k, v in (overrides or {}).items():
            self.overrides["%s.%s" % k] = v
        for k, v in self.overrides.items():
            vals[tuple(k.split(".", 1))] = v
        with open(os.path.join(self.srcdir, "conf", "boxoffice.conf")) as f:
            text = stackmod.render_ini(f.read(), vals)
        # One file per app host, as on separate machines: the workers'
        # shared memory (pool slots, metrics) is named after this path.
        for h in APP_HOSTS:
            path = self.conf_path(h)
            with open(path + ".tmp", "w") as f:
                f.write(text)
            os.chmod(path + ".tmp", 0o600)
            os.replace(path + ".tmp", path)

    def conf_path(self, host):
        return self.path(host, "boxoffice.conf")

    @property
    def worker_bin(self):
        return os.path.join(self.builddir, "src", "boxoffice")

    @property
    def ctl_bin(self):
        return os.path.join(self.builddir, "src", "boxofficectl")

    def ctl(self, *args, host="app1", timeout=300, check=True):
        return self.nsrun(host, [self.ctl_bin, "-c", self.conf_path(host)]
                          + [str(a) for a in args], timeout=timeout, check=check)

    def worker_argv(self, host, pool="booking"):
        return [stackmod.SPAWN_FCGI, "-a", addr(host), "-p", str(POOL_PORTS[pool]), "-b",
                "1024", "-n", "--", stackmod.MULTIWATCH, "-f", str(POOL_PROCESSES[pool]),
                "-r", "100000", "-t", "1000", "-s", "TERM", "--", self.worker_bin,
                "-p", pool, "-c", self.conf_path(host)]

    def reload_workers(self, overrides):
        """Rewrite the settings and SIGHUP every worker on every app host."""
        self.worker_conf(overrides)
        for h in APP_HOSTS:
            for svc in POOL_SERVICES.values():
                mw = self.pids.get(h, {}).get(svc)
                if mw and stackmod.alive(mw):
                    for p in stackmod.children(mw):
                        stackmod._signal(p, signal.SIGHUP)

    # ------------------------------------------------------------ nginx
    def nginx_conf(self):
        prefix = self.path("lb", "nginx")
        os.makedirs(os.path.join(prefix, "tmp"), exist_ok=True)
        site = os.path.join(prefix, "boxoffice.conf")
        with open(os.path.join(self.srcdir, "conf", "nginx", "boxoffice.conf")) as f:
            text = f.read()
        text = stackmod.render_text(text, {
            "LISTEN": "%s:%d" % (addr("lb"), HTTP_PORT), "QUEUE_SOCKET": "/nonexistent",
            "SIGNIN_SOCKET": "/nonexistent", "BOOKING_SOCKET": "/nonexistent",
            "WWW_ROOT": os.path.join(self.srcdir, "www"), "LOG_DIR": self.path("lb", "logs"),
            "CACHE_DIR": os.path.join(prefix, "cache"), "RATE_LIMITS": "off"})
        text = upstream_over_tcp(text, {p: ["%s:%d" % (addr(h), POOL_PORTS[p])
                                            for h in APP_HOSTS] for p in POOL_PORTS},
                                 os.path.join(self.srcdir, "conf", "nginx",
                                              "upstream-tcp.conf"))
        with open(site, "w") as f:
            f.write(text)
        main = os.path.join(prefix, "nginx.conf")
        with open(os.path.join(self.srcdir, "conf", "nginx", "nginx.conf")) as f:
            text = f.read()
        text = stackmod.render_text(text, {
            "USER_LINE": "user root root;", "WORKER_PROCESSES": 1, "PREFIX": prefix,
            "LOG_DIR": self.path("lb", "logs"), "SITE_CONF": site}, name="nginx.conf")
        with open(main, "w") as f:
            f.write(text)
        return prefix, main

    # ------------------------------------------------------- start/stop
    def start_service(self, host, svc):
        if self.service_alive(host, svc):
            return
        if svc == "etcd":
            self.spawn(host, svc, self.etcd_argv(host))
        elif svc == "patroni":
            conf = self.patroni_conf(host)
            self.spawn(host, svc, [PATRONI, conf], user="postgres",
                       cwd=self.path(host))
        elif svc == "redis":
            self.spawn(host, svc, [stackmod.REDIS_SERVER, self.redis_conf(host)],
                       cwd=self.path(host, "redis"))
        elif svc == "sentinel":
            self.spawn(host, svc, [REDIS_SENTINEL, self.sentinel_conf(host)],
                       cwd=self.path(host, "sentinel"))
        elif svc in POOL_SERVICES.values():
            pool = [p for p, v in POOL_SERVICES.items() if v == svc][0]
            self.spawn(host, svc, self.worker_argv(host, pool))
        elif svc == "sweeper":
            script = 'while :; do "$0" -c "$1" sweep; sleep 5; done'
            self.spawn(host, svc, ["sh", "-c", script, self.ctl_bin, self.conf_path(host)])
        elif svc == "nginx":
            prefix, main = self.nginx_conf()
            self.nsrun(host, [stackmod.NGINX, "-q", "-t", "-p", prefix + "/", "-c", main])
            self.spawn(host, svc, [stackmod.NGINX, "-p", prefix + "/", "-c", main])
        else:
            raise ClusterError("unknown service %s" % svc)

    def start_host(self, host, services=None):
        for svc in services or SERVICES[host]:
            self.start_service(host, svc)

    def wait_http(self, path="/api/health", timeout=60, want=200):
        deadline = time.time() + timeout
        out = ""
        while time.time() < deadline:
            rc, out = self.nsrun("client", ["curl", "-s", "-m", "3", "-o", "/dev/null",
                                            "-w", "%{http_code}", self.url(path)],
                                 check=False, timeout=10)
            if out.strip() == str(want):
                return
            time.sleep(0.3)
        raise ClusterError("%s did not answer %d (last: %s)" % (path, want, out))

    def url(self, path=""):
        return "http://%s%s" % (addr("lb"), path)

    def wait_port(self, host, port, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            rc, _ = self.nsrun("client", ["bash", "-c", "exec 3<>/dev/tcp/%s/%d"
                                          % (addr(host), port)], check=False, timeout=5)
            if rc == 0:
                return
            time.sleep(0.2)
        raise ClusterError("%s:%d does not listen" % (host, port))

    def up(self):
        t0 = time.time()
        for b in (self.worker_bin, self.ctl_bin):
            if not os.access(b, os.X_OK):
                raise ClusterError("%s is missing: build first (./dev build)" % b)
        self.prepare()
        self.make_network()
        log("network: bridge in %s, hosts %s on %s.0/24" % (
            self.switch, ", ".join(HOSTS), SUBNET))
        for h in DB_HOSTS:
            self.start_service(h, "etcd")
        for h in DB_HOSTS:
            self.wait_port(h, ETCD_PORT)
        for h in DB_HOSTS:
            self.start_service(h, "patroni")
        for h in CACHE_HOSTS:
            self.start_service(h, "redis")
        for h in SENTINEL_HOSTS:
            self.start_service(h, "sentinel")
        lead = self.wait_leader(timeout=120)
        log("PostgreSQL leader: %s" % lead)
        self._app_database(lead)
        self.worker_conf()
        self.ctl("migrate", "--sql-dir", os.path.join(self.srcdir, "sql"))
        c, s, n, u = self.seed
        self.ctl("seed", "--concerts", c, "--schedules", s, "--seats", n, "--users", u)
        self.wait_members(3)
        m = self.wait_redis()
        log("Redis master: %s" % m)
        for h in APP_HOSTS:
            self.start_host(h)
        for h in APP_HOSTS:
            for port in POOL_PORTS.values():
                self.wait_port(h, port)
        self.start_service("lb", "nginx")
        self.wait_http("/api/health")
        log("up in %.0f s: %s (from the client namespace: ip netns exec %s curl %s)"
            % (time.time() - t0, self.url("/"), self.ns("client"), self.url("/api/health")))

    def _app_database(self, lead):
        pw = self.secrets["app"]
        self.psql("""DO $$BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'boxoffice') THEN
              CREATE ROLE boxoffice LOGIN PASSWORD '%s'; END IF; END$$""" % pw,
                  host=lead, db="postgres")
        if not self.psql("SELECT 1 FROM pg_database WHERE datname = 'boxoffice'",
                         host=lead, db="postgres"):
            self.psql("CREATE DATABASE boxoffice OWNER boxoffice", host=lead, db="postgres")

    def down(self):
        for h in list(HOSTS):
            if self.ns(h) in self._netns_list():
                self.stop_host_processes(h, timeout=10)
        for h in self.pids:
            for pid in self.pids[h].values():
                stackmod.terminate(pid, timeout=5)
        for name in [self.ns(h) for h in HOSTS] + [self.switch]:
            if name in self._netns_list():
                run(["ip", "netns", "del", name], check=False)

    def heal(self, host):
        """Link back up; servers of the host that are not running (after a
        kill) are started again, as a rebooted machine would."""
        self.link(host, True)
        self.start_host(host)

    def status_lines(self):
        out = []
        for h in HOSTS:
            link = "up" if self.link_up(h) else "DOWN"
            svcs = []
            for s in SERVICES[h]:
                svcs.append("%s:%s" % (s, "up" if self.service_alive(h, s) else "down"))
            out.append("%-7s %-14s link %-4s  %s" % (h, addr(h), link, " ".join(svcs)))
        ms = self.members()
        out.append("postgres: " + (", ".join("%s %s %s lag=%s tl=%s" % (
            m["name"], m.get("role"), m.get("state"), m.get("lag", "-"),
            m.get("timeline", "-")) for m in ms) or "no member answers"))
        out.append("redis master (Sentinels): %s" % self.redis_master())
        out.append("site: %s (ip netns exec %s curl ...)" % (self.url("/"), self.ns("client")))
        return out


def upstream_over_tcp(site_text, servers, example_path):
    """Replace the site's unix-socket upstreams (one per worker pool) with
    the TCP one of conf/nginx/upstream-tcp.conf (its upstream block and the
    timeouts it names), listing servers[pool] in boxoffice_<pool>."""
    import re
    with open(example_path) as f:
        ex = f.read()
    m = re.search(r"^upstream boxoffice_\w+ \{.*?^\}", ex, re.S | re.M)
    if not m:
        raise ClusterError("%s: no upstream block" % example_path)
    block = m.group(0)
    line = re.search(r"^\s*server @SERVER@(.*)$", block, re.M)
    new = site_text
    for pool, hosts in sorted(servers.items()):
        rendered = re.sub(r"^upstream boxoffice_\w+ \{", "upstream boxoffice_%s {" % pool,
                          block).replace(line.group(0), "\n".join(
                              "    server %s%s" % (s, line.group(1)) for s in hosts))
        new, n = re.subn(r"^upstream boxoffice_%s \{.*?^\}" % pool, lambda _: rendered,
                         new, flags=re.S | re.M)
        if n != 1:
            raise ClusterError("the nginx site has no upstream boxoffice_%s block" % pool)
    # Directives of the example's "# site:" lines replace the site's own.
    for d in re.findall(r"^#\s*site:\s*(\S+)\s+([^;]+);", ex, re.M):
        new, n = re.subn(r"^(\s*)%s\s+[^;]+;" % re.escape(d[0]),
                         lambda mm: "%s%s %s;" % (mm.group(1), d[0], d[1]), new,
                         count=1, flags=re.M)
        if n != 1:
            raise ClusterError("the nginx site has no %s directive" % d[0])
    return new


def main(argv=None):
    ap = argparse.ArgumentParser(prog="cluster.py", description=__doc__.split("\n")[0])
    ap.add_argument("cmd", choices=("up", "down", "status", "kill", "partition", "heal",
                                    "exec"))
    ap.add_argument("host", nargs="?")
    ap.add_argument("--dir", default=os.environ.get("BOXOFFICE_CLUSTER_DIR", "var/cluster"))
    ap.add_argument("--prefix", default="bo")
    ap.add_argument("--srcdir", default=os.path.dirname(HERE))
    ap.add_argument("--builddir", default=None)
    ap.add_argument("--seed", default="5,4,50,1000")
    ap.add_argument("--async", dest="sync", action="store_false",
                    help="synchronous_mode off (asynchronous standbys)")
    argv = list(sys.argv[1:] if argv is None else argv)
    rest = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    a = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("cluster: network namespaces need root", file=sys.stderr)
        return 2
    try:
        if a.cmd == "up":
            c = Cluster(a.dir, a.prefix, a.srcdir, a.builddir, a.seed.split(","), a.sync)
            try:
                c.up()
            except BaseException:
                log("start failed; logs under %s/<host>/logs; tearing down" % c.dir)
                c.down()
                raise
            return 0
        if not os.path.exists(os.path.join(a.dir, "cluster.json")):
            if a.cmd in ("down", "status"):
                print("no cluster in %s" % a.dir)
                return 0
            raise ClusterError("no cluster in %s: ./dev cluster up first" % a.dir)
        c = Cluster.load(a.dir)
        if a.cmd == "down":
            c.down()
            shutil.rmtree(c.dir, ignore_errors=True)
            log("down: namespaces, links, bridge and processes removed")
        elif a.cmd == "status":
            print("\n".join(c.status_lines()))
        elif a.cmd in ("kill", "partition", "heal", "exec"):
            if a.host not in HOSTS:
                raise ClusterError("HOST must be one of %s" % ", ".join(HOSTS))
            if a.cmd == "kill":
                n = len(c.kill_host(a.host))
                log("%s: link cut, %d processes killed" % (a.host, n))
            elif a.cmd == "partition":
                c.link(a.host, False)
                log("%s: link cut, processes alive" % a.host)
            elif a.cmd == "heal":
                c.heal(a.host)
                log("%s: link up, servers running" % a.host)
            else:
                return subprocess.call(c.exec_argv(a.host, rest or ["bash"]))
        return 0
    except (ClusterError, stackmod.StackError) as e:
        print("cluster: %s" % e, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

"""The local boxoffice stack: its servers' lifecycle, in one directory.

A PostgreSQL 15 primary, a streaming replica made with pg_basebackup,
Redis, the boxoffice FastCGI workers (spawn-fcgi + multiwatch) and nginx,
all bound to 127.0.0.1, everything they write kept inside the directory:

    DIR/stack.json       ports, pids and paths (read by `down`/`status`)
    DIR/conf/            boxoffice.conf (rendered), token.key, token-old.key
    DIR/pg/primary       PostgreSQL data directories (owned by `postgres`
    DIR/pg/replica         when run as root; sockets live in DIR/pg)
    DIR/redis/           redis.conf, AOF and RDB files
    DIR/nginx/           nginx.conf, boxoffice.conf (site), temp dirs, pid
    DIR/run/             boxoffice.sock (the workers' FastCGI socket), or with
                         pools queue.sock, signin.sock, booking.sock
    DIR/logs/            every log: access.log (workers), worker.log,
                         nginx-*.log, boxoffice-*.log, postgresql-*.log,
                         redis.log, ctl.log

`./dev up` runs one in ./var on fixed ports (cli.py); the test runners run
a fixture.TestStack in a temporary directory on free ports. A port of 0
means "pick a free one".
"""

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time

from . import http as httpc
from . import redis as redisc
from . import tokens
from .errors import StackError
from .procs import (alive, children, cmdline, free_port, is_root, port_in_use,  # noqa: F401
                    process_tree, send_signal, terminate, wait_bindable, wait_dead)
from .render import parse_overrides, render_file, render_ini, render_text  # noqa: F401

PG_BIN = os.environ.get("BOXOFFICE_PG_BIN", "/usr/lib/postgresql/15/bin")
NGINX = os.environ.get("BOXOFFICE_NGINX", "/usr/sbin/nginx")
LIGHTTPD = os.environ.get("BOXOFFICE_LIGHTTPD", "/usr/sbin/lighttpd")
REDIS_SERVER = os.environ.get("BOXOFFICE_REDIS_SERVER", "/usr/bin/redis-server")
SPAWN_FCGI = os.environ.get("BOXOFFICE_SPAWN_FCGI", "/usr/bin/spawn-fcgi")
MULTIWATCH = os.environ.get("BOXOFFICE_MULTIWATCH", "/usr/bin/multiwatch")

PG_OS_USER = "postgres"      # PostgreSQL refuses to run as root
PG_SUPERUSER = "postgres"    # database superuser created by initdb -U
APP_ROLE = "boxoffice"
APP_DB = "boxoffice"
REPL_ROLE = "replicator"
REPL_SLOT = "boxoffice_replica"
REPLICA_NAME = "boxoffice-replica"   # cluster_name in conf/postgresql/replica.conf

DEFAULT_SEED = {"concerts": 5, "schedules": 4, "seats": 50, "users": 1000}
SERVERS = ("primary", "replica", "redis")
# The worker pools of a divided stack (the bulkheads; `boxoffice -p POOL`),
# in the order nginx's upstreams name them.
POOLS = ("queue", "signin", "booking")


def split_pools(n):
    """N workers split into pools: a quarter queue, an eighth sign-in, the
    rest booking, each at least 1 (so fewer than 3 gives 3)."""
    n = int(n)
    queue, signin = max(1, n // 4), max(1, n // 8)
    return {"queue": queue, "signin": signin, "booking": max(1, n - queue - signin)}


def parse_pools(items):
    """['queue=4', 'booking=12'] or ['16'] -> {'queue': 4, ...}: named
    sizes (the ones not named keep None), or one total split."""
    if len(items) == 1 and items[0].isdigit():
        return split_pools(items[0])
    res = {}
    for item in items:
        name, _, value = item.partition("=")
        if name not in POOLS or not value.isdigit():
            raise StackError("pool size %r: expected N or queue=N signin=N booking=N" % item)
        res[name] = int(value)
    if not res:
        raise StackError("no pool sizes given")
    return res

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_SRCDIR = os.path.dirname(os.path.dirname(HERE))


# The names these helpers had when this module was tools/stack.py, for
# test modules written against them.
_is_root, _cmdline, _signal, _wait_dead = is_root, cmdline, send_signal, wait_dead


# The demo accounts of `boxofficectl seed`: demo user i signs in as
# demo_email(i) with DEMO_PASSWORD (docs/identity.md).
DEMO_PASSWORD = "boxoffice-demo"


def demo_email(i):
    """Demo user i's e-mail address."""
    return "user%d@demo.boxoffice.test" % i


def _log_default(msg):
    print(msg, file=sys.stderr, flush=True)


class Managed:
    """What a set of servers in one directory has in common: start() and
    stop() (defined by the subclass), destroy(), and use with `with`."""

    def path(self, *parts):
        """A path inside the directory (self.dir)."""
        return os.path.join(self.dir, *parts)

    def destroy(self):
        """stop() and remove the directory."""
        try:
            self.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False



class Stack(Managed):
    """A local boxoffice stack in one directory.

    Stack(dir, ...).start() brings everything up; stop() brings it all down
    (also usable as a context manager). Stack.load(dir) attaches to a stack
    started by another process, from its stack.json.
    """

    def __init__(self, directory, srcdir=None, builddir=None, http_port=0,
                 pg_port=0, replica_port=0, redis_port=0, workers=4,
                 seed=None, overrides=None, rate_limits=False,
                 nginx_workers=1, replica=True, max_workers=8, sweeper=True,
                 pools=None, log=_log_default):
        self.dir = os.path.abspath(directory)
        self.srcdir = os.path.abspath(srcdir or DEFAULT_SRCDIR)
        self.builddir = os.path.abspath(builddir or self.srcdir)
        self.ports = {"http": int(http_port), "primary": int(pg_port),
                      "replica": int(replica_port), "redis": int(redis_port)}
        self.workers = int(workers)
        # multiwatch starts this many processes; http.workers of them take
        # requests, so the pool can grow and shrink with a reload.
        self.processes = max(int(workers), int(max_workers))
        # Divided into pools (each its own socket, multiwatch and nginx
        # upstream) when pools is True (workers and max_workers split by
        # split_pools) or a {pool: size} dict; None: one undivided set.
        self.pools = None
        self.pool_processes = None
        if pools:
            self.pools = dict(split_pools(workers) if pools is True else pools)
            most = split_pools(max_workers)
            self.pool_processes = {p: max(self.pools[p], most[p]) for p in POOLS}
            self.workers = sum(self.pools.values())
            self.processes = sum(self.pool_processes.values())
        self.sweeper = sweeper
        self.seed_sizes = dict(DEFAULT_SEED, **(seed or {}))
        self.overrides = dict(overrides or {})
        self.rate_limits = bool(rate_limits)
        self.nginx_workers = nginx_workers
        self.with_replica = replica
        self.log = log
        self.pids = {}           # nginx, multiwatch, redis
        self._procs = {}         # Popen objects we started (to reap them)
        self.owner_pid = None    # a test runner that owns this stack

    # ------------------------------------------------------------ paths
    @property
    def state_file(self):
        return self.path("stack.json")

    @property
    def conf_file(self):
        return self.path("conf", "boxoffice.conf")

    @property
    def key_file(self):
        return self.path("conf", "token.key")

    @property
    def old_key_file(self):
        return self.path("conf", "token-old.key")

    @property
    def socket_path(self):
        return self.path("run", "boxoffice.sock")

    def pool_socket(self, pool):
        """The FastCGI socket nginx's upstream for pool uses: the pool's own
        in a divided stack, the one socket otherwise."""
        return self.path("run", "%s.sock" % pool) if self.pools else self.socket_path

    def _mw_keys(self):
        return ["multiwatch-%s" % p for p in POOLS] if self.pools else ["multiwatch"]

    @property
    def access_log(self):
        return self.path("logs", "access.log")

    @property
    def pg_dir(self):
        return self.path("pg")

    def pg_data(self, which):
        return self.path("pg", which)

    def pg_log(self, which):
        return self.path("logs", "postgresql-%s.log" % which)

    @property
    def worker_bin(self):
        return os.path.join(self.builddir, "src", "boxoffice")

    @property
    def ctl_bin(self):
        return os.path.join(self.builddir, "src", "boxofficectl")

    @property
    def http_port(self):
        return self.ports["http"]

    @property
    def base_url(self):
        return "http://127.0.0.1:%d" % self.ports["http"]

    def dsn(self, which="primary", user=APP_ROLE, db=APP_DB, socket=False):
        """libpq DSN of a server: TCP on 127.0.0.1, or its Unix socket
        (what the workers use, as on a single-machine deployment)."""
        return ("host=%s port=%d dbname=%s user=%s connect_timeout=2"
                % (self.pg_dir if socket else "127.0.0.1", self.ports[which], db, user))

    @property
    def redis_socket(self):
        return self.path("redis", "redis.sock")

    # ------------------------------------------------------------ state
    def save_state(self):
        state = {
            "dir": self.dir, "srcdir": self.srcdir, "builddir": self.builddir,
            "ports": self.ports, "workers": self.workers, "processes": self.processes,
            "seed": self.seed_sizes, "rate_limits": self.rate_limits,
            "nginx_workers": self.nginx_workers, "replica": self.with_replica,
            "overrides": [[s, k, v] for (s, k), v in self.overrides.items()],
            "pids": self.pids, "conf": self.conf_file,
            "socket": self.socket_path, "updated": time.time(),
            "pools": self.pools, "pool_processes": self.pool_processes,
            "owner_pid": self.owner_pid,
        }
        tmp = self.state_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump(state, f, indent=2, sort_keys=True)
        os.replace(tmp, self.state_file)

    @classmethod
    def load(cls, directory, log=_log_default):
        path = os.path.join(os.path.abspath(directory), "stack.json")
        with open(path) as f:
            st = json.load(f)
        s = cls(directory, srcdir=st["srcdir"], builddir=st["builddir"],
                workers=st["workers"], max_workers=st.get("processes", st["workers"]),
                seed=st.get("seed"),
                overrides={(a, b): c for a, b, c in st.get("overrides", [])},
                rate_limits=st.get("rate_limits", False),
                nginx_workers=st.get("nginx_workers", 1),
                replica=st.get("replica", True), log=log)
        if st.get("pools"):
            s.pools = dict(st["pools"])
            s.pool_processes = dict(st["pool_processes"])
            s.workers = sum(s.pools.values())
            s.processes = sum(s.pool_processes.values())
        s.ports = {k: int(v) for k, v in st["ports"].items()}
        # after a reboot a recorded pid may belong to someone else now
        s.pids = {k: int(v) for k, v in st.get("pids", {}).items()
                  if v and s._pid_is_ours(k, int(v))}
        s.owner_pid = st.get("owner_pid")
        return s

    def _pid_is_ours(self, key, pid):
        cmd = cmdline(pid)
        if key == "redis":
            return "redis-server" in cmd and (":%d" % self.ports.get("redis", 0)) in cmd
        return (self.dir + "/") in cmd

    # ------------------------------------------------------ permissions
    def _pg_owner(self):
        """(uid, gid) that runs PostgreSQL, or None when not root."""
        if not is_root():
            return None
        import pwd
        try:
            pw = pwd.getpwnam(PG_OS_USER)
        except KeyError:
            raise StackError("running as root but there is no `%s` user: "
                             "apt-get install postgresql" % PG_OS_USER)
        return pw.pw_uid, pw.pw_gid

    def _chown_pg(self, path):
        owner = self._pg_owner()
        if owner:
            os.chown(path, *owner)

    def _make_traversable(self, path):
        """As root, the `postgres` user must reach DIR: add o+x to ancestors
        that lack it (mkdtemp makes 0700 directories)."""
        if not is_root():
            return
        p = os.path.abspath(path)
        while True:
            st = os.stat(p)
            if not st.st_mode & 0o001:
                os.chmod(p, (st.st_mode & 0o7777) | 0o001)
                self.log("note: chmod o+x %s (so that the postgres user can reach %s)"
                         % (p, path))
            parent = os.path.dirname(p)
            if parent == p:
                break
            p = parent

    def _as_pg(self, argv):
        if is_root():
            return ["runuser", "-u", PG_OS_USER, "--"] + argv
        return argv

    def _run(self, argv, timeout=120, check=True, log_to=None, env=None, cwd=None,
             input=None):
        try:
            res = subprocess.run(argv, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, timeout=timeout,
                                 env=env, cwd=cwd or self.dir, input=input)
        except subprocess.TimeoutExpired as e:
            raise StackError("timed out after %ss: %s" % (timeout, " ".join(argv))) from e
        except FileNotFoundError as e:
            raise StackError("not found: %s (is it installed?)" % argv[0]) from e
        out = res.stdout.decode("utf-8", "replace")
        if log_to:
            with open(log_to, "a") as f:
                f.write("$ %s\n%s" % (" ".join(argv), out))
        if check and res.returncode != 0:
            raise StackError("command failed (exit %d): %s\n%s"
                             % (res.returncode, " ".join(argv), out[-4000:]))
        return res.returncode, out

    # ----------------------------------------------------------- layout
    def _prepare_dirs(self):
        for d in ("", "conf", "logs", "run", "redis", "nginx", "nginx/tmp"):
            os.makedirs(self.path(d), exist_ok=True)
        os.chmod(self.dir, 0o755)
        for d in ("logs", "run", "nginx", "nginx/tmp"):
            os.chmod(self.path(d), 0o755)
        os.chmod(self.path("conf"), 0o700)
        self._make_traversable(self.dir)
        if not os.path.isdir(self.pg_dir):
            os.makedirs(self.pg_dir)
        os.chmod(self.pg_dir, 0o755)
        self._chown_pg(self.pg_dir)
        for which in ("primary", "replica"):
            logf = self.pg_log(which)
            open(logf, "a").close()
            self._chown_pg(logf)
        sock_len = len(os.path.join(self.pg_dir, ".s.PGSQL.65535"))
        if sock_len > 100 or len(self.socket_path) > 100:
            raise StackError("stack directory path too long for unix sockets: %s" % self.dir)

    def _write_keys(self):
        for path in (self.key_file, self.old_key_file):
            if not os.path.exists(path):
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as f:
                    f.write(secrets.token_bytes(32))
            os.chmod(path, 0o600)

    def _pick_ports(self):
        used = set(p for p in self.ports.values() if p)
        for name in ("http", "primary", "replica", "redis"):
            if not self.ports[name]:
                self.ports[name] = free_port(exclude=used)
                used.add(self.ports[name])
            else:
                try:
                    wait_bindable(self.ports[name], log=self.log)
                except StackError as e:
                    raise StackError("%s (%s)" % (e, name))

    # ----------------------------------------------------------- config
    def config_values(self, overrides=None):
        """Every setting the stack sets: its own addresses and files, then
        the stored overrides, then overrides (if given) over those."""
        vals = {
            ("database", "primary_dsn"): self.dsn("primary", socket=True),
            ("database", "replica_dsn"): (self.dsn("replica", socket=True)
                                          if self.with_replica else None),
            ("redis", "host"): self.redis_socket,
            ("redis", "port"): str(self.ports["redis"]),
            ("token", "key_file"): self.key_file,
            ("http", "access_log"): self.access_log,
            ("http", "workers"): str(self.workers),
            # libsodium's lowest Argon2id cost: sign-ins in tests take
            # milliseconds. Plain HTTP, so the session cookie cannot be
            # Secure. Sign-in throttling counts per client address, and
            # every test client is 127.0.0.1: tests that check it lower
            # the limit themselves. Cheap hashes need no gate: every
            # worker may hash (tests that check the gate lower it).
            ("auth", "pwhash_opslimit"): "1",
            ("auth", "pwhash_memlimit_kib"): "8",
            ("auth", "cookie_secure"): "0",
            ("auth", "max_failures"): "1000",
            ("auth", "hash_concurrency"): "64",
        }
        for p, n in (self.pools or {}).items():
            vals[("pools", p)] = str(n)
        vals.update(self.overrides)
        vals.update(overrides or {})
        return vals

    def render_config(self, overrides=None):
        """The text of boxoffice.conf: the shipped conf/boxoffice.conf with
        config_values(overrides) filled in."""
        with open(os.path.join(self.srcdir, "conf", "boxoffice.conf")) as f:
            return render_ini(f.read(), self.config_values(overrides))

    def check_config(self, path):
        """`boxoffice -t` on the settings file at path: (exit code, output)."""
        return self._run([self.worker_bin, "-t", "-c", path], timeout=30, check=False)

    def write_config(self, overrides=None, check=True):
        """(Re)write DIR/conf/boxoffice.conf with overrides added to the
        stored ones.

        With check, the new file must pass check_config before it replaces
        the old one: a setting the workers would refuse raises StackError
        and leaves the file and the stored overrides as they were, so a
        mistyped --set cannot stick and break the next start. Tests of how
        workers take a bad file pass check=False.
        """
        tmp = self.conf_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(self.render_config(overrides))
        os.chmod(tmp, 0o600)
        if check:
            rc, out = self.check_config(tmp)
            if rc != 0:
                os.unlink(tmp)
                raise StackError("settings refused, nothing changed: %s"
                                 % out.strip().replace(tmp, "boxoffice.conf"))
        self.overrides.update(overrides or {})
        os.replace(tmp, self.conf_file)
        return self.conf_file

    # ------------------------------------------------------- postgresql
    def _pg(self, tool):
        return os.path.join(PG_BIN, tool)

    def _render_pg_conf(self, which):
        tmpl = os.path.join(self.srcdir, "conf", "postgresql", "%s.conf" % which)
        dst = os.path.join(self.pg_data(which), "boxoffice.conf")
        render_file(tmpl, dst, {"PORT": self.ports[which], "SOCKET_DIR": self.pg_dir},
                    mode=0o600)
        self._chown_pg(dst)

    def _pg_initdb(self):
        data = self.pg_data("primary")
        if os.path.exists(os.path.join(data, "PG_VERSION")):
            return False
        self.log("creating the PostgreSQL primary in %s" % data)
        self._run(self._as_pg([self._pg("initdb"), "-D", data, "-U", PG_SUPERUSER,
                               "-A", "trust", "-E", "UTF8", "--locale=C.UTF-8",
                               "--no-sync"]),
                  log_to=self.pg_log("primary"), cwd=self.pg_dir)
        conf = os.path.join(data, "postgresql.conf")
        with open(conf, "a") as f:
            f.write("\n# boxoffice settings (conf/postgresql/primary.conf)\n"
                    "include 'boxoffice.conf'\n")
        return True

    def pg_pid(self, which):
        try:
            with open(os.path.join(self.pg_data(which), "postmaster.pid")) as f:
                pid = int(f.readline().strip())
        except (OSError, ValueError):
            return None
        # a stale postmaster.pid (after a reboot) may name another process
        if not alive(pid) or self.pg_data(which) not in cmdline(pid):
            return None
        return pid

    def _pg_ctl(self, which, action, timeout=60, check=True, mode="fast"):
        argv = [self._pg("pg_ctl"), "-D", self.pg_data(which), "-w", "-t", str(timeout)]
        if action in ("start", "restart"):
            argv += ["-l", self.pg_log(which)]
        if action in ("stop", "restart"):
            argv += ["-m", mode]
        argv.append(action)
        return self._run(self._as_pg(argv), timeout=timeout + 15, check=check,
                         cwd=self.pg_dir)

    def start_pg(self, which):
        if self.pg_pid(which):
            return
        self._render_pg_conf(which)
        if which == "replica":
            self._fix_replica_conninfo()
        self._pg_ctl(which, "start")
        self._wait_pg(which)

    def _wait_pg(self, which, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            rc, _ = self._run([self._pg("pg_isready"), "-q", "-h", "127.0.0.1",
                               "-p", str(self.ports[which]), "-U", PG_SUPERUSER,
                               "-d", "postgres", "-t", "2"], check=False)
            if rc == 0:
                return
            time.sleep(0.1)
        raise StackError("PostgreSQL %s did not become ready on port %d"
                         % (which, self.ports[which]))

    def psql(self, sql, which="primary", db=APP_DB, user=PG_SUPERUSER, timeout=60):
        """Run SQL with psql -At; returns the rows of the last statement as
        lists of strings (NULL is '')."""
        argv = [self._pg("psql"), "-X", "-q", "-At", "-F", "\x1f", "-v", "ON_ERROR_STOP=1",
                "-h", "127.0.0.1", "-p", str(self.ports[which]), "-U", user,
                "-d", db, "-c", sql]
        env = dict(os.environ, PGCONNECT_TIMEOUT="3")
        res = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             timeout=timeout, env=env)
        if res.returncode != 0:
            raise StackError("psql on %s failed: %s\n%s" % (which, sql,
                             res.stderr.decode("utf-8", "replace")))
        text = res.stdout.decode("utf-8", "replace")
        return [line.split("\x1f") for line in text.splitlines() if line != ""]

    def psql_value(self, sql, **kw):
        rows = self.psql(sql, **kw)
        return rows[0][0] if rows and rows[0] else None

    def _pg_roles(self):
        self.psql("""DO $$BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '%s') THEN
                CREATE ROLE %s LOGIN; END IF;
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '%s') THEN
                CREATE ROLE %s REPLICATION LOGIN; END IF;
            END$$""" % (APP_ROLE, APP_ROLE, REPL_ROLE, REPL_ROLE), db="postgres")
        if not self.psql("SELECT 1 FROM pg_database WHERE datname = '%s'" % APP_DB,
                         db="postgres"):
            self.psql("CREATE DATABASE %s OWNER %s" % (APP_DB, APP_ROLE), db="postgres")

    def _make_replica(self):
        data = self.pg_data("replica")
        if os.path.exists(os.path.join(data, "PG_VERSION")):
            return False
        if os.path.exists(data):
            shutil.rmtree(data)
        self.log("creating the streaming replica in %s (pg_basebackup -R)" % data)
        if self.psql("SELECT 1 FROM pg_replication_slots WHERE slot_name = '%s'"
                     % REPL_SLOT, db="postgres"):
            self.psql("SELECT pg_drop_replication_slot('%s')" % REPL_SLOT, db="postgres")
        self._run(self._as_pg([self._pg("pg_basebackup"), "-h", "127.0.0.1",
                               "-p", str(self.ports["primary"]), "-U", REPL_ROLE,
                               "-D", data, "-R", "-X", "stream", "-C", "-S", REPL_SLOT,
                               "-c", "fast", "--no-sync"]),
                  log_to=self.pg_log("replica"), timeout=300, cwd=self.pg_dir)
        return True

    def _fix_replica_conninfo(self):
        """Point primary_conninfo at the current primary port."""
        auto = os.path.join(self.pg_data("replica"), "postgresql.auto.conf")
        try:
            with open(auto) as f:
                text = f.read()
        except OSError:
            return
        new = re.sub(r"(primary_conninfo = '[^\n]*?)\bport=\d+",
                     lambda m: m.group(1) + "port=%d" % self.ports["primary"], text)
        new = re.sub(r"(primary_conninfo = '[^\n]*?)\bhost=\S+?(?=[ '])",
                     lambda m: m.group(1) + "host=127.0.0.1", new)
        if new != text:
            with open(auto, "w") as f:
                f.write(new)

    def replication_state(self):
        rows = self.psql("SELECT state FROM pg_stat_replication WHERE application_name = '%s'"
                         % REPLICA_NAME, db="postgres")
        return rows[0][0] if rows else None

    def wait_streaming(self, timeout=30):
        deadline = time.time() + timeout
        state = None
        while time.time() < deadline:
            try:
                state = self.replication_state()
            except StackError:
                state = None
            if state == "streaming":
                return True
            time.sleep(0.2)
        raise StackError("the replica is not streaming (pg_stat_replication state: %r)"
                         % state)

    def wait_replica_caught_up(self, timeout=30):
        """Wait until the replica has replayed everything the primary wrote so far."""
        lsn = self.psql_value("SELECT pg_current_wal_lsn()", db="postgres")
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                ok = self.psql_value("SELECT pg_last_wal_replay_lsn() >= '%s'::pg_lsn" % lsn,
                                     which="replica", db="postgres")
            except StackError:
                ok = None
            if ok == "t":
                return True
            time.sleep(0.1)
        raise StackError("the replica did not catch up with %s" % lsn)

    # ------------------------------------------------------------ redis
    def start_redis(self):
        if self.pids.get("redis") and alive(self.pids["redis"]):
            return
        conf = self.path("redis", "redis.conf")
        render_file(os.path.join(self.srcdir, "conf", "redis.conf"), conf, {
            "PORT": self.ports["redis"], "DIR": self.path("redis"),
            "SOCKET": self.redis_socket, "PIDFILE": self.path("redis", "redis.pid"),
            "LOGFILE": self.path("logs", "redis.log")})
        logf = open(self.path("logs", "redis.log"), "a")
        p = subprocess.Popen([REDIS_SERVER, conf], stdin=subprocess.DEVNULL, stdout=logf,
                             stderr=subprocess.STDOUT, cwd=self.path("redis"),
                             start_new_session=True)
        logf.close()
        self._procs["redis"] = p
        self.pids["redis"] = p.pid
        self.save_state()
        deadline = time.time() + 20
        while time.time() < deadline:
            if p.poll() is not None:
                raise StackError("redis-server exited with %s; see %s"
                                 % (p.returncode, self.path("logs", "redis.log")))
            try:
                if self.redis("PING", timeout=2) == "PONG":
                    return
            except (StackError, redisc.RedisError):
                pass
            time.sleep(0.05)
        raise StackError("Redis did not answer PING on port %d" % self.ports["redis"])

    def redis(self, *args, timeout=10):
        """One command to the stack's Redis (redis.py); returns the typed
        reply: str, int, None or a list. An error reply raises RedisError,
        no answer StackError."""
        try:
            return redisc.command(self.ports["redis"], *args, timeout=timeout)
        except OSError as e:
            raise StackError("redis %s: %s" % (" ".join(map(str, args[:1])), e)) from e

    def drop_places(self, concert, users):
        """Best effort, for a test's clean-up: take users' places (and
        numbers) out of concert's queue, whatever state they are in."""
        users = list(users)
        for i in range(0, len(users), 100):
            chunk = users[i:i + 100]
            for part in redisc.PLACE_PARTS + ("num",):
                try:
                    self.redis("ZREM" if part != "num" else "HDEL",
                               redisc.qkey(concert, part), *chunk)
                except (StackError, redisc.RedisError):
                    pass

    def redis_cli(self, *args, timeout=10):
        """redis() with the reply as text, the way `redis-cli --no-raw`
        prints it ("(integer) 2", "(nil)", ...), for code that reads that."""
        try:
            return redisc.cli_text(self.redis(*args, timeout=timeout)).strip()
        except redisc.RedisError as e:
            raise StackError("redis %s failed: %s" % (" ".join(map(str, args)), e)) from e

    # ------------------------------------------------- schema and demo data
    def _need(self, binary, what):
        if not os.access(binary, os.X_OK):
            raise StackError("%s not found at %s: build it first "
                             "(autoreconf -fi && ./configure && make)" % (what, binary))

    def ctl(self, *args, timeout=600, check=True):
        """Run boxofficectl -c CONF ARGS...; returns (rc, output)."""
        self._need(self.ctl_bin, "boxofficectl")
        return self._run([self.ctl_bin, "-c", self.conf_file] + [str(a) for a in args],
                         timeout=timeout, check=check,
                         log_to=self.path("logs", "ctl.log"))

    def migrate(self):
        return self.ctl("migrate", "--sql-dir", os.path.join(self.srcdir, "sql"))

    def seed(self, **sizes):
        s = dict(self.seed_sizes, **sizes)
        return self.ctl("seed", "--concerts", s["concerts"], "--schedules", s["schedules"],
                        "--seats", s["seats"], "--users", s["users"])

    # ---------------------------------------------------------- workers
    def start_workers(self):
        if any(self.pids.get(k) and alive(self.pids[k]) for k in self._mw_keys()):
            return
        self._need(self.worker_bin, "the boxoffice worker")
        groups = ([("multiwatch-%s" % p, self.pool_socket(p), self.pool_processes[p],
                    ["-p", p]) for p in POOLS] if self.pools else
                  [("multiwatch", self.socket_path, self.processes, [])])
        for key, sock, n, extra in groups:
            if os.path.exists(sock):
                os.unlink(sock)
            logf = open(self.path("logs", "worker.log"), "a")
            argv = [SPAWN_FCGI, "-s", sock, "-M", "0666", "-n", "--",
                    MULTIWATCH, "-f", str(n), "-r", "100000", "-t", "1000",
                    "-s", "TERM", "--", self.worker_bin] + extra + ["-c", self.conf_file]
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf,
                                 stderr=subprocess.STDOUT, cwd=self.dir,
                                 start_new_session=True)
            logf.close()
            self._procs[key] = p
            self.pids[key] = p.pid
        self.save_state()
        self.wait_workers()

    def start_sweeper(self, every=60):
        """Tidy expired holds every `every` seconds, as the systemd timer does
        in production (correctness never depends on it)."""
        pid = self.pids.get("sweeper")
        if pid and alive(pid):
            return
        logf = open(self.path("logs", "sweeper.log"), "a")
        script = 'while :; do "$0" -c "$1" sweep; sleep "$2"; done'
        p = subprocess.Popen(["sh", "-c", script, self.ctl_bin, self.conf_file, str(every)],
                             stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                             cwd=self.dir, start_new_session=True)
        logf.close()
        self._procs["sweeper"] = p
        self.pids["sweeper"] = p.pid
        self.save_state()

    def set_workers(self, n):
        """The pool-size lever: n of the started processes take requests
        (in a divided stack, n split by split_pools)."""
        if self.pools:
            return self.set_pools(split_pools(n))
        if not 1 <= int(n) <= self.processes:
            raise StackError("workers must be 1..%d (processes started)" % self.processes)
        self.workers = int(n)
        self.reload({("http", "workers"): str(n)})

    def set_pools(self, sizes):
        """Resize the pools of a divided stack: {pool: n}, pools not named
        keep their size; each within the processes started for it."""
        if not self.pools:
            raise StackError("this stack runs one undivided pool: ./dev workers N")
        new = dict(self.pools)
        for p, n in sizes.items():
            if not 1 <= int(n) <= self.pool_processes[p]:
                raise StackError("%s workers must be 1..%d (processes started)"
                                 % (p, self.pool_processes[p]))
            new[p] = int(n)
        self.pools = new
        self.workers = sum(new.values())
        self.reload({("pools", p): str(n) for p, n in new.items()})

    def worker_pids(self, pool=None):
        """Live worker processes (of one pool, if named)."""
        keys = ["multiwatch-%s" % pool] if pool and self.pools else self._mw_keys()
        out = []
        for k in keys:
            mw = self.pids.get(k)
            if mw and alive(mw):
                out.extend(p for p in children(mw) if alive(p))
        return sorted(out)

    def wait_workers(self, count=None, exclude=(), timeout=20, stable=0.5):
        """Wait until `count` workers run (none of them in `exclude`) and the set
        stays the same for `stable` seconds (a crash loop never settles)."""
        count = self.processes if count is None else count
        deadline = time.time() + timeout
        last, since = None, None
        while time.time() < deadline:
            for k in self._mw_keys():
                mw = self.pids.get(k)
                if not mw or not alive(mw):
                    raise StackError("spawn-fcgi/multiwatch exited; see %s"
                                     % self.path("logs", "worker.log"))
            pids = self.worker_pids()
            ok = (len(pids) == count and not set(pids) & set(exclude)
                  and all(os.path.exists(self.pool_socket(p)) for p in POOLS))
            if ok and pids == last:
                if time.time() - since >= stable:
                    return pids
            elif ok:
                last, since = pids, time.time()
            else:
                last = None
            time.sleep(0.05)
        raise StackError("workers did not settle (want %d, have %s); see %s"
                         % (count, self.worker_pids(), self.path("logs", "worker.log")))

    def reload(self, overrides=None, sig=signal.SIGHUP, check=True):
        """Rewrite boxoffice.conf (with more overrides) and signal every worker."""
        self.write_config(overrides, check)
        self.save_state()
        pids = self.worker_pids()
        for p in pids:
            send_signal(p, sig)
        return pids

    def stop_workers(self):
        for k in self._mw_keys():
            terminate(self.pids.get(k), signal.SIGTERM, timeout=10)
            self.pids.pop(k, None)
            self._procs.pop(k, None)

    # ------------------------------------------------------------ nginx
    def render_nginx(self, prefix=None, http_port=None, rate_limits=None, tag="",
                     sockets=None):
        """Render nginx.conf and the site under prefix; sockets ({pool:
        path}) overrides the stack's own for the pools' upstreams."""
        prefix = prefix or self.path("nginx")
        sockets = dict({p: self.pool_socket(p) for p in POOLS}, **(sockets or {}))
        for d in ("", "tmp"):
            os.makedirs(os.path.join(prefix, d), exist_ok=True)
        site = os.path.join(prefix, "boxoffice.conf")
        render_file(os.path.join(self.srcdir, "conf", "nginx", "boxoffice.conf"), site, {
            "LISTEN": "127.0.0.1:%d" % (http_port or self.ports["http"]),
            "QUEUE_SOCKET": sockets["queue"],
            "SIGNIN_SOCKET": sockets["signin"],
            "BOOKING_SOCKET": sockets["booking"],
            "WWW_ROOT": os.path.join(self.srcdir, "www"),
            "LOG_DIR": self.path("logs"),
            "CACHE_DIR": os.path.join(prefix, "cache"),
            "RATE_LIMITS": "on" if (self.rate_limits if rate_limits is None
                                    else rate_limits) else "off"})
        if tag:
            # a second instance logs to its own files
            with open(site) as f:
                text = f.read()
            text = text.replace("boxoffice-access.log", "boxoffice-access%s.log" % tag)
            text = text.replace("boxoffice-error.log", "boxoffice-error%s.log" % tag)
            with open(site, "w") as f:
                f.write(text)
        main = os.path.join(prefix, "nginx.conf")
        user_line = "user root root;" if is_root() else ""
        with open(os.path.join(self.srcdir, "conf", "nginx", "nginx.conf")) as f:
            text = f.read()
        text = render_text(text, {"USER_LINE": user_line,
                                  "WORKER_PROCESSES": self.nginx_workers,
                                  "PREFIX": prefix, "LOG_DIR": self.path("logs"),
                                  "SITE_CONF": site}, name="nginx.conf")
        if tag:
            text = text.replace("nginx-error.log", "nginx-error%s.log" % tag)
            text = text.replace("nginx-access.log", "nginx-access%s.log" % tag)
        with open(main, "w") as f:
            f.write(text)
        return prefix, main

    def start_nginx(self, prefix=None, http_port=None, rate_limits=None, tag="",
                    key="nginx", sockets=None):
        if self.pids.get(key) and alive(self.pids[key]):
            return self.pids[key]
        prefix, main = self.render_nginx(prefix, http_port, rate_limits, tag, sockets)
        port = http_port or self.ports["http"]
        self._run([NGINX, "-q", "-t", "-p", prefix + "/", "-c", main],
                  log_to=self.path("logs", "nginx-stderr.log"))
        logf = open(self.path("logs", "nginx-stderr.log"), "a")
        p = subprocess.Popen([NGINX, "-p", prefix + "/", "-c", main],
                             stdin=subprocess.DEVNULL, stdout=logf,
                             stderr=subprocess.STDOUT, cwd=self.dir, start_new_session=True)
        logf.close()
        self._procs[key] = p
        self.pids[key] = p.pid
        self.save_state()
        deadline = time.time() + 20
        while time.time() < deadline:
            if p.poll() is not None:
                raise StackError("nginx exited with %s; see %s" % (
                    p.returncode, self.path("logs", "nginx-error%s.log" % tag)))
            if port_in_use(port):
                return p.pid
            time.sleep(0.05)
        raise StackError("nginx does not listen on port %d" % port)

    # --------------------------------------------------------------- http
    def http(self, method, path, body=None, headers=None, timeout=15, port=None):
        """One request through nginx (http.request): (status, headers, body)
        with lower-case header names, body parsed when JSON, else bytes."""
        return httpc.request(port or self.ports["http"], method, path, body=body,
                             headers=headers, timeout=timeout)

    # -------------------------------------------------------- credentials
    def user_token(self, user, seconds=3600):
        """An operator's user token (kind u) of user (a UUID), signed with
        the stack's current key as `boxofficectl token USER SECONDS` signs
        it, without a process per token."""
        path = self.overrides.get(("token", "key_file"))
        with open(path or self.key_file, "rb") as f:
            key = f.read()
        return tokens.sign(key, "u", user, exp=int(time.time()) + seconds)

    def as_user(self, user, headers=None):
        """headers (a copy) with user's credential: an operator's user token."""
        out = dict(headers or {})
        out["Authorization"] = "Bearer " + self.user_token(user)
        return out

    def sign_in(self, email, password=DEMO_PASSWORD):
        """A session token for email's account (POST /api/sessions; an
        Argon2 check on the server, so for a few users, not thousands).
        A 503 BUSY (every hashing place taken) is retried after its
        Retry-After, as a client should."""
        for _ in range(20):
            st, hdr, b = self.http("POST", "/api/sessions",
                                   body={"email": email, "password": password})
            if st != 503 or not isinstance(b, dict) or \
                    b.get("error", {}).get("code") != "BUSY":
                break
            time.sleep(float(hdr.get("retry-after", "1")))
        if st != 201 or not isinstance(b, dict) or "token" not in b:
            raise StackError("sign-in of %s: %d %r" % (email, st, b))
        return b["token"]

    def join(self, concert, user, headers=None, **kw):
        """POST /api/queues/token: user (a UUID) joins concert's queue with
        their own credential (http()'s answer)."""
        return self.http("POST", "/api/queues/token", body={"concertId": concert},
                         headers=self.as_user(user, headers), **kw)

    def wait_http(self, path="/api/ping", status=200, timeout=20):
        return httpc.wait_http(self.ports["http"], path, status, timeout)

    def wait_healthy(self, timeout=30):
        """Wait until /api/health says ok with everything up."""
        return httpc.wait_healthy(self.ports["http"], timeout)

    # ------------------------------------------------- one server at a time
    def server_pid(self, which):
        if which in ("primary", "replica"):
            return self.pg_pid(which)
        pid = self.pids.get(which)
        return pid if pid and alive(pid) else None

    def stop_server(self, which, mode="fast"):
        """Stop primary, replica or redis (pg_ctl stop -m fast / SIGTERM)."""
        if which in ("primary", "replica"):
            pid = self.pg_pid(which)
            if pid:
                for p in process_tree(pid):
                    send_signal(p, signal.SIGCONT)
                self._pg_ctl(which, "stop", mode=mode, check=False, timeout=30)
                if self.pg_pid(which):
                    terminate(pid, signal.SIGQUIT, timeout=5, group=False)
        elif which == "redis":
            terminate(self.pids.get("redis"), signal.SIGTERM, timeout=15, group=False)
            self.pids.pop("redis", None)
            self._procs.pop("redis", None)
            self.save_state()
        else:
            raise ValueError(which)

    def start_server(self, which):
        if which in ("primary", "replica"):
            self.start_pg(which)
        elif which == "redis":
            self.start_redis()
        else:
            raise ValueError(which)

    # ------------------------------------------------------- start / stop
    def running(self):
        """{component: bool}"""
        res = {"primary": bool(self.pg_pid("primary")),
               "redis": bool(self.pids.get("redis") and alive(self.pids["redis"])),
               "workers": bool(self.worker_pids()),
               "nginx": bool(self.pids.get("nginx") and alive(self.pids["nginx"]))}
        if self.with_replica:
            res["replica"] = bool(self.pg_pid("replica"))
        return res

    def start(self, migrate=True, seed=True, check_health=True):
        """Bring the whole stack up. On any failure everything started is
        stopped again and the error is raised."""
        t0 = time.time()
        try:
            self._start(migrate, seed, check_health)
        except BaseException:
            self.log("start failed; stopping what was started")
            try:
                self.stop()
            except Exception as e:  # keep the original error
                self.log("stop after failed start: %s" % e)
            raise
        self.log("stack up in %.1fs: %s" % (time.time() - t0, self.dir))
        return self

    def _start(self, migrate, seed, check_health):
        self._pick_ports()
        self._prepare_dirs()
        self._write_keys()
        self.save_state()
        fresh = self._pg_initdb()
        self.start_pg("primary")
        self._pg_roles()
        if self.with_replica:
            self._make_replica()
            self.start_pg("replica")
            self.wait_streaming()
        self.start_redis()
        self.write_config()
        self.save_state()
        marker = self.path("pg", ".seeded")
        if migrate:
            self.log("migrating the schema")
            self.migrate()
        if seed and migrate and (fresh or not os.path.exists(marker)):
            self.log("loading demo data: %s" % ", ".join(
                "%s=%s" % kv for kv in sorted(self.seed_sizes.items())))
            self.seed()
            with open(marker, "w") as f:
                json.dump(self.seed_sizes, f)
        self.start_workers()
        self.start_nginx()
        if self.sweeper:
            self.start_sweeper()
        self.wait_http("/api/ping", 200)
        if check_health and self.with_replica:
            self.wait_healthy()

    def stop(self):
        """Stop everything this stack started (safe to call more than once,
        from another process too, and after a partial start)."""
        errors = []
        steps = [
            lambda: terminate(self.pids.pop("sweeper", None), signal.SIGTERM, timeout=5),
            lambda: terminate(self.pids.get("nginx"), signal.SIGTERM, timeout=10),
            self.stop_workers,
            lambda: self.stop_server("redis"),
        ]
        if os.path.isdir(self.pg_data("replica")):
            steps.append(lambda: self.stop_server("replica"))
        steps.append(lambda: self.stop_server("primary"))
        for step in steps:
            try:
                step()
            except Exception as e:
                errors.append(e)
        self.pids = {}
        for p in self._procs.values():
            try:
                p.wait(timeout=1)
            except Exception:
                pass
        self._procs = {}
        if os.path.isdir(self.dir):
            try:
                self.save_state()
            except OSError:
                pass
        left = self.leftover_processes()
        for pid in left:
            send_signal(pid, signal.SIGCONT)
            send_signal(pid, signal.SIGKILL)
        if left:
            wait_dead(left, 5)
        if errors:
            raise StackError("errors while stopping: %s" % "; ".join(map(str, errors)))

    def leftover_processes(self):
        """Processes whose command line names this stack's directory."""
        me = os.getpid()
        needle = self.dir + "/"
        out = []
        for name in os.listdir("/proc"):
            if not name.isdigit() or int(name) == me:
                continue
            pid = int(name)
            if needle in cmdline(pid) + " " and alive(pid):
                out.append(pid)
        return out

    # ----------------------------------------------------------- reports
    def log_files(self):
        names = ["nginx-error.log", "boxoffice-error.log", "worker.log", "access.log",
                 "postgresql-primary.log", "postgresql-replica.log", "redis.log", "ctl.log",
                 "nginx-stderr.log"]
        return [self.path("logs", n) for n in names]

    def tail_logs(self, lines=30):
        out = []
        for f in self.log_files():
            try:
                with open(f, "rb") as fh:
                    fh.seek(0, 2)
                    size = fh.tell()
                    fh.seek(max(0, size - 200 * lines))
                    data = fh.read().decode("utf-8", "replace").splitlines()[-lines:]
            except OSError:
                continue
            if data:
                out.append("==> %s <==" % f)
                out.extend(data)
        return "\n".join(out)

    def urls(self):
        b = self.base_url
        return ["site     %s/" % b, "API      %s/api/health" % b,
                "ping     %s/api/ping" % b, "metrics  %s/metrics" % b]

    def status_lines(self):
        run = self.running()
        lines = []
        lines.append("nginx     %-5s http://127.0.0.1:%d/  pid %s" % (
            "up" if run["nginx"] else "down", self.ports["http"], self.pids.get("nginx", "-")))
        wp = self.worker_pids()
        if self.pools:
            for p in POOLS:
                pp = self.worker_pids(p)
                lines.append("%-9s %-5s %d of %d take requests  multiwatch pid %s  socket %s" % (
                    p, "up" if pp else "down", self.pools[p], len(pp),
                    self.pids.get("multiwatch-%s" % p, "-"), self.pool_socket(p)))
        else:
            lines.append("workers   %-5s %d of %d  multiwatch pid %s  socket %s" % (
                "up" if wp else "down", len(wp), self.workers, self.pids.get("multiwatch", "-"),
                self.socket_path))
        lines.append("primary   %-5s 127.0.0.1:%d  pid %s" % (
            "up" if run["primary"] else "down", self.ports["primary"],
            self.pg_pid("primary") or "-"))
        if self.with_replica:
            state = None
            if run["primary"]:
                try:
                    state = self.replication_state()
                except StackError:
                    pass
            lines.append("replica   %-5s 127.0.0.1:%d  pid %s  replication %s" % (
                "up" if run.get("replica") else "down", self.ports["replica"],
                self.pg_pid("replica") or "-", state or "-"))
        lines.append("redis     %-5s 127.0.0.1:%d  pid %s" % (
            "up" if run["redis"] else "down", self.ports["redis"],
            self.pids.get("redis", "-")))
        return lines



# --------------------------------------------------------------- lighttpd

def render_lighttpd(directory, srcdir=None, socket_path=None, port=8080):
    """Render conf/lighttpd/boxoffice.conf into directory/lighttpd/; returns
    its path. lighttpd drops to its user before opening its logs, so as root
    that directory (logs, pid, uploads) belongs to www-data."""
    import pwd
    srcdir = os.path.abspath(srcdir or DEFAULT_SRCDIR)
    directory = os.path.abspath(directory)
    state = os.path.join(directory, "lighttpd")
    os.makedirs(state, exist_ok=True)
    if is_root():
        user = "www-data"
        pw = pwd.getpwnam(user)
        os.chown(state, pw.pw_uid, pw.pw_gid)
    else:
        user = pwd.getpwuid(os.getuid()).pw_name
    os.chmod(state, 0o755)
    return render_file(os.path.join(srcdir, "conf", "lighttpd", "boxoffice.conf"),
                       os.path.join(state, "lighttpd.conf"), {
                           "BIND": "127.0.0.1", "PORT": port,
                           "SOCKET": socket_path or os.path.join(directory, "run",
                                                                 "boxoffice.sock"),
                           "WWW_ROOT": os.path.join(srcdir, "www"),
                           "LOG_DIR": state, "STATE_DIR": state, "USER": user})


def lighttpd_check(directory, srcdir=None):
    """`lighttpd -tt -f` on the rendered config: returns (ok, output)."""
    conf = render_lighttpd(directory, srcdir)
    res = subprocess.run([LIGHTTPD, "-tt", "-f", conf], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, timeout=30)
    return res.returncode == 0, res.stdout.decode("utf-8", "replace")


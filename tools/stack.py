#!/usr/bin/env python3
"""Start and stop a complete local boxoffice stack in one directory.

Used by `./dev up` (directory ./var, fixed ports) and by the integration
tests (a fresh temporary directory, free loopback ports). Python 3 standard
library only.

The stack: a PostgreSQL 15 primary, a streaming replica made with
pg_basebackup, Redis, the boxoffice FastCGI workers (spawn-fcgi +
multiwatch) and nginx, all bound to 127.0.0.1, everything they write kept
inside the stack directory:

    DIR/stack.json       ports, pids and paths (read by `down`/`status`)
    DIR/conf/            boxoffice.conf (rendered), token.key, token-old.key
    DIR/pg/primary       PostgreSQL data directories (owned by `postgres`
    DIR/pg/replica         when run as root; sockets live in DIR/pg)
    DIR/redis/           redis.conf, AOF and RDB files
    DIR/nginx/           nginx.conf, boxoffice.conf (site), temp dirs, pid
    DIR/run/             boxoffice.sock (the workers' FastCGI socket)
    DIR/logs/            every log: access.log (workers), worker.log,
                         nginx-*.log, boxoffice-*.log, postgresql-*.log,
                         redis.log, ctl.log

Command line:

    stack.py up      --dir DIR [--http-port P] [--pg-port P] [--replica-port P]
                     [--redis-port P] [--workers N] [--seed C,S,N,U]
                     [--set section.key=value ...] [--rate-limits on|off]
    stack.py down    --dir DIR
    stack.py status  --dir DIR
    stack.py reload  --dir DIR [--set section.key=value ...]
    stack.py psql    --dir DIR [-- psql args]
    stack.py logs    --dir DIR [--lines N] [--follow]
    stack.py lighttpd-check --dir DIR     render and `lighttpd -tt` the config

A port of 0 means "pick a free one".
"""

import argparse
import errno
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time

PG_BIN = os.environ.get("BOXOFFICE_PG_BIN", "/usr/lib/postgresql/15/bin")
NGINX = os.environ.get("BOXOFFICE_NGINX", "/usr/sbin/nginx")
LIGHTTPD = os.environ.get("BOXOFFICE_LIGHTTPD", "/usr/sbin/lighttpd")
REDIS_SERVER = os.environ.get("BOXOFFICE_REDIS_SERVER", "/usr/bin/redis-server")
REDIS_CLI = os.environ.get("BOXOFFICE_REDIS_CLI", "/usr/bin/redis-cli")
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

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_SRCDIR = os.path.dirname(HERE)


class StackError(Exception):
    """Something in the stack could not be started or reached."""


def _is_root():
    return os.geteuid() == 0


def _log_default(msg):
    print(msg, file=sys.stderr, flush=True)


def free_port(exclude=()):
    """A TCP port on 127.0.0.1 that is free right now (bind to port 0)."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in exclude:
            return port
    raise StackError("no free port found")


def port_in_use(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        try:
            s.connect(("127.0.0.1", port))
            return True
        except OSError:
            return False


def wait_bindable(port, timeout=75, log=None):
    """Wait until a server could bind 127.0.0.1:port (with SO_REUSEADDR, as
    servers do). A fixed port inside the kernel's ephemeral range can be held
    for a minute by a client connection in TIME_WAIT; a listener is an error."""
    deadline = time.time() + timeout
    told = False
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
                return
            except OSError as e:
                if e.errno != errno.EADDRINUSE:
                    raise
        if port_in_use(port):
            raise StackError("port %d is already in use on 127.0.0.1" % port)
        if time.time() > deadline:
            raise StackError("port %d stays busy (closed connections in TIME_WAIT)" % port)
        if not told and log:
            log("port %d is held by closed connections (TIME_WAIT); waiting" % port)
            told = True
        time.sleep(1)


def render_text(text, mapping, name="template"):
    """Substitute @KEY@ placeholders; every upper-case placeholder must be known."""
    for key, value in mapping.items():
        text = text.replace("@%s@" % key, str(value))
    left = sorted(set(re.findall(r"@[A-Z][A-Z0-9_]*@", text)))
    if left:
        raise StackError("%s: unknown placeholders %s" % (name, ", ".join(left)))
    return text


def render_file(src, dst, mapping, mode=0o644):
    with open(src) as f:
        text = render_text(f.read(), mapping, name=src)
    tmp = dst + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, dst)
    return dst


def render_ini(template_text, values):
    """Render boxoffice.conf: keep every line and comment of the template,
    replace `key = value` lines for the (section, key) pairs in `values`.

    A value may be a list (the key repeated, e.g. several replica_dsn), or
    None (the key removed). Keys absent from the template are appended to
    their section (or to a new section at the end).
    """
    values = dict(values)
    out, section, done = [], None, set()

    def flush_missing(sec):
        for (s, k), v in list(values.items()):
            if s == sec and (s, k) not in done:
                done.add((s, k))
                for item in ([] if v is None else v if isinstance(v, list) else [v]):
                    out.append("%s = %s" % (k, item))

    for line in template_text.splitlines():
        m = re.match(r"^\s*\[([^\]]+)\]\s*$", line)
        if m:
            if section is not None:
                flush_missing(section)
            section = m.group(1).strip()
            out.append(line)
            continue
        m = re.match(r"^\s*([A-Za-z0-9_.-]+)\s*=", line)
        if m and section is not None and (section, m.group(1)) in values:
            key = m.group(1)
            if (section, key) in done:
                continue            # later repeats of an overridden key
            done.add((section, key))
            v = values[(section, key)]
            for item in ([] if v is None else v if isinstance(v, list) else [v]):
                out.append("%s = %s" % (key, item))
            continue
        out.append(line)
    if section is not None:
        flush_missing(section)
    rest = sorted({s for (s, k) in values if (s, k) not in done})
    for sec in rest:
        out.append("")
        out.append("[%s]" % sec)
        flush_missing(sec)
    return "\n".join(out) + "\n"


def parse_overrides(items):
    """['queue.max_active=5', ...] -> {('queue','max_active'): '5'}"""
    res = {}
    for item in items or ():
        if "=" not in item or "." not in item.split("=", 1)[0]:
            raise StackError("override %r: expected section.key=value" % item)
        lhs, value = item.split("=", 1)
        sec, key = lhs.split(".", 1)
        res[(sec.strip(), key.strip())] = value.strip()
    return res


# ---------------------------------------------------------------- processes

def _proc_state(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            data = f.read()
        return data[data.rindex(")") + 2:].split()[0]
    except (OSError, ValueError, IndexError):
        return None


def _reap(pid):
    try:
        os.waitpid(pid, os.WNOHANG)
    except (ChildProcessError, OSError):
        pass


def alive(pid):
    """True if pid runs (a zombie or a missing process is not alive)."""
    if not pid:
        return False
    _reap(pid)
    st = _proc_state(pid)
    return st is not None and st not in ("Z", "X")


def children(pid):
    """Direct children of pid."""
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        pass
    kids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                data = f.read()
            ppid = int(data[data.rindex(")") + 2:].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == pid:
            kids.append(int(name))
    return kids


def process_tree(pid):
    """pid and all its descendants."""
    out, unseen = [], [pid]
    while unseen:
        p = unseen.pop()
        if p in out:
            continue
        out.append(p)
        unseen.extend(children(p))
    return out


def _signal(pid, sig):
    try:
        os.kill(pid, sig)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return False


def _wait_dead(pids, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if not any(alive(p) for p in pids):
            return True
        time.sleep(0.05)
    return not any(alive(p) for p in pids)


def terminate(pid, sig=signal.SIGTERM, timeout=10.0, group=True):
    """Stop pid (and its tree / process group): sig, then SIGKILL."""
    if not pid or not alive(pid):
        return
    tree = process_tree(pid)
    for p in tree:
        _signal(p, signal.SIGCONT)
    _signal(pid, sig)
    if _wait_dead([pid], timeout):
        # children of a supervisor may outlive it by a moment
        if _wait_dead(tree, 3):
            return
    if group:
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass
    for p in process_tree(pid) + tree:
        _signal(p, signal.SIGKILL)
    _wait_dead(tree, 5)


def _cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""


# -------------------------------------------------------------------- stack

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
                 log=_log_default):
        self.dir = os.path.abspath(directory)
        self.srcdir = os.path.abspath(srcdir or DEFAULT_SRCDIR)
        self.builddir = os.path.abspath(builddir or self.srcdir)
        self.ports = {"http": int(http_port), "primary": int(pg_port),
                      "replica": int(replica_port), "redis": int(redis_port)}
        self.workers = int(workers)
        # multiwatch starts this many processes; http.workers of them take
        # requests, so the pool can grow and shrink with a reload.
        self.processes = max(int(workers), int(max_workers))
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
        s.ports = {k: int(v) for k, v in st["ports"].items()}
        # after a reboot a recorded pid may belong to someone else now
        s.pids = {k: int(v) for k, v in st.get("pids", {}).items()
                  if v and s._pid_is_ours(k, int(v))}
        s.owner_pid = st.get("owner_pid")
        return s

    def _pid_is_ours(self, key, pid):
        cmd = _cmdline(pid)
        if key == "redis":
            return "redis-server" in cmd and (":%d" % self.ports.get("redis", 0)) in cmd
        return (self.dir + "/") in cmd

    # ------------------------------------------------------ permissions
    def _pg_owner(self):
        """(uid, gid) that runs PostgreSQL, or None when not root."""
        if not _is_root():
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
        if not _is_root():
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
        if _is_root():
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
        }
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
        if not alive(pid) or self.pg_data(which) not in _cmdline(pid):
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
                if self.redis_cli("PING", timeout=2) == "PONG":
                    return
            except (StackError, subprocess.TimeoutExpired):
                pass
            time.sleep(0.05)
        raise StackError("Redis did not answer PING on port %d" % self.ports["redis"])

    def redis_cli(self, *args, timeout=10):
        """redis-cli against the stack's Redis; returns stripped stdout."""
        res = subprocess.run([REDIS_CLI, "-h", "127.0.0.1", "-p", str(self.ports["redis"]),
                              "--no-raw"] + [str(a) for a in args],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
        out = res.stdout.decode("utf-8", "replace").strip()
        if res.returncode != 0 or out.startswith("Could not connect"):
            raise StackError("redis-cli %s failed: %s %s" % (" ".join(map(str, args)), out,
                             res.stderr.decode("utf-8", "replace")))
        # --no-raw quotes strings: "PONG" -> PONG for simple values
        if len(out) >= 2 and out[0] == '"' and out[-1] == '"' and "\n" not in out:
            out = out[1:-1]
        return out

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
        mw = self.pids.get("multiwatch")
        if mw and alive(mw):
            return
        self._need(self.worker_bin, "the boxoffice worker")
        if os.path.exists(self.socket_path):
            os.unlink(self.socket_path)
        logf = open(self.path("logs", "worker.log"), "a")
        argv = [SPAWN_FCGI, "-s", self.socket_path, "-M", "0666", "-n", "--",
                MULTIWATCH, "-f", str(self.processes), "-r", "100000", "-t", "1000",
                "-s", "TERM", "--", self.worker_bin, "-c", self.conf_file]
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf,
                             stderr=subprocess.STDOUT, cwd=self.dir, start_new_session=True)
        logf.close()
        self._procs["multiwatch"] = p
        self.pids["multiwatch"] = p.pid
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
        """The pool-size lever: n of the started processes take requests."""
        if not 1 <= int(n) <= self.processes:
            raise StackError("workers must be 1..%d (processes started)" % self.processes)
        self.workers = int(n)
        self.reload({("http", "workers"): str(n)})

    def worker_pids(self):
        mw = self.pids.get("multiwatch")
        if not mw or not alive(mw):
            return []
        return sorted(p for p in children(mw) if alive(p))

    def wait_workers(self, count=None, exclude=(), timeout=20, stable=0.5):
        """Wait until `count` workers run (none of them in `exclude`) and the set
        stays the same for `stable` seconds (a crash loop never settles)."""
        count = self.processes if count is None else count
        deadline = time.time() + timeout
        last, since = None, None
        while time.time() < deadline:
            mw = self.pids.get("multiwatch")
            if not mw or not alive(mw):
                raise StackError("spawn-fcgi/multiwatch exited; see %s"
                                 % self.path("logs", "worker.log"))
            pids = self.worker_pids()
            ok = (len(pids) == count and not set(pids) & set(exclude)
                  and os.path.exists(self.socket_path))
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

    def kill_worker(self, pid=None, sig=signal.SIGKILL):
        """Send sig (default SIGKILL) to one worker; returns its pid."""
        pids = self.worker_pids()
        if not pids:
            raise StackError("no workers running")
        pid = pid or pids[0]
        os.kill(pid, sig)
        return pid

    def wait_respawn(self, killed, timeout=20):
        killed = [killed] if isinstance(killed, int) else list(killed)
        return self.wait_workers(exclude=killed, timeout=timeout, stable=0.2)

    def reload(self, overrides=None, sig=signal.SIGHUP, check=True):
        """Rewrite boxoffice.conf (with more overrides) and signal every worker."""
        self.write_config(overrides, check)
        self.save_state()
        pids = self.worker_pids()
        for p in pids:
            _signal(p, sig)
        return pids

    def stop_workers(self):
        terminate(self.pids.get("multiwatch"), signal.SIGTERM, timeout=10)
        self.pids.pop("multiwatch", None)
        self._procs.pop("multiwatch", None)

    # ------------------------------------------------------------ nginx
    def render_nginx(self, prefix=None, http_port=None, rate_limits=None, tag=""):
        prefix = prefix or self.path("nginx")
        for d in ("", "tmp"):
            os.makedirs(os.path.join(prefix, d), exist_ok=True)
        site = os.path.join(prefix, "boxoffice.conf")
        render_file(os.path.join(self.srcdir, "conf", "nginx", "boxoffice.conf"), site, {
            "LISTEN": "127.0.0.1:%d" % (http_port or self.ports["http"]),
            "SOCKET": self.socket_path,
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
        user_line = "user root root;" if _is_root() else ""
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
                    key="nginx"):
        if self.pids.get(key) and alive(self.pids[key]):
            return self.pids[key]
        prefix, main = self.render_nginx(prefix, http_port, rate_limits, tag)
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

    def start_extra_nginx(self, rate_limits=True, name="ratelimited"):
        """A second nginx on a free port in front of the same workers (e.g. with
        the production rate limits on). Returns its port; stopped by stop()."""
        port = free_port(exclude=set(self.ports.values()))
        key = "nginx-" + name
        self.start_nginx(prefix=self.path("nginx-" + name), http_port=port,
                         rate_limits=rate_limits, tag="-" + name, key=key)
        self.ports[key] = port
        self.save_state()
        return port

    def stop_extra_nginx(self, name="ratelimited"):
        key = "nginx-" + name
        terminate(self.pids.pop(key, None), signal.SIGTERM, timeout=10)
        self.ports.pop(key, None)
        self._procs.pop(key, None)
        self.save_state()

    def start_lighttpd(self):
        """lighttpd (conf/lighttpd/boxoffice.conf) on a free port in front of
        the same workers; returns its port. Stopped by stop()."""
        if self.pids.get("lighttpd") and alive(self.pids["lighttpd"]):
            return self.ports["lighttpd"]
        port = free_port(exclude=set(self.ports.values()))
        conf = render_lighttpd(self.dir, self.srcdir, self.socket_path, port)
        self._run([LIGHTTPD, "-tt", "-f", conf])
        logf = open(self.path("logs", "lighttpd-stderr.log"), "a")
        p = subprocess.Popen([LIGHTTPD, "-D", "-f", conf], stdin=subprocess.DEVNULL,
                             stdout=logf, stderr=subprocess.STDOUT, cwd=self.dir,
                             start_new_session=True)
        logf.close()
        self._procs["lighttpd"] = p
        self.pids["lighttpd"] = p.pid
        self.ports["lighttpd"] = port
        self.save_state()
        deadline = time.time() + 20
        while time.time() < deadline:
            if p.poll() is not None:
                raise StackError("lighttpd exited with %s; see %s" % (
                    p.returncode, self.path("lighttpd", "lighttpd-error.log")))
            if port_in_use(port):
                return port
            time.sleep(0.05)
        raise StackError("lighttpd does not listen on port %d" % port)

    def stop_lighttpd(self):
        terminate(self.pids.pop("lighttpd", None), signal.SIGTERM, timeout=10)
        self.ports.pop("lighttpd", None)
        self._procs.pop("lighttpd", None)
        self.save_state()

    # --------------------------------------------------------------- http
    def http(self, method, path, body=None, headers=None, timeout=15, port=None):
        """One request through nginx. Returns (status, headers, body) where
        headers has lower-case names and body is parsed JSON when the answer
        is JSON, else bytes. A dict/list body is sent as JSON."""
        hdrs = dict(headers or {})
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
            if not any(k.lower() == "content-type" for k in hdrs):
                hdrs["Content-Type"] = "application/json"
        if isinstance(body, str):
            body = body.encode("utf-8")
        conn = http.client.HTTPConnection("127.0.0.1", port or self.ports["http"],
                                          timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=hdrs)
            resp = conn.getresponse()
            data = resp.read()
            rh = {k.lower(): v for k, v in resp.getheaders()}
            status = resp.status
        finally:
            conn.close()
        if "json" in rh.get("content-type", ""):
            try:
                return status, rh, json.loads(data.decode("utf-8"))
            except (ValueError, UnicodeDecodeError):
                pass
        return status, rh, data

    def wait_http(self, path="/api/ping", status=200, timeout=20):
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            try:
                last = self.http("GET", path, timeout=5)
                if last[0] == status:
                    return last
            except OSError as e:
                last = e
            time.sleep(0.1)
        raise StackError("GET %s did not answer %d: %r" % (path, status, last))

    def wait_healthy(self, timeout=30):
        """Wait until /api/health says ok with everything up."""
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            try:
                last = self.http("GET", "/api/health", timeout=5)
                b = last[2]
                if (last[0] == 200 and isinstance(b, dict) and b.get("status") == "ok"):
                    return b
            except OSError as e:
                last = e
            time.sleep(0.2)
        raise StackError("health did not become ok: %r" % (last,))

    # -------------------------------------------------- failure drills
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
                    _signal(p, signal.SIGCONT)
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

    def pause_server(self, which):
        """SIGSTOP the server and all its processes (a hung host)."""
        pid = self.server_pid(which)
        if not pid:
            raise StackError("%s is not running" % which)
        tree = process_tree(pid)
        for p in tree:
            _signal(p, signal.SIGSTOP)
        return tree

    def resume_server(self, which):
        pid = self.server_pid(which)
        if pid:
            for p in process_tree(pid):
                _signal(p, signal.SIGCONT)

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
        for key in [k for k in list(self.pids) if k.startswith("nginx-")]:
            try:
                self.stop_extra_nginx(key[len("nginx-"):])
            except Exception as e:
                errors.append(e)
        steps = [
            lambda: terminate(self.pids.pop("sweeper", None), signal.SIGTERM, timeout=5),
            self.stop_lighttpd,
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
            _signal(pid, signal.SIGCONT)
            _signal(pid, signal.SIGKILL)
        if left:
            _wait_dead(left, 5)
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
            if needle in _cmdline(pid) + " " and alive(pid):
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


def reap_orphans(parent_dir, prefix, log=_log_default):
    """Stop stacks under parent_dir/prefix* whose owning runner died (a test
    run killed with SIGKILL cannot tear down); remove their directories."""
    for name in sorted(os.listdir(parent_dir)):
        d = os.path.join(parent_dir, name)
        if not name.startswith(prefix) or not os.path.isfile(os.path.join(d, "stack.json")):
            continue
        try:
            st = Stack.load(d, log=log)
        except (OSError, ValueError, KeyError):
            continue
        if not st.owner_pid or alive(st.owner_pid):
            continue
        log("stopping the orphaned test stack in %s" % d)
        try:
            st.stop()
        except StackError as e:
            log("  %s" % e)
        shutil.rmtree(d, ignore_errors=True)


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
    if _is_root():
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


# -------------------------------------------------------------------- CLI

def _cli_stack(args, load=True):
    d = os.path.abspath(args.dir)
    if load and os.path.exists(os.path.join(d, "stack.json")):
        return Stack.load(d)
    return None


def main(argv=None):
    ap = argparse.ArgumentParser(prog="stack.py", description=__doc__.split("\n")[0])
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
    wk.add_argument("n", type=int)
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
            st.set_workers(args.n)
            print("%d of %d workers take requests" % (args.n, st.processes))
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
               rate_limits=args.rate_limits == "on", nginx_workers=args.nginx_workers)
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

"""The stack as a test fixture: what tests and drills do to a stack that
a developer's stack never needs.

TestStack is a Stack that also pauses and resumes servers (a hung host),
kills workers and waits for their respawn, and runs extra front ends
(a second nginx with rate limits, lighttpd) in front of the same workers,
and divided worker pools beside the stack's own (start_side_pools).
reap_orphans() stops the stacks of test runs that died without tearing
down (their owner_pid is gone).
"""

import os
import shutil
import signal
import subprocess
import time

from .errors import StackError
from .procs import (alive, children, free_port, port_in_use, process_tree, send_signal,
                    terminate)
from .stack import (LIGHTTPD, MULTIWATCH, POOLS, SPAWN_FCGI, Stack, _log_default,
                    render_lighttpd)


class TestStack(Stack):
    """A Stack with the levers the tests pull. stop() also stops the extra
    front ends."""

    __test__ = False     # not a unittest case, whatever a loader thinks

    def stop(self):
        errors = []
        for key in [k for k in list(self.pids) if k.startswith("nginx-")]:
            try:
                self.stop_extra_nginx(key[len("nginx-"):])
            except Exception as e:
                errors.append(e)
        for name in sorted({k.split("-")[1] for k in self.pids if k.startswith("side-")}):
            try:
                self.stop_side_pools(name)
            except Exception as e:
                errors.append(e)
        try:
            self.stop_lighttpd()
        except Exception as e:
            errors.append(e)
        try:
            super().stop()
        except StackError as e:
            errors.append(e)
        if errors:
            raise StackError("errors while stopping: %s" % "; ".join(map(str, errors)))

    # ----------------------------------------------------- hung servers
    def pause_server(self, which):
        """SIGSTOP the server and all its processes (a hung host)."""
        pid = self.server_pid(which)
        if not pid:
            raise StackError("%s is not running" % which)
        tree = process_tree(pid)
        for p in tree:
            send_signal(p, signal.SIGSTOP)
        return tree

    def resume_server(self, which):
        pid = self.server_pid(which)
        if pid:
            for p in process_tree(pid):
                send_signal(p, signal.SIGCONT)

    # ---------------------------------------------------------- workers
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

    # ------------------------------------------------ extra front ends
    def start_extra_nginx(self, rate_limits=True, name="ratelimited", sockets=None):
        """A second nginx on a free port in front of the same workers (e.g. with
        the production rate limits on), or of other workers' sockets ({pool:
        path}). Returns its port; stopped by stop()."""
        port = free_port(exclude=set(self.ports.values()))
        key = "nginx-" + name
        self.start_nginx(prefix=self.path("nginx-" + name), http_port=port,
                         rate_limits=rate_limits, tag="-" + name, key=key, sockets=sockets)
        self.ports[key] = port
        self.save_state()
        return port

    def stop_extra_nginx(self, name="ratelimited"):
        key = "nginx-" + name
        terminate(self.pids.pop(key, None), signal.SIGTERM, timeout=10)
        self.ports.pop(key, None)
        self._procs.pop(key, None)
        self.save_state()

    # ------------------------------------------------------ side pools
    def side_conf(self, name):
        return self.path(name, "boxoffice.conf")

    def write_side_conf(self, name, sizes, overrides=None):
        """(Re)write the side pools' settings file: the stack's own, with
        the pools' sizes, their own access log and overrides."""
        over = {("pools", p): str(n) for p, n in sizes.items()}
        over[("http", "access_log")] = self.path(name, "access.log")
        over.update(overrides or {})
        path = self.side_conf(name)
        with open(path + ".tmp", "w") as f:
            f.write(self.render_config(over))
        os.chmod(path + ".tmp", 0o600)
        os.replace(path + ".tmp", path)

    def side_pids(self, name, pool=None):
        out = []
        for p in ([pool] if pool else POOLS):
            mw = self.pids.get("side-%s-%s" % (name, p))
            if mw and alive(mw):
                out.extend(c for c in children(mw) if alive(c))
        return sorted(out)

    def reload_side_pools(self, name, sizes, overrides=None):
        """New sizes for the side pools; SIGHUP every one of their workers."""
        self.write_side_conf(name, sizes, overrides)
        for pid in self.side_pids(name):
            send_signal(pid, signal.SIGHUP)

    def start_side_pools(self, sizes, name="pools", overrides=None, nginx=True):
        """Divided workers beside the stack's own undivided ones, on the same
        servers: per pool, sizes[pool] processes (`boxoffice -p POOL`) on a
        socket of its own under DIR/name/, with a settings file of their own
        (so their shared counters and pool slots are theirs), and with nginx
        a second nginx whose three upstreams point at them. Returns
        ({pool: socket}, nginx port or None); stopped by stop()."""
        os.makedirs(self.path(name), exist_ok=True)
        self.write_side_conf(name, sizes, overrides)
        sockets = {p: self.path(name, p + ".sock") for p in POOLS}
        for p in POOLS:
            if os.path.exists(sockets[p]):
                os.unlink(sockets[p])
            logf = open(self.path(name, "worker.log"), "a")
            proc = subprocess.Popen(
                [SPAWN_FCGI, "-s", sockets[p], "-M", "0666", "-n", "--", MULTIWATCH, "-f",
                 str(sizes[p]), "-r", "100000", "-t", "1000", "-s", "TERM", "--",
                 self.worker_bin, "-p", p, "-c", self.side_conf(name)],
                stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                cwd=self.dir, start_new_session=True)
            logf.close()
            self._procs["side-%s-%s" % (name, p)] = proc
            self.pids["side-%s-%s" % (name, p)] = proc.pid
        self.save_state()
        deadline = time.time() + 20
        while not all(os.path.exists(sockets[p]) and len(self.side_pids(name, p)) == sizes[p]
                      for p in POOLS):
            if time.time() > deadline:
                self.stop_side_pools(name)
                raise StackError("side pools %s did not start; see %s"
                                 % (name, self.path(name, "worker.log")))
            time.sleep(0.05)
        port = self.start_extra_nginx(rate_limits=False, name=name, sockets=sockets) \
            if nginx else None
        return sockets, port

    def stop_side_pools(self, name="pools"):
        if ("nginx-" + name) in self.pids:
            self.stop_extra_nginx(name)
        for p in POOLS:
            key = "side-%s-%s" % (name, p)
            terminate(self.pids.pop(key, None), signal.SIGTERM, timeout=10)
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


def reap_orphans(parent_dir, prefix, log=_log_default):
    """Stop stacks under parent_dir/prefix* whose owning runner died (a test
    run killed with SIGKILL cannot tear down); remove their directories."""
    for name in sorted(os.listdir(parent_dir)):
        d = os.path.join(parent_dir, name)
        if not name.startswith(prefix) or not os.path.isfile(os.path.join(d, "stack.json")):
            continue
        try:
            st = TestStack.load(d, log=log)
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

"""Processes and ports: free loopback ports, process trees, stopping a
process and everything it started. Linux (/proc) only."""

import errno
import os
import signal
import socket
import time

from .errors import StackError


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


def proc_state(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            data = f.read()
        return data[data.rindex(")") + 2:].split()[0]
    except (OSError, ValueError, IndexError):
        return None


def reap(pid):
    try:
        os.waitpid(pid, os.WNOHANG)
    except (ChildProcessError, OSError):
        pass


def alive(pid):
    """True if pid runs (a zombie or a missing process is not alive)."""
    if not pid:
        return False
    reap(pid)
    st = proc_state(pid)
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


def send_signal(pid, sig):
    try:
        os.kill(pid, sig)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return False


def wait_dead(pids, timeout):
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
        send_signal(p, signal.SIGCONT)
    send_signal(pid, sig)
    if wait_dead([pid], timeout):
        # children of a supervisor may outlive it by a moment
        if wait_dead(tree, 3):
            return
    if group:
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass
    for p in process_tree(pid) + tree:
        send_signal(p, signal.SIGKILL)
    wait_dead(tree, 5)


def cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""



def is_root():
    return os.geteuid() == 0

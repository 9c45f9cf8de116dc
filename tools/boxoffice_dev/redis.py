"""A small Redis client (RESP2) for the tools and the tests.

    r = Redis(port)                 # one connection, one command at a time
    r("SET", "k", "v")   -> "OK"    # simple string
    r("INCR", "n")       -> 1       # integer
    r("GET", "k")        -> "v"     # bulk string (str; None for nil)
    r("ZRANGE", k, 0, -1, "WITHSCORES") -> ["a", "1", ...]
    r.close()                       # or `with Redis(port) as r:`

An error reply raises RedisError (the connection stays usable); a broken
connection raises ConnectionError. Bulk strings are decoded as UTF-8 (bad
bytes replaced); pass raw=True for bytes.

cli_text(reply) prints a reply the way `redis-cli --no-raw` does, for code
that reads redis-cli's output.
"""

import socket


# A concert's queue (src/keys.c keys_parts[]): every part, and the parts
# that hold a user's place (besides num, the user's number).
QUEUE_PARTS = ("seq", "num", "wait", "claim", "active", "admits", "stats", "tick", "served",
               "pre", "seed", "draw")
PLACE_PARTS = ("wait", "claim", "active")


def qkey(concert, part):
    """The Redis key of one part of concert's queue."""
    return "q:{%d}:%s" % (int(concert), part)


class RedisError(Exception):
    """An error reply (-ERR ...)."""


class Redis:
    def __init__(self, port, host="127.0.0.1", timeout=5.0, raw=False):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.f = self.sock.makefile("rb")
        self.raw = raw

    def close(self):
        try:
            self.f.close()
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __call__(self, *args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            if not isinstance(a, bytes):
                a = str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.sock.sendall(b"".join(out))
        r = self._read()
        if isinstance(r, RedisError):
            raise r
        return r

    def _read(self):
        line = self.f.readline()
        if not line.endswith(b"\r\n"):
            raise ConnectionError("redis closed the connection")
        t, rest = line[:1], line[1:-2]
        if t == b"+":
            return rest.decode()
        if t == b"-":
            return RedisError(rest.decode())
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.f.read(n + 2)[:-2]
            return data if self.raw else data.decode("utf-8", "replace")
        if t == b"*":
            n = int(rest)
            if n < 0:
                return None
            # an error inside an array (EXEC) is returned in its place
            return [self._read() for _ in range(n)]
        raise ConnectionError("unexpected Redis reply %r" % line)


def command(port, *args, timeout=10.0):
    """One command on a fresh connection; returns its reply."""
    with Redis(port, timeout=timeout) as r:
        return r(*args)


def pairs(flat):
    """[a, 1, b, 2] (HGETALL, WITHSCORES) -> [(a, 1), (b, 2)]"""
    return [(flat[i], flat[i + 1]) for i in range(0, len(flat) - 1, 2)]


def _quote(s):
    """A string as redis-cli --no-raw shows it (sdscatrepr)."""
    if isinstance(s, str):
        s = s.encode("utf-8")
    out = ['"']
    for b in s:
        c = chr(b)
        if c in '\\"':
            out.append("\\" + c)
        elif c == "\n":
            out.append("\\n")
        elif c == "\r":
            out.append("\\r")
        elif c == "\t":
            out.append("\\t")
        elif c == "\a":
            out.append("\\a")
        elif c == "\b":
            out.append("\\b")
        elif 32 <= b < 127:
            out.append(c)
        else:
            out.append("\\x%02x" % b)
    out.append('"')
    return "".join(out)


def cli_text(reply, indent=0):
    """reply as `redis-cli --no-raw` prints it, e.g. "(integer) 2",
    "(nil)", "1) \"a\"\\n2) \"b\"". A lone string or status comes without
    quotes (as the old redis_cli helper returned it)."""
    def fmt(r, ind, top):
        if r is None:
            return "(nil)"
        if isinstance(r, int):
            return "(integer) %d" % r
        if isinstance(r, RedisError):
            return "(error) %s" % r
        if isinstance(r, list):
            if not r:
                return "(empty array)"
            width = len(str(len(r)))
            lines = []
            for i, x in enumerate(r):
                prefix = "%*d) " % (width, i + 1)
                sub = fmt(x, ind + len(prefix), False)
                first, *rest = sub.split("\n")
                lines.append(prefix + first)
                lines.extend(" " * len(prefix) + x for x in rest)
            return "\n".join(lines)
        return _quote(r)
    text = fmt(reply, indent, True)
    if isinstance(reply, (str, bytes)) and "\n" not in text:
        if text.startswith('"') and text.endswith('"') and len(text) >= 2:
            text = text[1:-1]
    return text

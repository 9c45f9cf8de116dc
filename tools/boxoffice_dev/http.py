"""HTTP client of the toolkit: JSON in and out, loopback only.

    request(port, "GET", "/api/ping")     -> (status, headers, body); raises
                                             OSError / HTTPException
    probe(port, "GET", "/api/ping")       -> Answer (with its latency); never
                                             raises, status "timeout"/"error"
    Session(port).request(...)            -> like request(), over one
                                             keep-alive connection
    wait_http(port, ...), wait_healthy(port, ...)

Headers come back with lower-case names; a JSON answer's body is parsed,
any other body is bytes. A dict or list body is sent as JSON.
"""

import http.client
import json
import time

from .errors import StackError

HOST = "127.0.0.1"


def encode_body(body, headers):
    """(bytes or None, headers): a dict/list becomes JSON with its
    Content-Type (unless headers name one)."""
    hdrs = dict(headers or {})
    if body is not None and not isinstance(body, (bytes, str)):
        body = json.dumps(body)
        if not any(k.lower() == "content-type" for k in hdrs):
            hdrs["Content-Type"] = "application/json"
    if isinstance(body, str):
        body = body.encode("utf-8")
    return body, hdrs


def decode_body(headers, data):
    """The parsed JSON when the answer says JSON and is, else the bytes."""
    if "json" in headers.get("content-type", ""):
        try:
            return json.loads(data.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            pass
    return data


def _exchange(conn, method, path, body, hdrs):
    conn.request(method, path, body=body, headers=hdrs)
    resp = conn.getresponse()
    data = resp.read()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data


def request(port, method, path, body=None, headers=None, timeout=15, host=HOST):
    """One request on a fresh connection: (status, headers, body)."""
    body, hdrs = encode_body(body, headers)
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        status, rh, data = _exchange(conn, method, path, body, hdrs)
    finally:
        conn.close()
    return status, rh, decode_body(rh, data)


class Answer:
    """One answer of probe(): status is an int, or "timeout" or "error"
    (then error says what happened); raw is the body's bytes."""
    __slots__ = ("status", "headers", "body", "raw", "latency", "error")

    def __init__(self, status, headers, body, raw, latency, error=None):
        self.status, self.headers, self.body = status, headers, body
        self.raw, self.latency, self.error = raw, latency, error

    @property
    def ok(self):
        return isinstance(self.status, int) and 200 <= self.status < 300

    def code(self):
        """The JSON error code, if any."""
        if isinstance(self.body, dict) and isinstance(self.body.get("error"), dict):
            return self.body["error"].get("code")
        return None

    def __repr__(self):
        b = self.body if not isinstance(self.body, bytes) else self.body[:120]
        return "<%s %r %.0fms>" % (self.status, b, self.latency * 1000)


def probe(port, method, path, body=None, headers=None, timeout=2.0, host=HOST):
    """One request on a fresh connection (Connection: close), timed. Never
    raises for network trouble: the Answer's status is then "timeout" or
    "error"."""
    hdrs = {"Connection": "close"}
    hdrs.update(headers or {})
    body, hdrs = encode_body(body, hdrs)
    t0 = time.monotonic()
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        status, rh, raw = _exchange(conn, method, path, body, hdrs)
    except (TimeoutError, OSError, http.client.HTTPException) as e:
        lat = time.monotonic() - t0
        kind = "timeout" if "timed out" in str(e) or isinstance(e, TimeoutError) else "error"
        return Answer(kind, {}, None, b"", lat, error=repr(e))
    finally:
        conn.close()
    return Answer(status, rh, decode_body(rh, raw), raw, time.monotonic() - t0)


class Session:
    """One keep-alive connection for one thread (polling thousands of times
    over fresh connections would only measure connect()). A GET or HEAD is
    sent again once when the server had closed the idle connection."""

    def __init__(self, port, timeout=15, host=HOST):
        self.port, self.timeout, self.host, self.conn = port, timeout, host, None

    def request(self, method, path, body=None, headers=None):
        body, hdrs = encode_body(body, headers)
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port,
                                                       timeout=self.timeout)
            try:
                status, rh, data = _exchange(self.conn, method, path, body, hdrs)
                break
            except (http.client.RemoteDisconnected, ConnectionResetError,
                    BrokenPipeError, http.client.CannotSendRequest):
                self.conn.close()
                self.conn = None
                if attempt or method not in ("GET", "HEAD"):
                    raise
        return status, rh, decode_body(rh, data)

    def get(self, path, token=None):
        """GET with an optional bearer token: (status, body)."""
        hdrs = {"Authorization": "Bearer " + token} if token else {}
        status, _, body = self.request("GET", path, headers=hdrs)
        return status, body

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def wait_http(port, path="/api/ping", status=200, timeout=20):
    """Poll GET path until it answers status; returns that answer."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            last = request(port, "GET", path, timeout=5)
            if last[0] == status:
                return last
        except OSError as e:
            last = e
        time.sleep(0.1)
    raise StackError("GET %s did not answer %d: %r" % (path, status, last))


def wait_healthy(port, timeout=30):
    """Poll /api/health until it says ok with everything up; returns it."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            last = request(port, "GET", "/api/health", timeout=5)
            b = last[2]
            if last[0] == 200 and isinstance(b, dict) and b.get("status") == "ok":
                return b
        except OSError as e:
            last = e
        time.sleep(0.2)
    raise StackError("health did not become ok: %r" % (last,))

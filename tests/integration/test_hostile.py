"""Hostile input: a catalogue of malformed and malicious requests sent
through nginx, each of which must be answered 4xx in the API's JSON error
format (docs/api.md section 2; nginx's own 4xx pages are JSON too), with no
5xx, no worker restart, and nothing changed: the database (a checksum of
users, seats, reservations, payments, ledger and idempotency keys, plus
concerts and schedules), the queues in Redis and the workers' 5xx and
restart counters are compared before and after every group of requests.

docs/design.md invariant 6: nothing a client sends can crash a worker, leak
another user's data, or reach SQL other than as a bound parameter.

Data used here (other modules keep away from it): demo users 901 to 905
(not 977/978, which test_queue uses) and a user that does not exist;
concerts 3 and 4 for reads; places in the queues of concerts 4 (users 901,
902) and 3 (user 902) for real ACTIVE tokens; and one seat hold of user
902 in schedule 16 (concert 4), the "victim" resource. The holds, the
reservation row and the queue places are removed again at the end (SQL and
Redis), so nothing is left behind. Tokens of other kinds are signed here
with the stack's key, exactly as the service signs them (the signer is
checked against a token the service issued).

The database checksum treats a hold whose expiry is before a fixed
horizon (an hour after the module starts) as already lapsed, so that the
background sweeper tidying lapsed holds of other modules does not count as
a change; a hold or sale made by a request here would still show as a new
reservation, payment or ledger row.

Besides the catalogue: traversal out of /api/, the nginx micro-cache
against poisoning, clients that stall, what the logs hold, and signing-key
rotation (which reloads the workers with SIGHUP and puts the settings
back). The tests of TestHostileContract hold the service to the edges of
its contract that were once broken; each docstring says what went wrong.
"""

import base64
import json
import os
import re
import socket
import time
import unittest

from boxoffice_dev.redis import PLACE_PARTS, Redis, qkey
from boxoffice_dev import tokens
from harness import StackTest, destructive, user_uuid

CONCERT = 4                      # reads only, plus the queue places above
SCHEDULE = 16                    # concert 4's last schedule: the victim's hold
OTHER_CONCERT = 3
OTHER_SCHEDULE = 9               # a schedule of concert 3
FOREIGN_SCHEDULE = 1             # a schedule of concert 1

A, B, C, D = 901, 902, 903, 904  # attacker, victim, a waiting user, never admitted
UA, UB, UC, UD = (user_uuid(i) for i in (A, B, C, D))
NOBODY = "00000000-0000-4000-8000-0000deadbeef"   # well formed, no such user
RANDOM_RES = "6f1c2e3d-4b5a-4c6d-8e7f-0a1b2c3d4e5f"  # no such reservation

JSON = "application/json"


# ------------------------------------------------------------------ HTTP
def _b(x):
    if x is None or isinstance(x, bytes):
        return x
    if isinstance(x, (dict, list)):
        return json.dumps(x).encode()
    return str(x).encode("utf-8")


class Case:
    """One hostile request and the answer it must get.

    expect: the acceptable statuses (all 4xx); code: the acceptable error
    codes (None: any well-formed code). body may be a dict (sent as JSON),
    str or bytes; ctype is sent with a body unless None; token goes into
    Authorization; raw replaces the whole request (bytes, sent as is).
    """

    def __init__(self, name, method="GET", path="/api/ping", body=None, token=None,
                 headers=(), ctype=JSON, expect=400, code=None, raw=None, length=True,
                 host=True, head=False):
        self.name = name
        self.method, self.path, self.body = _b(method), _b(path), _b(body)
        self.token, self.headers, self.ctype = token, list(headers), ctype
        self.expect = (expect,) if isinstance(expect, int) else tuple(expect)
        self.code = (code,) if isinstance(code, str) else code
        self.raw, self.length, self.host, self.head = raw, length, host, head

    def request(self):
        if self.raw is not None:
            return self.raw
        lines = [self.method + b" " + self.path + b" HTTP/1.1"]
        if self.host:
            lines.append(b"Host: 127.0.0.1")
        if self.token is not None:
            lines.append(b"Authorization: Bearer " + _b(self.token))
        if self.body is not None and self.ctype is not None:
            lines.append(b"Content-Type: " + _b(self.ctype))
        for k, v in self.headers:
            lines.append(_b(k) + b": " + _b(v))
        if self.body is not None and self.length:
            lines.append(b"Content-Length: %d" % len(self.body))
        lines.append(b"Connection: close")
        return b"\r\n".join(lines) + b"\r\n\r\n" + (self.body or b"")


def parse_response(data):
    """(status, headers with lower-case names, body bytes); status 0 if
    nothing came back. Interim 1xx answers are skipped."""
    while True:
        head, sep, rest = data.partition(b"\r\n\r\n")
        if not sep:
            return 0, {}, data
        lines = head.decode("latin-1").split("\r\n")
        try:
            status = int(lines[0].split()[1])
        except (IndexError, ValueError):
            return 0, {}, data
        hdrs = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        if 100 <= status < 200:
            data = rest
            continue
        if hdrs.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while rest:
                size, _, rest = rest.partition(b"\r\n")
                n = int(size.split(b";")[0] or b"0", 16)
                if n == 0:
                    break
                body, rest = body + rest[:n], rest[n + 2:]
            return status, hdrs, body
        if "content-length" in hdrs:
            return status, hdrs, rest[:int(hdrs["content-length"])]
        return status, hdrs, rest


def send_raw(port, data, timeout=20):
    """Send one request over a fresh connection and read to EOF."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    out = b""
    try:
        try:
            s.sendall(data)
        except OSError:
            pass        # nginx may answer (413) and close before reading it all
        while True:
            try:
                d = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not d:
                break
            out += d
    finally:
        s.close()
    return parse_response(out)


def send_from(source, port, data, timeout=10):
    """send_raw() from another loopback address (e.g. 127.0.0.2): (status,
    headers, body, seconds taken)."""
    t0 = time.time()
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                 source_address=(source, 0))
    out = b""
    try:
        s.sendall(data)
        while True:
            d = s.recv(65536)
            if not d:
                break
            out += d
    finally:
        s.close()
    return parse_response(out) + (time.time() - t0,)


# ----------------------------------------------------------------- Redis
# ------------------------------------------------------- database digest
DIGEST_SQL = r"""
WITH hz AS (SELECT to_timestamp(@H@) AS t),
s AS (SELECT x.*, (x.status = 'HELD' AND x.hold_expires_at <= (SELECT t FROM hz)) AS lapsed
      FROM seats x),
r AS (SELECT x.*, (x.status IN ('HELD', 'EXPIRED') AND x.expires_at <= (SELECT t FROM hz))
             AS lapsed
      FROM reservations x)
SELECT 'concerts', count(*), md5(coalesce(string_agg(c::text, E'\n' ORDER BY c.id), ''))
  FROM concerts c
UNION ALL
SELECT 'schedules', count(*), md5(coalesce(string_agg(c::text, E'\n' ORDER BY c.id), ''))
  FROM schedules c
UNION ALL
SELECT 'users', count(*), md5(coalesce(string_agg(format('%s|%s|%s', u.id, u.name, u.balance),
                                                  E'\n' ORDER BY u.id), ''))
  FROM users u
UNION ALL
SELECT 'seats', count(*), md5(coalesce(string_agg(format('%s|%s|%s|%s|%s|%s|%s',
           s.schedule_id, s.number, s.price,
           CASE WHEN s.lapsed THEN 'AVAILABLE' ELSE s.status END,
           CASE WHEN s.lapsed THEN NULL ELSE s.holder END,
           CASE WHEN s.lapsed THEN NULL ELSE s.hold_expires_at END,
           CASE WHEN s.lapsed THEN NULL ELSE s.reservation_id END),
         E'\n' ORDER BY s.schedule_id, s.number), ''))
  FROM s
UNION ALL
SELECT 'reservations', count(*), md5(coalesce(string_agg(format('%s|%s|%s|%s|%s|%s|%s|%s|%s',
           r.id, r.schedule_id, r.seat_number, r.user_id, r.price, r.created_at, r.expires_at,
           CASE WHEN r.lapsed THEN 'EXPIRED' ELSE r.status END,
           CASE WHEN r.lapsed THEN NULL ELSE r.ended_at END),
         E'\n' ORDER BY r.id), ''))
  FROM r
UNION ALL
SELECT 'payments', count(*), md5(coalesce(string_agg(p::text, E'\n' ORDER BY p.id), ''))
  FROM payments p
UNION ALL
SELECT 'ledger', count(*), md5(coalesce(string_agg(l::text, E'\n' ORDER BY l.id), ''))
  FROM ledger l
UNION ALL
SELECT 'idempotency_keys', count(*),
       md5(coalesce(string_agg(k::text, E'\n' ORDER BY k.user_id, k.scope, k.key), ''))
  FROM idempotency_keys k
"""


class HostileTest(StackTest):
    """The fixture (tokens, the victim's hold) and the catalogue runner."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        s = cls.stack
        cls.port = s.http_port
        cls.horizon = int(time.time()) + 3600
        with open(s.key_file, "rb") as f:
            cls.key = f.read()
        cls._places = []
        cls._reservation = None
        try:
            cls._make_fixture()
        except BaseException:
            cls._remove_fixture()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            cls._remove_fixture()
        finally:
            super().tearDownClass()

    # --------------------------------------------------------------- tokens
    @classmethod
    def sign(cls, kind, user, concert=0, number=0, iat=None, exp=None, key=None):
        return tokens.sign(cls.key if key is None else key, kind, user, concert, number,
                           iat, exp)

    @classmethod
    def _api(cls, method, path, body=None, token=None):
        hdrs = {"Authorization": "Bearer " + token} if token else None
        return cls.stack.http(method, path, body=body, headers=hdrs)

    @classmethod
    def _active(cls, concert, i):
        """A real ACTIVE token of demo user i for concert (join, then poll)."""
        cls._places.append((concert, user_uuid(i)))
        st, _, b = cls._api("POST", "/api/queues/token",
                            {"concertId": concert, "userId": user_uuid(i)},
                            token=cls.stack.user_token(user_uuid(i)))
        if st not in (200, 201):
            raise AssertionError("join of user %d to concert %d: %d %r" % (i, concert, st, b))
        deadline = time.time() + 15
        while b.get("status") != "ACTIVE":
            if time.time() > deadline:
                raise AssertionError("user %d not admitted to concert %d: %r" % (i, concert, b))
            time.sleep(0.1)
            st, _, b = cls._api("GET", "/api/queues/status", token=b["token"])
            if st != 200 or b.get("status") == "EXPIRED":
                raise AssertionError("poll of user %d: %d %r" % (i, st, b))
        return b["token"]

    @classmethod
    def _make_fixture(cls):
        s = cls.stack
        cls.tA = cls._active(CONCERT, A)              # the attacker, admitted
        cls.tB = cls._active(CONCERT, B)              # the victim, admitted
        cls.tB3 = cls._active(OTHER_CONCERT, B)       # the victim, in concert 3
        # our signer must sign exactly as the service does
        p = cls.tA.split(".")
        again = cls.sign(p[1], p[2], int(p[3]), int(p[4]), int(p[5]), int(p[6]))
        if again != cls.tA:
            raise AssertionError("test signer does not match the service: %s / %s"
                                 % (again, cls.tA))
        cls.nA = int(p[4])
        rc, out = s.ctl("token", UA, 3600)
        cls.uA = out.strip().splitlines()[-1]          # operator CLI user token
        cls.uB = cls.sign("u", UB, exp=int(time.time()) + 3600)
        cls.uNobody = cls.sign("u", NOBODY, exp=int(time.time()) + 3600)
        cls.wC = cls.sign("w", UC, CONCERT, 99999, exp=int(time.time()) + 86400)
        cls.wB = cls.sign("w", UB, CONCERT, 99998, exp=int(time.time()) + 86400)
        cls.aD = cls.sign("a", UD, CONCERT, 99997)     # genuine, never admitted
        # the victim's hold: the highest free seat of schedule 16
        seat = s.psql_value(
            "SELECT max(number) FROM seats WHERE schedule_id = %d AND (status = 'AVAILABLE' "
            "OR (status = 'HELD' AND hold_expires_at <= now()))" % SCHEDULE)
        if not seat:
            raise AssertionError("no free seat left in schedule %d" % SCHEDULE)
        cls.seat = int(seat)
        st, _, b = cls._api("POST", "/api/reservations",
                            {"scheduleId": SCHEDULE, "seatNumber": cls.seat}, token=cls.tB)
        if st != 201:
            raise AssertionError("the victim's hold: %d %r" % (st, b))
        cls._reservation = cls.rB = b["id"]

    @classmethod
    def _remove_fixture(cls):
        s = cls.stack
        if cls._reservation:
            rid = cls._reservation
            s.psql("UPDATE seats SET status = 'AVAILABLE', holder = NULL, hold_expires_at = NULL, "
                   "reservation_id = NULL WHERE reservation_id = '%s' AND status = 'HELD'" % rid)
            s.psql("DELETE FROM reservations WHERE id = '%s' AND status <> 'PAID'" % rid)
            cls._reservation = None
        for concert, uid in cls._places:
            s.drop_places(concert, [uid])
        cls._places = []

    # ------------------------------------------------------------ snapshots
    def db_digest(self):
        rows = self.stack.psql(DIGEST_SQL.replace("@H@", str(self.horizon)))
        return {r[0]: (int(r[1]), r[2]) for r in rows}

    def redis_digest(self):
        r = Redis(self.stack.ports["redis"])
        try:
            out = {"users:known": r("SCARD", "users:known")}
            for c in range(1, 6):
                out[c] = (r("GET", qkey(c, "seq")), r("HGETALL", qkey(c, "num")),
                          [r("ZRANGE", qkey(c, p), 0, -1, "WITHSCORES")
                           for p in PLACE_PARTS])
            return out
        finally:
            r.close()

    def metrics_digest(self):
        st, _, body = self.stack.http("GET", "/metrics")
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else ""
        starts = re.search(r"(?m)^boxoffice_worker_starts_total (\d+)", text)
        fives = sum(int(m) for m in re.findall(
            r'(?m)^boxoffice_http_requests_total\{[^}]*status="5[^"]*"[^}]*\} (\d+)', text))
        return {"worker starts": starts.group(1) if starts else None, "5xx answers": fives}

    def snapshot(self):
        return {"db": self.db_digest(), "redis": self.redis_digest(),
                "workers": self.stack.worker_pids(), "metrics": self.metrics_digest()}

    def assertUnchanged(self, before, after, what):
        bad = []
        for t in sorted(before["db"]):
            if before["db"][t] != after["db"].get(t):
                bad.append("table %s changed: %s -> %s" % (t, before["db"][t], after["db"].get(t)))
        if before["redis"] != after["redis"]:
            changed = [k for k in before["redis"] if before["redis"][k] != after["redis"].get(k)]
            bad.append("Redis queue state changed (concerts/keys %s)" % changed)
        if before["workers"] != after["workers"]:
            bad.append("workers restarted: %s -> %s" % (before["workers"], after["workers"]))
        if before["metrics"] != after["metrics"]:
            bad.append("metrics moved: %s -> %s" % (before["metrics"], after["metrics"]))
        self.assertEqual(bad, [], "%s changed the service" % what)

    # --------------------------------------------------------------- runner
    def check(self, c, resp):
        """Problems with the answer to case c (empty if it is right)."""
        st, hdr, body = resp
        text = body[:160]
        where = "%s: %s" % (c.name, st or "no answer")
        if st == 0:
            return ["%s: no HTTP answer (%r)" % (c.name, text)]
        probs = []
        if not 400 <= st < 500:
            probs.append("%s: not a 4xx: %r" % (where, text))
        elif st not in c.expect:
            probs.append("%s: want %s: %r" % (where, "/".join(map(str, c.expect)), text))
        if "application/json" not in hdr.get("content-type", ""):
            probs.append("%s: not JSON (Content-Type %r): %r"
                         % (where, hdr.get("content-type"), text))
            return probs
        if c.head:
            return probs
        try:
            doc = json.loads(body.decode("utf-8"))
            err = doc["error"]
            code, msg = err["code"], err["message"]
            assert isinstance(code, str) and re.match(r"^[A-Z][A-Z0-9_]*$", code), code
            assert isinstance(msg, str) and msg, msg
        except Exception:
            return probs + ["%s: not the API's error format: %r" % (where, text)]
        if c.code and code not in c.code:
            probs.append("%s: code %s, want %s" % (where, code, "/".join(c.code)))
        return probs

    def run_cases(self, cases, what):
        """Send every case; all must be answered right and change nothing."""
        before = self.snapshot()
        problems = []
        for c in cases:
            problems += self.check(c, send_raw(self.port, c.request()))
        after = self.snapshot()
        self.maxDiff = None
        self.assertEqual(problems, [], "%d of %d %s were not refused properly"
                         % (len(problems), len(cases), what))
        self.assertUnchanged(before, after, what)
        return len(cases)


class TestHostileCatalogue(HostileTest):
    """At least 100 hostile requests, group by group."""

    # --------------------------------------------------------------- groups
    def cases_bad_json(self):
        J = "/api/queues/token"
        u = NOBODY
        bodies = [
            ("empty body", b"", "BAD_JSON"),
            ("white space only", b" \r\n\t ", "BAD_JSON"),
            ("null", b"null", "BAD_JSON"),
            ("an array", b'[{"concertId":4}]', "BAD_JSON"),
            ("a string", b'"concertId"', "BAD_JSON"),
            ("a number", b"4", "BAD_JSON"),
            ("true", b"true", "BAD_JSON"),
            ("unclosed object", b'{"concertId":4,"userId":"%s"' % u.encode(), "BAD_JSON"),
            ("lone brace", b"}", "BAD_JSON"),
            ("trailing comma", b'{"concertId":4,}', "BAD_JSON"),
            ("missing comma", b'{"concertId":4 "userId":"x"}', "BAD_JSON"),
            ("missing value", b'{"concertId"}', "BAD_JSON"),
            ("missing colon", b'{"concertId" 4}', "BAD_JSON"),
            ("unquoted key", b"{concertId:4}", "BAD_JSON"),
            ("two objects", b'{"concertId":4} {"userId":"x"}', "BAD_JSON"),
            ("trailing garbage", b'{"concertId":4}garbage', "BAD_JSON"),
            ("a comment", b'/* c */{"concertId":4}', "BAD_JSON"),
            ("hex number", b'{"concertId":0x4}', "BAD_JSON"),
            ("leading zero", b'{"concertId":04}', "BAD_JSON"),
            ("plus sign", b'{"concertId":+4}', "BAD_JSON"),
            ("bare fraction", b'{"concertId":.4}', "BAD_JSON"),
            ("bad escape", b'{"userId":"\\x41"}', "BAD_JSON"),
            ("unterminated string", b'{"userId":"abc}', "BAD_JSON"),
            ("depth bomb of 9 objects", b'{"a":' * 9 + b"1" + b"}" * 9, "BAD_JSON"),
            ("depth bomb of 4000 arrays", b"[" * 4000 + b"]" * 4000, "BAD_JSON"),
            ("unclosed depth bomb", b'{"a":[' * 1300, "BAD_JSON"),
            ("UTF-8 byte order mark", b'\xef\xbb\xbf{"concertId":4}', "BAD_JSON"),
            ("UTF-16 body", '{"concertId":4}'.encode("utf-16"), "BAD_JSON"),
        ]
        cases = [Case("bad JSON: " + n, "POST", J, body=b, code=code) for n, b, code in bodies]
        # the same on the routes that move seats and money (body before token)
        for path, tok in (("/api/reservations", self.tA), ("/api/payments", self.tA),
                          ("/api/users/%s/balance/charge" % UA, self.uA)):
            for n, b in (("not JSON", b"amount=100"), ("depth bomb", b"[" * 3000),
                         ("an array", b"[100]"), ("trailing data", b'{"amount":1}{"amount":2}')):
                cases.append(Case("bad JSON on %s: %s" % (path.split("/")[2], n), "POST", path,
                                  body=b, token=tok, code="BAD_JSON"))
        # duplicate keys: the last one wins and is validated like any other
        cases += [
            Case("duplicate key, last one invalid", "POST", J,
                 body=b'{"concertId":4,"concertId":"4","userId":"%s"}' % UA.encode(),
                 code="INVALID_FIELD"),
            Case("duplicate key, last one null", "POST", J,
                 body=b'{"userId":"%s","concertId":4,"concertId":null}' % UA.encode(),
                 code="MISSING_FIELD"),
            Case("duplicate amount, last one out of range", "POST",
                 "/api/users/%s/balance/charge" % UB,
                 body=b'{"amount":100,"amount":-100}', token=self.uA, code="INVALID_FIELD"),
            Case("duplicate reservationId, last one foreign", "POST", "/api/payments",
                 body=b'{"reservationId":"%s","reservationId":"%s"}'
                      % (RANDOM_RES.encode(), self.rB.encode()),
                 token=self.tA, expect=404, code="RESERVATION_NOT_FOUND"),
        ]
        return cases

    def cases_content_type_and_length(self):
        J = "/api/queues/token"
        ok = {"concertId": CONCERT, "userId": NOBODY}
        cases = [Case("Content-Type %r" % ct, "POST", J, body=ok, ctype=ct, expect=415,
                      code="UNSUPPORTED_MEDIA_TYPE")
                 for ct in ("text/plain", "application/x-www-form-urlencoded",
                            "multipart/form-data; boundary=x", "application/jsonx",
                            "application/json-seq", "text/json", "json", "application/xml",
                            ";application/json", "application/*")]
        cases += [
            Case("no Content-Type", "POST", J, body=ok, ctype=None, expect=415,
                 code="UNSUPPORTED_MEDIA_TYPE"),
            Case("form body to the charge", "POST", "/api/users/%s/balance/charge" % UA,
                 body="amount=100", ctype="application/x-www-form-urlencoded", token=self.uA,
                 expect=415),
            Case("UTF-16 body declared as such", "POST", J,
                 body=json.dumps(ok).encode("utf-16-le"), ctype="application/json; charset=utf-16",
                 code="BAD_JSON"),
            Case("body over the worker's max_body", "POST", J,
                 body=b'{"concertId":4,"pad":"' + b"x" * 9000 + b'"}', expect=413,
                 code="BODY_TOO_LARGE"),
            Case("body over nginx's 16 KiB", "POST", J,
                 body=b'{"pad":"' + b"y" * 40000 + b'"}', expect=413, code="BODY_TOO_LARGE"),
            Case("declared 20 MB body, none sent", "POST", J, length=False, body=b"",
                 headers=[("Content-Length", "20000000"), ("Expect", "100-continue")],
                 expect=413, code="BODY_TOO_LARGE"),
            Case("Content-Length not a number", "POST", "/api/reservations", length=False,
                 body=b"{}", headers=[("Content-Length", "abc")], code="BAD_REQUEST"),
            Case("negative Content-Length", "POST", "/api/reservations", length=False,
                 body=b"{}", headers=[("Content-Length", "-2")], code="BAD_REQUEST"),
            Case("Content-Length with exponent", "POST", "/api/reservations", length=False,
                 body=b"{}", headers=[("Content-Length", "2e0")], code="BAD_REQUEST"),
            Case("Content-Length of 2^64", "POST", "/api/reservations", length=False,
                 body=b"{}", headers=[("Content-Length", "18446744073709551618")],
                 expect=(400, 413)),
            Case("two different Content-Lengths", "POST", "/api/reservations", length=False,
                 body=b"{}", headers=[("Content-Length", "2"), ("Content-Length", "3")],
                 code="BAD_REQUEST"),
            Case("Content-Length and chunked (smuggling)", "POST", "/api/reservations",
                 length=False, body=b"0\r\n\r\n",
                 headers=[("Content-Length", "5"), ("Transfer-Encoding", "chunked")],
                 code="BAD_REQUEST"),
            Case("bad chunk size", "POST", "/api/reservations", length=False,
                 body=b"zz\r\n{}\r\n0\r\n\r\n", headers=[("Transfer-Encoding", "chunked")],
                 code="BAD_REQUEST"),
            Case("chunked body over 16 KiB", "POST", "/api/reservations", length=False,
                 body=b"".join(b"1000\r\n" + b"z" * 4096 + b"\r\n" for _ in range(6)) +
                 b"0\r\n\r\n", headers=[("Transfer-Encoding", "chunked")], expect=413),
        ]
        return cases

    def cases_numbers(self):
        J = "/api/queues/token"
        charge_B = "/api/users/%s/balance/charge" % UB   # with A's token: never charges
        cases = []
        for raw in ("0", "-1", "-4", "2147483648", "9223372036854775807",
                    "9223372036854775808", "18446744073709551616", "-9223372036854775808",
                    "-9223372036854775809", "1" + "0" * 400, "4.0", "4.5", "4e0", "4E+0",
                    "1e400", "-0", "-0.0", "0.4e1", "NaN", "Infinity", "-Infinity",
                    '"4"', '" 4"', '"4 "', '"04"', '"\\uff14"', "true", "false", "[4]",
                    '{"$gt":0}', '{"value":4}'):
            cases.append(Case("concertId %s" % raw[:24], "POST", J,
                              body='{"concertId":%s,"userId":"%s"}' % (raw, NOBODY),
                              code=("INVALID_FIELD", "BAD_JSON")))
        cases.append(Case("concertId null", "POST", J,
                          body='{"concertId":null,"userId":"%s"}' % NOBODY,
                          code="MISSING_FIELD"))
        for raw in ("0", "-1", "-9223372036854775808", "1000000000001", "9223372036854775807",
                    "9223372036854775808", "18446744073709551616", "1.5", "100.0", "1e3",
                    "1e-7", '"100"', "true", "[100]", '{"value":100}', "NaN"):
            cases.append(Case("amount %s" % raw, "POST", charge_B, token=self.uA,
                              body='{"amount":%s}' % raw, code=("INVALID_FIELD", "BAD_JSON")))
        cases.append(Case("amount missing", "POST", charge_B, token=self.uA, body={},
                          code="MISSING_FIELD"))
        # within the type's bounds but over the service's charge limit: own account
        for amount in (10000001, 1000000000000):
            cases.append(Case("amount %d over max_charge" % amount, "POST",
                              "/api/users/%s/balance/charge" % UA, token=self.uA,
                              body={"amount": amount}, code="AMOUNT_TOO_LARGE"))
        # holds: with a WAITING token, so that nothing could be held even if
        # a value slipped through (it would then be 403 NOT_ACTIVE)
        for field, raw in (("seatNumber", "0"), ("seatNumber", "100001"), ("seatNumber", "-1"),
                           ("seatNumber", "4294967297"), ("seatNumber", "9223372036854775808"),
                           ("seatNumber", "1.0"), ("seatNumber", '"1"'), ("seatNumber", "null"),
                           ("scheduleId", "0"), ("scheduleId", "-16"),
                           ("scheduleId", "2147483648"), ("scheduleId", "4294967312"),
                           ("scheduleId", "16.0"), ("scheduleId", '"16"'), ("scheduleId", "true")):
            body = {"scheduleId": SCHEDULE, "seatNumber": 1}
            text = json.dumps(body).replace('"%s": %s' % (field, body[field]),
                                            '"%s": %s' % (field, raw))
            cases.append(Case("hold %s %s" % (field, raw), "POST", "/api/reservations",
                              token=self.wC, body=text,
                              code="MISSING_FIELD" if raw == "null" else "INVALID_FIELD"))
        return cases

    def cases_strings_unicode_nul(self):
        J = "/api/queues/token"
        bad_users = [
            ("Cyrillic a in the UUID", "0000000\u0430-0000-4000-8000-000000000901"),
            ("fullwidth digits", "\uff10" * 8 + "-0000-4000-8000-000000000901"),
            ("Arabic-Indic digits", "\u0660" * 8 + "-0000-4000-8000-000000000901"),
            ("zero-width space", UA[:8] + "\u200b" + UA[8:]),
            ("no-break space", UA + "\u00a0"),
            ("right-to-left override", "\u202e" + UA),
            ("combining mark", UA[:-1] + "1\u0301"),
            ("trailing space", UA + " "),
            ("35 characters", UA[:-1]),
            ("37 characters", UA + "1"),
            ("no dashes", UA.replace("-", "")),
            ("braces", "{%s}" % UA),
            ("URN", "urn:uuid:" + UA),
            ("dashes moved", UA[:7] + "-" + UA[7] + UA[9:]),
            ("a g", UA[:-1] + "g"),
            ("empty", ""),
            ("NUL escape at the end", UA + "\u0000"),
            ("NUL escape inside", UA[:8] + "\u0000" + UA[9:]),
            ("CRLF and a Redis command", UA + "\r\nFLUSHALL\r\n"),
            ("lone surrogate", UA[:-1] + "\ud800"),
        ]
        cases = []
        # An escaped NUL or a lone surrogate is not JSON the worker accepts at
        # all (BAD_JSON); everything else is JSON with a malformed field.
        not_json = ("NUL escape at the end", "NUL escape inside", "lone surrogate")
        for n, uid in bad_users:
            body = json.dumps({"concertId": CONCERT, "userId": uid}, ensure_ascii=True)
            cases.append(Case("userId: " + n, "POST", J, body=body,
                              code="BAD_JSON" if n in not_json else "INVALID_FIELD"))
        cases += [
            Case("userId a number", "POST", J, body={"concertId": 4, "userId": 901},
                 code="INVALID_FIELD"),
            Case("userId an object", "POST", J, body={"concertId": 4, "userId": {"id": UA}},
                 code="INVALID_FIELD"),
            Case("userId an array", "POST", J, body={"concertId": 4, "userId": [UA]},
                 code="INVALID_FIELD"),
            Case("userId raw UTF-8 Cyrillic", "POST", J,
                 body='{"concertId":4,"userId":"0000000\u0430-0000-4000-8000-000000000901"}',
                 code="INVALID_FIELD"),
            Case("nil UUID: well formed, no such user", "POST", J,
                 body={"concertId": 4, "userId": "00000000-0000-0000-0000-000000000000"},
                 token=self.sign("u", "00000000-0000-0000-0000-000000000000",
                                 exp=int(time.time()) + 3600),
                 expect=404, code="USER_NOT_FOUND"),
            Case("reservationId with NUL escape", "POST", "/api/payments", token=self.wC,
                 body='{"reservationId":"%s\\u0000"}' % self.rB, code="BAD_JSON"),
            Case("reservationId Cyrillic", "POST", "/api/payments", token=self.wC,
                 body={"reservationId": self.rB[:-1] + "\u0430"}, code="INVALID_FIELD"),
            Case("reservationId a number", "POST", "/api/payments", token=self.wC,
                 body={"reservationId": 1}, code="INVALID_FIELD"),
            Case("reservationId empty", "POST", "/api/payments", token=self.wC,
                 body={"reservationId": ""}, code="INVALID_FIELD"),
            Case("reservationId null", "POST", "/api/payments", token=self.wC,
                 body={"reservationId": None}, code="MISSING_FIELD"),
            # raw NUL bytes
            Case("raw NUL inside the body", "POST", J,
                 body=b'{"concertId":4,\x00"userId":"%s"}' % UA.encode(), code="BAD_JSON"),
            Case("raw NUL after the body", "POST", J,
                 body=b'{"concertId":4,"userId":"%s"}\x00' % UA.encode(), code="BAD_JSON"),
            Case("raw NUL first", "POST", J, body=b'\x00{"concertId":4}', code="BAD_JSON"),
            Case("raw NUL in a string", "POST", J,
                 body=b'{"concertId":4,"userId":"%s\x00"}' % UA.encode(), code="BAD_JSON"),
            Case("raw NUL in the path", "GET", b"/api/users/" + UA.encode() + b"\x00/balance",
                 token=self.uA, code="BAD_REQUEST"),
            Case("%00 in the path", "GET", "/api/users/%s%%00/balance" % UA, token=self.uA,
                 code="BAD_REQUEST"),
            Case("raw NUL in Authorization", "GET", "/api/users/%s/balance" % UA,
                 headers=[("Authorization", b"Bearer " + self.uA.encode()[:20] + b"\x00")],
                 code="BAD_REQUEST"),
            Case("raw NUL in Content-Type", "POST", J, ctype=b"application/json\x00",
                 body={"concertId": 4, "userId": NOBODY}, code="BAD_REQUEST"),
            # invalid and overlong UTF-8
            Case("0xFF in a string", "POST", J, body=b'{"concertId":4,"userId":"\xff"}',
                 code="BAD_JSON"),
            Case("0xFF in a key", "POST", J, body=b'{"concertId\xff":4}', code="BAD_JSON"),
            Case("Latin-1 byte", "POST", J, body=b'{"userId":"caf\xe9"}', code="BAD_JSON"),
            Case("truncated sequence", "POST", J, body=b'{"userId":"\xe2\x82"}',
                 code="BAD_JSON"),
            Case("five-byte sequence", "POST", J, body=b'{"userId":"\xf8\x88\x80\x80\x80"}',
                 code="BAD_JSON"),
            Case("overlong '0' in the UUID", "POST", J,
                 body=b'{"concertId":4,"userId":"\xc0\xb0' + UA.encode()[1:] + b'"}',
                 code=("BAD_JSON", "INVALID_FIELD")),
            Case("overlong NUL in the UUID", "POST", J,
                 body=b'{"concertId":4,"userId":"' + UA.encode() + b'\xc0\x80"}',
                 code=("BAD_JSON", "INVALID_FIELD")),
            Case("encoded surrogate in the UUID", "POST", J,
                 body=b'{"concertId":4,"userId":"' + UA.encode() + b'\xed\xa0\x80"}',
                 code=("BAD_JSON", "INVALID_FIELD")),
            Case("0xFF in the path", "GET", b"/api/users/\xff\xfe/balance", token=self.uA,
                 code="INVALID_FIELD"),
            Case("overlong slash in the path", "GET", b"/api/concerts/4\xc0\xaf/schedules",
                 code="INVALID_FIELD"),
        ]
        return cases

    def cases_injection(self):
        J = "/api/queues/token"
        sqls = ["' OR '1'='1", "'; DROP TABLE users;--", UA + "'--",
                UA + "'; UPDATE users SET balance=999999999 WHERE '1'='1",
                "1 UNION SELECT id, balance FROM users", "$1", "%s%s%s%n", "\\'",
                "' OR pg_sleep(5) IS NULL--"]
        cases = [Case("SQL in userId: %s" % s, "POST", J,
                      body={"concertId": CONCERT, "userId": s}, code="INVALID_FIELD")
                 for s in sqls]
        cases += [
            Case("SQL in concertId", "POST", J,
                 body={"concertId": "4; DROP TABLE concerts", "userId": UA},
                 code="INVALID_FIELD"),
            Case("SQL in scheduleId", "POST", "/api/reservations", token=self.wC,
                 body={"scheduleId": "16 OR 1=1", "seatNumber": 1}, code="INVALID_FIELD"),
            Case("SQL in seatNumber", "POST", "/api/reservations", token=self.wC,
                 body={"scheduleId": 16, "seatNumber": "1; DELETE FROM seats"},
                 code="INVALID_FIELD"),
            Case("SQL in reservationId", "POST", "/api/payments", token=self.tA,
                 body={"reservationId": "' OR user_id IS NOT NULL--"}, code="INVALID_FIELD"),
            Case("SQL in amount", "POST", "/api/users/%s/balance/charge" % UA, token=self.uA,
                 body={"amount": "100; UPDATE users SET balance = 1e12"}, code="INVALID_FIELD"),
            Case("SQL in an unknown key", "POST", J,
                 body={"concertId": 999999, "userId": UA, "'; DROP TABLE users;--": 1},
                 token=self.uA, expect=404, code="CONCERT_NOT_FOUND"),
            Case("SQL in the concert path", "GET",
                 "/api/concerts/4%27%20OR%20%271%27=%271/schedules", code="INVALID_FIELD"),
            Case("SQL in the concert path, raw", "GET", "/api/concerts/4;DELETE/schedules",
                 code="INVALID_FIELD"),
            Case("SQL in the schedule path", "GET",
                 "/api/concerts/4/schedules/16%20OR%201=1/seats", token=self.tA,
                 code="INVALID_FIELD"),
            Case("SQL in the user path", "GET",
                 "/api/users/%s'%%20OR%%20'1'='1/balance" % UA, token=self.uA,
                 code="INVALID_FIELD"),
            Case("SQL in the reservation path", "GET",
                 "/api/reservations/'%20OR%20'1'='1", token=self.uA, code="INVALID_FIELD"),
            Case("SQL in the reservation path, DELETE", "DELETE",
                 "/api/reservations/x'%3BDELETE%20FROM%20reservations--", token=self.uA,
                 code="INVALID_FIELD"),
            Case("SQL in the token", "GET", "/api/users/%s/balance" % UA,
                 token="' OR 1=1--", expect=401, code="TOKEN_INVALID"),
            Case("SQL in a token's claims", "GET", "/api/users/%s/balance" % UA,
                 token="v1.u.' OR 1=1--.0.0.0.9999999999." + "A" * 43, expect=401,
                 code="TOKEN_INVALID"),
            # valid Idempotency-Keys made of SQL reach the database as bound
            # parameters: the payment of a reservation that is not the
            # attacker's, and a charge of a user that does not exist
            Case("SQL Idempotency-Key on a payment", "POST", "/api/payments", token=self.tA,
                 body={"reservationId": self.rB},
                 headers=[("Idempotency-Key", "';DROP/**/TABLE/**/ledger;--")],
                 expect=404, code="RESERVATION_NOT_FOUND"),
            Case("format-string Idempotency-Key on a payment", "POST", "/api/payments",
                 token=self.tA, body={"reservationId": RANDOM_RES},
                 headers=[("Idempotency-Key", "%s%s%n%x$1::text")],
                 expect=404, code="RESERVATION_NOT_FOUND"),
            Case("SQL Idempotency-Key on a charge of nobody", "POST",
                 "/api/users/%s/balance/charge" % NOBODY, token=self.uNobody,
                 body={"amount": 100},
                 headers=[("Idempotency-Key", "x'||(SELECT/**/1/0)||'")],
                 expect=404, code="USER_NOT_FOUND"),
        ]
        return cases

    def cases_paths(self):
        R = "/api/users/%s/balance"
        cases = []
        for seg in ("%34", "04", "+4", "-4", "4.0", "0x4", "4e0", "0", "2147483648",
                    "9223372036854775808", "9" * 30, "%20%34", "4%2f", "4%20", "4;x=1",
                    "\uff14", "%EF%BC%94", "\u0664", "\u00b9", "4\u200b", "%34%00x"):
            cases.append(Case("concertId in the path %r" % seg, "GET",
                              "/api/concerts/%s/schedules/%d/seats" % (seg, SCHEDULE),
                              token=self.tA,
                              code="INVALID_FIELD" if "%00" not in seg else "BAD_REQUEST"))
        for seg in ("%30" + UA[1:], UA.replace("-", ""), "{%s}" % UA, "urn:uuid:" + UA,
                    "0000000\u0430" + UA[8:], "\uff10" + UA[1:], UA + "%20",
                    UA[:-1] + "%31", "%2e%2e" + UA[4:]):
            cases.append(Case("userId in the path %r" % seg, "GET", R % seg,
                              token=self.uA, code="INVALID_FIELD"))
        cases += [
            Case("reservationId in the path not a UUID", "GET", "/api/reservations/1",
                 token=self.uA, code="INVALID_FIELD"),
            Case("scheduleId in the path overflowing", "GET",
                 "/api/concerts/4/schedules/4294967312/seats", token=self.tA,
                 code="INVALID_FIELD"),
            Case("empty segment", "GET", "/api/concerts//schedules", expect=404,
                 code="NOT_FOUND"),
            Case("trailing slash", "GET", "/api/concerts/4/schedules/", expect=404,
                 code="NOT_FOUND"),
            Case("doubled slashes", "GET", "//api//users//%s//balance" % UA, token=self.uA,
                 expect=404, code="NOT_FOUND"),
            Case("dot segment", "GET", "/api/./users/%s/balance" % UA, token=self.uA,
                 expect=404, code="NOT_FOUND"),
            Case("dot-dot segment", "GET", "/api/users/%s/../%s/balance" % (UB, UA),
                 token=self.uA, expect=404, code="NOT_FOUND"),
            Case("upper case", "GET", "/api/Concerts/4/schedules", expect=404, code="NOT_FOUND"),
            Case("traversal to another user's balance", "GET",
                 "/api/users/%s/balance/../../%s/balance" % (UA, UB), token=self.uA,
                 expect=404, code="NOT_FOUND"),
            Case("traversal from the seat map", "GET",
                 "/api/concerts/4/schedules/16/seats/../../../../users/%s/balance" % UB,
                 token=self.uA, expect=404, code="NOT_FOUND"),
            Case("encoded traversal above the root", "GET", "/api/%2e%2e/%2e%2e/etc/passwd",
                 code="BAD_REQUEST"),
            Case("encoded slashes above the root", "GET", "/api/..%2f..%2f..%2fetc%2fpasswd",
                 code="BAD_REQUEST"),
            Case("double-encoded traversal", "GET", "/api/concerts/%252e%252e/schedules",
                 code="INVALID_FIELD"),
            Case("backslashes", "GET", "/api/concerts/4\\..\\..\\/schedules",
                 code="INVALID_FIELD"),
            Case("encoded CRLF (log injection)", "GET",
                 "/api/no%0d%0a2026-01-01T00:00:00Z%20pid=1%20GET%20/api/ping%20200",
                 expect=404, code="NOT_FOUND"),
            Case("a path segment of 64 bytes", "GET", "/api/concerts/%s/schedules" % ("4" * 64),
                 expect=404, code="NOT_FOUND"),
            Case("a 600-byte path", "GET", "/api/" + "a" * 600, expect=404, code="NOT_FOUND"),
            Case("a 6000-byte path", "GET", "/api/" + "a/" * 3000, expect=404,
                 code="NOT_FOUND"),
            Case("a 9000-byte path", "GET", "/api/" + "a" * 9000, expect=414),
            Case("a raw space in the path", "GET", "/api/pi ng", code="BAD_REQUEST"),
            Case("a query string does not name the user", "GET",
                 "/api/users/%s/balance?userId=%s" % (UB, UA), token=self.uA, expect=403,
                 code="FORBIDDEN"),
        ]
        return cases

    def cases_methods_and_http(self):
        res = "/api/reservations/%s" % self.rB
        cases = [
            Case("PUT a reservation", "PUT", res, token=self.uB, body={}, expect=405,
                 code="METHOD_NOT_ALLOWED"),
            Case("PATCH a balance", "PATCH", "/api/users/%s/balance" % UB, token=self.uB,
                 body={"balance": 10 ** 9}, expect=405, code="METHOD_NOT_ALLOWED"),
            Case("POST a balance", "POST", "/api/users/%s/balance" % UB, token=self.uB,
                 body={"balance": 10 ** 9}, expect=405, code="METHOD_NOT_ALLOWED"),
            Case("DELETE a balance", "DELETE", "/api/users/%s/balance" % UB, token=self.uB,
                 expect=405, code="METHOD_NOT_ALLOWED"),
            Case("GET the charge", "GET", "/api/users/%s/balance/charge" % UB, token=self.uB,
                 expect=405, code="METHOD_NOT_ALLOWED"),
            Case("DELETE the concerts", "DELETE", "/api/concerts", expect=405,
                 code="METHOD_NOT_ALLOWED"),
            Case("GET the payments", "GET", "/api/payments", token=self.tA, expect=405,
                 code="METHOD_NOT_ALLOWED"),
            Case("OPTIONS (no CORS)", "OPTIONS", "/api/reservations", expect=405,
                 code="METHOD_NOT_ALLOWED"),
            Case("PROPFIND", "PROPFIND", "/api/ping", expect=405, code="METHOD_NOT_ALLOWED"),
            Case("an invented method", "FOO", "/api/ping", expect=405,
                 code="METHOD_NOT_ALLOWED"),
            Case("a 900-letter method", "A" * 900, "/api/ping", expect=405,
                 code="METHOD_NOT_ALLOWED"),
            Case("HEAD of a POST route", "HEAD", "/api/queues/token", expect=405, head=True),
            Case("a lower-case method", "get", "/api/ping", code="BAD_REQUEST"),
            Case("no Host", "GET", "/api/ping", host=False, code="BAD_REQUEST"),
            Case("two Hosts", "GET", "/api/ping", headers=[("Host", "evil")],
                 code="BAD_REQUEST"),
            Case("two Authorization headers", "GET", "/api/users/%s/balance" % UB,
                 headers=[("Authorization", "Bearer " + self.uA),
                          ("Authorization", "Bearer " + self.uB)], code="BAD_REQUEST"),
            Case("a folded header line", "GET", "/api/ping",
                 headers=[("X-A", "a\r\n b")], code="BAD_REQUEST"),
            Case("a 9000-byte header", "GET", "/api/ping", headers=[("X-Big", "b" * 9000)],
                 code="BAD_REQUEST"),
            Case("200 headers", "GET", "/api/nothing-here",
                 headers=[("X-H%d" % i, "v" * 80) for i in range(200)], expect=404,
                 code="NOT_FOUND"),
            Case("a 7000-byte cookie", "GET", "/api/nothing-here",
                 headers=[("Cookie", "c=" + "x" * 7000)], expect=404, code="NOT_FOUND"),
            Case("a request line without a version", "GET", "/api/ping", raw=b"GARBAGE\r\n\r\n",
                 code="BAD_REQUEST"),
        ]
        return cases

    def cases_tokens(self):
        bal = "/api/users/%s/balance" % UA
        seats = "/api/concerts/%d/schedules/%d/seats" % (CONCERT, SCHEDULE)
        hold = "/api/reservations"
        now = int(time.time())
        p = self.tA.split(".")

        def claims(**kw):
            q = list(p)
            for i, v in kw.items():
                q[int(i[1:])] = v
            return ".".join(q)
        mac = p[7]
        std = base64.b64encode(base64.urlsafe_b64decode(mac + "=")).decode()
        cases = [
            Case("no token: balance", "GET", bal, expect=401, code="TOKEN_MISSING"),
            Case("no token: seat map", "GET", seats, expect=401, code="TOKEN_MISSING"),
            Case("no token: hold", "POST", hold, body={"scheduleId": 16, "seatNumber": 1},
                 expect=401, code="TOKEN_MISSING"),
            Case("no token: payment", "POST", "/api/payments", body={"reservationId": self.rB},
                 expect=401, code="TOKEN_MISSING"),
            Case("no token: reservation", "GET", "/api/reservations/%s" % self.rB,
                 expect=401, code="TOKEN_MISSING"),
            Case("empty Bearer", "GET", bal, headers=[("Authorization", "Bearer")],
                 expect=401, code=("TOKEN_MISSING", "TOKEN_INVALID")),
            Case("Basic credentials", "GET", bal,
                 headers=[("Authorization", "Basic dXNlcjpwYXNz")], expect=401,
                 code="TOKEN_INVALID"),
            Case("token in the query string only", "GET", bal + "?token=" + self.uA,
                 expect=401, code="TOKEN_MISSING"),
            Case("garbage", "GET", bal, token="garbage", expect=401, code="TOKEN_INVALID"),
            Case("a JWT", "GET", bal, token="eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
                 expect=401, code="TOKEN_INVALID"),
            Case("empty signature", "GET", seats, token=claims(_7=""), expect=401,
                 code="TOKEN_INVALID"),
            Case("signature of 43 A", "GET", seats, token=claims(_7="A" * 43), expect=401,
                 code="TOKEN_INVALID"),
            Case("signature truncated", "GET", seats, token=claims(_7=mac[:-1]), expect=401,
                 code="TOKEN_INVALID"),
            Case("signature padded", "GET", seats, token=claims(_7=mac + "="), expect=401,
                 code="TOKEN_INVALID"),
            Case("signature in standard base64", "GET", seats, token=claims(_7=std),
                 expect=401, code="TOKEN_INVALID"),
            Case("signature doubled", "GET", seats, token=claims(_7=mac + mac), expect=401,
                 code="TOKEN_INVALID"),
            Case("claims: another user", "GET", seats, token=claims(_2=UB), expect=401,
                 code="TOKEN_INVALID"),
            Case("claims: user without dashes", "GET", seats,
                 token=claims(_2=UA.replace("-", "")), expect=401, code="TOKEN_INVALID"),
            Case("claims: another concert", "GET", seats, token=claims(_3="3"), expect=401,
                 code="TOKEN_INVALID"),
            Case("claims: another queue number", "GET", seats,
                 token=claims(_4=str(self.nA + 1)), expect=401, code="TOKEN_INVALID"),
            Case("claims: expiry moved on", "GET", seats, token=claims(_6=str(now + 86400)),
                 expect=401, code="TOKEN_INVALID"),
            Case("claims: WAITING made ACTIVE", "GET", seats,
                 token=".".join(self.wC.split(".")[:1] + ["a"] + self.wC.split(".")[2:]),
                 expect=401, code="TOKEN_INVALID"),
            Case("claims: version 2", "GET", seats, token=claims(_0="v2"), expect=401,
                 code="TOKEN_INVALID"),
            Case("an extra claim", "GET", seats, token=".".join(p[:7] + ["x"] + p[7:]),
                 expect=401, code="TOKEN_INVALID"),
            Case("the token twice", "GET", seats, token=self.tA + self.tA, expect=401,
                 code="TOKEN_INVALID"),
            Case("token with a trailing tab", "GET", seats,
                 headers=[("Authorization", "Bearer " + self.tA + "\tx")], expect=401,
                 code="TOKEN_INVALID"),
            Case("token in lower case", "GET", seats, token=self.tA.lower(), expect=401,
                 code="TOKEN_INVALID"),
            Case("a 300-character token", "GET", bal, token="v1." + "x" * 297, expect=401,
                 code="TOKEN_INVALID"),
            Case("a 6600-character token", "GET", bal, token=self.uA * 60, expect=401,
                 code="TOKEN_INVALID"),
            Case("a 9000-character token", "GET", bal, token="v" * 9000, code="BAD_REQUEST"),
            Case("non-ASCII token", "GET", bal, token="v1.u.\u00e9".encode("utf-8"),
                 expect=401, code="TOKEN_INVALID"),
            Case("signed with another key", "GET", seats,
                 token=self.sign("a", UA, CONCERT, self.nA, key=b"k" * 32), expect=401,
                 code="TOKEN_INVALID"),
            Case("signed with an empty key", "GET", seats,
                 token=self.sign("a", UA, CONCERT, self.nA, key=b""), expect=401,
                 code="TOKEN_INVALID"),
            Case("expired ACTIVE token", "GET", seats,
                 token=self.sign("a", UA, CONCERT, self.nA, now - 700, now - 100), expect=401,
                 code="TOKEN_EXPIRED"),
            Case("expired user token", "GET", bal,
                 token=self.sign("u", UA, 0, 0, now - 7200, now - 1), expect=401,
                 code="TOKEN_EXPIRED"),
            Case("token expiring now", "GET", bal, token=self.sign("u", UA, 0, 0, now - 60, now),
                 expect=401, code="TOKEN_EXPIRED"),
            # genuine tokens of the wrong kind, concert or turn
            Case("WAITING token on the seat map", "GET", seats, token=self.wC, expect=403,
                 code="NOT_ACTIVE"),
            Case("WAITING token on a hold", "POST", hold, token=self.wC,
                 body={"scheduleId": SCHEDULE, "seatNumber": 1}, expect=403, code="NOT_ACTIVE"),
            Case("WAITING token on a payment", "POST", "/api/payments", token=self.wB,
                 body={"reservationId": self.rB}, expect=403, code="NOT_ACTIVE"),
            Case("user token on a hold", "POST", hold, token=self.uA,
                 body={"scheduleId": SCHEDULE, "seatNumber": 1}, expect=403, code="NOT_ACTIVE"),
            Case("user token on a payment", "POST", "/api/payments", token=self.uB,
                 body={"reservationId": self.rB}, expect=403, code="NOT_ACTIVE"),
            Case("user token on the queue status", "GET", "/api/queues/status", token=self.uA,
                 expect=403, code="TOKEN_WRONG_KIND"),
            Case("ACTIVE token of concert 4 on concert 3's seat map", "GET",
                 "/api/concerts/%d/schedules/%d/seats" % (OTHER_CONCERT, OTHER_SCHEDULE),
                 token=self.tA, expect=403, code="TOKEN_WRONG_CONCERT"),
            Case("ACTIVE token of concert 4 on concert 1's schedule", "GET",
                 "/api/concerts/%d/schedules/%d/seats" % (CONCERT, FOREIGN_SCHEDULE),
                 token=self.tA, expect=404, code="SCHEDULE_NOT_FOUND"),
            Case("ACTIVE token of concert 4 holding in concert 1", "POST", hold, token=self.tA,
                 body={"scheduleId": FOREIGN_SCHEDULE, "seatNumber": 1}, expect=404,
                 code="SCHEDULE_NOT_FOUND"),
            Case("ACTIVE token of concert 3 paying a hold of concert 4", "POST",
                 "/api/payments", token=self.tB3, body={"reservationId": self.rB},
                 expect=403, code="WRONG_CONCERT"),
            Case("genuine ACTIVE token never admitted", "GET", seats, token=self.aD,
                 expect=401, code="TOKEN_REVOKED"),
            Case("genuine ACTIVE token never admitted, hold", "POST", hold, token=self.aD,
                 body={"scheduleId": SCHEDULE, "seatNumber": 1}, expect=401,
                 code="TOKEN_REVOKED"),
        ]
        old = self.old_key()
        if old is not None:
            cases.append(Case("signed with the retired key", "GET", seats,
                              token=self.sign("a", UA, CONCERT, self.nA, key=old), expect=401,
                              code="TOKEN_INVALID"))
        return cases

    def old_key(self):
        """The stack's previous key, unless the workers still accept it."""
        s = self.stack
        try:
            with open(s.conf_file) as f:
                if re.search(r"(?m)^\s*key_file_old\s*=\s*\S", f.read()):
                    return None
            with open(s.old_key_file, "rb") as f:
                return f.read()
        except OSError:
            return None

    def cases_other_users(self):
        balB = "/api/users/%s/balance" % UB
        resB = "/api/reservations/%s" % self.rB
        cases = [
            Case("balance of B with A's user token", "GET", balB, token=self.uA, expect=403,
                 code="FORBIDDEN"),
            Case("balance of B with A's ACTIVE token", "GET", balB, token=self.tA,
                 expect=403, code="FORBIDDEN"),
            Case("balance of B, upper-case path", "GET", balB.upper().replace("/API/", "/api/")
                 .replace("/USERS/", "/users/").replace("/BALANCE", "/balance"),
                 token=self.uA, expect=403, code="FORBIDDEN"),
            Case("balance of a user that does not exist", "GET",
                 "/api/users/%s/balance" % NOBODY, token=self.uA, expect=403, code="FORBIDDEN"),
            Case("charge B with A's token", "POST", balB + "/charge", token=self.uA,
                 body={"amount": 100}, expect=403, code="FORBIDDEN"),
            Case("charge B with A's token and a key", "POST", balB + "/charge", token=self.tA,
                 body={"amount": 100}, headers=[("Idempotency-Key", "steal-1")], expect=403,
                 code="FORBIDDEN"),
            Case("B's reservation with A's user token", "GET", resB, token=self.uA,
                 expect=404, code="RESERVATION_NOT_FOUND"),
            Case("B's reservation with A's ACTIVE token", "GET", resB, token=self.tA,
                 expect=404, code="RESERVATION_NOT_FOUND"),
            Case("B's reservation with C's WAITING token", "GET", resB, token=self.wC,
                 expect=404, code="RESERVATION_NOT_FOUND"),
            Case("B's reservation, upper case, A's token", "GET", resB.upper()
                 .replace("/API/RESERVATIONS/", "/api/reservations/"), token=self.uA,
                 expect=404, code="RESERVATION_NOT_FOUND"),
            Case("release B's hold with A's user token", "DELETE", resB, token=self.uA,
                 expect=404, code="RESERVATION_NOT_FOUND"),
            Case("release B's hold with A's ACTIVE token", "DELETE", resB, token=self.tA,
                 expect=404, code="RESERVATION_NOT_FOUND"),
            Case("pay B's hold with A's ACTIVE token", "POST", "/api/payments", token=self.tA,
                 body={"reservationId": self.rB}, expect=404, code="RESERVATION_NOT_FOUND"),
            Case("pay B's hold with A's token and a key", "POST", "/api/payments",
                 token=self.tA, body={"reservationId": self.rB},
                 headers=[("Idempotency-Key", "steal-2")], expect=404,
                 code="RESERVATION_NOT_FOUND"),
            Case("hold B's seat with A's ACTIVE token", "POST", "/api/reservations",
                 token=self.tA, body={"scheduleId": SCHEDULE, "seatNumber": self.seat},
                 expect=409, code="SEAT_TAKEN"),
        ]
        return cases

    def cases_idempotency_key(self):
        # B's charge with A's token: a key that passes validation gets 403,
        # so no key here can ever move money
        charge = "/api/users/%s/balance/charge" % UB
        keys = [("129 characters", "k" * 129, "has a bad length"),
                ("4000 characters", "k" * 4000, None),
                ("a space inside", "a b", None),
                ("a tab inside", "a\tb", None),
                ("a control character", b"a\x01b", None),
                ("an escape character", b"a\x1b[31mred", None),
                ("DEL", b"a\x7fb", None),
                ("Latin-1 byte", b"a\xffb", None),
                ("UTF-8 Cyrillic", "\u043a\u043b\u044e\u0447".encode("utf-8"), None),
                ("SQL with spaces", "'; DELETE FROM ledger;--", None)]
        cases = []
        for n, k, _ in keys:
            cases.append(Case("Idempotency-Key on a charge: " + n, "POST", charge,
                              token=self.uA, body={"amount": 100},
                              headers=[("Idempotency-Key", k)], code="INVALID_FIELD"))
        for n, k, _ in keys[:4] + keys[6:8]:
            cases.append(Case("Idempotency-Key on a payment: " + n, "POST", "/api/payments",
                              token=self.tA, body={"reservationId": self.rB},
                              headers=[("Idempotency-Key", k)], code="INVALID_FIELD"))
        cases += [
            Case("Idempotency-Key with CR (header injection)", "POST", charge, token=self.uA,
                 body={"amount": 100}, headers=[("Idempotency-Key", b"a\rX-Evil: 1")],
                 code=("BAD_REQUEST", "INVALID_FIELD")),
            Case("Idempotency-Key with NUL", "POST", charge, token=self.uA,
                 body={"amount": 100}, headers=[("Idempotency-Key", b"a\x00b")],
                 code="BAD_REQUEST"),
            Case("Idempotency-Key on a bad body", "POST", charge, token=self.uA,
                 body={"amount": -1}, headers=[("Idempotency-Key", "ok-key")],
                 code="INVALID_FIELD"),
        ]
        return cases

    # ---------------------------------------------------------------- tests
    def test_bad_json_bodies(self):
        self.run_cases(self.cases_bad_json(), "bad JSON bodies")

    def test_content_type_and_length(self):
        self.run_cases(self.cases_content_type_and_length(), "bad Content-Type/Length")

    def test_numbers_out_of_bounds_and_of_the_wrong_type(self):
        self.run_cases(self.cases_numbers(), "bad numbers")

    def test_strings_unicode_lookalikes_nul_and_invalid_utf8(self):
        self.run_cases(self.cases_strings_unicode_nul(), "bad strings")

    def test_sql_injection_in_every_field_and_path_segment(self):
        self.run_cases(self.cases_injection(), "injection attempts")

    def test_paths_traversal_encoding_and_length(self):
        self.run_cases(self.cases_paths(), "bad paths")

    def test_methods_and_malformed_http(self):
        self.run_cases(self.cases_methods_and_http(), "bad methods and HTTP")

    def test_forged_altered_expired_and_misused_tokens(self):
        self.run_cases(self.cases_tokens(), "bad tokens")

    def test_other_users_data_is_out_of_reach(self):
        before = self.balance(B)
        self.run_cases(self.cases_other_users(), "requests on another user's data")
        self.assertEqual(self.balance(B), before)
        # the victim's hold is untouched and still theirs
        st, _, b = self.stack.http("GET", "/api/reservations/%s" % self.rB,
                                   headers={"Authorization": "Bearer " + self.uB})
        self.assertEqual((st, b.get("status"), b.get("seatNumber")), (200, "HELD", self.seat), b)

    def test_other_users_reservation_looks_like_no_reservation(self):
        """No enumeration: another user's reservation and a reservation that
        does not exist get the same answer, byte for byte; so do the balance
        of another user and of a user that does not exist."""
        def ans(path, method="GET"):
            st, _, body = send_raw(self.port, Case("x", method, path, token=self.uA).request())
            return st, body
        for method in ("GET", "DELETE"):
            self.assertEqual(ans("/api/reservations/%s" % self.rB, method),
                             ans("/api/reservations/%s" % RANDOM_RES, method))
        self.assertEqual(ans("/api/users/%s/balance" % UB),
                         ans("/api/users/%s/balance" % NOBODY))

    def test_idempotency_key_abuse(self):
        self.run_cases(self.cases_idempotency_key(), "bad Idempotency-Keys")

    def balance(self, i):
        return int(self.stack.psql_value("SELECT balance FROM users WHERE id = '%s'"
                                         % user_uuid(i)))


class TestHostileContract(HostileTest):
    """Edges of the contract that were once broken: each test names what
    went wrong. They send nothing that could change state even when the
    service gets it wrong."""

    def test_nginx_refusals_are_json_4xx(self):
        """nginx's own refusals must be 4xx JSON like the rest of the API.
        Fails while conf/nginx/boxoffice.conf has no JSON page for 405 (TRACE,
        CONNECT), maps nothing for 501 (unknown Transfer-Encoding) and 505
        (HTTP/2.0 request line), and the two /api/queues/ locations replace
        the server's error_page list without naming 400 again (their
        malformed chunked bodies get nginx's HTML 400)."""
        cases = [
            Case("TRACE", "TRACE", "/api/ping", expect=405),
            Case("CONNECT", "CONNECT", "/api/ping", expect=405),
            Case("Transfer-Encoding gzip", "GET", "/api/ping",
                 headers=[("Transfer-Encoding", "gzip")], expect=(400, 411, 415)),
            Case("Transfer-Encoding chunked, gzip", "POST", "/api/reservations", length=False,
                 body=b"", headers=[("Transfer-Encoding", "chunked, gzip")],
                 expect=(400, 411, 415)),
            Case("HTTP/2.0 request line", "GET", "/api/ping",
                 raw=b"GET /api/ping HTTP/2.0\r\nHost: x\r\nConnection: close\r\n\r\n",
                 expect=(400, 426)),
            Case("bad chunk size on the queue join", "POST", "/api/queues/token", length=False,
                 body=b"zz\r\n{}\r\n0\r\n\r\n", headers=[("Transfer-Encoding", "chunked")],
                 code="BAD_REQUEST"),
            Case("bad chunk size on the queue status", "GET", "/api/queues/status",
                 length=False, body=b"fffffffffffffffffffff\r\n",
                 headers=[("Transfer-Encoding", "chunked")], code="BAD_REQUEST"),
        ]
        self.run_cases(cases, "requests nginx refuses")

    def test_micro_cached_reads_keep_exact_path_matching(self):
        """docs/api.md section 1: paths are matched raw, without
        percent-decoding, doubled slashes or dot segments, so these get
        400/404. Fails while the nginx micro-cache (conf/nginx/boxoffice.conf,
        location ~ ^/api/concerts...) matches and keys on nginx's normalised
        $uri: when the canonical answer is cached, these spellings get it
        (200), when it is not, the worker's 400/404."""
        for path in ("/api/concerts", "/api/concerts/4/schedules"):
            self.assertEqual(self.stack.http("GET", path)[0], 200)
        cases = [
            Case("encoded digit", "GET", "/api/concerts/%34/schedules", code="INVALID_FIELD"),
            Case("encoded slash", "GET", "/api/concerts/4%2f/schedules", code="INVALID_FIELD"),
            Case("doubled slashes", "GET", "//api//concerts//4//schedules", expect=404,
                 code="NOT_FOUND"),
            Case("dot segment", "GET", "/api/concerts/4/./schedules", expect=404,
                 code="NOT_FOUND"),
            Case("dot-dot segment", "GET", "/api/concerts/5/../4/schedules", expect=404,
                 code="NOT_FOUND"),
            Case("list, doubled slash", "GET", "/api//concerts", expect=404, code="NOT_FOUND"),
        ]
        self.run_cases(cases, "non-canonical spellings of the cached reads")

    def test_non_json_bodies_are_bad_json(self):
        """docs/api.md: the body must be strict JSON, valid UTF-8, without
        NUL, else 400 BAD_JSON. json-c's strict mode still takes single-quoted
        keys, raw control characters in strings, NaN, "1.", overlong and
        surrogate UTF-8, and cuts keys at an escaped NUL ("concertId\\u0000x"
        is read as concertId). Each body below would be acted on if its
        concert existed (999999 does not, so they answer 404 now)."""
        u = UA.encode()
        bodies = [
            ("single-quoted keys", b"{'concertId':999999,'userId':\"%s\"}" % u),
            ("NUL escape in a key", b'{"concertId\\u0000x":999999,"userId":"%s"}' % u),
            ("NUL escape at the end of a key",
             b'{"concertId":999999,"userId\\u0000":"%s"}' % u),
            ("raw control character in a string",
             b'{"concertId":999999,"userId":"%s","x":"\x01"}' % u),
            ("overlong UTF-8 in a string",
             b'{"concertId":999999,"userId":"%s","x":"\xc0\xaf"}' % u),
            ("encoded surrogate in a string",
             b'{"concertId":999999,"userId":"%s","x":"\xed\xa0\x80"}' % u),
            ("NaN", b'{"concertId":999999,"userId":"%s","x":NaN}' % u),
            ("a number ending in a dot", b'{"concertId":999999,"userId":"%s","x":1.}' % u),
        ]
        cases = [Case(n, "POST", "/api/queues/token", body=b, code="BAD_JSON")
                 for n, b in bodies]
        self.run_cases(cases, "bodies that are not JSON")

    def test_content_type_is_application_json_and_nothing_more(self):
        """docs/api.md: a body must be sent as application/json, parameters
        such as charset allowed (RFC 9110 8.3), else 415
        UNSUPPORTED_MEDIA_TYPE. Fails while src/http.c takes any
        Content-Type that starts with "application/json" and a space: the
        bodies below (a join of a user that does not exist) were read as
        JSON and answered 404 USER_NOT_FOUND. The spellings RFC 9110 allows
        are still read as JSON (404 here)."""
        J = "/api/queues/token"
        ok = {"concertId": CONCERT, "userId": NOBODY}
        refused = ["application/json garbage", "application/json garbage; charset=utf-8",
                   "application/json; charset=utf-8 garbage", "application/json charset=utf-8",
                   "application/json text/plain", "application/json,text/plain",
                   "application/json; charset", "application/json; charset = utf-8",
                   "application/json; charset=\"utf-8", "application/json/x",
                   "application /json", "application/json\t<script>"]
        taken = ["Application/JSON", "application/json;charset=UTF-8",
                 "application/json ; charset=utf-8", "application/json;",
                 "application/json; charset=\"utf-8\"", "application/json; a=1; b=\"x y\""]
        cases = [Case("Content-Type %r" % ct, "POST", J, body=ok, ctype=ct, expect=415,
                      token=self.uNobody, code="UNSUPPORTED_MEDIA_TYPE") for ct in refused]
        cases += [Case("Content-Type %r" % ct, "POST", J, body=ok, ctype=ct, expect=404,
                       token=self.uNobody, code="USER_NOT_FOUND") for ct in taken]
        # the same on the routes that move money and seats
        cases += [Case("Content-Type with garbage on a charge", "POST",
                       "/api/users/%s/balance/charge" % UA, token=self.uA, body={"amount": 1},
                       ctype="application/json x", expect=415, code="UNSUPPORTED_MEDIA_TYPE"),
                  Case("Content-Type with garbage on a hold", "POST", "/api/reservations",
                       token=self.wC, body={"scheduleId": SCHEDULE, "seatNumber": 1},
                       ctype="application/json x", expect=415, code="UNSUPPORTED_MEDIA_TYPE")]
        self.run_cases(cases, "Content-Types that are not application/json")

    def test_content_length_with_leading_zeros_is_a_length(self):
        """RFC 9110 8.6: Content-Length is 1*DIGIT, so "012" is 12, and nginx
        takes it so. Fails while src/http.c reads it as a path id (no
        leading zero) and answers 400 "Content-Length is not a number" to
        a request nginx accepted. Signs, spaces, other characters and
        lengths over the limit are still refused."""
        J = "/api/queues/token"
        body = json.dumps({"concertId": 999999, "userId": NOBODY}).encode()
        n = len(body)

        def cl(value, b=body, **kw):
            return Case("Content-Length %r" % value[:40], "POST", J, body=b, length=False,
                        token=self.uNobody, headers=[("Content-Length", value)], **kw)
        cases = [cl("0%d" % n, expect=404, code="CONCERT_NOT_FOUND"),
                 cl("000%d" % n, expect=404, code="CONCERT_NOT_FOUND"),
                 cl("0" * 40 + str(n), expect=404, code="CONCERT_NOT_FOUND"),
                 cl("0", b=b"", code="BAD_JSON"),
                 cl("0000", b=b"", code="BAD_JSON"),
                 cl("+%d" % n, code="BAD_REQUEST"),
                 cl("%d %d" % (n // 10, n % 10), code="BAD_REQUEST"),
                 cl("0x%x" % n, code="BAD_REQUEST"),
                 cl("%d.0" % n, code="BAD_REQUEST"),
                 cl("-0%d" % n, code="BAD_REQUEST"),
                 cl("0%d" % 9000, b=b'{"pad":"' + b"x" * 8990 + b'"}', expect=413,
                    code="BODY_TOO_LARGE"),
                 cl("0" * 30 + "20000000", b=b"", expect=413, code="BODY_TOO_LARGE")]
        self.run_cases(cases, "Content-Lengths")

    def test_empty_idempotency_key_is_refused(self):
        """docs/api.md: a key must be 1 to 128 characters, else 400
        INVALID_FIELD. An empty header never reaches the worker (nginx's
        `fastcgi_param HTTP_IDEMPOTENCY_KEY ... if_not_empty` drops it), so
        the request runs without a key and a retry is not protected."""
        charge = "/api/users/%s/balance/charge" % UB     # A's token: 403 if run
        cases = [Case("empty Idempotency-Key", "POST", charge, token=self.uA,
                      body={"amount": 100}, headers=[("Idempotency-Key", "")],
                      code="INVALID_FIELD"),
                 Case("blank Idempotency-Key", "POST", charge, token=self.uA,
                      body={"amount": 100}, headers=[("Idempotency-Key", "   ")],
                      code="INVALID_FIELD")]
        self.run_cases(cases, "empty Idempotency-Keys")

    def test_reload_with_an_unreadable_key_is_all_or_nothing(self):
        """A reload whose token.key_file cannot be read must either refuse
        the whole file (old settings and keys stay, "reload refused" in the
        log, as for any bad setting) or stop accepting tokens (503, as the
        worker's log line "token keys not loaded (token checks answer 503)"
        says). Fails while src/main.c load() applies every other setting of
        the file but keeps the previous keys: after a key theft, a mistyped
        path leaves the stolen key accepted while the log says otherwise.
        The marker setting here is http.max_body = 64."""
        s = self.stack
        bal = "/api/users/%s/balance" % UA
        small = {"concertId": 999999, "userId": UA, "pad": "p" * 80}
        key, body = ("token", "key_file"), ("http", "max_body")
        saved = {key: s.overrides.get(key), body: s.overrides.get(body)}

        def state():
            st = self.stack.http("GET", bal, headers={"Authorization": "Bearer " + self.uA})[0]
            applied = self.stack.http("POST", "/api/queues/token", body=small)[0] == 413
            return st, applied

        def settle(overrides):
            for k, v in overrides.items():
                if v is None:
                    s.overrides.pop(k, None)
                else:
                    s.overrides[k] = v
            s.reload()
            time.sleep(0.15)
            self.concurrently(lambda i: s.http("GET", "/api/ping"), 4 * s.processes,
                              threads=8)
            time.sleep(0.2)
        try:
            settle({key: s.path("conf", "no-such.key"), body: "64"})
            seen = {state() for _ in range(3 * s.workers)}
        finally:
            settle(saved)
            self.wait_for(lambda: all(state() == (200, False) for _ in range(3 * s.workers)),
                          timeout=15, interval=0.2, msg="the old settings back")
        refused = seen == {(200, False)}
        closed = all(st == 503 for st, _ in seen)
        self.assertTrue(refused or closed, "after a reload with an unreadable key file "
                        "(balance status, max_body=64 in force): %s" % sorted(seen))

    @destructive
    def test_long_method_does_not_crash_workers(self):
        """A request method of 1,000 to 8,000 letters (nginx passes it on)
        must get 405, not kill the worker. src/log.c log_access() adds
        snprintf's would-be length to its offset, so a method longer than
        the 1 KiB line buffer makes the next snprintf write past the
        buffer (size_t underflow): stack smashing, the worker dies, nginx
        answers 502 and multiwatch respawns it."""
        try:
            cases = [Case("a %d-letter method" % n, "A" * n, "/api/ping", expect=405,
                          code="METHOD_NOT_ALLOWED") for n in (1000, 1010, 1500, 2000, 4000)]
            self.run_cases(cases, "long methods")
        finally:
            self.stack.wait_workers(timeout=30)


class TestStaticTraversal(StackTest):

    def test_traversal_out_of_the_api_never_serves_files(self):
        """Paths that leave /api/ after nginx normalises them reach the static
        site (docs/api.md section 6: its errors are nginx's HTML pages); they
        must still be refused and never serve anything outside www/."""
        for path in ("/api/../etc/passwd", "/api/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
                     "/..%2f..%2f..%2fetc%2fpasswd", "/api/../../../../etc/shadow",
                     "/api/..%5c..%5cetc%5cpasswd", "/%2e%2e/conf/boxoffice.conf",
                     "/api/../../conf/boxoffice.conf", "/.boxoffice-error/400",
                     "/api/%2e%2e/.git/config"):
            st, hdr, body = send_raw(self.stack.http_port,
                                     Case(path, "GET", path).request())
            self.assertIn(st, (400, 403, 404), "%s: %d %r" % (path, st, body[:200]))
            for secret in (b"root:", b"[database]", b"key_file", b"[core]"):
                self.assertNotIn(secret, body, path)


class TestCachePoisoning(StackTest):

    def _concert_of(self, path):
        st, _, b = self.stack.http("GET", path)
        self.assertEqual(st, 200, b)
        return b.get("concertId")

    def test_micro_cache_cannot_be_poisoned(self):
        """nginx keys its micro-cache on the normalised path while the worker
        answers the raw one. Requests whose normalised path is concert 4's
        schedules but whose raw path names concert 5 (or nothing) are sent
        just when the cached answer has expired, so that their answer would
        be stored under concert 4's key if the worker gave one: concert 4's
        schedules must stay concert 4's."""
        tricks = [b"/api/concerts/5/schedules%23/../../4/schedules",
                  b"/api/concerts/5/schedules%3F/../../4/schedules",
                  b"/api/concerts/5/schedules#/../../4/schedules",
                  b"/api/concerts/5/..%2f4/schedules",
                  b"/api/concerts/5/schedules;/../../4/schedules"]
        for trick in tricks:
            self.assertEqual(self._concert_of("/api/concerts/4/schedules"), 4)
            time.sleep(1.2)             # the cached answer has expired
            for _ in range(3):
                send_raw(self.stack.http_port, Case("trick", "GET", trick).request())
            time.sleep(0.2)             # a background refresh would be done
            for _ in range(3):
                self.assertEqual(self._concert_of("/api/concerts/4/schedules"), 4, trick)
            self.assertEqual(self._concert_of("/api/concerts/5/schedules"), 5, trick)


class TestSlowClients(StackTest):

    def test_slow_clients_do_not_hold_workers(self):
        """nginx buffers a whole request (headers and body) before it takes a
        worker, so clients that trickle or stall hold no worker: with many
        more stalled requests than workers, other requests still answer at
        once."""
        s = self.stack
        pids = s.worker_pids()
        start = os.path.getsize(s.access_log)
        stalled = []
        try:
            for i in range(3 * s.processes):
                c = socket.create_connection(("127.0.0.1", s.http_port), timeout=10)
                if i % 2:       # headers never finished
                    c.sendall(b"POST /api/queues/token HTTP/1.1\r\nHost: x\r\n"
                              b"Content-Type: application/json\r\nX-Slow: ")
                else:           # body promised, a little of it sent
                    c.sendall(b"POST /api/users/%s/balance/charge HTTP/1.1\r\nHost: x\r\n"
                              b"Content-Type: application/json\r\nContent-Length: 1000\r\n"
                              b"\r\n{\"amount\":" % UA.encode())
                stalled.append(c)
            time.sleep(0.5)
            t0 = time.time()
            res = self.concurrently(lambda i: s.http("GET", "/api/ping", timeout=5)[0],
                                    4 * s.processes, threads=16)
            took = time.time() - t0
            self.assertEqual(res, [200] * len(res))
            self.assertLess(took, 3.0, "pings took %.1fs behind stalled clients" % took)
        finally:
            for c in stalled:
                c.close()
        time.sleep(0.3)
        with open(s.access_log, errors="replace") as f:
            f.seek(start)
            text = f.read()
        self.assertNotIn("/balance/charge", text, "a stalled request reached a worker")
        self.assertEqual(s.worker_pids(), pids)


class TestTrickledBodies(StackTest):

    TRICKLERS = 300
    LIMIT = 32                      # limit_conn in conf/nginx/boxoffice.conf

    def test_trickled_bodies_from_one_address_do_not_keep_others_out(self):
        """A POST that declares Content-Length: 16000 and sends one byte now
        and then holds an nginx connection for hours: client_body_timeout
        bounds only the gap between two reads. With the production limits
        on (a second nginx, @RATE_LIMITS@ on), one address holds at most
        32 such connections (limit_conn): of 300 trickled requests from
        127.0.0.1 the others, and a new request from it, are refused 429
        JSON at once, while a client at 127.0.0.2 is served at once, and
        127.0.0.1 again as soon as its tricklers are gone. Fails while
        conf/nginx/boxoffice.conf has no limit_conn: all 300 are held."""
        s = self.stack
        port = s.start_extra_nginx(rate_limits=True, name="trickle")
        self.addCleanup(s.stop_extra_nginx, "trickle")
        head = (b"POST /api/reservations HTTP/1.1\r\nHost: x\r\n"
                b"Content-Type: application/json\r\nContent-Length: 16000\r\n\r\n{")
        ping = Case("ping", "GET", "/api/ping").request()
        nobody = s.user_token(NOBODY)
        join = Case("join", "POST", "/api/queues/token", token=nobody,
                    body={"concertId": 999999, "userId": NOBODY}).request()
        socks = []
        try:
            for _ in range(self.TRICKLERS):
                c = socket.create_connection(("127.0.0.1", port), timeout=10)
                c.sendall(head)
                socks.append(c)
            # nginx answers a refusal at once; a busy machine gets 10 s for it
            answers = [b""] * len(socks)
            for c in socks:
                c.setblocking(False)
            deadline = time.time() + 10
            while True:
                for i, c in enumerate(socks):
                    if not answers[i]:
                        try:
                            answers[i] = c.recv(65536)
                        except BlockingIOError:
                            pass
                held = [c for c, a in zip(socks, answers) if not a]
                if len(held) <= self.LIMIT or time.time() > deadline:
                    break
                time.sleep(0.2)
            refused = [parse_response(a) for a in answers if a]
            self.assertLessEqual(len(held), self.LIMIT, "%d of %d trickled requests from one "
                                 "address are held" % (len(held), self.TRICKLERS))
            self.assertGreater(len(held), 0, "no trickled request was held at all")
            bad = [(st, b[:80]) for st, _, b in refused
                   if st != 429 or json.loads(b)["error"]["code"] != "RATE_LIMITED"]
            self.assertEqual(bad, [], "refusals that are not 429 RATE_LIMITED")
            # the trickle goes on; another address is served at once, this one is not
            for _ in range(3):
                for c in held:
                    c.setblocking(True)
                    c.sendall(b" ")
                for req, want in ((ping, 200), (join, 404)):
                    st, _, b, took = send_from("127.0.0.2", port, req)
                    self.assertEqual(st, want, b[:200])
                    self.assertLess(took, 2.0, "127.0.0.2 waited %.2fs behind the tricklers"
                                    % took)
                st, _, b, _ = send_from("127.0.0.1", port, ping)
                self.assertEqual((st, json.loads(b)["error"]["code"]), (429, "RATE_LIMITED"),
                                 "a new request from the trickling address")
                time.sleep(1.0)
        finally:
            for c in socks:
                c.close()
        self.wait_for(lambda: send_from("127.0.0.1", port, ping)[0] == 200, timeout=10,
                      interval=0.2, msg="127.0.0.1 served again once its tricklers left")


class TestLogs(HostileTest):

    def test_no_token_key_or_balance_in_the_logs(self):
        """The access logs (worker and nginx) and the error logs never hold
        tokens, Idempotency-Keys or balances, whatever the requests were."""
        secret_key = "hostile-key-%d" % os.getpid()
        toks = [self.tA, self.tB, self.uA, self.uB, self.wC]
        reqs = [
            Case("balance", "GET", "/api/users/%s/balance" % UB, token=self.uB, expect=200),
            Case("bad charge", "POST", "/api/users/%s/balance/charge" % UB, token=self.uA,
                 body={"amount": 100}, headers=[("Idempotency-Key", secret_key)]),
            Case("bad token", "GET", "/api/users/%s/balance" % UA, token=self.tA + "x"),
            Case("long token", "GET", "/api/users/%s/balance" % UA, token=self.uA * 20),
            Case("seat map", "GET", "/api/concerts/4/schedules/16/seats", token=self.tA),
        ]
        for c in reqs:
            send_raw(self.stack.http_port, c.request())
        st, _, b = self.stack.http("GET", "/api/users/%s/balance" % UB,
                                   headers={"Authorization": "Bearer " + self.uB})
        balance = str(b["balance"])
        time.sleep(0.3)
        s = self.stack
        logs = [s.access_log, s.path("logs", "boxoffice-access.log"),
                s.path("logs", "boxoffice-error.log"), s.path("logs", "worker.log"),
                s.path("logs", "nginx-error.log")]
        leaks = []
        for path in logs:
            if not os.path.exists(path):
                continue
            with open(path, errors="replace") as f:
                text = f.read()
            for t in toks:
                mac = t.rsplit(".", 1)[1]
                if mac in text:
                    leaks.append("%s holds a token signature" % os.path.basename(path))
            if secret_key in text:
                leaks.append("%s holds an Idempotency-Key" % os.path.basename(path))
            if re.search(r'balance["=: ]+%s\b' % balance, text):
                leaks.append("%s holds a balance" % os.path.basename(path))
        self.assertEqual(sorted(set(leaks)), [])


class TestKeyRotation(HostileTest):
    """Signing keys: a planned rotation keeps the previous key for checking
    only; after a key theft the stolen key is dropped and every token dies
    at once, while places in the queue survive (joining again returns the
    same place with a token signed by the new key). Reads only; the workers
    reload (SIGHUP), none restarts, and the settings are put back."""

    def _reload(self, overrides, check, want):
        """Reload with overrides, then wait until every worker answers check()
        with want (a worker takes new settings with its next request)."""
        s = self.stack
        for k, v in overrides.items():
            if v is None:
                s.overrides.pop(k, None)
            else:
                s.overrides[k] = v
        s.reload()
        time.sleep(0.15)
        self.concurrently(lambda i: s.http("GET", "/api/ping"), 4 * s.processes, threads=8)
        self.wait_for(lambda: all(check() == want for _ in range(3 * s.workers)),
                      timeout=15, interval=0.1, msg="%s in every worker" % (overrides,))

    def _status(self, path, token):
        return self.stack.http("GET", path, headers={"Authorization": "Bearer " + token})[0]

    def test_planned_rotation_accepts_the_previous_key_until_it_is_dropped(self):
        s = self.stack
        pids = s.worker_pids()
        with open(s.old_key_file, "rb") as f:
            previous = f.read()
        bal = "/api/users/%s/balance" % UA
        old = self.sign("u", UA, exp=int(time.time()) + 600, key=previous)
        self.assertEqual(self._status(bal, old), 401)
        key = ("token", "key_file_old")
        saved = s.overrides.get(key)
        try:
            self._reload({key: s.old_key_file}, lambda: self._status(bal, old), 200)
            self.assertEqual(self._status(bal, self.uA), 200, "the current key still works")
        finally:
            self._reload({key: saved}, lambda: self._status(bal, old), 401)
        self.assertEqual(s.worker_pids(), pids, "workers restarted instead of reloading")

    def test_emergency_rotation_voids_every_token_and_keeps_queue_places(self):
        s = self.stack
        pids = s.worker_pids()
        user = 905
        self._places.append((CONCERT, user_uuid(user)))
        first = s.join(CONCERT, user_uuid(user))
        self.assertEqual(first[0], 201, first[2])
        tok, number = first[2]["token"], first[2]["queueNumber"]
        status = "/api/queues/status"
        fresh = s.path("conf", "hostile-rotation.key")
        fd = os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        fresh_key = os.urandom(32)
        with os.fdopen(fd, "wb") as f:
            f.write(fresh_key)
        self.addCleanup(os.unlink, fresh)
        key, old = ("token", "key_file"), ("token", "key_file_old")
        saved = {key: s.overrides.get(key), old: s.overrides.get(old)}
        try:
            self._reload({key: fresh, old: ""}, lambda: self._status(status, tok), 401)
            st, _, b = s.http("GET", status, headers={"Authorization": "Bearer " + tok})
            self.assertJsonError((st, _, b), 401, "TOKEN_INVALID")
            # the user's credential is signed with the emergency key too
            cred = self.sign("u", user_uuid(user), exp=int(time.time()) + 600, key=fresh_key)
            st, _, b = s.http("POST", "/api/queues/token", body={"concertId": CONCERT},
                              headers={"Authorization": "Bearer " + cred})
            self.assertEqual(st, 201, b)
            self.assertEqual((b.get("queueNumber"), b.get("rejoined")), (number, True), b)
            renewed = b["token"]
            self.assertEqual(self._status(status, renewed), 200)
        finally:
            self._reload(saved, lambda: self._status(status, tok), 200)
        self.assertEqual(self._status(status, renewed), 401, "the emergency key is gone")
        self.assertEqual(s.worker_pids(), pids, "workers restarted instead of reloading")


def load_tests(loader, standard_tests, pattern):
    suite = unittest.TestSuite()
    for cls in (TestHostileCatalogue, TestStaticTraversal, TestCachePoisoning,
                TestSlowClients, TestTrickledBodies, TestLogs, TestKeyRotation,
                TestHostileContract):
        suite.addTests(loader.loadTestsFromTestCase(cls))
    return suite

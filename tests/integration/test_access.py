"""Access levels: every route answers as the auth level it declares in the
route table, so what src/route.c says is what dispatch() enforces
(docs/api.md section 3, docs/security.md section 1).

The routes, their levels and their body fields are read from the table in
src/route.c itself: a new route is probed as soon as it is in the table,
and a level this module has no probes for fails the test. Each route gets
a request with valid fields that change nothing (a user that does not
exist, a reservation that does not exist, a seat past the last one), sent
with each kind of credential:

  no token, a malformed, forged or expired one: 401 with its code on every
      route that needs a token; never 401 or 403 on a route that needs none;
  AUTH_QUEUE: a user token is 403 TOKEN_WRONG_KIND; queue tokens pass;
  AUTH_ACTIVE: WAITING and user tokens are 403 NOT_ACTIVE, a genuine
      ACTIVE token that was never admitted 401 TOKEN_REVOKED, an ACTIVE
      token of another concert on a route naming a concert 403
      TOKEN_WRONG_CONCERT; an admitted user's ACTIVE token passes;
  AUTH_USER: another user's tokens (user and ACTIVE) are 403 FORBIDDEN;
      the path user's own token passes;
  AUTH_TOKEN: genuine tokens of every kind pass, sessions included;
  AUTH_USER also takes the path user's session, not another user's;
  AUTH_SESSION: user, WAITING and ACTIVE tokens are 403 TOKEN_WRONG_KIND;
      a genuine session passes;
  AUTH_PROVIDER: without a token 401 TOKEN_MISSING; boxoffice tokens of
      every kind are no provider's (404 NOT_CONFIGURED on this stack);
  AUTH_SIGNED_IN: WAITING and ACTIVE tokens are 403 TOKEN_WRONG_KIND; a
      user token and a session pass, and a body userId other than the
      credential's user is 403 USER_MISMATCH;
  AUTH_LOOPBACK: straight to the workers over FastCGI (cgi-fcgi, from
      libfcgi-bin), a request from a non-loopback REMOTE_ADDR is 403
      FORBIDDEN, from 127.0.0.1 or ::1 it passes (nginx refuses other
      addresses before the workers; the workers check again).

"Passes" means any answer but 401 and 403: what the route itself makes of
the request, such as 404 for the user that does not exist.

Data: demo user 931, admitted to concert 2 for a real ACTIVE token (the
place is removed again at the end); users that do not exist; tokens of
other kinds signed here with the stack's key as the service signs them
(the signer is checked against a token the service issued).
"""

import json
import os
import re
import subprocess
import time

from boxoffice_dev import tokens
from harness import StackTest, srcdir, user_uuid

CONCERT = 2
SCHEDULE = 5                     # concert 2's first schedule
OTHER_CONCERT = 3
LAST_SEAT = 100000               # the largest seatNumber: past every hall's last seat
USER = 931                       # admitted to CONCERT for the ACTIVE token
UA = user_uuid(USER)
NOBODY = "00000000-0000-4000-8000-0000000acce5"   # well formed, no such user
NO_RESERVATION = "0a0c0e55-0000-4000-8000-000000000001"
NO_TICKET = "0a0c0e55-0000-4000-8000-000000000002"
NO_CODE = "ACCE55ACCE55ACCE55AC"   # well formed (20 base32 characters), no such ticket
NO_USER = "00000000-0000-0000-0000-000000000000"   # the user of a door token
FOREIGN = "192.0.2.7"            # TEST-NET-1: never a loopback address

# Wire names of the fields in route.c's B(F_...) body masks, with values
# that pass validation and change nothing.
FIELDS = {
    "F_CONCERT_ID": ("concertId", CONCERT),
    "F_SCHEDULE_ID": ("scheduleId", SCHEDULE),
    "F_SEAT_NUMBER": ("seatNumber", LAST_SEAT),
    "F_USER_ID": ("userId", NOBODY),
    "F_RESERVATION_ID": ("reservationId", NO_RESERVATION),
    "F_RESERVATION_IDS": ("reservationIds", [NO_RESERVATION]),
    "F_AMOUNT": ("amount", 1),
    "F_EMAIL": ("email", "nobody@access.boxoffice.test"),
    # empty: refused by the validator (400) before any account is looked
    # up, made or counted as a failed sign-in
    "F_PASSWORD": ("password", ""),
}
# Path captures, likewise.
CAPTURES = {"concertId": str(CONCERT), "scheduleId": str(SCHEDULE), "userId": NOBODY,
            "reservationId": NO_RESERVATION, "ticketId": NO_TICKET, "code": NO_CODE}

TOKEN_LEVELS = ("AUTH_TOKEN", "AUTH_QUEUE", "AUTH_ACTIVE", "AUTH_USER", "AUTH_SESSION",
                "AUTH_SIGNED_IN")
OPEN_LEVELS = ("AUTH_NONE", "AUTH_LOOPBACK")
# An identity provider's JWT, not a boxoffice token (test_provider.py
# signs real ones; this stack has no provider configured).
PROVIDER_LEVELS = ("AUTH_PROVIDER",)
# A door token (boxofficectl door-token): kind d, of a concert, no user.
DOOR_LEVELS = ("AUTH_DOOR",)

_ENTRY = re.compile(r'\{\s*"([A-Z]+)",\s*"([^"]+)",\s*(AUTH_[A-Z_]+),\s*(\w+),'
                    r'\s*([^,{}]+),\s*([^,{}]+),\s*([^,{}]+),\s*([^,{}]+)\}', re.S)


def route_table():
    """[(method, pattern, level, body fields)] from src/route.c: the
    required fields and the first of the fields of which exactly one must
    be sent."""
    with open(os.path.join(srcdir(), "src", "route.c")) as f:
        text = f.read()
    table = text[text.index("routes[] = {"):]
    table = table[:table.index("\n};")]
    rows = _ENTRY.findall(table)
    # every row of the table parsed, or a route would silently go unprobed
    if len(rows) != len(re.findall(r'\{\s*"[A-Z]+",', table)) or not rows:
        raise AssertionError("src/route.c: cannot read every row of the route table")
    return [(m, p, level, re.findall(r"F_[A-Z_]+", required)
             + re.findall(r"F_[A-Z_]+", one_of)[:1])
            for m, p, level, _handler, required, _optional, _flags, one_of in rows]


def auth_levels():
    """The names of enum auth_need in src/auth.h."""
    with open(os.path.join(srcdir(), "src", "auth.h")) as f:
        text = f.read()
    enum = text[text.index("enum auth_need {"):]
    return re.findall(r"\b(AUTH_[A-Z_]+)\b", enum[:enum.index("};")])


class Route:
    """One row of the route table, as a request that changes nothing."""

    def __init__(self, method, pattern, level, fields):
        self.method, self.pattern, self.level = method, pattern, level
        self.path = re.sub(r"\{(\w+)\}", lambda m: CAPTURES[m.group(1)], pattern)
        self.body = {FIELDS[f][0]: FIELDS[f][1] for f in fields} if fields else None
        self.names_concert = "{concertId}" in pattern or (self.body or {}).get("concertId")

    def __repr__(self):
        return "%s %s (%s)" % (self.method, self.pattern, self.level)


class TestAccessLevels(StackTest):
    """Each route's declared level, probed with every kind of credential."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        s = cls.stack
        with open(s.key_file, "rb") as f:
            cls.key = f.read()
        cls.routes = [Route(*row) for row in route_table()]
        cls._joined = False
        try:
            cls.active = cls._admit()
        except BaseException:
            cls._leave()
            raise
        now = int(time.time())
        n = int(cls.active.split(".")[4])
        cls.tokens = {
            "user": cls.sign("u", UA),
            "waiting": cls.sign("w", UA, CONCERT, n + 100000, exp=now + 86400),
            "active": cls.active,
            "never admitted": cls.sign("a", NOBODY, CONCERT, n + 100001),
            "other concert": cls.sign("a", UA, OTHER_CONCERT, n),
            "path user": cls.sign("u", NOBODY),
            "session": cls.sign_session(UA),
            "path user session": cls.sign_session(NOBODY),
            "door": cls.sign("d", NO_USER, CONCERT, 0, exp=now + 3600),
        }

    @classmethod
    def tearDownClass(cls):
        try:
            cls._leave()
        finally:
            super().tearDownClass()

    @classmethod
    def sign(cls, kind, user, concert=0, number=0, iat=None, exp=None, key=None):
        return tokens.sign(cls.key if key is None else key, kind, user, concert, number,
                           iat, exp)

    @classmethod
    def sign_session(cls, user, iat=None, exp=None):
        """A session token (kind s) of user, with a fresh session id."""
        return tokens.sign_session(cls.key, user, iat=iat, exp=exp)

    @classmethod
    def _admit(cls):
        """A real ACTIVE token of USER for CONCERT (join, then poll)."""
        cls._joined = True
        st, _, b = cls.stack.join(CONCERT, UA)
        if st not in (200, 201):
            raise AssertionError("join of user %d: %d %r" % (USER, st, b))
        deadline = time.time() + 15
        while b.get("status") != "ACTIVE":
            if time.time() > deadline:
                raise AssertionError("user %d not admitted: %r" % (USER, b))
            time.sleep(0.1)
            st, _, b = cls.stack.http("GET", "/api/queues/status",
                                      headers={"Authorization": "Bearer " + b["token"]})
            if st != 200 or b.get("status") == "EXPIRED":
                raise AssertionError("poll of user %d: %d %r" % (USER, st, b))
        p = b["token"].split(".")
        again = cls.sign(p[1], p[2], int(p[3]), int(p[4]), int(p[5]), int(p[6]))
        if again != b["token"]:
            raise AssertionError("test signer does not match the service")
        return b["token"]

    @classmethod
    def _leave(cls):
        if not cls._joined:
            return
        cls.stack.drop_places(CONCERT, [UA])
        cls._joined = False

    # ------------------------------------------------------------ requests
    def call(self, rt, token=None, header=None, body=None):
        headers = {}
        if token is not None:
            headers["Authorization"] = "Bearer " + token
        if header is not None:
            headers["Authorization"] = header
        return self.http(rt.method, rt.path, body=rt.body if body is None else body,
                         headers=headers)

    def assertPasses(self, resp, rt, what):
        st, _, body = resp
        self.assertNotIn(st, (401, 403), "%r with %s: %d %r" % (rt, what, st, body))
        self.assertLess(st, 500, "%r with %s: %d %r" % (rt, what, st, body))

    def assertRefused(self, resp, rt, what, status, code):
        st, _, body = resp
        self.assertEqual((st, (body.get("error") or {}).get("code")
                          if isinstance(body, dict) else body), (status, code),
                         "%r with %s" % (rt, what))
        self.assertJsonError(resp, status, code)

    def level(self, *levels):
        return [rt for rt in self.routes if rt.level in levels]

    def fcgi(self, rt, addr):
        """rt straight to a worker over FastCGI from REMOTE_ADDR addr:
        (status, body)."""
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "REQUEST_METHOD": rt.method,
               "REQUEST_URI": rt.path, "SCRIPT_NAME": rt.path, "REMOTE_ADDR": addr,
               "SERVER_PROTOCOL": "HTTP/1.1", "GATEWAY_INTERFACE": "CGI/1.1"}
        out = subprocess.run(["cgi-fcgi", "-bind", "-connect", self.stack.socket_path],
                             env=env, stdin=subprocess.DEVNULL, capture_output=True,
                             timeout=20, check=True).stdout
        head, _, body = out.partition(b"\r\n\r\n")
        m = re.search(rb"(?im)^Status:\s*(\d{3})", head)
        status = int(m.group(1)) if m else 200
        try:
            body = json.loads(body)
        except ValueError:
            pass
        return status, body

    # --------------------------------------------------------------- tests
    def test_every_level_in_the_table_is_probed(self):
        """The table is read whole and uses only levels probed here."""
        known = set(TOKEN_LEVELS + OPEN_LEVELS + PROVIDER_LEVELS + DOOR_LEVELS)
        self.assertGreaterEqual(len(self.routes), 14)
        self.assertEqual(set(auth_levels()), known,
                         "src/auth.h has levels this module does not probe")
        for rt in self.routes:
            self.assertIn(rt.level, known, rt)
        # each level is used, so each probe below really runs
        self.assertEqual({rt.level for rt in self.routes}, known)

    def test_routes_needing_a_token_refuse_requests_without_a_good_one(self):
        now = int(time.time())
        for rt in self.level(*TOKEN_LEVELS):
            kind = "a" if rt.level == "AUTH_ACTIVE" else "u"
            user = NOBODY if rt.level == "AUTH_USER" else UA
            concert = CONCERT if kind == "a" else 0
            cases = [
                ("no token", {}, 401, "TOKEN_MISSING"),
                ("an empty Bearer", {"header": "Bearer "}, 401, "TOKEN_MISSING"),
                ("garbage", {"token": "garbage"}, 401, "TOKEN_INVALID"),
                ("a forged signature", {"token": self.sign(kind, user, concert, 1,
                                                           key=b"k" * 32)},
                 401, "TOKEN_INVALID"),
                ("an altered claim", {"token": self.tokens["user"].replace(".u.", ".a.", 1)},
                 401, "TOKEN_INVALID"),
                ("an expired token", {"token": self.sign(kind, user, concert, 1,
                                                         now - 700, now - 1)},
                 401, "TOKEN_EXPIRED"),
            ]
            for what, kw, status, code in cases:
                with self.subTest(route=repr(rt), credential=what):
                    self.assertRefused(self.call(rt, **kw), rt, what, status, code)

    def test_routes_needing_no_token_answer_without_one(self):
        for rt in self.level(*OPEN_LEVELS):
            for what, kw in (("no token", {}), ("garbage", {"token": "garbage"})):
                with self.subTest(route=repr(rt), credential=what):
                    self.assertPasses(self.call(rt, **kw), rt, what)

    def test_queue_routes_take_queue_tokens_only(self):
        for rt in self.level("AUTH_QUEUE"):
            with self.subTest(route=repr(rt)):
                self.assertRefused(self.call(rt, self.tokens["user"]), rt, "a user token",
                                   403, "TOKEN_WRONG_KIND")
                for what in ("waiting", "active"):
                    self.assertPasses(self.call(rt, self.tokens[what]), rt, what)

    def test_active_routes_take_an_admitted_active_token_only(self):
        for rt in self.level("AUTH_ACTIVE"):
            with self.subTest(route=repr(rt)):
                for what in ("waiting", "user", "path user"):
                    self.assertRefused(self.call(rt, self.tokens[what]), rt, what,
                                       403, "NOT_ACTIVE")
                self.assertRefused(self.call(rt, self.tokens["never admitted"]), rt,
                                   "a never admitted ACTIVE token", 401, "TOKEN_REVOKED")
                if rt.names_concert:
                    self.assertRefused(self.call(rt, self.tokens["other concert"]), rt,
                                       "another concert's token", 403,
                                       "TOKEN_WRONG_CONCERT")
                self.assertPasses(self.call(rt, self.tokens["active"]), rt, "active")

    def test_user_routes_take_that_users_token_only(self):
        for rt in self.level("AUTH_USER"):
            self.assertIn("{userId}", rt.pattern, rt)
            with self.subTest(route=repr(rt)):
                for what in ("user", "active", "waiting", "session"):
                    self.assertRefused(self.call(rt, self.tokens[what]), rt,
                                       "another user's %s token" % what, 403, "FORBIDDEN")
                self.assertPasses(self.call(rt, self.tokens["path user"]), rt, "own token")
                self.assertPasses(self.call(rt, self.tokens["path user session"]), rt,
                                  "own session")

    def test_token_routes_take_any_genuine_token(self):
        for rt in self.level("AUTH_TOKEN"):
            for what in ("user", "waiting", "active", "never admitted", "path user",
                         "session"):
                with self.subTest(route=repr(rt), credential=what):
                    self.assertPasses(self.call(rt, self.tokens[what]), rt, what)

    def test_session_routes_take_a_session_only(self):
        for rt in self.level("AUTH_SESSION"):
            with self.subTest(route=repr(rt)):
                for what in ("user", "waiting", "active"):
                    self.assertRefused(self.call(rt, self.tokens[what]), rt, what,
                                       403, "TOKEN_WRONG_KIND")
                # each call may end the session (sign-out): a fresh one each
                self.assertPasses(self.call(rt, self.sign_session(NOBODY)), rt, "a session")

    def test_provider_routes_take_no_boxoffice_token(self):
        for rt in self.level("AUTH_PROVIDER"):
            with self.subTest(route=repr(rt)):
                self.assertRefused(self.call(rt), rt, "no token", 401, "TOKEN_MISSING")
                # no provider here: nothing passes, whatever it is
                for what in ("user", "waiting", "active", "session"):
                    tok = self.tokens[what] if what != "session" else self.sign_session(UA)
                    self.assertRefused(self.call(rt, tok), rt, what, 404, "NOT_CONFIGURED")

    def test_signed_in_routes_take_a_users_own_credential(self):
        for rt in self.level("AUTH_SIGNED_IN"):
            with self.subTest(route=repr(rt)):
                for what in ("waiting", "active"):
                    self.assertRefused(self.call(rt, self.tokens[what]), rt, what,
                                       403, "TOKEN_WRONG_KIND")
                # NOBODY's credentials pass (the route then finds no such user)
                for what in ("path user", "path user session"):
                    self.assertPasses(self.call(rt, self.tokens[what]), rt, what)
                    if rt.body is None:
                        continue
                    own = dict(rt.body, userId=NOBODY)
                    self.assertPasses(self.call(rt, self.tokens[what], body=own), rt,
                                      what + " naming its own user")
                    other = dict(rt.body, userId=UA)
                    self.assertRefused(self.call(rt, self.tokens[what], body=other), rt,
                                       what + " naming another user", 403, "USER_MISMATCH")

    def test_door_routes_take_a_door_token_only(self):
        now = int(time.time())
        for rt in self.level("AUTH_DOOR"):
            with self.subTest(route=repr(rt)):
                self.assertRefused(self.call(rt), rt, "no token", 401, "TOKEN_MISSING")
                for what in ("user", "waiting", "active", "session"):
                    self.assertRefused(self.call(rt, self.tokens[what]), rt, what,
                                       403, "TOKEN_WRONG_KIND")
                self.assertRefused(self.call(rt, self.sign("d", NO_USER, CONCERT, 0,
                                                           now - 700, now - 1)),
                                   rt, "an expired door token", 401, "TOKEN_EXPIRED")
                self.assertRefused(self.call(rt, self.sign("d", NO_USER, CONCERT, 0,
                                                           key=b"k" * 32)),
                                   rt, "a forged door token", 401, "TOKEN_INVALID")
                self.assertPasses(self.call(rt, self.tokens["door"]), rt, "a door token")

    def test_a_door_token_opens_no_other_route(self):
        for rt in self.level(*TOKEN_LEVELS):
            with self.subTest(route=repr(rt)):
                st, _, body = self.call(rt, self.tokens["door"])
                self.assertIn(st, (401, 403), "%r with a door token: %d %r" % (rt, st, body))

    def test_loopback_routes_refuse_other_addresses_at_the_worker(self):
        for rt in self.level("AUTH_LOOPBACK"):
            with self.subTest(route=repr(rt)):
                st, body = self.fcgi(rt, FOREIGN)
                self.assertEqual(st, 403, "%r from %s: %r" % (rt, FOREIGN, repr(body)[:200]))
                self.assertEqual(body["error"]["code"], "FORBIDDEN", body)
                for addr in ("127.0.0.1", "::1"):
                    st, body = self.fcgi(rt, addr)
                    self.assertEqual(st, 200, "%r from %s: %r" % (rt, addr, repr(body)[:200]))
        # the address alone refuses nothing on the open routes
        for rt in self.level("AUTH_NONE"):
            if rt.body is None:
                with self.subTest(route=repr(rt), addr=FOREIGN):
                    st, body = self.fcgi(rt, FOREIGN)
                    self.assertNotIn(st, (401, 403), "%r: %r" % (rt, body))

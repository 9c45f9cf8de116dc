"""Routes that act for a user take the user from a credential
(docs/api.md section 3, docs/identity.md).

The queue join (AUTH_SIGNED_IN) is the signed-in caller's: a session or
an operator's user token; a body userId that differs is 403
USER_MISMATCH, a matching one or none is taken. Every route that acts for
a user is then walked with credentials that must not act for the victim:

  (a) none;
  (b) another user's session (the attacker's, genuine and signed in);
  (c) another user's queue token (the attacker's, genuine and ACTIVE);
  (d) the victim's own session after sign-out;
  (e) the victim's own session after `boxofficectl account disable`;

each one is refused (401, 403, or 404 where the SQL keeps to the
caller's rows) and nothing of the victim or the attacker changed: their
balances, reservations, payments, ledger rows, idempotency keys and queue
places, and the queue's number counter (no one joined).

Data: demo users 961 (the victim: a place in concert 3's queue, ACTIVE,
and a HELD seat of schedule 12; disabled at the end), 962 (the attacker:
signed in, ACTIVE in the same queue) and 963 (joins with and without a
userId). Their places are removed and the victim's hold released at the
end.
"""

import time

from boxoffice_dev.stack import demo_email
from harness import StackTest, user_uuid

CONCERT = 3
SCHEDULE = 12                     # concert 3's last schedule
SEATS = 50
VICTIM, ATTACKER, JOINER = 961, 962, 963
V, A, J = user_uuid(VICTIM), user_uuid(ATTACKER), user_uuid(JOINER)


class TestIdentityRoutes(StackTest):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._reservation = None
        try:
            cls._fixture()
        except BaseException:
            cls._cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            cls._cleanup()
        finally:
            super().tearDownClass()

    # ------------------------------------------------------------ fixture
    @classmethod
    def _call(cls, method, path, body=None, token=None, headers=None):
        h = dict(headers or {})
        if token is not None:
            h["Authorization"] = "Bearer " + token
        return cls.stack.http(method, path, body=body, headers=h)

    @classmethod
    def _active(cls, user, cred):
        """user's ACTIVE token in CONCERT: a join with cred (naming its own
        user, as older clients do), then polls."""
        st, _, b = cls._call("POST", "/api/queues/token", {"concertId": CONCERT, "userId": user},
                             cred)
        if st != 201:
            raise AssertionError("join of %s: %d %r" % (user, st, b))
        deadline = time.time() + 20
        while b.get("status") != "ACTIVE":
            if time.time() > deadline:
                raise AssertionError("%s not admitted: %r" % (user, b))
            time.sleep(0.1)
            st, _, b = cls._call("GET", "/api/queues/status", token=b["token"])
            if st != 200 or b.get("status") == "EXPIRED":
                raise AssertionError("poll of %s: %d %r" % (user, st, b))
        return b["token"]

    @classmethod
    def _sign_in(cls, user):
        return cls.stack.sign_in(demo_email(user))

    @classmethod
    def _fixture(cls):
        s = cls.stack
        # the victim joins with an operator's user token, the attacker
        # with a session: both ways in are used
        cls.v_active = cls._active(V, s.user_token(V))
        cls.a_session = cls._sign_in(ATTACKER)
        cls.a_active = cls._active(A, cls.a_session)
        for seat in range(SEATS, 0, -1):
            st, _, b = cls._call("POST", "/api/reservations",
                                 {"scheduleId": SCHEDULE, "seatNumber": seat}, cls.v_active)
            if st == 201:
                cls._reservation = b["id"]
                break
        if cls._reservation is None:
            raise AssertionError("no seat of schedule %d could be held" % SCHEDULE)
        # a session of the victim's, signed out
        cls.v_signed_out = cls._sign_in(VICTIM)
        st, _, b = cls._call("DELETE", "/api/sessions", token=cls.v_signed_out)
        if st != 200:
            raise AssertionError("sign-out: %d %r" % (st, b))

    @classmethod
    def _cleanup(cls):
        s = cls.stack
        if cls._reservation is not None:
            cls._call("DELETE", "/api/reservations/" + cls._reservation, token=s.user_token(V))
            cls._reservation = None
        s.drop_places(CONCERT, (V, A, J))

    # ------------------------------------------------------------ helpers
    def state(self):
        """What a request acting for the victim or the attacker could
        change, from the primary and Redis."""
        users = "'%s', '%s'" % (V, A)
        db = self.stack.psql(
            "SELECT (SELECT string_agg(id || ':' || balance, ',' ORDER BY id) FROM users"
            "        WHERE id IN (%(u)s)),"
            " (SELECT string_agg(id || ':' || status || ':' || coalesce(ended_at::text, ''),"
            "                    ',' ORDER BY id) FROM reservations WHERE user_id IN (%(u)s)),"
            " (SELECT count(*) FROM payments WHERE user_id IN (%(u)s)),"
            " (SELECT count(*) FROM ledger WHERE user_id IN (%(u)s)),"
            " (SELECT count(*) FROM idempotency_keys WHERE user_id IN (%(u)s)),"
            " (SELECT string_agg(number || ':' || status || ':' || coalesce(holder::text, ''),"
            "                    ',' ORDER BY number) FROM seats WHERE schedule_id = %(s)d)"
            % {"u": users, "s": SCHEDULE})
        q = {"seq": self.stack.redis("GET", "q:{%d}:seq" % CONCERT)}
        for user in (V, A):
            q[user] = (self.stack.redis("HGET", "q:{%d}:num" % CONCERT, user),
                       self.stack.redis("ZSCORE", "q:{%d}:wait" % CONCERT, user),
                       self.stack.redis("ZSCORE", "q:{%d}:active" % CONCERT, user))
        return db, q

    def routes(self):
        """(name, method, path, body) of every route acting for the victim."""
        res = "/api/reservations/" + self._reservation
        return [
            ("join naming the victim", "POST", "/api/queues/token",
             {"concertId": CONCERT, "userId": V}),
            ("balance", "GET", "/api/users/%s/balance" % V, None),
            ("charge", "POST", "/api/users/%s/balance/charge" % V, {"amount": 100}),
            ("reservation", "GET", res, None),
            ("release", "DELETE", res, None),
            ("payment", "POST", "/api/payments", {"reservationId": self._reservation}),
            ("hold of the victim's seat", "POST", "/api/reservations",
             {"scheduleId": SCHEDULE, "seatNumber": self.victim_seat()}),
        ]

    def victim_seat(self):
        return int(self.stack.psql_value("SELECT seat_number FROM reservations WHERE id = '%s'"
                                         % self._reservation))

    def walk(self, what, token, expected):
        """Every route with token; expected maps a route name to (status,
        code). Nothing may change."""
        before = self.state()
        for name, method, path, body in self.routes():
            if name not in expected:
                continue
            with self.subTest(credential=what, route=name):
                resp = self._call(method, path, body, token)
                self.assertJsonError(resp, *expected[name])
        self.assertEqual(self.state(), before, "%s changed something" % what)

    # -------------------------------------------------------------- tests
    def test_a_no_credential_is_401_everywhere(self):
        self.walk("no credential", None,
                  {name: (401, "TOKEN_MISSING") for name, *_ in self.routes()})

    def test_b_another_users_session_acts_for_no_one_else(self):
        self.walk("the attacker's session", self.a_session, {
            "join naming the victim": (403, "USER_MISMATCH"),
            "balance": (403, "FORBIDDEN"),
            "charge": (403, "FORBIDDEN"),
            "reservation": (404, "RESERVATION_NOT_FOUND"),
            "release": (404, "RESERVATION_NOT_FOUND"),
            # booking takes an ACTIVE queue token only
            "payment": (401, "TOKEN_INVALID"),
            "hold of the victim's seat": (401, "TOKEN_INVALID"),
        })

    def test_c_another_users_queue_token_acts_for_no_one_else(self):
        # the hold is left out: an ACTIVE token holds for its own user
        self.walk("the attacker's ACTIVE token", self.a_active, {
            "join naming the victim": (403, "TOKEN_WRONG_KIND"),
            "balance": (403, "FORBIDDEN"),
            "charge": (403, "FORBIDDEN"),
            "reservation": (404, "RESERVATION_NOT_FOUND"),
            "release": (404, "RESERVATION_NOT_FOUND"),
            "payment": (404, "RESERVATION_NOT_FOUND"),
        })

    def test_d_a_signed_out_session_is_refused(self):
        self.walk("the victim's signed-out session", self.v_signed_out, {
            "join naming the victim": (401, "TOKEN_REVOKED"),
            "balance": (401, "TOKEN_REVOKED"),
            "charge": (401, "TOKEN_REVOKED"),
            "reservation": (401, "TOKEN_REVOKED"),
            "release": (401, "TOKEN_REVOKED"),
            "payment": (401, "TOKEN_INVALID"),
            "hold of the victim's seat": (401, "TOKEN_INVALID"),
        })

    def test_e_a_disabled_accounts_session_is_refused(self):
        """The victim's account stays disabled: the tests that run after
        this one (unittest sorts them by name) act for other users."""
        session = self._sign_in(VICTIM)
        st, _, b = self._call("GET", "/api/users/%s/balance" % V, token=session)
        self.assertEqual(st, 200, b)
        rc, out = self.stack.ctl("account", "disable", demo_email(VICTIM))
        self.assertEqual(rc, 0, out)
        self.walk("the victim's session after disabling", session, {
            "join naming the victim": (401, "TOKEN_REVOKED"),
            "balance": (401, "TOKEN_REVOKED"),
            "charge": (401, "TOKEN_REVOKED"),
            "reservation": (401, "TOKEN_REVOKED"),
            "release": (401, "TOKEN_REVOKED"),
            "payment": (401, "TOKEN_INVALID"),
            "hold of the victim's seat": (401, "TOKEN_INVALID"),
        })

    def test_join_takes_the_credentials_user_only(self):
        s = self.stack
        token = s.user_token(J)
        session = self._sign_in(JOINER)
        before = self.state()
        for what, cred in (("user token", token), ("session", session)):
            with self.subTest(credential=what):
                st, _, b = self._call("POST", "/api/queues/token",
                                      {"concertId": CONCERT, "userId": V}, cred)
                self.assertJsonError((st, _, b), 403, "USER_MISMATCH")
                for body in ({"concertId": CONCERT, "userId": J}, {"concertId": CONCERT}):
                    st, _, b = self._call("POST", "/api/queues/token", body, cred)
                    self.assertEqual(st, 201, b)
                    # the place and its token are the credential's user's
                    self.assertEqual(b["token"].split(".")[2], J, b)
                    self.assertEqual(s.redis("HGET", "q:{%d}:num" % CONCERT, J),
                                     str(b["queueNumber"]))
        db, q = self.state()
        self.assertEqual(db, before[0])
        self.assertEqual({k: v for k, v in q.items() if k != "seq"},
                         {k: v for k, v in before[1].items() if k != "seq"},
                         "the victim's or the attacker's place moved")
        self.assertEqual(int(q["seq"]), int(before[1]["seq"]) + 1, "one new place, J's")

    def test_join_with_the_session_cookie_needs_this_site(self):
        session = self._sign_in(JOINER)
        cookie = {"Cookie": "boxoffice_session=" + session}
        self.assertJsonError(self._call("POST", "/api/queues/token", {"concertId": CONCERT},
                                        headers=cookie), 403, "CROSS_SITE")
        st, _, b = self._call("POST", "/api/queues/token", {"concertId": CONCERT},
                              headers=dict(cookie, **{"Sec-Fetch-Site": "same-origin"}))
        self.assertEqual(st, 201, b)
        self.assertEqual(b["token"].split(".")[2], J, b)

    def test_join_refuses_queue_tokens_and_unknown_users(self):
        self.assertJsonError(self._call("POST", "/api/queues/token", {"concertId": CONCERT},
                                        self.a_active), 403, "TOKEN_WRONG_KIND")
        nobody = "00000000-0000-4000-8000-00000000b0d1"
        self.assertJsonError(self._call("POST", "/api/queues/token", {"concertId": CONCERT},
                                        self.stack.user_token(nobody)), 404, "USER_NOT_FOUND")

    def test_me_balance_is_the_credentials_users(self):
        self.assertJsonError(self._call("GET", "/api/me/balance"), 401, "TOKEN_MISSING")
        for what, cred, user in (("session", self.a_session, A),
                                 ("ACTIVE token", self.a_active, A),
                                 ("user token", self.stack.user_token(J), J)):
            with self.subTest(credential=what):
                st, _, b = self._call("GET", "/api/me/balance", token=cred)
                self.assertEqual(st, 200, b)
                self.assertEqual(b["userId"], user, b)
                self.assertEqual(b["balance"], int(self.stack.psql_value(
                    "SELECT balance FROM users WHERE id = '%s'" % user)))

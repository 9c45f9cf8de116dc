"""Accounts and sessions over HTTP (docs/api.md section 4, docs/identity.md,
docs/security.md section 1).

  POST /api/accounts: a new user with a balance of 0; the password policy's
      reasons (400 WEAK_PASSWORD), malformed addresses (400 INVALID_FIELD),
      an address taken in any case (409 EMAIL_TAKEN);
  POST /api/sessions: a session token in the answer and in an HttpOnly,
      SameSite=Strict cookie (Secure by auth.cookie_secure); a wrong
      password, an unknown address and a disabled account get the same
      401 BAD_CREDENTIALS; a raised Argon2id cost rehashes at sign-in;
      auth.max_failures failures per account or per address within
      auth.failure_window give 429 with Retry-After, whatever the password;
  GET /api/sessions: the user and expiry of the caller's session (header or
      cookie), refused once it is signed out;
  DELETE /api/sessions: the session is refused everywhere afterwards, also
      when it was signed out while Redis was down;
  sessions open the balance routes of their own user (header or cookie);
      a cookie-authenticated write from another site is 403 CROSS_SITE;
  boxofficectl account add (password on stdin) and account disable.

Data: fresh accounts with random addresses under accounts.boxoffice.test
(new users, balance 0, touched by nothing else), deleted with their users
and ledger when the module ends, so that the demo data keeps its sizes for
the other modules; demo user 977's account (user977@demo.boxoffice.test,
the demo password), read only.
"""

import os
import re
import time

from harness import StackTest, destructive, get_stack, user_uuid

PW = "correct horse battery"
DEMO_PASSWORD = "boxoffice-demo"          # boxofficectl seed (docs/identity.md)
DEMO_USER = 977


DOMAIN = "@accounts.boxoffice.test"


def tearDownModule():
    """The users this module made go again, with everything they own."""
    get_stack().psql(
        "CREATE TEMP TABLE gone AS SELECT user_id FROM accounts"
        " WHERE email LIKE '%%%s';"
        " DELETE FROM idempotency_keys WHERE user_id IN (SELECT user_id FROM gone);"
        " DELETE FROM ledger WHERE user_id IN (SELECT user_id FROM gone);"
        " DELETE FROM accounts WHERE user_id IN (SELECT user_id FROM gone);"
        " DELETE FROM users WHERE id IN (SELECT user_id FROM gone);" % DOMAIN)


def fresh_email(tag="t"):
    return "%s-%s%s" % (tag, os.urandom(6).hex(), DOMAIN)


class AccountTest(StackTest):
    """Helpers shared by the account tests."""

    def signup(self, email, password=PW):
        return self.http("POST", "/api/accounts", body={"email": email, "password": password})

    def signin(self, email, password=PW, headers=None):
        return self.http("POST", "/api/sessions", body={"email": email, "password": password},
                         headers=headers)

    def account(self, password=PW):
        """A fresh account signed in: (email, userId, token)."""
        email = fresh_email()
        st, _, b = self.signup(email, password)
        self.assertEqual(st, 201, b)
        st, _, b = self.signin(email, password)
        self.assertEqual(st, 201, b)
        return email, b["userId"], b["token"]

    def bearer(self, token, **extra):
        return dict({"Authorization": "Bearer " + token}, **extra)

    def cookie(self, token, **extra):
        return dict({"Cookie": "boxoffice_session=" + token}, **extra)

    def balance(self, user, headers):
        return self.http("GET", "/api/users/%s/balance" % user, headers=headers)

    def charge(self, user, headers, amount=100):
        return self.http("POST", "/api/users/%s/balance/charge" % user,
                         body={"amount": amount}, headers=headers)

    def sql_str(self, s):
        return "'" + s.replace("'", "''") + "'"

    def stored_hash(self, user):
        return self.stack.psql_value("SELECT password_hash FROM accounts WHERE user_id = %s"
                                     % self.sql_str(user))

    def metric(self, name):
        st, _, body = self.get("/metrics")
        self.assertEqual(st, 200)
        m = re.search(r"(?m)^boxoffice_%s_total (\d+)" % name, body.decode())
        self.assertIsNotNone(m, name)
        return int(m.group(1))


class TestSignUp(AccountTest):

    def test_sign_up_makes_a_user_with_an_empty_balance(self):
        email = fresh_email("Mixed")
        st, _, b = self.signup("  " + email.upper() + " ")
        self.assertEqual(st, 201, b)
        user = b["userId"]
        self.assertRegex(user, r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$")
        self.assertEqual(set(b), {"userId"})
        # stored canonical, hashed with Argon2id, never the password itself
        row = self.stack.psql("SELECT email, password_hash LIKE '$argon2id$%%', "
                              "password_hash <> %s FROM accounts WHERE user_id = %s"
                              % (self.sql_str(PW), self.sql_str(user)))
        self.assertEqual(row, [[email.lower(), "t", "t"]])
        # balance 0 = its (empty) ledger's sum
        self.assertEqual(self.stack.psql_value(
            "SELECT u.balance || '/' || coalesce(sum(l.amount), 0) FROM users u "
            "LEFT JOIN ledger l ON l.user_id = u.id WHERE u.id = %s GROUP BY u.balance"
            % self.sql_str(user)), "0/0")
        st, _, b = self.signin(email)
        self.assertEqual((st, b.get("userId")), (201, user), b)

    def test_weak_passwords_are_refused_with_a_reason(self):
        email = fresh_email()
        cases = [
            ("short pw", "at least 10 characters"),
            ("x" * 129, "at most 128 bytes"),
            (email.upper(), "must not be the e-mail address"),
            ("abcdefghij\tk", "control characters"),
        ]
        for pw, reason in cases:
            with self.subTest(reason=reason):
                resp = self.signup(email, pw)
                err = self.assertJsonError(resp, 400, "WEAK_PASSWORD")
                self.assertIn(reason, err["message"])
                self.assertNotIn(pw, repr(resp[2]), "the answer quotes the password")
        # ten characters, counted as characters: accepted
        self.assertEqual(self.signup(fresh_email(), "\u00e9" * 10)[0], 201)
        for body, code in (({"email": "not an address", "password": PW}, "INVALID_FIELD"),
                           ({"email": "a@b..c", "password": PW}, "INVALID_FIELD"),
                           ({"email": email, "password": "x" * 1025}, "INVALID_FIELD"),
                           ({"email": email, "password": 12345678901}, "INVALID_FIELD"),
                           ({"email": email}, "MISSING_FIELD")):
            with self.subTest(body=repr(body)[:60]):
                self.assertJsonError(self.http("POST", "/api/accounts", body=body), 400, code)
        self.assertEqual(self.stack.psql_value(
            "SELECT count(*) FROM accounts WHERE email = %s" % self.sql_str(email)), "0")

    def test_an_address_is_taken_in_any_case(self):
        email = fresh_email()
        self.assertEqual(self.signup(email)[0], 201)
        for again in (email, email.upper(), " %s " % email.title()):
            with self.subTest(email=again):
                self.assertJsonError(self.signup(again, "another password 1"), 409,
                                     "EMAIL_TAKEN")
        self.assertEqual(self.stack.psql_value(
            "SELECT count(*) FROM accounts WHERE lower(email) = %s" % self.sql_str(email)), "1")

    def test_no_password_or_session_in_the_logs(self):
        pw = "log-canary-" + os.urandom(8).hex()
        email, _, tok = self.account(pw)
        self.signin(email, pw + "x")
        weak = "w" + os.urandom(4).hex()              # refused by the policy
        self.assertEqual(self.signup(fresh_email(), weak)[0], 400)
        self.balance("00000000-0000-4000-8000-000000000001", self.cookie(tok))
        logs = self.stack.path("logs")
        seen = 0
        for name in os.listdir(logs):
            if not os.path.isfile(os.path.join(logs, name)):
                continue
            with open(os.path.join(logs, name), "rb") as f:
                text = f.read()
            seen += b"/api/sessions" in text
            for secret in (pw, weak, tok.split(".")[-1]):
                self.assertNotIn(secret.encode(), text, "%s in %s" % (secret, name))
        self.assertGreater(seen, 0, "no log has the sign-ins")

    def test_ctl_account_add_reads_the_password_from_stdin(self):
        s = self.stack
        email = fresh_email("ctl")

        def add(pw):
            return s._run([s.ctl_bin, "-c", s.conf_file, "account", "add", email],
                          input=pw, check=False)
        rc, out = add(b"short\n")
        self.assertNotEqual(rc, 0)
        self.assertIn("at least 10 characters", out)
        rc, out = add(PW.encode() + b"\n")
        self.assertEqual(rc, 0, out)
        user = out.strip().splitlines()[-1]
        st, _, b = self.signin(email)
        self.assertEqual((st, b.get("userId")), (201, user), b)
        rc, out = add(PW.encode() + b"\n")
        self.assertNotEqual(rc, 0)
        self.assertIn("already has an account", out)


class TestSignIn(AccountTest):

    def test_wrong_password_and_unknown_address_answer_alike(self):
        email, _, _ = self.account()
        before = self.metric("signin_failures")
        wrong = self.signin(email, "not the password")
        unknown = self.signin(fresh_email("nobody"), PW)
        for resp in (wrong, unknown):
            self.assertJsonError(resp, 401, "BAD_CREDENTIALS")
            self.assertNotIn("set-cookie", resp[1])
        self.assertEqual(wrong[2], unknown[2])
        self.assertEqual({k: v for k, v in wrong[1].items() if k != "date"},
                         {k: v for k, v in unknown[1].items() if k != "date"})
        self.assertEqual(self.metric("signin_failures") - before, 2)

    def test_an_unknown_address_costs_what_a_wrong_password_costs(self):
        """The dummy check: at a cost where a hash takes tens of
        milliseconds, both failures take about as long."""
        def took(email, pw):
            t = time.monotonic()
            self.assertJsonError(self.signin(email, pw), 401, "BAD_CREDENTIALS")
            return time.monotonic() - t
        try:
            self.stack.reload({("auth", "pwhash_memlimit_kib"): "32768"})
            email, _, _ = self.account()      # hashed at the new cost
            self.assertIn("m=32768,", self.stored_hash(self.signin(email)[2]["userId"]))
            wrong = sorted(took(email, "not the password") for _ in range(5))[2]
            unknown = sorted(took(fresh_email("nobody"), PW) for _ in range(5))[2]
            self.assertGreater(wrong, 0.005, "the cost did not take effect")
            self.assertGreater(unknown, wrong / 3, (unknown, wrong))
            self.assertLess(unknown, wrong * 3, (unknown, wrong))
        finally:
            self.stack.reload({("auth", "pwhash_memlimit_kib"): "8"})

    def test_sign_in_answers_a_session_and_a_strict_cookie(self):
        email, user, _ = self.account()
        st, hdr, b = self.signin(email)
        self.assertEqual(st, 201, b)
        self.assertEqual(set(b), {"userId", "token", "expiresAt"})
        self.assertEqual(b["userId"], user)
        self.assertTrue(b["token"].startswith("v1.s.%s." % user), b["token"])
        self.assertRegex(b["expiresAt"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")
        c = hdr.get("set-cookie", "")
        parts = [p.strip() for p in c.split(";")]
        self.assertEqual(parts[0], "boxoffice_session=" + b["token"])
        for attr in ("HttpOnly", "SameSite=Strict", "Path=/api"):
            self.assertIn(attr, parts, c)
        self.assertNotIn("Secure", parts, "auth.cookie_secure is 0 on the test stack")
        try:
            self.stack.reload({("auth", "cookie_secure"): "1"})
            self.wait_for(lambda: "Secure" in [p.strip() for p in
                                               self.signin(email)[1].get("set-cookie", "")
                                               .split(";")], msg="Secure cookie")
        finally:
            self.stack.reload({("auth", "cookie_secure"): "0"})

    def test_the_current_session_tells_who_is_signed_in(self):
        email, user, _ = self.account()
        st, _, b = self.signin(email)
        tok, exp = b["token"], b["expiresAt"]
        for how in (self.bearer(tok), self.cookie(tok)):
            st, hdr, b = self.http("GET", "/api/sessions", headers=how)
            self.assertEqual((st, b), (200, {"userId": user, "expiresAt": exp}), b)
            self.assertEqual(hdr.get("cache-control"), "no-store")
        # a read: the cookie needs no same-origin proof
        st, _, b = self.http("GET", "/api/sessions",
                             headers=self.cookie(tok, Origin="https://evil.example"))
        self.assertEqual((st, b.get("userId")), (200, user), b)
        self.assertJsonError(self.http("GET", "/api/sessions"), 401, "TOKEN_MISSING")
        self.assertJsonError(self.http("GET", "/api/sessions", headers=self.cookie("garbage")),
                             401, "TOKEN_INVALID")

    def test_demo_accounts_sign_in_with_the_demo_password(self):
        email = "user%d@demo.boxoffice.test" % DEMO_USER
        st, _, b = self.signin(email, DEMO_PASSWORD)
        self.assertEqual((st, b.get("userId")), (201, user_uuid(DEMO_USER)), b)
        st, _, b = self.balance(user_uuid(DEMO_USER), self.bearer(b["token"]))
        self.assertEqual(st, 200, b)

    def test_a_session_opens_its_own_users_balance_and_charge(self):
        _, user, tok = self.account()
        for how in (self.bearer(tok), self.cookie(tok)):
            st, _, b = self.balance(user, how)
            self.assertEqual((st, b.get("balance")), (200, 0), b)
        st, _, b = self.charge(user, self.bearer(tok), 250)
        self.assertEqual((st, b.get("balance")), (200, 250), b)
        st, _, b = self.charge(user, self.cookie(tok, **{"Sec-Fetch-Site": "same-origin"}), 50)
        self.assertEqual((st, b.get("balance")), (200, 300), b)
        # another user's balance is not this session's
        for how in (self.bearer(tok), self.cookie(tok)):
            self.assertJsonError(self.balance(user_uuid(DEMO_USER), how), 403, "FORBIDDEN")
        # a session is not a queue token
        self.assertJsonError(self.http("GET", "/api/queues/status", headers=self.bearer(tok)),
                             401, "TOKEN_INVALID")

    def test_a_raised_cost_rehashes_at_sign_in(self):
        email, user, _ = self.account()
        old = self.stored_hash(user)
        self.assertIn("t=1,", old)
        try:
            self.stack.reload({("auth", "pwhash_opslimit"): "2"})
            # a wrong password changes nothing
            self.assertJsonError(self.signin(email, "not the password"), 401,
                                 "BAD_CREDENTIALS")
            self.assertEqual(self.stored_hash(user), old)
            # every worker has the new cost once a sign-in rehashes
            self.assertEqual(self.signin(email)[0], 201)
            new = self.stored_hash(user)
            self.assertNotEqual(new, old)
            self.assertIn("t=2,", new)
            for _ in range(4):
                self.assertEqual(self.signin(email)[0], 201)
            self.assertEqual(self.stored_hash(user), new, "hashed again at the same cost")
        finally:
            self.stack.reload({("auth", "pwhash_opslimit"): "1"})

    def test_a_cross_site_cookie_write_is_refused(self):
        _, user, tok = self.account()
        host = "127.0.0.1:%d" % self.stack.ports["http"]
        for what, extra in (("no origin at all", {}),
                            ("another origin", {"Origin": "https://evil.example"}),
                            ("a cross-site fetch", {"Sec-Fetch-Site": "cross-site",
                                                    "Origin": "https://evil.example"}),
                            ("a same-site subdomain", {"Sec-Fetch-Site": "same-site"})):
            with self.subTest(what):
                self.assertJsonError(self.charge(user, self.cookie(tok, **extra)), 403,
                                     "CROSS_SITE")
                self.assertJsonError(self.http("DELETE", "/api/sessions",
                                               headers=self.cookie(tok, **extra)),
                                     403, "CROSS_SITE")
        self.assertEqual(self.balance(user, self.bearer(tok))[2]["balance"], 0,
                         "a refused write changed the balance")
        # our own origin writes; reads and header tokens are not cookies' business
        self.assertEqual(self.charge(user, self.cookie(tok, Origin="http://" + host))[0], 200)
        self.assertEqual(self.charge(user, self.cookie(tok, **{"Sec-Fetch-Site": "none"}))[0],
                         200)
        self.assertEqual(self.balance(user, self.cookie(tok, Origin="https://evil.example"))[0],
                         200)
        self.assertEqual(self.charge(user, self.bearer(tok, Origin="https://evil.example"))[0],
                         200)


class TestHashGate(AccountTest):
    """At most auth.hash_concurrency workers hash passwords at once."""

    def test_a_storm_of_sign_ins_is_shed_and_other_routes_stay_served(self):
        import threading
        email = fresh_email("storm")
        before = self.metric("signin_busy")
        answers, pings, stop = [], [], threading.Event()
        try:
            # a slow hash: the account's own cost is what a sign-in pays
            self.stack.reload({("auth", "hash_concurrency"): "1",
                               ("auth", "pwhash_opslimit"): "3",
                               ("auth", "pwhash_memlimit_kib"): "65536"})
            self.assertEqual(self.signup(email)[0], 201)

            def signer():
                while not stop.is_set():
                    answers.append(self.signin(email))

            def pinger():
                while not stop.is_set():
                    pings.append(self.get("/api/ping")[0])
                    time.sleep(0.02)
            threads = [threading.Thread(target=signer) for _ in range(4)]
            threads.append(threading.Thread(target=pinger))
            for t in threads:
                t.start()
            time.sleep(3)
            stop.set()
            for t in threads:
                t.join(30)
        finally:
            stop.set()
            self.stack.reload({("auth", "hash_concurrency"): "64",
                               ("auth", "pwhash_opslimit"): "1",
                               ("auth", "pwhash_memlimit_kib"): "8"})
        statuses = [a[0] for a in answers]
        self.assertIn(201, statuses)
        busy = [a for a in answers if a[0] == 503]
        self.assertTrue(busy, "four signers, one place: some must be turned away")
        for resp in busy:
            self.assertJsonError(resp, 503, "BUSY")
            self.assertEqual(resp[1].get("retry-after"), "1")
        self.assertEqual(set(statuses) - {201, 503}, set())
        self.assertGreaterEqual(self.metric("signin_busy") - before, len(busy))
        self.assertTrue(pings)
        self.assertEqual(set(pings), {200})


class TestSessionsEnd(AccountTest):

    def assertEnded(self, user, tok):
        for _ in range(8):      # every worker
            for resp in (self.balance(user, self.bearer(tok)),
                         self.balance(user, self.cookie(tok)),
                         self.charge(user, self.bearer(tok)),
                         self.http("GET", "/api/reservations/0a0c0e55-0000-4000-8000-"
                                   "000000000001", headers=self.bearer(tok)),
                         self.http("GET", "/api/sessions", headers=self.bearer(tok)),
                         self.http("GET", "/api/sessions", headers=self.cookie(tok)),
                         self.http("DELETE", "/api/sessions", headers=self.bearer(tok))):
                self.assertJsonError(resp, 401, "TOKEN_REVOKED")

    def test_sign_out_ends_the_session_everywhere(self):
        email, user, tok = self.account()
        st, _, b = self.signin(email)
        other = b["token"]
        st, hdr, b = self.http("DELETE", "/api/sessions", headers=self.bearer(tok))
        self.assertEqual((st, b), (200, {"signedOut": True}))
        self.assertRegex(hdr.get("set-cookie", ""), r"^boxoffice_session=;.*Max-Age=0")
        self.assertEnded(user, tok)
        # one key per session, gone when the session would have expired
        sid, exp = tok.split(".")[3], int(tok.split(".")[5])
        ttl = int(self.stack.redis("TTL", "sess:end:" + sid))
        self.assertGreater(ttl, 0)
        self.assertLessEqual(ttl, exp - int(time.time()) + 1)
        # the user's other session stands
        self.assertEqual(self.balance(user, self.bearer(other))[0], 200)
        # a cookie sign-out from our own site works too
        st, _, b = self.http("DELETE", "/api/sessions",
                             headers=self.cookie(other, **{"Sec-Fetch-Site": "same-origin"}))
        self.assertEqual(st, 200, b)
        self.assertEnded(user, other)

    def test_a_disabled_account_is_refused(self):
        email, user, tok = self.account()
        self.assertEqual(self.balance(user, self.bearer(tok))[0], 200)
        rc, out = self.stack.ctl("account", "disable", email.upper())
        self.assertIn("disabled", out)
        self.assertEnded(user, tok)
        self.assertEqual(self.stack.psql_value(
            "SELECT disabled_at IS NOT NULL FROM accounts WHERE user_id = %s"
            % self.sql_str(user)), "t")
        # the right password now gets what a wrong one gets
        right, wrong = self.signin(email), self.signin(email, "not the password")
        self.assertJsonError(right, 401, "BAD_CREDENTIALS")
        self.assertEqual(right[2], wrong[2])
        self.assertNotIn("set-cookie", right[1])

    def test_failed_sign_ins_are_throttled(self):
        r = self.redis()
        a, _, _ = self.account()
        b, _, _ = self.account()

        def clear():
            keys = r("KEYS", "signin:fail:*") or []
            if keys:
                r("DEL", *keys)
        before = self.metric("signin_throttled")
        try:
            clear()
            self.stack.reload({("auth", "max_failures"): "3",
                               ("auth", "failure_window"): "60"})
            # per account: three failures, then 429 even with the password
            for _ in range(3):
                self.assertJsonError(self.signin(a, "not the password"), 401,
                                     "BAD_CREDENTIALS")
            for pw in (PW, "not the password"):
                resp = self.signin(a, pw)
                self.assertJsonError(resp, 429, "TOO_MANY_ATTEMPTS")
                self.assertIn(int(resp[1]["retry-after"]), range(1, 61))
                self.assertNotIn("set-cookie", resp[1])
            # the address counted the same three: forget it, the account stays
            r("DEL", "signin:fail:addr:127.0.0.1")
            self.assertEqual(self.signin(b)[0], 201)
            self.assertJsonError(self.signin(a), 429, "TOO_MANY_ATTEMPTS")
            # per address: three failures on three addresses
            clear()
            for _ in range(3):
                self.assertJsonError(self.signin(fresh_email("guess"), PW), 401,
                                     "BAD_CREDENTIALS")
            resp = self.signin(b)
            self.assertJsonError(resp, 429, "TOO_MANY_ATTEMPTS")
            self.assertIn("retry-after", resp[1])
            self.assertGreaterEqual(self.metric("signin_throttled") - before, 4)
        finally:
            clear()
            self.stack.reload({("auth", "max_failures"): "1000",
                               ("auth", "failure_window"): "900"})
        self.assertEqual(self.signin(a)[0], 201)

    def test_nginx_limits_sign_in_and_sign_up_per_address_when_on(self):
        s = self.stack
        port = s.start_extra_nginx(rate_limits=True, name="signin")
        try:
            for path, body in (("/api/sessions", {"email": "x@y.test", "password": ""}),
                               ("/api/accounts", {"email": "x@y.test", "password": ""})):
                statuses = [s.http("POST", path, body=body, port=port)[0] for _ in range(15)]
                with self.subTest(path=path):
                    self.assertIn(429, statuses)
                    self.assertEqual(statuses[0], 400)    # the empty password
                    # the dev stack (rate limits off) does not limit
                    self.assertNotIn(429, [s.http("POST", path, body=body)[0]
                                           for _ in range(15)])
            # the page's look-up of the current session is not limited
            self.assertNotIn(429, [s.http("GET", "/api/sessions", port=port)[0]
                                   for _ in range(15)])
        finally:
            s.stop_extra_nginx(name="signin")

    @destructive
    def test_sign_out_while_redis_is_down_is_kept_and_stored_later(self):
        s = self.stack
        email, user, tok = self.account()
        sid = tok.split(".")[3]
        s.stop_server("redis")
        try:
            # sign-in and sign-out go on; the signed expiry decides meanwhile
            st, _, b = self.signin(email)
            self.assertEqual(st, 201, b)
            other = b["token"]
            st, _, b = self.http("DELETE", "/api/sessions", headers=self.bearer(tok))
            self.assertEqual(st, 200, b)
        finally:
            self.restore_server("redis")
        self.assertIsNone(s.redis("GET", "sess:end:" + sid))

        # the worker that took the sign-out stores it at its next session check
        def stored():
            self.balance(user, self.bearer(other))
            return s.redis("GET", "sess:end:" + sid)
        self.wait_for(stored, timeout=30, msg="the kept sign-out in redis")
        self.assertEnded(user, tok)
        self.assertEqual(self.balance(user, self.bearer(other))[0], 200)

"""The waiting queue: fair order, capacity, tokens, turns, snapshots, and
what happens when Redis fails. Runs against the real servers.

Every test uses one of the demo concerts (1..5), wipes that concert's queue
keys in Redis before it starts and after it ends, and puts back every
[queue] setting it changed (reload, SIGHUP). Tests that stop or pause
Redis are marked destructive (the runner runs them after all the others)
and bring it back.

Redis is read and written directly over its protocol (boxoffice_dev.redis)
where a test needs to sample the queue's state many times a second
or to end a turn the way a payment does (ZREM from the active set, which
is exactly what queue_revoke() does).
"""

import calendar
import concurrent.futures
import os
import random
import tempfile
import threading
import time
import unittest

from boxoffice_dev.http import Session as Client
from boxoffice_dev.redis import QUEUE_PARTS, Redis, pairs, qkey
from boxoffice_dev import tokens
from harness import SEED, StackTest, destructive, heavy, user_uuid

PARTS = QUEUE_PARTS
STRINGS = ("seq", "tick", "served", "seed")
# plus the admission throttle's clock, which a dump leaves out
RESET_PARTS = PARTS

# Users 1..1000 exist in every test stack; the 10,000-join test adds more.
# Small tests use their own ranges so that they never share a user.
U_JOIN = 400          # test_join_*: 401..
U_TOKEN = 450         # tokens: 451..
U_RATE = 500          # admit rate: 501..
U_TURN = 600          # turns: 601..
U_DUMP = 700          # dump/restore: 701..
U_DOWN = 800          # redis down: 801..
U_PAY = 977           # the users who pay (977, 978): their balances change


def parse_iso_ms(s):
    """'2026-11-22T00:25:52.463Z' -> Unix seconds (float)."""
    date, frac = s.rstrip("Z").split(".")
    t = time.strptime(date, "%Y-%m-%dT%H:%M:%S")
    return calendar.timegm(t) + int(frac) / 1000.0


def token_fields(tok):
    """v1.<kind>.<user>.<concert>.<number>.<iat>.<exp>.<mac> -> dict."""
    p = tok.split(".")
    assert len(p) == 8, tok
    return {"v": p[0], "kind": p[1], "user": p[2], "concert": int(p[3]),
            "number": int(p[4]), "iat": int(p[5]), "exp": int(p[6]), "mac": p[7]}


# Atomic view of a queue for the samplers: admitted count (claimed or
# not), waiting count, lowest and highest waiting queue number.
SAMPLE_LUA = """
local w = redis.call('ZCARD', KEYS[1])
local a = redis.call('ZCARD', KEYS[2]) + redis.call('ZCARD', KEYS[3])
local lo = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local hi = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
return {a, w, tonumber(lo[2] or '0'), tonumber(hi[2] or '0')}
"""


class QueueTest(StackTest):
    """Helpers: joining, polling, settings with automatic restore, Redis."""

    def setUp(self):
        self.s = self.stack
        self._concerts = set()

    # ------------------------------------------------------------ redis
    def reset_queue(self, *concerts):
        """Empty these concerts' queues now and again when the test ends."""
        keys = [qkey(c, p) for c in concerts for p in RESET_PARTS]
        self.s.redis("DEL", *keys)
        if not self._concerts:
            self.addCleanup(self._wipe_queues)
        self._concerts.update(concerts)

    def _wipe_queues(self):
        keys = [qkey(c, p) for c in sorted(self._concerts) for p in RESET_PARTS]
        try:
            self.s.redis("DEL", *keys)
        except Exception as e:      # Redis down after a failed test: not our failure
            print("queue cleanup: %s" % e)

    def queue_state(self, concert, parts=PARTS):
        """Exact state of a concert's queue, read in one MULTI/EXEC."""
        r = Redis(self.s.ports["redis"])
        try:
            r("MULTI")
            for p in parts:
                k = qkey(concert, p)
                if p in STRINGS:
                    r("GET", k)
                elif p in ("num", "stats"):
                    r("HGETALL", k)
                else:
                    r("ZRANGE", k, 0, -1, "WITHSCORES")
            res = r("EXEC")
        finally:
            r.close()
        out = {}
        for p, v in zip(parts, res):
            out[p] = dict(pairs(v)) if p in ("num", "stats") else (
                v if p in STRINGS else pairs(v))
        return out

    # --------------------------------------------------------- settings
    def settings(self, **kv):
        """Reload the workers with these [queue] settings; restored at the end."""
        over = {("queue", k): str(v) for k, v in kv.items()}
        first = not getattr(self, "_settings_changed", False)
        self._settings_changed = True
        if first:
            self.addCleanup(self._restore_settings)
        self._changed_keys = getattr(self, "_changed_keys", set()) | set(over)
        self._reload(over)

    def _reload(self, over=None):
        log = self.s.path("logs", "worker.log")
        start = os.path.getsize(log) if os.path.exists(log) else None
        pids = self.s.reload(over)
        # A worker reloads at its next accepted request once it has the
        # signal; give the signals a moment to land, then make every worker
        # take a request so that the new settings are in force everywhere.
        time.sleep(0.2)
        for _ in range(3 * len(pids)):
            self.get("/api/ping")
        if start is not None:
            with open(log, errors="replace") as f:
                f.seek(start)
                refused = [line for line in f if "refused" in line]
            if refused:
                self.fail("the workers refused the settings %r: %s" % (over, refused[0]))

    def _restore_settings(self):
        for k in self._changed_keys:
            self.s.overrides.pop(k, None)
        self._reload()
        self._settings_changed = False

    # -------------------------------------------------------------- api
    def join(self, concert, user, headers=None, **kw):
        """user (a UUID or a demo user's number) joins with their own user
        token, naming themselves in the body as older clients do."""
        uid = user if isinstance(user, str) else user_uuid(user)
        return self.http("POST", "/api/queues/token",
                         body={"concertId": concert, "userId": uid},
                         headers=self.s.as_user(uid, headers), **kw)

    def status(self, token, **kw):
        hdrs = {"Authorization": "Bearer " + token} if token is not None else {}
        return self.http("GET", "/api/queues/status", headers=hdrs, **kw)

    def seats(self, concert, schedule, token, **kw):
        hdrs = {"Authorization": "Bearer " + token} if token is not None else {}
        return self.http("GET", "/api/concerts/%d/schedules/%d/seats" % (concert, schedule),
                         headers=hdrs, **kw)

    @staticmethod
    def is_new_place(resp):
        """A join answer for a new place, or for the user's existing one?
        201 for a new place; the existing place is either 200 or (docs/api.md)
        201 with "rejoined": true."""
        st, _, b = resp
        if st == 200:
            return False
        if st == 201 and isinstance(b, dict):
            return not b.get("rejoined", False)
        raise AssertionError("not a join answer: %d %r" % (st, b))

    def not_new(self, r):
        """r (from concurrently) is not a new place: an exception, an error,
        or the existing place."""
        return (isinstance(r, Exception) or r[0] not in (200, 201)
                or not self.is_new_place(r))

    def joined(self, concert, user, new=True):
        """Join and check the answer's shape; new: a new place (else the
        user's existing one). Returns the body."""
        resp = self.join(concert, user)
        st, hdr, b = resp
        self.assertIn(st, (200, 201), "join of user %s to concert %d: %d %r"
                      % (user, concert, st, b))
        self.assertIn("json", hdr.get("content-type", ""))
        self.assertEqual(self.is_new_place(resp), new,
                         "join of user %s to concert %d: %s place expected: %d %r"
                         % (user, concert, "a new" if new else "the existing", st, b))
        self.check_place(b, concert, user)
        return b

    def check_place(self, b, concert, user):
        for f in ("token", "queueNumber", "position", "status", "etaSeconds"):
            self.assertIn(f, b, "field %s missing: %r" % (f, b))
        self.assertIn(b["status"], ("WAITING", "ACTIVE"), b)
        self.assertIsInstance(b["queueNumber"], int, b)
        self.assertGreaterEqual(b["queueNumber"], 1, b)
        self.assertIsInstance(b["position"], int, b)
        self.assertGreaterEqual(b["position"], 0, b)
        self.assertTrue(b["etaSeconds"] is None or
                        (isinstance(b["etaSeconds"], int) and b["etaSeconds"] >= 0), b)
        f = token_fields(b["token"])
        uid = user if isinstance(user, str) else user_uuid(user)
        self.assertEqual((f["v"], f["user"], f["concert"], f["number"]),
                         ("v1", uid, concert, b["queueNumber"]), b)
        if b["status"] == "ACTIVE":
            self.assertEqual(f["kind"], "a", b)
            self.assertIsInstance(b.get("activeUntil"), str, b)
            self.assertEqual(b["position"], 0, b)
            until = parse_iso_ms(b["activeUntil"])
            self.assertGreater(until, time.time() - 2, b)
            # the signed expiry is the turn's end (whole seconds)
            self.assertEqual(f["exp"], int(until), b)
        else:
            self.assertEqual(f["kind"], "w", b)
            self.assertIsNone(b.get("activeUntil"), b)

    def polled(self, token, expect=None):
        st, hdr, b = self.status(token)
        self.assertEqual(st, 200, b)
        self.assertIn(b.get("status"), ("WAITING", "ACTIVE", "EXPIRED"), b)
        if b["status"] == "ACTIVE":
            self.assertIsInstance(b.get("activeUntil"), str, b)
            self.assertEqual(token_fields(b["token"])["kind"], "a", b)
        elif b["status"] == "WAITING":
            self.assertIsInstance(b.get("position"), int, b)
            self.assertTrue(b.get("etaSeconds") is None or isinstance(b["etaSeconds"], int), b)
        if expect is not None:
            self.assertEqual(b["status"], expect, b)
        return b

    def wait_active(self, token, timeout=3):
        """Poll until ACTIVE: admission runs at most every 50 ms per concert,
        so the first poll after a turn ends may still read WAITING."""
        return self.wait_for(lambda: (lambda b: b if b["status"] == "ACTIVE" else None)(
            self.polled(token)), timeout=timeout, interval=0.02, msg="ACTIVE")

    def assert_turn_over(self, active_token):
        """Status with the ACTIVE token of a turn that ran out: the token's
        signed expiry is the turn's end, so either answer is right: 200
        EXPIRED, or 401 TOKEN_EXPIRED."""
        st, _, b = self.status(active_token)
        if st == 401:
            self.assertJsonError((st, _, b), 401, "TOKEN_EXPIRED")
        else:
            self.assertEqual((st, b.get("status")), (200, "EXPIRED"), b)

    def schedule_of(self, concert, k=0):
        """The id of concert's k-th schedule (demo data: consecutive ids)."""
        return (concert - 1) * SEED["schedules"] + 1 + k

    def end_turn(self, concert, user):
        """End an ACTIVE turn the way a payment does (queue_revoke: ZREM)."""
        uid = user if isinstance(user, str) else user_uuid(user)
        return self.s.redis("ZREM", qkey(concert, "active"), uid)


# ======================================================================
class TestJoin(QueueTest):

    def test_join_then_rejoin_gets_the_same_place(self):
        C = 4
        self.reset_queue(C)
        self.settings(max_active=1, admit_per_second=1000)
        a = self.joined(C, U_JOIN + 1)
        self.assertEqual((a["queueNumber"], a["status"]), (1, "ACTIVE"), a)
        b = self.joined(C, U_JOIN + 2)
        self.assertEqual((b["queueNumber"], b["status"], b["position"]), (2, "WAITING", 0), b)
        c = self.joined(C, U_JOIN + 3)
        self.assertEqual((c["queueNumber"], c["position"]), (3, 1), c)
        # again: 200, the same place, never a second one
        for user, first in ((U_JOIN + 1, a), (U_JOIN + 2, b), (U_JOIN + 3, c)):
            again = self.joined(C, user, new=False)
            self.assertEqual((again["queueNumber"], again["status"], again["position"]),
                             (first["queueNumber"], first["status"], first["position"]),
                             "user %d rejoined: %r then %r" % (user, first, again))
        self.assertEqual(self.s.redis("GET", qkey(C, "seq")), "3")
        self.assertEqual(self.s.redis("ZCARD", qkey(C, "wait")), 2)

    def test_simultaneous_joins_of_one_user_make_one_place(self):
        C = 4
        self.reset_queue(C)
        self.settings(max_active=1, admit_per_second=1000)
        self.joined(C, U_JOIN + 10)
        res = self.concurrently(lambda i: self.join(C, U_JOIN + 11), 30, threads=30)
        errs = [r for r in res if isinstance(r, Exception)]
        self.assertEqual(errs, [])
        new = [self.is_new_place(r) for r in res]
        self.assertEqual(new.count(True), 1, [(r[0], r[2].get("rejoined")) for r in res])
        self.assertEqual({r[2]["queueNumber"] for r in res}, {2})
        self.assertEqual(self.s.redis("GET", qkey(C, "seq")), "2")

    def test_join_errors(self):
        C = 4
        self.reset_queue(C)
        self.assertJsonError(self.join(999999, U_JOIN + 20), 404, "CONCERT_NOT_FOUND")
        self.assertJsonError(self.join(C, "00000000-0000-4000-8000-999999999999"), 404,
                             "USER_NOT_FOUND")
        self.s.psql("UPDATE concerts SET on_sale = false WHERE id = %d" % C)
        try:
            self.s.wait_replica_caught_up()
            # the sale state may be micro-cached in each worker for a moment
            # ([http] micro_cache_ms, at most 1000): wait until every worker refuses
            time.sleep(1.1)
            self.wait_for(lambda: all(self.join(C, U_JOIN + 20)[0] == 409
                                      for _ in range(3 * self.s.workers)),
                          timeout=5, interval=0.1, msg="NOT_ON_SALE from every worker")
            seq = self.s.redis("GET", qkey(C, "seq"))
            for u in range(U_JOIN + 21, U_JOIN + 26):
                self.assertJsonError(self.join(C, u), 409, "NOT_ON_SALE")
            # refused joins take no number
            self.assertEqual(self.s.redis("GET", qkey(C, "seq")), seq)
        finally:
            self.s.psql("UPDATE concerts SET on_sale = true WHERE id = %d" % C)
            self.s.wait_replica_caught_up()
            time.sleep(1.1)
        self.wait_for(lambda: all(self.join(C, U_JOIN + 22)[0] != 409
                                  for _ in range(3 * self.s.workers)),
                      timeout=5, interval=0.1, msg="on sale again in every worker")
        self.reset_queue(C)
        b = self.joined(C, U_JOIN + 20)
        self.assertEqual(b["queueNumber"], 1)

    def test_status_answers_and_the_active_token_it_hands_out(self):
        C = 4
        self.reset_queue(C)
        self.settings(max_active=1, admit_per_second=1000)
        a = self.joined(C, U_JOIN + 30)
        w = self.joined(C, U_JOIN + 31)
        self.assertEqual(w["status"], "WAITING")
        sched = self.schedule_of(C)

        st = self.polled(a["token"], "ACTIVE")
        self.assertEqual(st["queueNumber"], 1)
        self.assertAlmostEqual(parse_iso_ms(st["activeUntil"]), parse_iso_ms(a["activeUntil"]),
                               delta=0.01)
        self.assertEqual(self.seats(C, sched, st["token"])[0], 200)

        st = self.polled(w["token"], "WAITING")
        self.assertEqual((st["queueNumber"], st["position"]), (2, 0), st)
        self.assertIsNone(st.get("activeUntil"), st)
        # a WAITING token does not open the seat map
        self.assertJsonError(self.seats(C, sched, w["token"]), 403, "NOT_ACTIVE")

        # the turn ahead ends: the waiter's next poll admits it and hands it
        # the ACTIVE token booking needs
        self.assertEqual(self.end_turn(C, U_JOIN + 30), 1)
        st = self.wait_active(w["token"])
        f = token_fields(st["token"])
        self.assertEqual((f["kind"], f["user"], f["concert"], f["number"]),
                         ("a", user_uuid(U_JOIN + 31), C, 2))
        self.assertEqual(f["exp"], int(parse_iso_ms(st["activeUntil"])))
        r = self.seats(C, sched, st["token"])
        self.assertEqual(r[0], 200, r[2])
        self.assertIsInstance(r[2].get("seats"), list)
        # the WAITING token is still only a place in the queue
        self.assertJsonError(self.seats(C, sched, w["token"]), 403, "NOT_ACTIVE")
        # and the ended turn reads EXPIRED
        self.polled(a["token"], "EXPIRED")


    def test_join_just_after_the_turn_ran_out_gets_a_real_place(self):
        """A user whose ACTIVE turn has just run out joins again (say the
        page does so at activeUntil) before the next admission step swept
        the turn away (admission work runs at most every 50 ms per
        concert). The answer must be a place that exists: a new number,
        WAITING or ACTIVE, whose token then polls as that place; not the
        ended turn's number presented as WAITING, which the next poll calls
        EXPIRED."""
        C = 2
        self.reset_queue(C)
        self.settings(max_active=5, admit_per_second=1000)
        r = self.redis()
        # the turn ends now, and an admission step has just run (as it does
        # every 50 ms in a busy queue)
        end_turn_now = r("SCRIPT", "LOAD", """
            local t = redis.call('TIME')
            local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
            redis.call('ZADD', KEYS[1], now - 1, ARGV[1])
            redis.call('SET', KEYS[2], now)
            return now""")
        bad = []
        for k in range(3):
            user = U_JOIN + 40 + k
            first = self.joined(C, user)
            self.assertEqual(first["status"], "ACTIVE")
            r("EVALSHA", end_turn_now, 2, qkey(C, "active"), qkey(C, "tick"), user_uuid(user))
            resp = self.join(C, user)
            self.assertIn(resp[0], (200, 201), resp[2])
            b = resp[2]
            after = self.polled(b["token"])
            if after["status"] == "EXPIRED" or b["queueNumber"] == first["queueNumber"]:
                bad.append((b["queueNumber"], b["status"], b.get("rejoined"),
                            after["status"]))
        self.assertEqual(bad, [], "join after the turn ran out answered a place that does "
                         "not exist: (number, status, rejoined, next poll)")


# ======================================================================
class TestSettings(QueueTest):

    def _check(self, **queue):
        s = self.s
        text = s.render_config({("queue", k): str(v) for k, v in queue.items()})
        with tempfile.NamedTemporaryFile("w", suffix=".conf", dir=s.dir) as f:
            f.write(text)
            f.flush()
            return s.check_config(f.name)

    def test_queue_settings_bounds(self):
        """claim_window is 1..3600 s, active_ttl at least 10 s; max_active
        and admit_per_second at least 1 (boxoffice -t checks a file). The
        retired abandon_after is accepted, with a warning, and ignored."""
        for ok in ({"claim_window": 1}, {"active_ttl": 10}, {"max_active": 1},
                   {"admit_per_second": 1}, {"claim_window": 3600}):
            rc, out = self._check(**ok)
            self.assertEqual(rc, 0, "%r refused: %s" % (ok, out))
        rc, out = self._check(abandon_after=60)
        self.assertEqual(rc, 0, out)
        self.assertIn("abandon_after is no longer used", out)
        for bad in ({"claim_window": 0}, {"claim_window": 3601}, {"active_ttl": 9},
                    {"max_active": 0}, {"admit_per_second": 0}, {"claim_window": -1},
                    {"active_ttl": "ten"}):
            rc, out = self._check(**bad)
            self.assertNotEqual(rc, 0, "%r accepted: %s" % (bad, out))
            self.assertIn(list(bad)[0], out, out)


# ======================================================================
class TestTokens(QueueTest):

    def _key(self):
        with open(self.s.key_file, "rb") as f:
            return f.read()

    def sign(self, kind, user, concert, number, iat, exp, key=None):
        return tokens.sign(key or self._key(), kind, user, concert, number, iat, exp)

    @staticmethod
    def flip(tok, i):
        """tok with the character at i changed to a different one of its kind."""
        c = tok[i]
        if c.isdigit():
            n = str((int(c) + 1) % 10)
        elif c.isalpha():
            base = "a" if c.islower() else "A"
            n = chr(ord(base) + (ord(c) - ord(base) + 1) % 26)
        elif c == "-":
            n = "_"
        elif c == "_":
            n = "-"
        else:
            n = "_"
        return tok[:i] + n + tok[i + 1:]

    def test_every_flipped_byte_is_401_token_invalid(self):
        C = 1
        self.reset_queue(C)
        b = self.joined(C, U_TOKEN + 1)
        self.assertEqual(b["status"], "ACTIVE")
        tok = b["token"]
        sched = self.schedule_of(C)
        self.assertEqual(self.seats(C, sched, tok)[0], 200)
        self.assertEqual(self.status(tok)[0], 200)
        accepted = []
        for i in range(len(tok)):
            bad = self.flip(tok, i)
            self.assertNotEqual(bad, tok)
            for name, resp in (("seats", self.seats(C, sched, bad)),
                               ("status", self.status(bad))):
                if resp[0] != 401:
                    accepted.append((i, tok[i], bad[i], name, resp[0], resp[2]))
                else:
                    self.assertJsonError(resp, 401, "TOKEN_INVALID")
        self.assertEqual(accepted, [], "tokens with one changed byte were not refused "
                         "(index, was, now, endpoint, status, body)")
        # XOR of the low bit, truncation, extension
        for bad in (tok[:-1], tok + "A", tok[:20] + chr(ord(tok[20]) ^ 1) + tok[21:],
                    tok.replace(".a.", ".u.", 1), "garbage", "v1." + "x" * 300):
            self.assertJsonError(self.seats(C, sched, bad), 401, "TOKEN_INVALID")

    def test_missing_token_is_401_token_missing(self):
        C = 1
        sched = self.schedule_of(C)
        for hdrs in ({}, {"Authorization": ""}):
            self.assertJsonError(self.http("GET", "/api/queues/status", headers=hdrs),
                                 401, "TOKEN_MISSING")
            self.assertJsonError(self.http("GET", "/api/concerts/%d/schedules/%d/seats"
                                           % (C, sched), headers=hdrs), 401, "TOKEN_MISSING")

    def test_bearer_without_a_token_is_401_token_missing(self):
        """'Authorization: Bearer ' (nginx trims it to 'Bearer') carries no
        token: TOKEN_MISSING, not a malformed token."""
        C = 1
        for value in ("Bearer ", "Bearer", "bearer  "):
            hdrs = {"Authorization": value}
            self.assertJsonError(self.http("GET", "/api/queues/status", headers=hdrs),
                                 401, "TOKEN_MISSING")
            self.assertJsonError(self.http("GET", "/api/concerts/%d/schedules/%d/seats"
                                           % (C, self.schedule_of(C)), headers=hdrs),
                                 401, "TOKEN_MISSING")

    def test_active_token_of_one_concert_is_403_on_another(self):
        A, B = 1, 2
        self.reset_queue(A, B)
        self.settings(max_active=1, admit_per_second=1000)
        act = self.joined(A, U_TOKEN + 2)
        self.assertEqual(act["status"], "ACTIVE")
        wait = self.joined(A, U_TOKEN + 3)
        self.assertEqual(wait["status"], "WAITING")
        self.assertEqual(self.seats(A, self.schedule_of(A), act["token"])[0], 200)
        for k in range(SEED["schedules"]):
            self.assertJsonError(self.seats(B, self.schedule_of(B, k), act["token"]), 403,
                                 "TOKEN_WRONG_CONCERT")
        # a WAITING token: not admitted, wherever it is used
        self.assertJsonError(self.seats(A, self.schedule_of(A), wait["token"]), 403,
                             "NOT_ACTIVE")
        self.assertJsonError(self.seats(B, self.schedule_of(B), wait["token"]), 403)

    def test_our_signer_matches_the_server(self):
        """The crafted tokens below are only meaningful if signing matches."""
        C = 1
        self.reset_queue(C)
        b = self.joined(C, U_TOKEN + 4)
        f = token_fields(b["token"])
        self.assertEqual(self.sign(f["kind"], f["user"], f["concert"], f["number"], f["iat"],
                                   f["exp"]), b["token"])

    def test_expired_tokens_are_401_token_expired(self):
        C = 1
        self.reset_queue(C)
        b = self.joined(C, U_TOKEN + 5)
        self.assertEqual(b["status"], "ACTIVE")
        now = int(time.time())
        uid = user_uuid(U_TOKEN + 5)
        # the same turn, signed with an expiry in the past
        old_active = self.sign("a", uid, C, b["queueNumber"], now - 700, now - 100)
        self.assertJsonError(self.seats(C, self.schedule_of(C), old_active), 401,
                             "TOKEN_EXPIRED")
        old_waiting = self.sign("w", uid, C, b["queueNumber"], now - 90000, now - 5)
        self.assertJsonError(self.status(old_waiting), 401, "TOKEN_EXPIRED")
        # expired and forged: the signature is checked first
        forged = self.sign("a", uid, C, b["queueNumber"], now - 700, now - 100, key=b"k" * 32)
        self.assertJsonError(self.seats(C, self.schedule_of(C), forged), 401, "TOKEN_INVALID")
        # a genuine future token that was signed with another key
        forged = self.sign("a", uid, C, b["queueNumber"], now, now + 600, key=b"k" * 32)
        self.assertJsonError(self.seats(C, self.schedule_of(C), forged), 401, "TOKEN_INVALID")

        # the operator CLI's one-second user token, used after it ran out
        user = U_TOKEN + 6
        rc, out = self.s.ctl("token", user_uuid(user), "1")
        self.assertEqual(rc, 0, out)
        tok = out.strip().splitlines()[-1]
        f = token_fields(tok)
        self.assertEqual((f["kind"], f["user"], f["exp"] - f["iat"]), ("u", user_uuid(user), 1))
        path = "/api/users/%s/balance" % user_uuid(user)
        deadline = f["exp"] + 0.2
        while time.time() < deadline:
            time.sleep(0.05)
        resp = self.http("GET", path, headers={"Authorization": "Bearer " + tok})
        self.assertJsonError(resp, 401, "TOKEN_EXPIRED")
        # and a fresh one works: the refusal was the expiry
        rc, out = self.s.ctl("token", user_uuid(user), "60")
        fresh = out.strip().splitlines()[-1]
        st, _, body = self.http("GET", path, headers={"Authorization": "Bearer " + fresh})
        self.assertEqual(st, 200, body)


# ======================================================================
class TestFairness(QueueTest):

    def ensure_users(self, n):
        """Demo users 1..n exist (boxoffice_seed adds the missing ones); the
        ones added here are removed again when the test ends."""
        s = self.s
        # demo users are numbered from 1 without gaps: 1..have exist
        have = int(s.psql_value("SELECT count(*) FROM users WHERE id IN (SELECT "
                                "boxoffice_user_uuid(i) FROM generate_series(1, %d) AS i)" % n))
        if have >= n:
            return
        s.psql("SELECT boxoffice_seed(%d, %d, %d, %d)" % (
            SEED["concerts"], SEED["schedules"], SEED["seats"], n))
        s.wait_replica_caught_up(timeout=60)
        first = have + 1

        def drop():
            # Only users that did nothing but get their opening balance.
            s.psql("""
                CREATE TEMP TABLE it_extra AS
                  SELECT u.id FROM users u
                  WHERE u.id IN (SELECT boxoffice_user_uuid(i)
                                 FROM generate_series(%d, %d) AS i)
                    AND NOT EXISTS (SELECT 1 FROM reservations r WHERE r.user_id = u.id)
                    AND NOT EXISTS (SELECT 1 FROM payments p WHERE p.user_id = u.id)
                    AND NOT EXISTS (SELECT 1 FROM seats x WHERE x.holder = u.id)
                    AND NOT EXISTS (SELECT 1 FROM idempotency_keys k WHERE k.user_id = u.id)
                    AND NOT EXISTS (SELECT 1 FROM ledger l WHERE l.user_id = u.id
                                    AND l.kind <> 'OPENING');
                DELETE FROM ledger WHERE user_id IN (SELECT id FROM it_extra);
                DELETE FROM users WHERE id IN (SELECT id FROM it_extra);
            """ % (first, n))
            s.wait_replica_caught_up(timeout=60)
            # and forget them in the queue's known-users set
            gone = {user_uuid(i) for i in range(first, n + 1)} - {
                row[0] for row in s.psql("SELECT id FROM users WHERE id IN (SELECT "
                                         "boxoffice_user_uuid(i) FROM generate_series(%d, %d)"
                                         " AS i)" % (first, n))}
            r = Redis(s.ports["redis"])
            try:
                gone = sorted(gone)
                for i in range(0, len(gone), 1000):
                    r("SREM", "users:known", *gone[i:i + 1000])
            finally:
                r.close()
        self.addCleanup(drop)

    @heavy
    def test_10000_concurrent_joins_unique_numbers_and_admission_in_join_order(self):
        C, N, MAXA, THREADS = 1, 10000, 50, 64
        s = self.s
        self.ensure_users(N)
        self.reset_queue(C)
        self.settings(max_active=MAXA, admit_per_second=100000, active_ttl=600,
                      claim_window=600)
        t_begin = time.time()

        # ---- 10,000 users join from 64 threads at once
        results = self.concurrently(lambda i: self.join(C, i + 1, timeout=30), N,
                                    threads=THREADS)
        t_joined = time.time()
        errs = [(i + 1, r) for i, r in enumerate(results)
                if self.not_new(r)]
        self.assertEqual(errs[:5], [], "%d of %d joins failed" % (len(errs), N))
        by_num, num_of = {}, {}
        for i, (st, _, b) in enumerate(results):
            n = b["queueNumber"]
            self.assertNotIn(n, by_num, "queue number %d given twice" % n)
            by_num[n] = b["token"]
            num_of[user_uuid(i + 1)] = n
            self.assertEqual(token_fields(b["token"])["user"], user_uuid(i + 1))
            # admission happens inside the join, in number order: exactly the
            # first MAXA numbers are ACTIVE, everyone else waits behind them
            if n <= MAXA:
                self.assertEqual(b["status"], "ACTIVE", b)
            else:
                self.assertEqual((b["status"], b["position"]), ("WAITING", n - MAXA - 1), b)
        self.assertEqual(sorted(by_num), list(range(1, N + 1)), "numbers not 1..N")
        self.assertEqual(s.redis("GET", qkey(C, "seq")), str(N))

        # ---- admission: turns end at random (as payments end them) while
        # 50 clients poll; the admitted set must always be a prefix of the
        # queue numbers
        stop = threading.Event()
        lock = threading.Lock()
        removed = {}                    # number -> monotonic time before its ZREM
        removed_done = {}               # number -> monotonic time after it
        records = []                    # (t0, t1, number, status, position)
        problems = []
        front = [MAXA]                  # numbers admitted so far (sampler)
        stats = {"samples": 0, "max_active": 0, "polls": 0}
        wait_k, active_k, claim_k = qkey(C, "wait"), qkey(C, "active"), qkey(C, "claim")

        def sampler():
            r = Redis(s.ports["redis"])
            try:
                sha = r("SCRIPT", "LOAD", SAMPLE_LUA)
                while not stop.is_set():
                    a, w, lo, hi = r("EVALSHA", sha, 3, wait_k, active_k, claim_k)
                    stats["samples"] += 1
                    stats["max_active"] = max(stats["max_active"], a)
                    if a > MAXA:
                        problems.append("ZCARD active = %d > max_active %d" % (a, MAXA))
                    if w and (hi != N or hi - lo + 1 != w):
                        problems.append("waiting numbers not a suffix: %d..%d, %d of them"
                                        % (lo, hi, w))
                    front[0] = N - w
                    if w == 0:
                        stop.set()
            except Exception as e:
                problems.append("sampler: %r" % e)
                stop.set()
            finally:
                r.close()

        def remover():
            r = Redis(s.ports["redis"])
            rnd = random.Random(7)
            try:
                while not stop.is_set():
                    # turns end (paid), and admitted turns go unclaimed
                    key = active_k if rnd.random() < 0.5 else claim_k
                    members = r("ZRANGE", key, 0, -1)
                    pick = [m for m in members if rnd.random() < 0.5]
                    if pick and key == claim_k:
                        # one at a time: a turn claimed meanwhile is not ended
                        for m in pick:
                            t = time.monotonic()
                            if r("ZREM", key, m) == 1:
                                with lock:
                                    removed.setdefault(num_of[m], t)
                                    removed_done.setdefault(num_of[m], time.monotonic())
                        pick = []
                    if pick:
                        t = time.monotonic()
                        with lock:
                            for m in pick:
                                removed.setdefault(num_of[m], t)
                        r("ZREM", key, *pick)
                        t = time.monotonic()
                        with lock:
                            for m in pick:
                                removed_done.setdefault(num_of[m], t)
                    time.sleep(0.003)
            except Exception as e:
                problems.append("remover: %r" % e)
                stop.set()
            finally:
                r.close()

        def poller(k):
            rnd = random.Random(k)
            cl = Client(s.ports["http"])
            try:
                while not stop.is_set():
                    m = front[0]
                    if rnd.random() < 0.85:
                        n = rnd.randint(max(1, m - 20), min(N, m + 150))
                    else:
                        n = rnd.randint(1, N)
                    t0 = time.monotonic()
                    st, b = cl.get("/api/queues/status", by_num[n])
                    t1 = time.monotonic()
                    if st != 200 or not isinstance(b, dict):
                        problems.append("poll of %d: %s %r" % (n, st, b))
                        continue
                    records.append((t0, t1, n, b.get("status"), b.get("position")))
            except Exception as e:
                problems.append("poller %d: %r" % (k, e))
            finally:
                cl.close()

        threads = [threading.Thread(target=sampler), threading.Thread(target=remover)]
        threads += [threading.Thread(target=poller, args=(k,)) for k in range(50)]
        for t in threads:
            t.start()
        budget = max(20.0, 55.0 - (time.time() - t_begin))
        stop.wait(budget)
        stop.set()
        for t in threads:
            t.join(30)
        self.assertEqual(problems[:10], [], "%d problems" % len(problems))
        self.assertGreater(stats["samples"], 20)
        self.assertLessEqual(stats["max_active"], MAXA)

        # everyone was admitted within the budget
        w = s.redis("ZCARD", wait_k)
        self.assertEqual(w, 0, "%d still waiting after %.0fs (%d polls)"
                         % (w, budget, len(records)))
        rc = self.redis()
        active_now = {num_of[m] for m in rc("ZRANGE", active_k, 0, -1) +
                      rc("ZRANGE", claim_k, 0, -1)}
        self.assertEqual(set(removed) | active_now, set(range(1, N + 1)))

        # ---- what the clients saw agrees with a prefix that only grows:
        # WAITING n at position p means exactly n-1-p were admitted then;
        # ACTIVE n means at least n were
        bad = []
        lows = []                   # (t1, lower bound of the admitted count)
        waits = []                  # (t0, exact admitted count, n)
        for t0, t1, n, st, pos in records:
            if st == "WAITING":
                if not isinstance(pos, int) or not 0 <= pos <= n - 1:
                    bad.append(("bad position", n, pos))
                    continue
                m = n - 1 - pos
                lows.append((t1, m))
                waits.append((t0, m, n))
            elif st == "ACTIVE":
                lows.append((t1, n))
                if n in removed_done and removed_done[n] < t0:
                    bad.append(("ACTIVE after its turn ended", n))
            elif st == "EXPIRED":
                if n not in removed or removed[n] > t1:
                    bad.append(("EXPIRED but never ended", n))
            else:
                bad.append(("status", n, st))
        lows.sort()
        waits.sort()
        j, best = 0, 0
        for t0, m, n in waits:
            while j < len(lows) and lows[j][0] < t0:
                best = max(best, lows[j][1])
                j += 1
            if m < best:
                bad.append(("admitted prefix shrank or skipped someone: %d waiting at %d "
                            "after %d were admitted" % (n, m, best)))
        self.assertEqual(bad[:10], [], "%d inconsistent answers of %d" % (len(bad), len(records)))
        self.assertGreater(len(waits), 100)

        # admission times follow queue numbers (what is left of the last minute)
        adm = [(int(n), float(t)) for n, t in
               pairs(rc("ZRANGE", qkey(C, "admits"), 0, -1, "WITHSCORES"))]
        adm.sort()
        late = [(a, b) for a, b in zip(adm, adm[1:]) if b[1] < a[1]]
        self.assertEqual(late[:5], [], "admitted later than someone who joined after")
        print("\n  10000 joins in %.1fs; all admitted %.1fs later; %d polls, max active %d"
              % (t_joined - t_begin, time.time() - t_joined, len(records),
                 stats["max_active"]), end=" ")

    def test_concurrent_pollers_never_exceed_max_active(self):
        C, U, MAXA = 2, 300, 5
        s = self.s
        self.reset_queue(C)
        self.settings(max_active=MAXA, admit_per_second=100000, active_ttl=600,
                      claim_window=600)
        users = list(range(1, U + 1))
        res = self.concurrently(lambda i: self.join(C, users[i]), U, threads=60)
        self.assertEqual([r for r in res if self.not_new(r)], [])
        tokens = {r[2]["queueNumber"]: r[2]["token"] for r in res}
        uid_num = {user_uuid(users[i]): r[2]["queueNumber"] for i, r in enumerate(res)}
        active_at_join = sorted(r[2]["queueNumber"] for r in res if r[2]["status"] == "ACTIVE")
        self.assertEqual(active_at_join, list(range(1, MAXA + 1)))

        stop = threading.Event()
        churn = threading.Event()
        ended = set()
        problems = []
        stats = {"max": 0, "samples": 0}
        active_k = qkey(C, "active")

        def sampler():
            r = Redis(s.ports["redis"])
            try:
                while not stop.is_set():
                    a = r("ZCARD", active_k)
                    stats["samples"] += 1
                    stats["max"] = max(stats["max"], a)
            finally:
                r.close()

        def remover():
            r = Redis(s.ports["redis"])
            rnd = random.Random(3)
            try:
                while not stop.is_set():
                    if churn.is_set():
                        members = r("ZRANGE", active_k, 0, -1)
                        if members:
                            m = rnd.choice(members)
                            ended.add(uid_num[m])
                            r("ZREM", active_k, m)
                    time.sleep(0.02)
            finally:
                r.close()

        local = threading.local()
        r_main = self.redis()

        def poll(n):
            if not hasattr(local, "cl"):
                local.cl = Client(s.ports["http"])
            st, b = local.cl.get("/api/queues/status", tokens[n])
            if st != 200:
                problems.append((n, st, b))
                return None
            return b.get("status")

        bg = [threading.Thread(target=sampler), threading.Thread(target=remover)]
        for t in bg:
            t.start()
        seen_max = 0
        try:
            with concurrent.futures.ThreadPoolExecutor(60) as ex:
                for rnd_i in range(6):
                    # churn: turns end while 60 clients poll at random
                    churn.set()
                    t_end = time.time() + 0.5
                    rnd = random.Random(rnd_i)
                    while time.time() < t_end:
                        list(ex.map(poll, [rnd.randint(1, U) for _ in range(120)]))
                    churn.clear()
                    time.sleep(0.05)
                    # quiet round: nobody leaves, everyone still in the game polls
                    # at once; at most MAXA can answer ACTIVE
                    live = [n for n in range(1, U + 1) if n not in ended]
                    answers = list(ex.map(poll, live))
                    # an answer that is not 200 would read as "not ACTIVE"
                    # below: name it instead
                    self.assertEqual(problems[:5], [], "round %d" % rnd_i)
                    n_active = answers.count("ACTIVE")
                    seen_max = max(seen_max, n_active)
                    self.assertLessEqual(n_active, MAXA, "round %d: %d ACTIVE answers"
                                         % (rnd_i, n_active))
                    # ...and they are the lowest numbers still in the game
                    act = {n for n, a in zip(live, answers) if a == "ACTIVE"}
                    self.assertLessEqual(act, set(live[:MAXA]), "round %d" % rnd_i)
                    # free places are filled (admission runs at most every
                    # 50 ms), with exactly those
                    def filled():
                        poll(live[min(MAXA, len(live) - 1)])
                        return {uid_num[m] for m in r_main("ZRANGE", active_k, 0, -1) +
                                r_main("ZRANGE", qkey(C, "claim"), 0, -1)}
                    now_active = self.wait_for(lambda: (lambda a: a if len(a) >= min(
                        MAXA, len(live)) else None)(filled()), timeout=3, interval=0.02,
                        msg="round %d: free places filled" % rnd_i)
                    self.assertEqual(now_active, set(live[:MAXA]), "round %d" % rnd_i)
        finally:
            stop.set()
            for t in bg:
                t.join(10)
        self.assertEqual(problems[:5], [])
        self.assertGreater(stats["samples"], 50)
        self.assertLessEqual(stats["max"], MAXA, "ZCARD active reached %d" % stats["max"])
        self.assertEqual(seen_max, MAXA)
        self.assertGreater(len(ended), 20)

    def test_admissions_per_second_are_limited(self):
        C, U, RATE = 3, 30, 5
        self.reset_queue(C)
        self.settings(max_active=1000, admit_per_second=RATE, active_ttl=600,
                      claim_window=600)
        users = [U_RATE + i for i in range(1, U + 1)]
        t_start = time.time()
        res = self.concurrently(lambda i: self.join(C, users[i]), U, threads=15)
        self.assertEqual([r for r in res if self.not_new(r)], [])
        t_joined = time.time()
        tokens = {r[2]["queueNumber"]: r[2]["token"] for r in res}
        first_active = {r[2]["queueNumber"]: t_joined for r in res
                        if r[2]["status"] == "ACTIVE"}
        self.assertLessEqual(len(first_active), RATE * (int(t_joined - t_start) + 1))
        deadline = t_start + 2.6
        while time.time() < deadline:
            for n in sorted(tokens):
                if n in first_active:
                    continue
                b = self.polled(tokens[n])
                if b["status"] == "ACTIVE":
                    first_active[n] = time.time()
            time.sleep(0.02)
        elapsed = time.time() - t_start
        # in order: the admitted are always the lowest numbers
        self.assertEqual(sorted(first_active), list(range(1, len(first_active) + 1)))
        # never faster than RATE per second, as the clients saw it...
        for n, t in first_active.items():
            seen_by_then = sum(1 for x in first_active.values() if x <= t)
            self.assertLessEqual(seen_by_then, RATE * (int(t - t_start) + 1))
        # ...and as the queue recorded it: any 6 admissions span >= 1 s
        adm = sorted((float(t), int(n)) for n, t in
                     pairs(self.redis()("ZRANGE", qkey(C, "admits"), 0, -1, "WITHSCORES")))
        self.assertEqual(sorted(n for _, n in adm), list(range(1, len(adm) + 1)))
        self.assertLessEqual(set(first_active), {n for _, n in adm})
        for a, b in zip(adm, adm[RATE:]):
            self.assertGreaterEqual(b[0] - a[0], 1000.0, "more than %d admissions within "
                                    "a second: %r" % (RATE, adm))
        self.assertEqual([n for _, n in adm], sorted(n for _, n in adm))
        # but the queue does move at that rate
        self.assertGreaterEqual(len(adm), RATE * int(elapsed) - 1,
                                "only %d admitted in %.1fs" % (len(adm), elapsed))


# ======================================================================
class TestTurns(QueueTest):

    def test_unclaimed_turn_is_dropped_and_the_next_is_admitted(self):
        """Waiters need not poll to keep their place: B never polls after
        joining and still moves to the front. Admitted, B has claim_window
        seconds to claim the turn with a status call; it does not, so the
        turn is dropped and C (who did not poll either) is admitted. C
        claims within the window and gets ACTIVE."""
        C, CLAIM = 3, 2
        self.reset_queue(C)
        self.settings(max_active=1, admit_per_second=1000, claim_window=CLAIM)
        ua, ub, uc, ud = (U_TURN + i for i in range(1, 5))
        a = self.joined(C, ua)
        self.assertEqual(a["status"], "ACTIVE")
        b = self.joined(C, ub)
        c = self.joined(C, uc)
        d = self.joined(C, ud)
        self.assertEqual([x["position"] for x in (b, c, d)], [0, 1, 2])
        claim_k = qkey(C, "claim")

        # A pays: D's join-time view aside, nobody polls; a join by someone
        # else runs admission, and B is admitted, unclaimed
        self.assertEqual(self.end_turn(C, ua), 1)
        t_adm = time.time()
        self.joined(C, U_TURN + 5)
        self.assertEqual(self.s.redis("ZRANGE", claim_k, 0, -1), [user_uuid(ub)])
        self.assertEqual(self.s.redis("ZCARD", qkey(C, "active")), 0)
        # capacity counts the unclaimed turn: C is not admitted meanwhile
        time.sleep(0.1)
        self.get("/api/queues/%d/progress" % C)
        self.assertEqual(self.s.redis("ZSCORE", claim_k, user_uuid(uc)), None)
        # nobody claims: progress reads (the waiting page's) run admission,
        # which drops B's turn after CLAIM seconds and admits C
        def c_admitted():
            self.get("/api/queues/%d/progress" % C)
            return self.s.redis("ZSCORE", claim_k, user_uuid(uc))
        self.wait_for(c_admitted, timeout=CLAIM + 4, interval=0.2,
                      msg="C admitted once B's turn went unclaimed")
        self.assertGreaterEqual(time.time() - t_adm, CLAIM - 0.2)
        self.assertEqual(self.s.redis("HEXISTS", qkey(C, "num"), user_uuid(ub)), 0)
        self.polled(b["token"], "EXPIRED")
        # C claims: ACTIVE with the token booking needs; D still waits, first
        st = self.polled(c["token"], "ACTIVE")
        self.assertEqual(self.seats(C, self.schedule_of(C), st["token"])[0], 200)
        self.assertEqual(self.s.redis("ZCARD", claim_k), 0)
        self.assertEqual(self.polled(d["token"], "WAITING")["position"], 0)
        stats = self.s.redis("HGET", qkey(C, "stats"), "abandoned")
        self.assertEqual(stats, "1")
        # B starts again at the back
        again = self.joined(C, ub, new=True)
        self.assertGreater(again["queueNumber"], d["queueNumber"])

    def test_active_turn_ends_after_active_ttl(self):
        C, TTL = 5, 10
        self.reset_queue(C)
        self.settings(max_active=1, admit_per_second=1000, active_ttl=TTL)
        t0 = time.time()
        a = self.joined(C, U_TURN + 11)
        t1 = time.time()
        self.assertEqual(a["status"], "ACTIVE")
        until = parse_iso_ms(a["activeUntil"])
        self.assertGreaterEqual(until, t0 + TTL - 0.5)
        self.assertLessEqual(until, t1 + TTL + 0.5)
        w = self.joined(C, U_TURN + 12)
        self.assertEqual(w["status"], "WAITING")
        sched = self.schedule_of(C)
        self.assertEqual(self.seats(C, sched, a["token"])[0], 200)

        seen = []

        def w_active():
            st = self.polled(w["token"])
            seen.append((time.time(), st))
            return st if st["status"] == "ACTIVE" else None
        st = self.wait_for(w_active, timeout=until - time.time() + 4, interval=0.4,
                           msg="the next user admitted when the turn ends")
        for t, x in seen:
            if t < until - 0.2:
                self.assertEqual(x["status"], "WAITING", "admitted %.1fs early" % (until - t))
        # ended: EXPIRED, and its token no longer opens the seat map
        self.assert_turn_over(a["token"])
        resp = self.seats(C, sched, a["token"])
        self.assertJsonError(resp, 401, "TOKEN_EXPIRED")
        # the next one's turn is a full active_ttl from its admission
        w_until = parse_iso_ms(st["activeUntil"])
        self.assertGreaterEqual(w_until, until + TTL - 1.5)
        self.assertEqual(self.seats(C, sched, st["token"])[0], 200)
        # joining again is a new place, behind
        again = self.joined(C, U_TURN + 11, new=True)
        self.assertEqual((again["queueNumber"], again["status"]), (3, "WAITING"))

    def _free_seat(self, concert, token):
        for k in reversed(range(SEED["schedules"])):
            sched = self.schedule_of(concert, k)
            st, _, b = self.seats(concert, sched, token)
            self.assertEqual(st, 200, b)
            free = [x["number"] for x in b["seats"] if x["status"] == "AVAILABLE"]
            if free:
                return sched, max(free)
        self.fail("no free seat left in concert %d: the test data is used up" % concert)

    def _pay_one_seat(self, C, tok):
        A = {"Authorization": "Bearer " + tok}
        sched, seat = self._free_seat(C, tok)
        st, _, hold = self.http("POST", "/api/reservations",
                                body={"scheduleId": sched, "seatNumber": seat}, headers=A)
        self.assertEqual(st, 201, hold)
        st, _, pay = self.http("POST", "/api/payments", body={"reservationId": hold["id"]},
                               headers=A)
        self.assertEqual(st, 201, pay)
        return sched, A

    def test_payment_ends_the_turn_and_revokes_the_token(self):
        C = 3
        self.reset_queue(C)
        self.settings(max_active=1, admit_per_second=1000)
        a = self.joined(C, U_PAY)
        self.assertEqual(a["status"], "ACTIVE")
        w = self.joined(C, U_TURN + 21)
        self.polled(w["token"], "WAITING")
        tok = a["token"]
        sched, A = self._pay_one_seat(C, tok)

        self.polled(tok, "EXPIRED")
        self.assertEqual(self.s.redis("ZSCORE", qkey(C, "active"), user_uuid(U_PAY)), None)
        self.assertJsonError(self.seats(C, sched, tok), 401, "TOKEN_REVOKED")
        resp = self.http("POST", "/api/reservations",
                         body={"scheduleId": sched, "seatNumber": 1}, headers=A)
        self.assertJsonError(resp, 401, "TOKEN_REVOKED")
        # the place it freed goes to the next in line
        nxt = self.wait_active(w["token"])
        self.assertEqual(self.seats(C, sched, nxt["token"])[0], 200)
        self.assertJsonError(self.seats(C, sched, tok), 401, "TOKEN_REVOKED")

    def test_paid_turn_stays_revoked_when_the_user_is_admitted_again(self):
        """docs/api.md: once paid, the turn's token gets 401 TOKEN_REVOKED on
        the booking routes "from then on", also after the same user has
        joined again and been admitted to a new turn (new number, new token)."""
        C = 3
        self.reset_queue(C)
        self.settings(max_active=1, admit_per_second=1000)
        a = self.joined(C, U_PAY + 1)
        self.assertEqual(a["status"], "ACTIVE")
        old = a["token"]
        sched, _ = self._pay_one_seat(C, old)
        self.assertJsonError(self.seats(C, sched, old), 401, "TOKEN_REVOKED")
        again = self.joined(C, U_PAY + 1, new=True)
        self.assertEqual(again["status"], "ACTIVE")
        self.assertGreater(again["queueNumber"], a["queueNumber"])
        self.assertEqual(self.seats(C, sched, again["token"])[0], 200)
        # the paid turn's token reads EXPIRED on status...
        self.polled(old, "EXPIRED")
        # ...and must not open the booking routes again
        resp = self.seats(C, sched, old)
        self.assertEqual(resp[0], 401, "the paid turn's token opened the seat map again")
        self.assertJsonError(resp, 401, "TOKEN_REVOKED")
        resp = self.http("POST", "/api/reservations", body={"scheduleId": sched,
                         "seatNumber": 1}, headers={"Authorization": "Bearer " + old})
        self.assertJsonError(resp, 401, "TOKEN_REVOKED")


# ======================================================================
class TestDumpRestore(QueueTest):

    def _ctl_ok(self, *args):
        rc, out = self.s.ctl(*args, check=False)
        self.assertEqual(rc, 0, out)
        return out

    def test_dump_flushall_restore_gives_the_same_queue_and_order(self):
        C, MAXA, U = 4, 3, 20
        s = self.s
        self.reset_queue(C)
        self.settings(max_active=MAXA, admit_per_second=1000, claim_window=600)
        users = [U_DUMP + i for i in range(1, U + 1)]
        places = [self.joined(C, u) for u in users]
        self.assertEqual([p["queueNumber"] for p in places], list(range(1, U + 1)))
        for p in places[MAXA:MAXA + 4]:
            self.polled(p["token"], "WAITING")
        before = self.queue_state(C)
        self.assertEqual(len(before["wait"]), U - MAXA)
        self.assertEqual(len(before["active"]), MAXA)

        with tempfile.TemporaryDirectory(prefix="it-queue-dump-", dir=s.dir) as d:
            path = os.path.join(d, "queue-%d.json" % C)
            self._ctl_ok("queue", "dump", C, path)
            self.assertGreater(os.path.getsize(path), 0)
            self.assertEqual(s.redis("FLUSHALL"), "OK")
            self.assertEqual(s.redis("EXISTS", qkey(C, "wait")), 0)
            self._ctl_ok("queue", "restore", path)
        after = self.queue_state(C)
        for part in ("seq", "num", "wait", "active"):
            self.assertEqual(after[part], before[part], "%s differs after restore" % part)
        self.assertEqual(after, before, "the restored queue is not identical")

        # the old tokens still work and read the same places
        for i, p in enumerate(places):
            st = self.polled(p["token"])
            if i < MAXA:
                self.assertEqual(st["status"], "ACTIVE")
            else:
                self.assertEqual((st["status"], st["position"]), ("WAITING", i - MAXA), st)
        # admission continues in the old order: two turns end, the next two
        # in line (and nobody else) come in
        self.assertEqual(self.end_turn(C, users[0]), 1)
        self.assertEqual(self.end_turn(C, users[2]), 1)
        self.wait_active(places[MAXA]["token"])
        for i, p in enumerate(places[MAXA:], start=MAXA):
            st = self.polled(p["token"])
            if i < MAXA + 2:
                self.assertEqual(st["status"], "ACTIVE", "number %d" % (i + 1))
            else:
                self.assertEqual((st["status"], st["position"]), ("WAITING", i - MAXA - 2))
        # and numbering continues where it was
        b = self.joined(C, U_DUMP + 50)
        self.assertEqual((b["queueNumber"], b["status"], b["position"]),
                         (U + 1, "WAITING", U - MAXA - 2))

    def test_restore_after_an_outage_longer_than_the_claim_window_keeps_the_turn(self):
        """Nobody can claim while the queue is gone: a restore after an
        outage longer than the claim window must not drop an admitted,
        unclaimed turn at the next admission (its deadline moves by the
        pause), nor anyone's place."""
        C, CLAIM = 4, 2
        s = self.s
        self.reset_queue(C)
        self.settings(max_active=1, admit_per_second=1000, claim_window=CLAIM)
        places = [self.joined(C, U_DUMP + 60 + i) for i in range(4)]
        self.assertEqual(self.end_turn(C, U_DUMP + 60), 1)
        # the progress document's reads run admission (nginx keeps it 1 s)
        self.wait_for(lambda: self.get("/api/queues/%d/progress" % C) and
                      s.redis("ZRANGE", qkey(C, "claim"), 0, -1), timeout=4, interval=0.3,
                      msg="the next admitted")
        self.assertEqual(s.redis("ZRANGE", qkey(C, "claim"), 0, -1), [user_uuid(U_DUMP + 61)])
        with tempfile.TemporaryDirectory(prefix="it-queue-dump-", dir=s.dir) as d:
            path = os.path.join(d, "queue-%d.json" % C)
            self._ctl_ok("queue", "dump", C, path)
            s.redis("FLUSHALL")
            time.sleep(CLAIM + 1.0)              # the outage
            self._ctl_ok("queue", "restore", path)
        self.get("/api/queues/%d/progress" % C)
        self.polled(places[1]["token"], "ACTIVE")
        lost = []
        for i, p in enumerate(places[2:]):
            st = self.polled(p["token"])
            if (st["status"], st.get("position")) != ("WAITING", i):
                lost.append((p["queueNumber"], st["status"]))
        self.assertEqual(lost, [], "waiters lost their places after a restore")


# ======================================================================
@destructive
class TestRedisDown(QueueTest):
    """Stops or pauses Redis (destructive: runs after the other tests),
    brings it back."""

    BUDGET = 1.2          # seconds a queue answer may take while Redis is down

    def _admitted_pair(self, C, base):
        self.reset_queue(C)
        self.settings(max_active=1, admit_per_second=1000)
        a = self.joined(C, base + 1)
        w = self.joined(C, base + 2)
        self.assertEqual((a["status"], w["status"]), ("ACTIVE", "WAITING"))
        return a, w

    def _check_down(self, C, a, w, base):
        sched = self.schedule_of(C)
        slow = []
        worst = 0.0
        for i in range(3 * self.s.workers):
            for name, call in (("join", lambda: self.join(C, base + 10 + i, timeout=10)),
                               ("status", lambda: self.status(w["token"], timeout=10))):
                t0 = time.time()
                resp = call()
                dt = time.time() - t0
                worst = max(worst, dt)
                if dt > self.BUDGET:
                    slow.append((name, round(dt, 2)))
                self.assertJsonError(resp, 503)
                ra = resp[1].get("retry-after")
                self.assertIsNotNone(ra, "%s: 503 without Retry-After" % name)
                self.assertTrue(ra.strip().isdigit() and int(ra) >= 1, ra)
            # admitted users keep their seat map on the signed token alone
            t0 = time.time()
            r = self.seats(C, sched, a["token"], timeout=10)
            dt = time.time() - t0
            worst = max(worst, dt)
            self.assertEqual(r[0], 200, r[2])
            if dt > self.BUDGET:
                slow.append(("seats", round(dt, 2)))
        self.assertEqual(slow, [], "answers slower than %.1fs with Redis down" % self.BUDGET)
        return worst

    def _check_back(self, C, base):
        """Joins work again, in every worker (each has its own breaker, which
        lets a probe through breaker_open_s after it opened)."""
        t0 = time.time()

        def joins():
            rs = [self.join(C, base + 50, timeout=10) for _ in range(3 * self.s.workers)]
            return rs[-1] if all(r[0] in (200, 201) for r in rs) else None
        st, _, b = self.wait_for(joins, timeout=20, interval=0.3,
                                 msg="joins working again in every worker")
        self.check_place(b, C, base + 50)
        return time.time() - t0

    def test_redis_paused_queue_fails_fast_admitted_keep_booking(self):
        C, base = 5, U_DOWN
        a, w = self._admitted_pair(C, base)
        self.s.pause_server("redis")
        try:
            worst = self._check_down(C, a, w, base)
        finally:
            self.restore_server("redis")
        back = self._check_back(C, base)
        print("\n  slowest answer with Redis paused %.2fs; every worker back after %.1fs"
              % (worst, back), end=" ")
        # the queue itself survived the pause
        self.polled(a["token"], "ACTIVE")
        self.assertEqual(self.polled(w["token"], "WAITING")["position"], 0)

    def test_redis_stopped_queue_fails_fast_admitted_keep_booking(self):
        C, base = 5, U_DOWN + 100
        a, w = self._admitted_pair(C, base)
        self.s.stop_server("redis")
        try:
            worst = self._check_down(C, a, w, base)
        finally:
            self.restore_server("redis")
        back = self._check_back(C, base)
        print("\n  slowest answer with Redis stopped %.2fs; every worker back after %.1fs"
              % (worst, back), end=" ")


def load_tests(loader, standard_tests, pattern):
    suite = unittest.TestSuite()
    for cls in (TestJoin, TestSettings, TestTokens, TestFairness, TestTurns, TestDumpRestore,
                TestRedisDown):
        suite.addTests(loader.loadTestsFromTestCase(cls))
    return suite

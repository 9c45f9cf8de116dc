"""Buying for a group: several holds paid in one request (reservationIds),
all or nothing; the turn that ends only when no live hold is left; the
per-concert ticket limit (booking.max_tickets_per_user) under concurrency;
replays that end no later turn; two Idempotency-Key headers refused.

Data used here (other modules keep away from it): concert 1's schedules
2 to 4 and demo users 981 to 989, one per test:

    981  four seats in one payment (2/11-14)
    982  the turn ends only when no live hold is left (2/21-23)
    983  one expired hold in the list (3/11-14)
    984  foreign and other-concert holds in the list (3/21-23); 985 the
         other holder (3/24); 984 also holds 13/50 in concert 4
    986  bad lists (2/31-32)
    987  20 parallel holds and payments over two turns (3/31-50, 4/1-21)
    988  a replay in a later turn and in another concert's turn (2/41-42,
         concert 4's queue)
    989  two Idempotency-Key headers (2/45)

The module raises queue.max_active and queue.admit_per_second so that
joining users are admitted at once, and takes its users off the queues of
concerts 1 and 4 at the end.
"""

import socket
import uuid

from harness import user_uuid
from test_booking import BookingTest, auth, short

CONCERT = 1
OTHER_CONCERT = 4
MAX_TICKETS = 4               # booking.max_tickets_per_user default
MAX_HOLDS = 4                 # booking.max_holds_per_user default
USERS = range(981, 990)


class GroupTest(BookingTest):
    """Helpers for paying several holds at once."""

    @classmethod
    def tearDownClass(cls):
        try:
            for c in (CONCERT, OTHER_CONCERT):
                cls.stack.drop_places(c, [user_uuid(u) for u in USERS])
        finally:
            super().tearDownClass()

    def pay_many(self, token, rids, key=None, **kw):
        h = auth(token)
        if key is not None:
            h["Idempotency-Key"] = key
        return self.http("POST", "/api/payments", body={"reservationIds": rids},
                         headers=h, **kw)

    def hold_ok(self, token, schedule, seat):
        st, _, b = self.hold(token, schedule, seat)
        self.assertEqual(st, 201, "hold %d/%d: %r" % (schedule, seat, b))
        return b

    def expire(self, rid):
        """End a hold's time now, in the seat and the reservation alike."""
        self.q("WITH s AS (UPDATE seats SET hold_expires_at = now() - interval '1 second' "
               "WHERE reservation_id = '%s' AND status = 'HELD') "
               "UPDATE reservations SET expires_at = now() - interval '1 second' "
               "WHERE id = '%s'" % (rid, rid))

    def res_status(self, rid):
        return self.v("SELECT status FROM reservations WHERE id = '%s'" % rid)

    def tickets(self, u, concert=CONCERT):
        """Seats of concert user u holds (live) or bought."""
        return int(self.v(
            "SELECT count(*) FROM reservations r JOIN schedules sc ON sc.id = r.schedule_id "
            "WHERE r.user_id = '%s' AND sc.concert_id = %d AND (r.status = 'PAID' OR "
            "(r.status = 'HELD' AND r.expires_at > now()))" % (user_uuid(u), concert)))

    def sold(self, u, concert=CONCERT):
        return int(self.v(
            "SELECT count(*) FROM payments p JOIN schedules sc ON sc.id = p.schedule_id "
            "WHERE p.user_id = '%s' AND sc.concert_id = %d" % (user_uuid(u), concert)))

    def assertTurnGoesOn(self, token, schedule):
        st, _, b = self.get("/api/concerts/%d/schedules/%d/seats"
                            % (CONCERT if schedule <= 4 else OTHER_CONCERT, schedule),
                            headers=auth(token))
        self.assertEqual(st, 200, "the turn has ended: %r" % (b,))

    def assertTurnOver(self, token, schedule):
        self.assertJsonError(self.get("/api/concerts/%d/schedules/%d/seats"
                                      % (CONCERT, schedule), headers=auth(token)),
                             401, "TOKEN_REVOKED")


class TestGroupPayment(GroupTest):

    def test_four_seats_in_one_payment(self):
        u, sched, seats = 981, 2, (11, 12, 13, 14)
        tok = self.join(u, concert=CONCERT)
        before = self.db_balance(u)
        ledger_before = self.ledger_count(u)
        holds = [self.hold_ok(tok, sched, s) for s in seats]
        rids = [h["id"] for h in holds]
        total = sum(h["price"] for h in holds)
        key = "grp-%s" % uuid.uuid4().hex
        st, _, p = self.pay_many(tok, rids, key=key)
        self.assertEqual(st, 201, p)
        self.assertEqual(sorted(p), ["balance", "payments", "total"], p)
        self.assertEqual((p["total"], p["balance"]), (total, before - total), p)
        self.assertEqual([x["reservationId"] for x in p["payments"]], rids, p)
        for x, h in zip(p["payments"], holds):
            uuid.UUID(x["id"])
            self.assertEqual((x["scheduleId"], x["seatNumber"], x["amount"]),
                             (sched, h["seatNumber"], h["price"]), p)
        # 4 sold seats, 4 payments, 4 ledger entries, each with the balance it left
        for s in seats:
            self.assertEqual(self.seat_row(sched, s)[0], "SOLD")
        self.assertEqual(self.db_balance(u), before - total)
        self.assertEqual(self.payment_count(u), 4)
        self.assertEqual(self.ledger_count(u), ledger_before + 4)
        rows = self.q("SELECT l.amount, l.balance_after, p.reservation_id FROM ledger l "
                      "JOIN payments p ON p.id = l.payment_id WHERE l.user_id = '%s' "
                      "AND l.kind = 'PAYMENT' ORDER BY l.id" % user_uuid(u))
        run = before
        for (amount, after, rid), h in zip(rows, holds):
            run -= h["price"]
            self.assertEqual((int(amount), int(after), rid), (-h["price"], run, h["id"]))
        self.assertEqual(self.balance(u), before - total)
        # no live hold is left: the turn has ended
        self.assertTurnOver(tok, sched)
        # the retry after the turn's end gets the first answer; another list does not
        again = self.pay_many(tok, rids, key=key)
        self.assertEqual((again[0], again[2]), (201, p))
        self.assertJsonError(self.pay_many(tok, rids[:3], key=key), 422,
                             "IDEMPOTENCY_MISMATCH")
        self.assertEqual(self.db_balance(u), before - total)
        self.assertInvariants()

    def test_the_turn_ends_when_no_live_hold_is_left(self):
        u, sched = 982, 2
        tok = self.join(u, concert=CONCERT)
        a, b = self.hold_ok(tok, sched, 21), self.hold_ok(tok, sched, 22)
        # one of two paid (the one-reservation form, as before): the turn goes on
        st, _, p = self.pay(tok, a["id"])
        self.assertEqual(st, 201, p)
        self.assertEqual(sorted(p), ["amount", "balance", "id", "reservationId", "scheduleId",
                                     "seatNumber", "ticketCode", "ticketId"], p)
        self.assertTurnGoesOn(tok, sched)
        c = self.hold_ok(tok, sched, 23)
        # the last two in one payment: none left, the turn ends
        st, _, p = self.pay_many(tok, [b["id"], c["id"]])
        self.assertEqual(st, 201, p)
        self.assertTurnOver(tok, sched)
        self.assertJsonError(self.hold(tok, sched, 24), 401, "TOKEN_REVOKED")
        self.assertEqual(self.sold(u), 3)

    def test_one_expired_hold_refuses_the_whole_payment(self):
        u, sched, seats = 983, 3, (11, 12, 13, 14)
        tok = self.join(u, concert=CONCERT)
        rids = [self.hold_ok(tok, sched, s)["id"] for s in seats]
        self.expire(rids[2])
        snap = self.money_snapshot(u)
        key = "grp-exp-%s" % uuid.uuid4().hex
        self.assertJsonError(self.pay_many(tok, rids, key=key), 409, "HOLD_EXPIRED")
        self.assertJsonError(self.pay_many(tok, rids), 409, "HOLD_EXPIRED")
        self.assertEqual(self.money_snapshot(u), snap, "money moved")
        self.assertEqual([self.res_status(r) for r in rids], ["HELD"] * 4)
        for s in (11, 12, 14):
            self.assertEqual(self.seat_row(sched, s)[0], "HELD")
        self.assertTurnGoesOn(tok, sched)
        # the three live ones can be paid; the expired one is no live hold
        live = [rids[0], rids[1], rids[3]]
        st, _, p = self.pay_many(tok, live)
        self.assertEqual(st, 201, p)
        self.assertEqual(self.payment_count(u), 3)
        self.assertTurnOver(tok, sched)
        self.assertInvariants()

    def test_a_foreign_or_other_concert_hold_refuses_the_whole_payment(self):
        u, other, sched = 984, 985, 3
        tok = self.join(u, concert=CONCERT)
        tok_other = self.join(other, concert=CONCERT)
        mine = [self.hold_ok(tok, sched, s)["id"] for s in (21, 22, 23)]
        theirs = self.hold_ok(tok_other, sched, 24)["id"]
        snap, snap_other = self.money_snapshot(u), self.money_snapshot(other)
        self.assertJsonError(self.pay_many(tok, [mine[0], theirs, mine[1]]), 404,
                             "RESERVATION_NOT_FOUND")
        self.assertJsonError(self.pay_many(tok, [mine[0], str(uuid.uuid4())]), 404,
                             "RESERVATION_NOT_FOUND")
        # the user's own hold in another concert
        tok4 = self.join(u, concert=OTHER_CONCERT)
        elsewhere = self.hold_ok(tok4, 13, 50)["id"]
        snap = self.money_snapshot(u)
        self.assertJsonError(self.pay_many(tok, mine + [elsewhere]), 403, "WRONG_CONCERT")
        self.assertEqual(self.money_snapshot(u), snap)
        self.assertEqual(self.money_snapshot(other), snap_other)
        self.assertEqual([self.res_status(r) for r in mine + [theirs, elsewhere]],
                         ["HELD"] * 5)
        self.assertTurnGoesOn(tok, sched)
        for t, r in ((tok, mine[0]), (tok, mine[1]), (tok, mine[2]), (tok_other, theirs),
                     (tok4, elsewhere)):
            self.assertEqual(self.release(t, r)[0], 200)
        self.assertInvariants()

    def test_bad_lists_are_400_and_change_nothing(self):
        u, sched = 986, 2
        tok = self.join(u, concert=CONCERT)
        a, b = self.hold_ok(tok, sched, 31)["id"], self.hold_ok(tok, sched, 32)["id"]
        snap = self.money_snapshot(u)
        many = [a, b] + [str(uuid.uuid4()) for _ in range(MAX_HOLDS - 1)]
        cases = [
            ("duplicate", {"reservationIds": [a, b, a]}, "INVALID_FIELD"),
            ("duplicate in another spelling", {"reservationIds": [a, a.upper()]},
             "INVALID_FIELD"),
            ("empty", {"reservationIds": []}, "INVALID_FIELD"),
            ("more than max_holds_per_user", {"reservationIds": many}, "INVALID_FIELD"),
            ("more than the field allows", {"reservationIds": [str(uuid.uuid4())
                                                               for _ in range(101)]},
             "INVALID_FIELD"),
            ("not a list", {"reservationIds": a}, "INVALID_FIELD"),
            ("a member not a UUID", {"reservationIds": [a, "x"]}, "INVALID_FIELD"),
            ("a member not a string", {"reservationIds": [a, 7]}, "INVALID_FIELD"),
            ("both forms", {"reservationId": a, "reservationIds": [b]}, "INVALID_FIELD"),
            ("neither", {}, "MISSING_FIELD"),
        ]
        for what, body, code in cases:
            with self.subTest(what):
                for key in (None, "grp-bad-%s" % uuid.uuid4().hex):
                    h = auth(tok)
                    if key:
                        h["Idempotency-Key"] = key
                    self.assertJsonError(self.http("POST", "/api/payments", body=body,
                                                   headers=h), 400, code)
        self.assertEqual(self.money_snapshot(u), snap)
        self.assertEqual([self.res_status(r) for r in (a, b)], ["HELD", "HELD"])
        self.assertTurnGoesOn(tok, sched)
        st, _, p = self.pay_many(tok, [a, b])
        self.assertEqual(st, 201, p)


class TestTicketLimit(GroupTest):

    def test_parallel_holds_and_payments_over_two_turns_stay_within_the_limit(self):
        """One user, two turns of one concert: the first ends with a payment,
        the second is a new join. 20 holds and payments at once with both
        tokens, over two schedules (where the per-schedule hold limit
        alone would allow 8 more): at most booking.max_tickets_per_user seats
        are ever held or sold, and every refusal is a documented 4xx."""
        u = 987
        self.charge(u, 5000000)
        tok1 = self.join(u, concert=CONCERT)
        first = self.hold_ok(tok1, 4, 1)
        self.assertEqual(self.pay(tok1, first["id"])[0], 201)
        tok2 = self.join(u, concert=CONCERT)
        self.assertNotEqual(tok1, tok2)
        allowed = {(201, None), (200, None), (401, "TOKEN_REVOKED"), (409, "TICKET_LIMIT"),
                   (409, "HOLD_LIMIT"), (409, "SEAT_TAKEN"), (409, "ALREADY_PAID"),
                   (409, "HOLD_EXPIRED"), (404, "RESERVATION_NOT_FOUND")}
        held = []

        def act(k):
            tok = tok2 if k % 4 else tok1
            sched, seat = (3, 31 + k) if k % 2 else (4, 2 + k)
            r = self.hold(tok, sched, seat)
            if r[0] == 201:
                held.append(r[2]["id"])
                # pay at once, one by one or together with the holds so far
                p = (self.pay(tok, r[2]["id"]) if k % 2
                     else self.pay_many(tok, list(dict.fromkeys(held))[-2:]))
                return [r, p]
            return [r]

        bad, seen = [], []
        for _round in range(2):
            results = self.together(act, 20)
            self.assertNo5xx([x for r in results if isinstance(r, list) for x in r]
                             + [r for r in results if not isinstance(r, list)], "race")
            for r in results:
                for x in r:
                    seen.append(short(x))
                    if short(x) not in allowed:
                        bad.append(short(x))
            self.assertLessEqual(self.tickets(u), MAX_TICKETS)
        self.assertEqual(bad, [], "undocumented answers")
        self.assertIn((409, "TICKET_LIMIT"), seen)
        self.assertLessEqual(self.sold(u), MAX_TICKETS)
        self.assertLessEqual(self.tickets(u), MAX_TICKETS)
        self.assertInvariants()


class TestReplay(GroupTest):

    def test_a_replay_ends_no_later_turn(self):
        u, sched = 988, 2
        tok1 = self.join(u, concert=CONCERT)
        a = self.hold_ok(tok1, sched, 41)
        key = "grp-replay-%s" % uuid.uuid4().hex
        st, _, p = self.pay(tok1, a["id"], key=key)
        self.assertEqual(st, 201, p)
        self.assertTurnOver(tok1, sched)
        # a later turn of the same concert, with a hold: the replay answers
        # the first payment and the turn goes on
        tok2 = self.join(u, concert=CONCERT)
        b = self.hold_ok(tok2, sched, 42)
        again = self.pay(tok2, a["id"], key=key)
        self.assertEqual((again[0], again[2]), (201, p))
        self.assertTurnGoesOn(tok2, sched)
        # and a turn of another concert, without a hold
        tok4 = self.join(u, concert=OTHER_CONCERT)
        again = self.pay(tok4, a["id"], key=key)
        self.assertEqual((again[0], again[2]), (201, p))
        st, _, s = self.get("/api/concerts/%d/schedules/13/seats" % OTHER_CONCERT,
                            headers=auth(tok4))
        self.assertEqual(st, 200, "the other concert's turn has ended: %r" % (s,))
        self.assertTurnGoesOn(tok2, sched)
        self.assertEqual(self.release(tok2, b["id"])[0], 200)


def raw_request(port, lines, body):
    """Send one HTTP/1.1 request as written (header lines repeated as
    given); returns (status, body bytes)."""
    data = ("\r\n".join(lines + ["Content-Length: %d" % len(body), "Connection: close",
                                 "", ""])).encode() + body
    with socket.create_connection(("127.0.0.1", port), timeout=15) as s:
        s.sendall(data)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    head, _, rest = out.partition(b"\r\n\r\n")
    return int(head.split()[1]), rest


class TestTwoKeys(GroupTest):

    def test_two_idempotency_key_headers_are_400_through_nginx(self):
        u, sched = 989, 2
        tok = self.join(u, concert=CONCERT)
        a = self.hold_ok(tok, sched, 45)
        snap = self.money_snapshot(u)
        body = ('{"reservationId": "%s"}' % a["id"]).encode()
        base = ["POST /api/payments HTTP/1.1", "Host: 127.0.0.1",
                "Authorization: Bearer " + tok, "Content-Type: application/json"]
        for keys in (["Idempotency-Key: k-%s" % uuid.uuid4().hex,
                      "Idempotency-Key: k-%s" % uuid.uuid4().hex],
                     ["Idempotency-Key: k1", "Idempotency-Key: k1"],
                     ["Idempotency-Key: k-a, k-b"],
                     ["Idempotency-Key: k-a,k-b"]):
            with self.subTest(keys=keys):
                st, out = raw_request(self.stack.ports["http"], base + keys, body)
                self.assertEqual(st, 400, out)
                self.assertIn(b"INVALID_FIELD", out)
        self.assertEqual(self.money_snapshot(u), snap)
        self.assertEqual(self.res_status(a["id"]), "HELD")
        # one key is fine
        st, out = raw_request(self.stack.ports["http"],
                              base + ["Idempotency-Key: k-%s" % uuid.uuid4().hex], body)
        self.assertEqual(st, 201, out)

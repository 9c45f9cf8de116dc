"""`boxofficectl catalog import/export` and the sale window.

A catalogue file loads venues with their seat plans, concerts, schedules
and tier prices in one transaction; a file with a syntax or a semantic
error is refused naming its line and changes nothing; importing the same
file again changes nothing; a price of a tier with no seat sold changes in
place, a new schedule is added, while a change that would touch a seat
sold through the API is refused with nothing changed; export then import
is a no-op. The concert list says saleState and holds outside the sale
window are refused 409 NOT_ON_SALE.

Data used here (other modules keep away from it): venues and concerts
whose keys start with it-cat- (removed again at the end, with the holds
and sales made on them) and demo users 945 and 946; demo users 801 to 840
hold seats of this module's own concert only.
"""

import json
import os
import shutil
import tempfile
import time

from boxoffice_dev.redis import QUEUE_PARTS, qkey
from harness import user_uuid
from test_booking import BookingTest, auth

BUYER, LATE = 945, 946
PREFIX = "it-cat-"

CLEANUP = """
BEGIN;
CREATE TEMP TABLE itc_s AS SELECT s.id FROM schedules s JOIN concerts c ON c.id = s.concert_id
  WHERE c.key LIKE 'it-cat-%';
CREATE TEMP TABLE itc_u AS SELECT DISTINCT user_id FROM reservations
  WHERE schedule_id IN (SELECT id FROM itc_s);
CREATE TEMP TABLE itc_p AS SELECT id FROM payments WHERE schedule_id IN (SELECT id FROM itc_s);
DELETE FROM tickets WHERE payment_id IN (SELECT id FROM itc_p);
DELETE FROM ledger WHERE payment_id IN (SELECT id FROM itc_p);
DELETE FROM payments WHERE id IN (SELECT id FROM itc_p);
UPDATE seats SET status = 'AVAILABLE', holder = NULL, hold_expires_at = NULL,
  reservation_id = NULL WHERE schedule_id IN (SELECT id FROM itc_s);
DELETE FROM reservations WHERE schedule_id IN (SELECT id FROM itc_s);
DELETE FROM seats WHERE schedule_id IN (SELECT id FROM itc_s);
DELETE FROM schedules WHERE id IN (SELECT id FROM itc_s);
DELETE FROM concert_prices WHERE concert_id IN (SELECT id FROM concerts
  WHERE key LIKE 'it-cat-%');
DELETE FROM concerts WHERE key LIKE 'it-cat-%';
DELETE FROM venue_seats WHERE venue_id IN (SELECT id FROM venues WHERE key LIKE 'it-cat-%');
DELETE FROM venues WHERE key LIKE 'it-cat-%';
UPDATE users u SET balance = (SELECT COALESCE(sum(amount), 0) FROM ledger l
  WHERE l.user_id = u.id) WHERE id IN (SELECT user_id FROM itc_u);
COMMIT;
"""


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def venue(key="hall"):
    return {"key": PREFIX + key, "name": "Test " + key, "city": "Testville",
            "sections": [
                {"name": "Stalls", "rows": [{"row": "A", "seats": 4, "tier": "gold"},
                                            {"row": "B", "seats": 6, "tier": "silver"}]},
                {"name": "Balcony", "rows": [{"row": "C", "seats": 5, "tier": "balcony"}]}]}


def concert(key, prices=None, schedules=("first", "second"), **extra):
    c = {"key": PREFIX + key, "title": "Catalogue test " + key, "venue": PREFIX + "hall",
         "prices": prices or {"gold": 120000, "silver": 80000, "balcony": 40000},
         "schedules": [{"key": s, "startsAt": "2027-09-%02dT20:00:00Z" % (i + 1)}
                       for i, s in enumerate(schedules)]}
    c.update(extra)
    return c


def line_of(text, needle):
    """1-based line of the first occurrence of needle in text."""
    i = text.index(needle)
    return text.count("\n", 0, i) + 1


class CatalogTest(BookingTest):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tmp = tempfile.mkdtemp(prefix="it-catalog-")

    @classmethod
    def tearDownClass(cls):
        try:
            ids = [r[0] for r in cls.stack.psql("SELECT id FROM concerts"
                                                " WHERE key LIKE 'it-cat-%'")]
            cls.stack.psql(CLEANUP)
            cls.stack.redis("DEL", "c:concerts")
            for cid in ids:
                for part in QUEUE_PARTS:
                    cls.stack.redis("DEL", qkey(cid, part))
                cls.stack.redis("DEL", "c:schedules:%s" % cid)
        finally:
            shutil.rmtree(cls.tmp, ignore_errors=True)
            super().tearDownClass()

    def write(self, doc, name="catalog.json", text=None):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text if text is not None else json.dumps(doc, indent=2))
        return path

    def imp(self, doc=None, text=None, name="catalog.json"):
        path = self.write(doc, name, text)
        rc, out = self.stack.ctl("catalog", "import", path, check=False)
        return rc, out, path

    def imported(self, doc):
        rc, out, path = self.imp(doc)
        self.assertEqual(rc, 0, out)
        changed = int(out.split(" changed")[0].rsplit(" ", 1)[1])
        return changed

    def snapshot(self):
        """Everything the import writes, as text."""
        return self.stack.psql(
            "SELECT (SELECT json_agg(v ORDER BY id) FROM venues v)::text,"
            " (SELECT json_agg(vs ORDER BY venue_id, number) FROM venue_seats vs)::text,"
            " (SELECT json_agg(c ORDER BY id) FROM (SELECT id, key, title, venue, venue_id,"
            "   on_sale, sale_opens_at, sale_closes_at FROM concerts) c)::text,"
            " (SELECT json_agg(p ORDER BY concert_id, tier) FROM concert_prices p)::text,"
            " (SELECT json_agg(s ORDER BY id) FROM schedules s)::text,"
            " (SELECT count(*) || ' ' || sum(price) || ' ' || string_agg(label, '' ORDER BY"
            "   schedule_id, number) FROM seats)")

    def concert_id(self, key):
        return int(self.v("SELECT id FROM concerts WHERE key = '%s%s'" % (PREFIX, key)))

    def schedule_ids(self, key):
        return [int(r[0]) for r in self.q(
            "SELECT s.id FROM schedules s JOIN concerts c ON c.id = s.concert_id"
            " WHERE c.key = '%s%s' ORDER BY s.starts_at" % (PREFIX, key))]


class TestCatalogImport(CatalogTest):

    def test_good_file_imports_and_again_changes_nothing(self):
        doc = {"venues": [venue()], "concerts": [concert("main")]}
        self.assertGreater(self.imported(doc), 0)
        cid = self.concert_id("main")
        sids = self.schedule_ids("main")
        self.assertEqual(len(sids), 2)
        rows = self.q("SELECT number, section, seat_row, label, tier, price, status FROM seats"
                      " WHERE schedule_id = %d ORDER BY number" % sids[0])
        self.assertEqual(len(rows), 15)
        self.assertEqual(rows[0], ["1", "Stalls", "A", "A-1", "gold", "120000", "AVAILABLE"])
        self.assertEqual(rows[4], ["5", "Stalls", "B", "B-1", "silver", "80000", "AVAILABLE"])
        self.assertEqual(rows[14], ["15", "Balcony", "C", "C-5", "balcony", "40000",
                                    "AVAILABLE"])
        self.assertEqual(self.v("SELECT total_seats FROM schedules WHERE id = %d" % sids[1]),
                         "15")
        self.assertEqual(self.v("SELECT venue FROM concerts WHERE id = %d" % cid), "Test hall")
        before = self.snapshot()
        rc, out, _ = self.imp(doc)
        self.assertEqual(rc, 0, out)
        self.assertIn("0 changed", out)
        self.assertEqual(self.snapshot(), before)

        # export, then import of the export: nothing to do
        out_path = os.path.join(self.tmp, "export.json")
        rc, out = self.stack.ctl("catalog", "export", out_path, check=False)
        self.assertEqual(rc, 0, out)
        with open(out_path) as f:
            exported = json.load(f)
        mine = [c for c in exported["concerts"] if c["key"] == PREFIX + "main"]
        self.assertEqual(len(mine), 1, exported)
        self.assertEqual(mine[0]["id"], cid)
        self.assertEqual(mine[0]["prices"], {"balcony": 40000, "gold": 120000, "silver": 80000})
        self.assertEqual([s["key"] for s in mine[0]["schedules"]], ["first", "second"])
        self.assertEqual([v for v in exported["venues"] if v["key"] == PREFIX + "hall"][0]
                         ["sections"], venue()["sections"])
        # every demo concert is in it too
        self.assertTrue({"concert-1", "concert-5"} <= {c["key"] for c in exported["concerts"]})
        rc, out = self.stack.ctl("catalog", "import", out_path, check=False)
        self.assertEqual(rc, 0, out)
        self.assertIn("0 changed", out)
        self.assertEqual(self.snapshot(), before)

    def test_syntax_error_names_its_line_and_changes_nothing(self):
        text = json.dumps({"venues": [venue()], "concerts": [concert("syntax")]}, indent=2)
        # drop the comma after the title
        needle = '"title": "Catalogue test syntax",'
        bad = text.replace(needle, needle[:-1])
        before = self.snapshot()
        rc, out, path = self.imp(text=bad, name="syntax.json")
        self.assertNotEqual(rc, 0, out)
        self.assertIn("%s:%d: not JSON" % (path, line_of(bad, '"venue": "it-cat-hall"')), out)
        self.assertEqual(self.snapshot(), before)
        rc, out, path = self.imp(text=text[:-40], name="cut.json")
        self.assertNotEqual(rc, 0, out)
        self.assertIn("%s:%d: not JSON" % (path, text[:-40].count("\n") + 1), out)

    def test_semantic_errors_name_their_line_and_change_nothing(self):
        before = self.snapshot()
        cases = [
            (["concerts", 1, "schedules", 1, "startsAt"], "next friday",
             "concerts[1].schedules[1].startsAt: not an ISO-8601 time", '"next friday"'),
            (["concerts", 0, "prices"], {"gold": 1, "silver": 2},
             'concerts[0].prices: no price for tier "balcony"', '"prices"'),
            (["venues", 0, "sections", 1, "rows", 0, "seats"], 0,
             "venues[0].sections[1].rows[0].seats: out of range", '"seats": 0'),
            (["concerts", 1, "venue"], "it-cat-nowhere",
             "concerts[1].venue: no venue of this catalogue", '"it-cat-nowhere"'),
            (["concerts", 1, "saleClosesAt"], "2027-01-01T00:00:00Z",
             "concerts[1].saleClosesAt: the sale closes before it opens", '"2027-01-01T'),
            (["concerts", 0, "colour"], "red",
             "concerts[0].colour: unknown member", '"colour"'),
        ]
        for where, value, message, needle in cases:
            doc = {"venues": [venue()],
                   "concerts": [concert("sem-a"),
                                concert("sem-b", saleOpensAt="2027-02-01T10:00:00+01:00")]}
            node = doc
            for k in where[:-1]:
                node = node[k]
            node[where[-1]] = value
            text = json.dumps(doc, indent=2)
            rc, out, path = self.imp(text=text, name="semantic.json")
            self.assertNotEqual(rc, 0, out)
            self.assertIn("%s:%d: %s" % (path, line_of(text, needle), message), out)
        self.assertEqual(self.snapshot(), before)

    def test_unsold_tier_price_changes_and_new_schedule_is_added_in_place(self):
        doc = {"venues": [venue()], "concerts": [concert("edit")]}
        self.imported(doc)
        sids = self.schedule_ids("edit")
        doc["concerts"][0]["prices"]["balcony"] = 45000
        doc["concerts"][0]["schedules"].append({"key": "third",
                                                "startsAt": "2027-09-03T20:00:00Z"})
        changed = self.imported(doc)
        # 2 x 5 balcony seats, the price, the schedule and its 15 seats
        self.assertEqual(changed, 10 + 1 + 1 + 15)
        self.assertEqual(self.schedule_ids("edit")[:2], sids)
        self.assertEqual(self.q("SELECT DISTINCT price FROM seats s JOIN schedules sc"
                                " ON sc.id = s.schedule_id JOIN concerts c"
                                " ON c.id = sc.concert_id WHERE c.key = 'it-cat-edit'"
                                " AND s.tier = 'balcony'"), [["45000"]])
        self.assertEqual(len(self.schedule_ids("edit")), 3)
        # a schedule no longer listed, with nothing sold, goes
        del doc["concerts"][0]["schedules"][2]
        self.assertEqual(self.imported(doc), 15 + 1)
        self.assertEqual(self.schedule_ids("edit"), sids)


class TestCatalogSold(CatalogTest):
    """A seat sold through the API stands in the way of a change that touches it."""

    def test_change_touching_a_sold_seat_is_refused(self):
        doc = {"venues": [venue()], "concerts": [concert("sold")]}
        self.imported(doc)
        cid = self.concert_id("sold")
        sids = self.schedule_ids("sold")
        tok = self.join(BUYER, concert=cid)
        st, _, h = self.hold(tok, sids[0], 2)        # A-2, gold
        self.assertEqual(st, 201, h)
        self.assertEqual(h["price"], 120000)
        st, _, m = self.get("/api/concerts/%d/schedules/%d/seats" % (cid, sids[0]),
                            headers=auth(tok))
        self.assertEqual(st, 200, m)
        seat = [s for s in m["seats"] if s["number"] == 2][0]
        self.assertEqual(seat, {"number": 2, "price": 120000, "status": "HELD",
                                "section": "Stalls", "row": "A", "label": "A-2",
                                "tier": "gold"})
        st, _, p = self.pay(tok, h["id"])
        self.assertEqual(st, 201, p)
        before = self.snapshot()

        def refused(d, message, needle, delta=0):
            text = json.dumps(d, indent=2)
            rc, out, path = self.imp(text=text, name="sold.json")
            self.assertNotEqual(rc, 0, out)
            self.assertIn("%s:%d: %s" % (path, line_of(text, needle) + delta, message), out)
            self.assertIn("nothing changed", out)
            self.assertEqual(self.snapshot(), before)

        # the gold price, with an unsold tier's price changed in the same file
        d = json.loads(json.dumps(doc))
        d["concerts"][0]["prices"].update(gold=125000, silver=81000)
        refused(d, "concerts[0].prices.gold: seats of tier \"gold\"", '"gold": 125000')
        # the schedule the sold seat is in
        d = json.loads(json.dumps(doc))
        del d["concerts"][0]["schedules"][0]
        refused(d, "concerts[0].schedules: schedule \"first\"", '"schedules"')
        # a plan that moves the sold seat to another tier
        d = json.loads(json.dumps(doc))
        d["venues"][0]["sections"][0]["rows"][0]["tier"] = "silver"
        # (the row's line is that of its opening brace, just above)
        refused(d, "venues[0].sections[0].rows[0]: seat A-2", '"row": "A"', -1)
        # a plan without the sold seat (a shorter hall)
        d = json.loads(json.dumps(doc))
        d["venues"][0]["sections"] = [{"name": "Stalls",
                                       "rows": [{"row": "A", "seats": 1, "tier": "gold"}]}]
        refused(d, "concerts[0].venue: the plan no longer has seat 2", '"venue": "it-cat-hall"')
        # what does not touch it still goes through: the other schedule's
        # start, the silver price
        doc["concerts"][0]["prices"]["silver"] = 81000
        doc["concerts"][0]["schedules"][1]["startsAt"] = "2027-09-02T21:00:00Z"
        self.assertEqual(self.imported(doc), 2 * 6 + 1 + 1)
        self.assertEqual(self.v("SELECT status FROM seats WHERE schedule_id = %d AND number = 2"
                                % sids[0]), "SOLD")


class TestSaleWindow(CatalogTest):

    def sale_state(self, cid):
        st, _, b = self.get("/api/concerts")
        self.assertEqual(st, 200, b)
        return [c.get("saleState") for c in b["concerts"] if c["id"] == cid]

    def test_sale_state_and_not_on_sale(self):
        now = time.time()
        doc = {"venues": [venue()], "concerts": [concert("window")]}
        self.imported(doc)
        cid = self.concert_id("window")
        sid = self.schedule_ids("window")[0]
        self.wait_for(lambda: self.sale_state(cid) == ["ON_SALE"], msg="ON_SALE")
        tok = self.join(LATE, concert=cid)

        # not open yet: UPCOMING, and the hold function refuses
        doc["concerts"][0].update(saleOpensAt=iso(now + 3600), saleClosesAt=iso(now + 7200))
        self.imported(doc)
        self.wait_for(lambda: self.sale_state(cid) == ["UPCOMING"], msg="UPCOMING")
        self.assertEqual(self.q("SELECT code FROM boxoffice_hold(%d, %d, 3, '%s', 60, 4, 4)"
                                % (cid, sid, user_uuid(LATE))), [["NOT_ON_SALE"]])
        self.assertJsonError(self.hold(tok, sid, 3), 409, "NOT_ON_SALE")

        # closed: CLOSED, and holds through the API are refused
        doc["concerts"][0].update(saleOpensAt=iso(now - 7200), saleClosesAt=iso(now - 60))
        self.imported(doc)
        self.wait_for(lambda: self.sale_state(cid) == ["CLOSED"], msg="CLOSED")
        self.assertJsonError(self.hold(tok, sid, 3), 409, "NOT_ON_SALE")
        self.assertEqual(self.v("SELECT status FROM seats WHERE schedule_id = %d AND number = 3"
                                % sid), "AVAILABLE")

        # open again: the hold goes through
        doc["concerts"][0].update(saleClosesAt=iso(now + 3600))
        self.imported(doc)
        self.wait_for(lambda: self.sale_state(cid) == ["ON_SALE"], msg="ON_SALE again")
        st, _, h = self.hold(tok, sid, 3)
        self.assertEqual(st, 201, h)
        self.release(tok, h["id"])


class TestCatalogRace(CatalogTest):
    """Imports that change a tier's price while many clients hold seats of
    it: a hold is never left at another price than its seat's, and a tier
    never has two prices."""

    def test_price_changes_racing_holds(self):
        plan = {"key": PREFIX + "race-hall", "name": "Race hall", "sections": [
            {"name": "Floor", "rows": [{"row": "A", "seats": 40, "tier": "gold"},
                                       {"row": "B", "seats": 5, "tier": "silver"}]}]}
        doc = {"venues": [plan],
               "concerts": [concert("race", schedules=("only",), venue=PREFIX + "race-hall",
                                    prices={"gold": 100000, "silver": 50000})]}
        self.imported(doc)
        cid = self.concert_id("race")
        sid = self.schedule_ids("race")[0]

        def hold(i):
            # demo users 801..840, one seat each: limits are per schedule
            # and concert, and this concert is only this test's. Spread
            # over the time the imports take.
            time.sleep(0.05 * i)
            return self.stack.psql("SELECT code FROM boxoffice_hold(%d, %d, %d, '%s', 600, 4, 4)"
                                   % (cid, sid, i + 1, user_uuid(801 + i)))[0][0]

        def imports():
            out = []
            for k in range(8):
                doc["concerts"][0]["prices"]["gold"] = 100000 + (k + 1) % 2
                rc, text, _ = self.imp(doc, name="race-%d.json" % k)
                out.append(rc)
            return out

        results = self.concurrently(lambda i: imports() if i == 40 else hold(i), 41, threads=41)
        self.assertEqual(results[:40], ["OK"] * 40, results)
        self.assertNotIsInstance(results[40], Exception, results[40])
        mismatched = self.v(
            "SELECT count(*) FROM reservations r JOIN seats s ON s.schedule_id = r.schedule_id"
            " AND s.number = r.seat_number WHERE r.schedule_id = %d"
            " AND r.status IN ('HELD', 'PAID') AND r.price <> s.price" % sid)
        self.assertEqual(mismatched, "0")
        self.assertEqual(self.v("SELECT count(DISTINCT price) FROM seats"
                                " WHERE schedule_id = %d AND tier = 'gold'" % sid), "1")
        self.assertEqual(self.v("SELECT count(*) FROM seats WHERE schedule_id = %d"
                                " AND status = 'HELD'" % sid), "40")
        # with every gold seat held, any gold price change is refused
        doc["concerts"][0]["prices"]["gold"] = 99999
        rc, out, _ = self.imp(doc, name="race-after.json")
        self.assertNotEqual(rc, 0, out)
        self.assertIn('concerts[0].prices.gold: seats of tier "gold"', out)

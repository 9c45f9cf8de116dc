// sale.js: a whole sale, from the queue opening to the last seat sold.
//
// QUEUED users (10,000) join the queue of one concert (CONCERT) within
// the first JOIN_SECONDS (10 s); the server admits them at its own pace
// (queue.admit_per_second, queue.max_active); each admitted user reads the
// schedules and a seat map, holds a seat near the front (another one after
// 409 SEAT_TAKEN: buyers who read the same map collide), and pays it.
// A few change their mind (RELEASE_SHARE: release the hold and take
// another seat) or walk away (WALKAWAY_SHARE: the hold expires after
// booking.hold_ttl, the seat goes back on sale).
//
// The users are data, not VUs (10,000 VUs would not fit beside the
// server on a small machine), in two scenarios:
//   waiters  WAITER_VUS (100) VUs, each owning every WAITER_VUS-th user:
//            they join them, spread over JOIN_SECONDS, then poll each
//            still waiting user every POLL_EVERY (20) seconds, as a
//            waiting page did (a place needs no polling now, but a
//            status poll claims an admitted turn, which the server drops
//            when unclaimed for queue.claim_window, 60 s);
//   buyers   BUYERS (250) VUs that take the users in queue order (buyer b:
//            users b, b + BUYERS, ...): ask for the user's place again (the
//            same place, a fresh token), poll it every second until
//            ACTIVE, then shop. With BUYERS above queue.max_active, every
//            admitted user has a buyer soon after admission.
// Both stop when the concert is sold out: every seat SOLD in the seat map
// (buyers), or no seat available for longer than a hold can last
// (HOLD_TTL + 10 s, waiters), or after MAX_SECONDS.
//
// Every join and every buyer's outcome is logged as one line
// "SALE {json}" (console.log); loadtest/k6run collects them, works out the
// time to sell out, the admissions a second and the waits, and checks the
// invariants in the database afterwards. Admission times come from the
// server: an ACTIVE answer's activeUntil minus ACTIVE_TTL, which is when
// the turn was claimed (within queue.claim_window of its admission; the
// buyers poll every second, so about a second after it).
//
// Each user joins with an operator's user token of theirs, made by the VU
// (lib/common.js: TOKEN_KEY_FILE).
//
// Environment (besides lib/common.js: BASE_URL, USERS, USER_OFFSET,
// SCHEDULES, SEATS, TOKEN_KEY_FILE): CONCERT (1), QUEUED (10000; users USER_OFFSET+1 ..
// USER_OFFSET+QUEUED), JOIN_SECONDS (10), WAITER_VUS (100), POLL_EVERY
// (20), BUYERS (250), THINK (1: seconds of thought before holding, and
// half that before paying, each times a random 0.5..1.5), RELEASE_SHARE
// (0.03), WALKAWAY_SHARE (0.01), HOLD_TTL (300, the server's
// booking.hold_ttl), ACTIVE_TTL (600, queue.active_ttl), MAX_SECONDS (900).
//
//   k6 run -e TOKEN_KEY_FILE=$PWD/var/conf/token.key -e USERS=12000 -e SCHEDULES=4 -e SEATS=600 loadtest/k6/sale.js
import http from 'k6/http';
import { check, sleep } from 'k6';
import exec from 'k6/execution';
import { Counter, Trend } from 'k6/metrics';
import { cfg, url, authParams, jsonBody, errorCode, retryAfter, idemKey, joinRequest, JSON_HEADERS } from './lib/common.js';

function envNum(name, dflt) {
  const n = parseFloat(__ENV[name] || '');
  return isNaN(n) || n < 0 ? dflt : n;
}

const CONCERT = Math.max(1, envNum('CONCERT', 1));
const QUEUED = Math.max(1, Math.floor(envNum('QUEUED', 10000)));
const JOIN_SECONDS = envNum('JOIN_SECONDS', 10);
const WAITER_VUS = Math.max(1, Math.min(QUEUED, Math.floor(envNum('WAITER_VUS', 100))));
const POLL_EVERY = Math.max(1, envNum('POLL_EVERY', 20));
const BUYERS = Math.max(1, Math.min(QUEUED, Math.floor(envNum('BUYERS', 250))));
const THINK = envNum('THINK', 1);
const RELEASE_SHARE = envNum('RELEASE_SHARE', 0.03);
const WALKAWAY_SHARE = envNum('WALKAWAY_SHARE', 0.01);
const HOLD_TTL = envNum('HOLD_TTL', 300);
const ACTIVE_TTL = envNum('ACTIVE_TTL', 600);
const MAX_SECONDS = Math.max(10, envNum('MAX_SECONDS', 900));

export const options = {
  scenarios: {
    waiters: {
      executor: 'per-vu-iterations',
      exec: 'waiter',
      vus: WAITER_VUS,
      iterations: 1,
      maxDuration: `${MAX_SECONDS}s`,
      gracefulStop: '5s',
    },
    buyers: {
      executor: 'per-vu-iterations',
      exec: 'buyer',
      vus: BUYERS,
      iterations: 1,
      startTime: '1s',
      maxDuration: `${MAX_SECONDS}s`,
      gracefulStop: '30s',
    },
  },
  thresholds: {
    http_req_failed: ['rate<0.01'],
    sale_paid: ['count>0'],
    // places dropped before their buyer came, or while it polled
    sale_lost_place: ['count==0'],
  },
  setupTimeout: '120s',
};
if (cfg.smoke) options.thresholds.checks = ['rate==1'];

// 402, 409 (SEAT_TAKEN, HOLD_EXPIRED) are answers a buyer expects.
http.setResponseCallback(http.expectedStatuses({ min: 200, max: 299 }, 402, 409));

const paid = new Counter('sale_paid');
const collisions = new Counter('sale_collisions');
const released = new Counter('sale_released');
const walkedAway = new Counter('sale_walked_away');
const soldOutSeen = new Counter('sale_sold_out');
const lostPlace = new Counter('sale_lost_place');
const refused = new Counter('sale_refused');            // tagged with the error code
const admittedToPaid = new Trend('sale_admitted_to_paid', true);

function record(kind, fields) {
  console.log('SALE ' + JSON.stringify(Object.assign({ kind }, fields)));
}

function refusedAnswer(name, r) {
  const code = errorCode(r) || `HTTP_${r.status}`;
  refused.add(1, { name, code });
  return code;
}

// The user of queue slot k (0-based): users USER_OFFSET+1 .. +QUEUED.
function userOf(k) {
  return cfg.userOffset + k + 1;
}

// Seconds since the test started, and when it started (ms).
function elapsed() {
  return exec.instance.currentTestRunDuration / 1000;
}

function testStart() {
  return Date.now() - exec.instance.currentTestRunDuration;
}

function join(user, name) {
  for (let i = 0; i < 10; i++) {
    const j = joinRequest(user, CONCERT, name);
    const r = http.post(url('/api/queues/token'), j.body, j.params);
    const b = jsonBody(r);
    if (r.status === 201 && b && b.token) return b;
    refusedAnswer(name, r);
    if (r.status !== 503 && r.status !== 429 && r.status !== 0) return null;
    sleep(retryAfter(r));
  }
  return null;
}

function poll(token, name) {
  const r = http.get(url('/api/queues/status'), authParams(token, name));
  const b = jsonBody(r);
  if (r.status === 200 && b) return { body: b, wait: 0 };
  refusedAnswer(name, r);
  return { body: null, wait: retryAfter(r) };
}

// Seats available in the concert's schedules (the public, cached count),
// or -1 if it cannot be read.
function availableSeats() {
  const r = http.get(url(`/api/concerts/${CONCERT}/schedules`), { tags: { name: 'schedules' } });
  const b = jsonBody(r);
  if (r.status !== 200 || !b || !Array.isArray(b.schedules)) return { total: -1, list: [] };
  let total = 0;
  b.schedules.forEach((s) => { total += s.availableSeats; });
  return { total, list: b.schedules };
}

// Sold out for good: no seat available for longer than any hold can last.
function soldOutWatch(state) {
  const a = availableSeats();
  if (a.total !== 0) {
    state.noneSince = 0;
    return false;
  }
  if (!state.noneSince) state.noneSince = Date.now();
  return Date.now() - state.noneSince > (HOLD_TTL + 10) * 1000;
}

// ------------------------------------------------------------ waiters

export function waiter() {
  const w = exec.scenario.iterationInTest;          // 0 .. WAITER_VUS-1
  const mine = [];
  for (let k = w; k < QUEUED; k += WAITER_VUS) mine.push(k);
  const t0 = testStart();
  const waiting = [];
  // slot k joins at JOIN_SECONDS * k / QUEUED: the crowd arrives in
  // order; the users due at the same moment join at once (http.batch)
  const due = (k) => t0 + (JOIN_SECONDS * 1000 * k) / QUEUED;
  let i = 0;
  while (i < mine.length) {
    const wait = due(mine[i]) - Date.now();
    if (wait > 0) sleep(wait / 1000);
    const chunk = [];
    while (i < mine.length && chunk.length < 20 && due(mine[i]) <= Date.now()) chunk.push(mine[i++]);
    const res = http.batch(chunk.map((k) => {
      const j = joinRequest(userOf(k), CONCERT, 'join');
      return { method: 'POST', url: url('/api/queues/token'), body: j.body, params: j.params };
    }));
    res.forEach((r, j) => {
      const k = chunk[j];
      const user = userOf(k);
      let b = jsonBody(r);
      if (r.status !== 201 || !b || !b.token) {
        refusedAnswer('join', r);
        b = join(user, 'join');                 // once more, as told
      }
      if (!b) {
        record('join', { k, user, ok: false, t: Date.now() });
        return;
      }
      record('join', { k, user, ok: true, number: b.queueNumber, status: b.status,
        rejoined: b.rejoined === true, t: Date.now() });
      if (b.status === 'WAITING') waiting.push({ k, user, token: b.token, number: b.queueNumber });
    });
  }
  const state = {};
  let left = waiting;
  // spread the waiters' rounds over POLL_EVERY, as the crowd's pages do
  sleep((POLL_EVERY * w) / WAITER_VUS);
  while (left.length > 0 && elapsed() < MAX_SECONDS) {
    const roundStart = Date.now();
    if (soldOutWatch(state)) break;
    const still = [];
    // the users' pages poll at the same time, not one after the other: a
    // round of one by one polls could outlast queue.claim_window
    for (let i = 0; i < left.length; i += 10) {
      const chunk = left.slice(i, i + 10);
      const res = http.batch(chunk.map((e) => ({
        method: 'GET', url: url('/api/queues/status'), params: authParams(e.token, 'status'),
      })));
      res.forEach((r, j) => {
        const e = chunk[j];
        const b = jsonBody(r);
        if (r.status !== 200 || !b) {
          refusedAnswer('status', r);
          still.push(e);
        } else if (b.status === 'WAITING') {
          e.token = b.token;
          still.push(e);
        }
        // ACTIVE: the user's buyer takes over; EXPIRED: the turn is over
        // (the buyer paid) or the place was lost, which the buyer's asking
        // again tells (rejoined false: a new place)
      });
    }
    left = still;
    const rest = POLL_EVERY - (Date.now() - roundStart) / 1000;
    if (rest > 0 && left.length > 0) sleep(rest);
  }
}

// ------------------------------------------------------------- buyers

// The seat map of a schedule: {free: [numbers], held, sold} or null.
function seatMap(token, sched) {
  let r;
  for (let i = 0; i < 4; i++) {
    r = http.get(url(`/api/concerts/${CONCERT}/schedules/${sched}/seats`),
      authParams(token, 'seats'));
    if (r.status !== 503 && r.status !== 0) break;
    refusedAnswer('seats', r);
    sleep(retryAfter(r));                 // overloaded: as told, then again
  }
  const b = jsonBody(r);
  check(r, { 'seat map 200': (x) => x.status === 200 });
  if (r.status !== 200 || !b || !Array.isArray(b.seats)) {
    if (r.status !== 503 && r.status !== 0) refusedAnswer('seats', r);
    return null;
  }
  const m = { free: [], held: 0, sold: 0 };
  b.seats.forEach((s) => {
    if (s.status === 'AVAILABLE') m.free.push(s.number);
    else if (s.status === 'HELD') m.held++;
    else if (s.status === 'SOLD') m.sold++;
  });
  return m;
}

// Hold one seat of sched, trying the front ones of `free` first, as
// people choose; another after 409 SEAT_TAKEN. The reservation or null;
// out.collisions counts the 409s.
function holdOne(token, sched, free, out) {
  for (let i = 0; i < 6 && free.length > 0; i++) {
    const k = Math.floor(Math.random() * Math.min(free.length, 20));
    const seat = free[k];
    free.splice(k, 1);
    const r = http.post(url('/api/reservations'), JSON.stringify({ scheduleId: sched, seatNumber: seat }),
      authParams(token, 'hold', JSON_HEADERS));
    if (r.status === 201) return jsonBody(r);
    const code = refusedAnswer('hold', r);
    if (code === 'SEAT_TAKEN') {
      collisions.add(1);
      out.collisions++;
      continue;
    }
    if (r.status === 503 || r.status === 0) {
      sleep(retryAfter(r));
      continue;
    }
    return null;
  }
  return null;
}

function pay(token, reservation) {
  const params = authParams(token, 'payment', Object.assign({ 'Idempotency-Key': idemKey('sale') }, JSON_HEADERS));
  const body = JSON.stringify({ reservationId: reservation.id });
  let r = http.post(url('/api/payments'), body, params);
  if (r.status === 0 || r.status >= 500) {
    refusedAnswer('payment', r);
    sleep(retryAfter(r));
    r = http.post(url('/api/payments'), body, params);   // same key: at most once
  }
  if (r.status !== 201) refusedAnswer('payment', r);
  return r;
}

function think(scale) {
  if (THINK > 0) sleep(THINK * scale * (0.5 + Math.random()));
}

// One user's turn, from the ACTIVE token on. Returns the outcome.
function shop(token, out) {
  const deadline = Date.now() + (HOLD_TTL + 10) * 1000;
  think(1);
  for (;;) {
    const a = availableSeats();
    const open = a.list.filter((s) => s.availableSeats > 0);
    // the schedules' counts are cached for a second or two: read the maps
    // of every schedule when none looks open, to tell sold from held
    const order = open.length > 0 ? open.concat(a.list.filter((s) => s.availableSeats === 0))
      : a.list.slice();
    let held = 0;
    let sold = 0;
    for (const s of order) {
      const m = seatMap(token, s.id);
      if (m === null) return 'error';
      held += m.held;
      sold += m.sold;
      if (m.free.length === 0) continue;
      const hold = holdOne(token, s.id, m.free, out);
      if (hold === null) continue;
      let h = hold;
      if (Math.random() < RELEASE_SHARE) {
        // changed their mind: give it back and take another
        const rel = http.del(url(`/api/reservations/${h.id}`), null, authParams(token, 'release'));
        check(rel, { 'released (200)': (x) => x.status === 200 });
        released.add(1);
        out.released = true;
        h = holdOne(token, s.id, m.free, out);
        if (h === null) continue;
      }
      out.schedule = h.scheduleId;
      out.seat = h.seatNumber;
      if (Math.random() < WALKAWAY_SHARE) {
        walkedAway.add(1);
        return 'walked_away';
      }
      think(0.5);
      const r = pay(token, h);
      const b = jsonBody(r);
      check(r, {
        'paid (201)': (x) => x.status === 201,
        'paid the price': () => r.status !== 201 || (b !== null && b.amount === h.price),
      });
      if (r.status === 201) return 'paid';
      return 'payment_' + (errorCode(r) || r.status);
    }
    if (a.list.length > 0 && held === 0 && sold > 0) return 'sold_out';
    if (Date.now() > deadline) return 'sold_out';
    sleep(5);     // every free seat is held: wait for a release or an expiry
  }
}

export function buyer() {
  const b0 = exec.scenario.iterationInTest;         // 0 .. BUYERS-1
  const t0 = testStart();
  const state = {};
  let over = false;
  for (let k = b0; k < QUEUED && !over && elapsed() < MAX_SECONDS; k += BUYERS) {
    // after the waiter has joined this user
    const due = t0 + (JOIN_SECONDS * 1000 * k) / QUEUED + 1000;
    if (Date.now() < due) sleep((due - Date.now()) / 1000);
    const user = userOf(k);
    let b = join(user, 'rejoin');
    if (!b) continue;
    const number = b.queueNumber;
    const rejoined = b.rejoined === true;
    let token = b.token;
    if (!rejoined && b.status === 'WAITING' && number > QUEUED) {
      // a new place behind the whole crowd: the old one was dropped (a
      // first join by the buyer, ahead of a late waiter, gets a number
      // among the crowd's and is waited for as usual). Waiting there
      // would keep this buyer from the next users of its slice, who are
      // admitted meanwhile and would hold their ACTIVE slots unused.
      lostPlace.add(1);
      record('buyer', { k, user, number, rejoined, outcome: 'place_lost', t: Date.now() });
      continue;
    }
    let polls = 0;
    while (b && b.status === 'WAITING' && elapsed() < MAX_SECONDS) {
      sleep(1);
      if (++polls % 10 === 0 && soldOutWatch(state)) {
        over = true;
        break;
      }
      const p = poll(token, 'status');
      if (p.body === null) {
        if (p.wait > 1) sleep(p.wait - 1);
        continue;
      }
      b = p.body;
      if (b.token) token = b.token;
    }
    if (over) {
      soldOutSeen.add(1);
      record('buyer', { k, user, number, rejoined, outcome: 'sold_out_waiting', t: Date.now() });
      break;
    }
    if (!b || b.status !== 'ACTIVE') {
      if (b && b.status === 'EXPIRED') lostPlace.add(1);
      record('buyer', { k, user, number, rejoined, outcome: b ? 'place_' + b.status : 'no_answer',
        t: Date.now() });
      continue;
    }
    const seen = Date.now();
    const admittedAt = Date.parse(b.activeUntil) - ACTIVE_TTL * 1000;
    const out = { collisions: 0, released: false, schedule: null, seat: null };
    const outcome = shop(token, out);
    const t = Date.now();
    if (outcome === 'paid') {
      paid.add(1);
      admittedToPaid.add(t - admittedAt);
    } else if (outcome === 'sold_out') {
      soldOutSeen.add(1);
      over = true;
    }
    record('buyer', { k, user, number, rejoined, outcome, admittedAt, seen, t, collisions: out.collisions,
      released: out.released, schedule: out.schedule, seat: out.seat });
  }
}

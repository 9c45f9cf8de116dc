// journey.js: the ticket-open spike, end to end.
//
// New users arrive at a ramping rate (ramping-arrival-rate). Each one:
//   1. joins the queue of a concert (POST /api/queues/token),
//   2. polls GET /api/queues/status every second until ACTIVE (waiting
//      Retry-After seconds after a 503), giving up after MAX_WAIT,
//   3. lists the schedules (GET /api/concerts/{c}/schedules) and picks one
//      with seats left,
//   4. reads its seat map with the ACTIVE token,
//   5. holds a random AVAILABLE seat (another one after 409 SEAT_TAKEN, up
//      to 3 tries each); a share of buyers (GROUP_SHARE) buys for a group
//      of 2 to GROUP_MAX seats and holds that many in the same schedule,
//   6. pays every seat it holds in one payment (POST /api/payments with an
//      Idempotency-Key, reservationIds for a group; a lost answer is
//      retried once with the same key).
// 402 and 409 are expected outcomes. Counters: journeys_started,
// admitted, gave_up_waiting, holds_ok, payments_ok, seats_paid,
// group_payments, sold_out, ...
//
// The sale must add up: setup() and teardown() count the SOLD seats of
// every schedule from the seat maps (with an ACTIVE token of a checker
// user, the last demo user, in each concert); the seats sold during the
// run must equal the seats paid. teardown() compares them with the
// server's own payment counter (one per seat) (GET /metrics, loopback only) and records
// the verdict in the `sale_consistent` rate (threshold: rate==1);
// handleSummary() also compares them with this run's seats_paid counter.
// Run it alone against the stack: other buyers at the same time make the
// numbers differ.
//
// Environment (besides lib/common.js): RATE (100 new users/s at the peak),
// START_RATE (10), RAMP (60s), DURATION (60s at the peak), VUS (1000, the
// most VUs k6 may use: users waiting in the queue hold one each),
// PREALLOCATED_VUS (200), MAX_WAIT (300 s in the queue), CONCERT (send
// everyone to this concert instead of spreading them), GROUP_SHARE (0.3:
// the share of buyers buying for a group), GROUP_MAX (4: the largest
// group; keep it within booking.max_holds_per_user and
// booking.max_tickets_per_user), SUMMARY_JSON (also write the summary
// data to this file).
//
//   k6 run -e TOKEN_KEY_FILE=$PWD/var/conf/token.key loadtest/k6/journey.js
//   k6 run -e TOKEN_KEY_FILE=$PWD/var/conf/token.key -e USERS=100000 -e CONCERTS=10 -e SEATS=2000 -e RATE=300 loadtest/k6/journey.js
import http from 'k6/http';
import { check, sleep } from 'k6';
import exec from 'k6/execution';
import { Counter, Gauge, Rate, Trend } from 'k6/metrics';
import { cfg, userCount, concertOf, scheduleId, url, authParams, jsonBody, errorCode, retryAfter, idemKey, joinMany, activateAll, joinUntilActive, credentials, JSON_HEADERS } from './lib/common.js';

function envInt(name, dflt) {
  const n = parseInt(__ENV[name] || '', 10);
  return isNaN(n) || n < 0 ? dflt : n;
}

const RATE = envInt('RATE', 100);
const START_RATE = envInt('START_RATE', 10);
const MAX_WAIT = envInt('MAX_WAIT', 300);
const PREALLOCATED = envInt('PREALLOCATED_VUS', Math.min(cfg.vus, 200));
const CONCERT = envInt('CONCERT', 0);
const PEAK = __ENV.DURATION || '60s';
const CHECK_USER = cfg.users;          // the last demo user counts the seats
const GROUP_SHARE = Math.min(Math.max(parseFloat(__ENV.GROUP_SHARE || '0.3') || 0, 0), 1);
const GROUP_MAX = Math.max(envInt('GROUP_MAX', 4), 1);

export const options = {
  scenarios: {
    ticket_open: {
      executor: 'ramping-arrival-rate',
      startRate: START_RATE,
      timeUnit: '1s',
      preAllocatedVUs: PREALLOCATED,
      maxVUs: Math.max(cfg.vus, PREALLOCATED),
      stages: [
        { duration: cfg.ramp, target: RATE },
        { duration: PEAK, target: RATE },
        { duration: '10s', target: 0 },
      ],
      gracefulStop: `${MAX_WAIT + 60}s`,
    },
  },
  thresholds: {
    http_req_duration: ['p(99)<1000'],
    http_req_failed: ['rate<0.01'],
    'http_req_duration{name:payment}': ['p(99)<1000'],
    'http_req_duration{name:group_payment}': ['p(99)<1000'],
    'http_req_duration{name:hold}': ['p(99)<1000'],
    sale_consistent: ['rate==1'],
  },
  setupTimeout: `${cfg.setupWait + 300}s`,
  teardownTimeout: `${cfg.setupWait + 300}s`,
  batch: cfg.batch,
  batchPerHost: cfg.batch,
};
if (cfg.smoke) options.thresholds.checks = ['rate==1'];

// 402 INSUFFICIENT_BALANCE and 409 (SEAT_TAKEN, HOLD_LIMIT, ...) are
// answers a buyer expects; 5xx, 401/403 and timeouts are failures.
http.setResponseCallback(http.expectedStatuses({ min: 200, max: 299 }, 402, 409));

const started = new Counter('journeys_started');
const admitted = new Counter('admitted');
const gaveUp = new Counter('gave_up_waiting');
const holdsOk = new Counter('holds_ok');
const seatTaken = new Counter('holds_seat_taken');
const soldOut = new Counter('sold_out');
const paymentsOk = new Counter('payments_ok');
const seatsPaid = new Counter('seats_paid');
const groupPayments = new Counter('group_payments');
const partialGroups = new Counter('groups_short_of_seats');
const insufficient = new Counter('payments_insufficient_balance');
const paymentFailed = new Counter('payments_failed');
const queueWait = new Trend('queue_wait', true);
const journeyTime = new Trend('journey_time', true);
const soldDelta = new Gauge('seats_sold_delta');
const serverPayments = new Gauge('server_payments_delta');
const consistent = new Rate('sale_consistent');

// ----------------------------------------------------- counting the sale

function concertsInPlay() {
  if (CONCERT) return [CONCERT];
  const out = [];
  for (let c = 1; c <= cfg.concerts; c++) out.push(c);
  return out;
}

// ACTIVE tokens of the checker user, one per concert; the checker signs in
// with the demo password (lib/common.js credentials(), SIGN_IN > 0).
function checkerTokens(prev) {
  const cred = credentials([CHECK_USER])[CHECK_USER];
  const entries = concertsInPlay().map((c) => ({ user: CHECK_USER, concert: c, token: null,
    cred }));
  joinMany(entries);
  activateAll(entries, cfg.setupWait);
  const tokens = {};
  entries.forEach((e) => {
    if (e.status === 'ACTIVE') tokens[e.concert] = e.token;
    else if (prev && prev[e.concert]) tokens[e.concert] = prev[e.concert];
  });
  return tokens;
}

// SOLD seats over every schedule of the concerts in play, or -1.
function countSold(tokens) {
  let sold = 0;
  for (const c of concertsInPlay()) {
    if (!tokens[c]) return -1;
    for (let s = 1; s <= cfg.schedules; s++) {
      const r = http.get(url(`/api/concerts/${c}/schedules/${scheduleId(c, s)}/seats`),
        authParams(tokens[c], 'count_seats'));
      const b = jsonBody(r);
      if (r.status !== 200 || !b || !Array.isArray(b.seats)) {
        console.warn(`seat map ${c}/${scheduleId(c, s)}: ${r.status} ${errorCode(r)}`);
        return -1;
      }
      sold += b.seats.filter((x) => x.status === 'SOLD').length;
    }
  }
  return sold;
}

// boxoffice_payments_total from /metrics (served to loopback only), or -1.
function serverPaymentCount() {
  const r = http.get(url('/metrics'), { tags: { name: 'metrics' }, responseCallback: http.expectedStatuses(200, 403, 404) });
  if (r.status !== 200 || typeof r.body !== 'string') return -1;
  const m = r.body.match(/^boxoffice_payments_total(?:\{\})?\s+([0-9.e+]+)\s*$/m);
  return m ? Math.round(parseFloat(m[1])) : -1;
}

export function setup() {
  if (userCount < 2) throw new Error('journey.js needs USERS of at least 2 (the last one counts seats)');
  const tokens = checkerTokens(null);
  const soldBefore = countSold(tokens);
  const paymentsBefore = serverPaymentCount();
  console.log(`setup: ${soldBefore} seats sold before the run; server payments ${paymentsBefore}`);
  return { tokens, soldBefore, paymentsBefore };
}

export function teardown(data) {
  let sold = countSold(data.tokens);
  if (sold < 0) sold = countSold(checkerTokens(data.tokens));   // turn over: rejoin
  const payments = serverPaymentCount();
  if (sold < 0 || data.soldBefore < 0) {
    console.error('teardown: could not count the sold seats');
    consistent.add(false);
    return;
  }
  const delta = sold - data.soldBefore;
  soldDelta.add(delta);
  if (payments >= 0 && data.paymentsBefore >= 0) {
    const pd = payments - data.paymentsBefore;
    serverPayments.add(pd);
    consistent.add(pd === delta);
    console.log(`teardown: ${delta} seats sold during the run, the server counted ${pd} payments: ` +
      (pd === delta ? 'consistent' : 'MISMATCH'));
  } else {
    console.log(`teardown: ${delta} seats sold during the run (no /metrics from here to compare)`);
  }
}

// ------------------------------------------------------------ the buyer

function journeyUser(k) {
  // users USER_OFFSET+1 .. USERS-1: the last one is the checker
  return cfg.userOffset + (k % (userCount - 1)) + 1;
}

function pickSchedule(concert) {
  const r = http.get(url(`/api/concerts/${concert}/schedules`), { tags: { name: 'schedules' } });
  const b = jsonBody(r);
  check(r, { 'schedules 200': (x) => x.status === 200 });
  if (r.status !== 200 || !b || !Array.isArray(b.schedules)) return null;
  const open = b.schedules.filter((s) => s.availableSeats > 0);
  if (open.length === 0) return null;
  return open[Math.floor(Math.random() * open.length)].id;
}

function availableSeats(concert, sched, token) {
  const r = http.get(url(`/api/concerts/${concert}/schedules/${sched}/seats`),
    authParams(token, 'seats'));
  const b = jsonBody(r);
  check(r, { 'seat map 200': (x) => x.status === 200 });
  if (r.status !== 200 || !b || !Array.isArray(b.seats)) return [];
  return b.seats.filter((s) => s.status === 'AVAILABLE').map((s) => s.number);
}

function hold(token, sched, free) {
  for (let i = 0; i < 3 && free.length > 0; i++) {
    const k = Math.floor(Math.random() * free.length);
    const seat = free[k];
    free.splice(k, 1);
    const r = http.post(url('/api/reservations'), JSON.stringify({ scheduleId: sched, seatNumber: seat }),
      authParams(token, 'hold', JSON_HEADERS));
    if (r.status === 201) return jsonBody(r);
    if (r.status === 409 && errorCode(r) === 'SEAT_TAKEN') {
      seatTaken.add(1);
      continue;
    }
    if (r.status === 503) {
      sleep(retryAfter(r));
      continue;
    }
    return null;
  }
  return null;
}

// How many seats this buyer wants: 1, or 2..GROUP_MAX for a group.
function seatsWanted() {
  if (GROUP_MAX < 2 || Math.random() >= GROUP_SHARE) return 1;
  return 2 + Math.floor(Math.random() * (GROUP_MAX - 1));
}

// One payment for every hold in held: reservationId for one seat (the
// original request), reservationIds for a group.
function pay(token, held) {
  const key = idemKey('journey');
  const params = authParams(token, held.length > 1 ? 'group_payment' : 'payment',
    Object.assign({ 'Idempotency-Key': key }, JSON_HEADERS));
  const body = JSON.stringify(held.length > 1 ? { reservationIds: held.map((h) => h.id) }
    : { reservationId: held[0].id });
  let r = http.post(url('/api/payments'), body, params);
  if (r.status === 0 || r.status === 502 || r.status === 503 || r.status === 504) {
    sleep(retryAfter(r));
    r = http.post(url('/api/payments'), body, params);     // same key: at most once
  }
  return r;
}

export default function () {
  const t0 = Date.now();
  const k = exec.scenario.iterationInTest;
  const user = journeyUser(k);
  const concert = CONCERT || concertOf(user);
  started.add(1);

  const token = joinUntilActive(user, concert, MAX_WAIT);
  if (!token) {
    gaveUp.add(1);
    return;
  }
  admitted.add(1);
  queueWait.add(Date.now() - t0);

  // A group's seats are held in one schedule; a group that finds fewer
  // free seats than it wants buys the ones it got.
  const wanted = seatsWanted();
  const held = [];
  for (let attempt = 0; attempt < 2 && held.length === 0; attempt++) {
    const sched = pickSchedule(concert);
    if (sched === null) break;
    const free = availableSeats(concert, sched, token);
    while (held.length < wanted && free.length > 0) {
      const reservation = hold(token, sched, free);
      if (reservation === null) break;
      held.push(reservation);
    }
  }
  if (held.length === 0) {
    soldOut.add(1);
    return;
  }
  holdsOk.add(held.length);
  if (held.length < wanted) partialGroups.add(1);

  const r = pay(token, held);
  const b = jsonBody(r);
  const total = held.reduce((sum, h) => sum + h.price, 0);
  check(r, {
    'paid (201) or not enough money (402)': (x) => x.status === 201 || x.status === 402,
    'paid the price': () => r.status !== 201 || (b !== null
      && (held.length > 1 ? b.total === total && Array.isArray(b.payments)
        && b.payments.length === held.length : b.amount === total)),
  });
  if (r.status === 201) {
    paymentsOk.add(1);
    seatsPaid.add(held.length);
    if (held.length > 1) groupPayments.add(1);
    journeyTime.add(Date.now() - t0);
  } else if (r.status === 402) {
    insufficient.add(1);
    held.forEach((h) => http.del(url(`/api/reservations/${h.id}`), null, authParams(token, 'release')));
  } else {
    paymentFailed.add(1);
  }
}

// -------------------------------------------------------------- summary

function metricLine(data, name, what) {
  const m = data.metrics[name];
  if (!m) return null;
  const v = m.values;
  let text;
  if (m.type === 'counter') text = `${v.count}`;
  else if (m.type === 'rate') text = `${(v.rate * 100).toFixed(2)}%`;
  else if (m.type === 'gauge') text = `${v.value}`;
  else text = `avg=${(v.avg || 0).toFixed(1)}ms p(90)=${(v['p(90)'] || 0).toFixed(1)}ms ` +
    `p(95)=${(v['p(95)'] || 0).toFixed(1)}ms max=${(v.max || 0).toFixed(1)}ms`;
  return `  ${(what || name).padEnd(32, '.')} ${text}`;
}

export function handleSummary(data) {
  const lines = ['', 'boxoffice ticket-open journey', ''];
  const names = ['journeys_started', 'admitted', 'gave_up_waiting', 'holds_ok', 'holds_seat_taken',
    'sold_out', 'payments_ok', 'seats_paid', 'group_payments', 'groups_short_of_seats',
    'payments_insufficient_balance', 'payments_failed',
    'seats_sold_delta', 'server_payments_delta', 'sale_consistent', 'queue_wait', 'journey_time',
    'http_reqs', 'http_req_failed', 'http_req_duration', 'dropped_iterations', 'checks'];
  names.forEach((n) => {
    const l = metricLine(data, n);
    if (l) lines.push(l);
  });
  const paid = data.metrics.seats_paid ? data.metrics.seats_paid.values.count : 0;
  const sold = data.metrics.seats_sold_delta ? data.metrics.seats_sold_delta.values.value : null;
  lines.push('');
  if (sold === null) {
    lines.push('  sale check: the sold seats could not be counted');
  } else if (sold === paid) {
    lines.push(`  sale check: ${sold} seats sold = ${paid} seats paid: OK`);
  } else {
    lines.push(`  sale check: ${sold} seats sold but ${paid} seats paid in answers 201 here: MISMATCH` +
      ' (a lost answer to a payment that committed, or another buyer during the run)');
  }
  lines.push('');
  lines.push('  thresholds:');
  Object.keys(data.metrics).forEach((n) => {
    const th = data.metrics[n].thresholds;
    if (!th) return;
    Object.keys(th).forEach((expr) => {
      lines.push(`    ${th[expr].ok ? 'ok  ' : 'FAIL'} ${n} ${expr}`);
    });
  });
  lines.push('');
  const out = { stdout: lines.join('\n') + '\n' };
  if (__ENV.SUMMARY_JSON) out[__ENV.SUMMARY_JSON] = JSON.stringify(data, null, 2);
  return out;
}

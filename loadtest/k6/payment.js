// payment.js: POST /api/payments of a seat the VU's user holds.
//
// Each VU joins as its user and waits until ACTIVE on its first
// iteration (lib/common.js vuEntry). Like the load reports' scripts, an
// iteration makes one request: it holds a random seat, and the VU's next
// iteration pays that hold with an Idempotency-Key (409 SEAT_TAKEN is
// expected: the next iteration tries another seat). A payment ends the
// user's turn, so the VU goes on as its next user (nextUser: VU, VU + VUS,
// ...; no balance runs dry), who joins the queue and waits to be admitted
// (polling every second, honouring Retry-After) before holding the next
// seat. 402 INSUFFICIENT_BALANCE (the opening balance pays a few seats) is
// an expected outcome; the unpaid hold is then released. Once every seat
// is sold, holds only get 409 (five in a row count once as sold_out).
//
//   k6 run -e TOKEN_KEY_FILE=$PWD/var/conf/token.key loadtest/k6/payment.js
import http from 'k6/http';
import { check, sleep } from 'k6';
import { Counter } from 'k6/metrics';
import { cfg, loadOptions, pause, nextUser, vuEntry, url, authParams, scheduleId, randInt, jsonBody, errorCode, retryAfter, idemKey, JSON_HEADERS } from './lib/common.js';

export const options = loadOptions({
  'http_req_duration{name:payment}': ['p(99)<1000'],
});

http.setResponseCallback(http.expectedStatuses({ min: 200, max: 299 }, 402, 409));

const paymentsOk = new Counter('payments_ok');
const insufficient = new Counter('payments_insufficient_balance');
const soldOut = new Counter('sold_out');


const state = {};

// One hold of a random seat; returns the reservation, or null.
function holdOne(e) {
  const sched = scheduleId(e.concert, randInt(1, cfg.schedules));
  const seat = randInt(1, cfg.seats);
  const r = http.post(url('/api/reservations'),
    JSON.stringify({ scheduleId: sched, seatNumber: seat }),
    authParams(e.token, 'hold', JSON_HEADERS));
  if (r.status === 201) {
    state.misses = 0;
    return jsonBody(r);
  }
  if (r.status === 401) {
    e.token = null;
  } else if (r.status === 503) {
    sleep(retryAfter(r) - 1);
  } else if (r.status === 409 && errorCode(r) !== 'HOLD_LIMIT') {
    state.misses = (state.misses || 0) + 1;
    if (state.misses % 5 === 0) soldOut.add(1);
  }
  return null;
}

export default function () {
  const e = vuEntry(state, true);
  if (!e.token) {
    pause();
    return;
  }
  if (!state.hold) {
    state.hold = holdOne(e);
    pause();
    return;
  }
  const hold = state.hold;
  state.hold = null;
  const res = http.post(url('/api/payments'), JSON.stringify({ reservationId: hold.id }),
    authParams(e.token, 'payment', Object.assign({ 'Idempotency-Key': idemKey('pay') }, JSON_HEADERS)));
  const b = jsonBody(res);
  check(res, {
    'paid (201) or not enough money (402)': (r) => r.status === 201 || r.status === 402,
    'the amount is the price': () => res.status !== 201 || (b !== null && b.amount === hold.price),
  });
  if (res.status === 201) {
    paymentsOk.add(1);
    e.token = null;                 // the turn has ended: the next user joins
    e.user = nextUser(e.user);
  } else if (res.status === 402) {
    insufficient.add(1);
    http.del(url(`/api/reservations/${hold.id}`), null, authParams(e.token, 'release'));
  } else if (res.status === 401) {
    e.token = null;
  }
  pause();
}

// reservation.js: POST /api/reservations (hold a seat), then release it.
//
// Each VU joins as its user and waits until ACTIVE on its first
// iteration (lib/common.js vuEntry). Like the load reports' scripts, an
// iteration makes one request: it holds a random seat of a random schedule
// of the token's concert, and the VU's next iteration releases that hold
// (DELETE), so the seats never run out and the run measures holding rather
// than selling out. 409 SEAT_TAKEN (someone else holds it) and 409
// HOLD_LIMIT are expected outcomes, not errors.
//
//   k6 run -e TOKEN_KEY_FILE=$PWD/var/conf/token.key loadtest/k6/reservation.js
import http from 'k6/http';
import { check, sleep } from 'k6';
import { Counter } from 'k6/metrics';
import { cfg, loadOptions, pause, vuEntry, url, authParams, scheduleId, randInt, jsonBody, errorCode, retryAfter, JSON_HEADERS } from './lib/common.js';

export const options = loadOptions({
  'http_req_duration{name:hold}': ['p(99)<1000'],
});

// 409 SEAT_TAKEN / HOLD_LIMIT are business outcomes: not failures.
http.setResponseCallback(http.expectedStatuses({ min: 200, max: 299 }, 409));

const holdsOk = new Counter('holds_ok');
const seatTaken = new Counter('holds_seat_taken');
const holdLimit = new Counter('holds_limit');


const state = {};

export default function () {
  const e = vuEntry(state, true);
  if (!e.token) {
    pause();
    return;
  }
  if (state.held) {
    const rel = http.del(url(`/api/reservations/${state.held}`), null,
      authParams(e.token, 'release'));
    check(rel, { 'released (200)': (r) => r.status === 200 });
    state.held = null;
    if (rel.status === 401) e.token = null;          // turn over: join again
    else if (rel.status === 503) sleep(retryAfter(rel) - 1);
    pause();
    return;
  }
  const sched = scheduleId(e.concert, randInt(1, cfg.schedules));
  const seat = randInt(1, cfg.seats);
  const res = http.post(url('/api/reservations'),
    JSON.stringify({ scheduleId: sched, seatNumber: seat }),
    authParams(e.token, 'hold', JSON_HEADERS));
  const b = jsonBody(res);
  const code = errorCode(res);
  check(res, {
    'held (201) or taken (409)': (r) => r.status === 201 || r.status === 409,
    'a HELD reservation': () => res.status !== 201 || (b !== null && b.status === 'HELD' &&
      b.scheduleId === sched && b.seatNumber === seat),
  });
  if (res.status === 201 && b) {
    holdsOk.add(1);
    state.held = b.id;
  } else if (code === 'SEAT_TAKEN') {
    seatTaken.add(1);
  } else if (code === 'HOLD_LIMIT') {
    holdLimit.add(1);
  } else if (res.status === 401) {
    e.token = null;                                  // turn over: join again
  } else if (res.status === 503) {
    sleep(retryAfter(res) - 1);
  }
  pause();
}

// charge.js: POST /api/users/{id}/balance/charge.
//
// Each VU joins the queue as its user on its first iteration; the queue
// token (WAITING or ACTIVE) is accepted for the user's own balance. Every iteration charges a random
// amount with a new Idempotency-Key; one in ten sends the previous request
// again with the same key, which must get the same answer and move no
// money.
//
//   k6 run -e TOKEN_KEY_FILE=$PWD/var/conf/token.key loadtest/k6/charge.js
import http from 'k6/http';
import { check, sleep } from 'k6';
import { Counter } from 'k6/metrics';
import { cfg, loadOptions, pause, vuEntry, url, authParams, userId, randInt, jsonBody, retryAfter, idemKey, JSON_HEADERS } from './lib/common.js';

export const options = loadOptions({
  'http_req_duration{name:charge}': ['p(99)<1000'],
});

http.setResponseCallback(http.expectedStatuses({ min: 200, max: 299 }));

const replays = new Counter('charge_replays');


const state = {};

export default function () {
  const e = vuEntry(state, false);
  if (!e.token) {
    pause();
    return;
  }
  const replay = state.last && Math.random() < 0.1;
  const key = replay ? state.last.key : idemKey('chg');
  const amount = replay ? state.last.amount : randInt(1, 100) * 100;
  const res = http.post(url(`/api/users/${userId(e.user)}/balance/charge`),
    JSON.stringify({ amount }),
    authParams(e.token, 'charge', Object.assign({ 'Idempotency-Key': key }, JSON_HEADERS)));
  const b = jsonBody(res);
  check(res, {
    'charged (200)': (r) => r.status === 200,
    'charged the amount': () => b !== null && b.charged === amount,
  });
  if (replay) {
    replays.add(1);
    check(res, { 'a replay answers as the first time': () => b !== null &&
      b.balance === state.last.balance });
  } else if (res.status === 200 && b) {
    state.last = { key, amount, balance: b.balance };
  }
  if (res.status === 401) e.token = null;           // token expired: join again
  else if (res.status === 503) sleep(retryAfter(res) - 1);
  pause();
}

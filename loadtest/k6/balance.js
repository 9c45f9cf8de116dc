// balance.js: GET /api/users/{id}/balance.
//
// Each VU joins the queue as its user on its first iteration; the queue
// token (WAITING or ACTIVE) is accepted for the user's own balance.
//
//   k6 run -e TOKEN_KEY_FILE=$PWD/var/conf/token.key loadtest/k6/balance.js
import http from 'k6/http';
import { check, sleep } from 'k6';
import { cfg, loadOptions, pause, vuEntry, url, authParams, userId, jsonBody, retryAfter } from './lib/common.js';

export const options = loadOptions({
  'http_req_duration{name:balance}': ['p(99)<1000'],
});

http.setResponseCallback(http.expectedStatuses({ min: 200, max: 299 }));


const state = {};

export default function () {
  const e = vuEntry(state, false);
  if (!e.token) {
    pause();
    return;
  }
  const res = http.get(url(`/api/users/${userId(e.user)}/balance`), authParams(e.token, 'balance'));
  const b = jsonBody(res);
  check(res, {
    'balance 200': (r) => r.status === 200,
    'own balance, never negative': () => b !== null && b.userId === userId(e.user) &&
      b.balance >= 0,
  });
  if (res.status === 401) e.token = null;           // token expired: join again
  else if (res.status === 503) sleep(retryAfter(res) - 1);
  pause();
}

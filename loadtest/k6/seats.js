// seats.js: GET /api/concerts/{c}/schedules/{s}/seats with ACTIVE tokens.
//
// Each VU joins as its user on its first iteration and waits until it is
// admitted (at most
// MAX_ACTIVE per concert: with more VUs than MAX_ACTIVE x CONCERTS, the
// rest wait in the queue from their VU, as real users would). Each
// iteration reads the map of a random schedule of the token's concert.
//
//   k6 run -e TOKEN_KEY_FILE=$PWD/var/conf/token.key loadtest/k6/seats.js
import http from 'k6/http';
import { check, sleep } from 'k6';
import { cfg, loadOptions, pause, vuEntry, url, authParams, scheduleId, randInt, jsonBody, retryAfter } from './lib/common.js';

export const options = loadOptions({
  'http_req_duration{name:seats}': ['p(99)<1000'],
});

http.setResponseCallback(http.expectedStatuses({ min: 200, max: 299 }));


const state = {};

export default function () {
  const e = vuEntry(state, true);
  if (!e.token) {
    pause();
    return;
  }
  const sched = scheduleId(e.concert, randInt(1, cfg.schedules));
  const res = http.get(url(`/api/concerts/${e.concert}/schedules/${sched}/seats`),
    authParams(e.token, 'seats'));
  const b = jsonBody(res);
  check(res, {
    'seats 200': (r) => r.status === 200,
    'every seat': () => b !== null && Array.isArray(b.seats) && b.seats.length === cfg.seats,
  });
  if (res.status === 401) e.token = null;          // turn over: join again
  else if (res.status === 503) sleep(retryAfter(res) - 1);
  pause();
}

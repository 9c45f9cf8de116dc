// queue-status.js: GET /api/queues/status, the waiting room's polling.
//
// setup() joins one user per VU (users nthUser(0..VUS-1), spread over the
// concerts); each VU then polls with its token once a second, keeping the
// fresh token of every answer (it becomes an ACTIVE token on admission).
// A place that ended (EXPIRED) joins again.
//
//   k6 run loadtest/k6/queue-status.js
import http from 'k6/http';
import { check, sleep } from 'k6';
import { cfg, loadOptions, pause, setupTokens, vuEntry, url, authParams, jsonBody, retryAfter } from './lib/common.js';

export const options = loadOptions({
  'http_req_duration{name:status}': ['p(99)<1000'],
});

http.setResponseCallback(http.expectedStatuses({ min: 200, max: 299 }));

export function setup() {
  return { tokens: setupTokens(cfg.vus, false) };
}

const state = {};

export default function (data) {
  const e = vuEntry(data, state, false);
  if (!e.token) {
    pause();
    return;
  }
  const res = http.get(url('/api/queues/status'), authParams(e.token, 'status'));
  const b = jsonBody(res);
  check(res, {
    'status 200': (r) => r.status === 200,
    'WAITING, ACTIVE or EXPIRED': () => b !== null &&
      ['WAITING', 'ACTIVE', 'EXPIRED'].indexOf(b.status) >= 0,
  });
  if (res.status === 200 && b) {
    e.token = b.status === 'EXPIRED' ? null : b.token;
  } else if (res.status === 401) {
    e.token = null;
  } else if (res.status === 503) {
    sleep(retryAfter(res) - 1);
  }
  pause();
}

// queue-status.js: GET /api/queues/status, the waiting room's polling.
//
// Each VU joins as its user (nthUser(VU-1), spread over the concerts) on
// its first iteration, then polls with its token once a second, keeping the
// fresh token of every answer (it becomes an ACTIVE token on admission).
// A place that ended (EXPIRED) joins again.
//
//   k6 run -e TOKEN_KEY_FILE=$PWD/var/conf/token.key loadtest/k6/queue-status.js
import http from 'k6/http';
import { check, sleep } from 'k6';
import { cfg, loadOptions, pause, vuEntry, url, authParams, jsonBody, retryAfter } from './lib/common.js';

export const options = loadOptions({
  'http_req_duration{name:status}': ['p(99)<1000'],
});

http.setResponseCallback(http.expectedStatuses({ min: 200, max: 299 }));


const state = {};

export default function () {
  const e = vuEntry(state, false);
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

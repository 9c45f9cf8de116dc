// queue-token.js: POST /api/queues/token, every iteration a new place.
//
// Iteration k (over all VUs) joins as user nthUser(k) in concert
// floor(k / users) % CONCERTS + 1, so places are new until every (user,
// concert) pair has joined once; after that a join returns the same live
// place (still 201). Joiners do not poll afterwards: once admitted, their
// turns go unclaimed and are dropped after queue.claim_window. Each joins
// with an operator's user
// token of theirs (TOKEN_KEY_FILE, lib/common.js).
//
//   k6 run -e TOKEN_KEY_FILE=$PWD/var/conf/token.key loadtest/k6/queue-token.js
//   k6 run -e TOKEN_KEY_FILE=$PWD/var/conf/token.key -e VUS=200 -e RAMP=30s -e USERS=100000 -e CONCERTS=10 loadtest/k6/queue-token.js
import http from 'k6/http';
import { check } from 'k6';
import exec from 'k6/execution';
import { cfg, loadOptions, pause, userCount, nthUser, url, joinRequest, jsonBody } from './lib/common.js';

export const options = loadOptions({
  'http_req_duration{name:join}': ['p(99)<1000'],
});

// Only 2xx are expected: 503 QUEUE_UNAVAILABLE or 429 are real failures.
http.setResponseCallback(http.expectedStatuses({ min: 200, max: 299 }));

export default function () {
  const k = exec.scenario.iterationInTest;
  const user = nthUser(k);
  const concert = (Math.floor(k / userCount) % cfg.concerts) + 1;
  // the user's token is made here, on the client (lib/common.js userToken)
  const j = joinRequest(user, concert, 'join');
  const res = http.post(url('/api/queues/token'), j.body, j.params);
  const b = jsonBody(res);
  check(res, {
    'joined (201)': (r) => r.status === 201,
    'a token and a place': () => b !== null && typeof b.token === 'string' && b.queueNumber > 0,
    'WAITING or ACTIVE': () => b !== null && (b.status === 'WAITING' || b.status === 'ACTIVE'),
  });
  pause();
}

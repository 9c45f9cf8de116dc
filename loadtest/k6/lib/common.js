// common.js: what the boxoffice k6 scripts share. Documented k6 API only
// (k6/http, k6, k6/crypto, k6/execution, k6/metrics).
//
// Environment (all optional):
//   BASE_URL     http://127.0.0.1:8080
//   VUS          1000     peak virtual users (ramping-vus scripts)
//   RAMP         60s      ramp from 0 to VUS
//   DURATION     0s       time spent at VUS after the ramp
//   RAMP_DOWN    10s      ramp from VUS back to 0
//   USERS        1000     demo users in the database (user i has UUID
//                         00000000-0000-4000-8000-<i, 12 digits>)
//   USER_OFFSET  0        use users USER_OFFSET+1 .. USERS (to keep two
//                         scripts run at once apart)
//   CONCERTS     5        concerts in the demo data
//   SCHEDULES    4        schedules per concert (schedule (c-1)*S+s is
//                         concert c's)
//   SEATS        50       seats per schedule
//   MAX_ACTIVE   200      the server's queue.max_active (ACTIVE users at
//                         once per concert)
//   SETUP_WAIT   120      seconds journey.js waits for its checker users
//                         to be admitted
//   EXECUTOR     ramping-vus (the reports' shape) or constant-arrival-rate
//                         (a fixed load: RATE iterations a second for
//                         DURATION, default 30s, with up to VUS VUs)
//   RATE         iterations a second (constant-arrival-rate)
//   PREALLOCATED_VUS      VUs started before a constant-arrival-rate run
//                         (default VUS / 4)
//   PAUSE        seconds each iteration pauses at its end: 1 with
//                         ramping-vus (the reports' sleep(1)), 0 with
//                         constant-arrival-rate (the rate sets the pace)
//   SMOKE        1: also require every check to pass (checks rate==1)
//   TOKEN_KEY_FILE  the stack's token key, an absolute path (its
//                         token.key_file: loadtest/k6run passes it; ./dev
//                         up's is var/conf/token.key). Joining the queue
//                         needs a signed-in user: each user joins with an
//                         operator's user token (as `boxofficectl token
//                         USER` makes), signed here with that key, since
//                         thousands of sign-ins (an Argon2 check each)
//                         would load the server more than the test does
//   SIGN_IN      3        users that sign in with their password instead
//                         (demo accounts user<i>@demo.boxoffice.test), so
//                         that sessions are exercised too
//   DEMO_PASSWORD  boxoffice-demo   their password (boxofficectl seed)
// The defaults match `./dev up` (seed 5,4,50,1000). For the load of the
// reports seed more: BOXOFFICE_SEED=10,4,2000,100000 ./dev up, then
// USERS=100000 CONCERTS=10 SEATS=2000.
import http from 'k6/http';
import crypto from 'k6/crypto';
import { sleep } from 'k6';

function envInt(name, dflt) {
  const v = __ENV[name];
  if (v === undefined || v === '') return dflt;
  const n = parseInt(v, 10);
  if (isNaN(n) || n < 0) throw new Error(`${name} must be a non-negative integer, not ${v}`);
  return n;
}

function envFloat(name, dflt) {
  const v = __ENV[name];
  if (v === undefined || v === '') return dflt;
  const n = parseFloat(v);
  if (isNaN(n) || n < 0) throw new Error(`${name} must be a non-negative number, not ${v}`);
  return n;
}

const EXECUTOR = __ENV.EXECUTOR || 'ramping-vus';
if (EXECUTOR !== 'ramping-vus' && EXECUTOR !== 'constant-arrival-rate') {
  throw new Error(`EXECUTOR must be ramping-vus or constant-arrival-rate, not ${EXECUTOR}`);
}
const ARRIVAL = EXECUTOR === 'constant-arrival-rate';

export const cfg = {
  executor: EXECUTOR,
  rate: envFloat('RATE', 100),
  pause: envFloat('PAUSE', ARRIVAL ? 0 : 1),
  smoke: __ENV.SMOKE === '1',
  baseUrl: (__ENV.BASE_URL || 'http://127.0.0.1:8080').replace(/\/+$/, ''),
  vus: envInt('VUS', 1000),
  ramp: __ENV.RAMP || '60s',
  duration: __ENV.DURATION || (ARRIVAL ? '30s' : '0s'),
  rampDown: __ENV.RAMP_DOWN || '10s',
  users: envInt('USERS', 1000),
  userOffset: envInt('USER_OFFSET', 0),
  concerts: envInt('CONCERTS', 5),
  schedules: envInt('SCHEDULES', 4),
  seats: envInt('SEATS', 50),
  maxActive: envInt('MAX_ACTIVE', 200),
  setupWait: envInt('SETUP_WAIT', 120),
  batch: envInt('BATCH', 50),
};

// The stack's token key, read once in the init context (open() is only
// allowed there); null without TOKEN_KEY_FILE.
const TOKEN_KEY = __ENV.TOKEN_KEY_FILE ? open(__ENV.TOKEN_KEY_FILE, 'b') : null;
// Lifetime of the user tokens made here: longer than any run.
const USER_TOKEN_SECONDS = 6 * 3600;
const SIGN_IN = envInt('SIGN_IN', 3);
const DEMO_PASSWORD = __ENV.DEMO_PASSWORD || 'boxoffice-demo';

// The users a script may use: USER_OFFSET+1 .. USERS.
export const userCount = Math.max(1, cfg.users - cfg.userOffset);

export function userId(i) {
  return '00000000-0000-4000-8000-' + String(i).padStart(12, '0');
}

// The i-th usable user (0-based), wrapping around.
export function nthUser(i) {
  return cfg.userOffset + (i % userCount) + 1;
}

export function concertOf(user) {
  return ((user - 1) % cfg.concerts) + 1;
}

export function scheduleId(concert, s) {
  return (concert - 1) * cfg.schedules + s;
}

export function randInt(lo, hi) {
  return lo + Math.floor(Math.random() * (hi - lo + 1));
}

export function url(path) {
  return cfg.baseUrl + path;
}

export function authParams(token, name, extraHeaders) {
  const headers = Object.assign({ Authorization: 'Bearer ' + token }, extraHeaders || {});
  return { headers, tags: { name } };
}

export const JSON_HEADERS = { 'Content-Type': 'application/json' };

// An operator's user token (kind u) of demo user i, as `boxofficectl token`
// signs it (src/token.c: v1.u.USER.0.0.IAT.EXP.MAC, MAC the HMAC-SHA256 of
// the rest under the key, base64url without padding). Made on the client:
// no request, a few microseconds.
export function userToken(i) {
  if (TOKEN_KEY === null) {
    throw new Error('joining the queue needs TOKEN_KEY_FILE (the stack\'s token.key_file)');
  }
  const now = Math.floor(Date.now() / 1000);
  const claims = `v1.u.${userId(i)}.0.0.${now}.${now + USER_TOKEN_SECONDS}`;
  return claims + '.' + crypto.hmac('sha256', TOKEN_KEY, claims, 'base64rawurl');
}

// A session of demo user i: a sign-in with the demo password (an Argon2
// check on the server, so for a few users only), or null.
export function signIn(i) {
  const r = http.post(url('/api/sessions'),
    JSON.stringify({ email: `user${i}@demo.boxoffice.test`, password: DEMO_PASSWORD }),
    { headers: JSON_HEADERS, tags: { name: 'setup_sign_in' } });
  const b = jsonBody(r);
  if (r.status === 201 && b && b.token) return b.token;
  console.warn(`sign-in of user ${i}: ${r.status} ${errorCode(r)}`);
  return null;
}

// The credentials of users (an array of user numbers), made before the
// measured part: a session for the first SIGN_IN of them, a user token
// for the others. Returns {user: token}.
export function credentials(users) {
  const out = {};
  users.forEach((u, k) => {
    out[u] = (k < SIGN_IN && signIn(u)) || userToken(u);
  });
  return out;
}

// The body and params of user's queue join, with cred (a session or user
// token; a user token of theirs if absent). The user is the credential's:
// the body names the concert only.
export function joinRequest(user, concert, name, cred) {
  return {
    body: JSON.stringify({ concertId: concert }),
    params: {
      headers: Object.assign({ Authorization: 'Bearer ' + (cred || userToken(user)) },
        JSON_HEADERS),
      tags: { name },
    },
  };
}

export function jsonBody(res) {
  try {
    return res.json();
  } catch (e) {
    return null;
  }
}

export function errorCode(res) {
  const b = jsonBody(res);
  return b && b.error ? b.error.code : '';
}

// Seconds a 503 (or 429) asks us to wait, at least 1.
export function retryAfter(res, dflt) {
  const v = parseInt(res.headers['Retry-After'] || '', 10);
  return isNaN(v) || v < 1 ? dflt || 1 : v;
}

// A key for Idempotency-Key, unique per VU and iteration.
export function idemKey(prefix) {
  return `${prefix}-${__VU}-${__ITER}-${Date.now()}-${Math.floor(Math.random() * 1e9)}`;
}

// The end of an iteration: the reports' think time, sleep(1), unless
// PAUSE says otherwise (0 in arrival-rate runs, where the executor sets
// the pace and a sleeping VU would only be one more VU to start).
export function pause() {
  if (cfg.pause > 0) sleep(cfg.pause);
}

// The next user a VU plays after its user's turn ended with a payment:
// each VU walks its own users (VU, VU + VUS, VU + 2 VUS, ...), so no
// user's balance runs dry and no two VUs share a user.
export function nextUser(user) {
  return cfg.userOffset + ((user - cfg.userOffset - 1 + cfg.vus) % userCount) + 1;
}

// The scenario and thresholds every script but journey.js and sale.js
// uses. EXECUTOR=ramping-vus (default) is the shape of the load reports:
// 0 -> VUS over RAMP, VUS for DURATION, then down over RAMP_DOWN.
// EXECUTOR=constant-arrival-rate is a fixed load: RATE iterations a second
// for DURATION, whatever the answer times, with up to VUS VUs.
// Thresholds: p(99) under 1 s and under 1 % failed requests; with SMOKE=1
// every check must pass too.
export function loadOptions(extraThresholds) {
  let scenario;
  if (ARRIVAL) {
    scenario = {
      executor: 'constant-arrival-rate',
      rate: cfg.rate,
      timeUnit: '1s',
      duration: cfg.duration,
      preAllocatedVUs: Math.max(1, Math.min(cfg.vus, envInt('PREALLOCATED_VUS', Math.ceil(cfg.vus / 4)))),
      maxVUs: Math.max(1, cfg.vus),
      gracefulStop: '10s',
    };
  } else {
    const stages = [{ duration: cfg.ramp, target: cfg.vus }];
    if (cfg.duration !== '0s' && cfg.duration !== '0') {
      stages.push({ duration: cfg.duration, target: cfg.vus });
    }
    stages.push({ duration: cfg.rampDown, target: 0 });
    scenario = {
      executor: 'ramping-vus',
      startVUs: 0,
      stages,
      gracefulRampDown: '10s',
    };
  }
  const thresholds = Object.assign({
    http_req_duration: ['p(99)<1000'],
    http_req_failed: ['rate<0.01'],
  }, extraThresholds || {});
  if (cfg.smoke) thresholds.checks = ['rate==1'];
  return {
    scenarios: { load: scenario },
    thresholds,
    setupTimeout: `${cfg.setupWait + 120}s`,
    teardownTimeout: '300s',
    batch: cfg.batch,
    batchPerHost: cfg.batch,
  };
}

// Join the queue for many users at once (http.batch). entries: [{user,
// concert, cred (optional: a session or user token; a user token made
// here if absent)}]. Adds token and status to each; one that gets no place keeps
// token null. 503s are retried after their Retry-After.
export function joinMany(entries) {
  for (let i = 0; i < entries.length; i += cfg.batch) {
    let chunk = entries.slice(i, i + cfg.batch);
    for (let attempt = 0; attempt < 5 && chunk.length > 0; attempt++) {
      const reqs = chunk.map((e) => {
        const j = joinRequest(e.user, e.concert, 'setup_join', e.cred);
        return { method: 'POST', url: url('/api/queues/token'), body: j.body, params: j.params };
      });
      const res = http.batch(reqs);
      const again = [];
      let wait = 0;
      res.forEach((r, k) => {
        const b = jsonBody(r);
        if (r.status === 201 && b) {
          chunk[k].token = b.token;
          chunk[k].status = b.status;
        } else if (r.status === 503 || r.status === 429) {
          wait = Math.max(wait, retryAfter(r));
          again.push(chunk[k]);
        } else {
          console.warn(`join of user ${chunk[k].user}: ${r.status} ${errorCode(r)}`);
        }
      });
      chunk = again;
      if (chunk.length > 0) sleep(wait);
    }
  }
  return entries;
}

// Poll the status of every WAITING entry until it is ACTIVE or `seconds`
// pass; honours Retry-After. Returns the entries (status updated).
export function activateAll(entries, seconds) {
  const deadline = Date.now() + seconds * 1000;
  let waiting = entries.filter((e) => e.token && e.status !== 'ACTIVE');
  while (waiting.length > 0 && Date.now() < deadline) {
    sleep(1);
    let wait = 0;
    for (let i = 0; i < waiting.length; i += cfg.batch) {
      const chunk = waiting.slice(i, i + cfg.batch);
      const res = http.batch(chunk.map((e) => ({
        method: 'GET',
        url: url('/api/queues/status'),
        params: authParams(e.token, 'setup_status'),
      })));
      res.forEach((r, k) => {
        const b = jsonBody(r);
        if (r.status === 200 && b && b.token) {
          chunk[k].token = b.token;
          chunk[k].status = b.status;
        } else if (r.status === 200 && b && b.status === 'EXPIRED') {
          chunk[k].token = null;
          chunk[k].status = 'EXPIRED';
        } else if (r.status === 503 || r.status === 429) {
          wait = Math.max(wait, retryAfter(r));
        }
      });
    }
    if (wait > 1) sleep(wait - 1);
    waiting = waiting.filter((e) => e.token && e.status !== 'ACTIVE');
  }
  return entries;
}

// One user's way in, from a VU: join, then poll until ACTIVE (every
// second, or as Retry-After says), at most maxWait seconds, with cred (a
// user token of theirs if absent). Returns the ACTIVE token or null.
export function joinUntilActive(user, concert, maxWait, tagPrefix, cred) {
  const p = tagPrefix || '';
  const deadline = Date.now() + maxWait * 1000;
  const j = joinRequest(user, concert, p + 'join', cred);
  let token = null;
  while (token === null && Date.now() < deadline) {
    const r = http.post(url('/api/queues/token'), j.body, j.params);
    const b = jsonBody(r);
    if (r.status === 201 && b) {
      if (b.status === 'ACTIVE') return b.token;
      token = b.token;
    } else if (r.status === 503 || r.status === 429) {
      sleep(retryAfter(r));
    } else {
      return null;
    }
  }
  while (token !== null && Date.now() < deadline) {
    const r = http.get(url('/api/queues/status'), authParams(token, p + 'status'));
    const b = jsonBody(r);
    if (r.status === 200 && b) {
      if (b.status === 'ACTIVE') return b.token;
      if (b.status === 'EXPIRED') return null;
      token = b.token;
      sleep(1);
    } else if (r.status === 503 || r.status === 429) {
      sleep(retryAfter(r));
    } else {
      return null;
    }
  }
  return null;
}

// The VU's user and token, kept in `state` (one object per VU): on first
// use, and whenever the token has ended (turn over, expiry), the VU joins
// the queue as its user (nthUser(VU-1), or the user payment.js moved on
// to), and with needActive waits until admitted. Not from setup(): k6 gives
// every VU its own copy of setup()'s data, and 1,000 copies of 1,000
// tokens made k6's heap 600 MB, whose garbage collection then took whole
// seconds of CPU on the cores the server shares (see the README).
export function vuEntry(state, needActive) {
  if (state.entry && state.entry.token) return state.entry;
  const user = state.entry ? state.entry.user : nthUser(__VU - 1);
  const concert = concertOf(user);
  let token = null;
  if (needActive) {
    token = joinUntilActive(user, concert, 120);
  } else {
    const j = joinRequest(user, concert, 'join');
    const r = http.post(url('/api/queues/token'), j.body, j.params);
    const b = jsonBody(r);
    token = r.status === 201 && b ? b.token : null;
  }
  state.entry = { user, concert, token, status: needActive ? 'ACTIVE' : null };
  return state.entry;
}

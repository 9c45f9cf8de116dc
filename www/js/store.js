// store.js: what the browser remembers, in localStorage (sessionStorage for
// idempotency keys of requests in flight).
//
// Every value is stored as JSON. Keys (shared with the static fallback page
// /waiting.html, which reads and writes the same records without importing
// this file):
//
//   boxoffice.user                       the user's UUID
//   boxoffice.queue.<userId>.<concertId> {token, queueNumber, status, position,
//                                         startPosition, etaSeconds, activeUntil,
//                                         updatedAt}
//   boxoffice.lastRoute                  the last page of the app ("#/...")
//   boxoffice.hold.<reservationId>       a seat hold: the reservation answer
//                                         plus userId, concertId
//   boxoffice.payment.<paymentId>        a payment answer plus what the
//                                         confirmation page shows
//   (session) boxoffice.idem.<scope>.<subject>  {key, fingerprint}

const PREFIX = 'boxoffice.';
const memory = new Map();   // used when storage is unavailable (private mode)

function backend(session) {
  try {
    const s = session ? window.sessionStorage : window.localStorage;
    const probe = PREFIX + 'probe';
    s.setItem(probe, '1');
    s.removeItem(probe);
    return s;
  } catch {
    return null;
  }
}

const local = backend(false);
const session = backend(true);

function read(s, key) {
  const full = PREFIX + key;
  let raw = null;
  try {
    raw = s ? s.getItem(full) : (memory.has(full) ? memory.get(full) : null);
  } catch {
    raw = null;
  }
  if (raw == null) return null;
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}

function write(s, key, value) {
  const full = PREFIX + key;
  const raw = JSON.stringify(value);
  try {
    if (s) s.setItem(full, raw); else memory.set(full, raw);
  } catch {
    memory.set(full, raw);
  }
}

function remove(s, key) {
  const full = PREFIX + key;
  try {
    if (s) s.removeItem(full);
  } catch { /* ignore */ }
  memory.delete(full);
}

// ------------------------------------------------------------------ users

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const DEMO_RE = /^00000000-0000-4000-8000-(\d{12})$/;

/** The demo user i's UUID (docs/design.md: deterministic demo data). */
export function demoUserId(i) {
  return '00000000-0000-4000-8000-' + String(i).padStart(12, '0');
}

/** A user number (1, 2, ...) or a UUID typed by the user -> UUID, or null. */
export function parseUserInput(text) {
  const t = String(text || '').trim().replace(/^#/, '');
  if (/^\d{1,12}$/.test(t)) {
    const n = Number(t);
    return n >= 1 ? demoUserId(n) : null;
  }
  return UUID_RE.test(t) ? t.toLowerCase() : null;
}

/** "User 41" for demo users, else a shortened UUID. */
export function userLabel(id) {
  if (!id) return '';
  const m = DEMO_RE.exec(id);
  if (m) return 'User ' + Number(m[1]);
  return 'User ' + id.slice(0, 8) + '…';
}

export function currentUser() {
  const u = read(local, 'user');
  return typeof u === 'string' && UUID_RE.test(u) ? u : null;
}

export function setCurrentUser(id) {
  if (id) write(local, 'user', id); else remove(local, 'user');
}

// ------------------------------------------------------------------ queue

export function queueRecord(user, concert) {
  const r = read(local, `queue.${user}.${concert}`);
  return r && typeof r === 'object' && typeof r.token === 'string' ? r : null;
}

export function saveQueueRecord(user, concert, rec) {
  write(local, `queue.${user}.${concert}`, { ...rec, updatedAt: Date.now() });
}

export function clearQueueRecord(user, concert) {
  remove(local, `queue.${user}.${concert}`);
}

/**
 * Merge a queue answer (join or status) into the stored record. A WAITING or
 * ACTIVE answer carries a fresh token: it replaces the stored one (booking
 * needs the ACTIVE token).
 */
export function mergeQueueAnswer(user, concert, answer) {
  const old = queueRecord(user, concert) || {};
  const rec = { ...old };
  if (typeof answer.token === 'string' && answer.token) rec.token = answer.token;
  if (answer.queueNumber != null) rec.queueNumber = answer.queueNumber;
  rec.status = answer.status;
  rec.position = answer.position ?? null;
  rec.etaSeconds = answer.etaSeconds ?? null;
  rec.activeUntil = answer.activeUntil ?? null;
  if (answer.status === 'WAITING') {
    if (rec.startPosition == null || old.queueNumber !== rec.queueNumber ||
        (answer.position ?? 0) > rec.startPosition) {
      rec.startPosition = answer.position ?? 0;
    }
  }
  if (rec.token) saveQueueRecord(user, concert, rec);
  return rec;
}

// ------------------------------------------------------------------ route

export function lastRoute() {
  const r = read(local, 'lastRoute');
  return typeof r === 'string' && r.startsWith('#/') ? r : null;
}

export function setLastRoute(route) {
  write(local, 'lastRoute', route);
}

// ------------------------------------------------------- holds, payments

export function hold(id) {
  return read(local, 'hold.' + id);
}

export function saveHold(id, rec) {
  write(local, 'hold.' + id, rec);
}

export function clearHold(id) {
  remove(local, 'hold.' + id);
}

/** This user's live holds in a schedule, from what this browser remembers. */
export function holdsFor(user, schedule, nowMs) {
  const out = [];
  const s = local;
  const keys = [];
  try {
    if (s) {
      for (let i = 0; i < s.length; i++) keys.push(s.key(i));
    } else {
      keys.push(...memory.keys());
    }
  } catch { /* ignore */ }
  for (const k of keys) {
    if (!k || !k.startsWith(PREFIX + 'hold.')) continue;
    const h = read(s, k.slice(PREFIX.length));
    if (!h || h.userId !== user || Number(h.scheduleId) !== Number(schedule)) continue;
    if (Date.parse(h.expiresAt) <= nowMs) {
      remove(s, k.slice(PREFIX.length));
      continue;
    }
    out.push(h);
  }
  return out.sort((a, b) => a.seatNumber - b.seatNumber);
}

export function payment(id) {
  return read(local, 'payment.' + id);
}

export function savePayment(id, rec) {
  write(local, 'payment.' + id, rec);
}

// ------------------------------------------------------ idempotency keys

/** A random UUID (v4); works outside secure contexts too. */
export function uuid4() {
  if (window.crypto && typeof window.crypto.randomUUID === 'function') {
    try {
      return window.crypto.randomUUID();
    } catch { /* insecure context */ }
  }
  const b = new Uint8Array(16);
  window.crypto.getRandomValues(b);
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * The Idempotency-Key of the attempt in progress for (scope, subject): a new
 * random one when there is none or the request changed (fingerprint), the
 * same one when the attempt is retried. finishAttempt() forgets it once the
 * server gave a definite answer.
 */
export function attemptKey(scope, subject, fingerprint) {
  const k = `idem.${scope}.${subject}`;
  const cur = read(session, k);
  if (cur && typeof cur === 'object' && cur.key && cur.fingerprint === fingerprint) {
    return cur.key;
  }
  const key = uuid4();
  write(session, k, { key, fingerprint });
  return key;
}

export function finishAttempt(scope, subject) {
  remove(session, `idem.${scope}.${subject}`);
}

// store.js: what the browser remembers, in localStorage (sessionStorage for
// idempotency keys of requests in flight).
//
// Every value is stored as JSON. Keys (shared with the static fallback page
// /waiting.html, which reads and writes the same records without importing
// this file):
//
//   boxoffice.user                       the signed-in user's UUID (as the
//                                         server last confirmed it)
//   boxoffice.email                      {userId, email} shown for that user
//   boxoffice.queue.<userId>.<concertId> {token, queueNumber, status, position,
//                                         startPosition, etaSeconds, activeUntil,
//                                         updatedAt}
//   boxoffice.lastRoute                  the last page of the app ("#/...")
//   boxoffice.hold.<reservationId>       a seat hold: the reservation answer
//                                         plus userId, concertId
//   boxoffice.payment.<paymentId>        a payment answer plus what the
//                                         confirmation page shows
//   (session) boxoffice.idem.<scope>.<subject>  {key, fingerprint}
//   (session) boxoffice.afterSignIn      the page to return to after sign-in

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
//
// Who is signed in is the server's to say: the session is an HttpOnly
// cookie the page cannot read, and GET /api/sessions answers for it. What
// is stored here only remembers the answer (for the waiting page, other
// tabs, and the e-mail address to show) until the next check.

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The signed-in user's UUID, as last confirmed by the server, or null. */
export function currentUser() {
  const u = read(local, 'user');
  return typeof u === 'string' && UUID_RE.test(u) ? u : null;
}

/** The e-mail address the current user signed in with here, or null. */
export function currentEmail() {
  const e = read(local, 'email');
  return e && typeof e === 'object' && e.userId === currentUser() && typeof e.email === 'string'
    ? e.email : null;
}

/** Remember who is signed in (id null: nobody); email when it is known. */
export function setCurrentUser(id, email) {
  if (!id) {
    remove(local, 'user');
    remove(local, 'email');
    return;
  }
  const uid = id.toLowerCase();
  const known = read(local, 'email');
  if (known && (typeof known !== 'object' || known.userId !== uid)) remove(local, 'email');
  write(local, 'user', uid);
  if (email) write(local, 'email', { userId: uid, email });
}

/** How the page names the user: the e-mail address, else a short id. */
export function userLabel(id) {
  if (!id) return '';
  return currentEmail() || 'User ' + id.slice(0, 8) + '…';
}

/**
 * Forget what this browser keeps for user (queue passes, holds): done at
 * sign-out, so that the next person at this browser finds nothing of it.
 */
export function forgetUser(user) {
  const keys = [];
  try {
    if (local) {
      for (let i = 0; i < local.length; i++) keys.push(local.key(i));
    } else {
      keys.push(...memory.keys());
    }
  } catch { /* ignore */ }
  for (const k of keys) {
    if (!k || !k.startsWith(PREFIX)) continue;
    const key = k.slice(PREFIX.length);
    if (key.startsWith(`queue.${user}.`)) {
      remove(local, key);
    } else if (key.startsWith('hold.') || key.startsWith('payment.')) {
      const rec = read(local, key);
      if (rec && rec.userId === user) remove(local, key);
    }
  }
}

/** Where to go back to after signing in ("#/..."), kept for this tab. */
export function afterSignIn() {
  const r = read(session, 'afterSignIn');
  return typeof r === 'string' && r.startsWith('#/') ? r : null;
}

export function setAfterSignIn(route) {
  if (route) write(session, 'afterSignIn', route); else remove(session, 'afterSignIn');
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

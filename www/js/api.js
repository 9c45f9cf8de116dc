// api.js: the one place that talks to the boxoffice API.
//
// request() never throws and never hands raw JSON to the page: it returns
//   { ok, status, data, error: {code, message} | null, retryAfter (seconds | null) }
// where status 0 means the server could not be reached at all.

let skewMs = 0;   // server clock minus browser clock, from the Date header

/** The server's idea of "now", in milliseconds (for countdowns). */
export function serverNow() {
  return Date.now() + skewMs;
}

function parseRetryAfter(value) {
  if (!value) return null;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Math.min(Number(v), 3600);
  const t = Date.parse(v);
  if (!Number.isNaN(t)) return Math.max(0, Math.min(3600, Math.ceil((t - Date.now()) / 1000)));
  return null;
}

// Codes for answers that carry no JSON error (a proxy's own page, say).
function codeForStatus(status) {
  switch (status) {
    case 400: return 'BAD_REQUEST';
    case 401: return 'TOKEN_INVALID';
    case 403: return 'FORBIDDEN';
    case 404: return 'NOT_FOUND';
    case 405: return 'METHOD_NOT_ALLOWED';
    case 413: return 'BODY_TOO_LARGE';
    case 415: return 'UNSUPPORTED_MEDIA_TYPE';
    case 429: return 'RATE_LIMITED';
    case 502: return 'UPSTREAM_UNAVAILABLE';
    case 503: return 'UNAVAILABLE';
    case 504: return 'UPSTREAM_TIMEOUT';
    default: return status >= 500 ? 'INTERNAL' : 'HTTP_' + status;
  }
}

/**
 * One API call. opts: body (sent as JSON), token (Bearer), idempotencyKey,
 * timeoutMs (default 10 s), signal (an AbortSignal that cancels it).
 */
export async function request(method, path, opts = {}) {
  const headers = { Accept: 'application/json' };
  if (opts.body !== undefined) headers['Content-Type'] = 'application/json';
  if (opts.token) headers.Authorization = 'Bearer ' + opts.token;
  if (opts.idempotencyKey) headers['Idempotency-Key'] = opts.idempotencyKey;

  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), opts.timeoutMs || 10000);
  const onAbort = () => ctl.abort();
  if (opts.signal) {
    if (opts.signal.aborted) ctl.abort();
    else opts.signal.addEventListener('abort', onAbort, { once: true });
  }
  let resp;
  try {
    resp = await fetch(path, {
      method,
      headers,
      body: opts.body !== undefined ? JSON.stringify(opts.body) : undefined,
      cache: 'no-store',
      credentials: 'same-origin',
      signal: ctl.signal,
    });
  } catch (e) {
    const cancelled = opts.signal && opts.signal.aborted;
    return {
      ok: false, status: 0, data: null, retryAfter: null, cancelled,
      error: { code: cancelled ? 'CANCELLED' : 'NETWORK', message: String(e && e.message || e) },
    };
  } finally {
    clearTimeout(timer);
    if (opts.signal) opts.signal.removeEventListener('abort', onAbort);
  }

  const date = Date.parse(resp.headers.get('Date') || '');
  if (!Number.isNaN(date)) {
    // The Date header has one-second resolution: only trust a clear skew.
    const d = date - Date.now();
    skewMs = Math.abs(d) > 1500 ? d : 0;
  }
  const retryAfter = parseRetryAfter(resp.headers.get('Retry-After'));
  let data = null;
  const type = resp.headers.get('Content-Type') || '';
  try {
    const text = await resp.text();
    if (type.includes('json') && text) data = JSON.parse(text);
  } catch {
    data = null;
  }
  if (resp.ok) {
    if (data === null || typeof data !== 'object') {
      return {
        ok: false, status: resp.status, data: null, retryAfter,
        error: { code: 'BAD_RESPONSE', message: 'the answer was not JSON' },
      };
    }
    return { ok: true, status: resp.status, data, error: null, retryAfter };
  }
  let error = data && typeof data === 'object' && data.error && typeof data.error === 'object'
    ? data.error : null;
  if (!error || typeof error.code !== 'string') {
    error = { code: codeForStatus(resp.status), message: '' };
  }
  return { ok: false, status: resp.status, data: null, error, retryAfter };
}

/** An answer that means "the queue (or the app behind it) is down for now". */
export function isOutage(res) {
  if (res.ok) return false;
  if ([502, 503, 504].includes(res.status)) return true;
  return ['QUEUE_UNAVAILABLE', 'MAINTENANCE'].includes(res.error && res.error.code);
}

/** Worth retrying the very same request later (nothing definite happened). */
export function isTransient(res) {
  return !res.ok && (res.status === 0 || res.status === 429 || res.status >= 500);
}

export function authFailure(res) {
  const code = res.error && res.error.code;
  return ['TOKEN_MISSING', 'TOKEN_INVALID', 'TOKEN_EXPIRED', 'TOKEN_REVOKED',
    'TOKEN_WRONG_CONCERT', 'TOKEN_WRONG_KIND', 'NOT_ACTIVE'].includes(code);
}

/** Promise that resolves after ms, or at once when signal aborts. */
export function sleep(ms, signal) {
  return new Promise((resolve) => {
    if (signal && signal.aborted) { resolve(); return; }
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      if (signal) signal.removeEventListener('abort', done);
      resolve();
    }
    if (signal) signal.addEventListener('abort', done, { once: true });
  });
}

/**
 * A POST that moves money: retried a few times on transient failures with
 * the same Idempotency-Key, honouring Retry-After. Returns the last answer.
 */
export async function postWithRetry(path, opts, tries = 3) {
  let res;
  for (let i = 0; i < tries; i++) {
    res = await request('POST', path, opts);
    if (!isTransient(res) || res.cancelled) return res;
    if (i + 1 < tries) {
      const wait = Math.min(5, Math.max(res.retryAfter || 0, 0.5 * 2 ** i));
      await sleep(wait * 1000, opts.signal);
    }
  }
  return res;
}

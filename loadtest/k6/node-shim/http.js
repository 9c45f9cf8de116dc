// http.js: shim of `k6/http` over curl (synchronous, like k6's API).
import { execFileSync } from 'node:child_process';
import { metric } from './state.js';

let callback = expectedStatuses({ min: 200, max: 399 });

export function expectedStatuses(...spec) {
  return { expected: spec };
}

export function setResponseCallback(cb) {
  callback = cb;
}

function isExpected(cb, status) {
  if (!cb) return true;
  return cb.expected.some((s) => (typeof s === 'number' ? s === status
    : status >= s.min && status <= s.max));
}

function canonical(name) {
  return name.split('-').map((p) => p.charAt(0).toUpperCase() + p.slice(1).toLowerCase()).join('-');
}

export function request(method, url, body, params) {
  const p = params || {};
  const args = ['-s', '-i', '-X', method, '--max-time', String(p.timeoutSeconds || 15), url];
  for (const [k, v] of Object.entries(p.headers || {})) args.push('-H', `${k}: ${v}`);
  if (body !== null && body !== undefined) args.push('--data-binary', String(body));
  const t0 = Date.now();
  let status = 0;
  let text = '';
  const headers = {};
  try {
    const out = execFileSync('curl', args, { encoding: 'utf8', maxBuffer: 64 << 20 });
    let rest = out;
    for (;;) {
      const end = rest.indexOf('\r\n\r\n');
      const head = end >= 0 ? rest.slice(0, end) : rest;
      rest = end >= 0 ? rest.slice(end + 4) : '';
      const lines = head.split('\r\n');
      status = parseInt(lines[0].split(' ')[1], 10) || 0;
      if (status === 100) continue;
      for (const l of lines.slice(1)) {
        const i = l.indexOf(':');
        if (i > 0) headers[canonical(l.slice(0, i).trim())] = l.slice(i + 1).trim();
      }
      break;
    }
    text = rest;
  } catch (e) {
    status = 0;
  }
  const duration = Date.now() - t0;
  const cb = p.responseCallback !== undefined ? p.responseCallback : callback;
  metric('http_reqs', 'counter').samples.push(1);
  metric('http_req_duration', 'trend', true).samples.push(duration);
  metric('http_req_failed', 'rate').samples.push(isExpected(cb, status) ? 0 : 1);
  const name = (p.tags && p.tags.name) || url;
  const byName = metric(`statuses{${name}}`, 'statuses');
  byName.samples.push(status);
  return {
    status,
    body: text,
    headers,
    url,
    timings: { duration },
    json(selector) {
      const v = JSON.parse(text);
      return selector ? v[selector] : v;
    },
  };
}

export function get(url, params) { return request('GET', url, null, params); }
export function head(url, params) { return request('HEAD', url, null, params); }
export function post(url, body, params) { return request('POST', url, body, params); }
export function put(url, body, params) { return request('PUT', url, body, params); }
export function patch(url, body, params) { return request('PATCH', url, body, params); }
export function del(url, body, params) { return request('DELETE', url, body, params); }

export function batch(reqs) {
  return reqs.map((r) => (Array.isArray(r)
    ? request(r[0], r[1], r[2] === undefined ? null : r[2], r[3])
    : typeof r === 'string' ? request('GET', r, null, {})
      : request(r.method || 'GET', r.url, r.body === undefined ? null : r.body, r.params)));
}

export default {
  request, get, head, post, put, patch, del, batch, expectedStatuses, setResponseCallback,
};

// ui.js: small DOM helpers and formatting.

import { messageFor, messageOf } from './errors.js';

/**
 * h('button', {class: 'btn', onclick: fn, 'aria-label': 'x'}, 'text', child...)
 * Attributes: class, text, html is not supported (no innerHTML anywhere),
 * on<event> handlers, boolean attributes given as true/false, others as strings.
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
}

const numberFmt = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });

/** Amounts are integers in the smallest unit; the demo calls them credits. */
export function money(n) {
  return `${numberFmt.format(Number(n) || 0)} credits`;
}

export function number(n) {
  return numberFmt.format(Number(n) || 0);
}

const dateFmt = new Intl.DateTimeFormat(undefined, {
  weekday: 'short', day: 'numeric', month: 'short', year: 'numeric',
  hour: '2-digit', minute: '2-digit',
});
const timeFmt = new Intl.DateTimeFormat(undefined, {
  hour: '2-digit', minute: '2-digit', second: '2-digit',
});

export function dateTime(iso) {
  const t = Date.parse(iso);
  return Number.isNaN(t) ? '' : dateFmt.format(new Date(t));
}

export function clockTime(ms) {
  return timeFmt.format(new Date(ms));
}

/** A countdown: "4:05", "1:02:03". */
export function countdown(ms) {
  const s = Math.max(0, Math.ceil(ms / 1000));
  const hh = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return hh > 0 ? `${hh}:${String(mm).padStart(2, '0')}:${ss}` : `${mm}:${ss}`;
}

/** A countdown in words, for screen readers. */
export function countdownWords(ms) {
  const s = Math.max(0, Math.ceil(ms / 1000));
  const m = Math.floor(s / 60);
  const r = s % 60;
  const parts = [];
  if (m) parts.push(`${m} minute${m === 1 ? '' : 's'}`);
  if (r || !m) parts.push(`${r} second${r === 1 ? '' : 's'}`);
  return parts.join(' ');
}

/** An estimated wait in words. */
export function eta(seconds) {
  if (seconds === null || seconds === undefined) return 'Estimating…';
  const s = Number(seconds);
  if (s <= 0) return 'Any moment now';
  if (s < 60) return 'Less than a minute';
  if (s < 3600) {
    const m = Math.round(s / 60);
    return `About ${m} minute${m === 1 ? '' : 's'}`;
  }
  const hrs = Math.floor(s / 3600);
  const m = Math.round((s % 3600) / 60);
  return `About ${hrs} h ${m} min`;
}

export function ordinal(n) {
  const s = ['th', 'st', 'nd', 'rd'];
  const v = n % 100;
  return n + (s[(v - 20) % 10] || s[v] || s[0]);
}

/**
 * A message box. kind: 'error' | 'warning' | 'info' | 'success'.
 * Errors are role=alert (announced at once); others role=status.
 */
export function notice(kind, text, ...extra) {
  return h('div', {
    class: `notice notice-${kind}`,
    role: kind === 'error' ? 'alert' : 'status',
  }, h('p', { class: 'notice-text' }, text), ...extra);
}

/** The notice for a failed API answer (the code is shown small, for support). */
export function errorNotice(res, ...extra) {
  const code = res && res.error ? res.error.code : 'UNKNOWN';
  const box = notice('error', messageOf(res), ...extra);
  box.dataset.code = code;
  box.append(h('p', { class: 'notice-code' }, `Reference: ${code}`));
  return box;
}

/**
 * The whole positive amount typed in input, or null after marking the field
 * invalid and saying why in the message area (INVALID_AMOUNT).
 */
export function readAmount(input, area) {
  const text = input.value.trim();
  if (!/^\d+$/.test(text) || Number(text) < 1) {
    input.setAttribute('aria-invalid', 'true');
    const box = notice('error', messageFor('INVALID_AMOUNT'));
    box.dataset.code = 'INVALID_AMOUNT';
    say(area, box);
    input.focus();
    return null;
  }
  input.removeAttribute('aria-invalid');
  return Number(text);
}

/** Replace the content of a live message area. */
export function say(area, node) {
  clear(area);
  if (node) area.append(node);
}

export function spinner(label) {
  return h('p', { class: 'loading', role: 'status' },
    h('span', { class: 'spinner', 'aria-hidden': 'true' }), label || 'Loading…');
}

/** The page heading; the router focuses it after a page change. */
export function pageHeading(text, sub) {
  return h('header', { class: 'page-head' },
    h('h1', { tabindex: '-1', id: 'page-title' }, text),
    sub ? h('p', { class: 'page-sub' }, sub) : null);
}

export function link(href, text, cls) {
  return h('a', { href, class: cls || null }, text);
}

export function button(text, onclick, cls, attrs) {
  return h('button', { type: 'button', class: cls || 'btn', onclick, ...(attrs || {}) }, text);
}

/** Steps indicator of the booking journey. */
const STEPS = ['Concert', 'Date', 'Queue', 'Seat', 'Payment', 'Done'];

export function steps(current) {
  return h('ol', { class: 'steps', 'aria-label': 'Booking steps' },
    STEPS.map((s, i) => h('li', {
      class: i < current ? 'done' : i === current ? 'current' : null,
      'aria-current': i === current ? 'step' : null,
    }, h('span', { class: 'step-n', 'aria-hidden': 'true' }, String(i + 1)), ' ',
    h('span', { class: 'step-label' }, s))));
}

// app.js: the page shell: who the user is, and a hash router that shows one
// step of the journey at a time.
//
//   #/                                              concerts on sale
//   #/concerts/C                                    dates (schedules) of concert C
//   #/concerts/C/schedules/S/queue                  waiting room
//   #/concerts/C/schedules/S/seats                  seat map
//   #/concerts/C/schedules/S/reservations/R         hold countdown and payment
//   #/payments/P                                    confirmation

import {
  currentUser, setCurrentUser, parseUserInput, userLabel, setLastRoute,
} from './store.js';
import { h, clear, notice, pageHeading, link } from './ui.js';

const ROUTES = [
  { re: /^#\/?$/, view: 'concerts', keys: [] },
  { re: /^#\/concerts\/(\d{1,15})\/?$/, view: 'schedules', keys: ['concertId'] },
  { re: /^#\/concerts\/(\d{1,15})\/schedules\/(\d{1,15})\/queue$/, view: 'queue', keys: ['concertId', 'scheduleId'] },
  { re: /^#\/concerts\/(\d{1,15})\/schedules\/(\d{1,15})\/seats$/, view: 'seats', keys: ['concertId', 'scheduleId'] },
  {
    re: /^#\/concerts\/(\d{1,15})\/schedules\/(\d{1,15})\/reservations\/([0-9a-fA-F-]{36})$/,
    view: 'hold', keys: ['concertId', 'scheduleId', 'reservationId'],
  },
  { re: /^#\/payments\/([0-9a-fA-F-]{36})$/, view: 'done', keys: ['paymentId'] },
];

const main = document.getElementById('main');
const userBox = document.getElementById('user-box');
let current = null;          // {abort, cleanups}
let editingUser = false;

// ------------------------------------------------------------------ user

function inputValue(user) {
  if (!user) return '';
  const m = /^00000000-0000-4000-8000-(\d{12})$/.exec(user);
  return m ? String(Number(m[1])) : user;
}

function renderUserBox(focusInput) {
  clear(userBox);
  const user = currentUser();
  if (user && !editingUser) {
    userBox.append(h('p', { class: 'user-current' },
      'Booking as ', h('strong', { id: 'user-name' }, userLabel(user)), ' ',
      h('button', {
        type: 'button', class: 'btn btn-small btn-ghost', id: 'user-change',
        onclick: () => { editingUser = true; renderUserBox(true); },
      }, 'Change user')));
    return;
  }
  const err = h('p', { class: 'field-error', id: 'user-error', 'aria-live': 'polite' });
  const input = h('input', {
    id: 'user-input', name: 'user', type: 'text', autocomplete: 'off', spellcheck: 'false',
    inputmode: 'text', placeholder: 'e.g. 41', 'aria-describedby': 'user-hint user-error',
    value: inputValue(user),
  });
  const form = h('form', { class: 'user-form', id: 'user-form', novalidate: true },
    h('label', { for: 'user-input' }, 'Your user number or ID'),
    h('div', { class: 'user-row' }, input,
      h('button', { type: 'submit', class: 'btn btn-small' }, 'Use this user'),
      user ? h('button', {
        type: 'button', class: 'btn btn-small btn-ghost',
        onclick: () => { editingUser = false; renderUserBox(); },
      }, 'Cancel') : null),
    h('p', { class: 'field-hint', id: 'user-hint' },
      'Demo: any number from 1, or a user UUID. No password needed.'),
    err);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const id = parseUserInput(input.value);
    if (!id) {
      err.textContent = 'Please enter a user number (1, 2, 3, …) or a UUID.';
      input.setAttribute('aria-invalid', 'true');
      input.focus();
      return;
    }
    const changed = id !== currentUser();
    setCurrentUser(id);
    editingUser = false;
    renderUserBox();
    document.getElementById('user-change')?.focus();
    if (changed) window.dispatchEvent(new CustomEvent('boxoffice:user', { detail: id }));
  });
  userBox.append(form);
  if (focusInput) input.focus();
}

/** Ask for the user (from a page that needs one): open and focus the form. */
function askForUser() {
  editingUser = true;
  renderUserBox(true);
}

// ---------------------------------------------------------------- router

function match(hash) {
  for (const r of ROUTES) {
    const m = r.re.exec(hash);
    if (m) {
      const params = {};
      r.keys.forEach((k, i) => { params[k] = /Id$/.test(k) && /^\d+$/.test(m[i + 1]) ? Number(m[i + 1]) : m[i + 1].toLowerCase(); });
      return { view: r.view, params };
    }
  }
  return null;
}

function navigate(hash, opts = {}) {
  if (opts.replace) {
    history.replaceState(null, '', hash);
    route();
  } else if (location.hash === hash) {
    route();
  } else {
    location.hash = hash;
  }
}

/** Leave for the static waiting page; it keeps retrying and brings the user back. */
function toWaitingPage(concertId, retryAfter, code) {
  const hash = location.hash.startsWith('#/') ? location.hash : '#/';
  setLastRoute(hash);
  const q = new URLSearchParams({ return: '/' + hash });
  if (concertId) q.set('concert', String(concertId));
  if (retryAfter) q.set('wait', String(retryAfter));
  if (code) q.set('reason', code);
  location.assign('/waiting.html?' + q.toString());
}

async function route() {
  const hash = location.hash || '#/';
  if (!hash.startsWith('#/') && hash !== '#') return;   // an in-page anchor
  if (current) {
    current.abort.abort();
    for (const fn of current.cleanups) {
      try { fn(); } catch { /* ignore */ }
    }
  }
  const abort = new AbortController();
  const me = { abort, cleanups: [] };
  current = me;
  const found = match(hash);
  clear(main);
  main.setAttribute('aria-busy', 'true');
  if (!found) {
    document.title = 'Page not found · boxoffice';
    main.append(pageHeading('Page not found'),
      notice('error', 'There is no such page.', h('p', {}, link('#/', 'See all concerts'))));
    main.removeAttribute('aria-busy');
    focusHeading();
    return;
  }
  setLastRoute(hash);
  const ctx = {
    params: found.params,
    signal: abort.signal,
    alive: () => current === me && !abort.signal.aborted,
    onCleanup: (fn) => me.cleanups.push(fn),
    navigate,
    toWaitingPage,
    askForUser,
    user: currentUser(),
    setTitle: (t) => { document.title = `${t} · boxoffice`; },
    focusHeading,
  };
  try {
    const mod = await import(`./views/${found.view}.js`);
    if (!ctx.alive()) return;
    await mod.render(main, ctx);
  } catch (e) {
    if (!ctx.alive()) return;
    console.error(e);
    clear(main);
    main.append(pageHeading('Something went wrong'),
      notice('error', 'This page could not be shown. Please reload it.',
        h('p', {}, h('button', { type: 'button', class: 'btn', onclick: () => location.reload() }, 'Reload'))));
  } finally {
    if (ctx.alive()) main.removeAttribute('aria-busy');
  }
}

let firstRoute = true;
function focusHeading() {
  // Move focus to the new page's heading (not on the very first load, where
  // the browser's own focus handling is better for screen readers).
  if (firstRoute) { firstRoute = false; return; }
  const el = document.getElementById('page-title');
  if (el) el.focus({ preventScroll: false });
}

window.addEventListener('hashchange', route);
window.addEventListener('boxoffice:user', () => route());
// Another tab changed the user: follow it.
window.addEventListener('storage', (ev) => {
  if (ev.key === 'boxoffice.user') {
    editingUser = false;
    renderUserBox();
    route();
  }
});
document.querySelector('.skip')?.addEventListener('click', (ev) => {
  ev.preventDefault();
  main.focus();
});

renderUserBox();
route();
